"""Column recognition: aliases (VizieR, Gaia archive joins, TOPCAT), near misses, clashes, the summary."""

import numpy as np
import pytest

from tests.inference.catalogs import make_catalog
from ysocensus.inference import columns
from ysocensus.inference.catalog import COLUMN_GROUPS, KNOWN, QUANTITIES, CatalogReader, InputError


def _recognise(names, keep=()):
    return columns.recognise(names, COLUMN_GROUPS, keep=keep, quantities=QUANTITIES)


def test_every_alias_names_a_canonical_column_and_none_shadows_one():
    assert set(columns.ALIASES.values()) <= set(KNOWN)
    assert not set(columns.ALIASES) & set(KNOWN)


def test_vizier_gaia_dr3_names_are_read_case_insensitively():
    rec = _recognise(["Source", "RA_ICRS", "DE_ICRS", "Plx", "e_Plx", "Gmag", "e_Gmag", "BPmag", "RPmag",
                      "FBP", "e_FBP", "RFRP", "RUWE", "pmRA"])
    assert rec.used == {"source_id": "Source", "ra": "RA_ICRS", "dec": "DE_ICRS", "parallax": "Plx",
                        "parallax_error": "e_Plx", "phot_g_mean_mag": "Gmag", "phot_bp_mean_mag": "BPmag",
                        "phot_rp_mean_mag": "RPmag", "phot_rp_mean_flux_over_error": "RFRP",
                        "phot_g_mean_mag_error": "e_Gmag", "phot_bp_mean_flux": "FBP",
                        "phot_bp_mean_flux_error": "e_FBP", "ruwe": "RUWE"}
    assert rec.ignored == ("pmRA",) and not rec.near_misses
    groups = rec.by_group()
    assert "parallax (as Plx)" in groups["gaia"] and "ra (as RA_ICRS)" in groups["position"]


def test_gaia_archive_crossmatch_and_other_survey_names():
    rec = _recognise(["source_id", "ra", "dec", "j_m", "j_msigcom", "ks_m", "ks_msigcom", "w1mpro", "w1mpro_error",
                      "W2MPRO", "W2MPRO_ERROR", "Jmag", "e_Kmag", "W3mag", "e_W3mag", "teff", "teff_err",
                      "original_ext_source_id"])
    assert rec.used["w1sigmpro"] == "w1mpro_error" and rec.used["w2sigmpro"] == "W2MPRO_ERROR"
    assert rec.used["w3mpro"] == "W3mag" and rec.used["w3sigmpro"] == "e_W3mag"
    # a bare teff is not taken for a LAMOST label (it may be photometric): ignored, and said so
    assert "teff_lamost" not in rec.used and {"teff", "teff_err"} <= set(rec.ignored)
    assert rec.used["original_ext_source_id"] == "original_ext_source_id"
    # the canonical name wins over the alias; the alias is reported, not silently dropped
    assert rec.used["j_m"] == "j_m" and rec.used["ks_msigcom"] == "ks_msigcom"
    assert rec.shadowed == {"Jmag": "j_m", "e_Kmag": "ks_msigcom"}
    assert rec.groups["w1sigmpro"] == "wise" and rec.groups["original_ext_source_id"].startswith("tmass")
    assert "Jmag (for j_m, read from j_m)" in "\n".join(rec.summary())


def test_topcat_suffixes_prefer_the_first_table():
    rec = _recognise(["source_id_1", "ra_1", "dec_1", "ra_2", "dec_2", "phot_g_mean_mag", "j_m_2", "Gmag_2",
                      "Plx_1", "parallax_2"])
    assert rec.used["ra"] == "ra_1" and rec.used["dec"] == "dec_1" and rec.used["source_id"] == "source_id_1"
    assert rec.used["j_m"] == "j_m_2" and rec.used["parallax"] == "Plx_1"
    # canonical over alias, alias over suffixed, lower suffix (the first table) over higher
    assert rec.shadowed == {"ra_2": "ra", "dec_2": "dec", "Gmag_2": "phot_g_mean_mag", "parallax_2": "parallax"}


def test_two_columns_of_the_same_rank_are_an_error_naming_both():
    with pytest.raises(columns.ColumnClash, match="'RA_ICRS' and 'RAJ2000'.*'ra'"):
        _recognise(["source_id", "RA_ICRS", "RAJ2000"])


@pytest.mark.parametrize("name, canonical", [("g_mag", "phot_g_mean_mag"), ("plx_err", "parallax_error"),
                                             ("parallax_err", "parallax_error"), ("bp_mag", "phot_bp_mean_mag"),
                                             ("w1mpro_err", "w1sigmpro"), ("sourceid", "source_id"),
                                             ("Jmag_err", "j_msigcom")])
def test_near_misses_are_warned_about_never_guessed(name, canonical):
    rec = _recognise(["source_id" if canonical != "source_id" else "x", "ra", "dec", "parallax", "w1mpro",
                      "j_m", name])
    assert canonical not in rec.used and name in rec.ignored
    assert rec.near_misses[name][1] == canonical
    (line,) = rec.warnings("cat.vot")
    assert f"'{name}'" in line and canonical in line and "cat.vot" in line


def test_a_look_alike_of_a_column_that_is_present_is_no_near_miss():
    # a Gaia archive download: parallax_over_error resembles parallax_error, which the file has
    names = ["source_id", "ra", "dec", "ra_error", "dec_error", "parallax", "parallax_error", "parallax_over_error",
             "pmra", "pmra_error", "ruwe", "phot_g_n_obs", "phot_g_mean_flux", "phot_g_mean_flux_error",
             "phot_g_mean_flux_over_error", "phot_g_mean_mag", "phot_bp_mean_mag", "phot_rp_mean_mag", "bp_rp",
             "phot_bp_rp_excess_factor", "radial_velocity", "radial_velocity_error", "l", "b", "ecl_lon", "ecl_lat",
             "teff_gspphot", "logg_gspphot", "mh_gspphot", "distance_gspphot", "ag_gspphot", "designation"]
    rec = _recognise(names)
    assert not rec.near_misses, rec.near_misses
    assert "parallax_over_error" in rec.ignored


def test_carried_columns_are_not_reported_as_ignored():
    rec = _recognise(["source_id", "l", "b", "pmra", "my_flag"], keep=["PMRA"])
    assert rec.ignored == ("my_flag",)


def test_summary_lines_name_survey_alias_and_ignored():
    rec = _recognise(["Source", "RA_ICRS", "DE_ICRS", "Gmag", "g_mag_2x", "pmra"])
    text = "\n".join(rec.summary("cat.vot"))
    assert "gaia: phot_g_mean_mag (as Gmag)" in text and "position: ra (as RA_ICRS), dec (as DE_ICRS)" in text
    assert "ignored" in text and "pmra" in text
    d = rec.to_dict()
    assert d["read"]["phot_g_mean_mag"] == "Gmag" and "pmra" in d["ignored"]


def test_reader_reads_aliased_columns_under_canonical_names(tmp_path):
    frame = make_catalog(30).rename(columns={"source_id": "Source", "parallax": "Plx", "parallax_error": "e_Plx",
                                             "phot_g_mean_mag": "Gmag", "w1sigmpro": "w1mpro_error"})
    frame["ruwe"] = 1.0
    path = tmp_path / "c.parquet"
    frame.to_parquet(path)
    reader = CatalogReader(path, carry=["Plx", "ruwe"])
    reader.check_structure()
    (table,) = list(reader)
    np.testing.assert_array_equal(table.column("parallax").to_numpy(), frame["Plx"].to_numpy())
    np.testing.assert_array_equal(table.column("plx").to_numpy(), frame["Plx"].to_numpy())  # carried as well
    assert reader.labels["parallax"] == "Plx" and "w1sigmpro" in table.column_names


def test_a_missing_required_column_suggests_its_near_miss(tmp_path):
    frame = make_catalog(10).rename(columns={"source_id": "sourceid"})
    path = tmp_path / "c.parquet"
    frame.to_parquet(path)
    with pytest.raises(InputError, match="source_id.*'sourceid'"):
        CatalogReader(path).check_structure()


def test_a_clash_in_a_file_is_an_input_error_naming_it(tmp_path):
    path = tmp_path / "c.parquet"
    make_catalog(10).drop(columns=["ra"]).assign(RA_ICRS=1.0, RAJ2000=1.0).to_parquet(path)
    with pytest.raises(InputError, match=r"c\.parquet.*RA_ICRS.*RAJ2000"):
        CatalogReader(path)


def test_literature_member_table_names_are_recognised():
    """The shipped real-member files name 2MASS errors j_err … and WISE w1, w1_err …; none is ignored."""
    rec = _recognise(["source_id", "ra", "dec", "j_m", "j_err", "ks_m", "ks_err", "w1", "w1_err", "w2", "w2_err"])
    assert rec.used["j_msigcom"] == "j_err" and rec.used["ks_msigcom"] == "ks_err"
    assert rec.used["w1mpro"] == "w1" and rec.used["w2sigmpro"] == "w2_err"
    assert not rec.ignored
