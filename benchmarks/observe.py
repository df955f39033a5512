"""Benchmark of the observe stage (issue 4): throughput and quality figures.

Writes results/benchmarks/observe.json and prints its figures:

* ``stars_per_second_per_core``: population rows per second of ``run_observe`` end to end (read the
  population Parquet, photometry incl. binaries and tracers, four surveys, write the catalog), one
  process, one thread (OMP/MKL/OpenBLAS threads pinned to 1), on a synthetic population of N stars
  (default 10^6) built on the track grid (``ysocensus.surveys.synthetic``); best of ``--repeat`` runs.
* the same for the in-memory ``observe_population`` alone, and for ``BCGrid.magnitudes``;
* the Sun's noise-free absolute magnitudes vs the reference values;
* the torch operator: max |Δmag| vs the numpy forward model on valid θ, and its forward+backward
  throughput (θ per second) on 262,144 θ (4,096 stars × 64 samples), single thread.

Usage: python benchmarks/observe.py [--n 1000000] [--repeat 3] [--isochrones results/models/isochrones.npz]
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from ysocensus import io  # noqa: E402
from ysocensus.stars.bolometric import BCGrid  # noqa: E402
from ysocensus.surveys.observe import run_observe, observe_population  # noqa: E402
from ysocensus.surveys.synthetic import synthetic_population  # noqa: E402

SUN_REFERENCE = {"phot_g_mean_mag": (4.67, "Casagrande & VandenBerg 2018"), "ks_m": (3.27, "Willmer 2018"),
                 "w1mpro": (3.26, "Willmer 2018")}


def _best(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--isochrones", default="results/models/isochrones.npz")
    ap.add_argument("--output", default="results/benchmarks/observe.json")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from ysocensus.stars.tracks import IsochroneGrid
    from ysocensus.surveys.operator import MeasurementOperator, forward_numpy

    iso_path = Path(args.isochrones)
    iso = IsochroneGrid.load(iso_path) if iso_path.exists() else None
    if iso is None or getattr(iso, "evolved_values", None) is None:    # absent or from an older build
        iso = IsochroneGrid.build()
    bc = BCGrid.from_astrolachesis()
    res: dict = {"n_stars": args.n, "repeat": args.repeat, "threads": 1}

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pop = synthetic_population(iso, args.n, tiles=tuple(range(8)))
        pop_path, cat_path, bc_path, iso_file = (tmp / "pop.parquet", tmp / "cat.parquet", tmp / "bc.npz",
                                                 tmp / "iso.npz")
        io.write_table(pop, pop_path, io.POPULATION)
        bc.save(bc_path)
        iso.save(iso_file)
        run_observe(pop_path, cat_path, seed=1, bc_path=bc_path, isochrones_path=iso_file)   # warm up
        t_chunk = _best(lambda: run_observe(pop_path, cat_path, seed=1, bc_path=bc_path,
                                              isochrones_path=iso_file), args.repeat)
        meta = io.read_metadata(cat_path)
        t_mem = _best(lambda: observe_population(pop, bc, iso, seed=1), args.repeat)
        ok = ~pop["is_remnant"] & np.isfinite(pop["teff_k"])
        args_mag = [pop[k][ok] for k in ("teff_k", "logg", "log10_lum_lsun", "feh", "av_mag", "distance_pc", "rv")]
        t_mag = _best(lambda: bc.magnitudes(*args_mag), args.repeat)
    res.update(
        stars_per_second_per_core=round(args.n / t_chunk),
        seconds_per_million_end_to_end=round(t_chunk * 1e6 / args.n, 3),
        stars_per_second_in_memory=round(args.n / t_mem),
        magnitudes_per_second=round(int(ok.sum()) / t_mag),
        target_stars_per_second_per_core=200_000,
        detected=meta["n_detected"], n_binaries=meta["n_binaries"],
    )

    one = np.ones(1)
    sun = bc.magnitudes(5772 * one, 4.438 * one, 0 * one, 0 * one, 0 * one, 10 * one)[0]
    res["sun_absolute_magnitudes"] = {b: round(float(sun[io.MAGNITUDES.index(b)]), 3) for b in io.MAGNITUDES}
    res["sun_minus_reference"] = {b: round(float(sun[io.MAGNITUDES.index(b)]) - ref, 3)
                                  for b, (ref, _) in SUN_REFERENCE.items()}
    res["sun_reference"] = {b: {"value": ref, "source": src} for b, (ref, src) in SUN_REFERENCE.items()}

    op = MeasurementOperator(iso, bc)
    rng = np.random.default_rng(0)
    n = 262_144
    theta = (rng.uniform(5.5, 10.2, n), rng.uniform(-1.3, 1.5, n), rng.uniform(-2.5, 0.5, n),
             rng.uniform(10, 3000, n), rng.uniform(0, 8, n))
    m_np, _, v_np = forward_numpy(iso, bc, *theta)
    ts = [torch.tensor(x, dtype=torch.float32) for x in theta]
    with torch.no_grad():
        m_t, _, v_t = op(*ts)
    diff = np.abs(m_t.numpy()[v_np] - m_np[v_np])
    res["operator_vs_numpy_max_abs_mag"] = float(diff.max())
    res["operator_valid_agreement"] = float((v_t.numpy() == v_np).mean())

    def fwd_bwd():
        xs = [t.clone().requires_grad_(True) for t in ts]
        mags, plx, _ = op(*xs)
        (mags.sum() + plx.sum()).backward()

    def fwd():
        with torch.no_grad():
            op(*ts)

    res["operator_theta_per_second_forward"] = round(n / _best(fwd, args.repeat))
    res["operator_theta_per_second_forward_backward"] = round(n / _best(fwd_bwd, args.repeat))

    io.write_json(res, args.output)
    for k, v in res.items():
        print(f"{k}: {v}")
    print(f"wrote {args.output}")
    return res


if __name__ == "__main__":
    main()
