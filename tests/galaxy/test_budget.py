"""The young field net of the named young structure (galaxy.budget)."""

from __future__ import annotations

import numpy as np

from ysocensus.galaxy.budget import field_budget, log_age_overlap, sphere_mass, structure_mass
from ysocensus.galaxy.components import Galaxy, smooth_components
from ysocensus.galaxy.young import Clusters


def _galaxy():
    return Galaxy({"thin1": smooth_components(2.0)["thin1"]})


def _clusters(masses, ages, dist):
    n = len(masses)
    lo, hi = np.array([a[0] for a in ages]), np.array([a[1] for a in ages])
    return Clusters(np.arange(n, dtype=np.int32), ["c"] * n, np.zeros(n, np.int8), np.asarray(dist, float),
                    np.zeros(n), np.zeros(n), np.ones(n), np.asarray(masses, float), lo, hi, np.zeros(n), np.zeros(n))


def test_log_age_overlap():
    np.testing.assert_allclose(log_age_overlap([6.0, 6.0, 7.0], [7.0, 7.0, 7.0], 6.5, 7.5), [0.5, 0.5, 1.0])
    np.testing.assert_allclose(log_age_overlap([6.0], [6.2], 6.5, 7.0), [0.0])


def test_sphere_mass_of_thin1_is_its_midplane_density_times_volume_for_a_small_sphere():
    g = _galaxy()
    r = 30.0  # well inside the ~50 pc thick layer: the density hardly changes
    rho0 = g.density("thin1", np.zeros(1), np.zeros(1), np.zeros(1))[0]
    m = sphere_mass(g, "thin1", r, step_pc=2.0, step_z_pc=1.0)
    assert abs(m / (rho0 * 4 / 3 * np.pi * r**3) - 1) < 0.1


def test_structure_mass_counts_only_centres_inside_the_sphere_spread_in_log_age():
    cl = _clusters([100.0, 1000.0], [(6.0, 7.0), (6.0, 7.0)], [100.0, 900.0])
    m = structure_mass(cl, 500.0, [0.0, 3.1622776601683795, 10.0, 50.0])
    np.testing.assert_allclose(m, [50.0, 50.0, 0.0])


def test_kept_fraction_is_one_minus_the_ratio_and_never_negative():
    g = _galaxy()
    per_myr = sphere_mass(g, "thin1", 500.0) / 150.0
    # a structure holding half of the field's 10-20 Myr mass and twice its 20-50 Myr mass
    cl = _clusters([0.5 * 10 * per_myr, 2.0 * 30 * per_myr], [(7.0, 7.30103), (7.30103, 7.69897)], [0.0, 0.0])
    b = field_budget(g, cl, 500.0, [0.0, 10.0, 20.0, 50.0])
    np.testing.assert_allclose(b.keep, [1.0, 0.5, 0.0], atol=1e-6)
