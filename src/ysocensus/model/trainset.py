"""The training set: simulated stars (truth + observed catalog) split into train / val / test.

Source: the workflow's own simulations, ``results/population/chunk_*.parquet`` (truth, with ``weight`` =
1/thinning) joined on ``source_id`` with ``results/catalog/chunk_*.parquet`` (observed). The population
stage already stratifies: young clusters and associations are complete, the young field is thinned
little and the old field a lot, so rare young (and massive) stars are heavily over-represented compared
with the Galaxy. That over-representation is corrected by importance weights: every row carries
``weight`` (the number of real stars it stands for) and the loss uses ``weight ** importance_power``
(1 = exact: posteriors and P(young) calibrated against the unweighted Galactic population).

``repeats`` > 1 re-observes the training stars with independent noise, detections and LAMOST targeting
(``observe_population`` with seeds from the "training" stream), which multiplies the number of
(θ, x) pairs without new truths. ``rare_repeats`` more re-observations keep only the rows whose x is rare
(``rare_observation``: LAMOST measured, G brighter than ``rare_g_mag``, or seen by at most
``rare_max_surveys`` surveys): a stratification on x alone, which changes p(x) but not p(θ | x), so no
weight is needed for it. The population stage's stratification favours young, hence bright, stars, which
the surveys rarely miss; the sparse rows (Gaia alone, WISE alone) are the faint field's, under-represented
in training by about 3x against the Galactic population the posteriors are judged on.

Every row also carries ``companion_mass_ratio``, the mass ratio of the unresolved companion its observation
added (0: single), recomputed from the observe stage's own draws (``surveys.observe.companion_mass_ratio``):
simulation truth for the validation's single / binary split, never a model input.

Split: by a hash of ``source_id`` (a star and all its repeats land in one split). ``test.parquet`` holds
the held-out stars as simulated (original observation only). ``test_population.parquet`` is drawn from it
with probability ∝ ``weight``, each star at most once (``population_sample``: an unweighted sample of the
Galactic population of independent stars), on which calibration is judged without weights.
``calibration.parquet`` holds the validation split's stars with all their observations (``CALIBRATION``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ysocensus import io
from ysocensus.model.tokens import OBSERVABLES, Normalisation

log = logging.getLogger(__name__)

#: truth columns carried into the training files (besides the catalog columns)
TRUTH_COLUMNS = io.PARAMETERS + ("weight", "has_disk", "component")
#: simulation truth drawn by the observe stage: mass ratio of the unresolved companion, 0 for single stars
#: (``surveys.observe.companion_mass_ratio``); validation splits calibration by it
COMPANION = io.COMPANION_MASS_RATIO
EXTRA_COLUMNS = TRUTH_COLUMNS + (COMPANION, "split", "repeat")

#: the validation split's stars with every observation of them (column ``repeat``; the ``rare_repeats`` too, which
#: were kept for what they measured): held-out (θ, x) pairs for the fits made after training
#: (``model.width_recalibration``), which need more stars with rare patterns (a LAMOST spectrum) than one observation
#: per star gives
CALIBRATION = "calibration"

#: Parquet row-group size of the training files (the streaming unit of the data module)
ROW_GROUP_SIZE = 16384


def _split_of(source_id: np.ndarray, seed: int, val: float, test: float) -> np.ndarray:
    h = (source_id.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(seed)) >> np.uint64(11)
    u = h.astype(np.float64) / float(1 << 53)
    return np.where(u < test, 2, np.where(u < test + val, 1, 0)).astype(np.int8)


def _join(truth: pa.Table, pop_path, cat_path) -> pa.Table:
    """The catalog ``cat_path`` joined with its truth rows (read from ``pop_path``)."""
    cat = io.read_table(cat_path, io.CATALOG)
    joined = _inner_join(cat, truth)
    if joined.num_rows != cat.num_rows:
        raise ValueError(f"{cat_path}: {cat.num_rows - joined.num_rows} catalog rows have no truth row in {pop_path}")
    return joined


def _inner_join(left: pa.Table, right: pa.Table) -> pa.Table:
    """Join on ``source_id`` in ``source_id`` order: Arrow's hash join does not promise an output order (it
    changed with the tables' column layout), and the split's shuffle and the test_population draw follow it."""
    return left.join(right, "source_id", join_type="inner").sort_by("source_id")


def run_training_set(population: Sequence[str], catalog: Sequence[str], outdir, seed: int,
                       cfg: Mapping | None = None, observe_cfg: Mapping | None = None,
                       bc_path=None, isochrones_path=None) -> dict:
    """Write ``train/val/test/test_population/calibration.parquet``, ``normalisation.json`` and ``summary.json``."""
    from ysocensus.model.config import DEFAULTS

    c = {**DEFAULTS["training"], **(cfg or {})}
    outdir = Path(outdir)
    pop_paths, cat_paths = sorted(map(str, population)), sorted(map(str, catalog))
    if c["rare_repeats"] and c["repeats"] < 1:
        raise ValueError("training.rare_repeats needs training.repeats >= 1")
    if len(pop_paths) != len(cat_paths):
        raise ValueError(f"training_set: {len(pop_paths)} population files but {len(cat_paths)} catalogs")
    from ysocensus.surveys.observe import companion_mass_ratio, read_population

    tables = []
    observer = None
    iso = _isochrones(isochrones_path)
    for k, (pp, cp) in enumerate(zip(pop_paths, cat_paths)):
        pop = read_population(pp)
        truth = io.read_table(pp, io.POPULATION, columns=["source_id"] + list(TRUTH_COLUMNS))  # rows as in pop
        # the catalog was observed with the workflow seed (rule observe): the same companions
        q = companion_mass_ratio(pop, iso, seed, observe_cfg)
        t = _join(truth.append_column(COMPANION, pa.array(q)), pp, cp)
        t = t.append_column("repeat", pa.array(np.zeros(t.num_rows, np.int16)))
        tables.append(t)
        if c["repeats"] > 1:
            observer = observer or _observer(bc_path, iso, observe_cfg)
            n_rep = int(c["repeats"])
            for r in range(1, n_rep + int(c["rare_repeats"])):
                rs = int(np.random.SeedSequence([seed, 3, k, r]).generate_state(1)[0])
                cols, _ = observer(pop, rs)
                cols[COMPANION] = companion_mass_ratio(pop, iso, rs, observe_cfg)
                if r >= n_rep:  # a re-observation kept only where its own x is rare (p(θ | x) unchanged)
                    keep = rare_observation(cols, float(c["rare_g_mag"]), int(c["rare_max_surveys"]))
                    cols = {name: np.asarray(v)[keep] for name, v in cols.items()}
                tab = io.to_table(cols, io.CATALOG, f"{pp} (training repeat {r})", extra_columns=(COMPANION,))
                tab = _inner_join(tab, truth)
                tables.append(tab.append_column("repeat", pa.array(np.full(tab.num_rows, r, np.int16))))
    table = pa.concat_tables([t.select(tables[0].column_names) for t in tables])
    sid = table.column("source_id").to_numpy()
    split = _split_of(sid, seed, c["val_fraction"], c["test_fraction"])
    table = table.append_column("split", pa.array(split))
    detected = table.column("survey_mask").to_numpy() > 0
    if c["drop_undetected"]:
        table = table.filter(pa.array(detected))
        detected = detected[detected]
    shuffle_rng = np.random.default_rng(np.random.SeedSequence([seed, 3, 999]))
    summary = {"rows": table.num_rows, "repeats": int(c["repeats"]), "files": {}}
    sp = table.column("split").to_numpy()
    rep = table.column("repeat").to_numpy()
    for name, mask in (("train", sp == 0), ("val", (sp == 1) & (rep == 0)), ("test", (sp == 2) & (rep == 0)),
                       (CALIBRATION, sp == 1)):
        sub = table.filter(pa.array(mask))
        if name == "train":  # shuffle once so that row groups are mixed
            sub = sub.take(pa.array(shuffle_rng.permutation(sub.num_rows)))
        _write(sub, outdir / f"{name}.parquet", ROW_GROUP_SIZE)
        summary["files"][name] = _describe(sub)
    # an unweighted sample of the Galactic population, with its own stream so that the test stars do not
    # change with the training set's size (repeats, rare_* options)
    test_rng = np.random.default_rng(np.random.SeedSequence([seed, 3, 998]))
    test = table.filter(pa.array((sp == 2) & (rep == 0) & detected))
    tp = test.take(pa.array(population_sample(test.column("weight").to_numpy(), int(c["test_population_size"]),
                                              test_rng)))
    _write(tp, outdir / "test_population.parquet", ROW_GROUP_SIZE)
    summary["files"]["test_population"] = _describe(tp)
    train = pq.read_table(outdir / "train.parquet")
    stats = Normalisation.fit(train, None)
    stats.bp_max_mag = None if c["bp_max_mag"] is None else float(c["bp_max_mag"])
    stats.save(outdir / "normalisation.json")
    io.write_json(summary, outdir / "summary.json")
    log.info("training set in %s: %s", outdir, {k: v["rows"] for k, v in summary["files"].items()})
    return summary


def check_bp_rule(stats, cfg: Mapping, where) -> None:
    """The training set's BP rule (its normalisation's ``bp_max_mag``) is the one the config trains with
    (``train.training.bp_max_mag``): the network learns, and the checkpoint carries, the set's rule."""
    want = cfg["training"]["bp_max_mag"]
    if (None if want is None else float(want)) != stats.bp_max_mag:
        raise ValueError(f"{where}: the training set drops G_BP fainter than {stats.bp_max_mag} mag, the config "
                         f"asks for train.training.bp_max_mag = {want}; rebuild the training set (rule training_set)")


def population_sample(weight: np.ndarray, n_max: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted row indices of an unweighted sample of the population the rows stand for, each row at most once.

    Poisson sampling with inclusion probability ∝ ``weight`` (the number of real stars a row stands for):
    π = weight / max(weight), the largest such sample without repeats, then thinned at random to at most
    ``n_max`` rows. Drawing with replacement instead repeats the heavy (old field) rows, about twice each
    at the laptop default, which halves the independent stars behind every coverage and makes the
    noise floor, computed for independent stars, too optimistic.
    """
    w = np.asarray(weight, np.float64)
    if not len(w) or n_max <= 0 or not (w.max() > 0):
        return np.zeros(0, np.int64)
    keep = np.flatnonzero(rng.random(len(w)) < w / w.max())
    if len(keep) > n_max:
        keep = np.sort(rng.choice(keep, size=n_max, replace=False))
    return keep


def rare_observation(cols, g_mag: float, max_surveys: int = 0) -> np.ndarray:
    """Rows whose observation is rare in the training set: any LAMOST label measured, Gaia G brighter than
    ``g_mag``, or measured by at least one and at most ``max_surveys`` of io.SURVEYS (0: not this
    criterion). The choice depends on x only, so adding such rows leaves p(θ | x) as it is (only p(x)
    changes): a free stratification of the training set towards spectroscopic, bright (massive) and
    sparsely observed stars."""
    seen = surveys_measured(cols)
    g = np.asarray(cols["phot_g_mean_mag"], np.float64)
    with np.errstate(invalid="ignore"):
        rare = seen[:, io.SURVEYS.index("lamost")] | (g < g_mag)
    count = seen.sum(1)
    return rare | ((count >= 1) & (count <= max_surveys))


def surveys_measured(cols) -> np.ndarray:
    """[n, len(io.SURVEYS)] bool: which surveys measured any of their model inputs (``tokens.OBSERVABLES``) in
    catalog columns ``cols``; ``tokens.survey_flags`` is the same from tokenised arrays."""
    n = len(np.asarray(cols["source_id"]))
    out = np.zeros((n, len(io.SURVEYS)), bool)
    for v in OBSERVABLES:
        out[:, io.SURVEYS.index(v.survey)] |= np.isfinite(np.asarray(cols[v.name], np.float64))
    return out


def _isochrones(path):
    if path is None:
        return None
    from ysocensus.stars.tracks import IsochroneGrid

    return IsochroneGrid.load(path)


def _observer(bc_path, iso, observe_cfg=None):
    from ysocensus.stars.bolometric import load_bc_grid
    from ysocensus.surveys.observe import observe_population

    bc = load_bc_grid(bc_path)

    def run(pop, rs):
        return observe_population(pop, bc, iso, rs, observe_cfg)

    return run


def _write(table: pa.Table, path: Path, row_group_size: int) -> None:
    with io.atomic_path(path) as tmp:
        pq.write_table(table, tmp, row_group_size=row_group_size, compression="zstd")


def _describe(t: pa.Table) -> dict:
    if t.num_rows == 0:
        return {"rows": 0}
    age = t.column("log10_age_yr").to_numpy()
    w = t.column("weight").to_numpy().astype(float)
    ess = float(w.sum() ** 2 / (w ** 2).sum())
    return {"rows": t.num_rows, "young_lt_50myr": int((age < io.log10_age_threshold(io.YOUNG_THRESHOLD_MYR)).sum()),
            "detected": int(pc.sum(pc.greater(t.column("survey_mask"), 0)).as_py() or 0),
            "weight_sum": float(w.sum()), "effective_sample_size": ess}


def read_split(path, columns: Sequence[str] | None = None) -> pa.Table:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no training split (run the training_set rule)")
    return pq.read_table(path, columns=list(columns) if columns else None)
