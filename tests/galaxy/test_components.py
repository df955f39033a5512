"""Smooth components, IMF and the young-structure catalogue (no sampling of a whole tile here)."""

import numpy as np
import pytest

from ysocensus.galaxy import COMPONENTS, SMOOTH_COMPONENTS
from ysocensus.galaxy.components import THIN_RHO, Galaxy, smooth_components
from ysocensus.config import section
from ysocensus.galaxy.imf import IMF, NORM_RANGE
from ysocensus.galaxy.young import COMPLEX_NAMES, build_clusters, complexes_from_config, xyz_to_lbd


def test_component_names_unique_and_in_schema():
    assert len(set(COMPONENTS)) == len(COMPONENTS)
    schema_names = section("population")["components"]
    assert tuple(schema_names) == SMOOTH_COMPONENTS
    assert set(section("population")["young"]["complexes"]) == set(COMPLEX_NAMES)


def test_local_densities_are_besancon():
    g = Galaxy(smooth_components())
    for i in range(7):
        assert g.density(f"thin{i + 1}", 0.0, 0.0, -g.z_sun) == pytest.approx(THIN_RHO[i], rel=1e-9)
    assert g.density("thick", 0.0, 0.0, -g.z_sun) == pytest.approx(1.34e-3)
    assert g.density("halo", 0.0, 0.0, -g.z_sun) == pytest.approx(9.3e-6)


def test_local_number_density_in_range():
    """Stars (0.08-100 Msun) per pc^3 at the Sun: ~0.1 (docs/ARCHITECTURE.md, "Sizes"; Reid, Gizis & Hawley 2002 give 0.1 for
    main-sequence stars; the Gaia Catalogue of Nearby Stars, Smart et al. 2021, ~0.08 objects/pc^3 within 100 pc)."""
    g = Galaxy(smooth_components())
    rho = sum(g.density(n, 0.0, 0.0, 0.0) for n in g.components)
    n = rho * IMF("kroupa").number_per_msun
    assert 0.05 < n < 0.15
    assert 0.04 < rho < 0.05  # Msun pc^-3 formed (Besançon sum: 0.0407)


def test_scale_height_increases_with_age():
    g = Galaxy(smooth_components())
    z = np.linspace(0, 3000, 30001)
    mean_z = []
    for i in range(7):
        rho = g.density(f"thin{i + 1}", 0 * z, 0 * z, z - g.z_sun)
        mean_z.append(np.trapezoid(rho * z, z) / np.trapezoid(rho, z))
    assert np.all(np.diff(mean_z) >= 0)
    assert 25 < mean_z[0] < 80 and 200 < mean_z[-1] < 500


def test_bulge_bar_near_end_at_positive_longitude():
    g = Galaxy(smooth_components())
    # at equal distance from the centre, the bar is denser at l > 0 on the near side
    r = 1000.0
    x = g.r_sun - r * np.cos(np.deg2rad(20))
    assert g.density("bulge", x, r * np.sin(np.deg2rad(20)), -g.z_sun) > g.density("bulge", x, -r * np.sin(np.deg2rad(20)), -g.z_sun)


@pytest.mark.parametrize("kind", ["kroupa", "chabrier"])
def test_imf_sampling_matches_its_pdf(kind):
    imf = IMF(kind, 0.08, 100.0)
    rng = np.random.default_rng(1)
    m = imf.sample(rng, 400_000)
    assert m.min() >= 0.08 and m.max() <= 100.0
    for lo, hi in [(0.08, 0.5), (0.5, 1.0), (1.0, 8.0)]:
        frac = np.mean((m >= lo) & (m < hi))
        assert frac == pytest.approx(imf.fraction_between(lo, hi), abs=4e-3)
    assert np.mean(m) == pytest.approx(imf.mean_mass, rel=0.03)


def test_kroupa_slopes():
    imf = IMF("kroupa", 0.08, 100.0)
    # dN/dm ∝ m^-2.3 above 0.5: N(1-2)/N(2-4) = 2^1.3
    assert imf.fraction_between(1, 2) / imf.fraction_between(2, 4) == pytest.approx(2**1.3, rel=0.01)
    # ∝ m^-1.3 in 0.1-0.4: N(0.1-0.2)/N(0.2-0.4) = 2^0.3
    assert imf.fraction_between(0.1, 0.2) / imf.fraction_between(0.2, 0.4) == pytest.approx(2**0.3, rel=0.01)


def test_imf_normalisation_independent_of_sampled_range():
    a, b = IMF("kroupa", 0.08, 100.0), IMF("kroupa", 0.01, 100.0)
    assert b.number_per_msun > a.number_per_msun
    # stars above 0.08 per Msun are the same whatever the sampled minimum
    assert b.number_per_msun * b.fraction_between(0.08, 100) == pytest.approx(a.number_per_msun, rel=1e-3)
    assert NORM_RANGE == (0.08, 100.0)


def test_imf_bad_input():
    with pytest.raises(ValueError, match="kind"):
        IMF("salpeter")
    with pytest.raises(ValueError, match="mass_min"):
        IMF("kroupa", 2.0, 1.0)


def test_complexes_positions():
    cx = {c.name: c for c in complexes_from_config(section("population")["young"])}
    l, b, d = xyz_to_lbd(cx["orion"].x, cx["orion"].y, cx["orion"].z)
    assert (l, b, d) == pytest.approx((209.0, -19.0, 400.0), abs=1e-6)
    wave = [c for n, c in cx.items() if n.startswith("radcliffe_wave")]
    assert len(wave) == 20
    z = np.array([c.z for c in wave])
    assert z.min() < -100 and z.max() > 80  # the wave undulates by ~160 pc


def test_unknown_complex_rejected():
    with pytest.raises(ValueError, match="unknown complex"):
        complexes_from_config({"complexes": ["orion", "mordor"]})
    with pytest.raises(ValueError):
        section("population", {"young": {"complexes": ["mordor"]}})


def test_cluster_catalogue_mass_budget_and_determinism():
    young = section("population")["young"]
    a, b = build_clusters(young, 3), build_clusters(young, 3)
    assert np.array_equal(a.cluster_id, b.cluster_id) and np.array_equal(a.x, b.x)
    assert len(set(a.cluster_id.tolist())) == len(a)
    orion = np.array([n == "orion" for n in a.complex_name])
    assert a.mass_msun[orion].sum() == pytest.approx(15000.0, rel=1e-6)
    # dN/dM ∝ M^-2: many more small than large clusters
    m = a.mass_msun[a.kind == 1]
    assert np.mean(m < 100) > 0.6
    # deselecting a complex leaves the others' clusters unchanged
    only = build_clusters({**young, "complexes": ["orion"]}, 3)
    sel = np.array([n == "orion" for n in only.complex_name])
    assert np.allclose(np.sort(only.mass_msun[sel]), np.sort(a.mass_msun[orion]))
