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


#: seed distance between ensemble members (``member_config``): a large prime, so that no member's seed is the
#: workflow seed of a neighbouring run (seed + 1, ...)
MEMBER_SEED_STRIDE = 1_000_003


def member_config(cfg: Mapping, k: int) -> dict:
    """The resolved section member ``k`` of an ensemble (``train.ensemble``) is trained under: ``cfg`` with its seed
    moved by k × ``MEMBER_SEED_STRIDE`` (member 0 is the single model of the seed)."""
    out = dict(cfg)
    out["seed"] = int(cfg["seed"]) + int(k) * MEMBER_SEED_STRIDE
    return out


#: the schema's defaults of the whole ``train`` section
DEFAULTS: dict = merge({})
