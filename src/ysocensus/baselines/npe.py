"""A standard amortised SBI baseline: NPE with a neural spline flow (zuko), missing values filled.

The usual way to feed incomplete data to an off-the-shelf neural posterior estimator: a fixed-length
context vector with every observable present, missing entries filled with 0 (the training mean, after
standardisation) and one missingness indicator per observable. Concretely, per star (``features``):
standardised value and standardised log σ of each of the 16 observables of ``model.tokens.OBSERVABLES``
(the same transforms and training-set statistics as our model: parallax asinh, magnitudes, LAMOST labels),
0 where missing, a 0/1 missing flag per observable, and (sin l, cos l, sin b, cos b): 52 numbers.

θ is the model's standardised space (log10 age, log10 mass, [Fe/H], log10 distance, A_V). The flow is
``zuko.flows.NSF`` (5 rational-quadratic spline coupling transforms (passes=2), 2 × 128 hidden units,
8 bins; sbi's ``posterior_nn("nsf")`` shape with wider layers), trained by maximum likelihood on the same
training rows as our model, with the same importance weights (``weight ** importance_power``), AdamW and a
cosine learning rate over a wall-clock budget; the weights with the best validation loss are kept.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np
import torch

from ysocensus.model.posterior.observations import (N_THETA, N_X, SKY_INDEX, Normalisation, theta_from_model,
                                                    theta_to_model, tokenize)

log = logging.getLogger(__name__)

N_FEATURES = 3 * N_X + 4


def features(frame, stats: Normalisation) -> np.ndarray:
    """[B, N_FEATURES] float32 context vectors (missing filled with 0 + indicators)."""
    a = tokenize(frame, stats)
    sl = slice(N_THETA, SKY_INDEX)
    meas = a.measured[:, sl]
    return np.concatenate([np.where(meas, a.values[:, sl], 0.0), np.where(meas, a.logsig[:, sl], 0.0),
                           (~meas).astype(np.float32), a.sky], 1).astype(np.float32)


def theta_model(frame, stats: Normalisation) -> np.ndarray:
    from ysocensus import io

    n = io.n_rows(frame)
    th = np.stack([io.float_column(frame, p, n) for p in io.PARAMETERS], -1)
    return theta_to_model(th, stats).astype(np.float32)


def make_flow(hidden: int = 128, transforms: int = 5, bins: int = 8):
    import zuko

    # passes=2: coupling transforms, as sbi's nflows-based "nsf" (sampling needs one pass per transform)
    return zuko.flows.NSF(N_THETA, N_FEATURES, transforms=transforms, hidden_features=[hidden, hidden], bins=bins,
                          passes=2)


class NPEPosterior:
    """Trained NPE: ``sample_frame(frame, n)`` → physical samples [B, n, 5] (io.PARAMETERS order)."""

    def __init__(self, flow, stats: Normalisation, info: dict | None = None):
        self.flow = flow.eval()
        self.stats = stats
        self.info = info or {}
        # the flow's own standardisation of θ (model space), fitted on the training rows
        self.t_mean = torch.as_tensor(self.info.get("theta_mean", [0.0] * N_THETA), dtype=torch.float32)
        self.t_std = torch.as_tensor(self.info.get("theta_std", [1.0] * N_THETA), dtype=torch.float32)

    def sample_features(self, x: np.ndarray, n_samples: int, generator_seed: int = 0, batch: int = 2048) -> np.ndarray:
        torch.manual_seed(generator_seed)
        out = np.empty((len(x), n_samples, N_THETA), np.float32)
        with torch.inference_mode():
            for s in range(0, len(x), batch):
                c = torch.as_tensor(x[s:s + batch])
                z = self.flow(c).sample((n_samples,)) * self.t_std + self.t_mean   # [n, b, 5]
                out[s:s + batch] = theta_from_model(z.transpose(0, 1), self.stats).numpy()
        return out

    def sample_frame(self, frame, n_samples: int, seed: int = 0) -> np.ndarray:
        return self.sample_features(features(frame, self.stats), n_samples, seed)

    def save(self, path) -> None:
        from ysocensus import io

        with io.atomic_path(path) as tmp, open(tmp, "wb") as fh:  # a handle: the zip's root is not the temporary name
            torch.save({"state_dict": self.flow.state_dict(), "stats": self.stats.to_dict(), "info": self.info}, fh)

    @classmethod
    def load(cls, path) -> "NPEPosterior":
        p = torch.load(path, map_location="cpu", weights_only=True)
        info = p.get("info", {})
        flow = make_flow(**info.get("architecture", {}))
        flow.load_state_dict(p["state_dict"])
        return cls(flow, Normalisation.from_dict(p["stats"]), info)


def train_npe(train_table, val_table, stats: Normalisation, minutes: float = 5.0, batch_size: int = 1024,
              lr: float = 1e-3, weight_power: float = 1.0, seed: int = 0, max_rows: int | None = None,
              hidden: int = 128, transforms: int = 5, bins: int = 8) -> NPEPosterior:
    """Maximum-likelihood NPE under a wall-clock budget (``minutes``)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    if max_rows is not None and train_table.num_rows > max_rows:
        train_table = train_table.take(np.sort(rng.choice(train_table.num_rows, max_rows, replace=False)))
    X = torch.as_tensor(features(train_table, stats))
    T = torch.as_tensor(theta_model(train_table, stats))
    w = train_table.column("weight").to_numpy().astype(np.float64) ** weight_power
    W = torch.as_tensor((w / w.mean()).astype(np.float32))
    ok = torch.isfinite(T).all(1)
    X, T, W = X[ok], T[ok], W[ok]
    # standardise θ for the flow (its splines live on [-5, 5]) whatever the shared statistics hold
    t_mean, t_std = T.mean(0), T.std(0).clamp_min(1e-3)
    T = (T - t_mean) / t_std
    Xv = torch.as_tensor(features(val_table, stats))
    Tv = torch.as_tensor(theta_model(val_table, stats))
    wv = val_table.column("weight").to_numpy().astype(np.float64) ** weight_power
    Wv = torch.as_tensor((wv / wv.mean()).astype(np.float32))
    okv = torch.isfinite(Tv).all(1)
    Xv, Tv, Wv = Xv[okv], (Tv[okv] - t_mean) / t_std, Wv[okv]
    arch = {"hidden": hidden, "transforms": transforms, "bins": bins}
    flow = make_flow(**arch)
    opt = torch.optim.AdamW(flow.parameters(), lr=lr, weight_decay=1e-4)
    budget = max(minutes, 0.05) * 60.0
    n = len(X)
    seen, epoch, best, best_state = 0, 0, math.inf, None
    history = []
    g = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    done = False
    while not done:
        perm = torch.randperm(n, generator=g)
        flow.train()
        for s in range(0, n - batch_size + 1 if n >= batch_size else 1, batch_size):
            frac = (time.perf_counter() - start) / budget
            if frac >= 1.0:
                done = True
                break
            for group in opt.param_groups:
                group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0)))
            b = perm[s:s + batch_size]
            loss = -(flow(X[b]).log_prob(T[b]) * W[b]).sum() / W[b].sum()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(flow.parameters(), 5.0)
            opt.step()
            seen += len(b)
        epoch += 1
        flow.eval()
        with torch.no_grad():
            vl = 0.0
            for s in range(0, len(Xv), 8192):
                vl += float(-(flow(Xv[s:s + 8192]).log_prob(Tv[s:s + 8192]) * Wv[s:s + 8192]).sum())
            vl /= float(Wv.sum())
        history.append(round(vl, 4))
        if vl < best:
            best = vl
            best_state = {k: v.clone() for k, v in flow.state_dict().items()}
    if best_state is not None:
        flow.load_state_dict(best_state)
    info = {"architecture": arch, "theta_mean": t_mean.tolist(), "theta_std": t_std.tolist(),
            "train_rows": int(n), "observations_seen": int(seen), "epochs": epoch,
            "best_val_loss": best, "val_loss_history": history, "minutes_budget": minutes,
            "seconds": round(time.perf_counter() - t0, 1), "batch_size": batch_size, "lr": lr,
            "weight_power": weight_power, "n_parameters": int(sum(p.numel() for p in flow.parameters()))}
    log.info("NPE trained: %s", {k: v for k, v in info.items() if k != "val_loss_history"})
    return NPEPosterior(flow, stats, info)


def load_or_train(path: Path | None, reuse: bool, **kw) -> NPEPosterior:
    if path is not None and reuse and Path(path).exists():
        return NPEPosterior.load(path)
    post = train_npe(**kw)
    if path is not None:
        post.save(path)
    return post
