"""The isochrone grid (MIST v2.5 + BHAC15): interface contract, physics sanity, persistence."""

from pathlib import Path

import numpy as np
import pytest

from ysocensus.stars.tracks import QUANTITIES, IsochroneGrid, StellarModelsMissing


@pytest.fixture(scope="module")
def grid():
    return IsochroneGrid.build()


def test_contract_axes_values(grid):
    assert set(grid.axes) == {"feh", "log10_age_yr", "log10_mass"}
    for name, ax in grid.axes.items():
        assert ax.dtype == np.float64 and ax.ndim == 1
        assert np.allclose(np.diff(ax), np.diff(ax)[0]), f"{name} axis not uniform"
    assert grid.axes["feh"][0] <= -2.5 and grid.axes["feh"][-1] >= 0.5
    assert grid.axes["log10_age_yr"][0] <= 5.7 and grid.axes["log10_age_yr"][-1] >= 10.15
    assert 10 ** grid.axes["log10_mass"][0] <= 0.08 and 10 ** grid.axes["log10_mass"][-1] >= 100
    assert grid.values.dtype == np.float32
    assert grid.values.shape == (*(grid.axes[a].size for a in ("feh", "log10_age_yr", "log10_mass")), len(QUANTITIES))
    assert grid.quantities[:3] == ("log10_teff", "logg", "log10_lum_lsun")
    # a node is complete or NaN in every quantity
    fin = np.isfinite(grid.values)
    assert np.all(fin.all(-1) == fin.any(-1))


def test_sun(grid):
    r = grid.interpolate(np.log10(4.57e9), 0.0, 0.0)
    assert 5600 < 10 ** r["log10_teff"] < 5950
    assert abs(r["log10_lum_lsun"]) < 0.1
    assert 4.3 < r["logg"] < 4.55
    assert abs(r["log10_radius_rsun"]) < 0.05


def test_interpolation_exact_at_nodes(grid):
    i, j, k = 12, 60, 400
    ax = grid.axes
    r = grid.interpolate(ax["log10_age_yr"][j], ax["log10_mass"][k], ax["feh"][i])
    assert np.allclose([r[q] for q in grid.quantities], grid.values[i, j, k], atol=1e-5)


def test_remnants_nan_and_flagged(grid):
    age, logm, feh = np.array([10.0, 10.0, 8.0]), np.log10([3.0, 0.8, 20.0]), np.zeros(3)
    r = grid.interpolate(age, logm, feh)
    assert np.isnan(r["log10_teff"][0]) and np.isnan(r["log10_teff"][2]) and np.isfinite(r["log10_teff"][1])
    assert grid.is_remnant(age, logm, feh).tolist() == [True, False, True]


def test_outside_axes_nan(grid):
    r = grid.interpolate([4.0, 9.0, 9.0], [0.0, 3.5, 0.0], [0.0, 0.0, 1.5])
    assert np.all(np.isnan(r["log10_teff"]))


def test_giants_near_track_end_have_parameters(grid):
    # stars of an old population just below the death mass are giants: alive with low logg
    a, z = 10.0, 0.0
    fi = np.argmin(abs(grid.axes["feh"] - z))
    ai = np.argmin(abs(grid.axes["log10_age_yr"] - a))
    mmax = grid.log10_mass_max[fi, ai]
    m = np.linspace(mmax - 0.01, mmax - 1e-4, 50)
    r = grid.interpolate(a, m, z)
    assert np.all(np.isfinite(r["logg"]))
    assert r["logg"].min() < 2.0


def test_bhac15_fills_young_low_mass_holes(grid):
    # MIST alone: no 0.1 Msun star at 1 Myr (solar) nor at [Fe/H] = +0.5 (any age)
    mist = IsochroneGrid.build(low_mass_models="none")
    pts = (np.array([6.0, 9.0, 6.5]), np.log10([0.1, 0.2, 0.05]), np.array([0.0, 0.5, 0.0]))
    assert np.all(np.isnan(mist.interpolate(*pts)["log10_teff"]))
    r = grid.interpolate(*pts)
    assert np.all(np.isfinite(r["log10_teff"]))
    assert np.all((10 ** r["log10_teff"] > 2300) & (10 ** r["log10_teff"] < 3600))


def test_pre_main_sequence_above_main_sequence(grid):
    logm = np.log10([0.1, 0.3, 0.5, 0.8, 1.0])
    young = grid.interpolate(6.0, logm, 0.0)
    old = grid.interpolate(9.0, logm, 0.0)
    assert np.all(young["log10_lum_lsun"] > old["log10_lum_lsun"] + 0.3)
    assert np.all(young["logg"] < old["logg"] - 0.3)


def test_main_sequence_mass_luminosity(grid):
    r = grid.interpolate(9.0, np.log10([0.5, 1.0, 2.0]), 0.0)
    assert np.all(np.diff(r["log10_lum_lsun"]) > 0.5)


def test_save_load_roundtrip(grid, tmp_path):
    path = tmp_path / "iso.npz"
    grid.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["iso.npz"]  # no temporary left
    back = IsochroneGrid.load(path)
    assert np.array_equal(back.values, grid.values, equal_nan=True)
    for k in grid.axes:
        assert np.array_equal(back.axes[k], grid.axes[k])
    assert back.quantities == grid.quantities
    assert back.meta["low_mass_models"] == "bhac15"


def test_values_filled_has_no_nan_inside_alive_range(grid):
    f = grid.values_filled
    assert f.shape == grid.values.shape
    assert np.isfinite(f[12, 60]).all()


def test_bad_parameters(monkeypatch):
    with pytest.raises(ValueError, match="low_mass_models"):
        IsochroneGrid.build(low_mass_models="siess")
    with pytest.raises(ValueError, match="feh_range"):
        IsochroneGrid.build(feh_range=(-5.0, 0.5))
    with pytest.raises(ValueError, match="unknown key"):
        IsochroneGrid.from_config({"mass_step": 0.1})
    with pytest.raises(FileNotFoundError, match="stellar_models"):
        IsochroneGrid.load(Path("/nonexistent/iso.npz"))


def test_missing_package_clear_error(monkeypatch):
    import builtins

    real = builtins.__import__

    def fake(name, *a, **k):
        if name == "lachesis_grids":
            raise ImportError("No module named 'lachesis_grids'")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(StellarModelsMissing, match="lachesis-grids"):
        IsochroneGrid.build()


def test_vectorised_speed(grid):
    import time

    rng = np.random.default_rng(0)
    n = 200_000
    t = time.perf_counter()
    grid.interpolate(rng.uniform(6, 10, n), rng.uniform(-1, 0.5, n), rng.uniform(-1, 0.3, n))
    assert time.perf_counter() - t < 2.0
