"""Measurement anchors: a per-star affine change of variables for parameters that a survey measures directly.

Two of the inferred parameters have a direct measurement among the observables:

- [Fe/H] ← the LAMOST [Fe/H] label (same quantity, σ 0.04–0.16 dex);
- log10 distance ← the Gaia parallax, log10(1000 / ϖ) with σ = σ_ϖ / (ϖ ln 10) (a 1 % parallax gives
  0.004 dex).

Why: their posteriors are then much narrower than the prior (0.2–0.4 dex), and a flow that must contract unit
noise onto them on a laptop training budget learns them too wide. With anchors the flow runs, for each such latent
token whose measurement is OBSERVED in the row's condition mask, in

    y = (θ − c) / s,     c = the measurement in θ's standardised model space,  s = min(σ_meas / σ_prior, 1),

so the posterior it learns has width ≲ 1 and sits near 0, like the base distribution. The map depends only
on the observed tokens (never on θ), so it is an exact change of variables: samples are θ = c + s·y, and
log p(θ | x) = log p(y | x) − log s. Where the measurement is dropped, missing or latent, c = 0 and s = 1
(the plain parametrisation). A measurement given without its σ (``VALUE_ONLY``: a literature table, a catalog
without error columns) is anchored too when ``value_only`` is on, with the training set's geometric-mean σ of
that measurement as the scale: without it the flow had to contract unit noise onto a LAMOST [Fe/H] from a
value alone and those posteriors came out far too wide (docs/measurements.md, sixth session). The scale is
then a typical one, not the star's; the map stays exact because it depends only on what is observed.
Parallaxes are anchored with a weight that rises from 0 at ϖ/σ_ϖ = ``snr_min``
to 1 at ``snr_full`` (c and 1 − s scale with it), so the map is continuous in the data and 1/ϖ is never
used where it is a poor distance estimate. The network is told (c, log s) and the slot's value in the common
θ coordinates (as its offset from y_t, t·c + (s − 1)·y_t, zero without a map), since the other parameters depend on
the distance itself.

Precedence: the network's own per-star map (``network.affine_head``, see ``flow``) applies where its width gate
(``network.affine_widths``) and rows (``network.affine_rows``) say; an anchor replaces it on the anchor's slots
(``override``: a direct measurement beats a learnt guess). ``latent_map`` composes the two, once, for training and
sampling. Which of the anchors are on by default (the workflow's default: [Fe/H] only, with the head) and the
ablations that chose it, dated: ``docs/measurements.md``, section ``ysocensus.model.anchors``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import torch

from ysocensus.model.tokens import (N_THETA, OBSERVABLES, OBSERVED, PARALLAX_TOKEN, THETA, VALUE_ONLY,
                                    VARIABLE_NAMES, Normalisation)

FEH = VARIABLE_NAMES.index("feh")
LOG_DISTANCE = VARIABLE_NAMES.index("distance_pc")
FEH_LAMOST = VARIABLE_NAMES.index("feh_lamost")
assert THETA[LOG_DISTANCE].transform == "log10" and OBSERVABLES[PARALLAX_TOKEN - N_THETA].transform == "asinh"


@dataclass
class AnchorConfig:
    enabled: bool = False
    parameters: tuple = ("feh", "distance_pc")  # which of the anchorable parameters are anchored
    snr_min: float = 3.0  # parallax over error below which 1/ϖ is not used
    snr_full: float = 5.0  # ... and above which the anchor has full weight
    value_only: bool = False  # anchor a measurement given without its σ (VALUE_ONLY) at the typical σ

    def __post_init__(self):
        unknown = set(self.parameters) - {"feh", "distance_pc"}
        if unknown:
            raise ValueError(f"anchors.parameters: {sorted(unknown)} cannot be anchored (feh, distance_pc can)")
        self.parameters = tuple(self.parameters)


class MeasurementAnchors:
    """Computes (c, s) for the latent slots of a batch from its standardised token arrays."""

    def __init__(self, stats: Normalisation, config: AnchorConfig | None = None):
        self.config = config or AnchorConfig()
        self.stats = stats
        px = PARALLAX_TOKEN - N_THETA
        fx = FEH_LAMOST - N_THETA
        self._plx = (stats.x_mean[px], stats.x_std[px], stats.logsig_mean[px], stats.logsig_std[px],
                     OBSERVABLES[px].scale)
        self._feh = (stats.x_mean[fx], stats.x_std[fx], stats.logsig_mean[fx], stats.logsig_std[fx])

    def _feh_anchor(self, values, logsig):
        m, sd, lm, ls = self._feh
        tm, ts = self.stats.theta_mean[FEH], self.stats.theta_std[FEH]
        centre = (values[:, FEH_LAMOST] * sd + m - tm) / ts
        scale = torch.exp(logsig[:, FEH_LAMOST] * ls + lm) / ts
        return centre, scale, torch.ones_like(centre)

    def _distance_anchor(self, values, logsig):
        m, sd, lm, ls, k = self._plx
        tm, ts = self.stats.theta_mean[LOG_DISTANCE], self.stats.theta_std[LOG_DISTANCE]
        plx = k * torch.sinh(values[:, PARALLAX_TOKEN] * sd + m)  # mas
        # the token's σ is in asinh space: σ_ϖ = σ_asinh · sqrt(ϖ² + k²)
        sig = torch.exp(logsig[:, PARALLAX_TOKEN] * ls + lm) * torch.sqrt(plx * plx + k * k)
        snr = plx / sig
        c = self.config
        weight = ((snr - c.snr_min) / (c.snr_full - c.snr_min)).clamp(0.0, 1.0)
        safe = torch.where(weight > 0, plx, torch.ones_like(plx))  # 1/ϖ only where it is used
        centre = (torch.log10(1000.0 / safe) - tm) / ts
        scale = sig / (safe * math.log(10.0)) / ts
        return centre, scale, weight

    def affine(self, values: torch.Tensor, logsig: torch.Tensor, state: torch.Tensor,
               lat_idx: torch.Tensor, lat_ok: torch.Tensor):
        """(c, s) [B, L] for the latent slots ``lat_idx`` [B, L]: 0 and 1 except anchored θ slots."""
        c = torch.zeros(lat_idx.shape, dtype=values.dtype, device=values.device)
        s = torch.ones_like(c)
        if not self.config.enabled:
            return c, s
        for param, token, fn in ((FEH, FEH_LAMOST, self._feh_anchor),
                                 (LOG_DISTANCE, PARALLAX_TOKEN, self._distance_anchor)):
            if VARIABLE_NAMES[param] not in self.config.parameters:
                continue
            slot = (lat_idx == param) & lat_ok
            observed = state[:, token] == OBSERVED
            sig = logsig
            if self.config.value_only:
                value_only = state[:, token] == VALUE_ONLY
                observed = observed | value_only
                # the training set's geometric-mean σ (standardised log σ 0), never the withheld one
                sig = logsig.clone()
                sig[:, token] = torch.where(value_only, torch.zeros_like(sig[:, token]), sig[:, token])
            if not bool((slot & observed[:, None]).any()):
                continue
            centre, scale, weight = fn(values, sig)
            weight = weight * observed.to(weight.dtype)
            scale = scale.clamp(max=1.0)
            c = torch.where(slot, (weight * centre)[:, None], c)
            s = torch.where(slot, (1.0 - weight * (1.0 - scale))[:, None], s)
        return c, s


def from_config(stats: Normalisation, section: Mapping | None) -> MeasurementAnchors | None:
    """The anchors a ``train.anchors`` section asks for, or None when they are off (an absent section is off)."""
    config = AnchorConfig(**(section or {}))
    return MeasurementAnchors(stats, config) if config.enabled else None


def override(c, s, anchor_c, anchor_s):
    """The network affine head's (c, s) with the measurement anchors' wherever an anchor applies (a direct
    measurement beats a learnt guess); all [B, L]."""
    applied = mapped(anchor_c, anchor_s)
    return torch.where(applied, anchor_c, c), torch.where(applied, anchor_s, s)


def mapped(c: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """[B, L] bool: the slots with a map (anything but the identity c = 0, s = 1)."""
    return (c != 0) | (s != 1)


def latent_map(net, cache, lat_idx, lat_ok, anchor=None):
    """The latent slots' per-star map (c, s), composed once for training (``flow``) and sampling (``sampler``).

    The network's affine head (where ``net.config.affine_head``), gated by ``network.affine_widths`` and
    without gradient through the map (the head learns from its own NLL), then the measurement anchors
    ``anchor`` = (c, s) [B, L] on their slots (``override``). Returns ``(head, map)``: the head's ungated
    (c, s) for its NLL, or None; the map, or None where neither applies (c = 0, s = 1).
    """
    head = applied = None
    if getattr(getattr(net, "config", None), "affine_head", False):
        head = net.affine_slots(cache, lat_idx, lat_ok)
        applied = net.affine_gate(head[0].detach(), head[1].detach())
    if anchor is not None:
        applied = anchor if applied is None else override(*applied, *anchor)
    return head, applied


def features(c: torch.Tensor, s: torch.Tensor) -> torch.Tensor | None:
    """What the network is told of the map, per latent slot: [B, L, 2] = (c, log s); None when no slot has a map
    (c = 0, s = 1 everywhere), which the network reads as all-zero features at the cost of the plain path
    (a group of rows whose parameters are all broad, or without LAMOST labels)."""
    if not bool(mapped(c, s).any()):
        return None
    return torch.stack([c, torch.log(s)], -1)


def to_anchored(x, c, s):
    """θ (standardised) → y; c, s [B, L] broadcast over the samples axis of x [B, S, L]."""
    return (x - c[:, None]) / s[:, None]


def from_anchored(y, c, s):
    """y → θ (standardised)."""
    return c[:, None] + s[:, None] * y
