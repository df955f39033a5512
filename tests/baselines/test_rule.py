"""rule compare_peers: complete (log, benchmark, threads, resources, conda, thin script) and not in `rule all`."""

import re

import pytest

from tests.conftest import REPO, run_snakemake

SMK = REPO / "workflow" / "rules" / "peers.smk"


def test_rule_has_every_directive_and_stays_out_of_rule_all():
    text = SMK.read_text()
    assert "rule compare_peers:" in text
    for key in ("log:", "benchmark:", "threads:", "resources:", "conda:", "script:"):
        assert key in text, f"compare_peers lacks {key}"
    assert '"../../scripts/compare_peers.py"' in text
    assert "FINAL_TARGETS" not in text   # on demand only


@pytest.mark.skipif('include: "workflow/rules/peers.smk"' not in (REPO / "Snakefile").read_text(),
                    reason="Snakefile does not include workflow/rules/peers.smk yet")
def test_dry_run_lists_compare_peers(tmp_path):
    common = ("-n", "--directory", str(tmp_path), "--snakefile", str(REPO / "Snakefile"),
              "--configfile", str(REPO / "config" / "test.yaml"), "--quiet", "rules")
    proc = run_snakemake("compare_peers", *common)
    assert re.search(r"compare_peers\s+1", proc.stdout + proc.stderr)
    proc = run_snakemake(*common)                    # rule all
    assert "compare_peers" not in proc.stdout + proc.stderr
