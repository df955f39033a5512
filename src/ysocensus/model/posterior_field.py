"""A light velocity field for the production posterior: every θ latent, the observation encoded once.

The all-in-one Transformer (``network``) answers any conditional, but a sky-wide run asks one question a
billion times: p(θ | x) with all five θ latent. There, the Transformer's latent stream runs attention over
5 θ tokens and ~12 cached observed keys for every sample at every ODE step. This field replaces only that
part: the observation encoding (the Transformer's observed stream, computed once per star) is read out by one
learned query per θ (attention pooling over the observed tokens, so a sharp LAMOST label or parallax is not
averaged away among a dozen broad bands) into a context vector, and a small MLP maps (y_t, t, context, the per-star affine map) to the velocity of all five θ
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

import copy
import math

import torch
from torch import nn

from ysocensus.model.tokens import N_THETA

#: the precisions the field's MLP trunk can sample in (``sampling.field_precision``): bfloat16 runs the hidden
#: layers and the output on a CPU's bf16 matrix units (AMX, avx512_bf16) or a GPU's, the first layer, the skip and
#: the ODE state stay float32
PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` → bfloat16 where the device multiplies bf16 matrices natively (a CUDA GPU that supports it; a CPU
    with AMX tiles or avx512_bf16), else float32: emulated bf16 is slower than float32. Other values unchanged."""
    if precision != "auto":
        if precision not in PRECISIONS:
            raise ValueError(f"field precision must be auto or one of {tuple(PRECISIONS)}, not {precision!r}")
        return precision
    if torch.device(device).type == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    native = any(getattr(torch.cpu, f, lambda: False)() for f in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"))
    return "bfloat16" if native else "float32"


class PosteriorField(nn.Module):
    """v(y_t, t | context, map) [B, S, N_THETA] for the all-θ-latent posterior.

    ``dim``: width of the observed-token states; ``width`` × ``layers``: the MLP (``layers`` linear maps of
    width ``width`` before the output); ``heads``: of the readout; ``time_frequencies``: Fourier features of t."""

    def __init__(self, dim: int, width: int = 128, layers: int = 3, time_frequencies: int = 8, heads: int = 4):
        super().__init__()
        self.width, self.layers, self.heads = int(width), int(layers), int(heads)
        # the readout: one query per θ over the observed tokens' final states
        self.queries = nn.Parameter(torch.randn(N_THETA, dim) * dim ** -0.5)
        self.ln = nn.LayerNorm(dim)
        self.kv = nn.Linear(dim, 2 * dim)
        context_dim = N_THETA * dim
        self.context = nn.Sequential(nn.LayerNorm(context_dim), nn.Linear(context_dim, width))
        self.map_in = nn.Linear(2 * N_THETA, width, bias=False)  # (c, log s) of each θ slot
        self.register_buffer("freqs", (2.0 ** torch.arange(time_frequencies)) * math.pi, persistent=False)
        self.time = nn.Linear(2 * time_frequencies, width, bias=False)
        self.y_in = nn.Linear(N_THETA, width, bias=False)
        # the point in the common standardised θ coordinates, t·c + s·y_t (the Transformer is told the same):
        # the physics depends on θ, not on its offset from a per-star centre
        self.theta_in = nn.Linear(N_THETA, width, bias=False)
        hidden = []
        for _ in range(self.layers - 1):
            hidden += [nn.SiLU(), nn.Linear(width, width)]
        self.hidden = nn.Sequential(*hidden, nn.SiLU())
        self.out = nn.Linear(width, N_THETA)
        self.skip = nn.Parameter(torch.zeros(N_THETA))  # linear skip: v += skip · y_t

    def readout(self, h: torch.Tensor, ok: torch.Tensor) -> torch.Tensor:
        """[B, N_THETA·d]: the observed tokens' states h [B, N, d] (``ok`` [B, N] bool) read out by one query per θ
        (multi-head attention pooling); a star with nothing observed reads zeros."""
        B, N, d = h.shape
        H, dh = self.heads, d // self.heads
        k, v = self.kv(self.ln(h)).view(B, N, 2, H, dh).permute(2, 0, 3, 1, 4)  # [B, H, N, dh] each
        q = self.queries.view(N_THETA, H, dh).transpose(0, 1)  # [H, N_THETA, dh]
        s = torch.matmul(q * dh ** -0.5, k.transpose(-1, -2))  # [B, H, N_THETA, N]
        s = s.masked_fill(~ok[:, None, None, :], float("-inf"))
        p = torch.nan_to_num(torch.softmax(s, -1))  # all −inf (nothing observed): zeros
        out = torch.matmul(p, v)  # [B, H, N_THETA, dh]
        return out.permute(0, 2, 1, 3).reshape(B, N_THETA * d)

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

    def trunk(self, precision: str = "float32") -> tuple[nn.Module, nn.Module]:
        """(hidden layers, output layer) in ``precision`` (``PRECISIONS``): the module's own for float32, else a
        frozen copy, cached until the weights change (a training step or an EMA update bumps their version)."""
        if precision not in PRECISIONS:
            raise ValueError(f"field precision must be one of {tuple(PRECISIONS)}, not {precision!r}")
        dtype = PRECISIONS[precision]
        if dtype == torch.float32:
            return self.hidden, self.out
        key = (precision, self.out.weight.device, tuple(p._version for p in self.trunk_parameters()))
        cache = self.__dict__.setdefault("_trunk_cache", {})
        if key not in cache:
            cache.clear()
            hidden, out = (copy.deepcopy(m).to(dtype).requires_grad_(False) for m in (self.hidden, self.out))
            for m in hidden.modules():  # a sampling copy: no gradient ever flows through it
                if isinstance(m, nn.SiLU):
                    m.inplace = True
            cache[key] = (hidden, out)
        return cache[key]

    def velocity(self, cond: torch.Tensor, c: torch.Tensor | None = None, s: torch.Tensor | None = None,
                 precision: str = "float32"):
        """f(y_t [B, S, N_THETA], t float) → v, the same field as ``forward`` with the per-star parts folded once:
        y_in(y) + theta_in(t·c + s·y) = (W_y + W_θ diag s) y + t·W_θ c, so each evaluation makes one [S, N_THETA] ×
        [N_THETA, width] product per star instead of two linear maps and the θ coordinates. For sampling (no
        gradient needed); ``cond`` is ``condition``'s output."""
        w_y, w_t = self.y_in.weight, self.theta_in.weight  # [width, N_THETA]
        if c is None:
            m, wc = (w_y + w_t).t()[None], None  # [1, N_THETA, width]
        else:
            m = (w_y[None] + w_t[None] * s[:, None, :]).transpose(1, 2)  # [B, N_THETA, width]
            wc = (c[:, None, :] * w_t[None]).sum(-1)[:, None]  # [B, 1, width]: W_θ c, elementwise (no GEMM)
        hidden, out = self.trunk(precision)
        dtype = out.weight.dtype
        m_lp = m.to(dtype)  # the folded first layer in the trunk's precision: no [B, S, width] cast per step

        def f(y, t):
            base = cond + self.time_features(torch.full((1, 1), float(t), dtype=y.dtype, device=y.device))
            if wc is not None:
                base = base + float(t) * wc
            b = y.shape[0]
            h = torch.baddbmm(base.to(dtype).expand(b, -1, -1), y.to(dtype), m_lp.expand(b, -1, -1))
            return out(hidden(h)).to(y.dtype) + self.skip * y

        return f

    def trunk_parameters(self):
        return list(self.hidden.parameters()) + list(self.out.parameters())

    def forward(self, cond: torch.Tensor, y_t: torch.Tensor, t: torch.Tensor, c: torch.Tensor | None = None,
                s: torch.Tensor | None = None) -> torch.Tensor:
        """Velocity [B, S, N_THETA] from ``condition`` [B, 1, W], y_t [B, S, N_THETA], t [B, S] or [1, 1] and the
        per-star map (c, s) [B, N_THETA] (None: c = 0, s = 1). Training's path; sampling uses ``velocity``."""
        theta = y_t if c is None else t[..., None] * c[:, None] + s[:, None] * y_t
        h = cond + self.y_in(y_t) + self.theta_in(theta) + self.time_features(t)
        return self.out(self.hidden(h)) + self.skip * y_t


def all_theta_latent(lat_idx: torch.Tensor, lat_ok: torch.Tensor) -> torch.Tensor:
    """[B] bool: rows whose latent slots are exactly θ in order (the posterior the field is for)."""
    if lat_idx.shape[1] < N_THETA:
        return torch.zeros(lat_idx.shape[0], dtype=torch.bool, device=lat_idx.device)
    first = (lat_idx[:, :N_THETA] == torch.arange(N_THETA, device=lat_idx.device)).all(1)
    return first & lat_ok[:, :N_THETA].all(1) & (lat_ok.sum(1) == N_THETA)
