"""Width recalibration: the network's leftover error in the widths of its marginals, per conditioning pattern.

At the laptop training budget the flow's posteriors are a little too wide, most where the data say most (a field
trained longer is sharper: ``docs/measurements.md``, thirteenth session), and the population correction narrows
some of them again; what is left differs with what a star was conditioned on. On held-out simulations the
population posterior of stars with Gaia alone and no σ covers too much in mass, and that of stars with a LAMOST
spectrum too much in mass, [Fe/H] and age (``docs/measurements.md``, eighteenth session).

This is the quantile recalibration of a regression model's predictive distributions (Kuleshov, Fenner & Ermon 2018,
ICML, "Accurate uncertainties for deep learning using calibrated regression"), restricted to one scale per marginal
and pattern so that it can neither move a median nor reshape a posterior: a star's samples of parameter j, in the
space the model infers it (log10 age, log10 mass, [Fe/H], log10 distance, A_V; ``validation.calibration.model_space``),
are mapped to

    median + (θ_j − median) / k_j(pattern),

k > 1 where the posterior was too wide. The pattern (:func:`patterns`) is the set of surveys the star was
conditioned on, whether the absence of another survey was read as a non-detection (a faint star of a cross-matched
catalog) or marginalised (a catalog never cross-matched), and whether Gaia's photometric σ was read with its
magnitudes (a literature table without σ is another catalog for the network). Each k is fitted on held-out
simulated stars sampled as ``infer`` samples them, in the catalogs users supply (full columns and
``validation.degradations``): the k on a grid (``K_GRID``) that minimises the error of the expected coverage of
central intervals (``validation.calibration.LEVELS``) of its pattern's stars (the largest error over the levels,
:func:`best_factor`). A pattern with fewer than ``min_stars`` of them takes the factor of its surveys pooled over σ,
or 1.

What it does not touch: P(young), which comes from the importance weights of the network's proposals
(``inference.summaries``), and every posterior but the population posterior of the network it was fitted for
(not ``prior="simulation"``, not a consensus flow of several networks, not another estimator's samples; a mixture
ensemble's members each keep their own).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from ysocensus import io
from ysocensus.model.tokens import N_THETA, OBSERVABLES, SURVEY_TOKENS, survey_flags

#: the candidate factors: a posterior up to 1.5× too wide or 1/0.75 too narrow is corrected
K_GRID = np.round(np.arange(0.75, 1.5 + 1e-9, 0.01), 2)
#: the token of each Gaia magnitude, whose σ sets the pattern's σ flag
GAIA_PHOT_TOKENS = tuple(N_THETA + i for i, v in enumerate(OBSERVABLES) if v.name in io.GAIA_BANDS)
#: a pattern's code is its surveys' bits (io.SURVEYS order) × 4, + 2 for a non-detection read, + 1 where Gaia's σ
#: was read
_SURVEY_BITS = 1 << np.arange(len(io.SURVEYS))


def patterns(arrays) -> np.ndarray:
    """The conditioning pattern of every star of token arrays (``tokens.TokenArrays``), int64 [B]: the surveys it was
    conditioned on (bit i: ``io.SURVEYS[i]``) × 4, + 2 where a survey it was not measured by was searched (its
    absence read as a non-detection, not marginalised), + 1 where a Gaia magnitude was read with its σ."""
    measured = np.asarray(arrays.measured, bool)
    surveys = survey_flags(measured)
    known = measured if arrays.sigma_known is None else measured & np.asarray(arrays.sigma_known, bool)
    sigma = known[:, list(GAIA_PHOT_TOKENS)].any(1)
    searched = np.ones_like(measured) if arrays.searched is None else np.asarray(arrays.searched, bool)
    unseen = np.stack([(~surveys[:, i]) & searched[:, list(SURVEY_TOKENS[s])].any(1)
                       for i, s in enumerate(io.SURVEYS)], -1).any(1)
    return (surveys @ _SURVEY_BITS) * 4 + unseen * 2 + sigma


def pattern_name(code: int) -> str:
    """``gaia+wise, others not detected (σ)`` / ``gaia (no σ)`` / ``none``."""
    code = int(code)
    surveys = "+".join(s for i, s in enumerate(io.SURVEYS) if (code >> 2) & (1 << i)) or "none"
    return f"{surveys}{', others not detected' if code & 2 else ''} ({'σ' if code & 1 else 'no σ'})"


def _to_model_space(theta: np.ndarray, dtype=np.float64) -> np.ndarray:
    from ysocensus.validation.calibration import model_space  # the one definition of that space (numpy only)

    return model_space(theta, dtype)


def _to_physical(t: np.ndarray) -> np.ndarray:
    """The inverse of ``validation.calibration.model_space``, in place."""
    from ysocensus.validation.calibration import LOG10_PARAMETERS

    for j in LOG10_PARAMETERS:
        t[..., j] = 10.0 ** t[..., j]
    return t


def scaled(samples: np.ndarray, k) -> np.ndarray:
    """Samples [B, S, P] (model space) about each star's median, divided by ``k`` (scalar, [P] or [B, P]), in the
    samples' precision. A star's draws are all finite or all NaN (``importance``), so a plain median will do; a star
    without samples stays NaN."""
    med = np.median(samples, axis=1, keepdims=True)
    k = np.asarray(k, samples.dtype)
    return med + (samples - med) / (k[:, None, :] if k.ndim == 2 else k)


@dataclass(frozen=True)
class WidthCorrection:
    """k per pattern code and parameter (``io.PARAMETERS`` order); patterns not listed keep their widths."""

    factors: Mapping[int, tuple[float, ...]] = field(default_factory=dict)

    def factor_array(self, codes) -> np.ndarray:
        """[B, 5] the factors of each star's pattern (1 for a pattern without one)."""
        codes = np.asarray(codes, np.int64)
        out = np.ones((len(codes), len(io.PARAMETERS)))
        for code, k in self.factors.items():
            out[codes == int(code)] = k
        return out

    def apply(self, samples: np.ndarray, codes) -> np.ndarray:
        """Physical samples [B, S, 5] with each star's widths divided by its pattern's factors (float32 like the
        samples; rows of NaN stay NaN)."""
        k = self.factor_array(codes)
        touched = (k != 1.0).any(1)
        out = np.array(samples, copy=True)
        if touched.any():  # in the samples' float32
            out[touched] = _to_physical(scaled(_to_model_space(out[touched], out.dtype), k[touched]))
        return out

    def to_dict(self) -> dict:
        return {"factors": {str(int(c)): [float(x) for x in k] for c, k in sorted(self.factors.items())},
                "patterns": {str(int(c)): pattern_name(c) for c in sorted(self.factors)},
                "parameters": list(io.PARAMETERS)}

    @classmethod
    def from_dict(cls, d: Mapping) -> "WidthCorrection":
        factors = {int(c): tuple(float(x) for x in k) for c, k in d["factors"].items()}
        named = {int(c): n for c, n in d.get("patterns", {}).items()}
        if any(pattern_name(c) != n for c, n in named.items()):
            raise ValueError("its patterns were coded otherwise (an earlier version of this code); retrain")
        bad = [c for c, k in factors.items() if len(k) != len(io.PARAMETERS) or not all(x > 0 for x in k)]
        if bad:
            raise ValueError(f"width recalibration: patterns {bad} need {len(io.PARAMETERS)} positive factors")
        return cls(factors)


def coverage_error(samples: np.ndarray, truth: np.ndarray, u_noise: np.ndarray, levels) -> np.ndarray:
    """[len(levels), P] expected coverage − level of central intervals (rank PIT with the given tie noise)."""
    below = (samples < truth[:, None]).sum(1)
    ties = (samples == truth[:, None]).sum(1)
    u = (below + u_noise * (ties + 1)) / (samples.shape[1] + 1)
    d = np.abs(u - 0.5)
    lv = np.asarray(levels, np.float64)
    return (d[None] <= lv[:, None, None] / 2).mean(1) - lv[:, None]


def best_factor(samples: np.ndarray, truth: np.ndarray, u_noise: np.ndarray, levels, grid=K_GRID) -> float:
    """The k of ``grid`` whose rescaled samples [B, S] (one parameter, model space) cover ``truth`` [B] best: the
    least largest |coverage − level| over ``levels`` (the figure validation reports), the k nearest 1 among equals.
    A posterior whose coverage errors change sign with the level has the wrong shape, not the wrong width; this
    keeps its scale (a least-squares fit there trades the small levels' error for a larger one at the large)."""
    med = np.median(samples, axis=1, keepdims=True)  # once for the grid: ``scaled`` with the same arithmetic
    dev = samples - med
    loss = np.array([np.abs(coverage_error((med + dev / np.asarray(k, samples.dtype))[..., None], truth[:, None],
                                           u_noise[:, None], levels)).max() for k in grid])
    best = np.flatnonzero(loss <= loss.min() + 1e-12)
    return float(grid[best[np.argmin(np.abs(grid[best] - 1.0))]])


def fit_factors(samples: np.ndarray, truth: np.ndarray, codes: np.ndarray, min_stars: int, levels,
                seed: int = 0) -> tuple[WidthCorrection, dict]:
    """Fit k per pattern and parameter from model-space samples [B, S, 5] of held-out stars, their truth [B, 5] and
    pattern codes [B]; patterns with fewer than ``min_stars`` stars share the factors of their surveys pooled over
    the σ flag when those reach ``min_stars``, else keep 1."""
    ok = np.isfinite(truth).all(1) & np.isfinite(samples).all((1, 2))
    samples, truth, codes = samples[ok], truth[ok], np.asarray(codes)[ok]
    u_noise = np.random.default_rng(seed).random(truth.shape)
    factors: dict[int, tuple[float, ...]] = {}
    summary: dict = {"stars": int(ok.sum()), "patterns": {}}

    def fit(mask):
        return tuple(best_factor(samples[mask, :, j], truth[mask, j], u_noise[mask, j], levels)
                     for j in range(truth.shape[1]))

    pooled: dict[int, tuple[float, ...]] = {}
    for code in np.unique(codes):
        m = codes == code
        if m.sum() >= min_stars:
            factors[int(code)], how = fit(m), "own"
        else:
            surveys = code >> 1  # the same surveys and non-detections, either σ flag
            both = (codes >> 1) == surveys
            if both.sum() < min_stars:
                continue
            if surveys not in pooled:
                pooled[surveys] = fit(both)
            factors[int(code)], how = pooled[surveys], "pooled over σ"
        summary["patterns"][pattern_name(code)] = {"stars": int(m.sum()), "fit": how,
                                                   "factors": dict(zip(io.PARAMETERS, factors[int(code)]))}
    return WidthCorrection(factors), summary


def fit_from_posterior(post, tables: Mapping[str, object], min_stars: int, seed: int, n_samples: int = 64,
                       levels: Sequence[float] | None = None) -> tuple[WidthCorrection, dict]:
    """Fit the factors of ``post`` (a ``FlowPosterior`` under the prior they are for, without a width correction of
    its own for it) on held-out simulated stars drawn from that prior: ``tables`` names the catalogs (Arrow tables
    with truth columns, e.g. the full columns and each of ``validation.degradations``); every one is sampled with
    ``n_samples`` draws per star, and the fit pools them."""
    import torch

    from ysocensus.model.tokens import tokenize
    from ysocensus.validation.calibration import LEVELS

    levels = LEVELS if levels is None else levels
    if post.prior in post.widths:
        raise ValueError(f"width recalibration: fit on the posterior without one (post.widths has {post.prior!r})")
    parts = []
    for i, (name, table) in enumerate(tables.items()):
        arrays = tokenize(table, post.stats)
        s, status = post.sample_tokens(arrays, n_samples, torch.Generator().manual_seed(int(seed) + i))
        truth = np.stack([table.column(p).to_numpy(zero_copy_only=False).astype(np.float64)
                          for p in io.PARAMETERS], -1)
        ok = status == "ok"
        parts.append((_to_model_space(s[ok]), _to_model_space(truth[ok]), patterns(arrays)[ok]))
    samples, truth, codes = (np.concatenate(x) for x in zip(*parts))
    corr, summary = fit_factors(samples, truth, codes, min_stars, levels, seed)
    summary["catalogs"] = {name: int(t.num_rows) for name, t in tables.items()}
    return corr, summary
