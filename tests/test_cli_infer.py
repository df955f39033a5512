"""`ysocensus infer`: help, rows in = rows out, validation messages, formats (with a test-double model)."""

import subprocess
import sys

import numpy as np
import pytest

from tests.inference.catalogs import make_catalog, write_catalog
from tests.inference.doubles import GaussianTestSampler
from ysocensus import cli, io
from ysocensus.inference import model_adapter


@pytest.fixture
def double(monkeypatch):
    """Replace the trained model by the TEST DOUBLE sampler (the CLI loads models via load_sampler)."""
    seen = {}

    def load(path, **kw):
        seen.update(path=path, **kw)
        return GaussianTestSampler()

    monkeypatch.setattr(model_adapter, "load_sampler", load)
    return seen


def test_help_documents_infer():
    out = subprocess.run([sys.executable, "-m", "ysocensus.cli", "--help"], capture_output=True, text=True)
    assert "infer" in out.stdout
    out = subprocess.run([sys.executable, "-m", "ysocensus.cli", "infer", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for word in ("--model", "--output", "flux_over_error", "j_msigcom", "w1sigmpro", "ra, dec",
                 "error model", "invalid_input", "prior_only"):
        assert word in out.stdout, word


@pytest.mark.parametrize("fmt", ["parquet", "fits", "csv"])
def test_infer_rows_in_equal_rows_out(tmp_path, double, capsys, fmt):
    frame = make_catalog(321, all_null_rows=4)
    cat = tmp_path / f"cat.{fmt}"
    write_catalog(frame, cat, fmt)
    out = tmp_path / "post.parquet"
    rc = cli.main(["infer", str(cat), "--model", "m.ckpt", "--output", str(out), "--batch-size", "100",
                   "--threads", "2", "--no-progress"])
    assert rc == 0
    post = io.read_table(out, io.POSTERIOR, extra_columns=io.POSITIONS.names).to_pandas()
    np.testing.assert_array_equal(post["source_id"], frame["source_id"])
    assert (post["status"].iloc[-4:] == "prior_only").all()
    assert "321 rows" in capsys.readouterr().out
    assert double["threads"] == 2 and double["device"] == "auto"
    assert double["prior"] is None  # the model's own prior (population by default)


def test_infer_prior_option_reaches_the_loader(tmp_path, double):
    cat = tmp_path / "cat.parquet"
    write_catalog(make_catalog(10), cat, "parquet")
    rc = cli.main(["infer", str(cat), "--model", "m.ckpt", "-o", str(tmp_path / "p.parquet"), "--prior",
                   "simulation", "--no-progress"])
    assert rc == 0 and double["prior"] == "simulation"
    rc = cli.main(["infer", str(cat), "--model", "m.ckpt", "-o", str(tmp_path / "p.parquet"), "--prior",
                   "structure", "--no-progress"])
    assert rc == 0 and double["prior"] == "structure"
    rc = cli.main(["infer", str(cat), "--model", "m.ckpt", "-o", str(tmp_path / "p.parquet"), "--ensemble",
                   "consensus", "--no-progress"])
    assert rc == 0 and double["ensemble"] == "consensus"


def test_infer_missing_required_column_names_it(tmp_path, double, capsys):
    frame = make_catalog(20).drop(columns=["source_id"])
    cat = tmp_path / "cat.csv"
    frame.to_csv(cat, index=False)
    out = tmp_path / "post.parquet"
    assert cli.main(["infer", str(cat), "--model", "m.ckpt", "-o", str(out), "--no-progress"]) == 2
    assert "source_id" in capsys.readouterr().err
    assert not out.exists()


def test_infer_strict_names_column_and_rows(tmp_path, double, capsys):
    frame = make_catalog(50, all_null_rows=0)
    frame.loc[[7, 9], "ks_msigcom"] = -0.5
    cat = tmp_path / "cat.parquet"
    frame.to_parquet(cat)
    out = tmp_path / "post.parquet"
    assert cli.main(["infer", str(cat), "--model", "m.ckpt", "-o", str(out), "--strict", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "ks_msigcom" in err and "[7, 9]" in err
    assert not out.exists()
    # default: flagged, not fatal
    assert cli.main(["infer", str(cat), "--model", "m.ckpt", "-o", str(out), "--no-progress"]) == 0
    post = io.read_table(out, io.POSTERIOR, extra_columns=io.POSITIONS.names).to_pandas()
    assert post["status"].iloc[[7, 9]].eq("invalid_input").all() and len(post) == 50


def test_infer_real_style_catalog_with_ra_dec_and_missing_errors(tmp_path, double, capsys):
    """A Gaia-archive-like CSV: ra/dec, upper-case names, 2MASS without errors, extra columns."""
    frame = make_catalog(80, all_null_rows=0)
    frame = frame.drop(columns=["l", "b", "tile", "survey_mask"] + list(io.TMASS_ERRORS)
                       + list(io.WISE_BANDS + io.WISE_ERRORS + io.LAMOST_LABELS + io.LAMOST_ERRORS))
    frame["ruwe"] = 1.0
    frame.columns = [c.upper() for c in frame.columns]
    cat = tmp_path / "gaia.csv"
    frame.to_csv(cat, index=False)
    out = tmp_path / "post.parquet"
    assert cli.main(["infer", str(cat), "--model", "m.ckpt", "-o", str(out), "--carry", "RUWE",
                     "--no-progress"]) == 0
    printed = capsys.readouterr().out
    # no 2MASS errors: the magnitudes are read without them, nothing is invented; no WISE or LAMOST columns:
    # marginalised, not read as non-detections
    assert "tmass marginalised 30, measured_no_sigma 50" in printed and "wise marginalised 80" in printed
    import pyarrow.parquet as pq
    table = pq.read_table(out)
    assert table.num_rows == 80 and "ruwe" in table.column_names
    cond = table.column("conditioning").to_pylist()
    has_j = frame["J_M"].notna().to_numpy()
    assert all("tmass:measured_no_sigma" in cond[i] and "wise:marginalised" in cond[i] for i in np.flatnonzero(has_j))
    # asked for: uncertainties filled from the survey error models, and the notes say so
    assert cli.main(["infer", str(cat), "--model", "m.ckpt", "-o", str(out), "--fill-errors", "--no-progress"]) == 0
    notes = pq.read_table(out).column("note").to_pylist()
    assert all("j_msigcom" in notes[i] for i in np.flatnonzero(has_j))


def test_infer_gaia_archive_votable_to_fits_for_topcat(tmp_path, double, capsys):
    """VOTable in (the Gaia archive's default download, with its AllWISE join and VizieR-style names) → FITS
    out with units, positions and the P(young) threshold; the column recognition in the log."""
    from astropy.table import Table

    frame = make_catalog(90, all_null_rows=2).drop(columns=["l", "b", "tile", "survey_mask"])
    frame = frame.rename(columns={"source_id": "Source", "parallax": "Plx", "parallax_error": "e_Plx",
                                  "w1sigmpro": "w1mpro_error", "phot_bp_mean_mag": "bp_mag"})
    cat = tmp_path / "1712345-result.vot"
    Table.from_pandas(frame).write(cat, format="votable")
    out = tmp_path / "post.fits"
    rc = cli.main(["infer", str(cat), "--model", "m.ckpt", "-o", str(out), "--batch-size", "40", "--no-progress"])
    assert rc == 0
    err = capsys.readouterr().err
    assert "gaia: parallax (as Plx), parallax_error (as e_Plx)" in err and "w1sigmpro (as w1mpro_error)" in err
    assert "'bp_mag' is ignored, but looks like 'bpmag' (phot_bp_mean_mag)" in err
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = Table.read(out)
    assert len(t) == 90 and list(t["source_id"]) == list(frame["Source"])
    assert t["ra"].unit == "deg" and t["l"].unit == "deg" and t["distance_pc_q50"].unit == "pc"
    assert t.meta["PYNG_MYR"] == 50.0
    # opting out of positions
    assert cli.main(["infer", str(cat), "--model", "m.ckpt", "-o", str(tmp_path / "p.parquet"), "--no-positions",
                     "--no-progress"]) == 0
    assert io.read_table(tmp_path / "p.parquet", io.POSTERIOR).num_rows == 90


def test_infer_bad_model_file_is_one_line_naming_it(tmp_path, capsys):
    cat = tmp_path / "cat.parquet"
    write_catalog(make_catalog(10), cat, "parquet")
    good = tmp_path / "model.ckpt"
    import torch
    torch.save({"format_version": 0}, good)
    whole = good.read_bytes()
    for name, content in (("truncated.ckpt", whole[: len(whole) // 2]), ("notes.ckpt", b"not a model\n"),
                          ("lightning.ckpt", whole)):
        bad = tmp_path / name
        bad.write_bytes(content)
        rc = cli.main(["infer", str(cat), "--model", str(bad), "-o", str(tmp_path / "p.parquet"), "--no-progress"])
        err = capsys.readouterr().err
        assert rc == 2, err
        lines = [line for line in err.splitlines() if "error" in line]
        assert len(lines) == 1 and str(bad) in lines[0] and "Traceback" not in err, err
        assert len(lines[0]) < 400
        assert not (tmp_path / "p.parquet").exists()


@pytest.mark.parametrize("fmt", ["parquet", "fits"])
def test_infer_empty_or_truncated_catalog_names_the_file(tmp_path, double, capsys, fmt):
    cat = tmp_path / f"cat.{fmt}"
    write_catalog(make_catalog(200), cat, fmt)
    whole = cat.read_bytes()
    for content in (b"", whole[: len(whole) // 2]):
        cat.write_bytes(content)
        rc = cli.main(["infer", str(cat), "--model", "m.ckpt", "-o", str(tmp_path / "p.parquet"), "--no-progress"])
        err = capsys.readouterr().err
        assert rc == 2 and str(cat) in err and "Traceback" not in err
        assert [p.name for p in tmp_path.iterdir()] == [cat.name]

