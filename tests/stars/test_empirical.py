"""The empirical low-mass correction of the stellar models (ysocensus.stars.empirical)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ysocensus.stars import empirical


def test_ridge_line_follows_the_single_stars_not_the_binaries():
    """A sequence M_G = 4 + 3 (BP − RP) with 20 % equal-mass binaries (0.75 mag brighter at the same colour):
    the ridge line keeps to the singles (the brightest quarter of each bin is dropped)."""
    rng = np.random.default_rng(0)
    c = rng.uniform(1.0, 3.0, 4000)
    g = 4.0 + 3.0 * c + rng.normal(0, 0.05, c.size)
    binary = rng.random(c.size) < 0.2
    g[binary] -= 0.75
    rc, rg = empirical.ridge_line(c, g, 0.1, 0.25, 8)
    assert np.abs(rg - (4.0 + 3.0 * rc)).max() < 0.06
    # with every star kept, the binaries pull it up (brighter): the cut is what makes the difference
    rc2, rg2 = empirical.ridge_line(c, g, 0.1, 0.0, 8)
    assert np.median(rg2 - (4.0 + 3.0 * rc2)) < -0.02


def test_correction_shifts_teff_at_fixed_luminosity(isochrones):
    lm = np.log10([0.1, 0.3, 0.8, 2.0])
    corr = empirical.TeffCorrection(np.log10([0.1, 0.5, 0.85]), np.array([-0.02, -0.03, 0.0]))
    d = corr.shift(lm)
    assert d[0] == pytest.approx(-0.02) and d[3] == 0.0  # held below the first knot, 0 above the last
    assert d[2] == pytest.approx(-0.03 * (1 - np.log10(0.8 / 0.5) / np.log10(0.85 / 0.5)))  # linear in log mass
    fixed = corr.apply(isochrones)
    args = (np.full(4, 9.0), lm, np.zeros(4))
    a, b = isochrones.interpolate(*args), fixed.interpolate(*args)
    np.testing.assert_allclose(b["log10_lum_lsun"], a["log10_lum_lsun"], atol=1e-6)
    np.testing.assert_allclose(b["log10_teff"] - a["log10_teff"], d, atol=1e-5)
    np.testing.assert_allclose(b["logg"] - a["logg"], 4 * d, atol=2e-5)  # R ∝ T^-2 at fixed L, g ∝ R^-2
    np.testing.assert_allclose(b["log10_radius_rsun"] - a["log10_radius_rsun"], -2 * d, atol=2e-5)
    assert "empirical_teff_correction" in fixed.meta and "empirical_teff_correction" not in isochrones.meta
    back = empirical.TeffCorrection.from_dict(corr.to_dict())
    np.testing.assert_array_equal(back.shift(lm), d)


def _ridge_offset(grid, bc, cluster, age_myr, feh, av):
    """Median over colour bins 1.6–3.4 of (cluster ridge M_G − model M_G at the ridge colour)."""
    m = empirical.cluster_members(cluster)
    rc, rg = empirical.ridge_line(m["bp_rp_obs"], m["abs_g"], 0.25, 0.25, 8)
    lm = np.arange(-1.1, -0.05, 0.005)
    q = grid.interpolate(np.full_like(lm, np.log10(age_myr * 1e6)), lm, np.full_like(lm, feh))
    mags = bc.absolute_magnitudes(10 ** q["log10_teff"], q["logg"], q["log10_lum_lsun"], np.full_like(lm, feh),
                                  np.full_like(lm, av))
    c, g = mags[:, 1] - mags[:, 2], mags[:, 0]
    ok = np.isfinite(c)
    o = np.argsort(c[ok])
    sel = (rc > 1.6) & (rc < 3.4)
    return float(np.median(rg[sel] - np.interp(rc[sel], c[ok][o], g[ok][o])))


def test_pre_main_sequence_amplitude_is_drawn_young_and_whole_from_the_pleiades_on():
    u = np.array([0.0, 0.25, 1.0, 0.25, 0.25, 0.25])
    age = np.log10(np.array([5.0, 20.0, 49.0, np.sqrt(50.0 * 125.0), 125.0, 650.0]) * 1e6)
    f = empirical.pre_main_sequence_amplitude(age, u, (0.0, 1.0), (50.0, 125.0))
    np.testing.assert_allclose(f, [0.0, 0.25, 1.0, 0.625, 1.0, 1.0])   # halfway in log age between 50 and 125 Myr
    np.testing.assert_allclose(empirical.pre_main_sequence_amplitude(age[:2], u[:2], (1.0, 1.0), (50.0, 125.0)), 1.0)


def test_partial_correction_is_a_fraction_of_the_grid_shift(isochrones):
    corr = empirical.TeffCorrection(np.log10([0.1, 0.5, 0.85]), np.array([-0.02, -0.03, 0.0]))
    fixed = corr.apply(isochrones)
    lm, args = np.log10([0.3, 0.3, 0.3]), (np.full(3, 6.5), np.log10([0.3, 0.3, 0.3]), np.zeros(3))
    full, bare = fixed.interpolate(*args), isochrones.interpolate(*args)
    got = empirical.partial_correction(full, lm, empirical.grid_correction(fixed), np.array([0.0, 0.5, 1.0]))
    for key, factor in (("log10_teff", 1.0), ("logg", 4.0), ("log10_radius_rsun", -2.0)):
        want = bare[key] + factor * np.array([0.0, 0.5, 1.0]) * corr.shift(lm)
        np.testing.assert_allclose(got[key], want, atol=3e-5, err_msg=key)
    np.testing.assert_allclose(got["log10_lum_lsun"], full["log10_lum_lsun"])   # at fixed luminosity
    assert empirical.grid_correction(isochrones) is None


@pytest.mark.slow
def test_fit_to_the_hyades_moves_praesepe_onto_the_models(isochrones, bc_grid):
    """The fit to the Hyades (shipped Gaia DR2 members) brings the 650 Myr models onto the Hyades' M dwarfs
    and, not fitted, Praesepe's (670 Myr, [Fe/H] +0.16, A_V 0.084): uncorrected both lie 0.5–0.8 mag above
    the isochrone in the median over BP − RP 1.6–3.4 (the MIST M-dwarf colour problem)."""
    members = empirical.cluster_members("Hyades")
    corr, diag = empirical.fit_teff_correction(members, isochrones, bc_grid, {})
    assert corr.dlog10_teff.min() < -0.015 and corr.dlog10_teff.max() <= 0.0 + 1e-9
    assert corr.shift(np.log10(1.0)) == 0.0  # solar-type stars untouched
    fixed = corr.apply(isochrones)
    for cluster, age, feh, av in (("Hyades", 650, 0.13, 0.0), ("Praesepe", 670, 0.16, 0.084)):
        before = _ridge_offset(isochrones, bc_grid, cluster, age, feh, av)
        after = _ridge_offset(fixed, bc_grid, cluster, age, feh, av)
        assert before < -0.4, cluster
        assert abs(after) < 0.2, (cluster, before, after)


def test_clusters_of_known_age_ask_for_the_hyades_correction(isochrones, bc_grid, tmp_path):
    """The lithium-depletion-boundary clusters (shipped Gaia DR2 members, 46–126 Myr) fitted like the Hyades at their
    LDB ages ask for about the Hyades' whole correction on their M dwarfs (measured 0.94–1.31 with this grid), the
    reason the population draws f = 1 from 46 Myr on; the stellar-models stage writes them beside the fit."""
    corr, _ = empirical.fit_teff_correction(empirical.cluster_members("Hyades"), isochrones, bc_grid, {})
    evidence = empirical.age_scale_evidence(isochrones, bc_grid, corr)
    assert [e["cluster"] for e in evidence] == ["IC 2602", "IC 2391", "alpha Per", "Pleiades", "Blanco 1"]
    for e in evidence:
        assert e["amplitude"] is not None, e
        assert 0.8 < e["amplitude"] < 1.6, e
        assert e["amplitude_16"] <= e["amplitude"] <= e["amplitude_84"]
    pms = {"amplitude_range": [0.0, 1.0], "age_myr": [10.0, 46.0]}
    json_path, png = tmp_path / "c.json", tmp_path / "c.png"
    empirical.corrected_grid(isochrones, bc_grid, {"pre_main_sequence": pms}, json_path, png)
    written = json.loads(json_path.read_text())["age_scale_clusters"]
    assert [e["cluster"] for e in written] == [e["cluster"] for e in evidence]
    assert png.stat().st_size > 0


def test_schedule_curve_spans_the_drawn_range_and_closes_at_the_whole_correction():
    pms = {"amplitude_range": [0.0, 1.0], "age_myr": [10.0, 46.0]}
    lo, hi = empirical.schedule_curve(pms, [5.0, 10.0, 46.0, 650.0])
    np.testing.assert_allclose(lo, [0.0, 0.0, 1.0, 1.0])
    np.testing.assert_allclose(hi, [1.0, 1.0, 1.0, 1.0])


def test_an_unknown_cluster_names_the_file_and_its_groups():
    with pytest.raises(ValueError, match="ldb_clusters.csv.*Pleiades"):
        empirical.cluster_members("Hyades", empirical.AGE_SCALE_FILE)
