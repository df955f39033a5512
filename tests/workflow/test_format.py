"""The Snakefile and rule files are formatted with snakefmt (the workflow catalog's convention)."""

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def test_snakefmt_clean():
    exe = Path(sys.executable).with_name("snakefmt")
    files = [str(REPO / "Snakefile"), *map(str, sorted((REPO / "workflow" / "rules").glob("*.smk")))]
    proc = subprocess.run([str(exe) if exe.exists() else "snakefmt", "--check", *files],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
