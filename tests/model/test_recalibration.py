"""The age recalibration of the network (model.recalibration) and where it applies (no Lightning)."""
import numpy as np
import pytest
import torch

from ysocensus.model.checkpoint import load, save_checkpoint
from ysocensus.model.config import merge
from ysocensus.model.network import FlowTransformer, NetworkConfig
from ysocensus.model.posterior.corrections import standard_chain, up_to
from ysocensus.model.posterior.importance import log_weights, resample
from ysocensus.model.prior_ratio import PriorRatio
from ysocensus.model.recalibration import MAX_LOG_FACTOR, AgeCorrection, age_edges, fit_age_correction
from ysocensus.model.tokens import N_THETA, Normalisation

YOUNG, OLD = 6.55, 9.55  # log10 age of the two classes, in the middle of 0.1-dex bins


def _prior_shift(n=6000, s=64, pi=0.3, pi_net=0.15, seed=0):
    """Saerens et al.'s setting: stars young with probability ``pi``, data x ~ N(±1, 1) (likelihood ratio e^{2x}),
    and a 'network' whose posterior used the wrong prior ``pi_net``. → proposals [n, s], truths, the network's
    P(young) and the exact one."""
    rng = np.random.default_rng(seed)
    young = rng.random(n) < pi
    x = rng.normal(np.where(young, 1.0, -1.0), 1.0)
    lr = np.exp(2 * x)
    p_net = pi_net * lr / (pi_net * lr + 1 - pi_net)
    p_true = pi * lr / (pi * lr + 1 - pi)
    proposals = np.where(rng.random((n, s)) < p_net[:, None], YOUNG, OLD) + rng.uniform(-0.04, 0.04, (n, s))
    return proposals, np.where(young, YOUNG, OLD), p_net, p_true


def test_em_recovers_the_prior_the_network_got_wrong():
    # the corrected posterior is exact when the network's only error is its prior (the likelihood is right):
    # young/old odds factor (0.3/0.7)/(0.15/0.85) = 2.43, and per star P(young) = the exact posterior
    props, truth, p_net, p_true = _prior_shift()
    corr, summary = fit_age_correction(props, np.zeros_like(props), truth, np.ones(len(truth)),
                                       age_edges(truth, 0.1))
    assert summary["converged"] and summary["stars"] == len(truth)
    lf = corr.log_factor(np.array([YOUNG, OLD]))
    assert np.exp(lf[0] - lf[1]) == pytest.approx((0.3 / 0.7) / (0.15 / 0.85), rel=0.1)
    cy, co = np.exp(lf)
    p = cy * p_net / (cy * p_net + co * (1 - p_net))  # the corrected posterior's P(young), without sampling noise
    assert np.abs(p - p_true).max() < 0.03
    yw = summary["young_weighted"]
    assert yw["expected_before"] < 0.8 * yw["observed"]
    assert yw["expected_after"] == pytest.approx(yw["observed"], rel=0.02)


def test_em_leaves_a_right_posterior_alone_and_uses_the_weights():
    props, truth, _, _ = _prior_shift(pi_net=0.3)  # the network already has the right prior
    corr, _ = fit_age_correction(props, np.zeros_like(props), truth, np.ones(len(truth)), age_edges(truth, 0.1))
    lf = corr.log_factor(np.array([YOUNG, OLD]))
    assert abs(lf[0] - lf[1]) < 0.15
    # population weights enter as star counts: doubling every young star's weight doubles the young odds factor
    w = np.where(truth < 8, 2.0, 1.0)
    props2, truth2, _, _ = _prior_shift(pi=0.3 * 2 / (0.3 * 2 + 0.7), pi_net=0.3, seed=1)  # same data as weighted
    corr_w, _ = fit_age_correction(props, np.zeros_like(props), truth, w, age_edges(truth, 0.1))
    corr_d, _ = fit_age_correction(props2, np.zeros_like(props2), truth2, np.ones(len(truth2)), age_edges(truth2, 0.1))
    odds = lambda c: float(np.subtract(*c.log_factor(np.array([YOUNG, OLD]))))  # noqa: E731
    assert odds(corr_w) == pytest.approx(np.log(2.0), abs=0.2) and odds(corr_w) == pytest.approx(odds(corr_d), abs=0.2)


def test_bins_outside_the_range_keep_factor_one():
    props, truth, _, _ = _prior_shift()
    edges = age_edges(truth, 0.1)
    corr, summary = fit_age_correction(props, np.zeros_like(props), truth, np.ones(len(truth)), edges,
                                       age_range=(6.0, 8.0))
    lf = corr.log_factor(np.array([YOUNG, OLD]))
    assert lf[1] == 0.0 and lf[0] != 0.0  # the old class is outside the range: c = 1 there
    assert summary["bins_fitted"] == int(np.sum((edges[:-1] >= 6.0 - 1e-9) & (edges[1:] <= 8.0 + 1e-9)))
    # the young bin alone carries the whole odds correction
    assert np.exp(lf[0]) == pytest.approx((0.3 / 0.7) / (0.15 / 0.85), rel=0.1)


def test_bins_without_truths_are_capped_and_bad_stars_left_out():
    props, truth, _, _ = _prior_shift(n=2000)
    props[:, :4] = 11.0  # proposals past every truth: that bin has no truth and its factor goes to the cap
    truth = truth.astype(float)
    truth[0] = np.nan
    log_w = np.zeros_like(props)
    log_w[1] = -np.inf  # a star with no usable proposal (nothing observed)
    corr, summary = fit_age_correction(props, log_w, truth, np.ones(len(truth)), age_edges(truth[1:], 0.1))
    assert summary["stars"] == 1998 and summary["stars_left_out"] == 2 and summary["converged"]
    assert corr.log_factor(np.array([11.0]))[0] == pytest.approx(-MAX_LOG_FACTOR)
    assert summary["bins_at_cap"] >= 1
    # no usable star at all: no correction (c = 1), and the summary says so
    none, summary = fit_age_correction(props[:3], np.full((3, props.shape[1]), -np.inf), truth[:3], np.ones(3),
                                       age_edges(truth[1:], 0.1))
    assert not any(none.log_c) and summary["stars"] == 0 and not summary["converged"]


def test_age_correction_lookup_numpy_and_torch_agree_and_validates():
    c = AgeCorrection((7.0, 7.5, 8.0), (0.1, 0.2, 0.3, 0.4))
    a = np.array([5.0, 7.0, 7.49, 7.5, 9.9])
    assert c.log_factor(a).tolist() == [0.1, 0.2, 0.2, 0.3, 0.4]  # a bin holds its lower edge
    assert torch.allclose(c.log_factor(torch.as_tensor(a)), torch.as_tensor(c.log_factor(a)))
    assert AgeCorrection(**c.to_dict()) == c
    with pytest.raises(ValueError, match="one more factor than edges"):
        AgeCorrection((7.0,), (0.1,))


def _chain_with_correction():
    # one weight class (the ratio itself is constant) and an age correction that favours log age < 0 in model
    # space 4:1 (age_scale (0, 1): z0 is log age)
    return standard_chain(PriorRatio([1.0]), AgeCorrection((0.0,), (float(np.log(4.0)), 0.0)))


def test_correction_applies_to_the_networks_population_posterior_only():
    from ysocensus.model.posterior import ImportanceSamplingPosterior

    chain = _chain_with_correction()
    g = torch.Generator().manual_seed(0)
    z = torch.randn(400, 256, N_THETA, generator=g)
    sky = torch.zeros(400, 4)
    young = lambda idx: float((torch.gather(z[..., 0], 1, idx) < 0).float().mean())  # noqa: E731
    idx, _ = resample(log_weights(up_to(chain, "population"), z, sky), 256, g)
    assert young(idx) == pytest.approx(0.8, abs=0.02)  # 4:1 odds from even ones
    idx, _ = resample(log_weights(up_to(chain, "simulation"), z, sky), 256, g)
    assert young(idx) == pytest.approx(0.5, abs=0.02)  # the network's own posterior: no correction
    th = np.ones(z.shape, np.float32)  # physical θ; Normalisation() leaves log age as it is
    th[..., 0] = z[..., 0].numpy()

    class _Stats:  # the proposal's part a reweighting needs
        stats = Normalisation()

    post = ImportanceSamplingPosterior(_Stats(), chain)
    s, _ = post.reweight(th, sky.numpy(), 256, g)
    assert (s[..., 0] < 0).mean() == pytest.approx(0.5, abs=0.02)  # another estimator's samples: no correction
    s, _ = post.reweight(th, sky.numpy(), 256, g, from_network=True)
    assert (s[..., 0] < 0).mean() == pytest.approx(0.8, abs=0.02)


def _saved(tmp_path, chain):
    """A small checkpoint with this chain (its first correction's prior ratio)."""
    cfg = NetworkConfig(dim=16, latent_dim=16, heads=2, latent_heads=2, layers=1)
    p = tmp_path / "m.ckpt"
    save_checkpoint(p, FlowTransformer(cfg), Normalisation(),
                    merge({"anchors": {"enabled": False}, "network": cfg.to_dict()}), prior_ratio=chain[0].ratio,
                    chain=chain)
    return p


def test_correction_roundtrips_in_the_checkpoint(tmp_path):
    chain = _chain_with_correction()
    p = _saved(tmp_path, chain)
    back = load(p)
    assert [c.name for c in back.chain] == ["population_ratio", "age_recalibration"]
    assert back.age_correction == chain[-1].correction
    assert load(p, prior="simulation").corrections == ()


def test_a_checkpoint_from_before_the_stored_chain_keeps_its_age_recalibration(tmp_path):
    """Checkpoints written before the chain was stored carried the age recalibration inside the prior ratio's
    config; they load with the standard chain, the recalibration in its place."""
    import json

    chain = _chain_with_correction()
    p = _saved(tmp_path, chain)
    payload = torch.load(p, weights_only=True)
    del payload["posterior_chain"]
    rc = json.loads(payload["prior_ratio"]["config"])
    rc["age_correction"] = chain[-1].correction.to_dict()
    payload["prior_ratio"]["config"] = json.dumps(rc)
    torch.save(payload, p)
    back = load(p)
    assert [c.name for c in back.chain] == ["population_ratio", "age_recalibration"]
    assert back.age_correction == chain[-1].correction


def test_field_step_bins_split_at_the_step_and_the_tilt_zone():
    """The default bins (training.age_recalibration_bins: field_step) sit where the training prior changes: the
    field's weight step at population.young_field_age_max_myr (50 Myr: log 7.699) and the field tilt's zone
    (training.field_tilt_dex 0.22)."""
    from ysocensus.model.config import merge as merge_train
    from ysocensus.model.recalibration import step_edges
    from ysocensus.model.training import recalibration_edges

    np.testing.assert_allclose(recalibration_edges(merge_train({}), None), [7.47897, 7.69897, 7.91897], atol=1e-5)
    np.testing.assert_allclose(step_edges(7.0), [7.0])
    uniform = merge_train({"training": {"age_recalibration_bins": "uniform"}})
    assert recalibration_edges(uniform, None) is None
    # a factor constant on each side of the step moves no mass within a side: a star whose proposals all lie below
    # the step keeps its posterior exactly
    props = np.linspace(6.0, 7.3, 64)[None]
    corr = AgeCorrection(tuple(step_edges(7.69897, 0.22)), (0.8, 0.8, -0.7, 0.0))
    q = np.exp(corr.log_factor(props)); q /= q.sum()
    np.testing.assert_allclose(q, np.full_like(q, 1 / 64))
