"""Age recalibration: the network's leftover error in the age prior, measured and removed on held-out simulations.

The population posterior is p_pop(θ | x) ∝ q(θ | x) · r(θ, l, b): the network's posterior q under its training
prior, times the prior ratio (``model.prior_ratio``). That is exact only when q learned its training prior
exactly, and near the field's 20× age step at 50 Myr it does not quite (the flow smooths the step, even with the
field tilt); because a young star's population odds are its training-mix odds × ~1/20, a small error there is a
large one in P(young).

A posterior right for every x is right on average: pooled over stars drawn from the prior, its samples
reproduce the distribution of the true ages. ``fit_age_correction`` finds the age factor c(log age), constant
in age bins (below), that makes the corrected posteriors ∝ q · r · c of held-out
stars (the validation split, weighted by ``weight`` so that they stand for the population) do so, by the EM
of Saerens, Latinne & Decaestecker (2002, Neural Computation 14, 21: adjusting a classifier's outputs to new
class priors) with the age bins as classes:

    c_b ← c_b · T_b / A_b(c),   T_b = Σ_i w_i [a_i ∈ b],   A_b(c) = Σ_i w_i Σ_s q̃_is [a_is ∈ b],

q̃_is the normalised weight r · c of star i's proposal s. Its fixed point maximises the likelihood of the
held-out stars' true age bins under the corrected posteriors; stars whose age the data pin down keep their
posterior (c barely varies within it), ambiguous ones move mass between their young and old modes. At
sampling, c is the last correction of the posterior chain (``posterior.corrections.AgeRecalibration``), for the
population posterior of this network only (not for another estimator's samples, and not for
``prior="simulation"``, which stays the network's own posterior).

The bins (``training.age_recalibration_bins``): by default four, split at the field's weight step and at the edges
of the field tilt's zone (``step_edges``), where the network's training prior changes and its error is; a factor
constant over a wide bin leaves the shape of a posterior inside it alone. With ``uniform`` bins of
``training.age_recalibration_dex`` (0.1 dex), only bins inside ``training.age_recalibration_range`` (log10 yr;
default 6.0–9.9) get a factor: at the extremes the network has few proposals, and a factor acting through a
handful of them moves age without the mass that goes with it; fine bins also fit noise, and their jumps distort
the posteriors that straddle them. What the correction changes (P(young), coverage, SBC, costs) and why the range, measured and dated:
``docs/measurements.md``, section ``ysocensus.model.recalibration``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ysocensus import io

#: proposals per held-out star for the fit (the default posterior sample size)
N_PROPOSALS = 64
#: at most this many held-out stars (a random subset of a larger validation split)
MAX_STARS = 20000
#: EM stops when no bin's log factor moves more than this, or after MAX_ITERATIONS
TOLERANCE = 1e-3
MAX_ITERATIONS = 1000
#: |log c| is capped: a factor beyond 20 would mean the network is wrong, not slightly off, in that bin
MAX_LOG_FACTOR = math.log(20.0)


@dataclass(frozen=True)
class AgeCorrection:
    """log c per bin of log10(age/yr): ``edges`` the inner bin edges (the outer bins are open), ``log_c`` one more
    value than edges."""

    edges: tuple[float, ...]
    log_c: tuple[float, ...]

    def __post_init__(self):
        object.__setattr__(self, "edges", tuple(map(float, self.edges)))  # lists from JSON: compare and hash alike
        object.__setattr__(self, "log_c", tuple(map(float, self.log_c)))
        if len(self.log_c) != len(self.edges) + 1:
            raise ValueError(f"age correction: {len(self.log_c)} factors for {len(self.edges)} inner edges "
                             f"(need one more factor than edges)")

    def log_factor(self, log_age):
        """log c at log10(age/yr) (a tensor or an array, any shape)."""
        if isinstance(log_age, torch.Tensor):
            edges = torch.tensor(self.edges, dtype=log_age.dtype, device=log_age.device)
            lc = torch.tensor(self.log_c, dtype=log_age.dtype, device=log_age.device)
            return lc[torch.bucketize(log_age.contiguous(), edges, right=True)]
        return np.asarray(self.log_c)[np.searchsorted(np.asarray(self.edges), log_age, side="right")]

    def to_dict(self) -> dict:
        return {"edges": [float(e) for e in self.edges], "log_c": [float(v) for v in self.log_c]}


def step_edges(step_log_age: float, half_width: float = 0.0) -> np.ndarray:
    """Inner bin edges at the field's weight step (log10 yr) and, with a field tilt of ``half_width`` dex, at the
    edges of its zone: the network's age-prior error is where its training prior changes (four bins: young side,
    the two halves of the zone, old side), and a factor constant over a wide bin does not move age inside it."""
    if half_width > 0:
        return np.array([step_log_age - half_width, step_log_age, step_log_age + half_width])
    return np.array([float(step_log_age)])


def age_edges(truth_log_age: np.ndarray, bin_dex: float) -> np.ndarray:
    """Inner bin edges spanning the held-out truths in steps of ``bin_dex`` (on a grid anchored at 0)."""
    a = np.asarray(truth_log_age, float)
    a = a[np.isfinite(a)]
    lo, hi = math.floor(a.min() / bin_dex) * bin_dex, math.ceil(a.max() / bin_dex) * bin_dex
    return np.round(np.arange(lo, hi + 0.5 * bin_dex, bin_dex), 6)


def _normalised(log_w: np.ndarray) -> np.ndarray:
    m = np.max(log_w, 1, keepdims=True)
    w = np.exp(log_w - m)
    return w / w.sum(1, keepdims=True)


def fit_age_correction(log_age: np.ndarray, log_w: np.ndarray, truth_log_age: np.ndarray, weights: np.ndarray,
                       edges: np.ndarray, young_log10_age: float = io.log10_age_threshold(io.YOUNG_THRESHOLD_MYR),
                       age_range: tuple[float, float] = (-math.inf, math.inf)) -> tuple[AgeCorrection, dict]:
    """The EM of the module docstring. ``log_age`` [B, S]: the network's proposals for B held-out stars;
    ``log_w`` [B, S]: their log importance weights to the population (log r); ``truth_log_age`` [B];
    ``weights`` [B]: the number of real stars each stands for; only bins inside ``age_range`` (log10 yr) get a
    factor, the others keep c = 1 (the EM then matches the truths in the free bins). Stars with a non-finite
    truth or no finite proposal are left out (counted in the summary).

    Returns the correction and a summary: stars used, iterations, and on the fit's own stars Σ w·P(young)
    (younger than ``young_log10_age``) before and after against Σ w·[young]."""
    log_age = np.asarray(log_age, float)
    log_w = np.where(np.isfinite(log_age) & np.isfinite(log_w), np.asarray(log_w, float), -np.inf)
    truth, w = np.asarray(truth_log_age, float), np.asarray(weights, float)
    ok = np.isfinite(truth) & np.isfinite(log_w).any(1) & (w > 0)
    log_age, log_w, truth, w = log_age[ok], log_w[ok], truth[ok], w[ok]
    nb = len(edges) + 1
    if not ok.any():  # nothing to fit: no correction (c = 1), said so
        return AgeCorrection(edges, np.zeros(nb)), {"stars": 0, "stars_left_out": int(len(ok)), "converged": False,
                                                    "note": "no held-out star with a finite truth and proposals"}
    sb = np.searchsorted(edges, np.nan_to_num(log_age), side="right")
    T = np.bincount(np.searchsorted(edges, truth, side="right"), w, nb)
    # a pseudo-count of 0.1% of the total per bin keeps empty bins from driving c to its cap
    eps = 1e-3 * T.sum() / nb
    log_c = np.zeros(nb)
    lo, hi = np.r_[-math.inf, edges], np.r_[edges, math.inf]
    fit = (lo >= age_range[0] - 1e-9) & (hi <= age_range[1] + 1e-9)
    it = 0
    for it in range(1, MAX_ITERATIONS + 1):
        q = _normalised(log_w + log_c[sb])
        A = np.bincount(sb.ravel(), (q * w[:, None]).ravel(), nb)
        new = np.where(fit, np.clip(log_c + np.log((T + eps) / (A + eps)), -MAX_LOG_FACTOR, MAX_LOG_FACTOR), 0.0)
        # a bin held at the cap (truths where the network has almost no proposals, or the reverse, e.g. past
        # the oldest truth) no longer moves the fit: converged when every other bin has settled
        free = fit & (np.abs(new) < MAX_LOG_FACTOR)
        moved = float(np.max(np.abs(new - log_c)[free], initial=0.0))
        log_c = new
        if moved < TOLERANCE:
            break
    corr = AgeCorrection(edges, log_c)

    def expected_young(lc):
        q = _normalised(log_w + lc[sb])
        return float((w * (q * (log_age < young_log10_age)).sum(1)).sum())

    summary = {"stars": int(ok.sum()), "stars_left_out": int((~ok).sum()), "iterations": it,
               "converged": bool(moved < TOLERANCE), "bins": nb, "bins_fitted": int(fit.sum()),
               "bins_at_cap": int((np.abs(log_c) >= MAX_LOG_FACTOR).sum()),
               "young_weighted": {"observed": float(w[truth < young_log10_age].sum()),
                                  "expected_before": expected_young(np.zeros(nb)),
                                  "expected_after": expected_young(log_c)},
               "log_c_range": [float(log_c.min()), float(log_c.max())]}
    return corr, summary


def fit_from_posterior(post, table, bin_dex: float, seed: int,
                       age_range: tuple[float, float] = (-math.inf, math.inf),
                       edges: np.ndarray | None = None) -> tuple[AgeCorrection | None, dict]:
    """Fit the correction of ``post`` (a ``FlowPosterior`` with a prior ratio) on held-out ``table`` rows (truth
    and ``weight`` columns) in bins of ``bin_dex`` within ``age_range``, or (``edges``) in the bins these inner
    edges make, every one fitted (``step_edges``): N_PROPOSALS network proposals per star, weighted to the
    population by the chain before the recalibration. (None, note) when the posterior has no prior ratio (a model
    trained with the population's weights)."""
    from ysocensus import io
    from ysocensus.model.tokens import tokenize

    if post.prior_ratio is None:
        return None, {"note": "no prior ratio (importance_power = 1): nothing to recalibrate"}
    if table.num_rows == 0:
        return None, {"note": "no held-out stars in the validation split: not recalibrated"}
    if table.num_rows > MAX_STARS:
        table = table.take(np.sort(np.random.default_rng(seed).choice(table.num_rows, MAX_STARS, replace=False)))
    arrays = tokenize(table, post.stats)
    g = torch.Generator().manual_seed(int(seed))
    log_age, log_w = post.proposals(arrays, N_PROPOSALS, g)
    truth = table.column(io.PARAMETERS[0]).to_numpy().astype(float)  # log10 age [yr]
    weights = table.column("weight").to_numpy().astype(float)
    if edges is None:
        edges = age_edges(truth, bin_dex)
    else:
        edges, age_range = np.asarray(edges, float), (-math.inf, math.inf)
    corr, summary = fit_age_correction(log_age, log_w, truth, weights, edges, post.young_log10_age, age_range)
    summary["table_rows"] = int(table.num_rows)
    return corr, summary
