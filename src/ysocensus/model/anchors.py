"""Measurement anchors: a per-star affine change of variables for parameters that a survey measures directly.

Two of the inferred parameters have a direct measurement among the observables:

- [Fe/H] ← the LAMOST [Fe/H] label (same quantity, σ 0.04–0.16 dex);
- log10 distance ← the Gaia parallax, log10(1000 / ϖ) with σ = σ_ϖ / (ϖ ln 10) (a 1 % parallax gives
  0.004 dex).

Their posteriors are then much narrower than the prior (0.2–0.4 dex), and a flow that must contract unit
noise onto them in a 7-minute training learns them too wide: for LAMOST stars with σ[Fe/H] < 0.06 dex the
laptop model's [Fe/H] posteriors were 1.30× wider than the LAMOST error itself (a calibrated posterior is at
most 1×; coverage 0.63 at the 0.55 level), and bright stars' distances were too wide (max coverage error
0.18–0.20 for G < 15). With anchors the flow runs, for each such latent token whose measurement is OBSERVED
in the row's condition mask, in

    y = (θ − c) / s,     c = the measurement in θ's standardised model space,  s = min(σ_meas / σ_prior, 1),

so the posterior it learns has width ≲ 1 and sits near 0, like the base distribution. The map depends only
on the observed tokens (never on θ), so it is an exact change of variables: samples are θ = c + s·y, and
log p(θ | x) = log p(y | x) − log s. Where the measurement is dropped, missing or latent, c = 0 and s = 1
(the plain parametrisation). Parallaxes are anchored with a weight that rises from 0 at ϖ/σ_ϖ = ``snr_min``
to 1 at ``snr_full`` (c and 1 − s scale with it), so the map is continuous in the data and 1/ϖ is never
used where it is a poor distance estimate. The network is told (c, log s) and the slot's value in the common
θ coordinates (as its offset from y_t, t·c + (s − 1)·y_t, zero without a map), since the other parameters depend on
the distance itself.

Ablation (``benchmarks/anchors_ablation.py``, laptop config, 7-minute training, 20,000 population test stars,
max coverage error; two training seeds each). Both anchors bring the sharp-measurement cases in line: LAMOST
stars' [Fe/H] 0.090–0.099 → 0.039–0.057 (posterior sd / LAMOST σ 1.30 → 1.04), bright-star (G < 15)
distances 0.07–0.20 → 0.01–0.08, Gaia+2MASS+WISE [Fe/H] 0.024–0.038 → 0.008–0.018. But the LAMOST masses come
out too wide instead (0.062–0.086 → 0.107–0.151), so that survey combination still misses 0.08, and the
distance anchor moves A_V overall from 0.008–0.018 to 0.028–0.050 (biased low for Gaia+2MASS+WISE stars).
[Fe/H] alone leaves A_V as it was at seed 0 (0.004; 0.029 at seed 1) and widens the LAMOST masses just the
same (0.099, 0.150). Hence ``enabled: false`` by default at the time. Why anchoring [Fe/H] costs the masses: unresolved binaries (validation's
``by_companion`` split). LAMOST labels are the primary's and the photometry is the pair's; unanchored, the network
absorbs part of a binary's luminosity excess in a too-wide [Fe/H]; pinned to the LAMOST label, [Fe/H] no longer
can, and the excess goes into mass and age, which the network represents as a symmetric widening (per-star skew
−0.3, kurtosis +0.5) instead of the sharp single-star peak with a low-mass tail that the truth residuals show
(skew −1.2, kurtosis +3.8): single stars' masses come out too wide, binaries' too high.
(The anchored runs also made 5–10 % fewer steps in the same 7 minutes: 2,286–2,425 against 2,503–2,558.)

The network can also learn a per-star (c, s) for every parameter itself (``network.affine_head``, see ``flow``);
the anchors then replace the head on their slots. The head alone learnt the LAMOST [Fe/H] too wide (LAMOST
stars are 5 % of the training rows); with the [Fe/H] anchor on its slot, the masses no longer widen. Quick
ablation on a slower 2-core machine (≈ 1,000 training steps in 7 minutes), the 697 LAMOST stars of the
population test set, max coverage error over two sampling seeds: no head, no anchors 0.14–0.16 (mass; [Fe/H]
0.13–0.14); head alone 0.09–0.10 ([Fe/H]; with a linear readout 0.22); head + [Fe/H] anchor 0.079–0.081
(log age; [Fe/H] 0.020–0.025, mass 0.07). The full validation of head + [Fe/H] anchor (one training seed,
954 steps, the head's path being 25 % slower per step): overall 0.035, Gaia+2MASS+WISE+LAMOST 0.085
(distance), Gaia+2MASS+WISE 0.049, but Gaia alone 0.105 (distance), Gaia+WISE 0.081 (A_V) and WISE alone
0.092 (mass), against 0.053, 0.035 and 0.057 without the head on the same machine (a 1,246-step run of a
discarded variant with a companion-mass-ratio latent, whose LAMOST stars were at 0.140): so both were left off by
default at the time.

Where the head's map applies (``network.affine_rows``, ``network.affine_widths``), next session, same machine,
7 minutes, [Fe/H] anchor on, headline calibration of the 20,000 population test stars, one training seed each,
max coverage error of the worst parameter (last row: the noise floor, p90 of a calibrated posterior):

=============================  =====  ========  =====  =====  =====  =====  =======
map applies to                 steps  overall   G+T+W  +LAM   G+W    Gaia   WISE
=============================  =====  ========  =====  =====  =====  =====  =======
LAMOST rows only               1051   0.034     0.085  0.045  0.045  0.067  0.089
widths [0.15, 0.4]             1108   0.026     0.050  0.035  0.054  0.139  0.114
widths [0.05, 0.15] (default)  1148   0.019     0.037  0.061  0.046  0.089  0.101
  the same, ``rule validate``  1359   0.020     0.030  0.045  0.042  0.086  0.103
widths [0.02, 0.06]            1278   0.027     0.045  0.105  0.046  0.103  0.077
(noise floor p90)                     0.009     0.013  0.047  0.016  0.043  0.032
=============================  =====  ========  =====  =====  =====  =====  =======

G+T+W = Gaia+2MASS+WISE (10,084 stars), +LAM = with LAMOST (832). Without the map on the non-LAMOST rows,
bright Gaia+2MASS+WISE distances come out too wide (0.085, under-confident; uniform solver steps hide it at 0.011
by over-contracting, which is why calibration, not one solver, judges). The gate keeps broad posteriors on the
plain parametrisation (with the map everywhere, Gaia-only distances were 0.105); gating at [0.02, 0.06] leaves the
LAMOST masses (s ≈ 0.05–0.1) unmapped and too wide again (0.105). Gaia-only distances are too wide (under-confident,
+0.07 to +0.14 at the 0.65 level) with every gate, and with none on their rows. WISE-only stars are
*over*-confident in mass and distance (−0.08 to −0.11 at the 0.65 level) in every run of that session, head or not
(LAMOST rows only leaves them on the plain path), and do not change with the prior resampling (ESS 61/64) or the
solver (midpoint 4/8, Heun 8): the network at ≈ 1,100 steps, not the map. Earlier sessions' faster machine
(≈ 2,400 steps) had them at 0.053–0.063.

Both were the training mix, not the map: the population stage's young-enriched mix is bright, so Gaia-only and
WISE-only rows were 1.7 % and 3.4 % of training against 5 % and 9 % of the population. ``training.rare_max_surveys:
1`` (re-observations keeping rows seen by one survey alone, ``trainset.rare_observation``) brings them to 4.5 % and
9 %. The table above was also judged on a test population drawn with replacement, whose 20,000 rows were 9,506
distinct stars (Gaia alone: 1,008 rows, 468 stars); it is now drawn without repeats (``trainset.population_sample``)
from a quarter of the stars held out: 18,858 distinct stars. On it (2026-11-30, same kind of machine, 7 minutes,
same defaults otherwise, one seed each; the last row a fresh clone's ``snakemake --cores all``):

=============================  =====  ========  =====  =====  =====  =====  =======
training mix                   steps  overall   G+T+W  +LAM   G+W    Gaia   WISE
=============================  =====  ========  =====  =====  =====  =====  =======
rare_max_surveys 0             1485   0.022     0.049  0.060  0.046  0.095  0.093
rare_max_surveys 1 (default)   1533   0.030     0.048  0.065  0.053  0.056  0.059
  the same, ``rule validate``  1536   0.026     0.043  0.069  0.055  0.067  0.060
  the same, training seed 7    1478   0.019     0.027  0.052  0.043  0.054  0.065
  the same, ``max_steps 1100``  1100   0.037     0.062  0.090  0.052  0.094  0.076
(noise floor p90)                     0.010     0.014  0.048  0.017  0.043  0.034
=============================  =====  ========  =====  =====  =====  =====  =======

(9,407 / 847 / 6,046 / 923 / 1,617 stars.) The Gaia-only distances go from +0.095 to +0.051 at the 0.65 level and
the WISE-only ones from −0.079 to −0.059: both still lean the way they did, by less. With 18,858 independent stars
the SBC rank histograms of log age and log mass reject uniformity (KS p ≈ 1e-32, 1e-22: ranks lean high, the
posteriors slightly young and light) although their coverage errors are 0.021 and 0.026: a small bias, not a width.
The targets need the steps: at 1,100 (what 7 minutes gave on the previous, half-speed machine) Gaia-only distances
and LAMOST masses miss again (0.094, 0.090); ≈ 1,450 steps and more met every target, so the laptop preset now
trains a fixed 1,500 steps (``optim.max_steps``) instead of 7 minutes. Part of that age/mass rank lean was the
simulated age density's 20× cliff at 50 Myr, which the flow smeared (``prior_ratio.FieldTilt``): with the field
tilt (1,500 steps, one seed) KS p of log age 2e-20, log mass 6e-19, and every target met (overall 0.023, worst
combination 0.070 LAMOST).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import torch

from ysocensus.model.tokens import (N_THETA, OBSERVABLES, OBSERVED, PARALLAX_TOKEN, THETA, VARIABLE_NAMES,
                                    Normalisation)

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
            if not bool((slot & observed[:, None]).any()):
                continue
            centre, scale, weight = fn(values, logsig)
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
