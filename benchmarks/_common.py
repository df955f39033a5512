"""Pieces shared by the model benchmarks (``sampling.py``, ``training.py``): synthetic token inputs when no
workflow results exist, and the description of the machine a figure was measured on."""

from __future__ import annotations

import os
import platform

import torch

from ysocensus.model.tokens import N_TOKENS, SKY_INDEX


def synthetic_tokens(n: int, seed: int):
    """Token tensors of n rows with 60 % of the variables measured (the sky always), and their description."""
    g = torch.Generator().manual_seed(seed)
    measured = torch.rand(n, N_TOKENS, generator=g) < 0.6
    measured[:, SKY_INDEX] = True
    return {"values": torch.randn(n, N_TOKENS, generator=g), "logsig": torch.randn(n, N_TOKENS, generator=g),
            "sky": torch.randn(n, 4, generator=g), "measured": measured}, "synthetic tokens (60% measured)"


def machine() -> dict:
    """Platform, processor, cores, torch version and the 1-minute load average (a shared machine's load
    skews wall-clock figures)."""
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "torch": torch.__version__, "load_average_1min": os.getloadavg()[0]}
