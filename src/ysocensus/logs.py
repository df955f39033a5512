"""Logging for rule jobs and the command line: one call sets up a log file and captures warnings; long steps
log their start, a line every minute while they run, and their elapsed time (:func:`phase`).

A smoke-test preset (config key ``preset.smoke_test``, e.g. ``config/test.yaml``) is announced at the top of
every rule's log: the workflow (``workflow/rules/common.smk``) puts the validated ``preset`` section into the
environment variable :data:`PRESET_ENV`, which rule jobs inherit, and :func:`configure` reads it.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping, Sequence

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: environment variable holding the workflow's ``preset`` section (JSON), set by workflow/rules/common.smk
PRESET_ENV = "YSOCENSUS_PRESET"


def smoke_test_banner(preset: Mapping, results_dir: str | None = None) -> str:
    """One plain line saying that a preset's outputs are a smoke test, not science."""
    where = f" Outputs: {results_dir}/." if results_dir else ""
    about = f" {preset['description'].strip()}" if preset.get("description") else ""
    return (f"SMOKE TEST (preset '{preset.get('name', 'custom')}'): this run checks that every stage works. Its "
            f"model is trained far too briefly for science: its posteriors, maps, completeness and calibration "
            f"numbers are not meaningful.{about}{where}")


def preset_from_environment() -> dict | None:
    """The workflow's ``preset`` section when this process is a rule job (see :data:`PRESET_ENV`), else None."""
    text = os.environ.get(PRESET_ENV)
    if not text:
        return None
    try:
        preset = json.loads(text)
    except ValueError:
        return None
    return preset if isinstance(preset, dict) else None


def configure(log_files: str | Sequence[str] | None = None, level: int = logging.INFO) -> logging.Logger:
    """Send log records (and Python warnings) to ``log_files`` (a Snakemake ``log:``) and stderr.

    Returns the package logger. Safe to call more than once: handlers are replaced, not stacked. In a rule
    job of a smoke-test preset the log opens with :func:`smoke_test_banner`.
    """
    if isinstance(log_files, (str, Path)):
        log_files = [log_files]
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    for path in log_files or ():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(path, mode="w"))
    logging.basicConfig(level=level, format=FORMAT, handlers=handlers, force=True)
    logging.captureWarnings(True)
    logger = logging.getLogger("ysocensus")
    preset = preset_from_environment()
    if preset and preset.get("smoke_test"):
        logger.warning("%s", smoke_test_banner(preset))
    return logger


def duration(seconds: float) -> str:
    """``42 s``, ``3.5 min`` or ``1.2 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


@contextmanager
def phase(logger: logging.Logger, what: str, expected_s: float | None = None,
          every_s: float = 60.0) -> Iterator[dict]:
    """Log the start of a long step, a line every ``every_s`` seconds while it runs (elapsed time, and the time
    left when ``expected_s`` is known) and its end with the elapsed time, so that no step is silent for minutes.

    Yields a dict; after the step its ``seconds`` holds the elapsed time. The step's own work is untouched (the
    heartbeat runs in a daemon thread that only logs).
    """
    expect = f" (expected ~{duration(expected_s)})" if expected_s else ""
    logger.info("%s ...%s", what, expect)
    t0 = time.monotonic()
    stop = threading.Event()

    def beat():
        while not stop.wait(every_s):
            elapsed = time.monotonic() - t0
            left = (f", ~{duration(max(expected_s - elapsed, 0.0))} left" if expected_s and elapsed < expected_s
                    else "")
            logger.info("%s: still running, %s elapsed%s", what, duration(elapsed), left)

    thread = threading.Thread(target=beat, name="ysocensus-heartbeat", daemon=True)
    thread.start()
    info: dict = {}
    try:
        yield info
    finally:
        stop.set()
        thread.join()
        info["seconds"] = time.monotonic() - t0
    logger.info("%s: done in %s", what, duration(info["seconds"]))
