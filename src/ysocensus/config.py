"""Validation of the workflow config against the schemas in ``ysocensus/schemas/``, with defaults at every depth.

The top-level schema ``config.schema.yaml`` refers to one schema file per section (``$ref:
population.schema.yaml`` …). ``snakemake.utils.validate`` checks such a config but does not fill the
defaults of the referenced sections, so the Snakefile calls :func:`validate_config` after it: the
section schemas are inlined, the config is validated once more and every default is filled in place.
Errors name the full key (``population.max_distance_pc``).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, validators


class ConfigError(ValueError):
    """The config does not follow the workflow schema."""


def load_schema(path: str | Path) -> dict:
    """The schema at ``path`` with every relative ``$ref`` to a sibling file inlined (recursively).

    ``$defs`` of an inlined file move to the root's ``$defs`` under ``<file stem>.<name>``, and the
    file's own ``#/$defs/...`` references are rewritten to match, so they still resolve.
    """
    defs: dict = {}
    schema = _load(Path(path), defs, root=True)
    if defs:
        schema.setdefault("$defs", {}).update(defs)
    return schema


def _load(path: Path, defs: dict, root: bool = False) -> dict:
    with open(path) as fh:
        schema = yaml.safe_load(fh)
    prefix = "" if root else f"{path.stem}."
    for name, sub in schema.pop("$defs", {}).items():
        defs[prefix + name] = _inline(sub, path.parent, prefix, defs)
    if not root:
        schema.pop("$schema", None)
    return _inline(schema, path.parent, prefix, defs)


def _inline(node: Any, base: Path, prefix: str, defs: dict) -> Any:
    if isinstance(node, dict):
        rest = {k: _inline(v, base, prefix, defs) for k, v in node.items() if k != "$ref"}
        ref = node.get("$ref")
        if not isinstance(ref, str):
            return rest
        if ref.startswith("#/$defs/"):
            return {"$ref": "#/$defs/" + prefix + ref[len("#/$defs/"):], **rest}
        if ref.startswith("#"):
            return {"$ref": ref, **rest}
        # sibling keywords of $ref (e.g. default: {}) win over the referenced file's
        return {**_load(base / ref, defs), **rest}
    if isinstance(node, list):
        return [_inline(v, base, prefix, defs) for v in node]
    return node


def _with_defaults(cls):
    check_properties = cls.VALIDATORS["properties"]

    def properties(validator, props, instance, schema):
        if isinstance(instance, dict):
            for name, sub in props.items():
                if "default" in sub and name not in instance:
                    instance[name] = _copy(sub["default"])
        yield from check_properties(validator, props, instance, schema)

    return validators.extend(cls, {"properties": properties})


def _copy(value):
    return yaml.safe_load(yaml.safe_dump(value))


_DefaultFilling = _with_defaults(Draft202012Validator)


def validate_config(config: dict, schema_path: str | Path) -> dict:
    """Validate ``config`` in place, filling defaults of every section; return it.

    Raises :class:`ConfigError` naming the key of the first problem (the most specific one).
    """
    schema = load_schema(schema_path)
    validator = _DefaultFilling(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (-len(e.absolute_path), str(e.message)))
    if errors:
        err = errors[0]
        key = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise ConfigError(f"config key {key}: {err.message}{more}")
    return config


#: the config schemas, shipped as package data (the Snakefile validates against the same files in a checkout)
SCHEMA_DIR = Path(str(resources.files("ysocensus") / "schemas"))


def schema_path(name: str = "config") -> Path:
    """The schema file of config section ``name`` (``config``: the whole config, ``population``, ``train`` …)."""
    return SCHEMA_DIR / f"{name}.schema.yaml"


def section(name: str, cfg: dict | None = None) -> dict:
    """One config section (``population``, ``dust``, ``observe`` …) validated, with every default filled.

    The same result as the workflow's validation of that section, for code run outside Snakemake (tests,
    benchmarks, the CLI). The input is not modified. Errors name the key as ``<name>.<key>``.
    """
    path = schema_path(name)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no config schema for section {name!r} (the package's schemas/ holds "
                                f"{sorted(p.name for p in SCHEMA_DIR.glob('*.schema.yaml'))})")
    try:
        return validate_config(_copy(dict(cfg or {})), path)
    except ConfigError as exc:
        raise ConfigError(str(exc).replace("config key ", f"config key {name}.", 1)
                          .replace(f"{name}.(top level)", name)) from None
