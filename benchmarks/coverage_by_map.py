"""Benchmark of where a trained network's posteriors are too wide or too narrow: coverage by the per-star map each
parameter's flow runs in (the affine head gated by ``network.affine_widths``, or a measurement anchor).

Why: one network is calibrated on average (overall max coverage error ~0.03) while its A_V and distance over-cover
and its log age under-covers at middle levels (docs/measurements.md, tenth session). The head's gate decides where
a parameter's flow runs in the per-star coordinates y = (θ − c)/s: in full where the head's width s ≤ s_full,
not at all where s ≥ s_off, log-linearly between. Splitting the coverage by that regime says which part of the
parametrisation to fix.

For ``--stars`` rows of ``test_population.parquet`` (held out), ``--n-samples`` samples of the population posterior
per star, the PIT of ``validate`` (``validation.calibration.pit``); per parameter and map (none: the flow runs in θ; width s ≤ s_full; wider, which the gate gives only
partially applied head maps and anchors of loose measurements): coverage − α of the central
intervals at α = 0.25, 0.5, 0.75, 0.95, and the number of stars (with ~2,000 stars a value is uncertain by
~0.01–0.02).

Usage: python benchmarks/coverage_by_map.py [--model results/model/model.ckpt] [--training results/training]
           [--stars 6000] [--n-samples 64]
Writes results/benchmarks/coverage_by_map.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LEVELS = (0.25, 0.5, 0.75, 0.95)


def applied_widths(post, arrays) -> np.ndarray:
    """The width s [B, 5] of the map each θ slot's flow actually runs in (the gated head, overridden by the
    measurement anchors where they apply: ``anchors.latent_map``); 1 where there is none."""
    from ysocensus.model import sampler

    t, state, _, _ = post.proposal.prepared(arrays)
    cond = post.proposal.conditioning(t["values"], t["logsig"], t["sky"], state)
    with torch.no_grad():
        sampler.prepare(post.net, cond)
    if cond.anchor_s is None:
        return np.ones((len(arrays), 5))
    return cond.anchor_s[:, :5].numpy()


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="results/model/model.ckpt")
    ap.add_argument("--training", default="results/training")
    ap.add_argument("--stars", type=int, default=6000)
    ap.add_argument("--n-samples", type=int, default=64)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--output", default="results/benchmarks/coverage_by_map.json")
    args = ap.parse_args(argv)

    from ysocensus import io
    from ysocensus.model import checkpoint
    from ysocensus.model.streams import StarStreams
    from ysocensus.model.tokens import tokenize
    from ysocensus.validation.calibration import coverage, pit, truth_array

    post = checkpoint.load(ROOT / args.model if not Path(args.model).is_absolute() else args.model)
    if not getattr(post.net.config, "affine_head", False):
        raise SystemExit(f"{args.model}: the network has no affine head (network.affine_head), nothing to split by")
    s_full, s_off = post.net.config.affine_widths or (float("inf"), float("inf"))
    table = pq.read_table(Path(args.training) / "test_population.parquet")
    table = table.slice(0, min(args.stars, table.num_rows))
    arrays = tokenize(table, post.stats)
    samples, status = post.sample_tokens(arrays, args.n_samples, StarStreams.for_stars(args.seed,
                                                                                        np.arange(table.num_rows)))
    widths = applied_widths(post, arrays)
    regimes = {"no map": lambda w: w == 1.0, f"map, s <= {s_full}": lambda w: w <= s_full,
               f"map, s > {s_full}": lambda w: (w > s_full) & (w != 1.0)}
    u = pit(samples.astype(np.float64), truth_array(table), np.random.default_rng(args.seed))
    ok = status == "ok"
    out = {}
    for i, name in enumerate(io.PARAMETERS):
        out[name] = {}
        for label, in_regime in regimes.items():
            m = ok & np.isfinite(u[:, i]) & in_regime(widths[:, i])
            cov = coverage(u[m, i], LEVELS)[:, 0] if m.any() else [None] * len(LEVELS)
            out[name][label] = {"stars": int(m.sum()), "coverage_minus_alpha": {
                str(a): None if c is None else round(float(c - a), 4) for a, c in zip(LEVELS, cov)}}
    result = {"model": str(args.model), "stars": int(table.num_rows), "n_samples": args.n_samples,
              "affine_widths": [s_full, s_off], "by_parameter": out, "machine": machine()}
    io.write_json(result, ROOT / args.output if not Path(args.output).is_absolute() else args.output)
    for name, regs in out.items():
        for label, r in regs.items():
            print(f"{name:24s} {label:24s} n={r['stars']:5d} coverage - alpha {r['coverage_minus_alpha']}")
    return result


if __name__ == "__main__":
    main()
