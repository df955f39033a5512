"""Guidance ablation: train with the physics guidance term off and at one or more weights, judge on calibration.

Each variant is trained on the same training set (``results/training/``, from ``rule training_set``) with the
same budget and seed, then validated like ``rule validate``; the table of max coverage errors (with the noise
floor), accuracies and P(young) AUC goes to ``results/benchmarks/guidance_ablation.json``. The default of
``train.guidance.enabled`` / ``train.guidance.weight`` is decided from this table: a variant that narrows the
posteriors but raises the coverage error is a failure, not a win.

    python benchmarks/guidance_ablation.py --minutes 6 --weights 0 0.01 0.1 [--configfile config/config.yaml]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import yaml  # noqa: E402

from ysocensus import io  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configfile", default=str(ROOT / "config/config.yaml"))
    ap.add_argument("--minutes", type=float, default=6.0, help="training budget per variant")
    ap.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.01, 0.1], help="w_R; 0 = guidance off")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--training-dir", default=str(ROOT / "results/training"))
    ap.add_argument("--workdir", default=str(ROOT / "results/benchmarks/guidance_ablation"))
    ap.add_argument("--output", default=str(ROOT / "results/benchmarks/guidance_ablation.json"))
    ap.add_argument("--reuse-off", default=None, metavar="CKPT",
                    help="take the 'off' variant from this checkpoint (e.g. results/model/model.ckpt, trained by the "
                         "workflow under the same config, budget and seed) instead of training it again")
    a = ap.parse_args(argv)

    from ysocensus.model.training import run_train
    from ysocensus.validation.run import run_validate

    config = yaml.safe_load(open(a.configfile))
    seed = int(config.get("seed", 0))
    base = dict(config.get("train") or {})
    rows = {}
    for w in a.weights:
        name = "off" if w == 0 else f"w{w:g}"
        cfg = json.loads(json.dumps(base))
        cfg.setdefault("optim", {})["max_minutes"] = a.minutes
        cfg.setdefault("guidance", {}).update({"enabled": w > 0, "weight": w if w > 0 else 0.01})
        d = Path(a.workdir) / name
        ckpt = d / "model.ckpt"
        if w == 0 and a.reuse_off:
            ckpt = Path(a.reuse_off)
            summary = json.loads(ckpt.with_name("training_summary.json").read_text())
            if a.minutes != float(base.get("optim", {}).get("max_minutes", a.minutes)):
                cfg["optim"]["max_minutes"] = base["optim"]["max_minutes"]  # as it was trained
            summary["reused"] = str(ckpt)
        else:
            summary = run_train(a.training_dir, ckpt, d / "logs", cfg, seed, a.threads,
                                   ROOT / "results/models/isochrones.npz", ROOT / "results/models/bc_grid.npz")
        val = run_validate(ckpt, a.training_dir, d / "calibration.json", d / "figures", cfg, seed,
                             a.threads)
        rows[name] = {"guidance_weight": w, "training": summary,
                      "max_coverage_error": {p: v["max_coverage_error"] for p, v in val["parameters"].items()},
                      "median_abs_error": {p: v["median_abs_error"] for p, v in val["parameters"].items()},
                      "noise_floor_p90": val["noise_floor"]["all_parameters_p90"],
                      "p_young_auc": val["p_young"]["auc"]}
        print(name, json.dumps(rows[name]["max_coverage_error"]), "AUC", rows[name]["p_young_auc"])
    io.write_json({"minutes_per_variant": a.minutes, "variants": rows}, a.output)
    return rows


if __name__ == "__main__":
    main()
