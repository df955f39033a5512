"""YSO tracers: disk IR excess, Hα, Li 6708, variability."""

from __future__ import annotations

import numpy as np
import pytest

from ysocensus import io
from ysocensus.stars import tracers

B = {b: i for i, b in enumerate(io.MAGNITUDES)}


def _photospheres(n):
    # a K-type photosphere: Ks - W3 ~ 0.05, W1 - W2 ~ 0
    m = np.tile(np.array([12.0, 12.6, 11.3, 10.4, 9.8, 9.65, 9.6, 9.62, 9.58, 9.55], np.float32), (n, 1))
    return m


def test_disk_bearers_show_k_w3_excess_old_stars_do_not():
    n = 4000
    rng = np.random.default_rng(0)
    mags = _photospheres(n)
    disk = np.arange(n) < n // 2
    out, alpha = tracers.disk_excess(mags, disk, rng.standard_normal(n), rng.standard_normal(n))
    kw3 = out[:, B["ks_m"]] - out[:, B["w3mpro"]]
    kw3_phot = mags[0, B["ks_m"]] - mags[0, B["w3mpro"]]
    assert np.all(out[~disk] == mags[~disk])                    # no disk: untouched
    assert np.all(np.isnan(alpha[~disk]))
    assert np.median(kw3[disk]) - kw3_phot > 2.0                 # Class II: K - W3 ≈ 2-5 mag
    assert np.percentile(kw3[disk] - kw3_phot, 5) > 0.8
    assert np.all(out[disk, :3] == mags[disk, :3])               # optical unchanged
    # excess grows with wavelength: Ks < W1 < W2 < W3 < W4
    exc = (mags - out)[disk][:, [B["ks_m"], B["w1mpro"], B["w2mpro"], B["w3mpro"], B["w4mpro"]]]
    assert np.all(np.diff(np.median(exc, axis=0)) > 0)
    assert np.all((alpha[disk] >= -1.8) & (alpha[disk] <= 0.0))
    assert -1.2 < np.median(alpha[disk]) < -0.8


def test_lithium_depletes_with_age_and_mass():
    z = np.zeros(1)
    young_m = tracers.lithium_ew([3400.0], [0.3], [6.5], z)[0]
    old_m = tracers.lithium_ew([3400.0], [0.3], [8.0], z)[0]
    bd = tracers.lithium_ew([2600.0], [0.05], [9.5], z)[0]
    sun = tracers.lithium_ew([5772.0], [1.0], [9.66], z)[0]
    k_pleiades = tracers.lithium_ew([5000.0], [0.85], [8.1], z)[0]
    assert young_m > 0.4                 # undepleted PMS M dwarf (γ Vel, Jeffries et al. 2014)
    assert old_m < 0.01                  # beyond the lithium depletion boundary
    assert bd > 0.3                      # brown dwarfs never burn Li
    assert sun < 0.05                    # the Sun: ~2 dex depleted
    assert 0.05 < k_pleiades < 0.4       # Pleiades K dwarfs keep some Li


def test_halpha_accretors_exceed_white_basri_thresholds():
    n = 2000
    rng = np.random.default_rng(1)
    teff = np.full(n, 3500.0)
    ew_acc = tracers.halpha_ew(teff, np.full(n, 6.3), np.ones(n, bool), rng.standard_normal((2, n)), np.zeros(n))
    ew_wtts = tracers.halpha_ew(teff, np.full(n, 6.3), np.zeros(n, bool), rng.standard_normal((2, n)), np.zeros(n))
    ew_sun = tracers.halpha_ew(np.full(n, 5772.0), np.full(n, 9.66), np.zeros(n, bool),
                               rng.standard_normal((2, n)), np.ones(n))
    assert np.median(ew_acc) > 20.0 and np.mean(ew_acc > 10.0) > 0.9
    assert 1.0 < np.median(ew_wtts) < 20.0        # chromospheric emission of a young M star
    assert np.median(ew_sun) < -1.0               # absorption
    old_m = tracers.halpha_ew(np.full(n, 3500.0), np.full(n, 10.0), np.zeros(n, bool),
                              rng.standard_normal((2, n)), np.ones(n))
    assert np.median(old_m) < np.median(ew_wtts)


def test_variability_larger_for_disks_and_decreasing_with_age():
    z = np.zeros(3)
    s = tracers.variability_sigma(np.array([6.3, 6.3, 9.0]), np.array([True, False, False]), z)
    assert s.shape == (3, len(io.MAGNITUDES))
    assert s[0, 0] > s[1, 0] > s[2, 0] > 0
    assert s[1, B["phot_bp_mean_mag"]] > s[1, B["ks_m"]]      # spots: amplitude falls with wavelength


def test_field_variables_are_a_fraction_of_every_age_and_grey():
    # 9 % of nearby stars are Gaia-detected variables (Gaia Collaboration, Eyer et al. 2019, Fig. 8)
    n = 200_000
    rng = np.random.default_rng(4)
    age = rng.uniform(6.0, 10.0, n)
    z, u, zf = rng.standard_normal(n), rng.random(n), rng.standard_normal(n)
    base = tracers.variability_sigma(age, np.zeros(n, bool), z)
    s = tracers.variability_sigma(age, np.zeros(n, bool), z, u_field=u, z_field=zf)
    assert np.all(s >= base - 1e-7)
    varies = (u < tracers.VARIABILITY_DEFAULTS["field_fraction"])
    np.testing.assert_array_equal(s[~varies], base[~varies])      # the others are untouched
    assert abs(varies.mean() - 0.09) < 0.005
    old = varies & (age > 9.0)                                     # old variables: the grey term dominates
    assert np.median(s[old, 0]) == pytest.approx(0.03, rel=0.1)
    assert np.median(np.abs(s[old, 1] / s[old, 9] - 1)) < 0.02        # grey, unlike spots (BP : W4 = 1 : 0.3)
