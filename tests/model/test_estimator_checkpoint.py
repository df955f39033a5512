"""Posterior object (sbi-like API, bad inputs) and checkpoints (mismatch, corruption)."""
import json

import numpy as np
import pytest
import torch

from ysocensus import io
from ysocensus.model.checkpoint import CheckpointError, load, load_checkpoint, save_checkpoint
from ysocensus.model.config import merge
from ysocensus.model.posterior import FlowPosterior, flat_to_frame, frame_to_flat, x_columns
from ysocensus.model.network import FlowTransformer, NetworkConfig
from ysocensus.model.tokens import N_X, Normalisation, tokenize

CFG = NetworkConfig(dim=16, latent_dim=16, heads=2, latent_heads=2, layers=1)


def _post():
    torch.manual_seed(0)
    return FlowPosterior(FlowTransformer(CFG), Normalisation(), n_steps=2)


def _x(n=3):
    rng = np.random.default_rng(0)
    x = np.full((n, 2 * N_X + 2), np.nan)
    x[:, 1:4] = rng.normal(14, 1, (n, 3))  # G, BP, RP
    x[:, N_X + 1:N_X + 4] = 0.01
    x[:, 2 * N_X] = [10.0, 200.0, 300.0][:n]
    x[:, 2 * N_X + 1] = [5.0, -30.0, 60.0][:n]
    return x


def test_flat_layout_roundtrip():
    x = _x()
    assert len(x_columns()) == x.shape[1]
    np.testing.assert_allclose(frame_to_flat(flat_to_frame(x)), x, equal_nan=True)


def test_sample_batched_and_log_prob_shapes():
    post = _post()
    x = _x()
    s = post.sample_batched((10,), x)
    assert s.shape == (10, 3, 5) and torch.isfinite(s).all()
    assert (s[..., 1] > 0).all() and (s[..., 3] > 0).all()  # mass, distance positive
    one = post.sample((4,), x[0])
    assert one.shape == (4, 5)
    lp = post.log_prob(s[:2], x, n_steps=4)
    assert lp.shape == (2, 3) and torch.isfinite(lp).all()


def test_sampling_leaves_the_callers_token_arrays_unchanged():
    # validation samples the same TokenArrays twice (simulation and population priors): sampling must not
    # write into them (``arrays.torch()`` shares their memory)
    post = _post()
    arrays = tokenize(flat_to_frame(_x()), post.stats)
    arrays.measured[:, 0] = True  # as if the truth were carried
    before = {k: getattr(arrays, k).copy() for k in ("values", "logsig", "sky", "measured")}
    post.sample_tokens(arrays, 4, torch.Generator().manual_seed(0))
    for k, v in before.items():
        np.testing.assert_array_equal(getattr(arrays, k), v, err_msg=k)


def test_log_prob_with_the_adaptive_solver():
    post = _post()
    x = _x(2)
    s = post.sample_batched((3,), x, generator=torch.Generator().manual_seed(1))
    lp_fixed = post.log_prob(s, x, n_steps=256, method="midpoint")
    lp_rk45 = post.log_prob(s, x, method="rk45")
    assert lp_rk45.shape == (3, 2)
    torch.testing.assert_close(lp_rk45, lp_fixed, atol=2e-2, rtol=0)


def test_star_with_nothing_observed_gets_the_prior_and_a_flag():
    post = _post()
    f = flat_to_frame(_x())
    for k in list(f):
        if k not in ("l", "b"):
            f[k][:] = np.nan
    f["l"][2] = np.nan  # and one star without a valid position
    s, status = post.sample_frame(f, 8)
    assert list(status) == ["prior_only", "prior_only", "invalid_input"]
    assert np.isfinite(s[:2]).all() and np.isnan(s[2]).all()
    summ = post.summarise(s)
    assert set(f"{p}_q50" for p in io.PARAMETERS) <= set(summ) and np.isnan(summ["p_young"][2])


def test_checkpoint_roundtrip_mismatch_and_corruption(tmp_path):
    torch.manual_seed(0)
    net = FlowTransformer(CFG)
    cfg = merge({"anchors": {"enabled": False}, "network": CFG.to_dict()})
    p = tmp_path / "model.ckpt"
    save_checkpoint(p, net, Normalisation(), cfg)
    net2, stats, cfg2, _ = load_checkpoint(p, cfg)
    for a, b in zip(net.state_dict().values(), net2.state_dict().values()):
        assert torch.equal(a, b)
    # the same model is the same bytes, whatever the temporary file it was written through was called
    save_checkpoint(tmp_path / "again.ckpt", net, Normalisation(), cfg)
    assert (tmp_path / "again.ckpt").read_bytes() == p.read_bytes()
    assert load(p, expected_config=cfg).n_steps == cfg["sampling"]["n_steps"]
    # sampling settings are not part of the fingerprint, and the caller's config decides them
    resampled = merge({"anchors": {"enabled": False}, "network": CFG.to_dict(),
                       "sampling": {"n_steps": 8, "method": "heun"}})
    load_checkpoint(p, resampled)
    post = load(p, expected_config=resampled)
    assert (post.n_steps, post.method) == (8, "heun")
    assert load(p).n_steps == cfg["sampling"]["n_steps"]  # no config given: the checkpoint's own
    other = merge({"anchors": {"enabled": False}, "network": CFG.to_dict(), "flow": {"sigma_min": 0.01}})
    with pytest.raises(CheckpointError, match=r"another config.*flow\.sigma_min"):
        load_checkpoint(p, other)
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])
    with pytest.raises(CheckpointError, match="corrupted"):
        load_checkpoint(bad)
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="corrupted"):
        load_checkpoint(junk)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "absent.ckpt")
    torch.save({"hello": 1}, tmp_path / "foreign.ckpt")
    with pytest.raises(CheckpointError, match="not a ysocensus"):
        load_checkpoint(tmp_path / "foreign.ckpt")


def test_checkpoint_config_compared_by_value(tmp_path):
    torch.manual_seed(0)
    net = FlowTransformer(CFG)
    cfg = merge({"anchors": {"enabled": False}, "network": CFG.to_dict(), "optim": {"max_minutes": 7}})
    p = tmp_path / "model.ckpt"
    save_checkpoint(p, net, Normalisation(), cfg)
    # 7.0 minutes in a config file is the same budget as 7: accepted (the hash alone differs)
    load_checkpoint(p, merge({"anchors": {"enabled": False}, "network": CFG.to_dict(), "optim": {"max_minutes": 7.0}}))
    with pytest.raises(CheckpointError, match=r"optim\.max_minutes: checkpoint 7 vs config 8"):
        load_checkpoint(p, merge({"anchors": {"enabled": False}, "network": CFG.to_dict(), "optim": {"max_minutes": 8}}))


def test_checkpoint_from_before_a_new_network_key_loads_and_the_key_is_compared(tmp_path):
    # a model-defining key added later (here network.affine_head) compares as its default, so a checkpoint
    # written before it existed still loads under today's default config; a config that sets it differs
    torch.manual_seed(0)
    cfg = merge({"anchors": {"enabled": False}, "network": CFG.to_dict()})
    old = json.loads(json.dumps(cfg))
    del old["network"]["affine_head"]
    p = tmp_path / "model.ckpt"
    save_checkpoint(p, FlowTransformer(CFG), Normalisation(), old)
    load_checkpoint(p, cfg)
    with pytest.raises(CheckpointError, match=r"network\.affine_head: checkpoint False vs config True"):
        load_checkpoint(p, merge({"anchors": {"enabled": False}, "network": {**CFG.to_dict(), "affine_head": True}}))


def test_affine_head_checkpoint_roundtrip_samples_alike(tmp_path):
    torch.manual_seed(0)
    acfg = NetworkConfig(**{**CFG.to_dict(), "affine_head": True})
    net = FlowTransformer(acfg)
    with torch.no_grad():
        net.affine_out.bias.normal_()
    cfg = merge({"anchors": {"enabled": False}, "network": acfg.to_dict()})
    p = tmp_path / "model.ckpt"
    save_checkpoint(p, net, Normalisation(), cfg)
    post = load(p, expected_config=cfg)
    x = _x()
    a = FlowPosterior(net.eval(), Normalisation(), n_steps=cfg["sampling"]["n_steps"],
                      time_power=cfg["sampling"]["time_power"]).sample_batched(
        (5,), x, torch.Generator().manual_seed(1))
    b = post.sample_batched((5,), x, torch.Generator().manual_seed(1))
    assert torch.allclose(a, b) and torch.isfinite(b).all()
    assert torch.isfinite(post.log_prob(b[:2], x, n_steps=4)).all()
    # a checkpoint of a network with a map from before the map's inputs changed is refused, not misread
    payload = torch.load(p, weights_only=True)
    del payload["map_revision"]
    torch.save(payload, tmp_path / "old.ckpt")
    with pytest.raises(CheckpointError, match="map revision 1.*retrain"):
        load_checkpoint(tmp_path / "old.ckpt", cfg)
