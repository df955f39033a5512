"""The population / training-mix prior ratio and its importance resampling (no Lightning)."""
import numpy as np
import pytest
import torch

from ysocensus.model.checkpoint import load, save_checkpoint
from ysocensus.model.config import merge
from ysocensus.model.estimator import FlowPosterior, flat_to_frame
from ysocensus.model.network import FlowTransformer, NetworkConfig
from ysocensus.model.prior_ratio import PriorRatio, fit_prior_ratio, resample, weight_classes
from ysocensus.model.tokens import N_THETA, N_X, Normalisation


def test_weight_classes_distinct_binned_and_bad():
    idx, cw = weight_classes(np.array([1000.0, 1.0, 50.0, 1.0]))
    assert cw.tolist() == [1.0, 50.0, 1000.0] and idx.tolist() == [2, 0, 1, 0]
    w = np.logspace(0, 3, 100)
    idx, cw = weight_classes(w, max_classes=4)
    assert len(cw) == 4 and idx.min() == 0 and idx.max() == 3
    # each bin's weight is the mean weight of its rows, so E[w] is kept
    assert np.isclose(cw[idx].sum(), w.sum(), rtol=0.3)
    with pytest.raises(ValueError, match=r"rows \[1\]"):
        weight_classes(np.array([1.0, 0.0, 2.0]))


def _component_sample(n, seed=0):
    """Two components: 'old' (z0 > 0, weight 1000) and 'young' (z0 < 0, weight 1), like the field and the
    young complexes of the population stage (sharp in age)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, N_THETA)).astype(np.float32)
    sky = np.tile(np.array([[0.0, 1.0, 0.0, 1.0]], np.float32), (n, 1))
    w = np.where(z[:, 0] > 0, 1000.0, 1.0)
    return z, sky, w


def test_fit_recovers_the_expected_weight_given_theta():
    z, sky, w = _component_sample(20000)
    model, summary = fit_prior_ratio(z, sky, w, power=0.0, steps=400, seed=1)
    assert summary["class_weights"] == [1.0, 1000.0] and summary["accuracy"] > 0.97
    assert summary["mean_ratio_check"] == pytest.approx(1.0, abs=0.05)
    probe = torch.zeros(2, N_THETA)
    probe[0, 0], probe[1, 0] = -1.5, 1.5
    log_r = model(probe, torch.as_tensor(sky[:2]))
    # r = E[w | θ]: 1 for the young side, 1000 for the old side (log ratio ln 1000 = 6.9)
    assert float(log_r[1] - log_r[0]) == pytest.approx(np.log(1000.0), abs=0.5)
    # with the loss already weighted by w (power 1) the ratio is flat
    flat, _ = fit_prior_ratio(z, sky, w, power=1.0, steps=50)
    assert torch.allclose(flat(probe, torch.as_tensor(sky[:2])), torch.zeros(2), atol=1e-5)


def test_systematic_resampling_and_ess():
    g = torch.Generator().manual_seed(0)
    uniform = torch.zeros(3, 8)
    idx, ess = resample(uniform, 8, g)
    assert torch.equal(idx.sort(1).values, torch.arange(8).expand(3, 8))  # each proposal once
    assert torch.allclose(ess, torch.full((3,), 8.0))
    peaked = torch.full((1, 8), -50.0)
    peaked[0, 5] = 0.0
    idx, ess = resample(peaked, 4, g)
    assert (idx == 5).all() and float(ess) == pytest.approx(1.0)
    dead = torch.full((1, 4), float("nan"))
    idx, ess = resample(dead, 4, g)  # no finite weight: proposals kept as they are
    assert torch.equal(idx[0], torch.arange(4))


def test_importance_resampling_gives_the_tilted_gaussian():
    # proposals N(0, 1) weighted by exp(a x) are N(a, 1): the SIR estimate of the mean is a
    g = torch.Generator().manual_seed(2)
    x = torch.randn(200, 256, generator=g)
    a = 0.7
    idx, _ = resample(a * x, 256, g)
    out = torch.gather(x, 1, idx)
    assert float(out.mean()) == pytest.approx(a, abs=0.03)
    assert float(out.std()) == pytest.approx(1.0, abs=0.05)


def _x(n):
    x = np.full((n, 2 * N_X + 2), np.nan)
    x[:, 1:4] = 14.0
    x[:, N_X + 1:N_X + 4] = 0.01
    x[:, 2 * N_X], x[:, 2 * N_X + 1] = 30.0, 5.0
    return x


def test_population_prior_moves_samples_and_roundtrips_in_checkpoint(tmp_path):
    torch.manual_seed(0)
    cfg = NetworkConfig(dim=16, latent_dim=16, heads=2, latent_heads=2, layers=1)
    net = FlowTransformer(cfg)
    z, sky, w = _component_sample(20000)
    ratio, _ = fit_prior_ratio(z, sky, w, power=0.0, steps=400, seed=1)
    frame = flat_to_frame(_x(50))
    sim = FlowPosterior(net, Normalisation(), n_steps=2, prior="simulation", prior_ratio=ratio)
    pop = FlowPosterior(net, Normalisation(), n_steps=2, prior="population", prior_ratio=ratio, oversample=4)
    s_sim, _ = sim.sample_frame(frame, 64, torch.Generator().manual_seed(3))
    s_pop, status = pop.sample_frame(frame, 64, torch.Generator().manual_seed(3))
    assert s_pop.shape == s_sim.shape and (status == "ok").all()
    # log age is θ0 (standardised with mean 0, sd 1 here): the old side carries 1000× the prior mass
    assert (s_pop[..., 0] > 0).mean() > (s_sim[..., 0] > 0).mean() + 0.2
    assert pop.last_ess.shape == (50,) and (pop.last_ess <= 256).all() and (pop.last_ess >= 1).all()
    # saved and loaded with the model; a checkpoint trained with population weights has none
    p = tmp_path / "m.ckpt"
    save_checkpoint(p, net, Normalisation(), merge({"anchors": {"enabled": False}, "network": cfg.to_dict()}), prior_ratio=ratio)
    loaded = load(p)
    assert loaded.prior == "population" and loaded.prior_ratio is not None
    for a, b in zip(ratio.state_dict().values(), loaded.prior_ratio.state_dict().values()):
        assert torch.equal(a, b)
    save_checkpoint(p, net, Normalisation(), merge({"anchors": {"enabled": False}, "network": cfg.to_dict()}))
    assert load(p).prior_ratio is None
    with pytest.raises(ValueError, match="prior must be"):
        FlowPosterior(net, Normalisation(), prior="galaxy")


def test_using_prior_switches_for_a_block_and_restores():
    post = FlowPosterior(FlowTransformer(NetworkConfig(dim=16, latent_dim=16, heads=2, latent_heads=2, layers=1)),
                         Normalisation())
    with post.using_prior("simulation"):
        assert post.prior == "simulation"
    assert post.prior == "population"
    with pytest.raises(ValueError, match="prior must be"):
        with post.using_prior("galaxy"):
            pass
    assert post.prior == "population"
