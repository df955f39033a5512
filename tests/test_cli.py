"""The ysocensus command line (console script entry point)."""

import subprocess
import sys

from ysocensus import cli


def test_tiles_lists_chunks_of_the_test_config(repo, capsys):
    assert cli.main(["tiles", str(repo / "config" / "test.yaml"), "-v"]) == 0
    out = capsys.readouterr().out
    assert "4 of 12 tiles selected, 3 job chunk(s)" in out
    assert "chunk 2: tiles [4, 5]" in out


def test_bad_config_is_reported_not_raised(repo, tmp_path, capsys):
    bad = repo / "config" / "_pytest_bad.yaml"
    bad.write_text("sky:\n  nside: 3\n")
    try:
        assert cli.main(["tiles", str(bad)]) == 2
    finally:
        bad.unlink()
    assert "nside" in capsys.readouterr().err


def test_schema_prints_units(capsys):
    assert cli.main(["schema", "catalog"]) == 0
    assert "parallax" in capsys.readouterr().out


def test_console_script_help():
    out = subprocess.run([sys.executable, "-m", "ysocensus.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "tiles" in out.stdout
