"""Dry-runs: the DAG has the expected rules, with one job per chunk for per-chunk rules."""

import re

import pytest
import yaml

from tests.conftest import REPO, run_snakemake
from ysocensus.sky import Tiling

#: rules that run once per job chunk of tiles; every other rule runs once per workflow
PER_CHUNK = {"population", "observe", "infer"}
#: rules only a deep ensemble (train.ensemble.members > 1) defines, in place of `train`
ENSEMBLE_RULES = {"train_member", "ensemble"}


def job_stats(*args) -> dict[str, int]:
    out = run_snakemake("-n", "--forceall", *args).stdout
    table = out.split("Job stats:")[1].split("\n\n")[0]
    return {m[0]: int(m[1]) for m in re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.M) if m[0] != "total"}


def rules_defined() -> set[str]:
    text = "\n".join(p.read_text() for p in (REPO / "workflow" / "rules").glob("*.smk"))
    # a rule's `name:` directive may name it otherwise by config (train / train_member): every name it can take
    named = {n for expr in re.findall(r"^\s*name:\s*\n\s*(.+)$", text, flags=re.M) for n in re.findall(r'"(\w+)"', expr)}
    return set(re.findall(r"^\s*rule (\w+):", text, flags=re.M)) | named | {"all"}


@pytest.mark.parametrize("sky", [
    {"nside": 1, "tiles": [0, 4, 5, 9], "tiles_per_job": 2},   # 3 chunks
    {"nside": 2, "tiles": "all", "tiles_per_job": 16},          # 3 chunks of 16
    {"nside": 4, "tiles": {"l": [0, 60], "b": [-30, 30]}, "tiles_per_job": 4},
])
def test_job_counts_follow_tiling(tmp_path, sky):
    with open(REPO / "config" / "test.yaml") as fh:
        config = yaml.safe_load(fh)
    config["sky"] = sky
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    stats = job_stats("--configfile", str(path))
    n_chunks = len(Tiling.from_config(sky).chunks)
    assert set(stats) == rules_defined() - {"compare_peers"} - ENSEMBLE_RULES
    for rule, count in stats.items():
        assert count == (n_chunks if rule in PER_CHUNK else 1), f"rule {rule}: {count} jobs"


def test_default_config_dry_run_lists_every_stage():
    stats = job_stats()
    with open(REPO / "config" / "config.yaml") as fh:
        sky = yaml.safe_load(fh)["sky"]
    assert stats["all"] == 1
    assert set(stats) == rules_defined() - {"compare_peers"} - ENSEMBLE_RULES
    assert stats["population"] == len(Tiling.from_config(sky).chunks)


def test_the_model_checkpoint_is_a_final_target():
    """`all` asks for the checkpoint itself: after an interrupted `--forcerun train` removed it, a plain rerun
    retrains rather than finding the downstream files up to date (Snakemake does not rebuild a missing
    intermediate file whose consumers are newer)."""
    out = run_snakemake("-n", "--forceall", "--configfile", str(REPO / "config" / "test.yaml"), "--printshellcmds",
                        "--rerun-triggers", "mtime").stdout
    block = out.split("rule all:")[1].split("\n\n")[0]
    assert "results/test/model/model.ckpt" in block


def test_an_ensemble_trains_each_member_as_its_own_job():
    """config/ensemble.yaml: one `train_member` job per network (each its own SLURM job on a cluster), then one
    `ensemble` job writing the checkpoint every later rule reads; no `train`."""
    stats = job_stats("--configfile", str(REPO / "config" / "ensemble.yaml"))
    with open(REPO / "config" / "ensemble.yaml") as fh:
        members = yaml.safe_load(fh)["train"]["ensemble"]["members"]
    assert members > 1 and stats["train_member"] == members and stats["ensemble"] == 1 and "train" not in stats
    assert set(stats) == rules_defined() - {"compare_peers", "train"}
