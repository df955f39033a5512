"""The streaming inference driver: catalog file → posterior summaries, one row out per row in.

Memory is bounded by ``batch_size`` (rows read, validated, sampled, summarised and written at a time), so
any tile or catalog size works. The output is written atomically (temporary file renamed at the end): an
interrupted run (exception, Ctrl-C, SIGTERM from Snakemake or SLURM) leaves no partial file behind, and the
hidden temporary files of a run killed outright (``kill -9``) are removed by the next write of the same file
(``io.remove_orphans``). The output's format is the one its name says (``inference.formats``).

Status of each row (``io.POSTERIOR_STATUS``): ``invalid_input`` when validation flagged it (``note`` says
why; no samples drawn), ``prior_only`` when nothing usable was observed (the samples are the model's prior
given l, b; with ``sample_unobserved=False`` such rows are not sampled at all: null quantiles, n_samples 0),
otherwise the sampler's status (``ok``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ysocensus import io, sky
from ysocensus.inference import formats, summaries
from ysocensus.inference.catalog import CatalogReader, SeenIds, prepare
from ysocensus.inference.protocol import PosteriorSampler
from ysocensus.logs import duration

log = logging.getLogger(__name__)


@dataclass
class InferOptions:
    """Options of one inference run (config section ``infer``, see config/README.md)."""

    n_samples: int = 64
    batch_size: int = 4096
    young_threshold_myr: float = 50.0
    second_threshold_myr: float | None = 10.0
    save_samples: bool = False
    seed: int = 0
    stream: int = 0
    on_invalid: str = "flag"
    fill_errors: bool = False
    searched: tuple[str, ...] = ()
    #: the Gaia data release of rows without a ``gaia_release`` column value (``catalog.prepare``)
    gaia_release: str = "DR3"
    min_ess: float = 10.0
    sample_unobserved: bool = True
    carry: tuple[str, ...] = ()
    progress: bool = False
    #: write ra, dec, l, b (io.POSITIONS) beside the posterior; ``ysocensus infer`` does unless --no-positions,
    #: the workflow's chunk files do not (they join their catalog chunk by source_id)
    positions: bool = False

    @classmethod
    def from_config(cls, section: Mapping, seed: int = 0, **over) -> "InferOptions":
        """From the validated ``infer`` config section (unknown keys such as resources are skipped)."""
        names = set(cls.__dataclass_fields__)
        kw = {k: v for k, v in dict(section).items() if k in names}
        kw.update(over)
        if "searched" in kw:
            kw["searched"] = tuple(kw["searched"])
        return cls(seed=seed, **kw)


@dataclass
class InferReport:
    """What a run did: rows, status counts, filled uncertainties, timing."""

    rows: int = 0
    status: dict = field(default_factory=dict)
    filled_errors: dict = field(default_factory=dict)
    conditioning: dict = field(default_factory=dict)  # survey -> rule -> rows (inference.catalog.SURVEY_RULES)
    unread_bp: int = 0  # rows whose faint G_BP the model does not read (surveys.gaia.unreliable_bp)
    seconds: float = 0.0

    @property
    def stars_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("nan")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["stars_per_s"] = self.stars_per_s
        return d


@contextlib.contextmanager
def _terminate_as_exception():
    """Turn SIGTERM into SystemExit while the block runs, so atomic writes clean up after themselves."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


#: report keys that depend on the machine and its load (logged, never written into the data file)
TIMING_KEYS = ("seconds", "stars_per_s")


def _samples_schema(n_samples: int) -> pa.Schema:
    fields = [pa.field("source_id", pa.int64(), nullable=False)]
    for p in io.PARAMETERS:
        fields.append(pa.field(p, pa.list_(pa.float32(), n_samples), nullable=True,
                               metadata={"unit": io.POPULATION[p].unit}))
    return pa.schema(fields, metadata={"ysocensus.schema": "posterior_samples"})


def _summary_columns(prepared, result, todo, opts) -> dict[str, np.ndarray]:
    n = prepared.n
    young = io.log10_age_threshold(opts.young_threshold_myr)
    second = (io.log10_age_threshold(opts.second_threshold_myr)
              if opts.second_threshold_myr is not None else None)
    cols: dict[str, np.ndarray] = {}
    status = np.full(n, "invalid_input", dtype=object)
    n_samples = np.zeros(n, np.int32)
    result_samples = None if result is None else result.samples
    result_status = None if result is None else result.status
    summ = (summaries.summarise(result_samples, young, second, result.proposals, result.log_weights)
            if result is not None else None)
    ess = np.full(n, np.nan, np.float32)
    if result is not None and result.ess is not None:
        ess[todo] = result.ess
    for name in [f"{p}_q{q}" for p in io.PARAMETERS for q in io.QUANTILES] + ["p_young", "p_young_2"]:
        col = np.full(n, np.nan, np.float32)
        if summ is not None:
            col[todo] = summ[name]
        cols[name] = col
    if result_samples is not None:
        st = np.asarray(result_status, dtype=object)
        st = np.where((st == "ok") & (ess[todo] < opts.min_ess), "low_ess", st)
        st = np.where(prepared.observed[todo], st, "prior_only")
        status[todo] = st
        n_samples[todo] = np.where(st == "invalid_input", 0, result_samples.shape[1])
    # rows not sampled although valid: nothing observed and opts.sample_unobserved off
    status[~prepared.invalid & ~todo] = "prior_only"
    cols["source_id"] = prepared.columns["source_id"]
    cols["status"] = status
    cols["n_samples"] = n_samples
    cols["ess"] = ess
    cols["conditioning"] = prepared.conditioning
    cols["note"] = prepared.note_column()
    return cols


def _file_params(opts: InferOptions) -> list[formats.Param]:
    """The P(young) thresholds where a reader of each format looks first (FITS header, VOTable PARAM, ...):
    p_young means nothing without them."""
    second = None if opts.second_threshold_myr is None else float(opts.second_threshold_myr)
    return [formats.Param("young_threshold_myr", float(opts.young_threshold_myr), "Myr",
                          "p_young = P(age < this)", "PYNG_MYR"),
            formats.Param("second_threshold_myr", second, "Myr", "p_young_2 = P(age < this)", "PYNG2MYR")]


def _file_schema(schema: pa.Schema, meta: Mapping, opts: InferOptions) -> pa.Schema:
    """The output's schema: p_young / p_young_2 described with this run's thresholds, the run's metadata."""
    second = opts.second_threshold_myr
    described = {
        "p_young": f"posterior probability that the age is below {opts.young_threshold_myr:g} Myr",
        "p_young_2": (f"posterior probability that the age is below {second:g} Myr" if second is not None
                      else "posterior probability below a second age threshold: none configured (null)"),
    }
    fields = [f.with_metadata({**(f.metadata or {}), b"description": described[f.name].encode()})
              if f.name in described else f for f in schema]
    kv = {**(schema.metadata or {}), b"ysocensus.schema": b"posterior",
          b"ysocensus.meta": json.dumps(meta, sort_keys=True, default=formats.json_default).encode()}
    kv.update({f"ysocensus.{p.name}".encode(): json.dumps(p.value).encode() for p in _file_params(opts)})
    return pa.schema(fields, metadata=kv)


def _position_columns(table: pa.Table, prepared) -> pa.Table:
    """``table`` with the io.POSITIONS columns of ``prepared`` appended (NaN = no position → null)."""
    for f in io.POSITIONS.arrow():
        values = prepared.positions[f.name]
        table = table.append_column(f, pa.array(values, f.type, mask=np.isnan(values)))
    return table


def infer_catalog(catalog: str | Path, output: str | Path, sampler: PosteriorSampler,
                  opts: InferOptions | None = None, samples_output: str | Path | None = None,
                  metadata: Mapping | None = None) -> InferReport:
    """Run ``sampler`` over every row of ``catalog`` and write ``output``: the POSTERIOR columns, then the
    positions (``opts.positions``, io.POSITIONS) and the carried columns, in the format the output's name
    says (``inference.formats``: Parquet, FITS, VOTable, ECSV, CSV; other formats are written from a Parquet
    staging file at the end, so memory stays bounded while sampling).

    The catalog's column recognition is logged (what was read for which survey, what was ignored, near
    misses as warnings) and stored in the metadata (``columns``). With ``opts.save_samples`` the raw samples
    go to ``samples_output`` (default: ``output`` with ``_samples.parquet`` for its suffix; always Parquet):
    ``source_id`` and one fixed-size list of ``n_samples`` float32 per parameter (null for rows without
    samples). Returns an :class:`InferReport`.
    """
    opts = opts or InferOptions()
    output = Path(output)
    fmt = formats.file_format(output, output=True)
    if opts.save_samples:
        samples_output = Path(samples_output if samples_output is not None
                              else output.with_name(output.stem + "_samples.parquet"))
        if formats.file_format(samples_output, output=True) != "parquet":
            raise ValueError(f"{samples_output}: the raw samples are written as Parquet (a fixed-size list per "
                             "parameter); name the file .parquet")
    carry = tuple(c for c in opts.carry if not (opts.positions and c.lower() in io.POSITIONS.names))
    reader = CatalogReader(catalog, opts.batch_size, carry)
    try:
        reader.check_structure()
    except Exception:
        reader.close()
        raise
    for line in reader.recognition.summary(str(catalog)):
        log.info("%s", line)
    for line in reader.recognition.warnings(str(catalog)):
        log.warning("%s", line)
    report = InferReport()
    meta = {
        "input": str(catalog), "n_samples": opts.n_samples,
        "young_threshold_myr": opts.young_threshold_myr,
        "young_threshold_log10_age_yr": io.log10_age_threshold(opts.young_threshold_myr),
        "second_threshold_myr": opts.second_threshold_myr,
        "second_threshold_log10_age_yr": (io.log10_age_threshold(opts.second_threshold_myr)
                                          if opts.second_threshold_myr is not None else None),
        # not the batch size: a star's posterior does not depend on it, so neither do the file's bytes
        "seed": opts.seed, "stream": opts.stream, "on_invalid": opts.on_invalid, "sampler": sampler.describe(),
        "samples_file": str(samples_output) if opts.save_samples else None,
        "columns": reader.recognition.to_dict(), "positions": bool(opts.positions),
    }
    meta.update(metadata or {})
    progress = None
    if opts.progress:
        from tqdm import tqdm
        progress = tqdm(total=reader.num_rows, unit="star", desc="infer", dynamic_ncols=True)
    t0 = time.perf_counter()
    last_log = None
    seen = SeenIds()
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(_terminate_as_exception())
            final = stack.enter_context(io.atomic_path(output))
            # Parquet is streamed into its temporary file; other formats from a Parquet staging file at the end
            tmp_out = final if fmt == "parquet" else stack.enter_context(io.scratch_path(output))
            tmp_samples = (stack.enter_context(io.atomic_path(samples_output)) if opts.save_samples else None)
            writer = samples_writer = None
            offset = 0
            for i, table in enumerate(reader):
                prepared = prepare(table, str(catalog), offset, opts.on_invalid, opts.fill_errors, reader.carry,
                                   opts.searched, labels=reader.labels, seen=seen, gaia_release=opts.gaia_release,
                                   bp_max_mag=getattr(sampler, "bp_max_mag", None))
                todo = ~prepared.invalid
                if not opts.sample_unobserved:
                    todo &= prepared.observed
                result = None
                if todo.any():
                    batch = {k: v[todo] for k, v in prepared.columns.items()}
                    seed = np.random.SeedSequence(int(opts.seed), spawn_key=(sky.STAGES["infer"], int(opts.stream)))
                    result = sampler.sample(batch, opts.n_samples, seed)
                    if len(result.status) != int(todo.sum()):
                        raise RuntimeError(f"sampler returned {len(result.status)} rows for {int(todo.sum())}")
                cols = _summary_columns(prepared, result, todo, opts)
                out = io.to_table(cols, io.POSTERIOR, str(output))
                if opts.positions:
                    out = _position_columns(out, prepared)
                for name, arr in prepared.carry.items():
                    out = out.append_column(name, arr)
                if writer is None:
                    writer = stack.enter_context(RowGroupWriter(tmp_out, _file_schema(out.schema, meta, opts)))
                writer.write_table(out.cast(writer.schema))
                if tmp_samples is not None:
                    if samples_writer is None:
                        samples_writer = stack.enter_context(
                            RowGroupWriter(tmp_samples, _samples_schema(opts.n_samples)))
                    samples_writer.write_table(_samples_table(prepared, result, todo, opts.n_samples))
                _count(report, cols, prepared)
                offset += table.num_rows
                if progress is not None:
                    progress.update(table.num_rows)
                last_log = _log_progress(output, offset, reader.num_rows, t0, last_log)
            if writer is None:  # empty catalog: an empty file with the full schema
                empty = io.POSTERIOR.arrow()
                if opts.positions:
                    empty = pa.schema(list(empty) + list(io.POSITIONS.arrow()), metadata=empty.metadata)
                writer = stack.enter_context(RowGroupWriter(tmp_out, _file_schema(empty, meta, opts)))
            if tmp_samples is not None and samples_writer is None:
                samples_writer = stack.enter_context(
                    RowGroupWriter(tmp_samples, _samples_schema(opts.n_samples)))
            report.seconds = time.perf_counter() - t0
            # counts only: run timings go to the log, so identical inputs give identical bytes
            counts = {k: v for k, v in report.to_dict().items() if k not in TIMING_KEYS}
            report_json = json.dumps(counts, default=formats.json_default, sort_keys=True)
            writer.add_key_value_metadata({"ysocensus.report": report_json})
            if fmt != "parquet":
                writer.close()
                formats.write_to(pq.read_table(tmp_out), final, fmt, meta={**meta, "report": counts},
                                 params=_file_params(opts), where=str(output))
            # the writers close (ExitStack, last in first out) before the atomic renames
    finally:
        reader.close()
        if progress is not None:
            progress.close()
    log.info("%s: %d rows in %.1f s (%.0f stars/s); status %s; uncertainties from error models %s",
             output, report.rows, report.seconds, report.stars_per_s, report.status, report.filled_errors or "none")
    return report


def _samples_table(prepared, result, todo, n_samples) -> pa.Table:
    n = prepared.n
    arrays = [pa.array(prepared.columns["source_id"], pa.int64())]
    for j, p in enumerate(io.PARAMETERS):
        flat = np.zeros((n, n_samples), np.float32)
        if result is not None:
            flat[todo] = result.samples[:, :, j]
        values = pa.array(flat.reshape(-1), pa.float32())
        lists = pa.FixedSizeListArray.from_arrays(values, n_samples, mask=pa.array(~todo))
        arrays.append(lists)
    return pa.Table.from_arrays(arrays, schema=_samples_schema(n_samples))


def _count(report: InferReport, cols, prepared) -> None:
    report.rows += prepared.n
    st, counts = np.unique(cols["status"].astype(str), return_counts=True)
    for s, c in zip(st, counts):
        report.status[str(s)] = report.status.get(str(s), 0) + int(c)
    for name, mask in prepared.filled.items():
        report.filled_errors[name] = report.filled_errors.get(name, 0) + int(mask.sum())
    if prepared.unread_bp is not None:
        report.unread_bp += int(prepared.unread_bp.sum())
    if prepared.conditioning is not None and prepared.n:
        parts = np.char.split(prepared.conditioning.astype(str), ";")
        for row in zip(*parts.tolist()):
            survey = row[0].split(":")[0]
            rules, counts = np.unique([r.split(":", 1)[1] for r in row], return_counts=True)
            d = report.conditioning.setdefault(survey, {})
            for r, c in zip(rules, counts):
                d[str(r)] = d.get(str(r), 0) + int(c)


#: rows per Parquet row group of the output files, whatever the batch size (so the bytes do not depend on it)
ROW_GROUP_ROWS = 65536


class RowGroupWriter:
    """A ``pq.ParquetWriter`` that writes row groups of exactly ``ROW_GROUP_ROWS`` rows (the last one shorter), however
    the tables handed to it are cut: a file's bytes then depend on its rows, not on the batches they came in.
    Holds at most one row group in memory."""

    def __init__(self, path, schema: pa.Schema, rows: int = ROW_GROUP_ROWS):
        self._writer = pq.ParquetWriter(path, schema, compression="zstd")
        self.schema = self._writer.schema
        self.rows = int(rows)
        self._pending: list[pa.Table] = []
        self._n = 0

    def write_table(self, table: pa.Table) -> None:
        self._pending.append(table)
        self._n += table.num_rows
        while self._n >= self.rows:
            self._flush(self.rows)

    def _flush(self, n: int) -> None:
        pending = pa.concat_tables(self._pending).combine_chunks() if len(self._pending) > 1 else self._pending[0]
        self._writer.write_table(pending.slice(0, n), row_group_size=n)
        rest = pending.slice(n)
        self._pending, self._n = ([rest] if rest.num_rows else []), rest.num_rows

    def add_key_value_metadata(self, meta) -> None:
        self._writer.add_key_value_metadata(meta)

    def close(self) -> None:
        if self._writer.is_open:
            if self._n:
                self._flush(self._n)
            self._writer.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is not None:  # the run failed: its temporary file is discarded, nothing to flush
            self._pending, self._n = [], 0
        self.close()


#: seconds between progress lines in the log (the first batch is always logged, with the expected total time)
PROGRESS_EVERY_S = 60.0


def _log_progress(output, done: int, total: int | None, t0: float, last: float | None) -> float | None:
    """A log line after the first batch (measured stars/s and the expected time for the whole catalog, so a long run
    says so before it is long) and then every ``PROGRESS_EVERY_S``; returns the time of the last line."""
    now = time.perf_counter()
    if last is not None and now - last < PROGRESS_EVERY_S:
        return last
    rate = done / max(now - t0, 1e-9)
    if total:
        left = max(total - done, 0) / max(rate, 1e-9)
        log.info("%s: %d of %d rows (%.0f %%), %.0f stars/s, about %s left", output, done, total,
                 100.0 * done / total, rate, duration(left))
    else:
        log.info("%s: %d rows, %.0f stars/s", output, done, rate)
    return now


def read_report(path: str | Path) -> dict:
    """The run report stored in a posterior file's footer (rows, status counts, filled uncertainties)."""
    meta = pq.ParquetFile(path).metadata.metadata or {}
    raw = meta.get(b"ysocensus.report")
    return json.loads(raw) if raw else {}
