"""Reading catalogs in batches (Parquet, FITS, VOTable, ECSV, CSV) and turning them into validated sampler input.

Column names are matched case-insensitively against ``io.CATALOG`` (Gaia DR3 / 2MASS PSC / AllWISE archive
names, LAMOST-like labels) and the alias table ``inference.columns.ALIASES`` (VizieR's ``Gmag``, ``Plx``,
``RA_ICRS``, the Gaia archive's ``w1mpro_error``, TOPCAT's ``_1`` suffixes); what was read as what, what was
ignored and which ignored columns look like a missing quantity is ``CatalogReader.recognition``. Unknown
columns are ignored unless carried through on request. Besides the archive's ``phot_*_mean_flux_over_error``
a Gaia band's uncertainty may come as ``phot_*_mean_mag_error`` (mag) or as ``phot_*_mean_flux`` with
``phot_*_mean_flux_error``.

Required: ``source_id`` and a position, either ``l, b`` (Galactic, deg) or ``ra, dec`` (ICRS, deg;
converted with astropy). Everything else is optional: any survey may be absent entirely or null per row.

Row-level problems never drop a row. With ``on_invalid="flag"`` (the default) the row's status becomes
``invalid_input``, the ``note`` column says which column was wrong, and a warning names the column and the
first rows; with ``on_invalid="raise"`` the first such problem raises :class:`InputError` naming the column
and rows. What counts as invalid: a non-numeric entry in a numeric column, ±inf anywhere, an uncertainty
≤ 0, a magnitude outside −12…35 (sentinels such as 99.99), a LAMOST Teff ≤ 0, a position that is null or
outside its range (ra outside 0…360, dec or b outside −90…90 deg: ``RA_RANGE``), a parallax more than 5σ below
zero (``PARALLAX_NEGATIVE_SIGMA``). A NaN in a measurement or uncertainty is read as null (missing), the
catalog convention. A source_id that an earlier row has is flagged in the note (status unchanged: the star's
values are fine, only a join by source_id would be ambiguous).

What a catalog lacks is not what a survey did not see. Per star and survey (``SURVEY_RULES``, reported in the
``conditioning`` column):

- ``measured``: at least one of the survey's values is present; its null bands are non-detections, as the
  survey publishes them (a 2MASS source without Ks, a Gaia source without a parallax).
- ``measured_no_sigma``: the same, with at least one value given without its uncertainty: that value is read
  without it (``tokens.VALUE_ONLY``); no uncertainty is invented for it. Gaia G/BP/RP uncertainties are also
  left unread where the row's Gaia release (its ``gaia_release`` value, else the release its Gaia archive
  ``designation`` names, else the default) is one whose σ the simulator does not write (DR2) or its ``ruwe``
  exceeds ``io.RUWE_SIGMA_MAX`` (a likely non-single source), each with a note.
- ``not_detected``: every value null, and the user says the cross-match was done: the survey's ID column is
  in the catalog (``SURVEY_ID_COLUMNS``, e.g. ``tmass_id`` / ``designation`` of the Gaia archive's 2MASS
  neighbourhood table) or the survey is named in ``searched``. Read as "searched and not seen".
- ``marginalised``: every value null and no sign that the survey was searched (a literature table without
  2MASS, a star never cross-matched), or the survey's columns are absent: not conditioned on at all. A
  value column absent from the file is marginalised for every row, band by band.

The surveys' per-band quality flags (``io.PH_QUAL``: 2MASS and AllWISE ``ph_qual``, one character per band), where
the catalog has them, refine this band by band (:func:`quality_flags`): ``U`` makes the band a non-detection
(the archives write the upper limit in the magnitude column: it is not read as a measurement) and says the
survey was searched for that row; ``X`` marginalises the band. A null flag leaves the row to the rules above.

A Gaia G_BP fainter than the model's ``bp_max_mag`` (``surveys.gaia.unreliable_bp``: the archive's faint BP fluxes
are biased bright) is not conditioned on, as in the model's training; the row's ``note`` says so.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ysocensus import io
from ysocensus.inference import columns, error_models, formats
from ysocensus.surveys.gaia import unreliable_bp

log = logging.getLogger(__name__)

_GAIA_SIGMA = 2.5 / math.log(10.0)
#: the columns a catalog must have (a position: l, b or ra, dec — see POSITIONS)
REQUIRED = ("source_id",)
POSITIONS = (("l", "b"), ("ra", "dec"))
#: measurement and uncertainty columns, in io.MEASUREMENT_BITS order
VALUES = io.MEASUREMENT_BITS
ERRORS = tuple(error_models.ERROR_OF[v] for v in VALUES)
#: alternative Gaia uncertainty columns accepted and converted to flux_over_error
GAIA_ALTERNATIVES = {foe: (f"{m}_error", m.replace("_mag", "_flux"), m.replace("_mag", "_flux_error"))
                     for m, foe in zip(io.GAIA_BANDS, io.GAIA_FLUX_OVER_ERROR)}
_ALT_COLUMNS = tuple(c for alts in GAIA_ALTERNATIVES.values() for c in alts)
#: columns whose presence says a survey was cross-matched for every row (a null ID: searched, not found)
SURVEY_ID_COLUMNS = {
    "gaia": ("gaia_source_id", "gaia_dr3_source_id", "dr3_source_id", "dr2_source_id"),
    "tmass": ("tmass_id", "tmass_designation", "designation_2mass", "original_ext_source_id", "tmass_oid",
              "_2mass", "2mass"),
    "wise": ("allwise_id", "allwise_designation", "designation_allwise", "allwise_oid", "allwise", "wise_id"),
    "lamost": ("obsid", "lamost_obsid", "lamost_id"),
}
_ID_COLUMNS = tuple(c for cols in SURVEY_ID_COLUMNS.values() for c in cols)
#: the rule applied per star and survey (module docstring), as written in the ``conditioning`` column
SURVEY_RULES = ("measured", "measured_no_sigma", "not_detected", "marginalised")
#: each survey's value columns, in io.MEASUREMENT_BITS order
SURVEY_VALUES = {"gaia": ("parallax",) + io.GAIA_BANDS, "tmass": io.TMASS_BANDS, "wise": io.WISE_BANDS,
                 "lamost": io.LAMOST_LABELS}
assert set(SURVEY_VALUES) == set(io.SURVEYS) and sum(map(len, SURVEY_VALUES.values())) == len(VALUES)
#: the Gaia archive's source name, ``Gaia DR3 4295806720``: where the catalog has no ``io.GAIA_RELEASE`` value, its
#: prefix says the release of the row's photometry (VizieR's DR3Name / DR2Name are aliases); a value that is not a
#: Gaia name (a 2MASS designation from a join) says nothing
GAIA_DESIGNATION = "designation"
_DESIGNATION_RELEASE = r"(?i)^\s*gaia\s+(?P<release>dr2|edr3|dr3)(?:\s|$)"
KNOWN = tuple(dict.fromkeys(("source_id", "tile", "l", "b", "ra", "dec") + VALUES + ERRORS + _ALT_COLUMNS
                            + _ID_COLUMNS + (io.GAIA_RELEASE, GAIA_DESIGNATION, io.RUWE)
                            + tuple(io.PH_QUAL.values())))
#: plausible apparent magnitudes; anything outside is taken for a sentinel. The bright end leaves room
#: for red supergiants of nearby OB associations (Antares: K = -4.1; the simulator makes K = -6 at 100 pc)
_MAG_RANGE = (-12.0, 35.0)
#: right ascension in deg: 360.0 is 0 written after rounding; anything else outside is another unit (hours
#: stop at 24 and would pass: only the sky position would be wrong) or another column
RA_RANGE = (0.0, 360.0)
#: a parallax this many of its σ below zero is flagged: the true parallax of a star is > 0, so with Gaussian
#: errors a real star lands there with probability 3e-7 (under one star in a million-star query), while
#: spurious Gaia solutions (close pairs, crowded fields) and a column in other units (arcsec, or
#: parallax_over_error) do so often
PARALLAX_NEGATIVE_SIGMA = 5.0
#: what each canonical column is for, as the recognition summary groups them
COLUMN_GROUPS = {"source_id": "identifier", "tile": "identifier", "l": "position", "b": "position",
                 "ra": "position", "dec": "position", io.GAIA_RELEASE: "gaia (data release)",
                 GAIA_DESIGNATION: "gaia (data release)",
                 io.RUWE: "gaia (astrometric quality)",
                 **{c: f"{s} (quality flags)" for s, c in io.PH_QUAL.items()}}
for _s, _cols in SURVEY_VALUES.items():
    for _col in _cols:
        COLUMN_GROUPS[_col] = COLUMN_GROUPS[error_models.ERROR_OF[_col]] = _s
    for _col in SURVEY_ID_COLUMNS[_s]:
        COLUMN_GROUPS[_col] = f"{_s} (cross-match ID)"
for _alts in GAIA_ALTERNATIVES.values():
    for _col in _alts:
        COLUMN_GROUPS[_col] = "gaia"
assert set(COLUMN_GROUPS) == set(KNOWN) and set(columns.ALIASES.values()) <= set(KNOWN)
#: the columns an ignored look-alike is warned about (columns.recognise): measured quantities and positions,
#: not the cross-match IDs (read only for their presence)
QUANTITIES = tuple(c for c in KNOWN if c not in _ID_COLUMNS and c not in (io.GAIA_RELEASE, GAIA_DESIGNATION, io.RUWE)
                   and c not in io.PH_QUAL.values())
#: input formats (``inference.formats``); VOTable and ECSV are read whole, the others streamed
FORMATS = tuple(formats.FORMATS)


class InputError(ValueError):
    """A catalog cannot be read as input to the inference (message names the file, column and rows)."""


def catalog_format(path: str | Path) -> str:
    """The input format a file name says (``inference.formats.FORMATS``; ``.gz``, ``.bz2`` allowed)."""
    try:
        return formats.file_format(path)
    except formats.FormatError as exc:
        raise InputError(str(exc)) from None


class CatalogReader:
    """Streams a catalog file as pyarrow tables of at most ``batch_size`` rows, columns named canonically.

    The file's columns are recognised by ``inference.columns.recognise`` (case-insensitive canonical names,
    ``columns.ALIASES``, TOPCAT suffixes); ``recognition`` says what was read as what and what was ignored.
    Only the recognised columns (and ``carry`` columns, under their lower-cased names) are read. ``num_rows``
    is known for every format but CSV in a compressed or ``.txt`` file (None). ``columns`` are the canonical
    names present, then the other (lower-cased) names of the file. ``labels`` maps a canonical name to the
    file's where they differ (for messages).
    """

    def __init__(self, path: str | Path, batch_size: int = 4096, carry: Sequence[str] = ()):
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: no such catalog file")
        self.format = catalog_format(self.path)
        self.batch_size = int(batch_size)
        self._opened = []
        if self.path.is_file() and self.path.stat().st_size == 0:
            raise InputError(f"{self.path}: the catalog file is empty (0 bytes)")
        try:
            names = self._names()
        except InputError:
            self.close()
            raise
        except Exception as exc:  # truncated or foreign files: each reader raises its own types
            self.close()
            raise InputError(f"{self.path}: not a readable {self.format} file "
                             f"({type(exc).__name__}: {formats.one_line(exc)})") from exc
        try:
            self._recognise(names, carry)
        except Exception:
            self.close()
            raise

    def _recognise(self, names: Sequence[str], carry: Sequence[str]) -> None:
        """Which file column is read as which canonical one (``recognition``, ``labels``, ``read_columns``)."""
        lower = {}
        for n in names:
            if n.lower() in lower:
                raise InputError(f"{self.path}: columns {lower[n.lower()]!r} and {n!r} differ only in case")
            lower[n.lower()] = n
        missing_carry = [c for c in carry if c.lower() not in lower]
        if missing_carry:
            raise InputError(f"{self.path}: column(s) {missing_carry} to carry through are not in the catalog")
        clash = [c for c in carry if c.lower() in io.POSTERIOR.names]
        if clash:
            raise InputError(f"{self.path}: cannot carry column(s) {clash}: the output has columns of that name")
        try:
            self.recognition = columns.recognise(names, COLUMN_GROUPS, keep=carry, quantities=QUANTITIES)
        except columns.ColumnClash as exc:
            raise InputError(f"{self.path}: {exc}") from None
        self._original = dict(self.recognition.used)            # canonical -> file column
        self.labels = {c: o for c, o in self._original.items() if o.lower() != c}
        self.carry = tuple(c.lower() for c in carry)
        for c in self.carry:
            self._original.setdefault(c, lower[c])
        read = set(self.recognition.used.values())
        self.columns = tuple(self.recognition.used) + tuple(n for n, o in lower.items() if o not in read)
        wanted = [c for c in KNOWN if c in self.recognition.used] + [c for c in self.carry if c not in KNOWN]
        self.read_columns = tuple(wanted)

    # -- format specifics ------------------------------------------------------------------------
    def _names(self) -> list[str]:
        if self.format == "parquet":
            import pyarrow.parquet as pq
            self._pf = pq.ParquetFile(self.path)
            self._opened.append(self._pf)
            self.num_rows = self._pf.metadata.num_rows
            return list(self._pf.schema_arrow.names)
        if self.format == "fits":
            import warnings

            from astropy.io import fits
            with warnings.catch_warnings():  # a truncated file is reported below, naming it
                warnings.filterwarnings("ignore", message="File may have been truncated")
                self._hdul = fits.open(self.path, memmap=True)
                self._opened.append(self._hdul)
                hdu = next((h for h in self._hdul if isinstance(h, (fits.BinTableHDU, fits.TableHDU))), None)
            if hdu is None:
                raise InputError(f"{self.path}: no table extension in this FITS file")
            self._hdu = hdu
            self.num_rows = int(hdu.header.get("NAXIS2", 0))
            info = hdu.fileinfo() or {}
            expected = info.get("datLoc", 0) + hdu.header.get("NAXIS1", 0) * self.num_rows
            if not self.path.name.lower().endswith(formats._COMPRESSED) and self.path.stat().st_size < expected:
                raise InputError(f"{self.path}: truncated FITS file (the table's header promises {self.num_rows} "
                                 f"rows, {expected} bytes; the file has {self.path.stat().st_size})")
            return list(hdu.columns.names)
        if self.format in ("votable", "ecsv"):
            self._whole = formats.read_table(self.path, self.format)
            self.num_rows = self._whole.num_rows
            return list(self._whole.column_names)
        import pyarrow.csv as pacsv
        self.num_rows = _count_lines(self.path) - 1 if self.path.suffix.lower() == ".csv" else None
        with pacsv.open_csv(self.path) as r:
            return list(r.schema.names)

    def __iter__(self) -> Iterator[pa.Table]:
        cols = list(dict.fromkeys(self._original[c] for c in self.read_columns))
        try:
            if self.format == "parquet":
                for rb in self._pf.iter_batches(batch_size=self.batch_size, columns=cols):
                    yield self._canonical(pa.Table.from_batches([rb]))
            elif self.format == "fits":
                yield from (self._canonical(t) for t in self._iter_fits(cols))
            elif self.format in ("votable", "ecsv"):
                whole = self._whole.select(cols)
                for start in range(0, whole.num_rows, self.batch_size):
                    yield self._canonical(whole.slice(start, self.batch_size))
            else:
                yield from (self._canonical(t) for t in self._iter_csv(cols))
        except InputError:
            raise
        except (pa.ArrowException, OSError, EOFError, ValueError, TypeError) as exc:
            # a file whose header reads but whose data is truncated or corrupt fails only here
            raise InputError(f"{self.path}: cannot read the catalog's data (truncated or corrupt file?) "
                             f"({type(exc).__name__}: {formats.one_line(exc)})") from exc

    def _canonical(self, table: pa.Table) -> pa.Table:
        """Columns as read (the file's names) renamed to ``read_columns`` (a column carried and recognised twice)."""
        return pa.Table.from_arrays([table.column(self._original[c]) for c in self.read_columns],
                                    names=list(self.read_columns))

    def _iter_fits(self, cols):
        data = self._hdu.data
        for start in range(0, self.num_rows, self.batch_size):
            chunk = data[start:start + self.batch_size]
            arrays = []
            for c in cols:
                a = np.asarray(chunk[c])
                if a.dtype.byteorder not in ("=", "|"):
                    a = a.astype(a.dtype.newbyteorder("="))
                if a.ndim != 1:
                    raise InputError(f"{self.path}: column {c!r} is a vector column, expected scalars")
                mask = None
                null = self._hdu.columns[c].null
                if a.dtype.kind in "iu" and null not in (None, ""):
                    mask = a == int(null)
                elif a.dtype.kind == "f":
                    mask = np.isnan(a)
                elif a.dtype.kind in "SU":
                    a = a.astype(str)
                arrays.append(pa.array(a, mask=mask))
            yield pa.Table.from_arrays(arrays, names=cols)

    def _iter_csv(self, cols):
        import pyarrow.csv as pacsv
        # known numeric columns are read as text and parsed here, so that a bad entry is reported
        # with its row instead of failing the whole read
        types = {c: pa.string() for c in cols}
        opts = pacsv.ConvertOptions(include_columns=cols, column_types=types, strings_can_be_null=True)
        read = pacsv.ReadOptions(block_size=1 << 22)
        pending = []
        n_pending = 0
        with pacsv.open_csv(self.path, read_options=read, convert_options=opts) as reader:
            for rb in reader:
                pending.append(rb)
                n_pending += rb.num_rows
                while n_pending >= self.batch_size:
                    table = pa.Table.from_batches(pending)
                    yield table.slice(0, self.batch_size)
                    rest = table.slice(self.batch_size)
                    pending, n_pending = rest.to_batches(), rest.num_rows
        if n_pending:
            yield pa.Table.from_batches(pending)

    def close(self):
        for f in self._opened:
            f.close()
        self._opened = []

    def check_structure(self) -> None:
        """Fail early, naming the column, when a required column or a position is absent."""
        have = set(self.recognition.used)
        missing = [c for c in REQUIRED if c not in have]
        if missing:
            raise InputError(f"{self.path}: missing required column(s) {missing}{self._did_you_mean(missing)}")
        if not any(all(c in have for c in pair) for pair in POSITIONS):
            absent = [c for pair in POSITIONS for c in pair if c not in have]
            raise InputError(f"{self.path}: missing required position columns: need 'l' and 'b' "
                             f"(Galactic, deg) or 'ra' and 'dec' (ICRS, deg){self._did_you_mean(absent)}")

    def _did_you_mean(self, canonical: Sequence[str]) -> str:
        hits = [f"{col!r} for {canon!r}" for col, (_, canon) in self.recognition.near_misses.items()
                if canon in canonical]
        return f" (is {' or '.join(hits)} meant? rename it)" if hits else ""


def _count_lines(path: Path) -> int:
    """Newlines in a plain-text file (a progress-bar total; a final line without newline counts too)."""
    n, last = 0, b"\n"
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 24):
            n += chunk.count(b"\n")
            last = chunk[-1:]
    return n + (last != b"\n")


@dataclass
class PreparedBatch:
    """One batch ready for a sampler: ``columns`` (see ``inference.protocol``), per-row flags and notes."""

    columns: dict[str, np.ndarray]
    invalid: np.ndarray                      # bool [n]
    observed: np.ndarray                     # bool [n]: at least one usable measurement
    notes: list[tuple[str, np.ndarray]] = field(default_factory=list)  # (text, row mask)
    filled: dict[str, np.ndarray] = field(default_factory=dict)        # error column -> rows filled
    carry: dict[str, pa.Array] = field(default_factory=dict)
    conditioning: np.ndarray | None = None   # str [n]: the rule applied per survey (SURVEY_RULES)
    positions: dict[str, np.ndarray] = field(default_factory=dict)     # io.POSITIONS: ra, dec, l, b (NaN: none)
    labels: Mapping[str, str] = field(default_factory=dict)            # canonical -> the file's name, for messages
    unread_bp: np.ndarray | None = None      # bool [n]: G_BP the model does not read (surveys.gaia.unreliable_bp)

    @property
    def n(self) -> int:
        return len(self.invalid)

    def note_column(self) -> np.ndarray:
        """Per-row note (object array; None where there is nothing to say)."""
        out = np.full(self.n, "", dtype=object)
        for text, mask in self.notes:
            if mask.any():
                sep = np.where(out[mask] == "", "", "; ")
                out[mask] = out[mask] + sep + text
        if self.filled:
            names = list(self.filled)
            lists = np.full(self.n, "", dtype=object)
            for name in names:
                m = self.filled[name]
                sep = np.where(lists[m] == "", "", ",")
                lists[m] = lists[m] + sep + name
            has = lists != ""
            sep = np.where(out[has] == "", "", "; ")
            out[has] = out[has] + sep + "uncertainty from error model: " + lists[has]
        out[out == ""] = None
        return out


def _named(column: str, labels: Mapping[str, str]) -> str:
    """``'parallax'``, or ``'parallax' (file column 'Plx')`` where the catalog names it by an alias."""
    return f"{column!r} (file column {labels[column]!r})" if column in labels else repr(column)


def _problem(where: str, column: str, rows: np.ndarray, offset: int, what: str, on_invalid: str,
             batch: PreparedBatch | None, mask: np.ndarray | None) -> None:
    """Report rows with a bad value of ``column``: raise (``on_invalid="raise"``) or note them; with ``mask``
    (the batch's invalid rows) they also get status invalid_input, without it only the note (a value that
    is suspect but does not stop the inference)."""
    idx = (np.flatnonzero(rows)[:5] + offset).tolist()
    labels = batch.labels if batch is not None else {}
    msg = f"{where}: column {_named(column, labels)} {what} in {int(rows.sum())} row(s) (first rows {idx})"
    if on_invalid == "raise":
        raise InputError(msg)
    if mask is None:
        log.warning("%s; flagged in the note column", msg)
        batch.notes.append((f"{column}: {what}", rows.copy()))
        return
    log.warning("%s; those rows get status invalid_input", msg)
    name = f"{column} ({labels[column]})" if column in labels else column
    batch.notes.append((f"invalid {name}: {what}", rows.copy()))
    mask |= rows


def _as_float(table: pa.Table, name: str, where: str, offset: int, on_invalid, batch, invalid) -> np.ndarray:
    """Column as float64 with NaN for null; text that is not a number makes the row invalid."""
    n = table.num_rows
    if name not in table.column_names:
        return np.full(n, np.nan)
    arr = table.column(name)
    t = arr.type
    if pa.types.is_null(t):
        return np.full(n, np.nan)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        import pandas as pd
        text = arr.to_numpy(zero_copy_only=False)
        stripped = pd.Series(text, dtype=object).str.strip()
        values = pd.to_numeric(stripped, errors="coerce").to_numpy(dtype=float)
        blank = stripped.isna().to_numpy() | (stripped == "").to_numpy() \
            | stripped.str.lower().isin(["nan", "null", "none", "--"]).to_numpy()
        bad = np.isnan(values) & ~blank
        if bad.any():
            _problem(where, name, bad, offset, "is not a number", on_invalid, batch, invalid)
        return values
    if pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_decimal(t):
        return np.asarray(pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False), dtype=float)
    raise InputError(f"{where}: column {name!r} has type {t}, expected a number")


def _as_source_id(table: pa.Table, where: str, offset: int, labels: Mapping[str, str] = {}) -> np.ndarray:
    name = _named("source_id", labels)
    arr = table.column("source_id")
    t = arr.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        try:
            arr = pc.cast(pc.utf8_trim_whitespace(arr), pa.int64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise InputError(f"{where}: column {name} is not an integer ({exc})") from exc
    elif pa.types.is_floating(t):
        vals = arr.to_numpy(zero_copy_only=False)
        frac = np.isfinite(vals) & (vals != np.round(vals))
        if frac.any():
            rows = (np.flatnonzero(frac)[:5] + offset).tolist()
            raise InputError(f"{where}: column {name} has non-integer values (first rows {rows})")
        arr = pc.cast(arr, pa.int64(), safe=False)
    elif not pa.types.is_integer(t):
        raise InputError(f"{where}: column {name} has type {t}, expected an integer")
    if arr.null_count:
        rows = (np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False))[:5] + offset).tolist()
        raise InputError(f"{where}: column {name} is null in {arr.null_count} row(s) (first rows {rows}); "
                         f"every output row needs its source_id")
    return np.asarray(pc.cast(arr, pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)


class SeenIds:
    """The source_ids of a run's earlier rows (and the row each first appeared in), to find repeats across the
    batches of a streamed catalog. Memory: 16 bytes per distinct id (16 MB for a million stars)."""

    def __init__(self):
        self._ids = np.empty(0, np.int64)
        self._rows = np.empty(0, np.int64)

    def repeats(self, ids: np.ndarray, offset: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows whose id an earlier row has, that earlier row or -1), and remember this batch's ids."""
        ids = np.asarray(ids, np.int64)
        rows = offset + np.arange(len(ids), dtype=np.int64)
        pos = np.searchsorted(self._ids, ids)
        seen = (pos < len(self._ids)) & (self._ids[np.minimum(pos, max(len(self._ids) - 1, 0))] == ids) \
            if len(self._ids) else np.zeros(len(ids), bool)
        first = np.where(seen, self._rows[np.minimum(pos, max(len(self._rows) - 1, 0))] if len(self._rows)
                         else -1, -1)
        uniq, idx, inverse = np.unique(ids, return_index=True, return_inverse=True)
        first_here = rows[idx][inverse.reshape(-1)]
        first = np.where(seen, first, np.where(first_here != rows, first_here, -1))
        new = ~seen[idx]
        merged = np.concatenate([self._ids, uniq[new]])
        order = np.argsort(merged, kind="stable")
        self._ids = merged[order]
        self._rows = np.concatenate([self._rows, rows[idx][new]])[order]
        return first >= 0, first


def survey_rules(table_columns: Sequence[str], values: dict[str, np.ndarray], errors: dict[str, np.ndarray],
                 searched: Sequence[str] = (), flags: "QualityFlags | None" = None
                 ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Which measurements were searched for, per row, and the rule applied per survey (module docstring).

    ``table_columns``: the catalog's (lower-case) columns; ``values`` / ``errors``: float arrays (NaN = null)
    per value / uncertainty column (upper limits already nulled, :func:`quality_flags`); ``searched``: surveys
    the user declares cross-matched for every row; ``flags``: the rows and bands the quality flags speak for.
    Returns the ``tokens.SEARCHED_COLUMN`` bits (int32, io.MEASUREMENT_BITS order) and, per survey, the
    index into SURVEY_RULES of each row.
    """
    unknown = sorted(set(searched) - set(io.SURVEYS))
    if unknown:
        raise ValueError(f"searched: unknown survey(s) {unknown}; choose from {list(io.SURVEYS)}")
    n = len(next(iter(values.values())))
    bits = np.zeros(n, np.int32)
    rules = {}
    for s, cols in SURVEY_VALUES.items():
        present = [c for c in cols if c in table_columns]
        has_value = np.zeros(n, bool)
        no_sigma = np.zeros(n, bool)
        for c in cols:
            has_value |= np.isfinite(values[c])
            no_sigma |= np.isfinite(values[c]) & ~np.isfinite(errors[error_models.ERROR_OF[c]])
        declared = s in searched or any(c in table_columns for c in SURVEY_ID_COLUMNS[s])
        row_searched = has_value | declared
        if flags is not None and s in flags.flagged:
            row_searched = row_searched | flags.flagged[s]
        band_searched = np.zeros(n, bool)
        for c in present:
            on = row_searched.copy()
            if flags is not None and c in flags.unknown:
                on &= ~flags.unknown[c]
            band_searched |= on
            bits |= np.where(on, np.int32(1 << VALUES.index(c)), np.int32(0))
        rule = np.full(n, SURVEY_RULES.index("marginalised"), np.int8)
        rule[band_searched] = SURVEY_RULES.index("not_detected")
        rule[has_value] = SURVEY_RULES.index("measured")
        rule[has_value & no_sigma] = SURVEY_RULES.index("measured_no_sigma")
        rules[s] = rule
    return bits, rules


@dataclass
class QualityFlags:
    """What a batch's per-band quality flags say (:func:`quality_flags`): per value column, the rows whose value is
    an upper limit (``U``: a non-detection) and those whose band is marginalised (``X``); per survey, the rows
    with a flag (the survey was searched for them)."""

    upper_limit: dict[str, np.ndarray] = field(default_factory=dict)
    unknown: dict[str, np.ndarray] = field(default_factory=dict)
    flagged: dict[str, np.ndarray] = field(default_factory=dict)

    def notes(self) -> list[tuple[str, np.ndarray]]:
        """The per-row notes: which bands were read as upper limits, which were marginalised."""
        out = []
        for what, table in (("upper limit (ph_qual U), read as a non-detection", self.upper_limit),
                            ("no valid brightness (ph_qual X), marginalised", self.unknown)):
            for c, rows in table.items():
                if rows.any():
                    out.append((f"{c}: {what}", rows))
        return out


def quality_flags(table: pa.Table, where: str = "catalog", offset: int = 0, on_invalid: str = "flag",
                  batch: "PreparedBatch | None" = None, invalid: np.ndarray | None = None) -> QualityFlags:
    """Read the catalog's ``io.PH_QUAL`` columns: one character per band of the survey (2MASS J, H, Ks; AllWISE
    W1-W4), from that survey's alphabet (``io.PH_QUAL_ALPHABET``). A flag of another width or with another
    character makes the row invalid (or raises, ``on_invalid="raise"``) and is not used."""
    n = table.num_rows
    out = QualityFlags()
    for survey, name in io.PH_QUAL.items():
        if name not in table.column_names:
            continue
        bands = SURVEY_VALUES[survey]
        col = table.column(name)
        col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
        if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            raise InputError(f"{where}: column {name} has type {col.type}, expected text (one character per band "
                             f"of {', '.join(bands)})")
        trimmed = pc.fill_null(pc.utf8_upper(pc.utf8_trim_whitespace(col)), "")
        text = np.asarray(trimmed.to_numpy(zero_copy_only=False), dtype=f"<U{len(bands)}")
        length = np.asarray(pc.utf8_length(trimmed).to_numpy(zero_copy_only=False), np.int64)
        chars = text.view("<U1").reshape(n, len(bands)) if n else np.empty((0, len(bands)), "<U1")
        present = length > 0
        bad = present & ((length != len(bands))
                         | ~np.isin(chars, list(io.PH_QUAL_ALPHABET[survey])).all(1))
        if bad.any():
            _problem(where, name, bad, offset, f"is not {len(bands)} characters of "
                     f"{io.PH_QUAL_ALPHABET[survey]!r} (one per band)", on_invalid, batch, invalid)
        good = present & ~bad
        out.flagged[survey] = good
        for i, c in enumerate(bands):
            out.upper_limit[c] = good & (chars[:, i] == io.PH_QUAL_UPPER_LIMIT)
            out.unknown[c] = good & (chars[:, i] == io.PH_QUAL_NO_BRIGHTNESS)
    return out


def conditioning_column(rules: dict[str, np.ndarray]) -> np.ndarray:
    """``gaia:measured;tmass:marginalised;…`` per row (object array)."""
    out = None
    for s in io.SURVEYS:
        part = np.asarray([f"{s}:{r}" for r in SURVEY_RULES], dtype=object)[rules[s]]
        out = part if out is None else out + ";" + part
    return out


def gaia_releases(table: pa.Table, default: str, where: str = "catalog", offset: int = 0) -> np.ndarray:
    """Per row, the Gaia data release of the photometry (``io.GAIA_RELEASES``, upper case): the catalog's
    ``io.GAIA_RELEASE`` column where it has one and the row is not null (``Gaia DR2``, ``dr2``… accepted), else the
    release a Gaia ``designation`` names (``Gaia DR2 …``), else ``default``; an unknown release in
    ``io.GAIA_RELEASE`` raises ``InputError`` naming the column and rows."""
    default = normalise_release(default, "--gaia-release")
    n = table.num_rows
    out = np.full(n, default, dtype=object)
    if GAIA_DESIGNATION in table.column_names:
        named = designation_releases(table.column(GAIA_DESIGNATION))
        out = np.where(named == None, out, named)  # noqa: E711 (elementwise on an object array)
    if io.GAIA_RELEASE not in table.column_names:
        return out
    raw = table.column(io.GAIA_RELEASE).to_pylist()
    out = np.array([d if v is None or str(v).strip() == "" else _release_name(v) for v, d in zip(raw, out)],
                   dtype=object)
    bad = ~np.isin(out, io.GAIA_RELEASES)
    if bad.any():
        rows = (offset + np.flatnonzero(bad)[:5]).tolist()
        raise InputError(f"{where}: column {io.GAIA_RELEASE}: unknown Gaia data release {sorted(set(out[bad]))[:5]} "
                         f"in rows {rows}; one of {list(io.GAIA_RELEASES)} (or null for --gaia-release)")
    return out


def designation_releases(values) -> np.ndarray:
    """``Gaia DR2 4295806720`` → ``DR2`` per value (an Arrow or Python sequence); None where the value is null or
    not a Gaia source name."""
    text = pc.cast(values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(values), pa.string())
    release = pc.struct_field(pc.extract_regex(text, _DESIGNATION_RELEASE), [0])
    return np.array(pc.utf8_upper(release).to_pylist(), dtype=object)


def _release_name(value) -> str:
    """``Gaia DR2`` / `` dr2 `` → ``DR2`` (not checked)."""
    return str(value).strip().upper().removeprefix("GAIA ").strip()


def normalise_release(value: str, what: str) -> str:
    """``Gaia DR2`` / ``dr2`` → ``DR2``; an error naming ``what`` for anything not in ``io.GAIA_RELEASES``."""
    v = _release_name(value)
    if v not in io.GAIA_RELEASES:
        raise ValueError(f"{what}: unknown Gaia data release {value!r}; one of {list(io.GAIA_RELEASES)}")
    return v


def prepare(table: pa.Table, where: str = "catalog", offset: int = 0, on_invalid: str = "flag",
            fill_errors: bool = False, carry: Sequence[str] = (), searched: Sequence[str] = (),
            labels: Mapping[str, str] | None = None, seen: SeenIds | None = None,
            gaia_release: str = "DR3", bp_max_mag: float | None = None) -> PreparedBatch:
    """Validate one batch and convert it to sampler input (see module docstring for the rules).

    ``offset`` is the index of the batch's first row in the file (rows in messages count from 0).
    ``fill_errors``: fill missing uncertainties from the survey error models (``inference.error_models``)
    instead of reading those values without one (off by default: a filled σ is a guess the network would read
    as a measurement). ``searched``: surveys cross-matched for every row (``survey_rules``). ``labels``: the
    file's names of aliased columns (``CatalogReader.labels``), for messages. ``seen``: the source_ids of the
    run's earlier batches, to flag repeats across batches (without it, repeats within the batch only).
    ``gaia_release``: the Gaia data release of rows without an ``io.GAIA_RELEASE`` column value; the Gaia
    photometric uncertainties of a release the simulator does not write (``io.GAIA_SIGMA_RELEASES``: DR2's come
    from fewer transits and another pipeline) are not read: those bands are ``measured_no_sigma``, with a note.
    ``bp_max_mag``: the model's faint-BP rule (``surveys.gaia.unreliable_bp``): the rows it applies to get a note
    (the model's tokenisation leaves their G_BP out; the value stays in the batch).
    """
    if on_invalid not in ("flag", "raise"):
        raise ValueError(f"on_invalid must be 'flag' or 'raise', got {on_invalid!r}")
    n = table.num_rows
    invalid = np.zeros(n, bool)
    batch = PreparedBatch({}, invalid, np.zeros(n, bool), labels=dict(labels or {}))
    cols = batch.columns
    cols["source_id"] = _as_source_id(table, where, offset, batch.labels)
    repeated, _ = (seen or SeenIds()).repeats(cols["source_id"], offset)
    if repeated.any():
        _problem(where, "source_id", repeated, offset, "repeats an earlier row's source_id (joins by source_id "
                 "will match both)", on_invalid, batch, None)
    if "tile" in table.column_names:
        tile = _as_float(table, "tile", where, offset, on_invalid, batch, invalid)
        cols["tile"] = np.where(np.isfinite(tile), tile, -1).astype(np.int32)
    else:
        cols["tile"] = np.full(n, -1, np.int32)
    f = {c: _as_float(table, c, where, offset, on_invalid, batch, invalid)
         for c in ("l", "b", "ra", "dec") + VALUES + ERRORS + _ALT_COLUMNS}

    # position: l, b if given (and finite), else from ra, dec
    has_lb = "l" in table.column_names and "b" in table.column_names
    has_radec = "ra" in table.column_names and "dec" in table.column_names
    l, b, ra, dec = f["l"], f["b"], f["ra"], f["dec"]
    bad_ra = ~np.isnan(ra) & ((ra < RA_RANGE[0]) | (ra > RA_RANGE[1]))
    if bad_ra.any():
        _problem(where, "ra", bad_ra, offset, f"is outside {RA_RANGE[0]:g}..{RA_RANGE[1]:g} deg "
                 "(hours? radians? another column?)", on_invalid, batch, invalid)
    bad_dec = ~np.isnan(dec) & (np.abs(dec) > 90.0)
    if bad_dec.any():
        _problem(where, "dec", bad_dec, offset, "is outside -90..90 deg", on_invalid, batch, invalid)
    good_radec = np.isfinite(ra) & np.isfinite(dec) & ~bad_ra & ~bad_dec
    if has_radec:
        need = ~(np.isfinite(l) & np.isfinite(b)) & good_radec
        if need.any():
            gal = _galactic(ra[need], dec[need])
            l, b = l.copy(), b.copy()
            l[need], b[need] = gal
    bad_b = np.isfinite(b) & (np.abs(b) > 90.0)
    if bad_b.any():
        _problem(where, "b", bad_b, offset, "is outside -90..90 deg", on_invalid, batch, invalid)
    nopos = ~(np.isfinite(l) & np.isfinite(b)) & ~invalid
    if nopos.any():
        name = "l, b" if has_lb else "ra, dec"
        _problem(where, name, nopos, offset, "is null or not finite (no position)", on_invalid, batch, invalid)
    cols["l"] = np.where(np.isfinite(l), np.mod(l, 360.0), 0.0)
    cols["b"] = np.where(np.isfinite(b) & ~bad_b, b, 0.0)
    cols["ra"], cols["dec"] = ra, dec
    batch.positions = _positions(ra, dec, l, b, bad_b)

    # Gaia uncertainty alternatives → flux_over_error (only where the archive column is null)
    for foe, (mag_err, flux, flux_err) in GAIA_ALTERNATIVES.items():
        with np.errstate(divide="ignore", invalid="ignore"):
            alt = np.where(f[mag_err] > 0, _GAIA_SIGMA / f[mag_err], np.nan)
            alt = np.where(np.isnan(alt) & (f[flux_err] > 0), f[flux] / f[flux_err], alt)
        f[foe] = np.where(np.isnan(f[foe]), alt, f[foe])
    # Gaia photometric σ of a kind the simulator does not write are not read (those bands: measured_no_sigma)
    has_sigma = np.isfinite(np.stack([f[c] for c in io.GAIA_FLUX_OVER_ERROR])).any(0)
    release = gaia_releases(table, gaia_release, where, offset)
    foreign = has_sigma & ~np.isin(release, io.GAIA_SIGMA_RELEASES)
    unread = [(f"Gaia {rel} photometric uncertainties not read (the model was trained on "
               f"{'/'.join(io.GAIA_SIGMA_RELEASES)}'s)", foreign & (release == rel))
              for rel in sorted(set(release[foreign]))]
    ruwe = _as_float(table, io.RUWE, where, offset, on_invalid, batch, invalid)
    bad_ruwe = ruwe <= 0
    if bad_ruwe.any():
        _problem(where, io.RUWE, bad_ruwe, offset, "is zero or negative (RUWE is ~1 for a single source)",
                 on_invalid, batch, invalid)
    blended = has_sigma & ~foreign & (ruwe > io.RUWE_SIGMA_MAX)
    if blended.any():
        unread.append((f"Gaia photometric uncertainties not read: {io.RUWE} > {io.RUWE_SIGMA_MAX:g} (likely "
                       "non-single; its G scatter is not the single-star noise the model was trained on)", blended))
    for note, rows in unread:
        batch.notes.append((note, rows))
        for foe in io.GAIA_FLUX_OVER_ERROR:
            f[foe] = np.where(rows, np.nan, f[foe])

    # per-band quality flags: upper limits are non-detections, X bands marginalised
    flags = quality_flags(table, where, offset, on_invalid, batch, invalid)
    for c, upper in flags.upper_limit.items():  # neither an upper limit nor an X band is read as a value
        unread = upper | flags.unknown[c]
        f[c] = np.where(unread, np.nan, f[c])
        f[error_models.ERROR_OF[c]] = np.where(unread, np.nan, f[error_models.ERROR_OF[c]])
    for text, rows in flags.notes():
        batch.notes.append((text, rows))

    # measurements: inf is invalid; NaN is missing; ranges
    for c in VALUES + ERRORS:
        inf = np.isinf(f[c])
        if inf.any():
            _problem(where, c, inf, offset, "is infinite", on_invalid, batch, invalid)
            f[c] = np.where(inf, np.nan, f[c])
    for c in ERRORS:
        neg = f[c] <= 0
        if neg.any():
            _problem(where, c, neg, offset, "is zero or negative (an uncertainty must be > 0)",
                     on_invalid, batch, invalid)
    with np.errstate(invalid="ignore"):
        far = (f["parallax"] < -PARALLAX_NEGATIVE_SIGMA * f["parallax_error"]) & (f["parallax_error"] > 0)
    if far.any():
        _problem(where, "parallax", far, offset, f"is more than {PARALLAX_NEGATIVE_SIGMA:g} sigma below zero "
                 "(a spurious astrometric solution, or not a parallax in mas)", on_invalid, batch, invalid)
    for c in io.MAGNITUDES:
        out = (f[c] < _MAG_RANGE[0]) | (f[c] > _MAG_RANGE[1])
        if out.any():
            _problem(where, c, out, offset, f"is outside {_MAG_RANGE[0]}..{_MAG_RANGE[1]} mag "
                     "(a sentinel? missing values must be null)", on_invalid, batch, invalid)
    bad_teff = f["teff_lamost"] <= 0
    if bad_teff.any():
        _problem(where, "teff_lamost", bad_teff, offset, "is zero or negative", on_invalid, batch, invalid)

    for c in VALUES + ERRORS:
        cols[c] = f[c]
    if fill_errors:
        batch.filled = error_models.fill(cols, n)
    # a value without its uncertainty is read as a value alone (tokens.VALUE_ONLY)
    usable = np.zeros(n, bool)
    mask = np.zeros(n, np.int32)
    for i, v in enumerate(VALUES):
        ok = np.isfinite(cols[v])
        usable |= ok
        mask |= np.where(ok, np.int32(1 << i), np.int32(0))
    cols["survey_mask"] = mask
    bits, rules = survey_rules(table.column_names, {c: cols[c] for c in VALUES}, {c: cols[c] for c in ERRORS},
                               searched, flags)
    cols[io.SEARCHED_MASK] = bits
    batch.conditioning = conditioning_column(rules)
    faint_bp = batch.unread_bp = unreliable_bp(cols[io.GAIA_BANDS[1]], bp_max_mag) & ~invalid
    if faint_bp.any():
        batch.notes.append((f"{io.GAIA_BANDS[1]} fainter than {bp_max_mag:g} mag (biased bright in the archive) "
                            "not conditioned on", faint_bp))
    batch.observed = usable & ~invalid
    if (~usable & ~invalid).any():
        batch.notes.append(("nothing observed", ~usable & ~invalid))
    batch.carry = {c: table.column(c).combine_chunks() if isinstance(table.column(c), pa.ChunkedArray)
                   else table.column(c) for c in carry}
    return batch


def _galactic(ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(l, b) in deg of ICRS (ra, dec) in deg."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    gal = SkyCoord(ra=ra * u.deg, dec=dec * u.deg, frame="icrs").galactic
    return gal.l.deg, gal.b.deg


def _positions(ra, dec, l, b, bad_b) -> dict[str, np.ndarray]:
    """The ``io.POSITIONS`` columns of a batch: the catalog's ra, dec as given (also where flagged: the user
    sees the value that was wrong), l, b as given or computed (in 0..360), ra, dec from l, b where the catalog
    has no ra, dec; NaN where there is no position."""
    good_lb = np.isfinite(l) & np.isfinite(b) & ~bad_b
    l_out = np.where(good_lb, np.mod(l, 360.0), np.nan)
    b_out = np.where(good_lb, b, np.nan)
    ra_out, dec_out = np.array(ra, float), np.array(dec, float)
    need = good_lb & np.isnan(ra_out) & np.isnan(dec_out)
    if need.any():
        from astropy import units as u
        from astropy.coordinates import SkyCoord

        icrs = SkyCoord(l=l_out[need] * u.deg, b=b_out[need] * u.deg, frame="galactic").icrs
        ra_out[need], dec_out[need] = icrs.ra.deg, icrs.dec.deg
    return {"ra": ra_out, "dec": dec_out, "l": l_out, "b": b_out}

