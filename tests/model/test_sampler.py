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
