"""The all-in-one Transformer (Simformer-style) with cached observation keys and values.

Every variable is a token (``tokens``): value + variable-id + state + uncertainty embeddings. Attention
is structured so that the observation encoding is computed once per star:

- an OBSERVED token attends only to OBSERVED tokens;
- a LATENT token attends to OBSERVED and LATENT tokens;
- MISSING and DROPPED tokens are neither keys nor queries (which variables are MISSING is added to the
  always-observed sky token as a sum of per-variable "missing" embeddings, so the model conditions on
  what is absent).

Observed tokens therefore never see the latent state or the time: their hidden states and, layer by
layer, their keys and values depend only on the star. ``encode`` computes them once (the cache);
``decode`` runs only the latent tokens, [stars, samples, latent], against the cached keys/values at
every ODE step. ``forward_full`` is the same network run as a plain full-sequence Transformer (every token,
every step, a block attention mask); it gives the same output and exists for tests and the benchmark.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from ysocensus.model.posterior_field import PosteriorField
from ysocensus.model.tokens import (LATENT, MISSING, N_THETA, N_TOKENS, OBSERVED, SKY_INDEX, SURVEY_TOKENS,
                                    VALUE_ONLY, is_observed)

#: range of the affine head's log s (standardised θ): from parallax-sharp distances (s ≈ 0.01) to 2.7× the prior
LOG_S_MIN, LOG_S_MAX = -6.0, 1.0
#: the rows the affine head applies to (``NetworkConfig.affine_rows``): every row, or rows whose condition
#: observes a LAMOST spectrum (any of its labels)
AFFINE_ROWS = ("all", "lamost")


@dataclass
class NetworkConfig:
    dim: int = 64  # width of the observed-token stream (computed once per star)
    latent_dim: int = 32  # width of the latent-token stream (run at every ODE step for every sample)
    heads: int = 4  # heads of the observed stream
    latent_heads: int = 2  # heads of the latent stream
    layers: int = 3
    mlp_ratio: int = 2
    time_frequencies: int = 8
    #: a per-star Gaussian readout (c, log s) of every θ from the observation encoding; the flow then runs in
    #: y = (θ − c) / s (``affine_slots``; trained by its Gaussian NLL, see ``flow``)
    affine_head: bool = False
    #: which rows the head's map applies to (``AFFINE_ROWS``); elsewhere c = 0, s = 1 (the plain flow) and the
    #: head is not trained. ``lamost``: the spectroscopic stars, whose posteriors are sharp enough for a plain
    #: flow to learn them too wide on a laptop budget, while photometric ones are calibrated without it
    affine_rows: str = "all"
    #: (s_full, s_off): the head's map applies in full to θ slots whose head width s ≤ s_full, not at all where
    #: s ≥ s_off, log-linearly between (``affine_gate``); None: in full everywhere. Sharp posteriors need the
    #: map; broad ones (faint stars, photometry alone) are learnt as well without it
    affine_widths: tuple | None = None
    #: a light velocity field for the all-θ-latent posterior on the pooled observation encoding
    #: (``posterior_field``), trained jointly; the production sampler (``train.sampling.field``)
    posterior_field: bool = False
    posterior_field_width: int = 128
    posterior_field_layers: int = 3

    def __post_init__(self):
        if self.affine_rows not in AFFINE_ROWS:
            raise ValueError(f"network.affine_rows: {self.affine_rows!r} is not one of {list(AFFINE_ROWS)}")
        if self.affine_widths is not None:
            w = tuple(float(v) for v in self.affine_widths)
            if len(w) != 2 or not 0 < w[0] < w[1]:
                raise ValueError(f"network.affine_widths: {list(self.affine_widths)} must be [s_full, s_off] "
                                 "with 0 < s_full < s_off")
            self.affine_widths = w

    def to_dict(self):
        return asdict(self)


@dataclass
class ObservationCache:
    """Per-star encoder output for the latent stream: per layer, block-diagonal keys [B, dl, Hl·N] (scaled
    by 1/sqrt(dh)) and values [B, Hl·N, dl] of the observed tokens, and the additive key bias
    [B, 1, 1, 1, N] (0 for observed tokens, -inf otherwise)."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    obs_bias: torch.Tensor
    affine: torch.Tensor | None = None  # [B, N_THETA, 2]: the affine head's (c, raw log s) per θ (or None)
    affine_rows: torch.Tensor | None = None  # [B] bool: the rows the head's map applies to (``affine_rows``)
    context: torch.Tensor | None = None  # [B, N_THETA·dim]: the posterior field's readout (or None)

    def repeat(self, n: int) -> "ObservationCache":
        """Each star repeated n times (rows = star-major), for the full-sequence path."""
        r = lambda a: a.repeat_interleave(n, 0)  # noqa: E731
        opt = lambda a: None if a is None else r(a)  # noqa: E731
        return ObservationCache([r(k) for k in self.keys], [r(v) for v in self.values], r(self.obs_bias),
                                opt(self.affine), opt(self.affine_rows), opt(self.context))


def _mlp(d, ratio):
    return nn.Sequential(nn.Linear(d, ratio * d), nn.SiLU(), nn.Linear(ratio * d, d))


class Block(nn.Module):
    """One layer of both streams.

    Observed stream (width ``dim``): pre-LN self-attention among OBSERVED tokens only, then an MLP.
    Latent stream (width ``latent_dim``): pre-LN attention with ONE softmax over the keys of the observed
    tokens of this layer (projected from their normalised hidden states, so computable once per star)
    and of the latent tokens, then an MLP. This is joint Simformer attention with an
    observed-cannot-see-latent mask, written so that the observed half can be cached.
    """

    def __init__(self, dim: int, latent_dim: int, heads: int, latent_heads: int, mlp_ratio: int):
        super().__init__()
        self.heads, self.dh = heads, dim // heads
        self.lheads, self.ldh = latent_heads, latent_dim // latent_heads
        self.ln1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = _mlp(dim, mlp_ratio)
        self.kv_cross = nn.Linear(dim, 2 * latent_dim)  # observed → keys/values seen by latent tokens
        self.lln1 = nn.LayerNorm(latent_dim)
        self.lqkv = nn.Linear(latent_dim, 3 * latent_dim)
        self.lproj = nn.Linear(latent_dim, latent_dim)
        self.lln2 = nn.LayerNorm(latent_dim)
        self.lmlp = _mlp(latent_dim, mlp_ratio)

    def encode(self, h: torch.Tensor, bias: torch.Tensor, last: bool = False):
        """Observed tokens among themselves. h [B, N, d], bias [B, 1, 1, N] → h, k_bd, v_bd for the latent stream.

        ``last``: only the keys and values for the latent stream (the observed stream ends here, so its
        attention and MLP would feed nothing: 4 % of a training step; their weights stay in the state dict, so
        plain networks' older checkpoints load and give the same velocities); h is returned as it came."""
        B, N, d = h.shape
        x = self.ln1(h)
        if last:
            return h, *self._block_diagonal(*self.kv_cross(x).chunk(2, -1))
        q, k, v = self.qkv(x).view(B, N, 3, self.heads, self.dh).permute(2, 0, 3, 1, 4)
        # plain softmax attention: at ~20 tokens it is several times faster on CPU than the fused
        # scaled_dot_product_attention kernel (forward and backward) and gives the same numbers
        s = torch.matmul(q * (1.0 / math.sqrt(self.dh)), k.transpose(-1, -2)) + bias
        a = torch.matmul(torch.softmax(s, -1), v)
        kc, vc = self.kv_cross(x).chunk(2, -1)
        k_bd, v_bd = self._block_diagonal(kc, vc)
        h = h + self.proj(a.transpose(1, 2).reshape(B, N, d))
        return h + self.mlp(self.ln2(h)), k_bd, v_bd

    def _block_diagonal(self, k, v):
        """[B, N, dl] keys/values → k_bd [B, dl, Hl·N] (scaled) and v_bd [B, Hl·N, dl]."""
        B, N, dl = k.shape
        H, dh = self.lheads, self.ldh
        k_bd = k.new_zeros(B, dl, H * N)
        v_bd = v.new_zeros(B, H * N, dl)
        for i in range(H):
            sl = slice(i * dh, (i + 1) * dh)
            k_bd[:, sl, i * N:(i + 1) * N] = k[:, :, sl].transpose(1, 2) / math.sqrt(dh)
            v_bd[:, i * N:(i + 1) * N, sl] = v[:, :, sl]
        return k_bd, v_bd

    def decode(self, h: torch.Tensor, k_bd, v_bd, bias):
        """Latent tokens h [B, S, L, dl] against the cached observed keys/values and themselves.

        Scores against the observed tokens and their weighted values are one batched matmul per star
        (block-diagonal over heads, no permutes); ``bias`` [B, 1, 1, 1, N + L].
        """
        B, S, L, d = h.shape
        H, dh = self.lheads, self.ldh
        N = k_bd.shape[2] // H
        q, k, v = self.lqkv(self.lln1(h)).split(d, -1)
        s_obs = torch.bmm(q.reshape(B, S * L, d), k_bd).view(B, S, L, H, N)
        qh = (q * (1.0 / math.sqrt(dh))).reshape(B * S, L, H, dh).transpose(1, 2)
        kh = k.reshape(B * S, L, H, dh).permute(0, 2, 3, 1)
        s_lat = torch.matmul(qh, kh).view(B, S, H, L, L).transpose(2, 3)  # [B,S,Lq,H,Lk]
        p = torch.softmax(torch.cat([s_obs, s_lat], -1) + bias, -1)  # [B,S,L,H,N+L]
        out = torch.bmm(p[..., :N].reshape(B, S * L, H * N), v_bd).view(B, S, L, d)
        p_lat = p[..., N:].transpose(2, 3).reshape(B * S, H, L, L)
        vh = v.reshape(B * S, L, H, dh).transpose(1, 2)
        out = out + torch.matmul(p_lat, vh).transpose(1, 2).reshape(B, S, L, d)
        h = h + self.lproj(out)
        return h + self.lmlp(self.lln2(h))


def _neg_bias(ok: torch.Tensor, dtype) -> torch.Tensor:
    return torch.zeros(ok.shape, dtype=dtype, device=ok.device).masked_fill(~ok, float("-inf"))


class FlowTransformer(nn.Module):
    """Velocity field v(x_t, t | observed tokens) for whichever tokens are latent."""

    def __init__(self, config: NetworkConfig | None = None, anchor_inputs: bool = False):
        """``anchor_inputs``: the latent tokens take measurement-anchor inputs (``anchors``; train.anchors.enabled)."""
        super().__init__()
        c = self.config = config or NetworkConfig()
        self.anchor_inputs = bool(anchor_inputs) or c.affine_head
        d, dl = c.dim, c.latent_dim
        # A LayerNorm follows every embedding: value embeddings start small against the id embeddings so
        # that the normalised token stays (nearly) affine in the standardised value instead of losing its
        # magnitude (LN(x·w) would only keep the sign of x).
        self.value_w = nn.Parameter(torch.randn(N_TOKENS, d) * 0.3)
        self.sigma_w = nn.Parameter(torch.randn(N_TOKENS, d) * 0.2)
        self.id_emb = nn.Parameter(torch.randn(N_TOKENS, d))
        self.obs_state = nn.Parameter(torch.randn(d) * 0.3)  # state embedding "observed"
        self.missing_emb = nn.Parameter(torch.randn(N_TOKENS, d) * 0.3)  # state "missing", per variable
        self.value_only_emb = nn.Parameter(torch.randn(N_TOKENS, d) * 0.3)  # state "value only" (σ not given)
        self.sky = nn.Linear(4, d)
        self.lat_value_w = nn.Parameter(torch.randn(N_TOKENS, dl) * 0.3)
        self.lat_id_emb = nn.Parameter(torch.randn(N_TOKENS, dl))  # includes the state "latent"
        self.lat_skip = nn.Parameter(torch.zeros(N_TOKENS))  # linear skip: v += skip[id] · x_t
        # a latent slot's per-star map (``anchors``, the affine head): its (c, log s), and the slot's value in the
        # common standardised θ coordinates as an offset from x_t, t·c + (s − 1)·x_t (``embed_latent``), which the
        # other parameters' tokens need (A_V and mass depend on the distance itself, not on its offset from the
        # parallax distance)
        if self.anchor_inputs:
            self.lat_anchor_w = nn.Parameter(torch.zeros(N_TOKENS, 2, dl))
            self.lat_theta_w = nn.Parameter(torch.zeros(N_TOKENS, dl))
        self.register_buffer("freqs", (2.0 ** torch.arange(c.time_frequencies)) * math.pi, persistent=False)
        self.time = nn.Sequential(nn.Linear(2 * c.time_frequencies, dl), nn.SiLU(), nn.Linear(dl, dl))
        self.blocks = nn.ModuleList([Block(d, dl, c.heads, c.latent_heads, c.mlp_ratio) for _ in range(c.layers)])
        self.ln_out = nn.LayerNorm(dl)
        self.head = nn.Linear(dl, 1)
        if c.affine_head:  # starts as the identity map (c = 0, s = 1): the plain flow
            self.affine_mlp = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, 2 * d), nn.SiLU())
            self.affine_out = nn.Linear(2 * d, 2 * N_THETA)
            nn.init.zeros_(self.affine_out.weight)
            nn.init.zeros_(self.affine_out.bias)
        if c.posterior_field:
            self.posterior_field = PosteriorField(d, c.posterior_field_width, c.posterior_field_layers,
                                                  c.time_frequencies, c.heads)

    # ------------------------------------------------------------------------------------------ embed
    def embed_observed(self, values, logsig, sky, state) -> torch.Tensor:
        """[B, N, d] embeddings of every position as if observed (only OBSERVED ones are ever used)."""
        value_only = (state == VALUE_ONLY)[..., None]
        h = (values[..., None] * self.value_w + torch.where(value_only, 0.0, logsig[..., None]) * self.sigma_w
             + self.id_emb + self.obs_state + value_only.to(values.dtype) * self.value_only_emb)
        missing = (state == MISSING).to(h.dtype)
        sky_h = self.sky(sky) + missing @ self.missing_emb  # what is absent, told through the sky token
        return torch.cat([h[:, :SKY_INDEX], (h[:, SKY_INDEX] + sky_h)[:, None]], 1)

    def time_embedding(self, t: torch.Tensor) -> torch.Tensor:
        a = t[..., None] * self.freqs
        return self.time(torch.cat([torch.sin(a), torch.cos(a)], -1))

    def embed_latent(self, x_t, t, lat_idx, anchor=None) -> torch.Tensor:
        """x_t [B, S, L], t [B, S] or [1, 1], lat_idx [B, L], anchor [B, L, 2] or None → [B, S, L, dl].

        ``anchor`` (the slots' (c, log s), ``anchors.features``) of all zeros gives the same as None."""
        w = self.lat_value_w[lat_idx][:, None]  # [B,1,L,dl]
        e = self.lat_id_emb[lat_idx]
        te = self.time_embedding(t)[:, :, None]  # one time for all rows when t is [1, 1]
        h = x_t[..., None] * w + te
        if anchor is not None:
            if not self.anchor_inputs:
                raise ValueError("anchored slots given to a network built without anchor_inputs")
            e = e + torch.einsum("blk,blkd->bld", anchor, self.lat_anchor_w[lat_idx])
            # the slot's value in the common θ coordinates enters as its offset from x_t, t·c + (s − 1)·x_t:
            # with (c, log s) = 0 (no map) both anchor inputs vanish, so rows without a map may skip them
            shift = t[..., None] * anchor[:, None, :, 0] + torch.expm1(anchor[:, None, :, 1]) * x_t
            h = h + shift[..., None] * self.lat_theta_w[lat_idx][:, None]
        return h + e[:, None]

    # ------------------------------------------------------------------------------------------ split
    def encode(self, values, logsig, sky, state) -> ObservationCache:
        """Run the observed tokens once per star; keep every layer's keys and values for the latent stream.

        Each row's OBSERVED tokens are packed to the front (order kept) and the sequence is cut at the
        batch's largest observed count: the others take no part in attention, so they are not computed (a
        Gaia+2MASS+WISE star observes 12 of the 22 tokens, and θ is never observed at inference).
        """
        order, obs_ok = packed_positions(is_observed(state))
        h = self.embed_observed(values, logsig, sky, state)
        h = torch.gather(h, 1, order[..., None].expand(-1, -1, h.shape[-1]))
        bias = _neg_bias(obs_ok, h.dtype)[:, None, None, :]  # [B,1,1,M]
        keys, vals = [], []
        field = self.config.posterior_field
        h_final = None
        for i, blk in enumerate(self.blocks):
            last = i == len(self.blocks) - 1
            # the posterior field reads the observed stream's final states: run the last layer in full for it
            h_out, k_bd, v_bd = blk.encode(h, bias, last=last and not field)
            if last:
                h_final = h_out
            else:
                h = h_out
            keys.append(k_bd)
            vals.append(v_bd)
        affine = rows = None
        if self.config.affine_head:  # mean of the observed tokens' states entering the last layer → (c, log s)
            w = obs_ok.to(h.dtype)[..., None]
            pooled = (h * w).sum(1) / w.sum(1).clamp(min=1.0)
            affine = self.affine_out(self.affine_mlp(pooled)).view(-1, N_THETA, 2)
            rows = affine_rows(state, self.config.affine_rows)
        context = self.posterior_field.readout(h_final, obs_ok) if field else None
        return ObservationCache(keys, vals, bias[:, None], affine, rows, context)

    def affine_slots(self, cache: ObservationCache, lat_idx, lat_ok):
        """(c, s) [B, L] of the latent slots from the affine head: its values for θ slots of the rows it
        applies to (``cache.affine_rows``), 0 and 1 for others (latent observables, padding, other rows)."""
        is_theta = affine_theta_slots(cache, lat_idx, lat_ok)
        idx = lat_idx.clamp(max=N_THETA - 1)
        c = torch.gather(cache.affine[..., 0], 1, idx)
        log_s = torch.gather(cache.affine[..., 1], 1, idx).clamp(LOG_S_MIN, LOG_S_MAX)
        return torch.where(is_theta, c, torch.zeros_like(c)), torch.where(is_theta, torch.exp(log_s),
                                                                           torch.ones_like(c))

    def affine_gate(self, c: torch.Tensor, s: torch.Tensor):
        """The map actually used, (w·c, s^w) [B, L], from the head's (c, s): weight w = 1 for s ≤ s_full, 0 for
        s ≥ s_off, linear in log s between (``NetworkConfig.affine_widths``; None: w = 1). Still a function of
        the observation alone, so still an exact change of variables."""
        if self.config.affine_widths is None:
            return c, s
        lo, hi = (math.log(v) for v in self.config.affine_widths)
        log_s = torch.log(s)
        w = ((hi - log_s) / (hi - lo)).clamp(0.0, 1.0)
        return w * c, torch.exp(w * log_s)

    def decode(self, cache: ObservationCache, x_t, t, lat_idx, lat_ok, anchor=None) -> torch.Tensor:
        """Velocity [B, S, L] of the latent tokens given the cached observation encoding (``anchor``: the
        slots' measurement-anchor features, ``anchors.features``)."""
        h = self.embed_latent(x_t, t, lat_idx, anchor)
        lat_bias = _neg_bias(lat_ok, h.dtype)[:, None, None, None, :]  # [B,1,1,1,L]
        bias = torch.cat([cache.obs_bias, lat_bias], -1)
        for blk, k, v in zip(self.blocks, cache.keys, cache.values):
            h = blk.decode(h, k, v, bias)
        return self.head(self.ln_out(h)).squeeze(-1) + self.lat_skip[lat_idx][:, None] * x_t

    # ------------------------------------------------------------------------------------------- full
    def forward_full(self, values, logsig, sky, state, x_t, t, lat_idx, lat_ok, anchor=None) -> torch.Tensor:
        """The same velocity as ``decode(encode(...))`` computed as a plain full-sequence Transformer.

        Rows are (star, sample) pairs and every token of every row goes through every layer at every
        call: nothing is cached. Used by the tests (same numbers) and the benchmark (the cost of not
        reusing the observation encoding).
        """
        B, S, L = x_t.shape
        rep = lambda a: a.repeat_interleave(S, 0)  # noqa: E731
        cache = self.encode(rep(values), rep(logsig), rep(sky), rep(state))
        t = t.expand(B, S).reshape(B * S, 1) if t.numel() > 1 else t
        v = self.decode(cache, x_t.reshape(B * S, 1, L), t, rep(lat_idx), rep(lat_ok),
                        None if anchor is None else rep(anchor))
        return v.view(B, S, L)


def affine_rows(state: torch.Tensor, which: str) -> torch.Tensor:
    """[B] bool: the rows of condition ``state`` [B, N] that the affine head applies to (``AFFINE_ROWS``)."""
    if which == "all":
        return torch.ones(state.shape[0], dtype=torch.bool, device=state.device)
    return is_observed(state[:, list(SURVEY_TOKENS["lamost"])]).any(1)


def affine_theta_slots(cache: ObservationCache, lat_idx, lat_ok) -> torch.Tensor:
    """[B, L] bool: latent θ slots of the rows the affine head applies to (where its map and NLL act)."""
    return lat_ok & (lat_idx < N_THETA) & cache.affine_rows[:, None]


def packed_positions(mask: torch.Tensor, width: int | None = None):
    """Each row's positions where ``mask`` [B, N] is true, packed to the front in order: idx [B, W] (padded
    with 0) and ok [B, W]; W = ``width`` or the largest count in the batch (at least 1)."""
    n = mask.sum(1)
    W = max(int(n.max()) if width is None else width, 1)
    order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)[:, :W]
    ok = torch.arange(W, device=mask.device)[None, :] < n[:, None]
    return torch.where(ok, order, torch.zeros_like(order)), ok


def latent_slots(state: torch.Tensor, max_latent: int | None = None):
    """Gather the latent positions of each row: lat_idx [B, L] (padded with 0) and lat_ok [B, L]."""
    return packed_positions(state == LATENT, max_latent)
