# Shared helpers of the workflow: tile chunks, output paths, the environment of rule jobs.
import os
import sys
from pathlib import Path

# rule jobs import the package from src/ even where it is not pip-installed (e.g. --sdm conda)
SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)
os.environ.update(
    PYTHONPATH=os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p)
)

from ysocensus.config import validate_config  # noqa: E402
from ysocensus.sky import Tiling  # noqa: E402

# fill the defaults of every section ($ref'd schemas), which snakemake's validate leaves out
validate_config(config, Path(SRC) / "ysocensus" / "schemas" / "config.schema.yaml")


TILING = Tiling.from_config(config["sky"])
CHUNKS = TILING.chunks


wildcard_constraints:
    chunk=r"\d+",


def per_chunk(pattern):
    """One path per job chunk of tiles, e.g. per_chunk("results/population/chunk_{chunk}.parquet")."""
    return expand(pattern, chunk=CHUNKS)


def chunk_tiles(wildcards):
    """The NESTED tiles that one job chunk handles (rule params)."""
    return list(TILING.tiles_in_chunk(int(wildcards.chunk)))


# Final products of each stage, collected by `rule all`. A stage's .smk file appends to this list.
FINAL_TARGETS = []


def final_targets():
    return FINAL_TARGETS
