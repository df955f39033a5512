"""A deep ensemble (``train.ensemble``): the checkpoint of its members, their equal-weight mixture posterior and their
consensus flow."""
import numpy as np
import pytest
import torch

from ysocensus.model.checkpoint import CheckpointError, load, load_checkpoint, save_checkpoint, save_ensemble
from ysocensus.model.config import MEMBER_SEED_STRIDE, member_config, resolve
from ysocensus.model.network import FlowTransformer, NetworkConfig
from ysocensus.model.posterior import ConsensusPosterior, EnsemblePosterior, FlowPosterior, flat_to_frame
from ysocensus.model.posterior.corrections import mean_chain
from ysocensus.model.posterior.ensemble import mixture_ess, normalised_log_weights, shares
from ysocensus.model.prior_ratio import PriorRatio
from ysocensus.model.streams import StarStreams
from ysocensus.model.tokens import N_X, Normalisation, tokenize

NET = NetworkConfig(dim=16, latent_dim=16, heads=2, latent_heads=2, layers=1)
SEED = 20261125


def _cfg(members: int) -> dict:
    return resolve({"anchors": {"enabled": False}, "network": NET.to_dict(), "ensemble": {"members": members}}, SEED)


def _member(path, cfg, k, stats=None):
    torch.manual_seed(k)
    ratio = PriorRatio([1.0, 50.0, 1000.0])
    save_checkpoint(path, FlowTransformer(NET), stats or Normalisation(), member_config(cfg, k), prior_ratio=ratio)
    return path


def _x(n=5):
    rng = np.random.default_rng(0)
    x = np.full((n, 2 * N_X + 2), np.nan)
    x[:, 1:4] = rng.normal(14, 1, (n, 3))  # G, BP, RP
    x[:, N_X + 1:N_X + 4] = 0.01
    x[:, 2 * N_X] = np.linspace(10.0, 300.0, n)
    x[:, 2 * N_X + 1] = np.linspace(-30.0, 60.0, n)
    return x


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory):
    d = tmp_path_factory.mktemp("ens")
    cfg = _cfg(3)
    paths = [_member(d / f"m{k}.ckpt", cfg, k) for k in range(3)]
    save_ensemble(d / "model.ckpt", paths)
    return d, cfg, paths


def test_shares_and_the_mixtures_weights():
    assert shares(64, 3) == [22, 21, 21] and shares(64, 1) == [64] and sum(shares(7, 4)) == 7
    # equal members with ESS e each: the mixture's ESS is K e (and a single member's is its own)
    assert mixture_ess([np.array([10.0]), np.array([10.0])], [32, 32]) == pytest.approx(20.0)
    assert mixture_ess([np.array([7.0])], [64]) == pytest.approx(7.0)
    lw = np.log(np.array([[1.0, 3.0], [2.0, 2.0]]))
    lw = np.concatenate([lw, np.full((1, 2), -np.inf)])
    out = normalised_log_weights(lw, 0.25)
    np.testing.assert_allclose(np.exp(out[:2]).sum(1), 0.25, rtol=1e-6)
    np.testing.assert_allclose(np.exp(out[0]), [0.0625, 0.1875], rtol=1e-6)
    assert np.isneginf(out[2]).all()


def test_the_checkpoint_holds_every_member_and_loads_as_their_mixture(ensemble):
    d, cfg, paths = ensemble
    post = load(d / "model.ckpt", expected_config=cfg)
    assert isinstance(post, EnsemblePosterior) and len(post.members) == 3
    assert post.describe()["ensemble_members"] == 3
    # member k is the network that was saved as member k (same weights, its own seed in its config)
    for k, p in enumerate(paths):
        net_k, _, model_cfg, extra = load_checkpoint(d / "model.ckpt", cfg, member=k)
        net_p, *_ = load_checkpoint(p)
        assert model_cfg["seed"] == SEED + k * MEMBER_SEED_STRIDE and extra["ensemble_members"] == 3
        for a, b in zip(net_k.state_dict().values(), net_p.state_dict().values()):
            assert torch.equal(a, b)
    # a config asking for another ensemble size, or another seed, is refused with the key named
    with pytest.raises(CheckpointError, match="ensemble"):
        load(d / "model.ckpt", expected_config=_cfg(2))
    with pytest.raises(CheckpointError, match="seed"):
        load(d / "model.ckpt", expected_config=resolve({"anchors": {"enabled": False}, "network": NET.to_dict(),
                                                        "ensemble": {"members": 3}}, SEED + 1))
    with pytest.raises(CheckpointError, match="no member 3"):
        load_checkpoint(d / "model.ckpt", member=3)


def test_one_member_is_the_single_model(tmp_path):
    cfg = _cfg(1)
    p = _member(tmp_path / "m0.ckpt", cfg, 0)
    save_ensemble(tmp_path / "model.ckpt", [p])
    post = load(tmp_path / "model.ckpt", expected_config=cfg)
    assert isinstance(post, FlowPosterior)


def test_members_must_belong_together(tmp_path):
    cfg = _cfg(2)
    m0 = _member(tmp_path / "m0.ckpt", cfg, 0)
    # member 1 trained with member 0's seed (not member 1 of this ensemble)
    wrong_seed = _member(tmp_path / "w.ckpt", cfg, 0)
    with pytest.raises(CheckpointError, match="not member 1.*seed"):
        save_ensemble(tmp_path / "model.ckpt", [m0, wrong_seed])
    # member 1 trained on another training set
    other = _member(tmp_path / "o.ckpt", cfg, 1, _shifted_stats())
    with pytest.raises(CheckpointError, match="another training set"):
        save_ensemble(tmp_path / "model.ckpt", [m0, other])
    assert not (tmp_path / "model.ckpt").exists()


def _shifted_stats():
    d = Normalisation().to_dict()
    key = next(k for k, v in d.items() if isinstance(v, list) and v and isinstance(v[0], float))
    d[key] = [v + 0.5 for v in d[key]]
    return Normalisation.from_dict(d)


def test_each_member_draws_its_share_and_member_zero_draws_what_it_draws_alone(ensemble):
    d, cfg, paths = ensemble
    post = load(d / "model.ckpt", expected_config=cfg)
    x = _x()
    ids = np.arange(100, 105)
    arrays = tokenize(flat_to_frame(x), post.stats)
    s, status = post.sample_tokens(arrays, 16, StarStreams.for_stars(7, ids))
    assert s.shape == (5, 16, 5) and (status == "ok").all() and np.isfinite(s).all()
    # member 0's block is what member 0 alone draws for its share (6 of 16), star by star
    alone = load(paths[0])
    alone.min_ess = post.members[0].min_ess * 6 / 16
    s0, _ = alone.sample_tokens(arrays, 6, StarStreams.for_stars(7, ids))
    np.testing.assert_array_equal(s[:, :6], s0)
    # the members' blocks differ (their own networks and streams)
    assert not np.allclose(s[:, :5], s[:, 6:11])
    # weights: each member's proposals carry 1/3 of each star's weight (up to its share), so P(young) from the
    # weights is the mixture's
    w = np.exp(post.last_log_weights.astype(np.float64))
    np.testing.assert_allclose(w.sum(1), 1.0, rtol=1e-5)
    assert post.last_proposals.shape[:2] == post.last_log_weights.shape
    assert (post.last_ess > 0).all() and (post.last_ess <= post.last_log_weights.shape[1] + 1e-3).all()
    # a star's samples do not depend on the batch it is drawn in
    s_one, _ = post.sample_tokens(tokenize(flat_to_frame(x[[3]]), post.stats), 16, StarStreams.for_stars(7, ids[[3]]))
    np.testing.assert_array_equal(s_one[0], s[3])


def test_settings_reach_every_member_and_the_prior_switches_for_all(ensemble):
    d, cfg, _ = ensemble
    post = load(d / "model.ckpt", expected_config=cfg)
    post.n_steps = 3
    post.rows_per_batch = 128
    assert all(m.n_steps == 3 and m.rows_per_batch == 128 for m in post.members)
    with post.using_prior("simulation"):
        assert all(m.prior == "simulation" for m in post.members)
    assert all(m.prior == "population" for m in post.members)
    # sbi-like API and the mixture's log density
    th = post.sample((4,), _x(1)[0])
    assert th.shape == (4, 5)
    lp = post.log_prob(th, _x(1)[0], n_steps=4)
    each = torch.stack([m.log_prob(th, _x(1)[0], n_steps=4) for m in post.members])
    torch.testing.assert_close(lp, torch.logsumexp(each, 0) - np.log(3))


def test_the_consensus_is_one_flow_of_the_mean_field_through_the_mean_corrections(ensemble):
    d, cfg, paths = ensemble
    post = load(d / "model.ckpt", expected_config=cfg, ensemble="consensus")
    assert isinstance(post, ConsensusPosterior) and len(post.members) == 3
    assert post.describe()["ensemble"] == "consensus"
    # the config key chooses it too (sampling settings are not the model's fingerprint)
    cfg_c = {**cfg, "sampling": {**cfg["sampling"], "ensemble": "consensus"}}
    assert isinstance(load(d / "model.ckpt", expected_config=cfg_c), ConsensusPosterior)
    with pytest.raises(ValueError, match="mixture"):
        load(d / "model.ckpt", expected_config=cfg, ensemble="median")
    # what `ysocensus infer --ensemble consensus` loads
    from ysocensus.inference.model_adapter import load_sampler
    assert isinstance(load_sampler(d / "model.ckpt", ensemble="consensus").estimator, ConsensusPosterior)
    assert isinstance(load_sampler(d / "model.ckpt").estimator, EnsemblePosterior)
    x = _x()
    ids = np.arange(100, 105)
    arrays = tokenize(flat_to_frame(x), post.stats)
    s, status = post.sample_tokens(arrays, 16, StarStreams.for_stars(7, ids))
    assert s.shape == (5, 16, 5) and (status == "ok").all() and np.isfinite(s).all()
    # each correction is the members' mean log weight
    z = torch.zeros(2, 3, 5)
    sky = torch.zeros(2, 4)
    for c, *each in zip(post.chain, *(m.chain for m in post.members)):
        torch.testing.assert_close(c.log_weight(z, sky), sum(e.log_weight(z, sky) for e in each) / 3)
    # the samples are neither member 0's nor a mixture's blocks: every sample moved with the mean field
    s0, _ = load(paths[0]).sample_tokens(arrays, 16, StarStreams.for_stars(7, ids))
    assert not np.allclose(s, s0)
    # a star's samples do not depend on the batch it is drawn in
    s_one, _ = post.sample_tokens(tokenize(flat_to_frame(x[[3]]), post.stats), 16, StarStreams.for_stars(7, ids[[3]]))
    np.testing.assert_array_equal(s_one[0], s[3])
    # settings set on the consensus are the ones it samples with; its density is the consensus flow's
    post.n_steps = 3
    assert post.proposal.n_steps == 3
    th = post.sample((4,), x[0])
    assert torch.isfinite(post.log_prob(th, x[0], n_steps=4)).all()


def test_a_consensus_of_one_network_is_that_network(ensemble):
    d, cfg, paths = ensemble
    alone = load(paths[0])
    one = ConsensusPosterior([load(paths[0])])
    arrays = tokenize(flat_to_frame(_x()), alone.stats)
    ids = np.arange(5)
    a, _ = alone.sample_tokens(arrays, 16, StarStreams.for_stars(3, ids))
    b, _ = one.sample_tokens(arrays, 16, StarStreams.for_stars(3, ids))
    np.testing.assert_array_equal(a, b)
    th = alone.sample((4,), _x(1)[0])
    torch.testing.assert_close(one.log_prob(th, _x(1)[0], n_steps=4), alone.log_prob(th, _x(1)[0], n_steps=4))


def test_chains_that_differ_are_not_averaged(ensemble):
    d, cfg, paths = ensemble
    post = load(paths[0])
    with pytest.raises(ValueError, match="chains differ"):
        mean_chain([post.chain, post.chain[1:]])
