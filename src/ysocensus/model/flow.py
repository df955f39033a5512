"""Flow matching with straight (optimal-transport) paths.

Time convention (the only place it is written down; every other module follows it):

    t = 0 is the noise end, x_0 ~ N(0, I) in standardised model space;
    t = 1 is the data end, x_1 = the latent tokens' true values.
    x_t = (1 - (1 - σ_min) t) x_0 + t x_1,        u_t = dx_t/dt = x_1 - (1 - σ_min) x_0.

Sampling integrates dx/dt = v(x_t, t | observation) from t = 0 to t = 1. The one-step estimate of the clean
sample from (x_t, v) is x̂_1 = (1 - (1 - σ_min) t) v + (1 - σ_min) x_t (exact when v = u_t).

Time sampling for training: ``uniform`` (t ~ U(0, 1)) or ``power_law`` (density ∝ t^α, α ≥ 0, more weight
towards the data end where posteriors are narrow; α = 0 is uniform).

Per-star affine coordinates. With measurement anchors (``anchors``) or the network's affine head
(``network.affine_head``) the flow runs, per latent θ slot, in y = (θ − c) / s with (c, s) depending only on
the observation, an exact change of variables. The affine head's (c, log s) is a Gaussian approximation of
each θ's posterior read out of the observation encoding, trained by its negative log-likelihood of the true θ
(added to the loss with weight 1); the flow loss sees (c, s) with gradients stopped, so the flow cannot
lower its loss by inflating s. The map is applied only where the head finds the posterior sharp
(``network.affine_widths``: in full for s ≤ s_full, not at all for s ≥ s_off) and, optionally, only on rows with a
LAMOST label (``network.affine_rows``); elsewhere c = 0, s = 1. With both on, a measurement anchor replaces the
head on its slots. The flow then learns a residual of width ≈ 1 for every star, whether the data pin θ to 1 % of
its prior range or leave it at the prior.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from ysocensus.model.anchors import features, from_anchored, latent_map, to_anchored
from ysocensus.model.network import FlowTransformer, affine_theta_slots, latent_slots
from ysocensus.model.posterior_field import all_theta_latent
from ysocensus.model.tokens import LATENT, N_THETA, OBSERVED, is_observed


@dataclass
class FlowConfig:
    sigma_min: float = 1e-3
    time_sampling: str = "uniform"  # uniform | power_law
    time_power: float = 0.5  # α of power_law
    draws_per_example: int = 4  # (t, noise) draws per example and encoder pass
    #: the posterior field's own (t, noise) draws per example: it costs ~1/30 of the Transformer's latent stream
    #: per draw, so it can see many more of them for the same encoder pass
    field_draws_per_example: int = 16

    def to_dict(self):
        return asdict(self)


def sample_time(shape, cfg: FlowConfig, generator=None, device=None) -> torch.Tensor:
    u = torch.rand(shape, generator=generator, device=device)
    if cfg.time_sampling == "uniform":
        return u
    if cfg.time_sampling == "power_law":
        return u ** (1.0 / (1.0 + cfg.time_power))
    raise ValueError(f"flow.time_sampling: unknown {cfg.time_sampling!r} (uniform or power_law)")


def interpolate(x0, x1, t, sigma_min: float):
    """x_t and the target velocity u_t on the straight path (t broadcast against the last axis)."""
    t = t[..., None]
    return (1 - (1 - sigma_min) * t) * x0 + t * x1, x1 - (1 - sigma_min) * x0


def clean_estimate(x_t, v, t, sigma_min: float):
    """One-step estimate x̂_1 of the data-end sample from (x_t, v) at time t."""
    t = t[..., None]
    return (1 - (1 - sigma_min) * t) * v + (1 - sigma_min) * x_t


@dataclass
class LossTerms:
    loss: torch.Tensor
    fm: torch.Tensor
    guidance: torch.Tensor | None
    x1_hat: torch.Tensor | None = None
    affine: torch.Tensor | None = None  # the affine head's Gaussian NLL (network.affine_head)
    posterior_field: torch.Tensor | None = None  # the posterior field's flow-matching loss (network.posterior_field)


#: rows are grouped by latent count (≤ this: the posterior masks) and by observed count (buckets split at
#: these: e.g. Gaia alone, Gaia + 2MASS + WISE, with LAMOST or some θ)
FEW_LATENT = N_THETA
OBSERVED_BUCKETS = (6, 12)


def row_groups(state: torch.Tensor):
    """Rows ordered by group and the groups as slices of that order: (order or None, [slices]).

    The encoder pads each row to its group's largest observed count and the decoder to its largest latent
    count, so a single group would make every row pay for the rare wide ones (LAMOST stars, predict-x and
    random-subset masks). Contiguous groups keep every per-group tensor a view (no gathers, and none in the
    backward pass)."""
    n_lat = (state == LATENT).sum(1)
    n_obs = is_observed(state).sum(1)
    bounds = torch.as_tensor(OBSERVED_BUCKETS, device=state.device)
    key = (n_lat > FEW_LATENT).long() * (len(OBSERVED_BUCKETS) + 1) + torch.bucketize(n_obs, bounds)
    counts = torch.bincount(key).tolist()
    edges = [0]
    for c in counts:
        if c:
            edges.append(edges[-1] + c)
    slices = [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]
    if len(slices) == 1:
        return None, [slice(None)]
    return torch.argsort(key, stable=True), slices


def _rows(batch: dict, rows, n: int) -> dict:
    """The batch's per-example tensors (first axis of length n) at ``rows``; anything else as it is."""
    return {k: (x[rows] if torch.is_tensor(x) and x.ndim and x.shape[0] == n else x) for k, x in batch.items()}


def flow_matching_loss(net: FlowTransformer, batch: dict, state: torch.Tensor, cfg: FlowConfig,
                       generator: torch.Generator | None = None, guidance=None, anchors=None) -> LossTerms:
    """Weighted flow-matching loss (+ optional guidance residual) for one batch of examples.

    ``batch``: token arrays as tensors (``tokens.TokenArrays.torch``); ``state`` [B, N] condition mask.
    The observation encoding runs once per example and is reused by ``cfg.draws_per_example`` (t, noise)
    draws. Only LATENT tokens enter the loss (missing ones never); ``batch["weight"]`` are importance
    weights (e.g. population weight / inclusion probability of a stratified training set). With
    ``anchors`` (``anchors.MeasurementAnchors``) anchored slots are learnt in their per-star coordinates y.
    """
    order, groups = row_groups(state)
    if order is not None:  # a permutation of the examples: the loss is a sum over them
        batch, state = _rows(batch, order, state.shape[0]), state[order]
    values, logsig, sky = batch["values"], batch["logsig"], batch["sky"]
    B = values.shape[0]
    K = cfg.draws_per_example
    w = batch.get("weight")
    w = torch.ones(B, dtype=values.dtype, device=values.device) if w is None else w.to(values.dtype)
    fm_sum, g_sum, a_sum = values.new_zeros(()), None, None
    field = getattr(net, "posterior_field", None)
    pf_sum, pf_w = values.new_zeros(()), values.new_zeros(())
    for sl in groups:
        st, wi, vals = state[sl], w[sl], values[sl]
        cache = net.encode(vals, logsig[sl], sky[sl], st)
        lat_idx, lat_ok = latent_slots(st)
        n = vals.shape[0]
        x1 = torch.gather(vals, 1, lat_idx)[:, None].expand(n, K, lat_idx.shape[1])
        anchor = None if anchors is None else anchors.affine(vals, logsig[sl], st, lat_idx, lat_ok)
        head, cmap = latent_map(net, cache, lat_idx, lat_ok, anchor)
        if head is not None:
            nll = affine_nll(x1[:, 0], *head, affine_theta_slots(cache, lat_idx, lat_ok))
            a_sum = (wi * nll).sum() + (0.0 if a_sum is None else a_sum)
        feat = None
        if cmap is not None:
            x1, feat = to_anchored(x1, *cmap), features(*cmap)
        x0 = torch.randn(x1.shape, generator=generator, device=values.device, dtype=values.dtype)
        t = sample_time((n, K), cfg, generator, values.device).to(values.dtype)
        x_t, u = interpolate(x0, x1, t, cfg.sigma_min)
        v = net.decode(cache, x_t, t, lat_idx, lat_ok, feat)
        ok = lat_ok[:, None].to(v.dtype)
        per_example = (((v - u) ** 2) * ok).sum((1, 2)) / (ok.sum((1, 2)).clamp(min=1) * K)
        fm_sum = fm_sum + (wi * per_example).sum()
        if field is not None:
            pf, wf = _posterior_field_loss(field, cache, x1[:, 0], lat_idx, lat_ok, feat, cmap, wi, cfg, generator)
            pf_sum, pf_w = pf_sum + pf, pf_w + wf
        if guidance is not None and guidance.enabled:
            x1_hat = clean_estimate(x_t, v, t, cfg.sigma_min)
            if cmap is not None:
                x1_hat = from_anchored(x1_hat, *cmap)
            gi = guidance.loss(x1_hat, t, _rows(batch, sl, B), st, lat_idx, lat_ok, wi) * wi.sum()
            g_sum = gi if g_sum is None else g_sum + gi
    total_w = w.sum().clamp(min=1e-12)
    fm = fm_sum / total_w
    loss, g, a = fm, None, None
    if g_sum is not None:
        g = g_sum / total_w
        loss = guidance.fm_weight * fm + guidance.weight * g
    if a_sum is not None:
        a = a_sum / total_w
        loss = loss + a
    pf = None
    if field is not None:
        pf = pf_sum / pf_w.clamp(min=1e-12)
        loss = loss + pf
    return LossTerms(loss, fm, g, affine=a, posterior_field=pf)


def _posterior_field_loss(field, cache, x1, lat_idx, lat_ok, feat, cmap, w, cfg: FlowConfig, generator=None):
    """(Σ w · loss, Σ w) of the posterior field (``posterior_field``) on the rows whose latent set is exactly
    θ: the same targets x1 [B, L] (in the per-star map's coordinates) and map as the Transformer's, with its own
    ``cfg.field_draws_per_example`` (t, noise) draws."""
    rows = all_theta_latent(lat_idx, lat_ok)
    if not bool(rows.any()):
        return w.new_zeros(()), w.new_zeros(())
    th = slice(0, N_THETA)
    n, K = int(rows.sum()), int(cfg.field_draws_per_example)
    x1 = x1[rows][:, None, th].expand(n, K, N_THETA)
    x0 = torch.randn(x1.shape, generator=generator, device=x1.device, dtype=x1.dtype)
    t = sample_time((n, K), cfg, generator, x1.device).to(x1.dtype)
    x_t, u = interpolate(x0, x1, t, cfg.sigma_min)
    cond = field.condition(cache.context[rows], None if feat is None else feat[rows][:, th])
    c, s = (None, None) if cmap is None else (cmap[0][rows][:, th], cmap[1][rows][:, th])
    per_example = ((field(cond, x_t, t, c, s) - u) ** 2).mean((1, 2))
    return (w[rows] * per_example).sum(), w[rows].sum()


def affine_nll(theta, c, s, slots) -> torch.Tensor:
    """Per-example Gaussian NLL (mean over the ``slots`` [B, L], the head's latent θ slots, constant dropped) of
    the true θ [B, L] under the affine head's N(c, s²) [B, L]; 0 for an example without such slots."""
    ok = slots.to(theta.dtype)
    z = (theta - c) / s
    per_slot = 0.5 * z * z + torch.log(s)
    return (per_slot * ok).sum(1) / ok.sum(1).clamp(min=1)


def is_latent(state: torch.Tensor) -> torch.Tensor:
    return state == LATENT


def fit_plain(net: FlowTransformer, batch: dict, mix, cfg: FlowConfig, steps: int, batch_size: int = 256,
              lr: float = 2e-3, seed: int = 0, guidance=None, extra: dict | None = None,
              anchors=None) -> list[float]:
    """A minimal plain-torch training loop on in-memory token tensors (tests, toy problems, ablations).

    ``batch``: dict of tensors over all examples (``TokenArrays.torch()`` plus, for guidance, the observed
    magnitudes); ``mix``: ``masks.MaskMix``. AdamW with cosine decay. Returns the loss history.
    """
    from ysocensus.model.masks import sample_condition_states

    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.05)
    n = batch["values"].shape[0]
    hist = []
    net.train()
    for _ in range(steps):
        idx = torch.randint(0, n, (batch_size,), generator=g)
        b = {k: v[idx] for k, v in batch.items()}
        state = sample_condition_states(b["measured"], mix, g, b.get("searched"))
        out = flow_matching_loss(net, b, state, cfg, g, guidance, anchors)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        hist.append(float(out.loss.detach()))
    net.eval()
    return hist
