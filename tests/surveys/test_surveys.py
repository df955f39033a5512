"""Survey error models and selection functions: Gaia, 2MASS, AllWISE, LAMOST."""

from __future__ import annotations

import numpy as np
import pytest

from ysocensus import io
from ysocensus.surveys import gaia, lamost, tmass, wise


def test_gaia_parallax_error_follows_dr3_curve():
    from pygaia.errors.astrometric import parallax_uncertainty

    g = np.array([10.0, 13.0, 15.0, 17.0, 19.0, 20.5])
    np.testing.assert_allclose(gaia.parallax_error(g), parallax_uncertainty(g, release="dr3") / 1000, rtol=1e-5)
    # DR3 numbers (µas): 12.9 at G <= 13, 79 at 17, 282 at 19, 938 at 20.5 (stellar-data notes)
    np.testing.assert_allclose(gaia.parallax_error(np.array([12.0, 17.0, 19.0, 20.5])) * 1000,
                               [12.9, 79, 282, 938], rtol=0.01)


def test_gaia_parallax_snr_vs_g_and_noise_realisation():
    n = 40000
    rng = np.random.default_rng(2)
    g = rng.uniform(8, 20.5, n)
    mags = np.stack([g, g + 0.8, g - 0.9], 1).astype(np.float32)
    plx = np.full(n, 2.0)                      # 500 pc
    out = gaia.observe(mags, plx, None, rng.standard_normal((4, n)).astype(np.float32),
                       np.zeros((3, n), np.float32), np.ones(n, bool))
    assert np.all(np.isfinite(out["parallax"]))       # u = 0: everything detected
    pull = (out["parallax"] - plx) / out["parallax_error"]
    assert abs(pull.std() - 1) < 0.02 and abs(pull.mean()) < 0.02
    # S/N = parallax / σ falls with G like the DR3 curve: 2 mas / 12.9 µas at bright, / 938 µas at 20.5
    snr = plx / out["parallax_error"]
    assert np.all(np.diff(snr[np.argsort(g)]) <= 1e-3)
    assert abs(snr[np.argmin(np.abs(g - 17.0))] - 2.0 / 0.0792) < 1.0
    assert (out["parallax"] < 0).any()                # negative parallaxes are kept
    # flux_over_error matches the magnitude error
    sig_g = gaia.magnitude_error("g", mags[:, 0])
    np.testing.assert_allclose(out["phot_g_mean_flux_over_error"], 1.0857 / sig_g, rtol=1e-3)


def _null_rate(mag, detected, bins):
    idx = np.digitize(mag, bins) - 1
    return np.array([1 - detected[idx == i].mean() for i in range(len(bins) - 1)])


def test_gaia_null_rate_behaves_like_a_detection_limit():
    n = 60000
    rng = np.random.default_rng(3)
    g = rng.uniform(1.0, 23.0, n)
    mags = np.stack([g, g + 0.5, g - 0.6], 1).astype(np.float32)
    out = gaia.observe(mags, np.ones(n), None, rng.standard_normal((4, n)).astype(np.float32),
                       rng.random((3, n), dtype=np.float32), np.ones(n, bool))
    det = np.isfinite(out["phot_g_mean_mag"])
    assert not det[g < 3.0].any()                                   # saturation / bright limit
    assert det[(g > 4) & (g < 19.5)].all()
    assert det[g > 22].mean() < 0.001
    bins = np.arange(19.0, 22.01, 0.25)
    rate = _null_rate(g, det, bins)
    assert np.all(np.diff(rate) >= -0.03) and rate[0] < 0.01 and rate[-1] > 0.97
    # BP/RP and parallax are lost before G
    bprp = np.isfinite(out["phot_bp_mean_mag"])
    plx = np.isfinite(out["parallax"])
    for sel in (bprp, plx):
        assert np.all(det[sel])
        assert sel[(g > 20) & (g < 21)].mean() < det[(g > 20) & (g < 21)].mean()


def test_tmass_ks_completeness_and_errors():
    n = 60000
    rng = np.random.default_rng(4)
    k = rng.uniform(5.0, 17.0, n)
    mags = np.stack([k + 0.8, k + 0.15, k], 1).astype(np.float32)
    out = tmass.observe(mags, None, rng.standard_normal((3, n)).astype(np.float32),
                        rng.random((3, n), dtype=np.float32), np.ones(n, bool))
    det = np.isfinite(out["ks_m"])
    near = np.abs(k - 14.3) < 0.05
    assert 0.97 < det[near].mean() <= 1.0                      # 99% complete at Ks = 14.3
    assert det[k > 15.8].mean() < 0.05
    assert det[k < 13.5].all()
    err = out["ks_msigcom"]
    order = np.argsort(out["ks_m"][det])
    assert np.all(np.diff(err[det][order]) >= -1e-6)          # errors grow towards the limit (measured magnitude)
    assert 0.08 < np.median(err[det & near]) < 0.14           # ≈ 10σ at the limit
    assert np.median(err[det & (k < 10)]) < 0.03
    assert np.all(np.isnan(out["ks_msigcom"][~det]))          # null, never a sentinel


def test_wise_w1_w2_deep_w3_w4_shallow_and_plane_penalty():
    assert wise.limit("w1") > wise.limit("w2") > wise.limit("w3") > wise.limit("w4")
    assert wise.limit("w3", np.array([0.0]))[0] < wise.limit("w3", np.array([60.0]))[0]
    n = 40000
    rng = np.random.default_rng(5)
    w = rng.uniform(5, 18, n)
    mags = np.stack([w, w, w, w], 1).astype(np.float32)
    out = wise.observe(mags, np.full(n, 60.0), None, rng.standard_normal((4, n)).astype(np.float32),
                       rng.random((4, n), dtype=np.float32), np.ones(n, bool))
    frac = {b: np.isfinite(out[f"{b}mpro"]).mean() for b in ("w1", "w2", "w3", "w4")}
    assert frac["w1"] > frac["w2"] > frac["w3"] > frac["w4"]
    assert np.isfinite(out["w1mpro"][w < 15]).all() and np.isfinite(out["w1mpro"][w < 16]).mean() > 0.98


def test_tmass_and_wise_sigma_is_the_error_of_the_measured_magnitude():
    """The PSC's msigcom and AllWISE's sigmpro are computed from the measured flux, so the catalog's σ is the error
    model at the measured magnitude; the noise is drawn with the error at the true one (pulls against the truth stay
    unit normal). At the true magnitude (``sigma_from_measured`` off) a faint star's σ would give its true magnitude
    exactly: a measurement brighter than the truth would report the larger σ of the true magnitude."""
    n = 50_000
    rng = np.random.default_rng(7)
    k = rng.uniform(12.0, 15.0, n)
    mags = np.stack([k + 0.8, k + 0.15, k], 1).astype(np.float32)
    z, u, keep = rng.standard_normal((3, n)).astype(np.float32), np.zeros((3, n), np.float32), np.ones(n, bool)
    on, off = tmass.observe(mags, None, z, u, keep), tmass.observe(mags, None, z, u, keep, {"sigma_from_measured": False})
    np.testing.assert_array_equal(on["ks_m"], off["ks_m"])                  # the same measurements
    np.testing.assert_allclose(on["ks_msigcom"], tmass.magnitude_error("ks", on["ks_m"]), rtol=1e-6)
    np.testing.assert_allclose(off["ks_msigcom"], tmass.magnitude_error("ks", mags[:, 2]), rtol=1e-6)
    assert abs(np.std((on["ks_m"] - mags[:, 2]) / off["ks_msigcom"]) - 1.0) < 0.02
    bright = on["ks_m"] < mags[:, 2]
    assert np.all(on["ks_msigcom"][bright] <= off["ks_msigcom"][bright] + 1e-7)
    w = rng.uniform(8.0, 11.5, n)
    wm = np.stack([w + 5.0, w + 4.5, w, w - 1.0], 1).astype(np.float32)
    zw, b = rng.standard_normal((4, n)).astype(np.float32), np.full(n, 30.0)
    won = wise.observe(wm, b, None, zw, np.zeros((4, n), np.float32), keep)
    np.testing.assert_allclose(won["w3sigmpro"], wise.magnitude_error("w3", won["w3mpro"], b), rtol=1e-6)
    woff = wise.observe(wm, b, None, zw, np.zeros((4, n), np.float32), keep, {"sigma_from_measured": False})
    np.testing.assert_allclose(woff["w3sigmpro"], wise.magnitude_error("w3", wm[:, 2], b), rtol=1e-6)


def test_lamost_footprint_magnitude_range_and_labels():
    n = 50000
    rng = np.random.default_rng(6)
    g = rng.uniform(6, 20, n).astype(np.float32)
    dec = rng.uniform(-90, 90, n)
    teff = rng.uniform(3000, 12000, n).astype(np.float32)
    truth = {"teff_k": teff, "logg": np.full(n, 4.5, np.float32), "feh": np.zeros(n, np.float32),
             "ewli": np.full(n, 0.2, np.float32), "ewha": np.full(n, -2.0, np.float32)}
    out = lamost.observe(g, dec, truth, rng.standard_normal((5, n)).astype(np.float32),
                         rng.random((2, n), dtype=np.float32), np.ones(n, bool))
    obs = np.isfinite(out["ewha"])
    assert not obs[dec < -10].any()
    assert not obs[g < 9].any() and obs[g > 18.5].mean() < 0.01
    inside = (dec > -10) & (g > 10) & (g < 17)
    assert abs(obs[inside].mean() - 0.3) < 0.02                 # targeting fraction
    lab = np.isfinite(out["teff_lamost"])
    assert not lab[(teff < 3700) | (teff > 8750)].any()         # LASP labels only for AFGK stars
    assert lab[obs & (teff > 4000) & (teff < 8000)].all()
    # errors shrink with S/N
    e = out["teff_err_lamost"][lab]
    assert np.corrcoef(g[lab], e)[0, 1] > 0.5
    sub = lab & (np.abs(g - 17.8) < 0.2)
    assert 150 < np.median(out["teff_err_lamost"][sub]) < 260


@pytest.mark.parametrize("module", [gaia, tmass, wise, lamost])
def test_schema_defaults_match_module_defaults(module):
    """ysocensus/schemas/observe.schema.yaml and the modules' DEFAULTS must not drift apart."""
    import yaml

    from ysocensus.config import schema_path

    schema = yaml.safe_load(schema_path("observe").read_text())
    name = {"gaia": "gaia", "tmass": "tmass", "wise": "wise", "lamost": "lamost"}[module.__name__.split(".")[-1]]
    props = schema["properties"][name]["properties"]

    def defaults(p):
        if p.get("type") == "object" and "properties" in p:
            return {k: defaults(v) for k, v in p["properties"].items()}
        return p.get("default")

    got = {k: defaults(v) for k, v in props.items()}
    want = {k: (list(v) if isinstance(v, tuple) else v) for k, v in module.DEFAULTS.items()}
    assert got == want


def test_gaia_sigma_averages_down_with_the_number_of_transits():
    # the EDR3 uncertainty model (Riello et al. 2021; pygaia): σ ∝ 1/sqrt(n) around pygaia's DR3 numbers
    n = 3
    mags = np.full((n, 3), 15.0, np.float32)
    z_transits = np.array([-1.0, 0.0, 1.0], np.float32)
    out = gaia.observe(mags, np.ones(n), None, np.zeros((4, n), np.float32), np.zeros((3, n), np.float32),
                       np.ones(n, bool), z_transits=z_transits)
    n_obs = gaia.n_observations(z_transits)
    np.testing.assert_allclose(n_obs[1], [351.0, 40.0, 40.0], rtol=1e-5)
    for j, band in enumerate(("g", "bp", "rp")):
        sig = 1.0857 / out[("phot_g_mean_flux_over_error", "phot_bp_mean_flux_over_error",
                            "phot_rp_mean_flux_over_error")[j]]
        np.testing.assert_allclose(sig, gaia.magnitude_error(band, mags[:, j]) * np.sqrt(n_obs[1, j] / n_obs[:, j]),
                                   rtol=1e-3)
        assert sig[0] > sig[1] > sig[2]                           # fewer transits, larger σ


def test_gaia_scanning_law_sets_the_number_of_transits_by_ecliptic_latitude():
    # de Bruijne 2012 / ESA science performance (PyGaia 1.x errorFactorVariationBeta.txt): 61 transits on the
    # ecliptic, 144 at |sin β| 0.725, 81 averaged over the sky (the table's "Mean" row)
    assert gaia.SCAN_LAW_TRANSITS.mean() == pytest.approx(81.0, abs=0.5)
    # ecliptic latitude: the equinox and the solstice point lie on the ecliptic, its north pole at RA 270°, Dec 66.56°
    sb = gaia.sin_ecliptic_latitude([0.0, 90.0, 270.0], [0.0, gaia.OBLIQUITY_DEG, 90.0 - gaia.OBLIQUITY_DEG])
    np.testing.assert_allclose(sb, [0.0, 0.0, 1.0], atol=1e-12)
    f = gaia.scan_law_factor([0.0, 0.725, -0.725, 1.0])
    np.testing.assert_allclose(f, np.array([61.0, 144.0, 144.0, 75.0]) / gaia.SCAN_LAW_TRANSITS.mean())
    # σ ∝ 1/sqrt(n): the same star reports a σ sqrt(144/61) larger on the ecliptic than at |β| ≈ 46.5°
    n = 2
    mags = np.full((n, 3), 16.0, np.float32)
    args = (mags, np.ones(n), None, np.zeros((4, n), np.float32), np.zeros((3, n), np.float32), np.ones(n, bool))
    on = gaia.observe(*args, z_transits=np.zeros(n), sin_beta=np.array([0.0, 0.725]))
    np.testing.assert_allclose(on["phot_g_mean_flux_over_error"][1] / on["phot_g_mean_flux_over_error"][0],
                               np.sqrt(144.0 / 61.0), rtol=1e-4)
    off = gaia.observe(*args, {"scan_law": False}, z_transits=np.zeros(n), sin_beta=np.array([0.0, 0.725]))
    assert off["phot_g_mean_flux_over_error"][0] == off["phot_g_mean_flux_over_error"][1]
    # without a position every star gets the sky average, as before the scanning law
    np.testing.assert_allclose(gaia.n_observations(np.zeros(1))[0], [351.0, 40.0, 40.0], rtol=1e-5)


def test_constant_star_sigma_follows_the_scanning_law():
    """A constant star's σ is pygaia's DR3 curve at DR3's typical number of measurements: × sqrt(1/0.75) on the
    ecliptic (61 transits against the sky-average 81), × sqrt(1/1.77) at |sin β| = 0.725 (144), the sky average where
    the position is unknown (SCAN_LAW_TRANSITS, de Bruijne 2012)."""
    g = np.array([14.0, 14.0, 14.0])
    ref = gaia.magnitude_error("g", g) * np.sqrt(gaia.N_REFERENCE["g"] / (gaia.DEFAULTS["n_transits_median"]
                                                                        * gaia.DEFAULTS["ccd_per_transit"]))
    s = gaia.constant_star_sigma("g", g, np.array([0.0, 0.725, np.nan]))  # 0.725: the bin of the peak, 144
    np.testing.assert_allclose(s / ref, [np.sqrt(1 / 0.7513), np.sqrt(1 / 1.7733), 1.0], rtol=2e-2)
    np.testing.assert_allclose(gaia.constant_star_sigma("g", g), ref, rtol=1e-6)


def test_sample_sigma_factor_is_the_scatter_of_a_sample_standard_deviation():
    """sqrt(χ²_ν/ν) with ν = n − 1 (Wilson–Hilferty): the standard deviation of n Gaussian values over the true one has
    mean ≈ 1 − 1/(4ν) and relative scatter ≈ 1/sqrt(2ν) — 11 % at DR3's 40 BP/RP transits, 3.8 % at 351 per-CCD G
    values; checked against sample standard deviations drawn directly."""
    rng = np.random.default_rng(5)
    for n in (10, 40, 351):
        f = gaia.sample_sigma_factor(np.full(100_000, n), rng.standard_normal(100_000))
        s = rng.standard_normal((20_000, n)).std(axis=1, ddof=1)
        assert f.mean() == pytest.approx(s.mean(), abs=3e-3)
        assert f.std() == pytest.approx(s.std(), rel=0.03)
        np.testing.assert_allclose(np.percentile(f, [2.5, 97.5]), np.percentile(s, [2.5, 97.5]), atol=0.01)
    assert gaia.sample_sigma_factor(40, 0.0) == pytest.approx(1 - 1 / (3 * 39), abs=1e-4)   # the median


def test_reported_gaia_sigma_scatters_independently_per_band_and_the_magnitude_noise_does_not():
    """A constant star's three reported σ differ by the sampling of each band's epochs (σ_ln ≈ 0.038 in G, 0.11 in BP
    and RP), so the band-to-band difference of the σ excess is ≈ 0.16 in ln, not 0; the magnitudes' own noise is the
    true σ, as before; with ``sigma_sampling`` off the σ is reported exactly."""
    n = 20_000
    rng = np.random.default_rng(3)
    mags = np.full((n, 3), 17.0, np.float32)
    args = (mags, np.ones(n), None, rng.standard_normal((4, n)).astype(np.float32), np.zeros((3, n), np.float32),
            np.ones(n, bool))
    z_sigma = rng.standard_normal((3, n)).astype(np.float32)
    on = gaia.observe(*args, z_transits=np.zeros(n), z_sigma=z_sigma)
    off = gaia.observe(*args, {"sigma_sampling": False}, z_transits=np.zeros(n), z_sigma=z_sigma)
    none = gaia.observe(*args, z_transits=np.zeros(n))
    for k in ("phot_g_mean_mag", "phot_bp_mean_mag", "phot_rp_mean_mag"):
        np.testing.assert_array_equal(on[k], off[k])
    foe = [np.log(on[k] / off[k]) for k in io.GAIA_FLUX_OVER_ERROR]    # −ln(reported / true σ)
    assert np.std(foe[0]) == pytest.approx(1 / np.sqrt(2 * 350), rel=0.05)
    assert np.std(foe[1]) == pytest.approx(1 / np.sqrt(2 * 39), rel=0.05)
    assert np.std(foe[0] - foe[2]) == pytest.approx(np.hypot(1 / np.sqrt(700), 1 / np.sqrt(78)), rel=0.05)
    assert abs(np.corrcoef(foe[1], foe[2])[0, 1]) < 0.03
    np.testing.assert_array_equal(off["phot_g_mean_flux_over_error"], none["phot_g_mean_flux_over_error"])
    assert np.ptp(off["phot_g_mean_flux_over_error"]) == 0


def test_gaia_parallax_sigma_follows_the_number_of_transits():
    """σ_ϖ ∝ 1/sqrt(transits) about pygaia's sky-averaged DR3 curve, with the photometry's own transit count (so a
    star near the ecliptic, 61 transits against the sky-average 81, has a σ_ϖ sqrt(81/61) larger); the parallax
    noise is drawn with that σ; ``parallax_transits`` off: the curve at every star."""
    n = 20_000
    rng = np.random.default_rng(4)
    mags = np.full((n, 3), 18.0, np.float32)
    z = rng.standard_normal((4, n)).astype(np.float32)
    zt = rng.standard_normal(n).astype(np.float32)
    args = (mags, np.full(n, 2.0), None, z, np.zeros((3, n), np.float32), np.ones(n, bool))
    on = gaia.observe(*args, z_transits=zt)
    off = gaia.observe(*args, {"parallax_transits": False}, z_transits=zt)
    transits = gaia.n_observations(zt)[:, 1]
    curve = gaia.parallax_error(mags[:, 0])
    np.testing.assert_allclose(on["parallax_error"], curve * np.sqrt(40.0 / transits), rtol=1e-5)
    np.testing.assert_array_equal(off["parallax_error"], curve)
    np.testing.assert_allclose((on["parallax"] - 2.0) / on["parallax_error"], z[3], atol=1e-4)
    ecl = gaia.observe(*args, z_transits=np.zeros(n), sin_beta=np.zeros(n))["parallax_error"]
    np.testing.assert_allclose(ecl / curve, np.sqrt(1 / gaia.scan_law_factor(0.0)), rtol=1e-5)
    # a longer release (more transits at the median) shrinks σ_ϖ with the photometric σ, about DR3's own count
    longer = {"n_transits_median": 66.0}
    more = gaia.observe(*args, longer, z_transits=zt)
    ratio = np.sqrt(gaia.N_REFERENCE["bp"] / gaia.n_observations(zt, longer)[:, 1])
    np.testing.assert_allclose(more["parallax_error"], curve * ratio, rtol=1e-5)
    assert np.median(more["parallax_error"] / on["parallax_error"]) == pytest.approx(np.sqrt(40.0 / 66.0), rel=1e-4)
