"""validate_real (issue 21): the shipped real members, the catalog a user would have, the metrics.

Fast: no Lightning, no trained model (a stand-in sampler goes through the real inference driver).
"""

import contextlib
import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from ysocensus import io
from ysocensus.validation import real

YOUNG_FILES = {  # file: rows (data/real/SOURCES.md)
    "rhoOph_Canovas2019_gaiadr2.csv": 391,
    "CrA_EsplinLuhman2022_gaiaedr3.csv": 378,
    "BPMG_MiretRoig2020_gaiadr3.csv": 26,
    "ScoCen_UCL1box_Damiani2019_x_gaiaedr3.csv": 181,
}


def _file(name):
    return next(f for f in real.data_files() if f.name == name)


# ------------------------------------------------------------------ shipped data
def test_shipped_files_parse_with_required_columns():
    files = real.data_files()
    names = {f.name for f in files}
    assert set(YOUNG_FILES) <= names
    for f in files:
        frame = real.read_members(f)
        assert len(frame) > 0, f.name
        for c in real.REQUIRED_COLUMNS:
            assert c in frame.columns, (f.name, c)
        assert frame["source_id"].dtype == np.int64
        assert frame["group"].notna().all(), f.name
        if f.name in YOUNG_FILES:
            assert len(frame) == YOUNG_FILES[f.name]
            labelled = frame["age_myr"].dropna()
            assert (labelled < 50).all(), f.name
        elif f.name == "old_clusters.csv":
            assert (frame["age_myr"] >= 300).all()
        # every row can be written as a catalog the driver reads
        cat = real.catalog_frame(frame)
        assert len(cat) == len(frame)
        assert {"source_id", "ra", "dec", *io.GAIA_BANDS, "parallax"} <= set(cat.columns)


def test_provenance_and_licences_ship_with_the_data():
    from importlib import resources

    root = resources.files("ysocensus") / "data" / "real"
    names = {p.name for p in root.iterdir()}
    assert "SOURCES.md" in names
    for lic in ("LICENSE_hectorcanovas_data_mining_Gaia_DR2_MIT.txt", "COPYING_olivares-j_Kalkayotl_GPLv3.txt",
                "LICENSE_vsquicciarini_madys_MIT.txt"):
        assert lic in names
    text = (root / "SOURCES.md").read_text()
    for name in YOUNG_FILES:
        assert name in text
    assert "not shipped" in text.lower()


def test_a_revised_group_age_keeps_the_files_own_beside_it():
    """rho Oph: Cánovas et al. (2019) selected members in Gaia DR2, the optically visible surface population, whose
    median age Wilking, Gagné & Allen (2008) give as 2-5 Myr; the file carries BANYAN's <2 Myr for the L1688
    cores (``real.LABEL_REVISIONS``)."""
    oph = real.read_members(_file("rhoOph_Canovas2019_gaiadr2.csv"))
    assert (oph["age_myr"] == 3.2).all() and (oph["age_myr_lo"] == 2.0).all() and (oph["age_myr_hi"] == 5.0).all()
    assert (oph["age_myr_file"] == 2.0).all() and (oph["age_myr_lo_file"] == 0.3).all()
    rows = real.label_revisions()
    assert [(r["file"], r["group"]) for r in rows if "split_into" not in r] == [
        ("rhoOph_Canovas2019_gaiadr2.csv", "rho Oph")]
    assert "Wilking" in rows[0]["why"]
    with pytest.raises(ValueError, match="x.csv.*'nobody'"):
        real.revise_labels(oph, "x.csv", {("x.csv", "nobody"): (1.0, 0.5, 2.0, "test")})


def test_corona_australis_is_split_into_its_two_literature_populations():
    """Esplin & Luhman (2022) describe a younger population partly embedded in the cloud and an older one around and
    beyond it; Galli et al. (2020) count the off-cloud one twice as numerous. The on-cloud members keep the file's
    4-5 Myr (Gennaro et al. 2012); the off-cloud ones take Upper CrA's 6.7 Myr (Rigliaco et al. 2025), the age of
    the simulator's ``ucra`` row (``real.POPULATION_SPLITS``)."""
    from ysocensus.galaxy.young import literature_associations

    ucra = next(r for r in literature_associations() if r["name"] == "ucra")
    cra = real.read_members(_file("CrA_EsplinLuhman2022_gaiaedr3.csv"))
    assert len(cra) == YOUNG_FILES["CrA_EsplinLuhman2022_gaiaedr3.csv"]
    assert (cra["group_file"] == "Corona Australis").all() and (cra["age_myr_file"] == 4.5).all()
    on, off = (cra[cra["group"] == g] for g in ("Corona Australis on-cloud", "Upper Corona Australis"))
    assert len(on) + len(off) == len(cra)
    assert (on["age_myr"] == 4.5).all() and (on["age_myr_lo"] == 4.0).all()
    assert (off["age_myr"] == ucra["age_myr"]).all() and (off["age_myr_hi"] == ucra["age_max_myr"]).all()
    # off-cloud about twice the on-cloud count, and the on-cloud members the ones near the Coronet (R CrA)
    assert 1.2 < len(off) / len(on) < 2.5
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    coronet = SkyCoord(285.47 * u.deg, -36.95 * u.deg)
    sep = lambda t: SkyCoord(t["ra"].to_numpy() * u.deg, t["dec"].to_numpy() * u.deg).separation(coronet).deg
    assert np.median(sep(on)) < 1.0 < np.median(sep(off))
    split = [r for r in real.label_revisions() if "split_into" in r]
    assert [p["group"] for p in split[0]["split_into"]] == ["Corona Australis on-cloud", "Upper Corona Australis"]
    assert split[0]["split_into"][0]["age_myr"] is None and "Rigliaco" in split[0]["why"]
    # a split naming a group the file lacks fails naming both
    with pytest.raises(ValueError, match="x.csv.*'nobody'"):
        real.split_populations(cra, "x.csv", {("x.csv", "nobody"): ((("a", "ucra", None),), "test")})
    with pytest.raises(ValueError, match="no structure"):
        real.population_densities([285.0], [-37.0], ["atlantis"])
    with pytest.raises(ValueError, match="no row 'atlantis'"):
        real.association_ages("atlantis")


def test_literature_extinctions_are_read_and_checked_against_the_models_av():
    """Esplin & Luhman (2022) give A_K per member from its spectral type (``member_flag`` Ak=): read into
    ``ext_lit_mag`` (not a model input), and ``extinction_check`` converts it with the model's own A_Ks/A_V and
    sets it beside the A_V posterior."""
    cra = real.read_members(_file("CrA_EsplinLuhman2022_gaiaedr3.csv"))
    first = cra.iloc[0]
    assert first["ext_lit_band"] == "ks_m" and first["ext_lit_mag"] == pytest.approx(0.02)   # "Ak=0.02"
    assert np.isfinite(cra["ext_lit_mag"]).sum() > 0.9 * len(cra)
    assert "ext_lit_mag" not in real.read_members(_file("BPMG_MiretRoig2020_gaiadr3.csv")).columns
    assert "ext_lit_mag" not in real.catalog_frame(cra).columns
    with pytest.raises(ValueError, match="x.csv.*'member_flag'"):
        real.literature_extinction(cra.drop(columns=["member_flag"]), "x.csv", {"x.csv": ("Ak", "ks_m")})
    # two stars: one read right (A_V 0.2, literature 0.2), one reddened member read as unreddened and too young
    k = 0.1
    t = pd.DataFrame({"group": "g", "status": "ok", "ext_lit_band": "ks_m", "ext_lit_mag": [0.02, 0.4],
                      "av_mag_q16": [0.1, 0.05], "av_mag_q50": [0.2, 0.1], "av_mag_q84": [0.3, 0.2],
                      "log10_age_yr_q50": [np.log10(4.5e6), np.log10(4.5e6) - 0.5], "age_myr": 4.5})
    g = real.extinction_check(t, {"ks_m": k})["g"]
    assert g["rows"] == 2 and g["av_literature_inside_16_84"] == 0.5
    assert g["median_av_literature"] == pytest.approx(2.1)
    low, high = g["av_literature < 1.5"], g["av_literature >= 1.5"]
    assert low["rows"] == high["rows"] == 1 and high["median_av_literature"] == pytest.approx(4.0)
    assert low["median_dlog_age"] == pytest.approx(0.0, abs=1e-9) and high["median_dlog_age"] == pytest.approx(-0.5)
    assert real.extinction_check(t.drop(columns=["ext_lit_mag"]), {"ks_m": k}) == {}


def test_the_files_own_labels_are_scored_beside_the_revised_ones():
    t = _table()
    assert real.file_label_scores(t.assign(age_myr_file=t["age_myr"]), 50.0) is None
    older = t.assign(age_myr_file=t["age_myr"], age_myr=np.where(t["age_myr"] < 50, 5.0, t["age_myr"]))
    both = real.file_label_scores(older, 50.0)
    assert set(both) == set(real.TARGETS)
    assert both["median_abs_dlog_age"] == pytest.approx(real.score(t, 50.0)["median_abs_dlog_age"])
    assert real.score(older, 50.0)["median_abs_dlog_age"] != pytest.approx(both["median_abs_dlog_age"])


def test_load_members_concatenates_every_file():
    members = real.load_members()
    assert set(YOUNG_FILES) <= set(members["file"])
    assert len(members) >= sum(YOUNG_FILES.values())


# ------------------------------------------------------------------ catalog writer
@pytest.mark.parametrize("text, expected", [
    ("2MASS", dict(J=True, H=True, K=True)),
    ("J:VHS;H:2MASS;K:2MASS", dict(J=False, H=True, K=True)),
    ("J:VHS;H:FS18;K:VHS", dict(J=False, H=False, K=False)),
    ("J:;H:;K:", dict(J=False, H=False, K=False)),
    (None, dict(J=False, H=False, K=False)),
    (float("nan"), dict(J=False, H=False, K=False)),
])
def test_tmass_bands(text, expected):
    assert real.tmass_bands(text) == expected


def test_no_2mass_values_taken_from_vhs_rows():
    members = real.read_members(_file("CrA_EsplinLuhman2022_gaiaedr3.csv"))
    cat = real.catalog_frame(members)
    src = members["jhk_source"].astype(str)
    for band, value, error, out_value, out_error in (("J", "j_m", "j_err", "j_m", "j_msigcom"),
                                                      ("H", "h_m", "h_err", "h_m", "h_msigcom"),
                                                      ("K", "ks_m", "ks_err", "ks_m", "ks_msigcom")):
        tmass = src.str.contains(f"{band}:2MASS").to_numpy()
        other = src.str.contains(f"{band}:VHS|{band}:FS").to_numpy()
        assert other.any() and tmass.any()
        assert cat.loc[other, out_value].isna().all(), band
        assert cat.loc[other, out_error].isna().all(), band
        np.testing.assert_array_equal(cat.loc[tmass, out_value].to_numpy(), members.loc[tmass, value].to_numpy())
        np.testing.assert_array_equal(cat.loc[tmass, out_error].to_numpy(), members.loc[tmass, error].to_numpy())
    # ... and those bands are marginalised (ph_qual X), not read as 2MASS non-detections
    flags = cat[io.PH_QUAL["tmass"]]
    j_vhs = src.str.contains("J:VHS").to_numpy()
    assert (flags[j_vhs].str[0] == io.PH_QUAL_NO_BRIGHTNESS).all()
    assert flags[src.str.fullmatch("J:2MASS;H:2MASS;K:2MASS").to_numpy()].isna().all()


def test_survey_quality_flags_as_the_files_give_them():
    """rho Oph: Canovas et al. (2019) kept the 2MASS and AllWISE ph_qual; CrA: Esplin & Luhman (2022) flag WISE
    non-detections 'nodet'. Either way an upper limit becomes a non-detection in the catalog users would build."""
    oph = real.read_members(_file("rhoOph_Canovas2019_gaiadr2.csv"))
    cat = real.catalog_frame(oph)
    given = oph["phot_flags"].str.extract(r"2mass_ph_qual=([A-Z]{3})")[0]
    have = given.notna().to_numpy()
    assert have.sum() > 300 and (cat.loc[have, io.PH_QUAL["tmass"]] == given[have]).all()
    assert (given.str.contains("U")).sum() >= 3        # upper limits in the file, with a magnitude given
    cra = real.read_members(_file("CrA_EsplinLuhman2022_gaiaedr3.csv"))
    wise = real.catalog_frame(cra)[io.PH_QUAL["wise"]]
    nodet_w4 = cra["phot_flags"].str.contains(r"W4:[^;]*nodet").to_numpy()
    assert nodet_w4.sum() > 100 and (wise[nodet_w4].str[3] == io.PH_QUAL_UPPER_LIMIT).all()


def test_gaia_errors_from_phot_flags():
    members = real.read_members(_file("BPMG_MiretRoig2020_gaiadr3.csv"))
    cat = real.catalog_frame(members)
    flags = real.parse_flags(members["phot_flags"].iloc[0])
    for band, col in (("G", "phot_g_mean_flux_over_error"), ("BP", "phot_bp_mean_flux_over_error"),
                      ("RP", "phot_rp_mean_flux_over_error")):
        assert cat[col].notna().all()
        assert cat[col].iloc[0] == pytest.approx(2.5 / math.log(10) / float(flags[f"{band}_err"]))


def test_archive_flux_over_error_wins_and_mag_error_converts():
    members = pd.DataFrame({
        "source_id": [1, 2, 3], "ra": [10.0] * 3, "dec": [-20.0] * 3, "parallax": [5.0] * 3,
        "phot_g_mean_mag": [12.0] * 3, "phot_bp_mean_mag": [12.5] * 3, "phot_rp_mean_mag": [11.4] * 3,
        "phot_g_mean_flux_over_error": [500.0, np.nan, np.nan],
        "phot_g_mean_mag_error": [0.5, 0.01, np.nan],
        "phot_flags": ["G_err=0.1", "G_err=0.1", "G_err=0.02"],
        "group": ["x"] * 3, "age_myr": [10.0] * 3,
    })
    foe = real.catalog_frame(members)["phot_g_mean_flux_over_error"].to_numpy()
    np.testing.assert_allclose(foe, [500.0, 108.57362, 54.286810], rtol=1e-6)


def test_catalog_has_only_the_columns_a_source_provides(tmp_path):
    members = real.read_members(_file("BPMG_MiretRoig2020_gaiadr3.csv"))
    cat = real.catalog_frame(members)
    assert set(cat.columns) == {"source_id", "ra", "dec", *io.GAIA_BANDS, *io.GAIA_FLUX_OVER_ERROR,
                                "parallax", "parallax_error", io.GAIA_RELEASE, io.RUWE}
    assert set(cat[io.GAIA_RELEASE]) == {"DR3"}
    bare = real.catalog_frame(members, "no_sigma")
    assert set(bare.columns) == {"source_id", "ra", "dec", *io.GAIA_BANDS, "parallax", io.GAIA_RELEASE, io.RUWE}
    oph = real.catalog_frame(real.read_members(_file("rhoOph_Canovas2019_gaiadr2.csv")), "no_sigma")
    assert not set(real.SIGMA_COLUMNS) & set(oph.columns)
    assert {"j_m", "w1mpro"} <= set(oph.columns)
    # without Gaia's σ only: the three mean-flux errors and parallax_error go, 2MASS's and AllWISE's stay
    cra = real.read_members(_file("CrA_EsplinLuhman2022_gaiaedr3.csv"))
    full, no_gaia = real.catalog_frame(cra), real.catalog_frame(cra, "no_gaia_sigma")
    assert set(real.GAIA_SIGMA_COLUMNS) == {*io.GAIA_FLUX_OVER_ERROR, "parallax_error"}
    assert set(full.columns) - set(no_gaia.columns) == set(real.GAIA_SIGMA_COLUMNS) & set(full.columns)
    assert {"ks_msigcom", "w1sigmpro"} <= set(no_gaia.columns)
    pd.testing.assert_frame_equal(no_gaia, full[no_gaia.columns.tolist()])
    # Parquet keeps the absent columns absent and writes missing values as null
    path = real.write_catalog(real.catalog_frame(real.read_members(_file("CrA_EsplinLuhman2022_gaiaedr3.csv"))),
                              tmp_path / "cra.parquet")
    table = pq.read_table(path)
    assert "phot_g_mean_flux_over_error" not in table.column_names
    assert table.column("j_m").null_count > 0
    assert table.column("source_id").type == "int64"
    csv = real.write_catalog(bare, tmp_path / "bpmg.csv")
    assert pd.read_csv(csv).columns.tolist() == bare.columns.tolist()


def test_unknown_variant_is_an_error():
    with pytest.raises(ValueError, match="variant"):
        real.catalog_frame(real.read_members(_file("BPMG_MiretRoig2020_gaiadr3.csv")), "no_photometry")


# ------------------------------------------------------------------ metrics
def test_auc_known_answers():
    assert real.auc([0.9, 0.8, 0.7], [0.1, 0.2]) == 1.0
    assert real.auc([0.1, 0.2], [0.9, 0.8, 0.7]) == 0.0
    assert real.auc([0.5, 0.5], [0.5, 0.5, 0.5]) == 0.5
    assert real.auc([1.0, 0.0], [0.5]) == 0.5
    assert real.auc([], [0.1]) is None
    assert real.auc([0.3, np.nan], [0.1]) == 1.0


def test_auc_matches_pairwise_count():
    rng = np.random.default_rng(3)
    pos = rng.integers(0, 5, 40) / 4.0
    neg = rng.integers(0, 5, 30) / 4.0
    pairs = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    assert real.auc(pos, neg) == pytest.approx(pairs)


def test_interval_coverage():
    assert real.interval_coverage([1, 2, 3, 4], [0, 2.5, 2, 5], [2, 3, 3, 6]) == 0.5
    assert real.interval_coverage([1, np.nan], [0, 0], [2, 2]) == 1.0
    assert real.interval_coverage([np.nan], [0], [1]) is None


def _table():
    """4 young (2 Myr), 3 old (1 Gyr), 1 unlabelled, 1 young with status invalid_input."""
    return pd.DataFrame({
        "file": ["a"] * 5 + ["b"] * 3 + ["a"],
        "group": ["Y", "Y", "Y", "Y", "U", "O", "O", "O", "Y"],
        "age_myr": [2.0, 2.0, 2.0, 2.0, np.nan, 1000.0, 1000.0, 1000.0, 2.0],
        "parallax": [10.0] * 5 + [5.0] * 3 + [10.0],
        "status": ["ok"] * 8 + ["invalid_input"],
        "p_young": [0.9, 0.8, 0.6, 0.2, 0.7, 0.1, 0.3, 0.6, np.nan],
        "log10_age_yr_q16": [6.0, 6.2, 6.5, 7.0, 6.0, 8.5, 8.0, 7.5, np.nan],
        "log10_age_yr_q50": [6.3, 6.5, 6.8, 7.8, 6.5, 9.0, 8.5, 7.6, np.nan],
        "log10_age_yr_q84": [6.6, 6.9, 7.0, 8.5, 7.0, 9.5, 9.0, 7.7, np.nan],
        "distance_pc_q50": [110.0, 100.0, 90.0, 100.0, 100.0, 200.0, 220.0, 200.0, np.nan],
    })


def test_score_known_answers():
    m = real.score(_table(), young_threshold_myr=50.0)
    assert m["n_rows"] == 9 and m["n_not_ok"] == 1
    assert m["status"] == {"invalid_input": 1, "ok": 8}
    assert (m["n_young"], m["n_old"], m["n_unlabelled"]) == (4, 3, 1)
    # young 0.9 0.8 0.6 0.2 vs old 0.1 0.3 0.6: 9 wins + 1 tie (0.6) + ... of 12 pairs
    pos, neg = np.array([0.9, 0.8, 0.6, 0.2]), np.array([0.1, 0.3, 0.6])
    expected = ((pos[:, None] > neg).sum() + 0.5 * (pos[:, None] == neg).sum()) / 12
    assert m["auc_p_young"] == pytest.approx(expected)
    assert m["young_called_young"] == 0.75
    assert m["old_called_young"] == pytest.approx(1 / 3)
    dlog = np.abs(np.array([6.3, 6.5, 6.8, 7.8]) - math.log10(2e6))
    assert m["median_abs_dlog_age"] == pytest.approx(np.median(dlog))
    assert m["age_inside_16_84"] == 0.5          # 6.301 inside [6.0, 6.6] and [6.2, 6.9] only
    g = m["groups"]
    assert set(g) == {"Y", "U", "O"}
    assert g["Y"]["rows"] == 5 and g["Y"]["ok"] == 4 and g["Y"]["label"] == "young"
    assert g["O"]["label"] == "old" and g["U"]["label"] == "unlabelled"
    assert g["O"]["median_parallax_distance_pc"] == 200.0
    assert g["O"]["median_distance_ratio"] == pytest.approx(1.0)
    assert g["Y"]["median_distance_pc_q50"] == 100.0
    assert "median_ess_young" not in m and "conditioning" not in m


def test_the_stellar_models_calibration_cluster_is_not_scored():
    """The cluster the models were corrected to (stars.empirical) is listed, but not an old-cluster negative."""
    m = real.score(_table(), young_threshold_myr=50.0, calibration_groups=["O"])
    assert (m["n_young"], m["n_old"], m["n_calibration"]) == (4, 0, 3)
    assert m["auc_p_young"] is None and m["groups"]["O"]["label"] == "calibration"


def test_score_uses_ess_and_conditioning_when_present():
    t = _table().assign(ess=[40.0, 30, 20, 10, 5, 60, 60, 60, np.nan], conditioning="gaia")
    m = real.score(t)
    assert m["median_ess_young"] == 25.0
    assert m["conditioning"] == {"gaia": 9}
    assert m["groups"]["O"]["median_ess"] == 60.0


def test_targets_and_variant_comparison():
    t = real.targets_met({"auc_p_young": 0.96, "young_called_young": 0.5, "median_abs_dlog_age": 0.1,
                          "age_inside_16_84": None})
    assert t["auc_p_young"]["met"] and not t["young_called_young"]["met"]
    assert t["median_abs_dlog_age"]["met"] and t["age_inside_16_84"]["met"] is None
    c = real.compare_variants({"auc_p_young": 0.9, "median_abs_dlog_age": 0.3},
                              {"auc_p_young": 0.8, "median_abs_dlog_age": 0.2})
    assert c["auc_p_young"]["at_least_as_good"] is True
    assert c["median_abs_dlog_age"]["at_least_as_good"] is False
    c = real.compare_variants({"auc_p_young": 0.9}, {"auc_p_young": 0.95}, without_name="no_gaia_sigma")
    assert c["auc_p_young"] == {"as_published": 0.9, "no_gaia_sigma": 0.95, "at_least_as_good": False}



def _members(n_young=300, n_old=300, seed=0):
    """A table of scored members: young at 10 Myr with P(young) ~ U(0.3, 1), old at 1 Gyr with ~ U(0, 0.6)."""
    rng = np.random.default_rng(seed)
    n = n_young + n_old
    young = np.arange(n) < n_young
    q50 = np.where(young, 7.0, 9.0) + rng.normal(0, 0.3, n)
    return pd.DataFrame({"group": np.where(young, "Y", "O"), "age_myr": np.where(young, 10.0, 1000.0),
                         "status": "ok", "p_young": np.where(young, rng.uniform(0.3, 1, n), rng.uniform(0, 0.6, n)),
                         "log10_age_yr_q50": q50, "log10_age_yr_q16": q50 - 0.3, "log10_age_yr_q84": q50 + 0.3,
                         "parallax": 5.0})


def test_headline_of_all_members_is_what_score_reports():
    t = _members()
    h = real._headline_arrays(t, 50.0, ())
    got = real._headline(h, np.flatnonzero(h["young"]), np.flatnonzero(h["old"]))
    m = real.score(t)
    for k in real.BETTER_HIGH + real.BETTER_LOW:
        assert got[k] == pytest.approx(m[k]), k


def test_paired_bootstrap_tells_noise_from_a_real_loss():
    """The same table twice differs by exactly 0 in every resampling; one young member fewer called young is within
    the noise of 300; P(young) lowered by 0.3 for every young member is a loss beyond noise in 'called young'
    (about 40 % of them cross 0.5, ± 3 % from the sample of 300) and in the AUC, not in the old members' figures."""
    t = _members()
    same = real.paired_bootstrap(t, t, seed=1)
    assert all(v == (0.0, 0.0) for v in same.values())
    one = t.copy()
    one.loc[int(np.flatnonzero((t.group == "Y") & (t.p_young > 0.5))[0]), "p_young"] = 0.4
    c = real.compare_variants(real.score(one), real.score(t), real.paired_bootstrap(one, t, seed=1))
    assert c["young_called_young"]["at_least_as_good"] is False
    assert not any(v["worse_beyond_noise"] for v in c.values())
    worse = t.assign(p_young=np.where(t.group == "Y", t.p_young - 0.3, t.p_young))
    c = real.compare_variants(real.score(worse), real.score(t), real.paired_bootstrap(worse, t, seed=1))
    assert c["young_called_young"]["worse_beyond_noise"] and c["auc_p_young"]["worse_beyond_noise"]
    assert not c["old_called_young"]["worse_beyond_noise"] and not c["median_abs_dlog_age"]["worse_beyond_noise"]
    lo, hi = c["young_called_young"]["difference_95"]
    assert lo < c["young_called_young"]["as_published"] - c["young_called_young"]["no_sigma"] < hi
    with pytest.raises(ValueError, match="same members"):
        real.paired_bootstrap(t.iloc[:-1], t)


# ------------------------------------------------------------------ end to end, stand-in sampler
class _Sampler:
    """Young where the star lies above a line in M_G vs BP-RP: a stand-in for the trained model."""

    def __init__(self):
        self.columns = []

    def sample(self, batch, n_samples, seed):
        from ysocensus.inference import SampleResult

        self.columns.append(sorted(k for k, v in batch.items()
                                   if isinstance(v, np.ndarray) and v.dtype.kind == "f" and np.isfinite(v).any()))
        rng = np.random.default_rng(seed)
        n = len(batch["source_id"])
        plx = batch["parallax"]
        with np.errstate(invalid="ignore", divide="ignore"):
            mg = batch["phot_g_mean_mag"] + 5 * np.log10(plx / 100)
        col = batch["phot_bp_mean_mag"] - batch["phot_rp_mean_mag"]
        young = np.nan_to_num(mg < 2.4 * col + 1.5).astype(bool)
        s = np.zeros((n, n_samples, len(io.PARAMETERS)), np.float32)
        s[..., 0] = np.where(young, 6.6, 9.0)[:, None] + 0.2 * rng.standard_normal((n, n_samples))
        s[..., 1], s[..., 2], s[..., 4] = 0.5, 0.0, 0.3
        s[..., 3] = np.where(plx > 0, 1000 / plx, 300)[:, None]
        return SampleResult(s, np.full(n, "ok", object))

    def describe(self):
        return {"model": "stand-in"}


def _old_file(tmp_path):
    """A tiny old-cluster file in the shared schema: Hyades-like main-sequence stars at 47 pc."""
    col = np.linspace(0.6, 2.8, 12)
    mg = 2.4 * col + 2.5  # 1 mag below the stand-in sampler's young/old line
    plx = np.full(col.size, 21.3)
    g = mg - 5 * np.log10(plx / 100)
    frame = pd.DataFrame({
        "source_id": np.arange(col.size) + 10**15, "ra": 66.0, "dec": 16.0, "parallax": plx,
        "parallax_error": 0.05, "phot_g_mean_mag": g, "phot_bp_mean_mag": g + 0.4 * col,
        "phot_rp_mean_mag": g - 0.6 * col, "phot_g_mean_flux_over_error": 1000.0,
        "phot_bp_mean_flux_over_error": 300.0, "phot_rp_mean_flux_over_error": 400.0,
        "group": "Hyades", "age_myr": 650.0,
    })
    path = tmp_path / "old_clusters.csv"
    frame.to_csv(path, index=False)
    return path


def test_run_real_validation_through_the_driver(tmp_path):
    files = [_file("BPMG_MiretRoig2020_gaiadr3.csv"), _file("CrA_EsplinLuhman2022_gaiaedr3.csv"),
             _old_file(tmp_path)]
    sampler = _Sampler()
    out = real.run_real_validation(None, tmp_path / "real.json", tmp_path / "fig", n_samples=8, seed=1,
                                   files=files, sampler=sampler)
    saved = json.loads((tmp_path / "real.json").read_text())
    assert saved["variants"].keys() == {"as_published", "no_sigma", "no_gaia_sigma"}
    for key in ("definitions", "files", "sigma_vs_no_sigma", "gaia_sigma_vs_no_gaia_sigma", "sagitta", "figures",
                "label_revisions"):
        assert key in saved
    pub, bare = saved["variants"]["as_published"], saved["variants"]["no_sigma"]
    # Corona Australis split into its on-cloud and off-cloud populations: the file's single label scored beside
    assert set(pub["under_file_labels"]) == set(real.TARGETS)
    assert pub["n_rows"] == 26 + 378 + 12
    assert pub["n_old"] == 12 and pub["n_young"] == pub["status"]["ok"] - 12
    assert set(pub["groups"]) == {"beta Pictoris MG", "Corona Australis on-cloud", "Upper Corona Australis",
                                  "Hyades"}
    assert pub["old_called_young"] == 0.0 and pub["auc_p_young"] > 0.5
    for name in ("auc_p_young", "young_called_young", "median_abs_dlog_age", "age_inside_16_84"):
        assert name in pub["targets"]
    # the driver saw the catalog's columns: uncertainties in as_published only
    assert "phot_g_mean_flux_over_error" in pub["catalogs"]["BPMG_MiretRoig2020_gaiadr3.csv"]["columns"]
    assert not set(real.SIGMA_COLUMNS) & set(bare["catalogs"]["CrA_EsplinLuhman2022_gaiaedr3.csv"]["columns"])
    assert saved["sagitta"] in ("not installed",) or isinstance(saved["sagitta"], dict)
    for p in out["figures"].values():
        assert (tmp_path / "fig").joinpath(p.split("/")[-1]).stat().st_size > 10_000
    assert saved["isochrones_myr"] is None


def test_a_files_posteriors_do_not_depend_on_the_files_beside_it(tmp_path):
    """Each file's catalog draws from a stream named by the file, not by its place among the others: adding a file
    that sorts before it (as the age-scale clusters do) leaves its posteriors as they were."""
    one = real.load_members([_file("CrA_EsplinLuhman2022_gaiaedr3.csv")])
    two = real.load_members([_file("BPMG_MiretRoig2020_gaiadr3.csv"), _file("CrA_EsplinLuhman2022_gaiaedr3.csv")])
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, _ = real.run_members(one, _Sampler(), "as_published", 8, 1, 50.0, tmp_path / "a")
    b, _ = real.run_members(two, _Sampler(), "as_published", 8, 1, 50.0, tmp_path / "b")
    b = b[b["file"] == "CrA_EsplinLuhman2022_gaiaedr3.csv"]
    for col in ("log10_age_yr_q50", "p_young"):
        np.testing.assert_array_equal(a[col].to_numpy(), b[col].to_numpy())
    assert real.file_stream("x/CrA_EsplinLuhman2022_gaiaedr3.csv") == real.file_stream("CrA_EsplinLuhman2022_gaiaedr3.csv")


def test_clusters_of_known_age_are_listed_as_calibration_not_scored(tmp_path):
    """With ``age_scale_clusters`` the five lithium-depletion-boundary clusters (data/calibration) run through the same
    path and appear per group, but the young/old metrics count only the validation files' stars."""
    files = [_file("BPMG_MiretRoig2020_gaiadr3.csv"), _old_file(tmp_path)]
    base = real.run_real_validation(None, tmp_path / "a.json", tmp_path / "fig", n_samples=4, seed=1, files=files,
                                    sampler=_Sampler(), variants=["as_published"], sagitta=False)
    out = real.run_real_validation(None, tmp_path / "b.json", tmp_path / "fig", n_samples=4, seed=1, files=files,
                                   sampler=_Sampler(), variants=["as_published"], sagitta=False,
                                   age_scale_clusters=True)
    clusters = real.age_scale_groups()
    assert clusters == ["IC 2602", "IC 2391", "alpha Per", "Pleiades", "Blanco 1"]
    assert set(clusters) <= set(out["calibration_groups"])
    a, b = base["variants"]["as_published"], out["variants"]["as_published"]
    assert set(clusters) <= set(b["groups"])
    for key in ("n_young", "n_old", "auc_p_young", "young_called_young", "median_abs_dlog_age", "age_inside_16_84"):
        assert a[key] == b[key], key
    assert b["n_rows"] == a["n_rows"] + 3326


def test_isochrones_on_the_cmd(tmp_path):
    """The model's isochrones from the project's own grids: a young one lies above an old one at fixed colour."""
    from ysocensus.stars.bolometric import load_bc_grid
    from ysocensus.stars.tracks import IsochroneGrid

    iso = IsochroneGrid.build(feh_range=(-0.25, 0.25), feh_step=0.25, log10_mass_step=0.02)
    curves = real.isochrone_cmd(iso, load_bc_grid(), ages_myr=(2, 1000))
    assert set(curves) == {2.0, 1000.0}
    for x, y in curves.values():
        assert x.size > 20 and np.isfinite(x).all() and np.isfinite(y).all()

    def m_g_at(curve, colour=2.0):
        x, y = curve
        sel = (x > 1.0) & (x < 3.0)       # the lower main sequence / pre-main sequence, monotonic here
        order = np.argsort(x[sel])
        return np.interp(colour, x[sel][order], y[sel][order])

    young, old = m_g_at(curves[2.0]), m_g_at(curves[1000.0])
    assert young < old - 1.0          # 2 Myr pre-main sequence is > 1 mag brighter at BP-RP 2
    real.figure_cmd(real.read_members(_file("BPMG_MiretRoig2020_gaiadr3.csv")), tmp_path / "cmd.png", curves)
    assert (tmp_path / "cmd.png").stat().st_size > 10_000


def test_real_module_does_not_import_lightning_or_torch():
    code = ("import sys; import ysocensus.validation.real, ysocensus.inference; "
            "bad = [m for m in ('lightning', 'torch') if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_run_rule_takes_the_schema_defaults_and_loads_the_model_as_the_cli_does(tmp_path, monkeypatch):
    from ysocensus.config import schema_path, validate_config
    from ysocensus.inference import model_adapter

    config = validate_config({}, schema_path("config"))
    section = dict(config["validate_real"], n_samples=4, sagitta=False)
    assert section["variants"] == ["as_published", "no_sigma", "no_gaia_sigma"]
    seen = {}

    def load(path, **kw):
        seen.update(path=path, **kw)
        return _Sampler()

    monkeypatch.setattr(model_adapter, "load_sampler", load)
    figures = {k: str(tmp_path / f"real_{k}.png") for k in ("p_young", "age", "cmd")}
    out = real.run_validate_real("m.ckpt", None, None, str(tmp_path / "real.json"), figures, section, config["infer"],
                        seed=5, threads=1)
    assert seen["path"] == "m.ckpt" and seen["threads"] == 1 and seen["prior"] is None
    assert seen["device"] == config["infer"]["device"]
    assert out["seed"] == 5 and out["n_samples"] == 4 and out["sagitta"].startswith("not run")
    assert out["young_threshold_myr"] == config["infer"]["young_threshold_myr"]
    assert set(YOUNG_FILES) <= set(out["files"])
    assert all((tmp_path / f"real_{k}.png").exists() for k in figures)


class _Estimator:
    """A stand-in posterior with other priors: under "simulation" or "structure" every star is young (log age 6.6)."""

    def __init__(self):
        self.prior, self.prior_ratio = "population", object()

    @contextlib.contextmanager
    def using_prior(self, prior):
        keep, self.prior = self.prior, prior
        try:
            yield self
        finally:
            self.prior = keep


class _TwoPriorSampler(_Sampler):
    def __init__(self):
        super().__init__()
        self.estimator = _Estimator()

    def sample(self, batch, n_samples, seed):
        res = super().sample(batch, n_samples, seed)
        if self.estimator.prior in ("simulation", "structure"):
            res.samples[..., 0] = 6.6
        return res


@pytest.mark.parametrize("option, key, prior", [("compare_prior", "other_prior", "simulation"),
                                                 ("structure_prior", "structure_prior", "structure")])
def test_another_prior_is_scored_beside_the_main_one(tmp_path, option, key, prior):
    files = [_file("CrA_EsplinLuhman2022_gaiaedr3.csv"), _old_file(tmp_path)]
    sampler = _TwoPriorSampler()
    out = real.run_real_validation(None, tmp_path / "real.json", tmp_path / "fig", n_samples=8, seed=1,
                                   files=files, sampler=sampler, variants=["as_published"], **{option: True})
    other = out[key]
    assert other["prior"] == prior and other["variant"] == "as_published"
    assert ({"other_prior", "structure_prior"} - {key}).isdisjoint(out)  # only the prior asked for
    # the stand-in calls every star young under the other priors, old ones included; the main scores do not
    assert other["scores"]["old_called_young"] == 1.0 and out["variants"]["as_published"]["old_called_young"] == 0.0
    assert sampler.estimator.prior == "population"  # restored
    plain = real.run_real_validation(None, tmp_path / "r2.json", tmp_path / "fig", n_samples=8, seed=1, files=files,
                                     sampler=_Sampler(), variants=["as_published"], **{option: True})
    assert plain[key].startswith("not available")


def test_grid_fit_recovers_the_age_of_stars_made_from_the_models():
    """Unreddened stars made from the grid itself (1 Myr … 1 Gyr, 0.2–0.8 M☉, at 100 pc) come back at their own
    pre-main-sequence age within one grid step; reddened by A_V = 1 and fitted unreddened (the default), never
    older than they are (the fit is a lower bound); a row without a usable parallax is NaN, not dropped."""
    from ysocensus.stars.bolometric import load_bc_grid
    from ysocensus.stars.tracks import IsochroneGrid

    iso, bc = IsochroneGrid.build(feh_range=(-0.25, 0.25), feh_step=0.25, log10_mass_step=0.02), load_bc_grid()
    a, m = (v.ravel() for v in np.meshgrid([6.0, 6.5, 7.0, 7.5, 9.0], np.log10([0.2, 0.4, 0.8]), indexing="ij"))
    q = iso.interpolate(a, m, np.zeros(a.size))
    cols = [list(bc.bands).index(b) for b in io.GAIA_BANDS]
    step = real.GRID_FIT_LOG10_AGE[2] + 1e-9
    pms = a < 8   # 1 Gyr main-sequence M/K dwarfs are ageless in colour and magnitude
    for av in (0.0, 1.0):
        mags = bc.absolute_magnitudes(10 ** q["log10_teff"], q["logg"], q["log10_lum_lsun"], np.zeros(a.size),
                                      np.full(a.size, av))
        stars = pd.DataFrame(mags[:, cols] + 5.0, columns=list(io.GAIA_BANDS))   # 100 pc: distance modulus 5
        stars["parallax"] = 10.0
        stars.loc[len(stars)] = [12.0, 13.0, 11.0, -1.0]
        fit = real.grid_fit(stars, iso, bc)
        assert len(fit) == len(stars) and fit.iloc[-1].isna().all()
        got = fit["grid_log10_age"].to_numpy()[:-1]
        if av == 0:
            assert (np.abs(got - a) <= step)[pms].all(), list(zip(a, 10 ** m, got))
        else:
            assert (got <= a + step)[pms].all() and (got < a - step)[pms].any(), list(zip(a, 10 ** m, got))


def test_age_scale_splits_the_offset():
    members = pd.DataFrame({"group": ["A", "A", "B", "old"], "age_myr": [10.0, 10.0, 20.0, 600.0]})
    fit = pd.DataFrame({"grid_log10_age": [7.2, 7.4, 7.0, 9.0], "grid_av_mag": [0.1, 0.3, 0.0, 0.0]})
    net = {"population": {"A": {"median_log10_age_yr_q50": 7.5}}, "simulation": {}}
    out = real.age_scale(members, fit, net, 50.0)
    assert set(out) == {"A", "B"}
    assert out["A"]["literature_log10_age"] == pytest.approx(7.0)
    assert out["A"]["models_minus_literature"] == pytest.approx(0.3)
    assert out["A"]["network_population_minus_models"] == pytest.approx(0.2)
    assert out["A"]["network_simulation_log10_age"] is None and out["B"]["network_population_minus_models"] is None


def test_each_group_is_broken_down_by_g_magnitude():
    """Per group and G bin: rows, median age, called young and inside, over the scored rows only; a row without G
    is counted apart, and a table without G has no breakdown."""
    t = _table().assign(phot_g_mean_mag=[15.0, 17.0, 19.5, np.nan, 12.0, 15.5, 18.5, 20.0, 19.9])
    by = real.score(t)["groups"]["Y"]["by_g_magnitude"]
    assert set(by) == {"G < 16", "16 <= G < 18", "G >= 19", "no G"}  # the invalid row (G 19.9) is not scored
    assert by["G < 16"] == {"rows": 1, "median_log10_age_yr_q50": 6.3, "called_young": 1.0, "age_inside_16_84": 1.0}
    assert by["G >= 19"]["median_log10_age_yr_q50"] == 6.8 and by["G >= 19"]["age_inside_16_84"] == 0.0
    assert by["no G"]["rows"] == 1 and by["no G"]["called_young"] == 0.0
    assert "by_g_magnitude" not in real.score(_table())["groups"]["Y"]
