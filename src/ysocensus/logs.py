"""Logging for rule jobs and the command line: one call sets up a log file and captures warnings."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Sequence

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(log_files: str | Sequence[str] | None = None, level: int = logging.INFO) -> logging.Logger:
    """Send log records (and Python warnings) to ``log_files`` (a Snakemake ``log:``) and stderr.

    Returns the package logger. Safe to call more than once: handlers are replaced, not stacked.
    """
    if isinstance(log_files, (str, Path)):
        log_files = [log_files]
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    for path in log_files or ():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(path, mode="w"))
    logging.basicConfig(level=level, format=FORMAT, handlers=handlers, force=True)
    logging.captureWarnings(True)
    return logging.getLogger("ysocensus")
