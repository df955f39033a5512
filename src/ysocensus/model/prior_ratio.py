"""The prior ratio between the Galactic population and the simulated (young-enriched) training mix.

The population stage thins the old field a lot and the young field a little and keeps young complexes
complete; every simulated star carries ``weight`` = the number of real stars it stands for (1/thinning).
Training on the mix as simulated (``training.importance_power`` = 0) gives young stars the share of the
loss that makes their posteriors accurate, but the model then learns p_sim(θ | x), whose prior holds far
too many young stars. The posterior under the Galactic population follows by importance weighting:

    p_pop(θ | x) ∝ p_sim(θ | x) · r(θ, l, b),    r(θ, l, b) = E_sim[w^(1−p) | θ, l, b]

(the likelihood p(x | θ) is the same in both; ``p`` is the importance power used in the loss, which already
gave the model a prior ∝ p_sim · w^p). The weight is a property of the star's population component, not of
θ, so r is the expected weight given θ and direction: ``PriorRatio`` is a small classifier
p_sim(component class | θ, l, b) over the distinct weights of the training set, and
r = Σ_c p(c | θ, l, b) · w_c^(1−p) (Sugiyama, Suzuki & Kanamori 2012, density-ratio estimation by
probabilistic classification). ``FlowPosterior`` applies it by sampling–importance–resampling
(Rubin 1988) of the flow's samples, per star.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

#: at most this many weight classes; more distinct weights are binned in log10 weight
MAX_CLASSES = 8


def weight_classes(weights: np.ndarray, max_classes: int = MAX_CLASSES) -> tuple[np.ndarray, np.ndarray]:
    """Class index per row and the mean weight of each class (distinct weights, or log-quantile bins)."""
    w = np.asarray(weights, np.float64)
    if not np.isfinite(w).all() or (w <= 0).any():
        bad = np.flatnonzero(~np.isfinite(w) | (w <= 0))[:5]
        raise ValueError(f"prior ratio: weights must be finite and > 0 (rows {bad.tolist()})")
    uniq = np.unique(w)
    if len(uniq) <= max_classes:
        return np.searchsorted(uniq, w), uniq
    edges = np.unique(np.quantile(np.log10(w), np.linspace(0, 1, max_classes + 1)[1:-1]))
    idx = np.searchsorted(edges, np.log10(w), side="right")
    means = np.array([w[idx == k].mean() if (idx == k).any() else 1.0 for k in range(len(edges) + 1)])
    return idx, means


class PriorRatio(nn.Module):
    """log r(θ, l, b) up to a constant, from standardised θ [..., 5] and sky features [..., 4]."""

    def __init__(self, class_weights, power: float = 0.0, hidden: int = 64, n_theta: int = 5, n_sky: int = 4):
        super().__init__()
        cw = torch.as_tensor(np.asarray(class_weights, np.float64))
        self.register_buffer("class_weight", cw.float())
        self.register_buffer("log_class_weight", ((1.0 - power) * torch.log(cw)).float())
        self.power = float(power)
        self.hidden = int(hidden)
        self.mlp = nn.Sequential(nn.Linear(n_theta + n_sky, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                 nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, len(cw)))

    def logits(self, z: torch.Tensor, sky: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.cat([z, sky.expand(*z.shape[:-1], sky.shape[-1])], -1))

    def forward(self, z: torch.Tensor, sky: torch.Tensor) -> torch.Tensor:
        """log r at standardised θ ``z`` [..., 5] and sky features [..., 4] (broadcast over samples)."""
        return torch.logsumexp(torch.log_softmax(self.logits(z, sky), -1) + self.log_class_weight, -1)

    def config(self) -> dict:
        """Constructor arguments (the checkpoint stores these beside the state dict)."""
        return {"class_weights": self.class_weight.tolist(), "power": self.power, "hidden": self.hidden,
                "n_theta": self.mlp[0].in_features - 4, "n_sky": 4}


def fit_prior_ratio(z: np.ndarray, sky: np.ndarray, weights: np.ndarray, power: float = 0.0, steps: int = 1500,
                    batch_size: int = 4096, lr: float = 3e-3, seed: int = 0, hidden: int = 64) -> tuple[PriorRatio, dict]:
    """Train the component classifier on training rows (standardised truth θ, sky features, weights).

    Returns the module (eval mode) and a summary: classes, rows, final cross-entropy, accuracy and the
    mean ratio check E_sim[r] / E_sim[w^(1-p)] (1 when the classifier is calibrated on average).
    """
    z = np.asarray(z, np.float32)
    sky = np.asarray(sky, np.float32)
    ok = np.isfinite(z).all(1) & np.isfinite(sky).all(1)
    cls, cw = weight_classes(np.asarray(weights)[ok])
    g = torch.Generator().manual_seed(int(seed))
    torch.manual_seed(int(seed))
    model = PriorRatio(cw, power, hidden, z.shape[1], sky.shape[1])
    X = torch.as_tensor(np.concatenate([z[ok], sky[ok]], 1))
    y = torch.as_tensor(cls, dtype=torch.long)
    n = len(y)
    summary = {"rows": int(n), "class_weights": [float(v) for v in cw], "power": float(power)}
    if len(cw) == 1 or n == 0:  # one weight for every star: the ratio is a constant
        summary.update(cross_entropy=0.0, accuracy=1.0)
        return model.eval().requires_grad_(False), summary
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    lossf = nn.CrossEntropyLoss()
    for _ in range(steps):
        idx = torch.randint(0, n, (min(batch_size, n),), generator=g)
        loss = lossf(model.mlp(X[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model.mlp(X[i:i + 65536]) for i in range(0, n, 65536)])
        ce = float(lossf(logits, y))
        acc = float((logits.argmax(-1) == y).float().mean())
        r = torch.logsumexp(torch.log_softmax(logits, -1) + model.log_class_weight, -1).exp().double()
        wp = torch.as_tensor(np.asarray(weights, np.float64)[ok] ** (1.0 - power))
    summary.update(cross_entropy=ce, accuracy=acc, mean_ratio_check=float(r.mean() / wp.mean()))
    return model.requires_grad_(False), summary


def resample(log_w: torch.Tensor, n_out: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Systematic resampling per row: indices [B, n_out] into the S proposals of ``log_w`` [B, S], and the
    effective sample size of each row's weights (Kish). Rows with no finite weight keep their order."""
    B, S = log_w.shape
    lw = torch.nan_to_num(log_w.double(), nan=-math.inf)
    bad = ~torch.isfinite(lw).any(1)
    lw = torch.where(bad[:, None], torch.zeros_like(lw), lw)
    w = torch.softmax(lw, 1)
    ess = 1.0 / (w ** 2).sum(1)
    c = torch.cumsum(w, 1)
    c[:, -1] = 1.0
    u = (torch.rand(B, 1, generator=generator, dtype=torch.float64) + torch.arange(n_out, dtype=torch.float64)) / n_out
    idx = torch.searchsorted(c, u.contiguous()).clamp_(max=S - 1)
    return idx, ess.float()


@torch.no_grad()
def population_indices(ratio: PriorRatio, z: torch.Tensor, sky: torch.Tensor, n_out: int,
                       generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Which of the training-mix proposals z [B, S, 5] (standardised θ; sky features [B, 4]) to keep for n_out
    samples under the population prior: indices [B, n_out] on z's device, and the ESS per star. Proposals
    with a non-finite θ get no weight. The uniforms are drawn on the CPU (same draws on any device)."""
    log_r = ratio.to(z.device)(torch.nan_to_num(z), sky[:, None, :].to(z.dtype))
    log_r = torch.where(torch.isfinite(z).all(-1), log_r, torch.full_like(log_r, -math.inf))
    idx, ess = resample(log_r.cpu(), n_out, generator)
    return idx.to(z.device), ess


@torch.no_grad()
def reweight_samples(samples: np.ndarray, sky: np.ndarray, stats, ratio: PriorRatio, n_out: int,
                     generator: torch.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Population-prior samples [B, n_out, 5] (physical units) from training-mix samples [B, S, 5] of any
    estimator (e.g. a baseline trained on the same training set), and the ESS per star. Rows with
    non-finite samples are returned as they are."""
    from ysocensus.model.tokens import theta_to_model

    th = torch.as_tensor(np.asarray(samples, np.float32))
    idx, ess = population_indices(ratio, theta_to_model(th, stats).float(),
                                  torch.as_tensor(np.asarray(sky, np.float32)), n_out, generator)
    out = torch.gather(th, 1, idx[..., None].expand(-1, -1, th.shape[-1])).numpy()
    bad = ~np.isfinite(np.asarray(samples)).all((1, 2))
    if bad.any():
        out[bad] = np.asarray(samples, np.float32)[bad][:, :n_out]
    return out, ess.numpy()
