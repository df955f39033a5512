"""Benchmark of how far one pipeline run's headline figures move with its seed: the spread over several runs.

Why: a single run's real-member figures move by 0.2–0.4 dex per group and its simulated coverage error by ~0.01
when only the seed changes (docs/measurements.md, eighth and eleventh sessions). A change judged on one run can
look better or worse by that much, so compare it with the spread of several runs of each arm, not with one.

Reads each run's ``validation/calibration.json`` and ``validation/real.json`` (a workflow's ``results`` directory,
e.g. of ``snakemake --cores all --config seed=...`` in fresh clones) and prints, per run and as min / median / max
over the runs: the simulated overall max coverage error, the worst survey combination, AUC and the catalogs as
users supply them; on the real members (as published and without σ) AUC, called young, old called young, the
median |Δ log age|, inside 16–84 % and each young group's median age, each against issue 21's target (and,
where the validation revised a group age, the same with the files' own labels: ``*_file_labels_*``).

Usage: python benchmarks/seed_spread.py RESULTS_DIR [RESULTS_DIR ...] [--output results/benchmarks/seed_spread.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ysocensus import io
from ysocensus.validation.real import TARGETS

ROOT = Path(__file__).resolve().parents[1]
#: issue 21's simulated targets (max coverage errors at most, AUC at least)
SIM_TARGETS = {"overall": ("<=", 0.03), "worst_combination": ("<=", 0.08), "auc": (">=", 0.99)}
REAL_KEYS = tuple(TARGETS) + ("old_called_young",)
YOUNG_GROUPS = ("rho Oph", "Corona Australis on-cloud", "Upper Corona Australis", "Upper Centaurus-Lupus",
                "beta Pictoris MG")


def run_figures(results: Path) -> dict:
    """The headline figures of one run's results directory."""
    cal = json.loads((results / "validation" / "calibration.json").read_text())
    real = json.loads((results / "validation" / "real.json").read_text())
    combos = cal["targets"]["by_survey_combination"]
    out = {"overall": cal["max_coverage_error_all"],
           "worst_combination": max(v["value"] for v in combos.values()),
           "auc": cal["p_young"]["auc"]}
    for name, v in cal["as_users_supply"]["variants"].items():
        out[f"users_{name}"] = v["calibration"]["max_coverage_error"]
    for variant, m in real["variants"].items():
        for k in REAL_KEYS:
            out[f"real_{variant}_{k}"] = m[k]
        for k, v in (m.get("under_file_labels") or {}).items():  # a revised group age: the files' own beside
            out[f"real_{variant}_file_labels_{k}"] = v
        for g in YOUNG_GROUPS:
            if g in m["groups"]:
                out[f"real_{variant}_group_age_{g}"] = m["groups"][g]["median_log10_age_yr_q50"]
    return out


def target_of(key: str):
    """(op, value) of issue 21's target for a figure, or None."""
    if key in SIM_TARGETS:
        return SIM_TARGETS[key]
    if key.startswith("users_"):  # every degradation users bring: the overall target
        return SIM_TARGETS["overall"]
    for k, t in TARGETS.items():
        if key.endswith(k) and key.startswith("real_"):
            return t
    return None


def spread(runs: dict[str, dict]) -> dict:
    """Per figure: min, median, max over the runs, and the target (where issue 21 names one)."""
    keys = sorted({k for r in runs.values() for k in r})
    out = {}
    for k in keys:
        v = np.array([r[k] for r in runs.values() if r.get(k) is not None], np.float64)
        if v.size:
            out[k] = {"min": float(v.min()), "median": float(np.median(v)), "max": float(v.max()), "n": int(v.size),
                      "target": target_of(k)}
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+", help="a workflow run's results directory (one per seed)")
    ap.add_argument("--output", default="results/benchmarks/seed_spread.json")
    args = ap.parse_args(argv)
    runs = {str(p): run_figures(Path(p)) for p in args.results}
    result = {"runs": runs, "spread": spread(runs)}
    out = Path(args.output)
    io.write_json(result, out if out.is_absolute() else ROOT / out)
    for k, s in result["spread"].items():
        t = "" if s["target"] is None else f"  (target {s['target'][0]} {s['target'][1]})"
        print(f"{k:50s} min {s['min']:.3f}  median {s['median']:.3f}  max {s['max']:.3f}  n={s['n']}{t}")
    return result


if __name__ == "__main__":
    main()
