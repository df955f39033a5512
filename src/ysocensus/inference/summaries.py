"""Posterior summaries, vectorised over [n_stars, n_samples, n_params]: quantiles and P(young).

Quantiles use linear interpolation between order statistics (numpy's default ``method="linear"``), from
one sort along the sample axis; non-finite samples are ignored (a star whose samples of a parameter are
all non-finite gets NaN). ``p_young`` is the fraction of finite age samples below the threshold, or, where the
sampler drew importance-weighted proposals (a posterior corrected to the Galactic population), the weighted
fraction of all proposals below it: the resampled draws keep only n of them, so a young star whose young
proposals carry little weight would otherwise round to 0 or 1 in steps of 1/n.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ysocensus import io

AGE_INDEX = io.PARAMETERS.index("log10_age_yr")


def quantiles(samples: np.ndarray, qs: Sequence[float] = io.QUANTILES) -> np.ndarray:
    """Percentiles ``qs`` (0–100) along axis 1 of ``samples`` [n, S, P] → [len(qs), n, P] float32."""
    samples = np.asarray(samples, dtype=np.float32)
    n, S, P = samples.shape
    out = np.full((len(qs), n, P), np.nan, np.float32)
    if n == 0 or S == 0:
        return out
    finite = np.isfinite(samples)
    all_finite = finite.all(axis=1)                       # [n, P]
    s = np.sort(samples, axis=1)                          # NaN sort last
    pos = np.asarray(qs, np.float64) / 100.0 * (S - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, S - 1)
    w = (pos - lo).astype(np.float32)
    for k in range(len(qs)):
        out[k] = s[:, lo[k], :] * (1 - w[k]) + s[:, hi[k], :] * w[k]
    if not all_finite.all():
        rows = np.flatnonzero(~all_finite.all(axis=1))
        sub = np.where(finite[rows], samples[rows], np.nan)
        with np.errstate(all="ignore"):
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                out[:, rows, :] = np.nanpercentile(sub, qs, axis=1).astype(np.float32)
    return out


def probability_below(samples: np.ndarray, threshold: float, index: int = AGE_INDEX) -> np.ndarray:
    """P(θ[index] < threshold) per star from samples [n, S, P]; NaN where no sample is finite."""
    x = np.asarray(samples)[:, :, index]
    finite = np.isfinite(x)
    n_ok = finite.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = ((x < threshold) & finite).sum(axis=1) / n_ok
    return np.where(n_ok > 0, p, np.nan).astype(np.float32)


def weighted_probability_below(values: np.ndarray, log_weights: np.ndarray, threshold: float) -> np.ndarray:
    """Σ w·[value < threshold] / Σ w per star over proposals ``values`` [n, K] with ``log_weights`` [n, K];
    NaN where no proposal has a finite value and weight."""
    v = np.asarray(values, np.float64)
    lw = np.where(np.isfinite(v), np.asarray(log_weights, np.float64), -np.inf)
    ok = np.isfinite(lw).any(1)
    top = np.where(ok, np.max(np.where(np.isfinite(lw), lw, -np.inf), axis=1, initial=-np.inf), 0.0)
    w = np.where(np.isfinite(lw), np.exp(lw - top[:, None]), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = (w * (v < threshold)).sum(1) / w.sum(1)
    return np.where(ok, p, np.nan).astype(np.float32)


def summarise(samples: np.ndarray, young_log10_age: float,
              second_log10_age: float | None = None, proposals: np.ndarray | None = None,
              log_weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """POSTERIOR columns ``<param>_q16/_q50/_q84``, ``p_young`` and ``p_young_2`` (NaN if not configured).

    With ``proposals`` [n, K, P] and their ``log_weights`` [n, K], P(young) is the weighted fraction of the
    proposals (see the module docstring); the quantiles are always the samples'."""
    q = quantiles(samples)
    out = {}
    for j, p in enumerate(io.PARAMETERS):
        for k, qq in enumerate(io.QUANTILES):
            out[f"{p}_q{qq}"] = q[k, :, j]

    def below(threshold):
        if proposals is None:
            return probability_below(samples, threshold)
        return weighted_probability_below(np.asarray(proposals)[:, :, AGE_INDEX], log_weights, threshold)

    out["p_young"] = below(young_log10_age)
    n = samples.shape[0]
    out["p_young_2"] = below(second_log10_age) if second_log10_age is not None else np.full(n, np.nan, np.float32)
    return out
