"""Shared fixtures: the repository root and a runner for the workflow's command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


def snakemake_cmd(*args: str) -> list[str]:
    """`snakemake` of the running interpreter's environment (the one pytest runs in)."""
    exe = Path(sys.executable).with_name("snakemake")
    return [str(exe) if exe.exists() else "snakemake", *args]


def run_snakemake(*args: str, cwd: Path = REPO, timeout: float = 600, check: bool = True,
                  env: dict | None = None) -> subprocess.CompletedProcess:
    """Run snakemake in ``cwd``; on failure show its output in the assertion message."""
    proc = subprocess.run(snakemake_cmd(*args), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


@pytest.fixture(scope="session")
def bc_grid():
    """The MIST/C3K bolometric-correction grid of the ten bands (astrolachesis), built once per session."""
    from ysocensus.stars.bolometric import load_bc_grid

    return load_bc_grid()


@pytest.fixture(scope="session")
def isochrones():
    """The default isochrone grid (MIST v2.5 + BHAC15, uncorrected), built once per session."""
    from ysocensus.stars.tracks import IsochroneGrid

    return IsochroneGrid.build()
