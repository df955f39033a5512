"""Empirical 2MASS/WISE offsets: the models' dwarf colours onto the Pecaut & Mamajek (2013) / Mamajek (2024)
sequence."""

from __future__ import annotations

import numpy as np
import pytest

from ysocensus import io
from ysocensus.stars import photometric_offsets as po

GAIA = [io.MAGNITUDES.index(b) for b in io.GAIA_BANDS]


@pytest.fixture(scope="module")
def fit(bc_grid):
    return po.fit_offsets(bc_grid)


def test_table_is_the_published_dwarf_sequence():
    t = po.read_dwarf_colours()
    # Mamajek 2024.05.15 (Pecaut & Mamajek 2013, Table 5): M3V has Teff 3430 K, BP-RP 2.50, J-H 0.579, H-Ks 0.252
    m3 = list(t["SpT"]).index("M3V")
    assert (t["Teff"][m3], t["Bp-Rp"][m3], t["J-H"][m3], t["H-Ks"][m3]) == (3430.0, 2.50, 0.579, 0.252)
    assert np.isnan(t["W1-W2"][m3])          # the table gives no W1-W2 for K6-M4.5 dwarfs
    np.testing.assert_allclose(t["G-Ks"], t["M_G"] - t["M_Ks"])


def test_offsets_put_the_model_dwarf_colours_on_the_table(bc_grid, fit):
    after = po.residuals_after(bc_grid, fit)
    before = fit.meta["residual_before_mag"]
    for colour in ("J-H", "H-Ks", "Ks-W1"):
        # the models' J-H of dwarfs is 0.04-0.13 mag too red before; the smoothed offsets leave < 0.03 mag
        assert po.rms(before[colour]) > 0.04, colour
        assert po.rms(after[colour]) < 0.02, colour
    assert po.rms(after["G-Ks"]) < 0.6 * po.rms(before["G-Ks"])


def test_gaia_bands_are_unchanged_and_infrared_bands_move(bc_grid, fit):
    new = fit.apply(bc_grid)
    np.testing.assert_array_equal(new.values[GAIA], bc_grid.values[GAIA])
    teff = np.array([3500.0]), np.array([4.8]), np.zeros(1), np.zeros(1)
    d = bc_grid.bc(*teff) - new.bc(*teff)       # = the offset added to the magnitude
    np.testing.assert_allclose(d[0, GAIA], 0.0, atol=1e-6)
    np.testing.assert_allclose(d[0], fit.at([3500.0])[0], atol=2e-3)
    assert d[0, io.MAGNITUDES.index("ks_m")] > 0.05   # an M2 dwarf's model Ks is too bright against its G


def test_offsets_taper_to_zero_above_the_hottest_row(fit):
    hottest = fit.teff[-1]
    np.testing.assert_allclose(fit.at([hottest + fit.taper_k + 1.0, 2e4]), 0.0)
    np.testing.assert_allclose(fit.at([hottest + fit.taper_k / 2])[0], fit.at([hottest])[0] / 2, atol=1e-9)
    np.testing.assert_allclose(fit.at([2000.0]), fit.at([fit.teff[0]]))   # held below the coolest


def test_rule_entry_point_writes_grid_json_and_figure(tmp_path, monkeypatch, bc_grid):
    from ysocensus.stars import bolometric

    monkeypatch.setattr(bolometric.BCGrid, "from_astrolachesis", classmethod(lambda cls, table=None: bc_grid))
    out = bolometric.run_bolometric_corrections(tmp_path / "bc.npz", offsets={"enabled": False},
                                                offsets_json=tmp_path / "o.json", figure=tmp_path / "o.png")
    np.testing.assert_array_equal(out.values, bc_grid.values)        # fitted, not applied
    import json

    doc = json.loads((tmp_path / "o.json").read_text())
    assert doc["meta"]["applied"] is False and (tmp_path / "o.png").stat().st_size > 0
    on = bolometric.run_bolometric_corrections(tmp_path / "bc2.npz", offsets={"enabled": True})
    assert not np.array_equal(on.values, bc_grid.values)
