"""Files by extension: Parquet, FITS, VOTable, ECSV, CSV, in and out, with units, thresholds and metadata;
a Gaia-archive VOTable through the driver into a FITS file that astropy opens with units and positions."""

import json
import warnings

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.inference.catalogs import make_catalog
from tests.inference.doubles import GaussianTestSampler
from ysocensus import io
from ysocensus.inference import InferOptions, infer_catalog
from ysocensus.inference.formats import FormatError, Param, file_format, read_table, write_table

EXT = {"parquet": "parquet", "fits": "fits", "votable": "vot", "ecsv": "ecsv", "csv": "csv"}


def _read_astropy(path):
    from astropy.table import Table

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dex(yr) is not a FITS unit: astropy keeps it as text, with a warning
        return Table.read(path)


@pytest.mark.parametrize("name, fmt", [("a.parquet", "parquet"), ("a.FITS", "fits"), ("a.fit", "fits"),
                                       ("a.vot", "votable"), ("a.xml", "votable"), ("a.votable", "votable"),
                                       ("a.ecsv", "ecsv"), ("a.csv", "csv"), ("a.csv.gz", "csv"),
                                       ("a.fits.gz", "fits")])
def test_format_from_the_name(name, fmt):
    assert file_format(name) == fmt


def test_unknown_or_compressed_output_names_are_refused():
    with pytest.raises(FormatError, match="a.xlsx: cannot tell the format"):
        file_format("a.xlsx")
    with pytest.raises(FormatError, match="compressed output"):
        file_format("a.fits.gz", output=True)


def _table():
    schema = pa.schema([
        pa.field("source_id", pa.int64(), metadata={"unit": "", "description": "id"}),
        pa.field("log10_age_yr_q50", pa.float32(), metadata={"unit": "log10(yr)", "description": "median age"}),
        pa.field("distance_pc_q50", pa.float32(), metadata={"unit": "pc"}),
        pa.field("initial_mass_msun_q50", pa.float32(), metadata={"unit": "Msun"}),
        pa.field("status", pa.string()),
        pa.field("note", pa.string()),
        pa.field("n", pa.int32()),
    ], metadata={b"ysocensus.schema": b"posterior"})
    return pa.Table.from_arrays([
        pa.array([1, 2, 3], pa.int64()), pa.array([7.0, None, 9.5], pa.float32()),
        pa.array([10.0, 20.0, None], pa.float32()), pa.array([1.0, 0.5, 0.2], pa.float32()),
        pa.array(["ok", "invalid_input", "ok"]), pa.array([None, "invalid ra", None]),
        pa.array([5, None, 7], pa.int32())], schema=schema)


@pytest.mark.parametrize("fmt", list(EXT))
def test_round_trip_keeps_values_nulls_and_units(tmp_path, fmt):
    path = tmp_path / f"t.{EXT[fmt]}"
    write_table(_table(), path, meta={"run": "x"}, params=[Param("young_threshold_myr", 50.0, "Myr", "P(age<)",
                                                                 "PYNG_MYR")])
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left
    got = read_table(path)
    assert got.num_rows == 3
    np.testing.assert_array_equal(got.column("source_id").to_numpy(), [1, 2, 3])
    age = np.asarray(got.column("log10_age_yr_q50").to_numpy(zero_copy_only=False), float)
    assert age[0] == 7.0 and np.isnan(age[1]) and age[2] == 9.5
    assert got.column("status").to_pylist() == ["ok", "invalid_input", "ok"]
    assert got.column("n").to_pylist()[0] == 5 and got.column("n").to_pylist()[2] == 7
    if fmt in ("votable", "ecsv", "parquet"):   # FITS has no null string, CSV no null/empty distinction
        assert got.column("n").to_pylist()[1] is None
    if fmt in ("fits", "votable", "ecsv"):
        units = {f.name: (f.metadata or {}).get(b"unit", b"").decode() for f in got.schema}
        assert units["distance_pc_q50"] == "pc" and units["initial_mass_msun_q50"] == "solMass"
        assert units["log10_age_yr_q50"] == "dex(yr)"


def test_fits_header_carries_units_descriptions_threshold_and_metadata(tmp_path):
    from astropy.io import fits

    path = tmp_path / "t.fits"
    write_table(_table(), path, meta={"run": "x", "columns": {"read": {"parallax": "Plx"}}},
                params=[Param("young_threshold_myr", 50.0, "Myr", "p_young = P(age < this)", "PYNG_MYR"),
                        Param("second_threshold_myr", None, "Myr", "unset", "PYNG2MYR")])
    with fits.open(path) as hdul:
        h = hdul[1].header
        assert hdul[1].name == "POSTERIOR"
        assert h["TUNIT2"] == "dex(yr)" and h["TUNIT3"] == "pc" and h["TUNIT4"] == "solMass"
        assert h["TCOMM2"] == "median age"
        assert h["PYNG_MYR"] == 50.0 and "PYNG2MYR" not in h
        assert json.loads(h["YSOMETA"])["columns"]["read"]["parallax"] == "Plx"


def test_votable_params_and_info(tmp_path):
    from astropy.io.votable import parse

    path = tmp_path / "t.vot"
    write_table(_table(), path, meta={"run": "x"},
                params=[Param("young_threshold_myr", 50.0, "Myr", "p_young = P(age < this)", "PYNG_MYR")])
    vot = parse(str(path))
    table = vot.get_first_table()
    (param,) = table.params
    assert param.name == "young_threshold_myr" and param.value == 50.0 and str(param.unit) == "Myr"
    assert json.loads(vot.resources[0].infos[0].value) == {"run": "x"}
    assert {f.name: str(f.unit) for f in table.fields}["distance_pc_q50"] == "pc"


def test_a_column_a_format_cannot_hold_fails_naming_it_and_leaves_nothing(tmp_path):
    t = _table().append_column("when", pa.array([1, 2, 3], pa.timestamp("s")))
    with pytest.raises(FormatError, match="'when'"):
        write_table(t, tmp_path / "t.fits")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", ["parquet", "fits", "votable", "ecsv"])
def test_empty_or_truncated_files_are_named(tmp_path, fmt):
    path = tmp_path / f"t.{EXT[fmt]}"
    path.write_bytes(b"")
    with pytest.raises(FormatError, match=rf"t\.{EXT[fmt]}: the file is empty"):
        read_table(path)
    write_table(_table(), path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(FormatError, match=rf"t\.{EXT[fmt]}: not a readable {fmt} file"):
        read_table(path)


def _gaia_archive_votable(path, n=60):
    """A VOTable as the Gaia archive writes a gaia_source ⋈ tmass_psc_xsc ⋈ allwise_original_valid query."""
    from astropy.table import Table

    frame = make_catalog(n, all_null_rows=2).drop(columns=["l", "b", "tile", "survey_mask"]
                                                  + list(io.LAMOST_LABELS + io.LAMOST_ERRORS))
    frame = frame.rename(columns={f"w{k}sigmpro": f"w{k}mpro_error" for k in range(1, 5)})
    frame["designation"] = [f"Gaia DR3 {i}" for i in frame["source_id"]]
    frame["ruwe"] = 1.1
    frame["original_ext_source_id"] = ["J%07d" % i for i in range(n)]
    t = Table.from_pandas(frame)
    for c in ("ra", "dec"):
        t[c].unit = "deg"
    t["parallax"].unit = "mas"
    t.write(path, format="votable")
    return frame


def test_gaia_archive_votable_in_fits_out_with_units_positions_and_threshold(tmp_path, caplog):
    import logging

    cat = tmp_path / "gaia_result.vot"
    frame = _gaia_archive_votable(cat)
    out = tmp_path / "posteriors.fits"
    caplog.set_level(logging.INFO)
    report = infer_catalog(cat, out, GaussianTestSampler(),
                           InferOptions(batch_size=25, positions=True, carry=("ruwe", "ra"),
                                        young_threshold_myr=20.0))
    assert report.rows == 60
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gaia_result.vot", "posteriors.fits"]
    # the recognition summary: what was read for which survey and under which name, what was ignored
    assert "wise: w1mpro, w1sigmpro (as w1mpro_error)" in caplog.text and "designation" in caplog.text
    t = _read_astropy(out)
    assert len(t) == 60 and list(t["source_id"]) == list(frame["source_id"])
    assert t["distance_pc_q50"].unit == "pc" and t["initial_mass_msun_q50"].unit == "solMass"
    assert t["av_mag_q50"].unit == "mag" and str(t["log10_age_yr_q50"].unit) == "dex(yr)"
    for c in ("ra", "dec", "l", "b"):
        assert t[c].unit == "deg"
    np.testing.assert_allclose(t["ra"], frame["ra"])
    np.testing.assert_allclose(t["b"], make_catalog(60, all_null_rows=2)["b"], atol=1e-8)
    assert t.meta["PYNG_MYR"] == 20.0 and t.meta["PYNG2MYR"] == 10.0
    assert "ruwe" in t.colnames and list(t.colnames).count("ra") == 1   # ra carried once: it is a position
    meta = json.loads(t.meta["YSOMETA"])
    assert meta["columns"]["read"]["w1sigmpro"] == "w1mpro_error"
    assert meta["columns"]["read"]["designation"] == "designation"  # the release of each row's photometry
    assert meta["report"]["rows"] == 60 and "seconds" not in meta["report"]


@pytest.mark.parametrize("fmt", ["votable", "ecsv", "csv", "parquet"])
def test_infer_writes_what_the_extension_says(tmp_path, fmt):
    cat = tmp_path / "c.parquet"
    make_catalog(40).to_parquet(cat)
    out = tmp_path / f"post.{EXT[fmt]}"
    infer_catalog(cat, out, GaussianTestSampler(), InferOptions(batch_size=15, positions=True))
    got = read_table(out)
    assert got.num_rows == 40 and {"p_young", "ra", "dec", "l", "b"} <= set(got.column_names)
    if fmt == "parquet":
        meta = pq.read_schema(out).metadata
        assert json.loads(meta[b"ysocensus.young_threshold_myr"]) == 50.0
        desc = pq.read_schema(out).field("p_young").metadata[b"description"].decode()
        assert "50 Myr" in desc
    if fmt == "ecsv":
        t = _read_astropy(out)
        assert t.meta["young_threshold_myr"] == 50.0 and t["l"].unit == "deg"
        assert "below 50 Myr" in t["p_young"].description


def test_raw_samples_are_parquet_whatever_the_output(tmp_path):
    cat = tmp_path / "c.parquet"
    make_catalog(20).to_parquet(cat)
    infer_catalog(cat, tmp_path / "post.fits", GaussianTestSampler(), InferOptions(save_samples=True, n_samples=4))
    assert pq.read_table(tmp_path / "post_samples.parquet").num_rows == 20
    with pytest.raises(ValueError, match="samples.fits.*Parquet"):
        infer_catalog(cat, tmp_path / "p.fits", GaussianTestSampler(), InferOptions(save_samples=True),
                      samples_output=tmp_path / "samples.fits")
