"""Benchmark of a deep ensemble (``train.ensemble``): how far its members disagree on held-out simulated stars.

Why: on simulations each member is calibrated, yet their equal-weight mixture is too wide (docs/measurements.md,
ninth session), because the members' posteriors sit apart by a fraction of their own widths. That fraction is the
figure a longer training or a velocity-averaged ensemble has to drive down; a control (member 0 drawn K times as a
K-member mixture: the split and the streams without any disagreement) checks that the mixture's mechanics add none.

For ``--stars`` rows of ``test_population.parquet`` (the unweighted Galactic population, held out), each member draws
``--n-samples`` samples under the population prior; per star and parameter (log age, log mass, [Fe/H], log
distance, A_V) the scatter (sd) of the members' medians over the mean of their 16–84 % half-widths, summarised by
its median and 16–84 % over stars. Part of it is the Monte Carlo scatter of a median of n samples (~1.25/√n of the
half-width, written beside it).

Usage: python benchmarks/ensemble.py --model results/ensemble/model/model.ckpt \
           --training results/ensemble/training [--stars 4000] [--n-samples 64] [--control]
Writes results/benchmarks/ensemble.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("log10_age_yr", "log10_initial_mass_msun", "feh", "log10_distance_pc", "av_mag")
LOG_COLUMNS = (1, 3)  # mass and distance: compared in log10


def member_summaries(post, arrays, n_samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Medians and 16–84 % half-widths [K, B, 5] of each member's population posterior."""
    meds, halves = [], []
    for k, m in enumerate(post.members):
        s, _ = m.sample_tokens(arrays, n_samples, torch.Generator().manual_seed(seed + k))
        s = s.astype(np.float64)
        s[..., LOG_COLUMNS] = np.log10(s[..., LOG_COLUMNS])
        meds.append(np.median(s, 1))
        halves.append(0.5 * (np.quantile(s, 0.84, 1) - np.quantile(s, 0.16, 1)))
    return np.array(meds), np.array(halves)


def disagreement(meds: np.ndarray, halves: np.ndarray) -> dict:
    """Per parameter: the members' median scatter over their mean half-width (median and 16–84 % over stars)."""
    ok = np.isfinite(meds).all((0, 2)) & np.isfinite(halves).all((0, 2))
    r = meds[:, ok].std(0, ddof=1) / np.maximum(halves[:, ok].mean(0), 1e-12)
    return {n: {"median": float(np.median(r[:, i])), "q16": float(np.quantile(r[:, i], 0.16)),
                "q84": float(np.quantile(r[:, i], 0.84))} for i, n in enumerate(NAMES)} | {"stars": int(ok.sum())}


def control(path, post, table, n_samples: int, seed: int) -> dict:
    """Max coverage error of member 0 alone and of member 0 drawn K times as a K-member mixture (separate copies
    loaded from ``path``), beside the ensemble's."""
    from ysocensus.model.checkpoint import load
    from ysocensus.model.posterior import EnsemblePosterior
    from ysocensus.validation.run import evaluate

    same = EnsemblePosterior([post.members[0]] + [load(path).members[0] for _ in post.members[1:]])
    out = {}
    for name, p in (("member_0", post.members[0]), ("member_0_k_times", same), ("ensemble", post)):
        r = evaluate(p, table, n_samples, seed=seed)
        out[name] = max(v["max_coverage_error"] for v in r["overall"]["parameters"].values())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="results/ensemble/model/model.ckpt")
    ap.add_argument("--training", default="results/ensemble/training")
    ap.add_argument("--stars", type=int, default=4000)
    ap.add_argument("--n-samples", type=int, default=64)
    ap.add_argument("--seed", type=int, default=20261125)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--control", action="store_true", help="also the mixture-mechanics control (all test stars)")
    ap.add_argument("--output", default="results/benchmarks/ensemble.json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from ysocensus import io
    from ysocensus.model.checkpoint import load
    from ysocensus.model.tokens import tokenize

    path = Path(a.model) if Path(a.model).is_absolute() else ROOT / a.model
    post = load(path)
    if not hasattr(post, "members"):
        sys.exit(f"{a.model}: a single network, not an ensemble (train.ensemble.members = 1)")
    training = Path(a.training) if Path(a.training).is_absolute() else ROOT / a.training
    table = pq.read_table(training / "test_population.parquet")
    t0 = time.perf_counter()
    meds, halves = member_summaries(post, tokenize(table.slice(0, a.stars), post.stats), a.n_samples, a.seed)
    out = {"model": str(a.model), "members": len(post.members), "n_samples": a.n_samples,
           "monte_carlo_median_scatter": 1.25 / np.sqrt(a.n_samples),
           "disagreement_over_half_width": disagreement(meds, halves),
           "seconds": round(time.perf_counter() - t0, 1), "machine": machine()}
    if a.control:
        out["max_coverage_error"] = control(path, post, table, a.n_samples, a.seed)
    print(json.dumps(out, indent=1))
    io.write_json(out, ROOT / a.output if not Path(a.output).is_absolute() else a.output)


if __name__ == "__main__":
    main()
