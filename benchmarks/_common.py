"""Pieces shared by the model benchmarks (``sampling.py``, ``training.py``): synthetic token inputs when no
workflow results exist, and the description of the machine a figure was measured on."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

from ysocensus import io

from ysocensus.model.tokens import N_TOKENS, SKY_INDEX


def synthetic_tokens(n: int, seed: int):
    """Token tensors of n rows with 60 % of the variables measured (the sky always), and their description."""
    g = torch.Generator().manual_seed(seed)
    measured = torch.rand(n, N_TOKENS, generator=g) < 0.6
    measured[:, SKY_INDEX] = True
    return {"values": torch.randn(n, N_TOKENS, generator=g), "logsig": torch.randn(n, N_TOKENS, generator=g),
            "sky": torch.randn(n, 4, generator=g), "measured": measured}, "synthetic tokens (60% measured)"


#: the repository, against which a relative ``--output`` is taken
ROOT = Path(__file__).resolve().parents[1]


def run_arguments(ap, name: str) -> None:
    """The arguments of a benchmark that samples a workflow run's model: the run's results directory, samples per
    star, seed, torch threads and the JSON it writes (``results/benchmarks/<name>.json``)."""
    ap.add_argument("results", help="a workflow run's results directory")
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--output", default=f"results/benchmarks/{name}.json")


def write_result(result: dict, output: str) -> None:
    """``result`` as JSON at ``output`` (relative: from the repository, not the working directory)."""
    dest = Path(output)
    io.write_json(result, dest if dest.is_absolute() else ROOT / dest)


def machine() -> dict:
    """Platform, processor, cores, torch version and the 1-minute load average (a shared machine's load
    skews wall-clock figures)."""
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "torch": torch.__version__, "load_average_1min": os.getloadavg()[0]}
