"""Per-star coordinates ablation: train with the network's affine head (``train.network.affine_head``) and the
measurement anchors (``train.anchors``) on or off, for one or more training seeds, and judge each on calibration.

Variants: ``plain`` (neither), ``feh`` / ``distance`` / ``both`` (measurement anchors only), ``head`` (the affine
head only, everywhere), ``head_feh`` (the head everywhere with the [Fe/H] anchor on its slot), ``head_lamost_feh``
(the head on LAMOST rows only) and ``head_sharp_feh`` (the head where its width is ≤ 0.05–0.15: the default; see
``docs/measurements.md``, section ``ysocensus.model.anchors``, for the figures).

Every variant is trained on the same training set (``results/training/``) with the same wall-clock budget, then
validated like ``rule validate``. The table (``results/benchmarks/anchors_ablation.json``) keeps, per variant
and seed, the overall max coverage error of each parameter, the worst parameter of every survey combination
with at least 500 test stars, and the distance coverage error of the bright stars (G < 15) whose parallaxes
are the sharpest. One seed is not enough to decide: two seeds of the same config differ by up to 0.03 in a
survey combination.

    python benchmarks/anchors_ablation.py --variants plain head head_feh --seeds 0 1 [--minutes 7]
    python benchmarks/anchors_ablation.py --collect off_seed0=results/model ...   # tabulate finished runs

``--collect`` reads runs already trained and validated (a directory with ``config.json``,
``training_summary.json`` and ``calibration.json``, e.g. ``results/model`` beside ``results/validation``).
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

def _variant(head: bool, anchored: list | None, rows: str = "all", widths: list | None = None) -> dict:
    return {"network": {"affine_head": head, "affine_rows": rows, "affine_widths": widths},
            "anchors": {"enabled": anchored is not None, **({"parameters": anchored} if anchored else {})}}


VARIANTS = {"plain": _variant(False, None), "feh": _variant(False, ["feh"]), "distance": _variant(False, ["distance_pc"]),
            "both": _variant(False, ["feh", "distance_pc"]), "head": _variant(True, None),
            "head_feh": _variant(True, ["feh"]), "head_lamost_feh": _variant(True, ["feh"], rows="lamost"),
            "head_sharp_feh": _variant(True, ["feh"], widths=[0.05, 0.15])}


def summarise(val: dict) -> dict:
    """The ablation's figures from a ``calibration.json`` dict."""
    combos = {k: {"n_stars": v["n_stars"],
                  "max_coverage_error": max(q["max_coverage_error"] for q in v["parameters"].values()),
                  "worst_parameter": max(v["parameters"], key=lambda p: v["parameters"][p]["max_coverage_error"])}
              for k, v in val["by_survey_combination"].items() if v["n_stars"] >= 500}
    g = val["by_g_magnitude"]
    return {"max_coverage_error": {p: v["max_coverage_error"] for p, v in val["parameters"].items()},
            "by_survey_combination": combos,
            "bright_distance_max_coverage_error": {k: g[k]["parameters"]["distance_pc"]["max_coverage_error"]
                                                   for k in ("-inf..12", "12..15") if k in g},
            "p_young_auc": val["p_young"]["auc"], "targets_met": val["targets"]["all_met"]}


def collect(items, output) -> dict:
    rows = {}
    for item in items:
        name, d = item.split("=", 1)
        d = Path(d)
        cal = d / "calibration.json" if (d / "calibration.json").exists() else d.parent / "validation/calibration.json"
        cfg = json.loads((d / "config.json").read_text())
        summary = json.loads((d / "training_summary.json").read_text())
        rows[name] = {"anchors": cfg.get("anchors"), "network": cfg.get("network", {}),
                      "seed": cfg["seed"], "steps": summary["steps"], "run": str(d),
                      **summarise(json.loads(cal.read_text()))}
    io.write_json({"variants": rows}, output)
    print(json.dumps(rows, indent=1))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configfile", default=str(ROOT / "config/config.yaml"))
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="train.seed offsets")
    ap.add_argument("--minutes", type=float, default=None, help="training budget (default: the config's)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--training-dir", default=str(ROOT / "results/training"))
    ap.add_argument("--workdir", default=str(ROOT / "results/benchmarks/anchors_ablation"))
    ap.add_argument("--output", default=str(ROOT / "results/benchmarks/anchors_ablation.json"))
    ap.add_argument("--collect", nargs="+", metavar="NAME=DIR", help="tabulate finished runs instead of training")
    a = ap.parse_args(argv)
    if a.collect:
        return collect(a.collect, a.output)

    from ysocensus.model.training import run_train
    from ysocensus.validation.run import run_validate

    config = yaml.safe_load(open(a.configfile))
    seed = int(config.get("seed", 0))
    rows = {}
    for name in a.variants:
        for s in a.seeds:
            cfg = json.loads(json.dumps(config.get("train") or {}))
            cfg["seed"] = s
            if a.minutes is not None:
                cfg.setdefault("optim", {})["max_minutes"] = a.minutes
            for section, patch in VARIANTS[name].items():
                cfg[section] = {**cfg.get(section, {}), **patch}
            d = Path(a.workdir) / f"{name}_seed{s}"
            summary = run_train(a.training_dir, d / "model.ckpt", d / "logs", cfg, seed, a.threads)
            val = run_validate(d / "model.ckpt", a.training_dir, d / "calibration.json", d / "figures", cfg,
                                 seed, a.threads)
            rows[f"{name}_seed{s}"] = {"anchors": cfg["anchors"], "network": cfg["network"],
                                       "seed": s, "steps": summary["steps"], **summarise(val)}
            print(name, s, json.dumps(rows[f"{name}_seed{s}"]["by_survey_combination"]))
    io.write_json({"variants": rows}, a.output)
    return rows


if __name__ == "__main__":
    main()
