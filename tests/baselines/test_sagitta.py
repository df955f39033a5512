"""Sagitta's inputs from our catalog columns, its NaN filling and scaling."""

import numpy as np
import pytest

from ysocensus import io
from ysocensus.baselines import sagitta as sg


def _frame():
    return {"l": np.array([10.0, 200.0]), "b": np.array([-5.0, 3.0]), "parallax": np.array([2.0, np.nan]),
            "parallax_error": np.array([0.05, np.nan]), "phot_g_mean_mag": np.array([12.0, 15.0]),
            "phot_g_mean_flux_over_error": np.array([1000.0, 200.0]), "phot_bp_mean_mag": np.array([12.8, np.nan]),
            "phot_bp_mean_flux_over_error": np.array([300.0, np.nan]), "phot_rp_mean_mag": np.array([11.2, 14.0]),
            "phot_rp_mean_flux_over_error": np.array([400.0, 100.0]), "j_m": np.array([10.0, np.nan]),
            "j_msigcom": np.array([0.02, np.nan]), "h_m": np.array([9.5, 12.0]), "h_msigcom": np.array([0.03, 0.05]),
            "ks_m": np.array([9.4, 11.9]), "ks_msigcom": np.array([0.02, 0.04])}


def test_column_mapping_names_catalog_columns():
    for ours in sg.COLUMNS.values():
        assert ours in io.CATALOG.names
    assert set(sg.COLUMNS) == {"l", "b", "parallax", "eparallax", "g", "bp", "rp", "eg", "ebp", "erp",
                               "j", "h", "k", "ej", "eh", "ek"}


def test_inputs_and_gaia_errors():
    x = sg.inputs_from_catalog(_frame())
    assert x["g"][0] == 12.0 and x["k"][1] == 11.9 and x["eparallax"][0] == 0.05
    # 2.5 log10((foe + 1)/(foe - 1)) ≈ 2.5/ln10 · 2/foe for large foe
    assert x["eg"][0] == pytest.approx(2.5 / np.log(10) * 2 / 1000.0, rel=1e-3)
    assert np.isnan(x["bp"][1]) and np.isnan(x["ebp"][1])


def test_fill_missing_as_sagitta():
    filled, masks = sg.fill_missing(sg.inputs_from_catalog(_frame()))
    assert filled["parallax"][1] == 0.0 and filled["bp"][1] == 21.0 and filled["j"][1] == 18.0
    assert filled["eparallax"][1] == 2.0 and filled["ej"][1] == 0.1
    assert masks["bp"].tolist() == [False, True]
    assert sg._scale(np.array([4.0, 20.0]), "g").tolist() == [-1.0, 1.0]
    assert sg._unscale(np.array([-1.0, 1.0]), "age").tolist() == [6.0, 8.0]


@pytest.mark.skipif(sg.available() is not None, reason="sagitta not installed (extras: peers)")
def test_sagitta_networks_run():
    r = sg.SagittaModel().predict(sg.inputs_from_catalog(_frame()), n_mc=2)
    assert r["pms"].shape == (2,) and np.all((r["pms"] >= 0) & (r["pms"] <= 1))
    assert np.all((r["age"] > 5) & (r["age"] < 9)) and np.all(r["av"] >= -0.5)
    assert r["n_missing_inputs"].tolist() == [0, 3]
    assert "age_median" in r and "pms_mean" in r
