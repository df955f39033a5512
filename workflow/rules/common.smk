# Shared helpers of the workflow: tile chunks, output paths, the environment of rule jobs.
import json
import os
import sys
import warnings
from pathlib import Path

# rule jobs import the package from src/ even where it is not pip-installed (e.g. --sdm conda)
SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)
os.environ.update(
    PYTHONPATH=os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p)
)

from ysocensus.config import validate_config  # noqa: E402
from ysocensus.logs import PRESET_ENV, smoke_test_banner  # noqa: E402
from ysocensus.sky import Tiling  # noqa: E402

# fill the defaults of every section ($ref'd schemas), which snakemake's validate leaves out
validate_config(config, Path(SRC) / "ysocensus" / "schemas" / "config.schema.yaml")

# `snakemake --report` evaluates each job's default `disk` resource, max(2*input.size_mb, 1000), inside its
# own event loop; Snakemake catches the nested-loop error and leaves the size coroutine unawaited (harmless,
# Snakemake 9: rules.Rule.expand_resources). Only that message is silenced.
warnings.filterwarnings(
    "ignore",
    message=r"coroutine 'InputFiles\._predicated_size_files\.<locals>\.sizes' was never awaited",
    category=RuntimeWarning,
)

# Every output lives under results_dir and every log under logs_dir, so two presets never share files
# (config/test.yaml: results/test/, logs/test/).
RESULTS = config["results_dir"].rstrip("/")
LOGS = config["logs_dir"].rstrip("/")
PRESET = config["preset"]


def results(path):
    """An output path under the preset's results directory, e.g. results("population/sky.png")."""
    return f"{RESULTS}/{path}"


def logs(path):
    """A log (or benchmark) path under the preset's logs directory, e.g. logs("train/train.log")."""
    return f"{LOGS}/{path}"


# every rule's log opens with the preset when it is a smoke test (ysocensus.logs.configure reads this)
os.environ[PRESET_ENV] = json.dumps(PRESET, sort_keys=True)
if PRESET["smoke_test"]:
    print(smoke_test_banner(PRESET, RESULTS), file=sys.stderr)


TILING = Tiling.from_config(config["sky"])
CHUNKS = TILING.chunks


wildcard_constraints:
    chunk=r"\d+",


def per_chunk(pattern):
    """One path per job chunk of tiles, e.g. per_chunk(results("population/chunk_{chunk}.parquet"))."""
    return expand(pattern, chunk=CHUNKS)


def chunk_tiles(wildcards):
    """The NESTED tiles that one job chunk handles (rule params)."""
    return list(TILING.tiles_in_chunk(int(wildcards.chunk)))


# Final products of each stage, collected by `rule all`. A stage's .smk file appends to this list.
FINAL_TARGETS = []


def final_targets():
    return FINAL_TARGETS
