"""The network's age classes: P(age class | x) read from the observation encoding, and the stratified correction that
gives the network's proposals those class probabilities.

Why. A flow trained on every parameter at once is not as sharp in one derived quantity as a classifier trained for it:
on the same held-out simulated stars, the probability that the age lies below 50 Myr separates young from old stars
less well from the flow's own draws (even 1,024 of them) than from a small classifier on the flow's own observation
encoding (``docs/measurements.md``, twentieth session). The classifier (``AgeClassifier``) reads the per-star context
the posterior field reads (``PosteriorField.readout`` of the observed tokens' final states; the Transformer is frozen)
and is trained by cross-entropy on the training rows under the flow's own condition masks and loss weights
(``masks.sample_condition_states``, ``prior_ratio.loss_weights``), so its probabilities are of the same (tilted)
training prior as the flow's posterior q(θ | x), for every catalog the flow answers.

The correction (``stratified_log_weights``) is post-stratification of the proposals (sampling–importance–resampling
with the strata's masses known): a proposal in age class k gets the weight P_k(x) / q̂_k, where q̂_k is the fraction
of the star's own proposals in class k. The corrected posterior is Σ_k P_k(x) q(θ | x, class k): the classifier's
class masses, the flow's shape within each class. The weight multiplies the chain's (``posterior.corrections``),
which take q to the population or the structure prior. A class the star's proposals never reach keeps no mass (the
flow's proposals cannot represent it); a star with one class among its proposals is left as the flow drew it.

The class edges (``DEFAULT_EDGES_MYR``, config ``train.training.age_classes_myr``) are the catalog's two age
thresholds, so both of its P(young) columns are the classifier's.
"""

from __future__ import annotations

import logging
import time
from typing import Mapping

import numpy as np
import torch
from torch import nn

from ysocensus import io
from ysocensus.model.tokens import LATENT, N_THETA, SKY_INDEX

log = logging.getLogger(__name__)

#: the class edges (Myr): the catalog's second and first young thresholds (the defaults of
#: ``infer.second_threshold_myr`` and ``infer.young_threshold_myr``), so both of its P(young) columns are the
#: classifier's
DEFAULT_EDGES_MYR = (io.SECOND_YOUNG_THRESHOLD_MYR, io.YOUNG_THRESHOLD_MYR)


class AgeClassifier(nn.Module):
    """log P(age class | x) [B, K] from the per-star context [B, D] (``ObservationCache.context``); classes split at
    ``edges_log10_yr`` (ascending, log10 yr): class 0 is younger than the first edge."""

    def __init__(self, context_dim: int, edges_log10_yr, width: int = 256):
        super().__init__()
        edges = torch.as_tensor(np.asarray(edges_log10_yr, np.float64), dtype=torch.float64)
        if edges.ndim != 1 or len(edges) < 1 or bool((edges[1:] <= edges[:-1]).any()):
            raise ValueError(f"age classes: edges {edges.tolist()} must be one or more ascending log10 ages")
        self.context_dim, self.width = int(context_dim), int(width)
        self.register_buffer("edges", edges)
        k = len(edges) + 1
        self.mlp = nn.Sequential(nn.LayerNorm(context_dim), nn.Linear(context_dim, width), nn.SiLU(),
                                 nn.Linear(width, width), nn.SiLU(), nn.Linear(width, k))

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(self.mlp(context.float()), -1)

    def config(self) -> dict:
        return {"context_dim": self.context_dim, "edges_log10_yr": [float(e) for e in self.edges],
                "width": self.width}


def age_class(log_age: np.ndarray, edges_log10_yr) -> np.ndarray:
    """The class index of each log10 age (yr) for class edges ``edges_log10_yr`` (an age on an edge is in the older
    class); −1 where the age is not finite."""
    a = np.asarray(log_age, np.float64)
    k = np.searchsorted(np.asarray(edges_log10_yr, np.float64), a, side="right")
    return np.where(np.isfinite(a), k, -1)


def stratified_log_weights(log_age: np.ndarray, class_log_probs: np.ndarray, edges_log10_yr) -> np.ndarray:
    """log(P_k / q̂_k) [B, S] of proposals with log10 ages ``log_age`` [B, S] (yr; NaN for a proposal that failed)
    under the class log-probabilities [B, K] of their star (the module docstring); 0 where a star's proposals lie in
    fewer than two classes or its probabilities are not finite, −inf for a proposal whose age is not finite."""
    k = age_class(log_age, edges_log10_yr)
    lp = np.asarray(class_log_probs, np.float64)
    B, K = lp.shape
    ok = k >= 0
    counts = np.stack([((k == c) & ok).sum(1) for c in range(K)], 1).astype(np.float64)  # [B, K]
    with np.errstate(divide="ignore"):
        log_q = np.log(counts) - np.log(np.maximum(counts.sum(1, keepdims=True), 1.0))
    apply = ((counts > 0).sum(1) >= 2) & np.isfinite(lp).all(1)
    term = np.take_along_axis(lp - log_q, np.clip(k, 0, K - 1), 1)
    out = np.where(apply[:, None], term, 0.0)
    return np.where(ok, out, -np.inf)


def unreached(log_age: np.ndarray, class_log_probs: np.ndarray, edges_log10_yr, min_probability: float) -> np.ndarray:
    """Stars [B] (bool) with an age class that none of their proposals (log10 ages [B, S], yr) reach while the
    classifier gives it at least ``min_probability``: the stratified correction cannot give that class its mass, so
    they get more proposals (``importance.ImportanceSamplingPosterior``'s top-up)."""
    k = age_class(log_age, edges_log10_yr)
    p = np.exp(np.asarray(class_log_probs, np.float64))
    reached = np.stack([(k == c).any(1) for c in range(p.shape[1])], 1)
    return (np.isfinite(p).all(1) & ((p >= min_probability) & ~reached).any(1))


def posterior_rows(state: torch.Tensor) -> torch.Tensor:
    """Rows whose condition is a posterior the production path answers: every θ latent, no observable latent."""
    theta = (state[:, :N_THETA] == LATENT).all(1)
    x_latent = (state[:, N_THETA:SKY_INDEX] == LATENT).any(1)
    return theta & ~x_latent


@torch.no_grad()
def contexts(net, values, logsig, sky, state, rows_per_call: int = 4096) -> torch.Tensor:
    """The per-star context [B, D] of a network with a posterior field, encoded in calls of ``rows_per_call``."""
    out = []
    for i in range(0, values.shape[0], rows_per_call):
        sl = slice(i, i + rows_per_call)
        out.append(net.encode(values[sl], logsig[sl], sky[sl], state[sl]).context.float())
    return torch.cat(out)


def fit_age_classifier(net, table, stats, mix, loss_weight: np.ndarray, seed: int,
                       edges_myr=DEFAULT_EDGES_MYR, steps: int = 4000, batch_size: int = 512, lr: float = 2e-3,
                       width: int = 256) -> tuple[AgeClassifier, dict]:
    """Train the classifier on training rows ``table`` (``trainset`` rows with their truth), each under a condition
    mask drawn from ``mix`` (``masks.MaskMix``, the flow's own) and kept where it is a posterior
    (``posterior_rows``), weighted by the flow's loss weights ``loss_weight``; ``net`` (frozen) encodes them. Returns
    the classifier (eval mode) and a summary."""
    from ysocensus.model.masks import sample_condition_states
    from ysocensus.model.tokens import tokenize

    t0 = time.monotonic()
    if getattr(net, "posterior_field", None) is None:
        raise ValueError("age classes: the network has no posterior field (train.network.posterior_field), whose "
                         "per-star context the classifier reads")
    g = torch.Generator().manual_seed(int(seed))
    torch.manual_seed(int(seed))
    edges = np.log10(np.asarray(edges_myr, np.float64)) + 6.0
    arrays = tokenize(table, stats)
    t = arrays.torch()
    searched = None if arrays.searched is None else torch.as_tensor(arrays.searched)
    state = sample_condition_states(t["measured"], mix, g, searched)
    label = age_class(table.column(io.PARAMETERS[0]).to_numpy(zero_copy_only=False), edges)
    keep = posterior_rows(state).numpy() & (label >= 0) & np.isfinite(loss_weight) & (loss_weight > 0)
    idx = torch.as_tensor(np.flatnonzero(keep))
    X = contexts(net.eval(), t["values"][idx], t["logsig"][idx], t["sky"][idx], state[idx])
    y = torch.as_tensor(label[keep], dtype=torch.long)
    w = torch.as_tensor(loss_weight[keep] / loss_weight[keep].mean(), dtype=torch.float32)
    model = AgeClassifier(X.shape[1], edges, width)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    n = len(y)
    for _ in range(steps):
        i = torch.randint(0, n, (min(batch_size, n),), generator=g)
        loss = (nn.functional.nll_loss(model(X[i]), y[i], reduction="none") * w[i]).sum() / w[i].sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    model.eval().requires_grad_(False)
    with torch.no_grad():
        lp = torch.cat([model(X[i:i + 65536]) for i in range(0, n, 65536)])
        ce = float((nn.functional.nll_loss(lp, y, reduction="none") * w).sum() / w.sum())
    summary = {"rows": int(n), "edges_myr": [float(e) for e in edges_myr], "steps": int(steps),
               "class_fractions": [float(w[y == c].sum() / w.sum()) for c in range(len(edges) + 1)],
               "cross_entropy": ce, "seconds": round(time.monotonic() - t0, 1)}
    log.info("age classes: %s", summary)
    return model, summary


def from_payload(entry: Mapping | None):
    """The classifier from its checkpoint entry (``config`` JSON-able dict, ``state_dict``), or None."""
    if entry is None:
        return None
    cfg = dict(entry["config"])
    model = AgeClassifier(cfg["context_dim"], cfg["edges_log10_yr"], cfg.get("width", 256))
    model.load_state_dict(entry["state_dict"])
    return model.eval().requires_grad_(False)
