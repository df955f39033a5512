"""validate's log (issue 23, point 5): every phase says what it does, how long it should take and how long it took."""

import logging

from ysocensus.validation.run import Progress, _plan
from ysocensus.validation.degradations import DEGRADATIONS


def test_expected_durations_come_from_the_rate_of_the_same_kind(caplog):
    progress = Progress({"population": 3000.0, "simulation": 2000.0}, every_s=60)
    progress.measured("population", 100.0, 1.0)            # the probe: 100 samples/s
    assert progress.rate("simulation") == 100.0             # nothing of its own kind yet: all kinds together
    assert progress.left_s() == (2900 + 2000) / 100
    with caplog.at_level(logging.INFO, logger="ysocensus.validation.run"):
        with progress.phase("calibration on the population test set", 1000.0):
            pass
        progress.measured("simulation", 500.0, 1.0)        # the network's own posterior: 500 samples/s
        with progress.phase("calibration as simulated", 1000.0, kind="simulation"):
            pass
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "validation: calibration on the population test set ... (expected ~10 s)"
    assert lines[1].startswith("validation: calibration on the population test set: done in")
    assert lines[2].startswith("validation: ") and "elapsed in all, ~" in lines[2] and lines[2].endswith("left")
    assert lines[3] == "validation: calibration as simulated ... (expected ~2 s)"
    assert progress.units == {"population": 1100.0, "simulation": 1500.0}


def test_plan_counts_every_phase():
    vcfg = {"n_samples": 10, "degraded_stars": 50, "solvers": [["midpoint", 4], ["euler", 8]]}
    plan = _plan(vcfg, n_pop=100, n_test=80, n_width=5, resample_twice=True)
    assert plan["population"] == 100 * 10 + 80 * 10 + (1 + len(DEGRADATIONS)) * 2 * 50 * 10 + 2 * 100 * 10
    assert plan["simulation"] == 80 * 10 + 4 * 5 * 10
    assert _plan({**vcfg, "degraded_stars": 0}, 100, 80, 5, False)["population"] == 100 * 10 + 2 * 100 * 10
