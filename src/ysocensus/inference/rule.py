"""Entry point of the workflow's ``infer`` rule (``scripts/infer.py`` calls :func:`run_infer`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping, Sequence

from ysocensus.logs import configure

log = logging.getLogger(__name__)

def run_infer(catalog: str, model: str, output: str, samples_output: str | None, section: Mapping,
             seed: int, chunk: int | str, threads: int, log_files: str | Sequence[str] | None = None,
             train: Mapping | None = None) -> dict:
    """Posterior summaries of one chunk's catalog with the trained model; returns the run report.

    ``section`` is the validated ``infer`` config section; the random stream is keyed by (seed, chunk), so a
    chunk's result does not depend on which other chunks run. ``train`` (the workflow's ``train`` section)
    makes the loader refuse a checkpoint trained under another config.
    """
    from ysocensus.model.config import resolve

    from ysocensus.inference.driver import InferOptions, infer_catalog
    from ysocensus.inference.model_adapter import load_sampler

    configure(log_files)
    opts = InferOptions.from_config(section, seed=int(seed), stream=int(chunk), progress=False)
    sampler = load_sampler(model, device=section.get("device", "auto"), threads=int(threads),
                           n_steps=section.get("ode_steps"), method=section.get("ode_method"),
                           rows_per_batch=section.get("rows_per_batch"),
                           expected_config=None if train is None else resolve(train, seed))
    report = infer_catalog(catalog, output, sampler, opts, samples_output=samples_output,
                           metadata={"chunk": int(chunk)})
    return report.to_dict()
