"""Catalog reading and validation: formats, required columns, bad values named by column and row,
error-model filling, coordinates."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tests.inference.catalogs import make_catalog, write_catalog
from ysocensus import io
from ysocensus.inference import catalog, columns, error_models
from ysocensus.inference.catalog import CatalogReader, InputError, prepare


def _table(frame):
    return pa.Table.from_pandas(frame, preserve_index=False)


@pytest.mark.parametrize("fmt", ["parquet", "csv", "fits"])
def test_formats_read_the_same_values(tmp_path, fmt):
    frame = make_catalog(300)
    path = tmp_path / f"cat.{fmt}"
    write_catalog(frame, path, fmt)
    reader = CatalogReader(path, batch_size=128)
    reader.check_structure()
    tables = list(reader)
    assert [t.num_rows for t in tables] == [128, 128, 44]
    prepared = [prepare(t, offset=i * 128) for i, t in enumerate(tables)]
    got = np.concatenate([p.columns["phot_g_mean_mag"] for p in prepared])
    np.testing.assert_allclose(got, frame["phot_g_mean_mag"].to_numpy(), rtol=1e-6)
    ids = np.concatenate([p.columns["source_id"] for p in prepared])
    np.testing.assert_array_equal(ids, frame["source_id"].to_numpy())
    # nulls stay missing (NaN), never become numbers
    assert np.isnan(np.concatenate([p.columns["j_m"] for p in prepared])).sum() == frame["j_m"].isna().sum()


def test_missing_required_column_is_named(tmp_path):
    frame = make_catalog(20).drop(columns=["source_id"])
    path = tmp_path / "c.parquet"
    frame.to_parquet(path)
    with pytest.raises(InputError, match="source_id"):
        CatalogReader(path).check_structure()


def test_missing_position_is_named(tmp_path):
    frame = make_catalog(20).drop(columns=["l", "b", "ra", "dec"])
    path = tmp_path / "c.parquet"
    frame.to_parquet(path)
    with pytest.raises(InputError, match="'l' and 'b'.*'ra' and 'dec'"):
        CatalogReader(path).check_structure()


def test_ra_dec_are_converted_to_galactic():
    frame = make_catalog(50)
    ref = prepare(_table(frame))
    got = prepare(_table(frame.drop(columns=["l", "b"])))
    np.testing.assert_allclose(got.columns["b"], ref.columns["b"], atol=1e-6)
    dl = (got.columns["l"] - ref.columns["l"] + 180) % 360 - 180
    np.testing.assert_allclose(dl, 0, atol=1e-6)


def test_bad_values_flag_rows_naming_column_and_rows(caplog):
    frame = make_catalog(40, all_null_rows=0)
    frame.loc[3, "parallax_error"] = -0.1
    frame.loc[5, "j_m"] = np.inf
    frame.loc[7, "w1mpro"] = 99.99
    batch = prepare(_table(frame), where="cat.parquet", offset=1000)
    assert np.flatnonzero(batch.invalid).tolist() == [3, 5, 7]
    notes = batch.note_column()
    assert "parallax_error" in notes[3] and "j_m" in notes[5] and "w1mpro" in notes[7]
    text = caplog.text
    assert "'parallax_error'" in text and "[1003]" in text and "'j_m'" in text and "[1005]" in text
    with pytest.raises(InputError, match=r"'j_m' is infinite.*\[1005\]"):
        prepare(_table(frame), where="cat.parquet", offset=1000, on_invalid="raise")


def test_non_numeric_text_in_csv_is_named(tmp_path):
    frame = make_catalog(30, all_null_rows=0)
    frame["parallax"] = frame["parallax"].astype(object)
    frame.loc[4, "parallax"] = "abc"
    path = tmp_path / "c.csv"
    frame.to_csv(path, index=False)
    reader = CatalogReader(path)
    (table,) = list(reader)
    batch = prepare(table)
    assert np.flatnonzero(batch.invalid).tolist() == [4]
    assert "parallax: is not a number" in batch.note_column()[4]
    with pytest.raises(InputError, match=r"'parallax' is not a number .*\[4\]"):
        prepare(table, on_invalid="raise")


def test_wrong_dtype_is_named():
    frame = make_catalog(10)
    table = _table(frame).set_column(frame.columns.get_loc("j_m"), "j_m", pa.array([True] * 10))
    with pytest.raises(InputError, match="'j_m' has type bool"):
        prepare(table)


def test_null_source_id_is_an_error_naming_rows():
    table = _table(make_catalog(10))
    ids = table.column("source_id").to_pylist()
    ids[2] = None
    table = table.set_column(0, "source_id", pa.array(ids, pa.int64()))
    with pytest.raises(InputError, match=r"source_id.*\[2\]"):
        prepare(table)


def test_missing_uncertainties_are_not_invented_unless_asked():
    frame = make_catalog(200, all_null_rows=0).drop(columns=list(io.TMASS_ERRORS) + ["parallax_error"])
    batch = prepare(_table(frame))
    have_j = frame["j_m"].notna().to_numpy()
    # the value is used, its σ stays unknown (the model reads it as a value alone), and the row says so
    assert np.isnan(batch.columns["j_msigcom"]).all() and not batch.filled
    assert (batch.columns["survey_mask"][have_j] & (1 << io.MEASUREMENT_BITS.index("j_m"))).all()
    row = np.flatnonzero(have_j)[0]
    assert "tmass:measured_no_sigma" in batch.conditioning[row]
    # filled from the survey error models only on request (fill_errors), and noted
    filled = prepare(_table(frame), fill_errors=True)
    np.testing.assert_allclose(filled.columns["j_msigcom"][have_j],
                               error_models.tmass_sigma("j_m", frame["j_m"].to_numpy()[have_j]), rtol=1e-6)
    assert set(filled.filled) == set(io.TMASS_ERRORS) | {"parallax_error"}
    assert "uncertainty from error model" in filled.note_column()[row]


def _rules(batch, survey):
    return np.array([dict(p.split(":") for p in c.split(";"))[survey] for c in batch.conditioning])


def test_a_survey_the_catalog_lacks_is_marginalised_not_read_as_a_non_detection():
    from ysocensus.inference.catalog import SURVEY_VALUES

    frame = make_catalog(100, all_null_rows=0)
    gaia_only = frame.drop(columns=[c for s in ("tmass", "wise", "lamost") for c in SURVEY_VALUES[s]]
                           + list(io.TMASS_ERRORS) + list(io.WISE_ERRORS) + list(io.LAMOST_ERRORS))
    batch = prepare(_table(gaia_only))
    bits = batch.columns[io.SEARCHED_MASK]
    for s in ("tmass", "wise", "lamost"):
        assert (_rules(batch, s) == "marginalised").all()
        for c in SURVEY_VALUES[s]:
            assert not (bits & (1 << io.MEASUREMENT_BITS.index(c))).any()
    # the columns present but null for a star: never cross-matched, also marginalised ...
    frame.loc[:9, list(io.TMASS_BANDS)] = np.nan
    batch = prepare(_table(frame))
    assert (_rules(batch, "tmass")[:10] == "marginalised").all()
    # ... unless the cross-match was done: the survey's ID column is there, or the user says so
    with_id = frame.assign(tmass_id=["x"] * 10 + [None] * 90)
    assert (_rules(prepare(_table(with_id)), "tmass")[:10] == "not_detected").all()
    declared = prepare(_table(frame), searched=("tmass",))
    assert (_rules(declared, "tmass")[:10] == "not_detected").all()
    j = io.MEASUREMENT_BITS.index("j_m")
    assert (declared.columns[io.SEARCHED_MASK][:10] & (1 << j)).all()
    with pytest.raises(ValueError, match="unknown survey"):
        prepare(_table(frame), searched=("2mass",))


def test_error_models_are_monotonic_and_positive():
    # fainter than the bright-star regime (Gaia DR3 errors are not monotonic below G ~ 13.6: window classes, gating)
    m = np.linspace(14.0, 20, 50)
    for err, (value, model) in error_models.ERROR_MODELS.items():
        cols = {c: np.full(50, np.nan) for c in ("b",) + io.MEASUREMENT_BITS}
        cols[value] = m if value in io.MAGNITUDES else np.full(50, 1.0)
        cols["phot_g_mean_mag"] = m
        sig = np.asarray(model(cols, 50))
        assert np.all(sig > 0), err
        if err in io.GAIA_FLUX_OVER_ERROR:
            assert np.all(np.diff(sig) <= 1e-6), err      # flux/error falls with magnitude
        else:
            assert np.all(np.diff(sig) >= -1e-6), err     # σ grows with magnitude


def test_gaia_alternative_uncertainties_are_converted():
    frame = make_catalog(20, all_null_rows=0).drop(columns=list(io.GAIA_FLUX_OVER_ERROR))
    frame["phot_g_mean_mag_error"] = 0.01
    frame["phot_bp_mean_flux"] = 1000.0
    frame["phot_bp_mean_flux_error"] = 10.0
    batch = prepare(_table(frame))
    np.testing.assert_allclose(batch.columns["phot_g_mean_flux_over_error"], 1.0857 / 0.01, rtol=1e-3)
    np.testing.assert_allclose(batch.columns["phot_bp_mean_flux_over_error"], 100.0)
    assert "phot_g_mean_flux_over_error" not in batch.filled


def test_all_null_rows_are_not_observed_but_valid():
    frame = make_catalog(10, all_null_rows=3)
    batch = prepare(_table(frame))
    assert not batch.invalid.any()
    assert batch.observed.tolist() == [True] * 7 + [False] * 3
    assert (batch.columns["survey_mask"][-3:] == 0).all()


def test_uppercase_column_names_are_accepted(tmp_path):
    frame = make_catalog(10)
    frame.columns = [c.upper() for c in frame.columns]
    path = tmp_path / "c.parquet"
    frame.to_parquet(path)
    reader = CatalogReader(path)
    reader.check_structure()
    assert "phot_g_mean_mag" in reader.read_columns


def test_unknown_format_is_refused(tmp_path):
    p = tmp_path / "c.xlsx"
    p.write_text("x")
    with pytest.raises(InputError, match="format"):
        CatalogReader(p)


def test_red_supergiants_of_nearby_associations_are_valid():
    # the simulator makes K ≈ -6 for a 22 Msun red supergiant at 100 pc in Upper Sco (Antares: K = -4.1);
    # such a star is real data, not a sentinel
    frame = make_catalog(5, all_null_rows=0)
    frame.loc[2, ["j_m", "h_m", "ks_m", "w1mpro"]] = [-5.2, -5.8, -6.0, -6.0]
    batch = prepare(_table(frame), where="cat.parquet")
    assert not batch.invalid.any()


def test_values_accepted_but_wrong_are_flagged_not_dropped(caplog):
    frame = make_catalog(40, all_null_rows=0)
    frame.loc[2, "ra"] = 400.0             # not degrees in 0..360
    frame.loc[4, "dec"] = -95.0
    frame.loc[6, ["parallax", "parallax_error"]] = [-10.0, 0.05]   # -200 sigma
    frame.loc[8, ["parallax", "parallax_error"]] = [-0.2, 0.05]    # -4 sigma: a distant star's noise
    frame.loc[11, "source_id"] = frame.loc[10, "source_id"]
    batch = prepare(_table(frame), where="cat.parquet", offset=100)
    assert batch.n == 40 and np.flatnonzero(batch.invalid).tolist() == [2, 4, 6]
    notes = batch.note_column()
    assert "ra" in notes[2] and "0..360" in notes[2] and "dec" in notes[4] and "sigma below zero" in notes[6]
    # a repeated source_id is noted, not invalid: the star's values are fine
    assert "repeats an earlier row" in notes[11] and not batch.invalid[11] and notes[10] is None
    text = caplog.text
    assert "'source_id'" in text and "[111]" in text and "'ra'" in text and "[102]" in text and "[106]" in text
    # --strict stops at the first: here the repeated source_id
    with pytest.raises(InputError, match=r"'source_id' repeats an earlier row.*\[111\]"):
        prepare(_table(frame), where="cat.parquet", offset=100, on_invalid="raise")
    frame.loc[11, "source_id"] += 1000
    with pytest.raises(InputError, match=r"'ra' is outside 0..360 deg.*\[102\]"):
        prepare(_table(frame), where="cat.parquet", offset=100, on_invalid="raise")


def test_ra_dec_are_checked_even_when_l_b_are_given():
    frame = make_catalog(10, all_null_rows=0)
    frame.loc[3, "ra"] = -1.0
    batch = prepare(_table(frame))
    assert np.flatnonzero(batch.invalid).tolist() == [3]


def test_repeated_source_ids_are_found_across_batches():
    from ysocensus.inference.catalog import SeenIds

    seen = SeenIds()
    first, where = seen.repeats(np.array([5, 3, 5, 9]), 0)
    assert first.tolist() == [False, False, True, False] and where.tolist() == [-1, -1, 0, -1]
    again, where = seen.repeats(np.array([9, 1, 3, 1]), 4)
    assert again.tolist() == [True, False, True, True] and where.tolist() == [3, -1, 1, 5]


def test_positions_are_carried_computed_and_null_where_unknown():
    frame = make_catalog(20, all_null_rows=0)
    ref = prepare(_table(frame)).positions
    np.testing.assert_allclose(ref["ra"], frame["ra"]) and np.testing.assert_allclose(ref["l"], frame["l"])
    # only ra, dec: l, b computed; only l, b: ra, dec computed
    from_radec = prepare(_table(frame.drop(columns=["l", "b"]))).positions
    np.testing.assert_allclose(from_radec["b"], frame["b"], atol=1e-8)
    from_lb = prepare(_table(frame.drop(columns=["ra", "dec"]))).positions
    np.testing.assert_allclose(from_lb["dec"], frame["dec"], atol=1e-8)
    dra = (from_lb["ra"] - frame["ra"].to_numpy() + 180) % 360 - 180
    np.testing.assert_allclose(dra, 0, atol=1e-8)
    frame.loc[4, ["l", "b", "ra", "dec"]] = np.nan
    pos = prepare(_table(frame)).positions
    assert all(np.isnan(pos[c][4]) for c in ("ra", "dec", "l", "b"))


def test_messages_name_the_files_own_column_for_an_alias(tmp_path):
    frame = make_catalog(20, all_null_rows=0).rename(columns={"j_msigcom": "e_Jmag"})
    frame.loc[5, "e_Jmag"] = -0.1
    path = tmp_path / "c.parquet"
    frame.to_parquet(path)
    reader = CatalogReader(path)
    (table,) = list(reader)
    batch = prepare(table, labels=reader.labels)
    assert "j_msigcom (e_Jmag)" in batch.note_column()[5]
    with pytest.raises(InputError, match=r"'j_msigcom' \(file column 'e_Jmag'\)"):
        prepare(table, labels=reader.labels, on_invalid="raise")


@pytest.mark.parametrize("fmt", ["parquet", "fits"])
def test_empty_or_truncated_catalog_files_are_named(tmp_path, fmt):
    path = tmp_path / f"c.{fmt}"
    path.write_bytes(b"")
    with pytest.raises(InputError, match=rf"c\.{fmt}.*empty"):
        CatalogReader(path)
    write_catalog(make_catalog(300), path, fmt)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InputError, match=rf"c\.{fmt}"):
        reader = CatalogReader(path)
        list(reader)


@pytest.mark.parametrize("fmt", ["votable", "ecsv"])
def test_votable_and_ecsv_catalogs_read_the_same_values(tmp_path, fmt):
    from astropy.table import Table

    frame = make_catalog(150)
    path = tmp_path / f"c.{'vot' if fmt == 'votable' else fmt}"
    Table.from_pandas(frame).write(path, format="votable" if fmt == "votable" else "ascii.ecsv")
    reader = CatalogReader(path, batch_size=64)
    assert reader.format == fmt and reader.num_rows == 150
    tables = list(reader)
    assert [t.num_rows for t in tables] == [64, 64, 22]
    got = np.concatenate([prepare(t).columns["j_m"] for t in tables])
    np.testing.assert_allclose(got, frame["j_m"].to_numpy(), rtol=1e-6)   # nulls stay NaN


def test_gaia_dr2_photometric_uncertainties_are_not_read():
    """The simulator writes DR3's photometric σ (surveys.gaia); DR2's come from fewer transits and another
    pipeline, so a DR2 row's Gaia bands are read as values alone (its parallax σ is still read), per row from the
    gaia_release column or for the whole file from the option, and the note says so."""
    frame = make_catalog(60, all_null_rows=0)
    frame[io.GAIA_RELEASE] = ["DR2", "Gaia DR3", None] * 20
    batch = prepare(_table(frame))
    dr2 = np.arange(60) % 3 == 0
    g = batch.columns["phot_g_mean_flux_over_error"]
    given = frame["phot_g_mean_flux_over_error"].notna().to_numpy()
    assert np.isnan(g[dr2]).all() and np.isfinite(g[~dr2 & given]).all()  # null release: the DR3 default
    np.testing.assert_array_equal(np.isfinite(batch.columns["parallax_error"]), frame["parallax_error"].notna())
    rules = _rules(batch, "gaia")
    assert (rules[dr2 & given] == "measured_no_sigma").all() and (rules[~dr2 & given] == "measured").all()
    assert all("Gaia DR2 photometric uncertainties not read" in n for n in batch.note_column()[dr2 & given])
    # a file without the column: the option decides for every row
    whole = prepare(_table(make_catalog(20, all_null_rows=0)), gaia_release="dr2")
    assert np.isnan(whole.columns["phot_bp_mean_flux_over_error"]).all()
    bad = make_catalog(5, all_null_rows=0)
    bad[io.GAIA_RELEASE] = ["DR3", "DR4", "DR3", "DR3", "DR9"]
    with pytest.raises(InputError, match=r"gaia_release.*DR4.*\[1, 4\]"):
        prepare(_table(bad))


def test_the_gaia_archive_designation_names_the_release_where_no_column_does():
    """An archive query carries ``designation`` (``Gaia DR2 …``) but rarely a release column: its prefix decides,
    so DR2's σ is not read as DR3's; a ``gaia_release`` value wins over it, and a name that is not a Gaia source
    name (a 2MASS designation from a join) leaves the row to the default."""
    frame = make_catalog(40, all_null_rows=0)
    frame["designation"] = ["Gaia DR2 12", "Gaia DR3 12", "16273877-2429245", None] * 10
    batch = prepare(_table(frame))
    given = frame["phot_g_mean_flux_over_error"].notna().to_numpy()
    dr2 = np.arange(40) % 4 == 0
    g = batch.columns["phot_g_mean_flux_over_error"]
    assert np.isnan(g[dr2]).all() and np.isfinite(g[~dr2 & given]).all()
    frame[io.GAIA_RELEASE] = ["DR3", None, None, "DR2"] * 10
    g = prepare(_table(frame)).columns["phot_g_mean_flux_over_error"]
    dr2 = np.arange(40) % 4 == 3
    assert np.isnan(g[dr2]).all() and np.isfinite(g[~dr2 & given]).all()
    assert list(catalog.designation_releases(["Gaia EDR3 5", "gaia dr3 7", "Gaia DR3", "Gaia DR4 1", None])) == [
        "EDR3", "DR3", "DR3", None, None]


def test_vizier_source_names_are_the_designation():
    assert columns.ALIASES["dr2name"] == columns.ALIASES["dr3name"] == catalog.GAIA_DESIGNATION


def test_gaia_photometric_uncertainties_of_a_likely_non_single_source_are_not_read():
    """RUWE > 1.4 (Lindegren et al. 2018): a close pair's G scatter is neither noise nor variability, neither of
    which the simulator writes for it, so its G/BP/RP σ are unread (the parallax σ is read); null RUWE: read."""
    frame = make_catalog(40, all_null_rows=0)
    frame[io.RUWE] = [0.95, 1.39, 1.41, 12.7, np.nan] * 8
    batch = prepare(_table(frame))
    high = np.isin(np.arange(40) % 5, [2, 3])
    given = frame["phot_g_mean_flux_over_error"].notna().to_numpy()
    for c in io.GAIA_FLUX_OVER_ERROR:
        assert np.isnan(batch.columns[c][high]).all() and np.isfinite(batch.columns[c][~high & given]).all()
    np.testing.assert_array_equal(np.isfinite(batch.columns["parallax_error"]), frame["parallax_error"].notna())
    rules = _rules(batch, "gaia")
    assert (rules[high & given] == "measured_no_sigma").all() and (rules[~high & given] == "measured").all()
    assert all("ruwe > 1.4" in n for n in batch.note_column()[high & given])
    frame[io.RUWE] = [1.0, -1.0] * 20                               # not a RUWE: the row is flagged, named
    flagged = prepare(_table(frame))
    assert flagged.invalid[1::2].all() and not flagged.invalid[0::2].any()
    assert "ruwe" in flagged.note_column()[1]


def test_quality_flags_make_upper_limits_non_detections_and_x_bands_marginalised(caplog):
    """2MASS PSC and AllWISE publish a non-detection as an upper limit in the magnitude column (ph_qual U, null
    σ; Cutri et al. 2003 §IV.4.b, 2013 §II.1.a): read as given it would be a detection at the limit."""
    frame = make_catalog(6, all_null_rows=0)
    frame[io.PH_QUAL["tmass"]] = ["AAA", "UAA", "XAA", None, "AQ", "UUU"]
    frame[io.PH_QUAL["wise"]] = ["AAUU", None, None, None, None, "AAAX"]
    frame.loc[:, "j_m"] = 12.0
    frame.loc[1, "j_msigcom"] = np.nan                       # the archive's upper limit: a value, no σ
    batch = prepare(_table(frame))
    bits = batch.columns[io.SEARCHED_MASK]
    j, w3, w4 = (1 << io.MEASUREMENT_BITS.index(c) for c in ("j_m", "w3mpro", "w4mpro"))
    # U: the value is not read, the band counts as searched (a non-detection, tokens.MISSING)
    assert np.isnan(batch.columns["j_m"][1]) and bits[1] & j
    assert np.isnan(batch.columns["w3mpro"][0]) and bits[0] & w3 and bits[0] & w4
    # X: not read and not searched (marginalised); a null flag leaves the row as it was
    assert np.isnan(batch.columns["j_m"][2]) and not bits[2] & j
    assert batch.columns["j_m"][3] == 12.0 and bits[3] & j
    assert not bits[5] & w4 and _rules(batch, "tmass")[5] == "not_detected"
    # a flag of the wrong width or alphabet is named and its row flagged, not guessed
    assert batch.invalid.tolist() == [False] * 4 + [True, False]
    assert "tmass_ph_qual" in caplog.text
    assert any("upper limit" in text and rows[1] for text, rows in batch.notes)


def test_quality_flags_by_their_vizier_names_and_a_bare_ph_qual_is_warned_about():
    from ysocensus.inference import catalog, columns

    rec = columns.recognise(["source_id", "ra", "dec", "Qflg", "qph", "ph_qual_1"], catalog.COLUMN_GROUPS,
                            quantities=catalog.QUANTITIES)
    assert rec.used[io.PH_QUAL["tmass"]] == "Qflg" and rec.used[io.PH_QUAL["wise"]] == "qph"
    assert any("ph_qual_1" in line and "tmass_ph_qual" in line for line in rec.warnings())


def test_rows_whose_faint_bp_the_model_does_not_read_are_noted():
    """With a model's faint-BP rule (``surveys.gaia.unreliable_bp``) the rows it applies to say so in their note;
    the value stays in the batch (the model's tokenisation leaves it out) and the Gaia rule is unchanged."""
    frame = make_catalog(30, all_null_rows=0)
    frame["phot_bp_mean_mag"] = np.linspace(19.0, 22.0, 30)
    faint = frame["phot_bp_mean_mag"].to_numpy() > 20.3
    batch = prepare(_table(frame), bp_max_mag=20.3)
    notes = batch.note_column()
    assert all("phot_bp_mean_mag fainter than 20.3 mag" in n for n in notes[faint])
    assert not any("phot_bp_mean_mag fainter" in (n or "") for n in notes[~faint])
    np.testing.assert_array_equal(batch.columns["phot_bp_mean_mag"], frame["phot_bp_mean_mag"])
    assert not any("fainter" in (n or "") for n in prepare(_table(frame)).note_column())  # no rule, no note
