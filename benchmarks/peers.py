"""Benchmark of issue 7: our model side by side with Sagitta, a brute-force grid posterior and a standard NPE.

Writes results/benchmarks/peers.json (one table, the targets of issue 7 with met / missed, every method's
details) and results/benchmarks/peers/peers_summary.png, and prints the table. The logic is in
``ysocensus.baselines.peers``; rule ``compare_peers`` (workflow/rules/peers.smk) runs the same code.

Needs the training set (results/training/, rule training_set), the stellar models and dust
(results/models/isochrones.npz, bc_grid.npz, results/dust/dust.npz) and, for our model's row, the
trained model results/model/model.ckpt (without it the row reads "not run: no model" and the peers still run).
Optional packages (extras ``peers``): ``sagitta``, ``zuko``, ``scikit-learn``.

Usage: python benchmarks/peers.py [--configfile config/config.yaml] [--n-test 2000] [--n-calibration 1500]
       [--n-grid 12] [--n-c2st-samples 256] [--npe-minutes 7] [--threads 2] [--reuse-npe]
Default size: about 12 minutes on 2 cores (NPE training takes the model's training budget, optim.max_minutes).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import yaml

from ysocensus.baselines.peers import DEFAULTS, run_compare_peers


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configfile", default="config/config.yaml", help="workflow config (population, dust, train, seed)")
    p.add_argument("--training-dir", default="results/training")
    p.add_argument("--model", default="results/model/model.ckpt")
    p.add_argument("--isochrones", default="results/models/isochrones.npz")
    p.add_argument("--bc", default="results/models/bc_grid.npz")
    p.add_argument("--dust", default="results/dust/dust.npz")
    p.add_argument("--out", default="results/benchmarks/peers.json")
    p.add_argument("--figures", default="results/benchmarks/peers")
    p.add_argument("--npe-path", default="results/benchmarks/peers/npe.pt", help="where the trained NPE is kept")
    p.add_argument("--reuse-npe", action="store_true", help="load the NPE from --npe-path instead of training it")
    for k, v in DEFAULTS.items():
        if k == "reuse_npe":
            continue
        typ = float if k == "npe_minutes" else int
        p.add_argument("--" + k.replace("_", "-"), type=typ, default=v)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    cfg = yaml.safe_load(Path(a.configfile).read_text()) or {}
    sizes = {k: getattr(a, k) for k in DEFAULTS if k != "reuse_npe"}
    sizes["reuse_npe"] = a.reuse_npe
    return run_compare_peers(a.training_dir, a.model, a.isochrones, a.bc, a.dust, a.out, a.figures,
                     population_cfg=cfg.get("population"), dust_cfg=cfg.get("dust"), train_cfg=cfg.get("train"),
                     sim_seed=int(cfg.get("seed", 0)), npe_path=a.npe_path, **sizes)


if __name__ == "__main__":
    main()
