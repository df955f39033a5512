"""Training throughput of the flow-matching loss: examples/s of forward + backward + AdamW step.

One optimisation step is what ``rule train`` runs per batch (``flow.flow_matching_loss`` on the default
network, condition masks drawn from the default mix, ``draws_per_example`` (t, noise) draws per example),
without Lightning's bookkeeping. Batches are rows of ``results/training/train.parquet`` when it exists
(tokenised with its normalisation), else synthetic token arrays with a realistic missing fraction.

Reported (``results/benchmarks/training.json``): ``examples_per_s`` (best of several windows: the
machine's figure on a shared box, like timeit's min), its median, ``examples_per_s_per_core``, and the
share of one step spent in the observation encoder (forward + backward), with the machine; and, timed in the
same run, ``examples_per_s_without_posterior_field``: the same network without the jointly trained posterior
field (``model.posterior_field``), what training cost before it.

    python benchmarks/training.py [--threads 2] [--seconds 30] [--batch-size 1024]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from _common import machine, synthetic_tokens  # noqa: E402

from ysocensus import io  # noqa: E402
from ysocensus.model.config import DEFAULTS  # noqa: E402
from ysocensus.model.flow import FlowConfig, flow_matching_loss, row_groups  # noqa: E402
from ysocensus.model.masks import MaskMix, sample_condition_states  # noqa: E402
from ysocensus.model.network import FlowTransformer, NetworkConfig  # noqa: E402


def _batches(n: int, seed: int):
    """Token tensors of n training rows and where they came from."""
    path = ROOT / "results/training/train.parquet"
    if path.exists():
        import pyarrow.parquet as pq

        from ysocensus.model.data import batch_from_table
        from ysocensus.model.tokens import Normalisation
        pf = pq.ParquetFile(path)
        stats = Normalisation.load(ROOT / "results/training/normalisation.json")
        rows = np.sort(np.random.default_rng(seed).choice(pf.metadata.num_rows, n, replace=False))
        table = pq.read_table(path).take(rows)
        return batch_from_table(table, stats, 0.0), f"{path.relative_to(ROOT)} ({n} random rows)"
    return synthetic_tokens(n, seed)  # no weights: the loss weighs every example 1


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=int(os.environ.get("YSOCENSUS_THREADS", 2)))
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--batch-size", type=int, default=DEFAULTS["optim"]["batch_size"])
    ap.add_argument("--output", default=str(ROOT / "results/benchmarks/training.json"))
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    n_batches = 8
    data, inputs = _batches(n_batches * a.batch_size, 0)
    net = FlowTransformer(NetworkConfig(**DEFAULTS["network"]))
    bare = FlowTransformer(NetworkConfig(**{**DEFAULTS["network"], "posterior_field": False}))
    mix, fcfg = MaskMix(**DEFAULTS["masks"]), FlowConfig(**DEFAULTS["flow"])
    opts = {id(m): torch.optim.AdamW(m.parameters(), lr=1e-3) for m in (net, bare)}
    g = torch.Generator().manual_seed(1)
    batches = [{k: v[i * a.batch_size:(i + 1) * a.batch_size] for k, v in data.items()} for i in range(n_batches)]
    states = [sample_condition_states(b["measured"], mix, g) for b in batches]

    def step(i, model=net):
        b, s = batches[i % n_batches], states[i % n_batches]
        out = flow_matching_loss(model, b, s, fcfg, g)
        opt = opts[id(model)]
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()

    def encoder_only(i):  # the encoder as the loss runs it: per row group
        b, s = batches[i % n_batches], states[i % n_batches]
        order, groups = row_groups(s)
        b = b if order is None else {k: v[order] for k, v in b.items()}
        s = s if order is None else s[order]
        for sl in groups:
            c = net.encode(b["values"][sl], b["logsig"][sl], b["sky"][sl], s[sl])
            sum(k.sum() for k in c.keys + c.values).backward()

    def windows(f, seconds):
        rates, i, t_end = [], 0, time.perf_counter() + seconds
        while time.perf_counter() < t_end or len(rates) < 3:
            t0, k = time.perf_counter(), 0
            while k < 4:
                f(i)
                i, k = i + 1, k + 1
            rates.append(k * a.batch_size / (time.perf_counter() - t0))
        return rates

    for i in range(3):  # warm-up
        step(i)
        step(i, bare)
    steps, steps_bare = [], []
    for _ in range(3):  # alternate windows of the two networks, so machine load hits both alike
        steps += windows(step, a.seconds / 3)
        steps_bare += windows(lambda i: step(i, bare), a.seconds / 6)
    enc = windows(encoder_only, a.seconds / 4)
    best, enc_best = max(steps), max(enc)
    out = {"examples_per_s": round(best, 1), "examples_per_s_median_window": round(float(np.median(steps)), 1),
           "examples_per_s_per_core": round(best / torch.get_num_threads(), 1),
           "examples_per_s_without_posterior_field": round(max(steps_bare), 1),
           "encoder_share_of_step": round(best / enc_best, 3), "windows": len(steps),
           "batch_size": a.batch_size, "draws_per_example": fcfg.draws_per_example,
           "flow_matching_samples_per_s": round(best * fcfg.draws_per_example, 1),
           "threads": torch.get_num_threads(), "inputs": inputs, "network": net.config.to_dict(),
           "parameters": sum(p.numel() for p in net.parameters()), "masks": mix.to_dict(),
           "machine": machine()}
    io.write_json(out, a.output)
    print(json.dumps(out, indent=2))
    print(f"training: {best:.0f} examples/s ({best / torch.get_num_threads():.0f} per core; "
          f"{max(steps_bare):.0f} without the posterior field; "
          f"{torch.get_num_threads()} threads, batch {a.batch_size}); encoder {100 * out['encoder_share_of_step']:.0f}% of a step")
    return out


if __name__ == "__main__":
    main()
