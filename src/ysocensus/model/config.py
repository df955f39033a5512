"""The ``train`` config section for code run outside Snakemake (tests, benchmarks, the CLI).

Its defaults live in one place, ``ysocensus/schemas/train.schema.yaml`` (package data); :func:`merge` validates a
(possibly partial) section against it and fills every default (unknown keys are errors).
"""

from __future__ import annotations

from typing import Mapping

from ysocensus.config import section


def merge(cfg: Mapping | None) -> dict:
    """The ``train`` section with every schema default filled, validated."""
    return section("train", dict(cfg or {}))


def resolve(cfg: Mapping | None, workflow_seed: int) -> dict:
    """The section as the trained model records it: defaults filled, ``seed`` offset by the workflow seed
    (what ``rule train`` writes into the checkpoint's fingerprint, and what loaders check against)."""
    out = merge(cfg)
    out["seed"] = int(workflow_seed) + int(out.get("seed", 0))
    return out


#: the schema's defaults of the whole ``train`` section
DEFAULTS: dict = merge({})
