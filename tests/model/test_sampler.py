"""ODE solvers against the adaptive reference, and the exact-divergence log density on a known flow."""
import math

import torch

from model_helpers import random_batch
from ysocensus.model import sampler
from ysocensus.model.masks import posterior_states
from ysocensus.model.network import FlowTransformer, NetworkConfig, latent_slots


def _cond(B=6):
    torch.manual_seed(0)
    # few time frequencies: an untrained net with high ones oscillates in t faster than a few steps resolve
    net = FlowTransformer(NetworkConfig(dim=16, latent_dim=16, heads=2, latent_heads=2, layers=1, time_frequencies=2)).eval()
    b = random_batch(B, seed=2)
    state = posterior_states(b["measured"])
    li, lo = latent_slots(state)
    return net, sampler.Conditioning(b["values"], b["logsig"], b["sky"], state, li, lo)


def test_fixed_step_solvers_converge_to_the_adaptive_reference():
    net, cond = _cond()
    noise = torch.randn(6, 5, 5, generator=torch.Generator().manual_seed(1))
    ref = sampler.sample(net, cond, 5, method="rk45", noise=noise)
    errs = {}
    for m in ("euler", "midpoint", "heun"):
        errs[m] = [float((sampler.sample(net, cond, 5, n, m, noise=noise) - ref).abs().max()) for n in (4, 32)]
        assert errs[m][1] < errs[m][0]
    assert errs["midpoint"][1] < 1e-3 and errs["heun"][1] < 1e-3 and errs["euler"][1] < 5e-2


class _Affine(torch.nn.Module):
    """TEST DOUBLE velocity field v = a x + c (the flow of N(0,1) → N(c', s²) for a straight path)."""

    def __init__(self, s, m):
        super().__init__()
        self.s, self.m = s, m

    def decode(self, cache, x, t, lat_idx, lat_ok):
        # x_t = (1 - t + t s) x0 + t m  ⇒  v = (s - 1) x0 + m = (s - 1)(x - t m)/(1 - t + t s) + m
        k = 1 - t + t * self.s
        return (self.s - 1) * (x - t * self.m) / k + self.m

    def encode(self, *a):
        return None


def test_log_prob_is_exact_for_a_gaussian_flow():
    _, cond = _cond(3)
    s, m = 0.5, 1.5
    net = _Affine(s, m)
    cond.cache = object()  # nothing to encode
    x1 = torch.randn(3, 4, 5)
    for method, n in (("midpoint", 64), ("rk45", 0)):
        lp = sampler.log_prob(net, cond, x1, n_steps=n or 1, method=method)
        exact = (-0.5 * ((x1 - m) / s) ** 2 - math.log(s) - 0.5 * math.log(2 * math.pi)).sum(-1)
        assert torch.allclose(lp, exact, atol=2e-3), (method, (lp - exact).abs().max())


def test_time_grid_ends_and_spacing():
    from ysocensus.model.sampler import time_grid

    g = time_grid(4, 2.0)
    assert g[0] == 0.0 and g[-1] == 1.0 and len(g) == 5
    steps = [b - a for a, b in zip(g[:-1], g[1:])]
    assert all(x > y for x, y in zip(steps[:-1], steps[1:]))  # denser towards the data end
    assert time_grid(4, 1.0) == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_data_end_dense_grid_keeps_a_sharp_posterior_width():
    # Exact straight-path velocity from N(0, 1) to a Gaussian posterior N(mu, s^2) (sigma_min = 0):
    # x_t ~ N(t mu, (1-t)^2 + t^2 s^2), v = mu + (t s^2 - (1 - t)) / var_t * (x - t mu). With s = 0.05 (a
    # parallax-limited distance in standardised units) midpoint on 4 uniform steps over-contracts; the
    # power-2 grid at the same cost keeps the width far better, and many steps converge to s.
    from ysocensus.model.sampler import integrate

    mu, s = 0.3, 0.05

    def f(x, t):
        return mu + (t * s * s - (1 - t)) / ((1 - t) ** 2 + t * t * s * s) * (x - t * mu)

    x0 = torch.randn(100_000, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ratio = {p: float(integrate(f, x0, 4, "midpoint", power=p).std()) / s for p in (1.0, 2.0)}
    assert ratio[1.0] < 0.6  # uniform steps: over-confident
    assert abs(ratio[2.0] - 1) < 0.5 * abs(ratio[1.0] - 1)
    assert abs(float(integrate(f, x0, 64, "midpoint", power=2.0).std()) / s - 1) < 0.02


def _gaussian_field(mu, sigma, c, s):
    """The exact straight-path velocity in y = (θ − c) / s from N(0, 1) to θ ~ N(mu, sigma²) per dimension
    (tensors [L]): y_t = (1 − t) z + t y_1 has mean t m and variance (1 − t)² + t² v, m = (mu − c) / s,
    v = (sigma / s)², and v(y, t) = m + (t v − (1 − t)) / ((1 − t)² + t² v) · (y − t m)."""
    m, v = (mu - c) / s, (sigma / s) ** 2

    def f(y, t):
        return m + (t * v - (1.0 - t)) / ((1.0 - t) ** 2 + t ** 2 * v) * (y - t * m)

    return f


def _anchored(c, s, B=1):
    lat_idx = torch.arange(c.numel())[None].expand(B, -1)
    return sampler.Conditioning(torch.zeros(B, 1), torch.zeros(B, 1), torch.zeros(B, 4), torch.zeros(B, 1),
                                lat_idx, torch.ones_like(lat_idx, dtype=torch.bool),
                                anchor_c=c[None].expand(B, -1).clone(), anchor_s=s[None].expand(B, -1).clone())


def _consensus_samples(fields, conds, n=4000, seed=0):
    common = sampler.consensus_map(conds)
    z = torch.randn(1, n, common[0].shape[1], generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    y = sampler.integrate(sampler.consensus_fn(fields, conds, common), z, 1, "rk45")
    return (common[0][:, None] + common[1][:, None] * y)[0], z[0]


def test_consensus_of_exact_fields_with_other_centres_is_the_exact_flow():
    # three networks that learnt the same posterior exactly, each in its own per-star centre (same scale): their
    # θ-space paths (1 − t) s z + t θ_1 coincide, so the mean field is the exact one and carries each noise draw
    # to the optimal-transport image mu + sigma z
    mu, sigma = torch.tensor([0.3, -1.0], dtype=torch.float64), torch.tensor([0.05, 0.4], dtype=torch.float64)
    s = torch.tensor([0.06, 0.5], dtype=torch.float64)
    cs = [mu + d * sigma for d in (-0.5, 0.0, 0.7)]
    theta, z = _consensus_samples([_gaussian_field(mu, sigma, c, s) for c in cs], [_anchored(c, s) for c in cs])
    torch.testing.assert_close(theta, mu + sigma * z, rtol=0, atol=1e-4 * float(sigma.max()))


def test_consensus_averages_the_networks_errors_and_tolerates_other_scales():
    # two networks whose posteriors are off by ∓0.3σ in the mean, on maps whose scales differ by ±15 %: their
    # consensus is centred on the truth and as wide as it (each network alone is as wide, but off-centre), where
    # their mixture would be 4 % wider
    mu, sigma = torch.tensor([0.0], dtype=torch.float64), torch.tensor([0.1], dtype=torch.float64)
    fields, conds = [], []
    for bias, scale in ((-0.3, 0.85), (0.3, 1.15)):
        c, s = mu + 0.2 * sigma, sigma * scale
        fields.append(_gaussian_field(mu + bias * sigma, sigma, c, s))
        conds.append(_anchored(c, s))
    theta, _ = _consensus_samples(fields, conds, n=20000)
    assert abs(float(theta.mean() - mu)) < 0.02 * float(sigma)
    assert abs(float(theta.std()) / float(sigma) - 1.0) < 0.02


def test_consensus_of_one_network_is_the_network():
    cfg = NetworkConfig(dim=16, latent_dim=16, heads=2, latent_heads=2, layers=1)
    torch.manual_seed(0)
    net = FlowTransformer(cfg).eval()
    b = random_batch(6, seed=3)
    state = posterior_states(b["measured"])
    lat_idx, lat_ok = latent_slots(state, 5)

    def cond():
        return sampler.Conditioning(b["values"], b["logsig"], b["sky"], state, lat_idx, lat_ok)

    noise = torch.randn(6, 8, lat_idx.shape[1], generator=torch.Generator().manual_seed(1))
    one = sampler.sample(net, cond(), 8, 3, "midpoint", noise=noise)
    torch.testing.assert_close(sampler.sample_consensus([net], [cond()], 8, 3, "midpoint", noise=noise), one,
                               rtol=0, atol=0)
    # two copies of it: the same field twice, the same flow (up to the rounding of the common map)
    torch.testing.assert_close(sampler.sample_consensus([net, net], [cond(), cond()], 8, 3, "midpoint", noise=noise),
                               one, rtol=1e-5, atol=1e-5)
