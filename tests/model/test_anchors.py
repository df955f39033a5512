"""Measurement anchors: the per-star affine map (c, s) and its use as an exact change of variables."""
import math

import numpy as np
import torch

from ysocensus.model import sampler
from ysocensus.model.anchors import FEH, FEH_LAMOST, LOG_DISTANCE, AnchorConfig, MeasurementAnchors
from ysocensus.model.masks import posterior_states
from ysocensus.model.network import NetworkConfig, latent_slots
from ysocensus.model.tokens import (DROPPED, N_THETA, OBSERVED, PARALLAX_TOKEN, VALUE_ONLY, Normalisation,
                                    tokenize)


def _stars():
    """Five stars: parallax 10 ± 0.1, 1.0 ± 0.25 (S/N 4: half weight), 1.0 ± 0.5 (S/N 2), −0.3 ± 0.5 mas,
    and no parallax; the first two have a LAMOST [Fe/H] of −0.2 ± 0.05 dex."""
    n = 5
    nan = np.nan
    frame = {"l": np.full(n, 30.0), "b": np.full(n, 5.0),
             "parallax": np.array([10.0, 1.0, 1.0, -0.3, nan]),
             "parallax_error": np.array([0.1, 0.25, 0.5, 0.5, nan]),
             "feh_lamost": np.array([-0.2, -0.2, nan, nan, nan]),
             "feh_err_lamost": np.array([0.05, 0.05, nan, nan, nan])}
    stats = Normalisation(theta_mean=[7.0, -0.3, -0.1, 2.7, 1.0], theta_std=[1.0, 0.4, 0.25, 0.35, 1.0])
    return tokenize(frame, stats), stats


def _affine(arrays, stats, state=None):
    t = arrays.torch()
    t["measured"][:, :N_THETA] = False
    state = posterior_states(t["measured"]) if state is None else state
    li, lo = latent_slots(state, N_THETA)
    c, s = MeasurementAnchors(stats, AnchorConfig(enabled=True)).affine(t["values"], t["logsig"], state, li, lo)
    return c.double().numpy(), s.double().numpy(), state


def test_feh_and_distance_centres_and_scales_are_the_measurements():
    arrays, stats = _stars()
    c, s, _ = _affine(arrays, stats)
    # [Fe/H]: centre = standardised LAMOST value, scale = its error over the prior's standard deviation
    np.testing.assert_allclose(c[:2, FEH], (-0.2 + 0.1) / 0.25, rtol=1e-5)
    np.testing.assert_allclose(s[:2, FEH], 0.05 / 0.25, rtol=1e-5)
    assert np.all(c[2:, FEH] == 0) and np.all(s[2:, FEH] == 1)
    # distance, S/N 100: log10(1000 / 10 mas) = 2, σ = 0.01 / ln 10 dex
    np.testing.assert_allclose(c[0, LOG_DISTANCE], (2.0 - 2.7) / 0.35, rtol=1e-5)
    np.testing.assert_allclose(s[0, LOG_DISTANCE], 0.01 / math.log(10) / 0.35, rtol=1e-4)
    # S/N 4 is halfway between snr_min 3 and snr_full 5: half the centre, half the shrinkage
    sc = 0.25 / math.log(10) / 0.35
    np.testing.assert_allclose(c[1, LOG_DISTANCE], 0.5 * (3.0 - 2.7) / 0.35, rtol=1e-4)
    np.testing.assert_allclose(s[1, LOG_DISTANCE], 1 - 0.5 * (1 - sc), rtol=1e-4)
    # S/N 2, a negative parallax, no parallax: the plain parametrisation, and nothing is infinite
    assert np.all(c[2:, LOG_DISTANCE] == 0) and np.all(s[2:, LOG_DISTANCE] == 1)
    # age, mass and A_V have no direct measurement
    assert np.all(c[:, [0, 1, 4]] == 0) and np.all(s[:, [0, 1, 4]] == 1)


def test_a_dropped_measurement_is_not_an_anchor():
    arrays, stats = _stars()
    t = arrays.torch()
    t["measured"][:, :N_THETA] = False
    state = posterior_states(t["measured"])
    state[:, [PARALLAX_TOKEN, FEH_LAMOST]] = DROPPED
    c, s, _ = _affine(arrays, stats, state)
    assert np.all(c == 0) and np.all(s == 1)
    off = MeasurementAnchors(stats, AnchorConfig(enabled=False))
    li, lo = latent_slots(posterior_states(t["measured"]), N_THETA)
    c0, s0 = off.affine(t["values"], t["logsig"], posterior_states(t["measured"]), li, lo)
    assert torch.all(c0 == 0) and torch.all(s0 == 1)


def test_a_measurement_without_its_sigma_is_anchored_at_the_typical_sigma():
    arrays, stats = _stars()
    stats.logsig_mean[FEH_LAMOST - N_THETA] = math.log(0.08)  # the training set's geometric-mean [Fe/H] error
    t = arrays.torch()
    t["measured"][:, :N_THETA] = False
    state = posterior_states(t["measured"])
    state[:, FEH_LAMOST] = torch.where(state[:, FEH_LAMOST] == OBSERVED, VALUE_ONLY, state[:, FEH_LAMOST])
    li, lo = latent_slots(state, N_THETA)
    on = MeasurementAnchors(stats, AnchorConfig(enabled=True, parameters=("feh",), value_only=True))
    c, s = on.affine(t["values"], t["logsig"], state, li, lo)
    np.testing.assert_allclose(c[:2, FEH], (-0.2 + 0.1) / 0.25, rtol=1e-5)
    np.testing.assert_allclose(s[:2, FEH], 0.08 / 0.25, rtol=1e-5)      # not the withheld 0.05
    ls = t["logsig"].clone()
    ls[:, FEH_LAMOST] = 3.0                                              # whatever σ was withheld: same map
    c2, s2 = on.affine(t["values"], ls, state, li, lo)
    assert torch.equal(c, c2) and torch.equal(s, s2)
    assert torch.all(c[2:, FEH] == 0) and torch.all(s[2:, FEH] == 1)
    off = MeasurementAnchors(stats, AnchorConfig(enabled=True, parameters=("feh",)))   # checkpoints before it
    c0, s0 = off.affine(t["values"], t["logsig"], state, li, lo)
    assert torch.all(c0 == 0) and torch.all(s0 == 1)


class _Still(torch.nn.Module):
    """TEST DOUBLE: zero velocity, so y at t = 1 is the base sample and θ = c + s y ~ N(c, s²)."""

    def decode(self, cache, x, t, lat_idx, lat_ok, anchor=None):
        assert anchor is not None and anchor.shape == lat_idx.shape + (2,)
        return 0.0 * x  # (x stays in the graph: log_prob differentiates v)

    config = NetworkConfig(affine_head=False)  # no learnt map: the anchors alone set (c, s)

    def encode(self, *a):
        return None


def test_anchored_sampling_and_log_density_are_one_change_of_variables():
    arrays, stats = _stars()
    c, s, state = _affine(arrays, stats)
    t = arrays.torch()
    li, lo = latent_slots(state, N_THETA)
    cond = sampler.Conditioning(t["values"], t["logsig"], t["sky"], state, li, lo,
                                anchor_c=torch.as_tensor(c, dtype=torch.float32),
                                anchor_s=torch.as_tensor(s, dtype=torch.float32))
    cond.cache = object()
    x = sampler.sample(_Still(), cond, 4000, 2, "midpoint", generator=torch.Generator().manual_seed(0)).double()
    np.testing.assert_allclose(x.mean(1).numpy(), c, atol=4 * s.max() / math.sqrt(4000))
    np.testing.assert_allclose(x.std(1).numpy(), s, rtol=0.05)
    lp = sampler.log_prob(_Still(), cond, x[:, :7].float(), n_steps=2).double()
    exact = (-0.5 * ((x[:, :7] - torch.as_tensor(c)[:, None]) / torch.as_tensor(s)[:, None]) ** 2
             - torch.log(torch.as_tensor(s))[:, None] - 0.5 * math.log(2 * math.pi)).sum(-1)
    assert torch.allclose(lp, exact, atol=1e-3)
