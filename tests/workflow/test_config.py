"""The config schema accepts the shipped presets, fills defaults, and rejects bad configs by key."""

import copy

import pytest
import yaml
from snakemake.utils import validate

from tests.conftest import REPO, run_snakemake

#: the file the Snakefile validates with (package data, src/ysocensus/schemas/)
SCHEMA = str(REPO / "src" / "ysocensus" / "schemas" / "config.schema.yaml")
PRESETS = sorted((REPO / "config").glob("*.yaml"))


def load(name):
    with open(REPO / "config" / name) as fh:
        return yaml.safe_load(fh)


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.name)
def test_shipped_presets_validate(preset):
    with open(preset) as fh:
        config = yaml.safe_load(fh)
    validate(config, SCHEMA)


def test_defaults_fill_every_section():
    config = {}
    validate(config, SCHEMA)
    assert config["sky"] == {"nside": 2, "tiles": "all", "tiles_per_job": 8}
    assert isinstance(config["seed"], int)
    for section in ("population", "dust", "observe"):
        assert section in config


BAD = [
    ("unknown top-level key", {"sede": 1}, "sede"),
    ("unknown nested key", {"sky": {"nsid": 4}}, "nsid"),
    ("nside not a power of two", {"sky": {"nside": 12}}, "nside"),
    ("wrong type", {"sky": {"tiles_per_job": "eight"}}, "tiles_per_job"),
    ("negative count", {"sky": {"tiles_per_job": -1}}, "tiles_per_job"),
    ("negative seed", {"seed": -5}, "seed"),
    ("bad tile list", {"sky": {"tiles": [-1]}}, "tiles"),
]


@pytest.mark.parametrize("label, patch, key", BAD, ids=[b[0] for b in BAD])
def test_bad_configs_are_rejected_naming_the_key(label, patch, key):
    config = copy.deepcopy(load("test.yaml"))
    for k, v in patch.items():
        if isinstance(v, dict) and isinstance(config.get(k), dict):
            config[k] = {**config[k], **v}
        else:
            config[k] = v
    with pytest.raises(Exception) as err:
        validate(config, SCHEMA)
    assert key in str(err.value)


def test_bad_config_stops_snakemake_before_any_job(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("sky:\n  nside: 3\n")
    proc = run_snakemake("-n", "--configfile", str(bad), check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "nside" in out and "3 is not one of" in out
    assert "Job stats" not in out


def test_section_defaults_are_filled_at_every_depth():
    from ysocensus.config import load_schema, validate_config

    config = validate_config({}, SCHEMA)
    schema = load_schema(SCHEMA)
    for section in ("population", "dust", "observe"):
        props = schema["properties"][section].get("properties", {})
        for key, sub in props.items():
            if "default" in sub:
                assert key in config[section], f"{section}.{key} default not filled"


def test_validate_config_names_nested_keys():
    from ysocensus.config import ConfigError, validate_config

    with pytest.raises(ConfigError, match=r"config key sky\.nside: 3 is not one of"):
        validate_config({"sky": {"nside": 3}}, SCHEMA)
    with pytest.raises(ConfigError, match=r"config key sky: Additional properties.*'nsid'"):
        validate_config({"sky": {"nsid": 3}}, SCHEMA)


def test_workflow_and_package_validate_with_the_same_schema_files():
    """The Snakefile, common.smk and code run outside Snakemake (``ysocensus.config``, which an installed
    package reads as package data) all use the schemas in src/ysocensus/schemas/."""
    from pathlib import Path

    from ysocensus.config import SCHEMA_DIR, schema_path

    assert 'validate(config, "src/ysocensus/schemas/config.schema.yaml")' in (REPO / "Snakefile").read_text()
    assert 'Path(SRC) / "ysocensus" / "schemas" / "config.schema.yaml"' in (
        REPO / "workflow" / "rules" / "common.smk").read_text()
    assert Path(schema_path("config")).resolve() == Path(SCHEMA).resolve()
    assert {p.name for p in SCHEMA_DIR.glob("*.schema.yaml")} >= {
        "config.schema.yaml", "population.schema.yaml", "dust.schema.yaml", "observe.schema.yaml",
        "train.schema.yaml", "infer.schema.yaml", "maps.schema.yaml", "validate_real.schema.yaml"}


def _preset(name):
    """A shipped preset as Snakemake sees it: config/config.yaml (the Snakefile's configfile) extended by it."""
    from ysocensus.config import validate_config

    config = load("config.yaml")
    if name != "config.yaml":
        for key, value in load(name).items():
            config[key] = {**config[key], **value} if isinstance(value, dict) and key in config else value
    return validate_config(config, SCHEMA)


def test_presets_never_share_results_or_logs():
    """Issue 23, point 3: the test preset once wrote into the default's results/, mixing two runs in one report."""
    presets = {p.name: _preset(p.name) for p in PRESETS}
    assert presets["config.yaml"]["results_dir"] == "results" and presets["config.yaml"]["logs_dir"] == "logs"
    assert presets["test.yaml"]["results_dir"] == "results/test" and presets["test.yaml"]["logs_dir"] == "logs/test"
    for key in ("results_dir", "logs_dir"):
        dirs = [c[key] for c in presets.values()]
        assert len(set(dirs)) == len(dirs), f"two presets share {key}: {dirs}"


def test_only_the_test_preset_is_a_smoke_test():
    presets = {p.name: _preset(p.name)["preset"] for p in PRESETS}
    assert presets["test.yaml"]["smoke_test"] is True and presets["test.yaml"]["name"] == "test"
    assert presets["test.yaml"]["description"]
    assert [n for n, p in presets.items() if p["smoke_test"]] == ["test.yaml"]
    assert len({p["name"] for p in presets.values()}) == len(presets)


def test_results_dir_must_be_a_plain_path():
    from ysocensus.config import ConfigError, validate_config

    with pytest.raises(ConfigError, match="results_dir"):
        validate_config({"results_dir": "results/{chunk}"}, SCHEMA)
    with pytest.raises(ConfigError, match="preset"):
        validate_config({"preset": {"smoke": True}}, SCHEMA)


def test_test_preset_dry_run_writes_only_under_its_own_directories():
    """Every output, log and benchmark of a dry run of config/test.yaml lies under results/test/ or logs/test/,
    and Snakemake prints the smoke-test banner before the jobs."""
    import re

    proc = run_snakemake("-n", "--forceall", "--configfile", str(REPO / "config" / "test.yaml"))
    out = proc.stdout + proc.stderr
    assert "SMOKE TEST (preset 'test')" in out
    paths = re.findall(r"^\s+(?:output|log|benchmark): (.+)$", out, flags=re.M)
    files = [f.strip() for line in paths for f in line.split(",")]
    assert files
    stray = [f for f in files if not f.startswith(("results/test/", "logs/test/"))]
    assert not stray, stray
