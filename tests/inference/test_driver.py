"""The streaming driver: one row out per row in, statuses, determinism, formats, atomicity, memory."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.conftest import REPO
from tests.inference.catalogs import make_catalog, write_catalog
from tests.inference.doubles import GaussianTestSampler
from ysocensus import io
from ysocensus.inference import InferOptions, infer_catalog, read_report


def _run(tmp_path, frame, fmt="parquet", name="post", **opts):
    cat = tmp_path / f"{name}_cat.{fmt}"
    write_catalog(frame, cat, fmt)
    out = tmp_path / f"{name}.parquet"
    sampler = GaussianTestSampler()
    report = infer_catalog(cat, out, sampler, InferOptions(**{"batch_size": 100, **opts}))
    return io.read_table(out, io.POSTERIOR).to_pandas(), report, sampler


def test_rows_in_equal_rows_out_including_all_null_rows(tmp_path):
    frame = make_catalog(437, all_null_rows=5)
    post, report, sampler = _run(tmp_path, frame)
    assert len(post) == len(frame) == report.rows
    np.testing.assert_array_equal(post["source_id"], frame["source_id"])
    assert (post["status"].iloc[-5:] == "prior_only").all()
    assert (post["note"].iloc[-5:] == "nothing observed").all()
    assert (post["status"].iloc[:-5] == "ok").all()
    assert (post["n_samples"] == 64).all()
    assert post["log10_age_yr_q50"].notna().all()
    assert report.status == {"ok": 432, "prior_only": 5}
    assert sampler.calls == 5  # streamed in batches of 100
    q = post[[f"av_mag_q{q}" for q in io.QUANTILES]].to_numpy()
    assert np.all(np.diff(q, axis=1) >= 0)


def test_invalid_rows_keep_their_row_with_status_and_note(tmp_path):
    frame = make_catalog(120, all_null_rows=0)
    frame.loc[10, "parallax_error"] = -1.0
    frame.loc[50, "l"] = np.nan
    frame.loc[50, "ra"] = np.nan
    post, report, _ = _run(tmp_path, frame)
    assert len(post) == 120
    bad = post.iloc[[10, 50]]
    assert (bad["status"] == "invalid_input").all()
    assert (bad["n_samples"] == 0).all() and bad["log10_age_yr_q50"].isna().all()
    assert "parallax_error" in bad["note"].iloc[0] and "no position" in bad["note"].iloc[1]
    assert report.status["invalid_input"] == 2


def test_shuffled_column_order_gives_identical_results(tmp_path):
    frame = make_catalog(250)
    a, _, _ = _run(tmp_path, frame, name="a")
    cols = list(frame.columns)
    np.random.default_rng(3).shuffle(cols)
    b, _, _ = _run(tmp_path, frame[cols], fmt="csv", name="b")
    c, _, _ = _run(tmp_path, frame[cols], name="c")
    for other in (b, c):
        np.testing.assert_array_equal(a["status"], other["status"])
        num = [x for x in a.columns if x not in ("status", "note", "conditioning")]
        np.testing.assert_allclose(a[num].to_numpy(float), other[num].to_numpy(float), rtol=1e-6, equal_nan=True)


@pytest.mark.parametrize("fmt", ["csv", "fits"])
def test_fits_and_csv_inputs_give_the_parquet_result(tmp_path, fmt):
    frame = make_catalog(180)
    ref, _, _ = _run(tmp_path, frame, name="ref")
    got, _, _ = _run(tmp_path, frame, fmt=fmt, name=fmt)
    num = [x for x in ref.columns if x not in ("status", "note", "conditioning")]
    np.testing.assert_allclose(ref[num].to_numpy(float), got[num].to_numpy(float), rtol=1e-6, equal_nan=True)
    np.testing.assert_array_equal(ref["status"], got["status"])


def test_catalog_without_an_optional_survey_runs(tmp_path):
    frame = make_catalog(150).drop(columns=list(io.WISE_BANDS + io.WISE_ERRORS + io.LAMOST_LABELS
                                                + io.LAMOST_ERRORS) + ["survey_mask", "tile"])
    post, report, _ = _run(tmp_path, frame)
    assert len(post) == 150 and report.status.get("ok", 0) > 0


def test_missing_required_column_fails_naming_it_and_writes_nothing(tmp_path):
    frame = make_catalog(30).drop(columns=["source_id"])
    cat = tmp_path / "c.parquet"
    frame.to_parquet(cat)
    out = tmp_path / "post.parquet"
    with pytest.raises(ValueError, match="source_id"):
        infer_catalog(cat, out, GaussianTestSampler())
    assert not out.exists()


class _Boom(GaussianTestSampler):
    def sample(self, batch, n_samples, seed):
        if self.calls >= 2:
            raise RuntimeError("boom")
        return super().sample(batch, n_samples, seed)


def test_failure_mid_run_leaves_no_partial_output(tmp_path):
    cat = tmp_path / "c.parquet"
    write_catalog(make_catalog(500), cat)
    out = tmp_path / "post.parquet"
    with pytest.raises(RuntimeError, match="boom"):
        infer_catalog(cat, out, _Boom(), InferOptions(batch_size=100, save_samples=True))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.parquet"]


def _slow_run_in_a_subprocess(cat, out, batch_size: int) -> subprocess.Popen:
    """``infer_catalog`` with a slow sampler in a child process, returned once a few batches are written to the
    temporary files (raw samples too)."""
    code = textwrap.dedent(f"""
        import signal, sys
        # Ctrl-C as at a terminal: a child of a non-interactive shell's background job inherits SIGINT
        # ignored (POSIX), and Python then keeps it ignored
        signal.signal(signal.SIGINT, signal.default_int_handler)
        sys.path.insert(0, {str(REPO)!r})
        from tests.inference.doubles import GaussianTestSampler
        from ysocensus.inference import InferOptions, infer_catalog
        print("started", flush=True)
        infer_catalog({str(cat)!r}, {str(out)!r}, GaussianTestSampler(delay_s=0.3),
                      InferOptions(batch_size={batch_size}, save_samples=True))
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "started"
    time.sleep(1.5)  # a few batches written to the temporary files
    return proc


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_interrupting_a_run_leaves_no_partial_output(tmp_path, sig):
    cat = tmp_path / "c.parquet"
    write_catalog(make_catalog(2000), cat)
    proc = _slow_run_in_a_subprocess(cat, tmp_path / "post.parquet", batch_size=100)
    os.kill(proc.pid, sig)
    proc.wait(timeout=30)
    assert proc.returncode != 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.parquet"]


def test_empty_catalog_gives_empty_output_with_schema(tmp_path):
    frame = make_catalog(5, all_null_rows=0).iloc[:0]
    post, report, _ = _run(tmp_path, frame)
    assert len(post) == 0 and report.rows == 0
    assert list(post.columns) == io.POSTERIOR.names


def test_raw_samples_side_file(tmp_path):
    frame = make_catalog(230)
    frame.loc[4, "j_msigcom"] = 0.0
    cat = tmp_path / "c.parquet"
    write_catalog(frame, cat)
    out = tmp_path / "post.parquet"
    infer_catalog(cat, out, GaussianTestSampler(), InferOptions(batch_size=100, n_samples=16, save_samples=True))
    samples = pq.read_table(tmp_path / "post_samples.parquet")
    post = io.read_table(out, io.POSTERIOR).to_pandas()
    assert samples.num_rows == 230
    np.testing.assert_array_equal(samples.column("source_id").to_numpy(), post["source_id"])
    age = samples.column("log10_age_yr")
    assert age.null_count == 1 and age[4].as_py() is None
    a0 = np.asarray(age[0].as_py())
    assert a0.shape == (16,)
    np.testing.assert_allclose(np.percentile(a0, 50), post["log10_age_yr_q50"][0], rtol=1e-5)
    np.testing.assert_allclose((a0 < np.log10(50e6)).mean(), post["p_young"][0], rtol=1e-6)


def test_carry_columns_and_metadata(tmp_path):
    frame = make_catalog(50)
    frame["my_name"] = [f"star{i}" for i in range(50)]
    cat = tmp_path / "c.parquet"
    frame.to_parquet(cat)
    out = tmp_path / "post.parquet"
    infer_catalog(cat, out, GaussianTestSampler(), InferOptions(carry=("my_name",), second_threshold_myr=None,
                                                                young_threshold_myr=20.0))
    table = pq.read_table(out)
    assert table.column("my_name").to_pylist()[:2] == ["star0", "star1"]
    assert table.column("p_young_2").null_count == 50
    meta = io.read_metadata(out)
    assert meta["young_threshold_myr"] == 20.0
    assert meta["young_threshold_log10_age_yr"] == pytest.approx(np.log10(20e6))
    assert meta["sampler"]["name"].startswith("GaussianTestSampler")
    assert read_report(out)["rows"] == 50


def test_same_seed_same_result_different_seed_differs(tmp_path):
    frame = make_catalog(60)
    a, _, _ = _run(tmp_path, frame, name="a", seed=1)
    b, _, _ = _run(tmp_path, frame, name="b", seed=1)
    c, _, _ = _run(tmp_path, frame, name="c", seed=2)
    np.testing.assert_array_equal(a["log10_age_yr_q50"], b["log10_age_yr_q50"])
    assert not np.allclose(a["log10_age_yr_q50"], c["log10_age_yr_q50"])


def test_identical_runs_write_identical_bytes(tmp_path):
    """Run timings stay in the log: the same inputs and seed give the same file, byte for byte."""
    frame = make_catalog(60)
    cat = tmp_path / "cat.parquet"
    write_catalog(frame, cat)
    outs = []
    for k in range(2):
        out = tmp_path / f"run{k}" / "post.parquet"
        out.parent.mkdir()
        report = infer_catalog(cat, out, GaussianTestSampler(), InferOptions(batch_size=25, seed=4))
        assert report.seconds > 0
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    assert "seconds" not in read_report(out)


def test_the_log_says_progress_and_the_expected_time_after_the_first_batch(tmp_path, caplog):
    import logging

    frame = make_catalog(120)
    with caplog.at_level(logging.INFO, logger="ysocensus.inference.driver"):
        _run(tmp_path, frame, batch_size=40)
    lines = [r.getMessage() for r in caplog.records if "stars/s, about" in r.getMessage()]
    assert lines and "40 of 120 rows (33 %)" in lines[0] and "left" in lines[0]


def test_unobserved_rows_can_skip_sampling(tmp_path):
    frame = make_catalog(120, all_null_rows=7)
    post, report, sampler = _run(tmp_path, frame, sample_unobserved=False)
    tail = post.iloc[-7:]
    assert (tail["status"] == "prior_only").all() and (tail["n_samples"] == 0).all()
    assert tail["log10_age_yr_q50"].isna().all() and post["log10_age_yr_q50"].iloc[:-7].notna().all()
    assert report.status == {"ok": 113, "prior_only": 7}


def test_positions_are_written_on_request_after_the_posterior_columns(tmp_path):
    frame = make_catalog(50).drop(columns=["l", "b"])
    cat = tmp_path / "c.parquet"
    frame.to_parquet(cat)
    out = tmp_path / "post.parquet"
    infer_catalog(cat, out, GaussianTestSampler(), InferOptions(positions=True, carry=("ra", "tile")))
    table = io.read_table(out, io.POSTERIOR, extra_columns=io.POSITIONS.names + ["tile"])
    assert table.column_names == io.POSTERIOR.names + io.POSITIONS.names + ["tile"]
    assert table.schema.field("l").metadata[b"unit"] == b"deg"
    np.testing.assert_allclose(table.column("ra").to_numpy(), frame["ra"])
    np.testing.assert_allclose(table.column("b").to_numpy(), make_catalog(50)["b"], atol=1e-8)
    # off (the workflow's chunk files): the posterior schema alone
    infer_catalog(cat, out, GaussianTestSampler(), InferOptions())
    assert pq.read_schema(out).names == io.POSTERIOR.names


def test_repeated_source_ids_are_noted_across_batches_and_no_row_is_dropped(tmp_path):
    frame = make_catalog(120, all_null_rows=0)
    frame.loc[110, "source_id"] = frame.loc[3, "source_id"]
    post, report, _ = _run(tmp_path, frame)
    assert len(post) == 120 and report.status == {"ok": 120}
    assert "repeats an earlier row" in post["note"][110] and pd.isna(post["note"][3])


def test_the_recognition_summary_is_stored_in_the_metadata(tmp_path):
    frame = make_catalog(30).rename(columns={"parallax": "Plx", "phot_g_mean_mag": "g_mag"})
    cat = tmp_path / "c.parquet"
    frame.to_parquet(cat)
    out = tmp_path / "post.parquet"
    infer_catalog(cat, out, GaussianTestSampler())
    columns = io.read_metadata(out)["columns"]
    assert columns["read"]["parallax"] == "Plx" and "g_mag" in columns["ignored"]
    assert columns["near_misses"]["g_mag"]["column"] == "phot_g_mean_mag"


def test_a_killed_runs_temporary_files_are_removed_by_the_next_run(tmp_path):
    cat = tmp_path / "c.parquet"
    write_catalog(make_catalog(500), cat)
    out = tmp_path / "post.fits"
    proc = _slow_run_in_a_subprocess(cat, out, batch_size=50)
    proc.kill()  # kill -9: no cleanup code runs
    proc.wait(timeout=30)
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".part"))
    assert left and all(p.startswith((".post.fits.", ".post_samples.parquet.")) for p in left)
    infer_catalog(cat, out, GaussianTestSampler(), InferOptions(batch_size=100, save_samples=True))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.parquet", "post.fits", "post_samples.parquet"]


class _FaintBPSampler(GaussianTestSampler):
    bp_max_mag = 20.3  # the model's faint-BP rule, as ModelSampler reports it


def test_rows_whose_faint_bp_the_model_does_not_read_are_counted_and_noted(tmp_path):
    """The driver passes the sampler's rule to the catalog step: the rows get the note, the report the count
    (across batches), and nothing else changes; a sampler without the rule counts none."""
    frame = make_catalog(250, all_null_rows=0)
    frame["phot_bp_mean_mag"] = np.linspace(18.0, 22.0, 250)
    faint = frame["phot_bp_mean_mag"].to_numpy() > 20.3
    cat = tmp_path / "cat.parquet"
    write_catalog(frame, cat, "parquet")
    report = infer_catalog(cat, tmp_path / "post.parquet", _FaintBPSampler(), InferOptions(batch_size=100))
    post = io.read_table(tmp_path / "post.parquet", io.POSTERIOR).to_pandas()
    assert report.unread_bp == faint.sum() > 0
    assert post["note"][faint].str.contains("phot_bp_mean_mag fainter than 20.3").all()
    assert not post["note"][~faint].fillna("").str.contains("fainter").any()
    _, plain, _ = _run(tmp_path, frame, name="plain")
    assert plain.unread_bp == 0
