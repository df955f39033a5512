"""ysocensus.logs: rule logs, and the smoke-test banner of a preset such as config/test.yaml (issue 23, point 3)."""

import json
import logging

import pytest

from ysocensus.logs import PRESET_ENV, configure, preset_from_environment, smoke_test_banner

SMOKE = {"name": "test", "smoke_test": True, "description": "Four tiles and a tiny network."}


@pytest.fixture(autouse=True)
def _restore_logging():
    yield
    logging.basicConfig(handlers=[logging.NullHandler()], force=True)


def test_a_smoke_test_rule_log_opens_with_the_banner(tmp_path, monkeypatch):
    monkeypatch.setenv(PRESET_ENV, json.dumps(SMOKE))
    path = tmp_path / "rule.log"
    configure(str(path)).info("work")
    lines = path.read_text().splitlines()
    assert "WARNING" in lines[0] and "SMOKE TEST (preset 'test')" in lines[0]
    assert "not meaningful" in lines[0] and "Four tiles and a tiny network." in lines[0]
    assert lines[1].endswith("work")


@pytest.mark.parametrize("value", [None, json.dumps({"name": "laptop", "smoke_test": False}), "not json"])
def test_other_presets_and_the_command_line_get_no_banner(tmp_path, monkeypatch, value):
    if value is None:
        monkeypatch.delenv(PRESET_ENV, raising=False)
    else:
        monkeypatch.setenv(PRESET_ENV, value)
    path = tmp_path / "rule.log"
    configure(str(path)).info("work")
    assert "SMOKE TEST" not in path.read_text()


def test_banner_names_the_preset_and_where_its_outputs_are(monkeypatch):
    text = smoke_test_banner(SMOKE, "results/test")
    assert text.startswith("SMOKE TEST (preset 'test')") and text.endswith("Outputs: results/test/.")
    monkeypatch.setenv(PRESET_ENV, json.dumps(SMOKE))
    assert preset_from_environment() == SMOKE


def test_phase_logs_start_heartbeat_and_end(caplog):
    import time

    from ysocensus.logs import phase

    logger = logging.getLogger("ysocensus.test_phase")
    with caplog.at_level(logging.INFO, logger="ysocensus.test_phase"):
        with phase(logger, "fitting", expected_s=60.0, every_s=0.05) as info:
            time.sleep(0.2)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "fitting ... (expected ~60 s)"
    assert any(line.startswith("fitting: still running, 0 s elapsed, ~60 s left") for line in lines[1:-1])
    assert lines[-1].startswith("fitting: done in") and info["seconds"] >= 0.2


def test_phase_does_not_claim_success_on_error(caplog):
    from ysocensus.logs import phase

    logger = logging.getLogger("ysocensus.test_phase")
    with caplog.at_level(logging.INFO, logger="ysocensus.test_phase"):
        with pytest.raises(RuntimeError):
            with phase(logger, "sampling", every_s=10):
                raise RuntimeError("boom")
    assert [r.getMessage() for r in caplog.records] == ["sampling ..."]


@pytest.mark.parametrize("seconds, text", [(5, "5 s"), (89, "89 s"), (150, "2.5 min"), (7200, "2.0 h")])
def test_duration(seconds, text):
    from ysocensus.logs import duration

    assert duration(seconds) == text
