"""A light velocity field for the production posterior: every θ latent, the observation encoded once.

The all-in-one Transformer (``network``) answers any conditional, but a sky-wide run asks one question a
billion times: p(θ | x) with all five θ latent. There, the Transformer's latent stream runs attention over
5 θ tokens and ~12 cached observed keys for every sample at every ODE step. This field replaces only that
part: the observation encoding (the Transformer's observed stream, computed once per star) is pooled into a
context vector, and a small MLP maps (y_t, t, context, the per-star affine map) to the velocity of all five θ
at once (as in the encoder + MLP flows of Wildberger et al. 2023, "Flow matching for scalable simulation-based
inference"; Lipman et al. 2023 for the loss). It is trained jointly with the Transformer, on the same (x_t, t,
u_t) draws of every training row whose latent set is exactly θ, so the two fields learn the same posterior, and
the context's first layer is computed once per star, not per sample or step.

Coordinates: the field runs in the same per-star affine coordinates as the Transformer (``flow``: y = (θ − c)/s
from the affine head and measurement anchors; c = 0, s = 1 where neither applies) and is told (c, log s), so
its samples map back to θ the same way and ``sampler.log_prob`` of the field is an exact density of its
samples.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ysocensus.model.tokens import N_THETA


class PosteriorField(nn.Module):
    """v(y_t, t | context, map) [B, S, N_THETA] for the all-θ-latent posterior.

    ``context_dim``: width of the pooled observation encoding; ``width`` × ``layers``: the MLP (``layers``
    linear maps of width ``width`` before the output); ``time_frequencies``: Fourier features of t."""

    def __init__(self, context_dim: int, width: int = 128, layers: int = 3, time_frequencies: int = 8):
        super().__init__()
        self.width, self.layers = int(width), int(layers)
        self.context = nn.Sequential(nn.LayerNorm(context_dim), nn.Linear(context_dim, width))
        self.map_in = nn.Linear(2 * N_THETA, width, bias=False)  # (c, log s) of each θ slot
        self.register_buffer("freqs", (2.0 ** torch.arange(time_frequencies)) * math.pi, persistent=False)
        self.time = nn.Linear(2 * time_frequencies, width, bias=False)
        self.y_in = nn.Linear(N_THETA, width, bias=False)
        hidden = []
        for _ in range(self.layers - 1):
            hidden += [nn.SiLU(), nn.Linear(width, width)]
        self.hidden = nn.Sequential(*hidden, nn.SiLU())
        self.out = nn.Linear(width, N_THETA)
        self.skip = nn.Parameter(torch.zeros(N_THETA))  # linear skip: v += skip · y_t

    def condition(self, context: torch.Tensor, map_features: torch.Tensor | None) -> torch.Tensor:
        """The per-star part of the first layer, [B, 1, width]: computed once per star and reused by every
        sample and ODE step. ``map_features`` [B, N_THETA, 2] (c, log s) or None (no map: zeros)."""
        h = self.context(context)
        if map_features is not None:
            h = h + self.map_in(map_features.reshape(map_features.shape[0], 2 * N_THETA))
        return h[:, None]

    def time_features(self, t: torch.Tensor) -> torch.Tensor:
        """[..., width] from t [...]; one row for every sample when t is [1, 1]."""
        a = t[..., None] * self.freqs
        return self.time(torch.cat([torch.sin(a), torch.cos(a)], -1))

    def forward(self, cond: torch.Tensor, y_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Velocity [B, S, N_THETA] from ``condition`` [B, 1, W], y_t [B, S, N_THETA], t [B, S] or [1, 1]."""
        h = cond + self.y_in(y_t) + self.time_features(t)
        return self.out(self.hidden(h)) + self.skip * y_t


def pooled_context(h: torch.Tensor, ok: torch.Tensor) -> torch.Tensor:
    """[B, 2d]: the mean and the max over a star's observed tokens' states h [B, N, d] (``ok`` [B, N] bool).
    Mean and max together keep both what every band says and what one band says loudly (e.g. a Li line)."""
    w = ok.to(h.dtype)[..., None]
    mean = (h * w).sum(1) / w.sum(1).clamp(min=1.0)
    mx = h.masked_fill(~ok[..., None], float("-inf")).amax(1)
    mx = torch.where(torch.isfinite(mx), mx, torch.zeros_like(mx))
    return torch.cat([mean, mx], -1)


def all_theta_latent(lat_idx: torch.Tensor, lat_ok: torch.Tensor) -> torch.Tensor:
    """[B] bool: rows whose latent slots are exactly θ in order (the posterior the field is for)."""
    if lat_idx.shape[1] < N_THETA:
        return torch.zeros(lat_idx.shape[0], dtype=torch.bool, device=lat_idx.device)
    first = (lat_idx[:, :N_THETA] == torch.arange(N_THETA, device=lat_idx.device)).all(1)
    return first & lat_ok[:, :N_THETA].all(1) & (lat_ok.sum(1) == N_THETA)
