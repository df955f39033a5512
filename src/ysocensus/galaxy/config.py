"""Defaults of the ``population`` and ``dust`` config sections, read from their JSON schemas.

The schemas (``workflow/schemas/{population,dust}.schema.yaml``) are the one place where defaults live;
Snakemake fills them when it validates the config. Code run outside Snakemake (tests, benchmarks, the CLI)
calls :func:`section` to get the same filled and validated dictionary.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path
from typing import Mapping

SCHEMA_DIR = Path(__file__).resolve().parents[3] / "workflow" / "schemas"


@lru_cache(maxsize=None)
def _schema(name: str) -> dict:
    import yaml

    path = SCHEMA_DIR / f"{name}.schema.yaml"
    if not path.exists():
        raise FileNotFoundError(f"{path}: config schema not found (is the repository checked out?)")
    return yaml.safe_load(path.read_text())


def _fill(schema: Mapping, value):
    if schema.get("type") == "object" and isinstance(value, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                value[key] = _fill(sub, value[key])
    return value


def section(name: str, cfg: Mapping | None = None, validate: bool = True) -> dict:
    """The ``name`` section ("population" or "dust") with schema defaults filled in, validated."""
    schema = _schema(name)
    value = _fill(schema, copy.deepcopy(dict(cfg or {})))
    if validate:
        import jsonschema

        try:
            jsonschema.validate(value, schema)
        except jsonschema.ValidationError as exc:
            where = ".".join(str(p) for p in exc.absolute_path)
            raise ValueError(f"config {name}.{where}: {exc.message}") from None
    return value
