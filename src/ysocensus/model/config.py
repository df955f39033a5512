"""The ``train`` config section for code run outside Snakemake (tests, benchmarks, the CLI).

Its defaults live in one place, ``workflow/schemas/train.schema.yaml``; :func:`merge` validates a
(possibly partial) section against it and fills every default (unknown keys are errors).
"""

from __future__ import annotations

from typing import Mapping

from ysocensus.config import section


def merge(cfg: Mapping | None) -> dict:
    """The ``train`` section with every schema default filled, validated."""
    return section("train", dict(cfg or {}))


#: the schema's defaults of the whole ``train`` section
DEFAULTS: dict = merge({})
