"""Benchmark of the inference stage (issue 6): end-to-end throughput and memory of ``rule infer``.

Writes results/benchmarks/inference.json and prints its figures:

* ``stars_per_s``: catalog rows per second end to end (read the catalog Parquet → validate → model samples
  → 16/50/84th percentiles and P(young) → write the posterior Parquet), ``n_samples`` = 64, the model's
  default solver, on ``--stars`` rows of the simulated catalog (results/catalog/chunk_*.parquet), with
  ``--threads`` torch threads (default 2, the laptop); ``model_seconds_fraction`` says how much of it the
  model's sampling takes (the rest is this stage's reading, validation, summaries and writing) and
  ``driver_stars_per_s`` the throughput of everything but the model.
* ``memory_1m_tile``: peak resident memory (VmHWM) of a process streaming a 1,000,000-row catalog tile
  through the same driver and model, sampled while it runs for ``--memory-seconds`` (memory is flat once the
  first batch is through: nothing accumulates; batches of ``--memory-batch-size`` rows so that several pass in
  the window), then interrupted — which also checks that an interrupted run leaves no partial output.
* ``scaling``: what the measured per-core rate means for 10⁹ stars on N cluster nodes.

The model is ``--model`` (relative to the current directory; one that does not exist stops the benchmark), else
results/model/model.ckpt when it exists. Without one (the model stage not run yet) the benchmark uses an untrained network of the default architecture (``model.network.NetworkConfig()``,
normalisation fitted on the catalog) and says so in ``model``: sampling cost does not depend on the
weights, so the throughput holds for the trained model of the same architecture and solver.

Usage: python benchmarks/inference.py [--stars 8192] [--threads 2] [--memory-seconds 120]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from ysocensus import io

REPO = Path(__file__).resolve().parents[1]


class TimedSampler:
    """Wraps a sampler and accumulates the seconds spent in its ``sample`` calls."""

    def __init__(self, inner):
        self.inner = inner
        self.seconds = 0.0

    def sample(self, batch, n_samples, seed):
        t0 = time.perf_counter()
        out = self.inner.sample(batch, n_samples, seed)
        self.seconds += time.perf_counter() - t0
        return out

    def describe(self):
        return self.inner.describe()


def _catalog(paths: list[str], n: int | None) -> pa.Table:
    tables = [io.read_table(p, io.CATALOG) for p in paths]
    table = pa.concat_tables(tables)
    return table if n is None else table.slice(0, min(n, table.num_rows))


#: the workflow's model, relative to the repository
DEFAULT_MODEL = "results/model/model.ckpt"


def _model(path: Path, catalog: pa.Table, workdir: Path) -> tuple[Path, str]:
    if path.exists():
        return path, f"trained: {path}"
    import torch

    from ysocensus.model.checkpoint import save_checkpoint
    from ysocensus.model.network import FlowTransformer, NetworkConfig
    from ysocensus.model.tokens import Normalisation

    torch.manual_seed(0)
    net = FlowTransformer(NetworkConfig())
    stats = Normalisation.fit({c: catalog.column(c).to_numpy(zero_copy_only=False) for c in catalog.column_names})
    out = workdir / "untrained.ckpt"
    save_checkpoint(out, net, stats, {"benchmark": "untrained stand-in of the default architecture"})
    return out, ("untrained stand-in of the default architecture (NetworkConfig defaults, solver defaults of "
                 f"model.checkpoint.load); {path} did not exist")


def _tile(catalog: pa.Table, n: int) -> pa.Table:
    """A catalog tile of ``n`` rows made of repeated real rows with fresh unique source_ids."""
    reps = int(np.ceil(n / catalog.num_rows))
    table = pa.concat_tables([catalog] * reps).slice(0, n)
    ids = pa.array((np.int64(4095) << 32) | np.arange(n, dtype=np.int64))
    return table.set_column(table.column_names.index("source_id"), "source_id", ids)


_CHILD = """
import sys
from ysocensus.inference import InferOptions, infer_catalog
from ysocensus.inference.model_adapter import load_sampler
sampler = load_sampler(sys.argv[1], threads=int(sys.argv[4]), ensemble=None if sys.argv[6] == "-" else sys.argv[6])
print("started", flush=True)
infer_catalog(sys.argv[2], sys.argv[3], sampler, InferOptions(n_samples=64, batch_size=int(sys.argv[5])))
"""


def _vm(pid: int, key: str) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return float(line.split()[1]) / 1024.0  # kB → MiB
    return float("nan")


def memory_of_tile(model: Path, catalog: pa.Table, workdir: Path, n: int, seconds: float, threads: int,
                   batch_size: int, ensemble: str | None = None) -> dict:
    tile = workdir / "tile_1m.parquet"
    io.write_table(_tile(catalog, n), tile, io.CATALOG)
    out = workdir / "tile_1m_post.parquet"
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(model), str(tile), str(out), str(threads),
                             str(batch_size), ensemble or "-"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True,
                            cwd=REPO)
    proc.stdout.readline()
    t0 = time.perf_counter()
    trace = []
    while time.perf_counter() - t0 < seconds and proc.poll() is None:
        trace.append((round(time.perf_counter() - t0, 1), _vm(proc.pid, "VmRSS")))
        time.sleep(1.0)
    peak = _vm(proc.pid, "VmHWM") if proc.poll() is None else float("nan")
    finished = proc.poll() is not None
    if not finished:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    leftovers = sorted(p.name for p in workdir.iterdir() if p.name.startswith(".tile_1m_post") or p.name == out.name)
    rss = [r for _, r in trace]
    return {"rows": n, "batch_size": batch_size, "n_samples": 64, "threads": threads,
            "seconds_observed": round(time.perf_counter() - t0, 1), "finished": finished,
            "peak_rss_mib": round(peak, 1),
            "rss_mib_first_10s": round(float(np.nanmax(rss[:10])), 1) if rss else None,
            "rss_mib_last": round(rss[-1], 1) if rss else None,
            "rss_trace_mib": trace[:: max(1, len(trace) // 20)],
            "interrupted_left_partial_output": bool(leftovers) if not finished else None,
            "tile_file_mib": round(tile.stat().st_size / 2**20, 1)}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stars", type=int, default=8192, help="catalog rows for the throughput measurement")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=4096)
    ap.add_argument("--rows-per-batch", type=int, default=None, help="model's rows per network call (default: its own)")
    ap.add_argument("--model", default=None,
                    help="model checkpoint, relative to the current directory (default: the workflow's "
                         "results/model/model.ckpt, or an untrained stand-in of the default architecture where the "
                         "model stage has not run); a named model that does not exist stops the benchmark")
    ap.add_argument("--ensemble", choices=("mixture", "consensus"), default=None,
                    help="for an ensemble's checkpoint: its mixture or its consensus (default: the model's own)")
    ap.add_argument("--catalog", nargs="*", default=None, help="catalog Parquet files (default results/catalog)")
    ap.add_argument("--memory-rows", type=int, default=1_000_000,
                    help="rows of the tile whose memory is measured (0: skip)")
    ap.add_argument("--memory-seconds", type=float, default=150.0)
    ap.add_argument("--memory-batch-size", type=int, default=1024,
                    help="batch size of the 1M-row run (small, so that several batches pass in the window)")
    ap.add_argument("--cores-per-node", type=int, default=64)
    ap.add_argument("--output", default="results/benchmarks/inference.json")
    args = ap.parse_args(argv)

    from ysocensus.inference import InferOptions, infer_catalog, read_report
    from ysocensus.inference.model_adapter import load_sampler

    paths = args.catalog or sorted(glob.glob(str(REPO / "results/catalog/chunk_*.parquet")))
    if not paths:
        raise SystemExit("no catalog: run the workflow up to the observe stage (results/catalog/chunk_*.parquet)")
    with tempfile.TemporaryDirectory(prefix="bench_infer_") as tmp:
        work = Path(tmp)
        full = _catalog(paths, None)
        if args.model is not None and not Path(args.model).exists():
            raise SystemExit(f"--model {args.model}: no such file (from {Path.cwd()})")
        model, model_note = _model(REPO / DEFAULT_MODEL if args.model is None else Path(args.model).resolve(),
                                   full, work)
        sub = full.slice(0, min(args.stars, full.num_rows))
        cat = work / "catalog.parquet"
        io.write_table(sub, cat, io.CATALOG)
        sampler = TimedSampler(load_sampler(model, threads=args.threads, rows_per_batch=args.rows_per_batch,
                                            ensemble=args.ensemble))
        t0 = time.perf_counter()
        report = infer_catalog(cat, work / "post.parquet", sampler, InferOptions(n_samples=64, batch_size=args.batch_size))
        wall = time.perf_counter() - t0
        assert read_report(work / "post.parquet")["rows"] == sub.num_rows
        rate = sub.num_rows / wall
        driver_s = wall - sampler.seconds
        memory = {"rows": 0, "note": "not measured (--memory-rows 0)"}
        if args.memory_rows > 0:
            memory = memory_of_tile(model, full, work, args.memory_rows, args.memory_seconds, args.threads,
                                    args.memory_batch_size, args.ensemble)
            memory["rows_processed_estimate"] = int(min(args.memory_rows, rate * memory["seconds_observed"]))
            memory["full_tile_hours_at_measured_rate"] = round(args.memory_rows / rate / 3600, 2)
    per_core = rate / args.threads
    scaling = {"stars": 1e9, "assumption": f"throughput linear in cores (one infer job per core group, "
                                           f"{args.cores_per_node} cores per node), I/O not limiting",
               "per_core_stars_per_s": round(per_core, 2),
               "hours_by_nodes": {str(n): round(1e9 / (per_core * args.cores_per_node * n) / 3600, 2)
                                  for n in (1, 10, 100, 1000)},
               "core_hours": round(1e9 / per_core / 3600, 0),
               "gpu": "no GPU was available to this session; not measured"}
    result = {
        "stars_per_s": round(rate, 2), "n_stars": sub.num_rows, "n_samples": 64, "threads": args.threads,
        "batch_size": args.batch_size, "rows_per_batch": args.rows_per_batch, "wall_s": round(wall, 2),
        "model_seconds_fraction": round(sampler.seconds / wall, 4),
        "driver_stars_per_s": round(sub.num_rows / driver_s, 0) if driver_s > 0 else None,
        "status": report.status, "model": model_note, "solver": sampler.describe(),
        "target_stars_per_s": 100, "meets_target": rate >= 100,
        "memory_1m_tile": memory, "scaling_1e9": scaling,
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
    }
    io.write_json(result, REPO / args.output if not Path(args.output).is_absolute() else args.output)
    print(json.dumps({k: v for k, v in result.items() if k not in ("memory_1m_tile",)}, indent=1, default=str))
    print("memory (1M-row tile):", json.dumps({k: v for k, v in memory.items() if k != "rss_trace_mib"}))
    return result


if __name__ == "__main__":
    main()
