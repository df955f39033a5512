"""The comparison table: targets met / missed / not run, and the printed table."""

import numpy as np

from ysocensus.baselines.peers import _clean, _targets, accuracy_block, format_table


def _methods(ours_auc=0.95, sag_auc=0.85, ours_err=0.15, sag_err=0.25, c2st=0.55, o_mce=0.03, n_mce=0.05):
    cal = lambda v: {"overall": {"max_coverage_error": v, "noise_floor_median": 0.02},  # noqa: E731
                     "by_survey_combination": {"gaia": {"max_coverage_error": v, "noise_floor_median": 0.02}}}
    return {"ours": {"status": "ok", "accuracy": {"auc_young": ours_auc, "median_abs_error_log_age_young": ours_err},
                     "c2st_vs_grid": {"c2st_mean": c2st, "c2st_no_av_mean": c2st}, "calibration": cal(o_mce)},
            "sagitta": {"status": "ok", "accuracy": {"auc_young": sag_auc, "median_abs_error_log_age_young": sag_err}},
            "npe": {"status": "ok", "calibration": cal(n_mce)}}


def test_targets_met_and_missed():
    t = {x["target"]: x for x in _targets(_methods(), {"ours": 1000.0, "grid": 0.5})}
    assert all(x["met"] for x in t.values())
    t = {x["target"]: x for x in _targets(_methods(ours_auc=0.8, c2st=0.9, o_mce=0.2), {"ours": 10.0, "grid": 0.5})}
    assert t["auc_better_than_sagitta"]["met"] is False
    assert t["c2st_vs_grid_at_most_0.60"]["met"] is False
    assert t["throughput_at_least_100x_grid"]["met"] is False
    assert t["calibration_no_worse_than_npe_in_every_combination"]["met"] is False


def test_no_model_row_and_table_text():
    m = _methods()
    m["ours"] = {"status": "not run: no model"}
    t = _targets(m, {"grid": 0.5})
    assert all(x["met"] is None and "no model" in x["note"] for x in t)
    result = {"table": [{"method": "ours", "status": "not run: no model"},
                        {"method": "npe", "status": "ok", "stars_per_s": 300.0, "max_coverage_error": 0.04,
                         "median_abs_error_log_age_young": 0.2, "auc_young": 0.9, "c2st_vs_grid": None,
                         "c2st_vs_grid_no_av": None}], "targets": t}
    text = format_table(result)
    assert "not run: no model" in text and "300.000" in text


def test_accuracy_block_and_clean():
    truth = np.array([6.5, 7.0, 9.0, 9.5])
    a = accuracy_block(np.array([0.9, 0.8, 0.1, 0.2]), np.array([6.6, 7.2, 9.0, 9.4]), truth)
    assert a["auc_young"] == 1.0 and abs(a["median_abs_error_log_age_young"] - 0.15) < 1e-9
    assert _clean({"a": np.float32(np.nan), "b": [np.int64(3), np.bool_(True)]}) == {"a": None, "b": [3, True]}
