"""ODE solvers for sampling and the exact-divergence log density (time convention: ``flow``).

- ``integrate``: fixed-step ``euler``, ``heun`` or ``midpoint`` with ``n_steps`` steps from t = 0 (noise) to
  t = 1 (data), spaced by ``time_grid`` (denser towards the data end), or ``rk45``, an adaptive reference through ``scipy.integrate.solve_ivp``. Batched over
  stars × samples: the state is [B, S, L] and the observation encoding (``network.ObservationCache``) is
  computed once per star and reused by every sample and step (``full_sequence=True`` instead runs the
  network as a plain full-sequence Transformer every step: same numbers, for tests and benchmarks).
- ``log_prob``: log density at data-end points by integrating dx/dt = v and d(log p)/dt = −div v back to
  the Gaussian at t = 0; the divergence is exact (one backward pass per latent dimension).

Calibration, not loss, judges a solver: Euler with few steps gives over-confident posteriors, and so does midpoint
with few uniform steps once posteriors are parallax-sharp; a grid denser towards the data end (``time_grid``) follows
the contraction at the same cost (measured: ``docs/measurements.md``, section ``ysocensus.model.sampler``).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from ysocensus.model.anchors import features, from_anchored, latent_map, to_anchored
from ysocensus.model.network import FlowTransformer, ObservationCache
from ysocensus.model.posterior_field import all_theta_latent
from ysocensus.model.tokens import N_THETA

METHODS = ("euler", "heun", "midpoint", "rk45")


@dataclass
class Conditioning:
    """Everything about a batch of stars the velocity field needs besides (x_t, t)."""

    values: torch.Tensor
    logsig: torch.Tensor
    sky: torch.Tensor
    state: torch.Tensor
    lat_idx: torch.Tensor
    lat_ok: torch.Tensor
    cache: ObservationCache | None = None
    #: the latent slots' measurement anchors (``anchors.MeasurementAnchors.affine``): the flow runs in
    #: y = (θ − c) / s; None = c 0, s 1
    anchor_c: torch.Tensor | None = None
    anchor_s: torch.Tensor | None = None
    prepared: bool = False  # ``prepare`` has run (the affine head's map, if any, is in anchor_c/anchor_s)

    @property
    def anchor_features(self):
        return None if self.anchor_c is None else features(self.anchor_c, self.anchor_s)


def prepare(net: FlowTransformer, cond: Conditioning) -> Conditioning:
    """Encode the observations once (``cond.cache``) and, for a network with an affine head, set the latent
    slots' per-star map (c, s) from it (the flow then runs in y = (θ − c) / s; ``flow``)."""
    # any object with encode/decode is a velocity field here (tests use doubles); only a FlowTransformer built
    # with the head has a map to set, and only then is anything encoded here (velocity_fn encodes otherwise)
    if cond.prepared or not getattr(getattr(net, "config", None), "affine_head", False):
        return cond
    if cond.cache is None:
        cond.cache = net.encode(cond.values, cond.logsig, cond.sky, cond.state)
    anchor = None if cond.anchor_c is None else (cond.anchor_c, cond.anchor_s)
    _, (cond.anchor_c, cond.anchor_s) = latent_map(net, cond.cache, cond.lat_idx, cond.lat_ok, anchor)
    cond.prepared = True
    return cond


def velocity_fn(net: FlowTransformer, cond: Conditioning, full_sequence: bool = False, field: bool = False,
                precision: str = "float32"):
    """f(x [B,S,L], t float) → v [B,S,L]; encodes the observations once unless ``full_sequence``. ``field``: the
    network's posterior field (``posterior_field``) instead of its Transformer decoder; every row must have
    exactly θ latent."""
    if not full_sequence and cond.cache is None:
        cond.cache = net.encode(cond.values, cond.logsig, cond.sky, cond.state)
    if field:
        return _field_fn(net, cond, precision)
    kw = {} if cond.anchor_c is None else {"anchor": cond.anchor_features}

    def f(x, t):
        tt = torch.full((1, 1), float(t), dtype=x.dtype, device=x.device)
        if full_sequence:
            return net.forward_full(cond.values, cond.logsig, cond.sky, cond.state, x, tt,
                                    cond.lat_idx, cond.lat_ok, **kw)
        return net.decode(cond.cache, x, tt, cond.lat_idx, cond.lat_ok, **kw)

    return f


@contextmanager
def _one_thread():
    """Run the block on one CPU thread. Why: the posterior field's per-star conditioning is a matrix product
    of a few rows ([stars, 320] × [320, 128]); with 2 threads the CPU kernel splits it differently from 1 and
    30 of 800 stars came out different in the last bits, so a star's samples depended on the thread count. It
    runs once per star, so one thread costs nothing measurable."""
    n = torch.get_num_threads()
    if n == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _field_fn(net: FlowTransformer, cond: Conditioning, precision: str = "float32"):
    pf = getattr(net, "posterior_field", None)
    if pf is None:
        raise ValueError("this network has no posterior field (train.network.posterior_field); sample with the "
                         "Transformer (train.sampling.field: transformer)")
    if not bool(all_theta_latent(cond.lat_idx, cond.lat_ok).all()):
        raise ValueError("the posterior field samples the all-θ-latent posterior only; these rows have other "
                         "latent slots (use the Transformer)")
    feat = cond.anchor_features
    with _one_thread():  # a few-row GEMM (once per star) that 2 threads split differently from 1
        h = pf.condition(cond.cache.context, None if feat is None else feat[:, :N_THETA])
    c, s = (None, None) if feat is None else (cond.anchor_c[:, :N_THETA], cond.anchor_s[:, :N_THETA])

    return pf.velocity(h, c, s, precision)


def time_grid(n_steps: int, power: float = 1.0, t0: float = 0.0, t1: float = 1.0) -> list[float]:
    """Step boundaries from t0 to t1, denser towards the data end (t = 1) for ``power`` > 1:
    t_k = 1 − (1 − k/n)^power on [0, 1], mapped onto [t0, t1].

    Why: for a posterior of width s (standardised) the straight-path velocity contracts at a rate up to
    ~1/(2s) in the last ~s of time, so uniform steps of 1/n over-contract sharp posteriors (a parallax to
    1 %: s ≈ 0.02) and make them over-confident; steps that shrink towards t = 1 follow the contraction."""
    u = 1.0 - (1.0 - np.arange(n_steps + 1) / n_steps) ** power
    return [float(t0 + (t1 - t0) * v) for v in u]


def integrate(f, x, n_steps: int, method: str, t0: float = 0.0, t1: float = 1.0, power: float = 1.0):
    """Fixed-step integration of dx/dt = f(x, t) from t0 to t1 on ``time_grid(n_steps, power)``."""
    if method == "rk45":
        return _solve_ivp(f, x, t0, t1)
    if method not in METHODS:
        raise ValueError(f"unknown ODE method {method!r}; one of {METHODS}")
    grid = time_grid(n_steps, power, t0, t1) if t1 > t0 else time_grid(n_steps, power, t1, t0)[::-1]
    for t, t_next in zip(grid[:-1], grid[1:]):
        dt = t_next - t
        if method == "euler":
            x = x + dt * f(x, t)
        elif method == "midpoint":
            x = x + dt * f(x + 0.5 * dt * f(x, t), t + 0.5 * dt)
        else:  # heun
            k1 = f(x, t)
            k2 = f(x + dt * k1, t + dt)
            x = x + 0.5 * dt * (k1 + k2)
    return x


def _solve_ivp(f, x, t0, t1, rtol=1e-5, atol=1e-6):
    from scipy.integrate import solve_ivp

    shape, dtype = x.shape, x.dtype

    def rhs(t, y):
        with torch.no_grad():
            v = f(torch.as_tensor(y, dtype=dtype, device=device).view(shape), t)
        return v.reshape(-1).double().cpu().numpy()

    device = x.device
    sol = solve_ivp(rhs, (t0, t1), x.reshape(-1).double().cpu().numpy(), method="RK45", rtol=rtol, atol=atol)
    if not sol.success:
        raise RuntimeError(f"adaptive ODE solve failed: {sol.message}")
    return torch.as_tensor(sol.y[:, -1], dtype=dtype, device=device).view(shape)


@torch.no_grad()
def sample(net: FlowTransformer, cond: Conditioning, n_samples: int, n_steps: int = 4, method: str = "midpoint",
           generator: torch.Generator | None = None, noise: torch.Tensor | None = None,
           full_sequence: bool = False, time_power: float = 1.0, field: bool = False,
           precision: str = "float32") -> torch.Tensor:
    """Data-end samples [B, S, L] of the latent tokens (standardised model space); padded slots are 0.
    ``time_power``: step spacing of the fixed-step solvers (``time_grid``); ``field``: integrate the posterior
    field (``velocity_fn``), its trunk in ``precision`` (``posterior_field.PRECISIONS``)."""
    prepare(net, cond)
    f = velocity_fn(net, cond, full_sequence, field, precision)
    return _transport(f, cond, (cond.anchor_c, cond.anchor_s), n_samples, n_steps, method, generator, noise,
                      time_power)


def _transport(f, cond: Conditioning, anchor, n_samples, n_steps, method, generator, noise, time_power):
    """Noise [B, S, L] (drawn, or given) integrated through the field f of the coordinates y = (θ − c) / s of
    ``anchor`` (c, s) = (None, None) for θ itself, and mapped back to θ."""
    B, L = cond.lat_idx.shape
    if noise is None:  # drawn on the CPU so that a seed gives the same samples on every device
        noise = torch.randn(B, n_samples, L, generator=generator, dtype=cond.values.dtype)
    noise = noise.to(cond.values.device)
    x = noise * cond.lat_ok[:, None].to(noise.dtype)
    x = integrate(f, x, n_steps, method, power=time_power)
    if anchor[0] is not None:
        x = from_anchored(x, *anchor)
    return x * cond.lat_ok[:, None].to(x.dtype)


def member_map(cond: Conditioning) -> tuple[torch.Tensor, torch.Tensor]:
    """A network's per-star map (c, s) [B, L] for ``cond`` (``prepare``d); c 0, s 1 where it has none."""
    c = torch.zeros_like(cond.lat_ok, dtype=cond.values.dtype) if cond.anchor_c is None else cond.anchor_c
    return c, torch.ones_like(c) if cond.anchor_s is None else cond.anchor_s


def consensus_map(conds) -> tuple[torch.Tensor, torch.Tensor]:
    """The common coordinates of several networks' flows for the same stars: c̄ the mean of their per-star
    centres, s̄ the geometric mean of their scales ([B, L] each; ``member_map``)."""
    cs, ss = zip(*(member_map(c) for c in conds))
    return torch.stack(cs).mean(0), torch.exp(torch.stack([torch.log(s) for s in ss]).mean(0))


def consensus_fn(fields, conds, common):
    """The mean velocity of several networks' flows, in common coordinates ȳ = (θ − t c̄) / s̄ (``consensus_map``).

    Network k runs its flow in y_k from N(0, 1) to its posterior, θ = c_k + s_k y_k. Read through the map
    θ = t c_k + g_k(t) y_k, g_k(t) = (1 − t) s̄ + t s_k (its own map at t = 1, s̄ y_k at t = 0), every network's flow
    starts from the same noise N(0, s̄²) in θ, with velocity u_k = c_k + (s_k − s̄) y_k + g_k(t) v_k(y_k, t). The
    consensus integrates the mean of the u_k: the networks are K estimates of one velocity field, and their mean
    averages their independent errors (as ensembles of score models do), where the mixture of their posteriors
    adds their disagreement to each one's width. Networks whose scales agree share the θ-space path
    (1 − t) s̄ z + t θ_1 of flow matching, so the mean of exact fields is exact; scales that differ by δ move the
    paths apart by ~t(1 − t) δ of the posterior's width."""
    c_bar, s_bar = common[0][:, None], common[1][:, None]  # [B, 1, L]
    maps = [tuple(m[:, None] for m in member_map(c)) for c in conds]

    def f(y, t):
        theta = t * c_bar + s_bar * y
        u = torch.zeros_like(y)
        for fk, (ck, sk) in zip(fields, maps):
            g = (1.0 - t) * s_bar + t * sk
            yk = (theta - t * ck) / g
            u = u + ck + (sk - s_bar) * yk + g * fk(yk, t)
        return (u / len(fields) - c_bar) / s_bar

    return f


@torch.no_grad()
def sample_consensus(nets, conds, n_samples: int, n_steps: int = 4, method: str = "midpoint",
                     generator: torch.Generator | None = None, noise: torch.Tensor | None = None,
                     full_sequence: bool = False, time_power: float = 1.0, field: bool = False,
                     precision: str = "float32") -> torch.Tensor:
    """``sample`` with the consensus field of several networks (``consensus_fn``), one ``Conditioning`` of the same
    stars per network; with one network, exactly ``sample``."""
    if len(nets) == 1:
        return sample(nets[0], conds[0], n_samples, n_steps, method, generator, noise, full_sequence, time_power,
                      field, precision)
    f, common = _consensus(nets, conds, full_sequence, field, precision)
    return _transport(f, conds[0], common, n_samples, n_steps, method, generator, noise, time_power)


def _consensus(nets, conds, full_sequence=False, field=False, precision="float32"):
    """The consensus field of ``nets`` for ``conds`` (each ``prepare``d here) and its common map."""
    for net, cond in zip(nets, conds):
        prepare(net, cond)
    common = consensus_map(conds)
    fields = [velocity_fn(n, c, full_sequence, field, precision) for n, c in zip(nets, conds)]
    return consensus_fn(fields, conds, common), common


def _divergence(f, x, t, ok):
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        v = f(x, t)
        div = torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)
        L = x.shape[-1]
        for i in range(L):
            (g,) = torch.autograd.grad(v[..., i].sum(), x, retain_graph=i < L - 1)
            div = div + g[..., i] * ok[..., i]
    return v.detach() * ok, div.detach()


def log_prob(net: FlowTransformer, cond: Conditioning, x1: torch.Tensor, n_steps: int = 32,
             method: str = "midpoint", field: bool = False) -> torch.Tensor:
    """log q(x1 | observation) [B, S] in standardised model space of the latent slots, of the Transformer's
    flow or (``field``) of the posterior field's.

    Integrates from t = 1 back to t = 0 with the exact divergence; ``method`` euler, midpoint or rk45.
    Anchored slots are integrated in y = (x1 − c) / s, and log q(x1) = log q(y) − Σ log s.
    """
    prepare(net, cond)
    return _log_density(velocity_fn(net, cond, field=field), cond, (cond.anchor_c, cond.anchor_s), x1, n_steps,
                        method)


def log_prob_consensus(nets, conds, x1: torch.Tensor, n_steps: int = 32, method: str = "midpoint",
                       field: bool = False) -> torch.Tensor:
    """``log_prob`` of the consensus flow of several networks (``consensus_fn``); with one network, ``log_prob``."""
    if len(nets) == 1:
        return log_prob(nets[0], conds[0], x1, n_steps, method, field)
    f, common = _consensus(nets, conds, field=field)
    return _log_density(f, conds[0], common, x1, n_steps, method)


def _log_density(f, cond: Conditioning, anchor, x1, n_steps, method):
    ok = cond.lat_ok[:, None].expand(x1.shape).to(x1.dtype)
    log_jac = 0.0
    if anchor[0] is not None:
        x1 = to_anchored(x1, *anchor)
        log_jac = -(torch.log(anchor[1])[:, None] * ok).sum(-1)
    B, S, L = x1.shape

    def aug(z, t):
        x = z[..., :L]
        v, div = _divergence(f, x, t, ok)
        return torch.cat([v, div[..., None]], -1)

    z = torch.cat([x1 * ok, torch.zeros(B, S, 1, dtype=x1.dtype, device=x1.device)], -1)
    z = integrate(aug, z, n_steps, method, t0=1.0, t1=0.0)  # rk45: the divergence enables grad itself
    x0, int_div = z[..., :L], z[..., L]
    # integrating backwards accumulated ∫_1^0 div dt = −∫_0^1 div dt
    n_lat = ok.sum(-1)
    log_p0 = -0.5 * (x0 ** 2 * ok).sum(-1) - 0.5 * n_lat * math.log(2 * math.pi)
    return log_p0 + int_div + log_jac


def batches(n_stars: int, n_samples: int, rows_per_batch: int = 4096, n_observed=None):
    """Stars per network call so that stars × samples ≈ rows_per_batch (the sweet spot on CPU): slices, or, with
    ``n_observed`` [n_stars] (observed tokens per star), index arrays of stars with the same count.

    The encoder packs a call's observed tokens to the call's largest count, and attention over a longer padded
    sequence rounds differently in the last bit; grouping by count makes a star's numbers independent of the
    other stars it is sampled with (the same bytes at any batch size)."""
    step = max(1, rows_per_batch // max(n_samples, 1))
    if n_observed is None:
        for i in range(0, n_stars, step):
            yield slice(i, min(i + step, n_stars))
        return
    n_observed = np.asarray(n_observed)
    order = np.argsort(n_observed, kind="stable")
    for count in np.unique(n_observed):
        same = order[n_observed[order] == count]
        for i in range(0, same.size, step):
            yield same[i:i + step]


def as_numpy(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy()
