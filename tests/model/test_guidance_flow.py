"""Flow matching pieces and the guidance term, with a linear stand-in operator (a test double)."""
import math

import numpy as np
import pytest
import torch

from model_helpers import random_batch
from ysocensus.model.flow import FlowConfig, clean_estimate, flow_matching_loss, interpolate, sample_time
from ysocensus.model.guidance import Guidance, GuidanceConfig
from ysocensus.model.masks import posterior_states
from ysocensus.model.network import FlowTransformer, NetworkConfig
from ysocensus.model.tokens import MAGNITUDE_TOKENS, MISSING, N_THETA, Normalisation


class LinearOperator(torch.nn.Module):
    """TEST DOUBLE for ysocensus.surveys.operator.MeasurementOperator: mags linear in θ, parallax 1000/d."""

    def __init__(self):
        super().__init__()
        self.register_buffer("W", torch.linspace(0.5, 1.5, 10))

    def forward(self, log10_age_yr, log10_mass, feh, distance_pc, av_mag):
        base = log10_age_yr - 2 * log10_mass + 0.3 * feh + 5 * torch.log10(distance_pc) + av_mag
        mags = base[..., None] * self.W
        return mags, 1000.0 / distance_pc, torch.ones_like(base, dtype=torch.bool)


def test_straight_path_and_clean_estimate():
    x0, x1 = torch.randn(100, 5), torch.randn(100, 5)
    t = torch.rand(100)
    for s in (0.0, 1e-3):
        xt, u = interpolate(x0, x1, t, s)
        assert torch.allclose(clean_estimate(xt, u, t, s), x1, atol=1e-5)
    xt, _ = interpolate(x0, x1, torch.zeros(100), 0.0)
    assert torch.allclose(xt, x0)


def test_time_sampling():
    g = torch.Generator().manual_seed(0)
    u = sample_time(100000, FlowConfig(time_sampling="uniform"), g)
    p = sample_time(100000, FlowConfig(time_sampling="power_law", time_power=1.0), g)
    assert abs(u.mean() - 0.5) < 0.01 and abs(p.mean() - 2 / 3) < 0.01
    with pytest.raises(ValueError):
        sample_time(3, FlowConfig(time_sampling="bogus"))


def _guidance_batch(B=16):
    b = random_batch(B, seed=3, p_measured=1.0)
    stats = Normalisation()
    op = LinearOperator()
    theta = b["values"][:, :N_THETA].clone()
    theta[:, 3] = theta[:, 3].abs() + 1.0  # log10 distance > 0
    b["values"][:, :N_THETA] = theta
    from ysocensus.model.tokens import model_theta_to_operator_inputs
    mags, plx, _ = op(**model_theta_to_operator_inputs(theta, stats))
    b["mags"], b["mag_sigma"] = mags.clone(), torch.full((B, 10), 0.05)
    b["parallax"], b["parallax_sigma"] = plx.clone(), torch.full((B,), 0.1)
    return b, op, stats


def test_guidance_zero_at_truth_and_masks_missing_bands():
    b, op, stats = _guidance_batch()
    g = Guidance(GuidanceConfig(enabled=True, weight=1.0), op, stats)
    state = posterior_states(b["measured"])
    lat_idx = torch.arange(N_THETA).expand(16, N_THETA)
    lat_ok = torch.ones(16, N_THETA, dtype=torch.bool)
    x1 = b["values"][:, None, :N_THETA].expand(16, 2, N_THETA)
    t = torch.ones(16, 2)
    w = torch.ones(16)
    assert float(g.loss(x1, t, b, state, lat_idx, lat_ok, w)) < 1e-6
    off = x1 + 0.1
    l1 = float(g.loss(off, t, b, state, lat_idx, lat_ok, w))
    assert l1 > 1.0
    # corrupt the observed value of missing bands: no effect
    s2 = state.clone()
    s2[:, list(MAGNITUDE_TOKENS[5:])] = MISSING
    l2 = float(g.loss(off, t, b, s2, lat_idx, lat_ok, w))
    b["mags"][:, 5:] += 100.0
    assert math.isclose(float(g.loss(off, t, b, s2, lat_idx, lat_ok, w)), l2, rel_tol=1e-6)
    # weighted towards the data end: nothing at t = 0
    assert float(g.loss(off, torch.zeros(16, 2), b, state, lat_idx, lat_ok, w)) == 0.0


def test_guidance_switch_and_gradients():
    b, op, stats = _guidance_batch()
    torch.manual_seed(0)
    net = FlowTransformer(NetworkConfig(dim=16, latent_dim=16, heads=2, latent_heads=2, layers=1))
    state = posterior_states(b["measured"])
    cfg = FlowConfig()
    off = flow_matching_loss(net, b, state, cfg, torch.Generator().manual_seed(0), None)
    on = flow_matching_loss(net, b, state, cfg, torch.Generator().manual_seed(0),
                            Guidance(GuidanceConfig(enabled=True, weight=0.5), op, stats))
    assert off.guidance is None and on.guidance is not None
    assert torch.isclose(on.loss, off.fm + 0.5 * on.guidance)
    on.loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters() if p.requires_grad
               and p.grad is not None)
    with pytest.raises(RuntimeError, match="no measurement operator"):
        Guidance(GuidanceConfig(enabled=True), None, stats)


def test_operator_import_is_guarded():
    from ysocensus.model import guidance
    assert callable(guidance.load_operator)


def test_guidance_leaves_out_the_disk_bands_by_default():
    b, op, stats = _guidance_batch()
    state = posterior_states(b["measured"])
    lat_idx = torch.arange(N_THETA).expand(16, N_THETA)
    lat_ok = torch.ones(16, N_THETA, dtype=torch.bool)
    x1 = b["values"][:, None, :N_THETA].expand(16, 2, N_THETA)
    t, w = torch.ones(16, 2), torch.ones(16)
    b["mags"][:, 9] += 5.0  # a W4 excess of 5 mag (a disk), which the operator does not model
    default = Guidance(GuidanceConfig(enabled=True, weight=1.0), op, stats)
    assert GuidanceConfig().exclude_bands == ("w3mpro", "w4mpro")
    assert float(default.loss(x1, t, b, state, lat_idx, lat_ok, w)) < 1e-6
    every = Guidance(GuidanceConfig(enabled=True, weight=1.0, exclude_bands=()), op, stats)
    assert float(every.loss(x1, t, b, state, lat_idx, lat_ok, w)) > 1.0
    with pytest.raises(ValueError, match="exclude_bands.*w5mpro"):
        GuidanceConfig(exclude_bands=("w5mpro",))


def test_row_groups_are_contiguous_homogeneous_and_cover_the_batch():
    from ysocensus.model.flow import FEW_LATENT, OBSERVED_BUCKETS, row_groups
    from ysocensus.model.masks import MaskMix, sample_condition_states
    from ysocensus.model.tokens import LATENT, is_observed

    b = random_batch(400, seed=11)
    state = sample_condition_states(b["measured"], MaskMix(), torch.Generator().manual_seed(12))
    order, groups = row_groups(state)
    assert order is not None and sorted(order.tolist()) == list(range(400))  # a permutation
    s = state[order]
    assert groups[0].start == 0 and groups[-1].stop == 400
    assert all(a.stop == c.start for a, c in zip(groups[:-1], groups[1:]))
    n_lat, n_obs = (s == LATENT).sum(1), is_observed(s).sum(1)
    bucket = torch.bucketize(n_obs, torch.as_tensor(OBSERVED_BUCKETS))
    for g in groups:
        assert len(set((n_lat[g] > FEW_LATENT).tolist())) == 1 and len(set(bucket[g].tolist())) == 1
    assert len(groups) > 2
