"""Schemas, validated atomic Parquet writing and checked reading (ysocensus.io)."""

import os

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from ysocensus import io


def posterior_frame(n=4):
    data = {"source_id": np.arange(n, dtype=np.int64), "status": ["ok"] * n,
            "n_samples": np.full(n, 64, dtype=np.int32), "p_young": np.linspace(0, 1, n),
            "p_young_2": np.linspace(0, 0.5, n), "ess": np.full(n, 64.0, np.float32),
            "conditioning": ["gaia:measured;tmass:marginalised;wise:marginalised;lamost:marginalised"] * n,
            "note": [None] * n}
    for p in io.PARAMETERS:
        for q in io.QUANTILES:
            data[f"{p}_q{q}"] = np.full(n, float(q))
    return pd.DataFrame(data)


def test_roundtrip_keeps_dtypes_units_and_metadata(tmp_path):
    path = tmp_path / "post.parquet"
    frame = posterior_frame()
    frame.loc[1, "av_mag_q50"] = np.nan  # a nullable column: NaN becomes null
    io.write_table(frame, path, io.POSTERIOR, metadata={"dropped": 3})
    table = io.read_table(path, io.POSTERIOR)
    assert table.column_names == io.POSTERIOR.names
    assert table.column("av_mag_q50").null_count == 1
    assert table.schema.field("distance_pc_q50").metadata[b"unit"] == b"pc"
    assert io.read_metadata(path) == {"dropped": 3}


def test_missing_column_names_file_and_column(tmp_path):
    path = tmp_path / "post.parquet"
    with pytest.raises(io.SchemaError, match=r"post\.parquet.*p_young"):
        io.write_table(posterior_frame().drop(columns="p_young"), path, io.POSTERIOR)
    assert not path.exists()


def test_null_in_required_column_is_rejected_with_rows(tmp_path):
    frame = posterior_frame()
    frame["status"] = ["ok", None, "ok", None]
    with pytest.raises(io.SchemaError, match=r"'status'.*first rows \[1, 3\]"):
        io.write_table(frame, tmp_path / "x.parquet", io.POSTERIOR)


def test_unknown_column_is_rejected_unless_declared(tmp_path):
    frame = posterior_frame().assign(ra=1.0)
    with pytest.raises(io.SchemaError, match="'ra'"):
        io.write_table(frame, tmp_path / "x.parquet", io.POSTERIOR)
    io.write_table(frame, tmp_path / "x.parquet", io.POSTERIOR, extra_columns=["ra"])
    assert "ra" in io.read_table(tmp_path / "x.parquet", io.POSTERIOR, extra_columns=["ra"]).column_names


def test_reader_checks_files_written_elsewhere(tmp_path):
    path = tmp_path / "foreign.parquet"
    posterior_frame().drop(columns="n_samples").to_parquet(path)
    with pytest.raises(io.SchemaError, match=r"foreign\.parquet.*n_samples"):
        io.read_table(path, io.POSTERIOR)
    (tmp_path / "junk.parquet").write_text("not parquet")
    with pytest.raises(io.SchemaError, match="junk.parquet: not a readable Parquet"):
        io.read_table(tmp_path / "junk.parquet", io.POSTERIOR)


def test_column_subset_read(tmp_path):
    path = tmp_path / "post.parquet"
    io.write_table(posterior_frame(), path, io.POSTERIOR)
    assert io.read_table(path, io.POSTERIOR, columns=["source_id"]).num_columns == 1
    with pytest.raises(io.SchemaError, match="not in the posterior schema"):
        io.read_table(path, io.POSTERIOR, columns=["nope"])


def test_failed_write_leaves_nothing_behind(tmp_path):
    path = tmp_path / "out.json"
    with pytest.raises(RuntimeError):
        with io.atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_replaces_existing_file(tmp_path):
    path = tmp_path / "post.parquet"
    io.write_table(posterior_frame(2), path, io.POSTERIOR)
    io.write_table(posterior_frame(5), path, io.POSTERIOR)
    assert pq.read_metadata(path).num_rows == 5
    assert [p.name for p in tmp_path.iterdir()] == ["post.parquet"]


def test_catalog_schema_has_an_error_beside_every_measurement():
    names = set(io.CATALOG.names)
    for mag in io.GAIA_BANDS:
        assert mag.replace("_mag", "_flux_over_error") in names
    for value, err in zip(io.TMASS_BANDS + io.WISE_BANDS + io.LAMOST_LABELS,
                          io.TMASS_ERRORS + io.WISE_ERRORS + io.LAMOST_ERRORS):
        assert value in names and err in names
        assert io.CATALOG[value].nullable and io.CATALOG[err].nullable
    assert len(io.MEASUREMENT_BITS) <= 31  # fits the int32 survey_mask


def test_posterior_quantiles_are_named_after_truth_columns():
    for p in io.PARAMETERS:
        assert p in io.POPULATION.names
        assert f"{p}_q50" in io.POSTERIOR.names


def test_atomic_files_get_ordinary_permissions(tmp_path):
    import os

    path = tmp_path / "x.json"
    io.write_json({"a": 1}, path)
    mask = os.umask(0)
    os.umask(mask)
    assert (path.stat().st_mode & 0o777) == 0o666 & ~mask


def test_temporary_files_of_dead_processes_are_removed_others_kept(tmp_path):
    import subprocess

    target = tmp_path / "x.parquet"
    dead = subprocess.Popen(["true"])
    dead.wait()
    orphan = tmp_path / f".x.parquet.{io._HOST}-{dead.pid}.abcd1234.part"
    mine = tmp_path / f".x.parquet.{io._HOST}-{os.getpid()}.abcd1234.part"
    elsewhere = tmp_path / f".x.parquet.otherhost-{dead.pid}.abcd1234.part"
    other_file = tmp_path / f".y.parquet.{io._HOST}-{dead.pid}.abcd1234.part"
    for p in (orphan, mine, elsewhere, other_file):
        p.write_text("partial")
    io.write_table(posterior_frame(), target, io.POSTERIOR)   # the next write of x.parquet cleans up after x
    assert not orphan.exists()
    assert mine.exists() and elsewhere.exists() and other_file.exists() and target.exists()

