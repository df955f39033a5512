"""Benchmark: the simulator's own association members through ``ysocensus infer``, under each prior.

Why: real validation members are a membership list, selected by kinematics, which the model does not read. At a
pre-main-sequence star's place in the colour–magnitude diagram the simulated Galaxy also holds old unresolved binaries
and reddened old stars, and the population posterior (the default) weighs them in: it answers for every star with
these measurements, not for a member. This measures what that selection does where the truth is known. The members
of named complexes of a workflow run's population (``cluster_id`` // 1000 = the complex's index in
``population.young.complexes``), as its observe stage saw them, are written as the real files are (Gaia values
without σ, 2MASS and AllWISE, LAMOST not cross-matched: ``validation.degradations.lamost_unmatched_no_sigma``) and
inferred under the population, simulation and structure priors (``model.priors``). Per prior it prints the median
|Δ log age| to the true age, the median Δ, the fraction of true ages inside the 16–84 % interval, and the median Δ
by true initial mass.

Usage: python benchmarks/members_selection.py RESULTS_DIR [--config config/config.yaml] [--per-group 800]
       [--output results/benchmarks/members_selection.json]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from _common import machine, run_arguments, write_result  # noqa: E402

from ysocensus import io  # noqa: E402
from ysocensus.config import section  # noqa: E402
from ysocensus.galaxy.young import complexes_from_config  # noqa: E402
from ysocensus.model.checkpoint import load  # noqa: E402
from ysocensus.model.priors import ALL_PRIORS  # noqa: E402
from ysocensus.model.tokens import tokenize  # noqa: E402
from ysocensus.validation import calibration as cal  # noqa: E402
from ysocensus.validation.degradations import degrade  # noqa: E402

GROUPS = ("ophiuchus", "corona_australis", "upper_scorpius", "upper_centaurus_lupus")
#: true initial mass bins (M☉) of the per-mass medians
MASS_EDGES = (0.0, 0.1, 0.2, 0.4, 0.7, 1.2, 10.0)


def members(results: Path, young: dict, groups, per_group: int, g_max: float, seed: int) -> pa.Table:
    """Catalog rows (with truth) of up to ``per_group`` random detected members of each complex in ``groups`` with
    G < ``g_max``, a BP and a parallax, and a ``group`` column."""
    index = {c.name: k for k, c in enumerate(complexes_from_config(young))}
    missing = [g for g in groups if g not in index]
    if missing:
        raise SystemExit(f"complexes {missing} are not in this config's population.young.complexes")
    want = {index[g]: g for g in groups}
    truth = pa.concat_tables([pq.read_table(f, columns=["source_id", "cluster_id"] + list(io.PARAMETERS))
                              for f in sorted((results / "population").glob("chunk_*.parquet"))])
    cid = truth.column("cluster_id").to_numpy()
    keep = (cid >= 0) & np.isin(cid // 1000, list(want))
    truth = truth.filter(pa.array(keep))
    cat = pa.concat_tables([pq.read_table(f) for f in sorted((results / "catalog").glob("chunk_*.parquet"))])
    cat = cat.filter(pa.array(np.isin(cat.column("source_id").to_numpy(), truth.column("source_id").to_numpy())))
    t = cat.join(truth, "source_id").sort_by("source_id")
    ok = np.ones(t.num_rows, bool)
    for c in ("phot_g_mean_mag", "phot_bp_mean_mag", "parallax"):
        ok &= ~np.isnan(t.column(c).to_numpy(zero_copy_only=False).astype(float))
    ok &= t.column("phot_g_mean_mag").to_numpy(zero_copy_only=False).astype(float) < g_max
    t = t.filter(pa.array(ok))
    names = np.array([want[k] for k in t.column("cluster_id").to_numpy() // 1000])
    rng = np.random.default_rng(seed)
    rows = np.sort(np.concatenate([rng.permutation(np.flatnonzero(names == g))[:per_group] for g in groups]))
    return t.take(pa.array(rows)).append_column("group", pa.array(names[rows]))


def scores(samples: np.ndarray, truth: np.ndarray, mass: np.ndarray) -> dict:
    ok = np.isfinite(samples[..., 0]).all(1)
    q16, q50, q84 = np.percentile(samples[ok, :, 0], [16, 50, 84], axis=1)
    d = q50 - truth[ok]
    bins = np.digitize(mass[ok], MASS_EDGES[1:-1])
    return {"stars": int(ok.sum()), "median_abs_dlog_age": float(np.median(np.abs(d))),
            "median_dlog_age": float(np.median(d)),
            "inside_16_84": float(np.mean((q16 <= truth[ok]) & (truth[ok] <= q84))),
            "median_dlog_age_by_mass": {f"{MASS_EDGES[k]}-{MASS_EDGES[k + 1]}": float(np.median(d[bins == k]))
                                        for k in range(len(MASS_EDGES) - 1) if (bins == k).any()}}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    run_arguments(ap, "members_selection")
    ap.add_argument("--config", default=str(ROOT / "config" / "config.yaml"), help="the run's config file")
    ap.add_argument("--groups", nargs="+", default=list(GROUPS), help="complexes (population.young.complexes)")
    ap.add_argument("--per-group", type=int, default=800)
    ap.add_argument("--g-max", type=float, default=19.0)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    res = Path(args.results)
    population = section("population", (yaml.safe_load(Path(args.config).read_text()) or {}).get("population", {}))
    table = degrade(members(res, population["young"], args.groups, args.per_group, args.g_max, args.seed),
                    "lamost_unmatched_no_sigma")
    truth = cal.truth_array(table)
    post = load(res / "model" / "model.ckpt")
    arrays = tokenize(table, post.stats)
    out = {"machine": machine(), "results": str(res), "groups": {str(g): int(n) for g, n in zip(
        *np.unique(table.column("group").to_numpy(zero_copy_only=False).astype(str), return_counts=True))},
        "catalog": "lamost_unmatched_no_sigma", "priors": {}}
    for prior in ALL_PRIORS:
        with post.using_prior(prior):
            s, _ = post.sample_tokens(arrays, args.samples, torch.Generator().manual_seed(args.seed))
        out["priors"][prior] = scores(s, truth[:, 0], truth[:, 1])
        r = out["priors"][prior]
        print(f"{prior:11s} |Δ| {r['median_abs_dlog_age']:.3f}  Δ {r['median_dlog_age']:+.3f}  "
              f"inside {r['inside_16_84']:.3f}  by mass " +
              " ".join(f"{k}:{v:+.2f}" for k, v in r["median_dlog_age_by_mass"].items()))
    print(f"on {sum(out['groups'].values())} simulated members: {out['groups']}")
    write_result(out, args.output)
    return out


if __name__ == "__main__":
    main()
