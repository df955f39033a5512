"""The whole workflow on config/test.yaml through a real one-node SLURM cluster, with profiles/slurm.

The cluster (munge, slurmctld, slurmd from Debian) is started by tests/workflow/slurm/start.sh in a
temporary directory and stopped by its pid files; recipe: shared/notes/local-slurm.md. The test skips,
saying why, where it cannot run (not root, or the SLURM packages are not installed: `.ci/run` installs
them). It uses the profile exactly as the README documents it, plus `--slurm-status-command squeue`
because this cluster has no accounting database (the option the README documents for such clusters).
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.conftest import REPO, run_snakemake

SLURM_DIR = REPO / "tests" / "workflow" / "slurm"
pytestmark = [pytest.mark.slow, pytest.mark.slurm]


def _why_not():
    if os.geteuid() != 0:
        return "needs root to start munge/slurmctld/slurmd"
    missing = [b for b in ("slurmctld", "slurmd", "sbatch", "munged", "mungekey")
               if not (shutil.which(b) or os.path.exists(f"/usr/sbin/{b}"))]
    if missing:
        return f"SLURM not installed ({', '.join(missing)}): apt-get install slurmctld slurmd slurm-client munge"
    return None


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    # not under pytest's tmp_path: its parents are 0700, and munged runs as the munge user
    state = Path(tempfile.mkdtemp(prefix="ysocensus-slurm-"))
    state.chmod(0o755)
    start = subprocess.run([str(SLURM_DIR / "start.sh"), str(state)], capture_output=True, text=True, timeout=120)
    if start.returncode != 0:
        subprocess.run([str(SLURM_DIR / "stop.sh"), str(state)], timeout=60)
        pytest.fail(f"one-node SLURM did not start:\n{start.stdout}\n{start.stderr}")
    yield {"SLURM_CONF": str(state / "slurm.conf")}
    subprocess.run([str(SLURM_DIR / "stop.sh"), str(state)], timeout=60)
    shutil.rmtree(state, ignore_errors=True)


def test_workflow_runs_on_slurm(slurm_cluster, tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    run_snakemake(
        "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(workdir),
        "--configfile", str(REPO / "config" / "test.yaml"),
        "--workflow-profile", str(REPO / "profiles" / "slurm"),
        "--slurm-status-command", "squeue",
        "--slurm-init-seconds-before-status-checks", "5",
        "--jobs", "4",
        cwd=workdir, env=slurm_cluster, timeout=1500,
    )
    # every final product of the test config exists in the run's own directory
    dry = run_snakemake("--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
                        "--configfile", str(REPO / "config" / "test.yaml"), "-n", cwd=workdir)
    assert "Nothing to be done" in dry.stdout + dry.stderr
    assert any((workdir / "results").rglob("*.parquet"))
    assert any((workdir / "logs").rglob("*.log"))
