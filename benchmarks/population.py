"""Throughput of stage 1: stars generated per second per core for one tile, and peak memory.

Counts every star generated (positions, ages, [Fe/H], masses, stellar parameters from the isochrone grid,
A_V from the 3D dust field, R_V, disk flags, the magnitude cut) and includes writing the tile's Parquet.
Runs on one core (BLAS/OpenMP threads pinned to 1). The isochrone grid and the dust field are built
first (not timed). Writes results/benchmarks/population.json and prints its figures.

    python benchmarks/population.py [--tile 26] [--nside 2] [--field-thinning 0.2] [--repeats 2]
"""

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from ysocensus import io  # noqa: E402
from ysocensus import population as P  # noqa: E402
from ysocensus.dust import DustField  # noqa: E402
from ysocensus.config import section  # noqa: E402
from ysocensus.galaxy.young import complexes_from_config  # noqa: E402
from ysocensus.stars.tracks import IsochroneGrid  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tile", type=int, default=26, help="NESTED tile (default 26: l~160, b~-20, through Perseus/Taurus)")
    ap.add_argument("--nside", type=int, default=2)
    ap.add_argument("--field-thinning", type=float, default=0.2, help="field thinning (default 0.2: ~1e6 stars)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "results" / "benchmarks" / "population.json"))
    args = ap.parse_args(argv)

    pop_cfg = section("population", {"thinning": {"field": args.field_thinning, "young_field": min(1.0, 20 * args.field_thinning)}})
    grid = IsochroneGrid.from_config(pop_cfg["stellar_models"])
    dust = DustField.build(section("dust"), complexes_from_config(pop_cfg["young"]), 1)
    ctx = P.Context.create(pop_cfg, 1, args.nside, grid, dust)
    P.generate_tile(ctx, 0)  # warm up (imports, caches)
    rss0 = rss_mb()
    best = None
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            t0 = time.perf_counter()
            table, st = P.generate_tile(ctx, args.tile)
            t_gen = time.perf_counter() - t0
            io.write_table(table, Path(tmp) / "tile.parquet", io.POPULATION, metadata={"tiles": {str(args.tile): st}})
            dt = time.perf_counter() - t0
            if best is None or dt < best[0]:
                best = (dt, t_gen, st, table.num_rows)
            del table
    dt, t_gen, st, rows = best
    n = st["total"]["generated"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "stars_per_second_per_core": n / dt,
        "stars_generated": n,
        "rows_written": rows,
        "seconds": dt,
        "seconds_generation": t_gen,
        "seconds_parquet": dt - t_gen,
        "peak_memory_mb": peak,
        "rss_before_tile_mb": rss0,
        "tile_memory_mb": peak - rss0,
        "tile": args.tile,
        "nside": args.nside,
        "field_thinning": args.field_thinning,
        "batch_stars": pop_cfg["sampling"]["batch_stars"],
        "cores": 1,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
    }
    io.write_json(result, args.out)
    print(f"population benchmark: tile {args.tile} (nside {args.nside}), {n:,} stars generated, {rows:,} written")
    print(f"  {result['stars_per_second_per_core']:,.0f} stars/s/core  ({dt:.2f} s: generation {t_gen:.2f} s, parquet {dt - t_gen:.2f} s)")
    print(f"  peak memory {peak:.0f} MB (process), {peak - rss0:.0f} MB above the loaded models")
    print(f"  -> {args.out}")
    return result


if __name__ == "__main__":
    main()
