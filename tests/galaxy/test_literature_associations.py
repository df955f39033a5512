"""Literature young associations (BANYAN Sigma + census additions) in galaxy.young."""

import numpy as np
import pytest

from ysocensus.config import section
from ysocensus.galaxy.young import (ASSOCIATIONS_CSV, COMPLEXES, build_clusters, complexes_from_config,
                                    literature_associations, member_mass_factor, xyz_to_lbd)


def test_file_parses_and_is_consistent():
    rows = literature_associations()
    assert ASSOCIATIONS_CSV.exists() and len(rows) >= 25
    names = {r["name"] for r in rows}
    assert {"bpmg", "twa", "abdmg", "tha", "col", "car", "arg", "etac", "epsc", "thor", "oct", "lupus3",
            "ucra"} <= names
    for r in rows:
        l, b, d = xyz_to_lbd(r["x_pc"], r["y_pc"], r["z_pc"])
        assert d == pytest.approx(r["distance_pc"], abs=0.2) and d < 500
        assert abs(b - r["b_deg"]) < 0.2
        assert 0 < r["age_min_myr"] <= r["age_myr"] <= r["age_max_myr"]
        assert r["sigma_pc"] > 0 and r["n_members"] >= 1
        # clouds for star-forming regions only
        assert (r["cloud_av_mag"] > 0) <= (r["kind"] == "star_forming_region")
        assert r["covered_by"] == "" or r["covered_by"] in COMPLEXES


def test_nearby_moving_groups_exist_with_literature_ages():
    young = section("population")["young"]
    cx = {c.name: c for c in complexes_from_config(young)}
    rows = {r["name"]: r for r in literature_associations()}
    for name in ("bpmg", "twa"):
        c, r = cx[name], rows[name]
        assert c.distance < 100 and c.distributed_only and c.cloud_av_mag == 0
        lo, hi = (10 ** a / 1e6 for a in c.log10_age_yr)
        assert (lo, hi) == (pytest.approx(r["age_min_myr"]), pytest.approx(r["age_max_myr"]))
        assert 10 <= r["age_myr"] <= 30 or name == "twa" and 7 <= lo and hi <= 30
        assert c.stellar_mass_msun == pytest.approx(r["n_members"] * member_mass_factor(0.5))
    # groups already carried by a selected complex are not doubled; Hyades (750 Myr) is beyond max_age_myr
    assert not {"usco", "ucl", "lcc", "tau", "roph", "cra", "hya"} & set(cx)
    assert "ucra" in cx and cx["lupus3"].cloud_av_mag > 0
    # deselecting the complex hands the group over to the literature entry
    only = {c.name for c in complexes_from_config({**young, "complexes": ["orion"]})}
    assert {"usco", "ucl", "lcc", "tau", "roph", "cra"} <= only


def test_mass_rule():
    assert member_mass_factor(0.5) == pytest.approx(2.398, rel=2e-3)
    assert member_mass_factor(0.03) == pytest.approx(0.415, rel=2e-3)


def test_literature_clusters_keep_earlier_streams_and_young_stars_near_the_sun():
    young = section("population")["young"]
    with_lit = build_clusters(young, 5)
    without = build_clusters({**young, "literature_associations": {"enabled": False}}, 5)
    n = len(without)
    assert np.array_equal(with_lit.cluster_id[:n], without.cluster_id) and np.array_equal(with_lit.x[:n], without.x)
    lit = np.array([n_ in {r["name"] for r in literature_associations()} for n_ in with_lit.complex_name])
    assert lit.sum() == len(with_lit) - n and np.all(with_lit.kind[lit] == 0)
    # a young mapping that never passed the schema (e.g. young disabled in population.py) has none
    assert len(build_clusters({"complexes": [], "radcliffe_wave": {"enabled": False}}, 5)) == 0
    bp = with_lit.complex_name.index("bpmg")
    assert np.hypot(np.hypot(with_lit.x[bp], with_lit.y[bp]), with_lit.z[bp]) < 50


def test_corona_australis_and_lupus3_latitudes():
    cx = {c.name: c for c in complexes_from_config(section("population")["young"])}
    _, b_cra, _ = xyz_to_lbd(cx["corona_australis"].x, cx["corona_australis"].y, cx["corona_australis"].z)
    _, b_ucra, _ = xyz_to_lbd(cx["ucra"].x, cx["ucra"].y, cx["ucra"].z)
    _, b_lup3, d_lup3 = xyz_to_lbd(cx["lupus3"].x, cx["lupus3"].y, cx["lupus3"].z)
    assert -18.5 < b_cra < -17 and -16.5 < b_ucra < -14.5
    assert 8 < b_lup3 < 11 and 140 < d_lup3 < 180


def test_corona_australis_off_cloud_population_from_its_census():
    """Upper CrA (BANYAN Sigma's position) carries the off-cloud population of Galli et al. (2020, A&A 634, A98):
    two thirds of their 313 members, complete to G = 20 (0.02 Msun at 6.7 Myr and 149 pc), so 209 x the Kroupa
    mass per member above 0.02 Msun (0.388 Msun) = 81 Msun, three times the 24 Msun of BANYAN's 10 bona fide
    members; its age is CrA-North's 6.7 +- 0.3 Myr (Rigliaco et al. 2025), not BANYAN's ~10 Myr."""
    import math
    cx = {c.name: c for c in complexes_from_config(section("population")["young"])}
    ucra, cra = cx["ucra"], cx["corona_australis"]
    assert 75 < ucra.stellar_mass_msun < 90
    assert ucra.log10_age_yr == pytest.approx((math.log10(6.4e6), math.log10(7.0e6)))
    # the off-cloud population is the larger of the two (Galli et al.: twice as numerous as the on-cloud one)
    assert ucra.stellar_mass_msun > 0.5 * cra.stellar_mass_msun


def test_a_complex_is_as_old_as_the_literature_group_it_stands_for():
    """A complex of COMPLEXES replaces the catalogued group it covers (BANYAN Sigma, Gagne et al. 2018, Table 1), so
    its simulated ages must include that group's: Corona Australis, 0.6–3 Myr for the embedded Coronet in
    COMPLEXES, is 4–5 Myr in Table 1 (Gennaro et al. 2012)."""
    import math

    from ysocensus.galaxy.young import covered_age_ranges

    ranges = covered_age_ranges()
    by_name = {c.name: c for c in complexes_from_config({"radcliffe_wave": {"enabled": False}})}
    for name, (lo, hi) in ranges.items():
        a, b = by_name[name].log10_age_yr
        assert a <= lo and b >= hi, name
    assert by_name["corona_australis"].log10_age_yr[1] == pytest.approx(math.log10(5e6))
    assert by_name["corona_australis"].log10_age_yr[0] == COMPLEXES["corona_australis"][5][0]


def test_ophiuchus_holds_its_surface_population():
    """Ophiuchus is its embedded cores (~0.3 Myr; from 0.5 Myr, the start of the tracks) and the optically visible
    surface population around them, median 2–5 Myr (Wilking, Gagné & Allen 2008), which is what Gaia sees: the
    simulated complex must reach 5 Myr, not stop at BANYAN Sigma's 0.5–2 Myr."""
    import math
    oph = {c.name: c for c in complexes_from_config(section("population")["young"])}["ophiuchus"]
    lo, hi = oph.log10_age_yr
    assert lo == pytest.approx(math.log10(0.5e6)) and hi == pytest.approx(math.log10(5e6), abs=0.01)
