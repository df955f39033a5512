"""The whole workflow on config/test.yaml, run locally the way a user runs it (slow, still in CI)."""

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from tests.conftest import REPO, run_snakemake
from ysocensus import io
from ysocensus.sky import Tiling

pytestmark = pytest.mark.slow
CONFIG = REPO / "config" / "test.yaml"
#: the test preset's own results directory (results/test), never the default's results/
RESULTS = yaml.safe_load(CONFIG.read_text())["results_dir"]
LOGS = yaml.safe_load(CONFIG.read_text())["logs_dir"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("pipeline")
    run_snakemake("--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
                  "--configfile", str(CONFIG), "--cores", "2", cwd=workdir, timeout=1800)
    return workdir


@pytest.fixture(scope="module")
def chunks():
    import yaml

    with open(CONFIG) as fh:
        return Tiling.from_config(yaml.safe_load(fh)["sky"]).chunks


def test_nothing_left_to_do_and_every_rule_logged(run):
    dry = run_snakemake("--snakefile", str(REPO / "Snakefile"), "--directory", str(run),
                        "--configfile", str(CONFIG), "-n", cwd=run)
    assert "Nothing to be done" in dry.stdout + dry.stderr
    assert any((run / LOGS).rglob("*.log"))
    # no temporary files from atomic writes are left anywhere
    assert not list((run / RESULTS).rglob("*.part"))


def test_every_stage_keeps_one_row_per_star(run, chunks):
    for chunk in chunks:
        truth = io.read_table(run / f"{RESULTS}/population/chunk_{chunk}.parquet", io.POPULATION,
                              columns=["source_id"])
        catalog = io.read_table(run / f"{RESULTS}/catalog/chunk_{chunk}.parquet", io.CATALOG,
                                columns=["source_id"])
        assert truth.num_rows > 0
        # every catalog row is a star of the truth table, with a unique id
        ids = catalog.column("source_id").to_numpy()
        assert len(set(ids)) == len(ids)
        assert set(ids) <= set(truth.column("source_id").to_numpy())
        posterior = run / f"{RESULTS}/posteriors/chunk_{chunk}.parquet"
        if posterior.exists():
            post = pq.read_table(posterior, columns=["source_id"])
            assert post.column("source_id").to_pylist() == catalog.column("source_id").to_pylist()


def test_report_shows_every_figure(run):
    """`snakemake --report` (issue 6): one HTML file holding every PNG the workflow made, with its caption."""
    run_snakemake("--snakefile", str(REPO / "Snakefile"), "--directory", str(run), "--configfile", str(CONFIG),
                  "--report", str(run / "report.html"), cwd=run, timeout=600)
    html = (run / "report.html").read_text(errors="ignore")
    figures = sorted((run / RESULTS).rglob("*.png"))
    assert figures
    missing = [p.name for p in figures if p.name not in html]
    assert not missing, f"figures not in the report: {missing}"
    for category in ("Population", "Observed catalog", "Model calibration", "YSO maps", "Census completeness"):
        assert category in html, category
    assert "SMOKE TEST" in html  # the test preset's model is not a usable model, and the report says so


def test_the_smoke_test_says_so_and_stays_in_its_own_directories(run):
    """config/test.yaml (issue 23, point 3): its own results/test/ and logs/test/, nothing in the default's
    places; calibration.json, the maps summaries and every rule's log say it is a smoke test."""
    assert RESULTS != "results" and LOGS != "logs"
    results = Path(RESULTS)
    assert [p.name for p in (run / results.parent).iterdir()] == [results.name]  # nothing in results/ itself
    for name in ("validation/calibration.json", "maps/maps_summary.json", "maps/completeness_summary.json"):
        preset = json.loads((run / RESULTS / name).read_text())["preset"]
        assert preset["name"] == "test" and preset["smoke_test"] is True, name
    logs = sorted((run / LOGS).rglob("*.log"))
    assert logs
    assert not [p.name for p in logs if "SMOKE TEST" not in p.read_text()]


def test_training_set_records_the_catalogs_unresolved_binaries(run, chunks):
    """The companions in the training files (``companion_mass_ratio``) are the ones the observe rule added."""
    import numpy as np
    import yaml

    from ysocensus.model.trainset import COMPANION
    from ysocensus.stars.tracks import IsochroneGrid
    from ysocensus.surveys.observe import companion_mass_ratio, read_population

    with open(CONFIG) as fh:
        cfg = yaml.safe_load(fh)
    iso = IsochroneGrid.load(run / f"{RESULTS}/models/isochrones.npz")
    test = pq.read_table(run / f"{RESULTS}/training/test.parquet", columns=["source_id", COMPANION])
    recorded = dict(zip(test.column("source_id").to_pylist(), test.column(COMPANION).to_pylist()))
    n_checked = 0
    for chunk in chunks:
        pop = read_population(run / f"{RESULTS}/population/chunk_{chunk}.parquet")
        q = companion_mass_ratio(pop, iso, cfg["seed"], cfg.get("observe", {}))
        meta = io.read_metadata(run / f"{RESULTS}/catalog/chunk_{chunk}.parquet")
        assert int((q > 0).sum()) == meta["n_binaries"]
        for sid, qq in zip(pop["source_id"], q):
            if int(sid) in recorded:
                assert recorded[int(sid)] == pytest.approx(float(qq))
                n_checked += 1
    assert n_checked == test.num_rows > 0
    assert 0 < float(np.mean(test.column(COMPANION).to_numpy() > 0)) < 1
    calibration = (run / f"{RESULTS}/validation/calibration.json").read_text()
    assert '"by_companion"' in calibration
