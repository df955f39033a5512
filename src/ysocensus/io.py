"""Parquet schemas of every stage and atomic, validated reading and writing.

This module is the single source of truth for the columns that pass between the stages of the
workflow (see ``docs/ARCHITECTURE.md``, "Data contracts between stages"). Every writer validates its
table against one of the schemas here, every reader checks the file it opens against the same schema and
fails with a message that names the file and the column.

Units (``docs/ARCHITECTURE.md``, "Units"): magnitudes in each survey's native (Vega) system, parallax in
mas, distance in pc, ages as log10(yr), masses in solar masses, extinction A_V in mag, angles in degrees.
A missing measurement is null, never a sentinel number.
"""

from __future__ import annotations

import glob
import json
import math
import os
import re
import socket
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


class SchemaError(ValueError):
    """A table or file does not follow its documented schema."""


@dataclass(frozen=True)
class Column:
    """One column of a stage's table.

    ``dtype`` is a pyarrow type; ``nullable`` says whether nulls are allowed (a measurement that
    a survey did not make is null); ``unit`` is written into the Parquet field metadata.
    """

    name: str
    dtype: pa.DataType
    unit: str = ""
    description: str = ""
    nullable: bool = False


@dataclass(frozen=True)
class TableSchema:
    """An ordered set of columns with a name (used in error messages and file metadata)."""

    name: str
    columns: tuple[Column, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def __getitem__(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} schema has no column {name!r}")

    def arrow(self) -> pa.Schema:
        fields = [
            pa.field(c.name, c.dtype, nullable=c.nullable,
                     metadata={"unit": c.unit, "description": c.description})
            for c in self.columns
        ]
        return pa.schema(fields, metadata={"ysocensus.schema": self.name})


def _c(name, dtype, unit="", description="", nullable=False) -> Column:
    return Column(name, dtype, unit, description, nullable)


F32, F64, I8, I16, I32, I64 = pa.float32(), pa.float64(), pa.int8(), pa.int16(), pa.int32(), pa.int64()
BOOL, STR = pa.bool_(), pa.string()

# ---------------------------------------------------------------------------------------------
# Population (truth), one file per job chunk of tiles: results/population/chunk_{chunk}.parquet
# ---------------------------------------------------------------------------------------------
POPULATION = TableSchema("population", (
    _c("source_id", I64, "", "unique over the sky: tile << 32 | row within the tile"),
    _c("tile", I32, "", "HEALPix pixel (NESTED, config sky.nside)"),
    _c("l", F64, "deg", "Galactic longitude"),
    _c("b", F64, "deg", "Galactic latitude"),
    _c("distance_pc", F32, "pc", "heliocentric distance"),
    _c("x_pc", F32, "pc", "heliocentric Galactic Cartesian, towards the Galactic centre (l=0, b=0)"),
    _c("y_pc", F32, "pc", "heliocentric Galactic Cartesian, towards l=90 deg"),
    _c("z_pc", F32, "pc", "heliocentric Galactic Cartesian, towards the north Galactic pole"),
    _c("component", STR, "", "population component, one of galaxy.COMPONENTS"),
    _c("cluster_id", I32, "", "young cluster or association id, -1 for field stars"),
    _c("log10_age_yr", F32, "log10(yr)", "stellar age"),
    _c("initial_mass_msun", F32, "Msun", "initial (ZAMS) mass"),
    _c("feh", F32, "dex", "[Fe/H]"),
    _c("teff_k", F32, "K", "effective temperature", nullable=True),
    _c("logg", F32, "log10(cm s^-2)", "surface gravity", nullable=True),
    _c("log10_lum_lsun", F32, "log10(Lsun)", "bolometric luminosity", nullable=True),
    _c("radius_rsun", F32, "Rsun", "stellar radius", nullable=True),
    _c("av_mag", F32, "mag", "V-band extinction along the line of sight to the star"),
    _c("rv", F32, "", "total-to-selective extinction ratio R_V"),
    _c("has_disk", BOOL, "", "bears a protoplanetary disk (IR excess, accretion)"),
    _c("is_remnant", BOOL, "", "past the end of its track (white dwarf, neutron star, black hole): no photometry"),
    _c("weight", F32, "", "number of real stars this simulated star stands for (1/thinning fraction)"),
))

# ---------------------------------------------------------------------------------------------
# Observed catalog: results/catalog/chunk_{chunk}.parquet. Gaia DR3, 2MASS PSC and AllWISE archive
# column names; LAMOST-like labels. Null where a survey did not measure.
# ---------------------------------------------------------------------------------------------
GAIA_BANDS = ("phot_g_mean_mag", "phot_bp_mean_mag", "phot_rp_mean_mag")
GAIA_FLUX_OVER_ERROR = ("phot_g_mean_flux_over_error", "phot_bp_mean_flux_over_error",
                        "phot_rp_mean_flux_over_error")
TMASS_BANDS = ("j_m", "h_m", "ks_m")
TMASS_ERRORS = ("j_msigcom", "h_msigcom", "ks_msigcom")
WISE_BANDS = ("w1mpro", "w2mpro", "w3mpro", "w4mpro")
WISE_ERRORS = ("w1sigmpro", "w2sigmpro", "w3sigmpro", "w4sigmpro")
LAMOST_LABELS = ("teff_lamost", "logg_lamost", "feh_lamost", "ewli", "ewha")
LAMOST_ERRORS = ("teff_err_lamost", "logg_err_lamost", "feh_err_lamost", "ewli_err", "ewha_err")
#: photometric bands in wavelength order and their uncertainty columns (mag)
MAGNITUDES = GAIA_BANDS + TMASS_BANDS + WISE_BANDS
SURVEYS = ("gaia", "tmass", "wise", "lamost")

_CATALOG_VALUES = [
    _c("source_id", I64, "", "same source_id as the population row"),
    _c("tile", I32, "", "HEALPix pixel (NESTED, config sky.nside)"),
    _c("l", F64, "deg", "Galactic longitude"),
    _c("b", F64, "deg", "Galactic latitude"),
    _c("ra", F64, "deg", "ICRS right ascension"),
    _c("dec", F64, "deg", "ICRS declination"),
    _c("parallax", F64, "mas", "Gaia parallax (may be negative)", True),
    _c("parallax_error", F32, "mas", "Gaia parallax uncertainty", True),
]
for _mag, _foe in zip(GAIA_BANDS, GAIA_FLUX_OVER_ERROR):
    _CATALOG_VALUES += [_c(_mag, F32, "mag", "Gaia DR3 mean magnitude (Vega)", True),
                        _c(_foe, F32, "", "Gaia DR3 mean flux divided by its error", True)]
for _mag, _err in zip(TMASS_BANDS + WISE_BANDS, TMASS_ERRORS + WISE_ERRORS):
    _CATALOG_VALUES += [_c(_mag, F32, "mag", "2MASS / AllWISE profile-fit magnitude (Vega)", True),
                        _c(_err, F32, "mag", "total photometric uncertainty", True)]
_LAMOST_UNITS = {"teff": "K", "logg": "log10(cm s^-2)", "feh": "dex", "ewli": "Angstrom", "ewha": "Angstrom"}
for _lab, _err in zip(LAMOST_LABELS, LAMOST_ERRORS):
    _unit = _LAMOST_UNITS[_lab.split("_")[0]]
    _CATALOG_VALUES += [_c(_lab, F32, _unit, "LAMOST-like spectroscopic label or line index", True),
                        _c(_err, F32, _unit, "its uncertainty", True)]
_CATALOG_VALUES += [
    _c("survey_mask", I32, "",
       "bit field of what was measured: one bit per entry of io.MEASUREMENT_BITS (missingness pattern)"),
]
CATALOG = TableSchema("catalog", tuple(_CATALOG_VALUES))

#: order of the bits of ``survey_mask``: bit i set when MEASUREMENT_BITS[i] is not null
MEASUREMENT_BITS = ("parallax",) + MAGNITUDES + LAMOST_LABELS
#: sampler-input column (not in any file) of per-row "searched" bits in MEASUREMENT_BITS order: a null
#: measurement that was searched for is a non-detection, one that was not is marginalised
#: (``inference.catalog.survey_rules``); absent means every measurement was searched, as in the simulation
SEARCHED_MASK = "searched_mask"

# ---------------------------------------------------------------------------------------------
# Posteriors: results/posteriors/chunk_{chunk}.parquet, exactly one row per catalog row.
# ---------------------------------------------------------------------------------------------
#: inferred parameters, named after their truth columns in POPULATION
PARAMETERS = ("log10_age_yr", "initial_mass_msun", "feh", "distance_pc", "av_mag")
QUANTILES = (16, 50, 84)
POSTERIOR_STATUS = ("ok", "prior_only", "invalid_input", "low_ess")

_POSTERIOR = [
    _c("source_id", I64, "", "same source_id as the catalog row"),
    _c("status", STR, "", "one of io.POSTERIOR_STATUS: ok, prior_only (nothing observed), invalid_input, "
                          "low_ess (importance weights too uneven to trust: ess below infer.min_ess)"),
    _c("n_samples", I32, "", "posterior samples drawn"),
]
for _p in PARAMETERS:
    _unit = POPULATION[_p].unit
    for _q in QUANTILES:
        _POSTERIOR.append(_c(f"{_p}_q{_q}", F32, _unit, f"{_q}th posterior percentile of {_p}", True))
#: the optional per-row column naming the Gaia data release of a catalog's photometry (``DR2``, ``EDR3``, ``DR3``),
#: and the releases whose photometric uncertainties the simulator writes (``surveys.gaia``: DR3's per-CCD σ over
#: its transit counts; EDR3's photometry is DR3's). A Gaia σ of another release is not read (``inference.catalog``)
GAIA_RELEASE = "gaia_release"
GAIA_RELEASES = ("DR2", "EDR3", "DR3")
GAIA_SIGMA_RELEASES = ("EDR3", "DR3")
#: the optional Gaia column ``ruwe`` (renormalised unit weight error) and the value above which a row's Gaia
#: photometric uncertainties are not read (``inference.catalog``). RUWE ≈ 1 for a single, well-behaved source;
#: above 1.4 the source is likely non-single or otherwise problematic (Lindegren et al. 2018, GAIA-C3-TN-LU-LL-124;
#: Lindegren et al. 2021, A&A 649, A2). The G flux of a close pair then depends on the scan direction, so its
#: mean-magnitude σ carries a per-CCD scatter that is neither the single-star noise nor variability: the
#: simulator writes neither, and the network would read it as youth.
RUWE = "ruwe"
RUWE_SIGMA_MAX = 1.4

#: the optional per-row photometric quality flags, one character per band, as the surveys publish them: 2MASS PSC
#: ``ph_qual`` (J, H, Ks; Cutri et al. 2003, Explanatory Supplement §IV.4.b) and AllWISE ``ph_qual`` (W1-W4; Cutri
#: et al. 2013, Explanatory Supplement §II.1.a). Both archives write a band the survey did not detect as an upper
#: limit: flag ``U``, the magnitude column holding the limit and its uncertainty null. Read as given, that limit
#: would be a detection at the limit; the flag makes it the non-detection the simulator writes. ``X`` (2MASS: a
#: detection without a valid brightness; AllWISE: no profile-fit measurement possible there) says nothing of the
#: star's brightness, so that band is marginalised. Every other character is read as given.
PH_QUAL = {"tmass": "tmass_ph_qual", "wise": "allwise_ph_qual"}
PH_QUAL_ALPHABET = {"tmass": "ABCDEFUX", "wise": "ABCUXZ"}
PH_QUAL_UPPER_LIMIT = "U"
PH_QUAL_NO_BRIGHTNESS = "X"


#: the simulation truth of an unresolved companion: its mass ratio to the primary (0: single star); written into the
#: training splits by ``model.trainset``, read by ``validate`` (calibration by binarity)
COMPANION_MASS_RATIO = "companion_mass_ratio"


def float_column(frame, name: str | None, n: int) -> np.ndarray:
    """Column ``name`` of a pyarrow Table, a DataFrame or a mapping as float64 (NaN for nulls or absent)."""
    if name is None:
        return np.full(n, np.nan)
    if hasattr(frame, "column_names"):  # pyarrow.Table
        if name not in frame.column_names:
            return np.full(n, np.nan)
        a = frame.column(name).to_numpy(zero_copy_only=False)
        return np.asarray(a, dtype=np.float64) if a.dtype != object else np.asarray(
            [np.nan if v is None else v for v in a], dtype=np.float64)
    if name in frame:
        a = frame[name]
        if hasattr(a, "to_numpy"):
            a = a.to_numpy(dtype=np.float64, na_value=np.nan) if hasattr(a, "dtype") and hasattr(a, "index") else a.to_numpy()
        return np.asarray(a, dtype=np.float64)
    return np.full(n, np.nan)


def n_rows(frame) -> int:
    """Rows of a pyarrow Table, a DataFrame or a mapping of columns."""
    if hasattr(frame, "num_rows"):
        return frame.num_rows
    return len(next(iter(frame.values()))) if isinstance(frame, Mapping) else len(frame)


#: the age (Myr) below which a star is young: p_young = P(age < this). The workflow's one key for it is
#: ``infer.young_threshold_myr`` (read by infer, maps, validate, validate_real, compare_peers and the figures);
#: this is its default, and what a function falls back to without a config. Not a property of a trained model:
#: changing it needs no retraining (the population's thinning step, ``population.young_field_age_max_myr``, is a
#: separate choice of the simulation).
YOUNG_THRESHOLD_MYR = 50.0
#: the default second threshold (Myr) of ``p_young_2`` (config ``infer.second_threshold_myr``)
SECOND_YOUNG_THRESHOLD_MYR = 10.0


def parse_flags(text) -> dict[str, str]:
    """``"G_err=0.00122;BP_err=0.00472"`` → ``{"G_err": "0.00122", ...}`` (entries without '=' skipped): the
    ``phot_flags`` / ``member_flag`` fields of the shipped member files (``data/real``, ``data/calibration``)."""
    if text is None or (isinstance(text, float) and math.isnan(text)) or text is pd.NA:
        return {}
    out = {}
    for part in str(text).split(";"):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def log10_age_threshold(myr: float) -> float:
    """log10(age / yr) of an age threshold given in Myr (50 Myr → 7.69897)."""
    return math.log10(float(myr) * 1e6)


_POSTERIOR.append(_c("p_young", F32, "", "posterior probability that the age is below the configured threshold "
                     "(config infer.young_threshold_myr, default 50 Myr)", True))
_POSTERIOR.append(_c("p_young_2", F32, "",
                     "posterior probability that the age is below the optional second threshold "
                     "(config infer.second_threshold_myr, default 10 Myr; null when not configured)", True))
_POSTERIOR.append(_c("ess", F32, "",
                     "effective sample size (Kish) of the importance weights of the proposals behind the samples "
                     "(the posterior corrected to the Galactic population); null where the samples are the "
                     "network's own draws", True))
_POSTERIOR.append(_c("conditioning", STR, "",
                     "per survey, the rule applied: measured, measured_no_sigma (values read without their "
                     "uncertainty), not_detected (searched, not seen) or marginalised (not conditioned on); "
                     "see ysocensus.inference.catalog", True))
_POSTERIOR.append(_c("note", STR, "",
                     "why a row was not inferred, or which uncertainties came from a survey error model "
                     "(ysocensus.inference.error_models); null when there is nothing to say", True))
POSTERIOR = TableSchema("posterior", tuple(_POSTERIOR))

#: sky positions ``ysocensus infer`` writes after the posterior columns (``--no-positions`` leaves them out; the
#: workflow's chunk files join their catalog by source_id instead): the catalog's own values, or computed from
#: the other pair; null where the row has no usable position
POSITIONS = TableSchema("positions", (
    _c("ra", F64, "deg", "ICRS right ascension (the catalog's, or from l, b)", True),
    _c("dec", F64, "deg", "ICRS declination (the catalog's, or from l, b)", True),
    _c("l", F64, "deg", "Galactic longitude (the catalog's, or from ra, dec)", True),
    _c("b", F64, "deg", "Galactic latitude (the catalog's, or from ra, dec)", True),
))

SCHEMAS: dict[str, TableSchema] = {s.name: s for s in (POPULATION, CATALOG, POSTERIOR)}

#: each schema unit as FITS, VOTable and ECSV files write it (astropy's unit strings; the IAU ``solMass``; the
#: schema's log10(yr) is astropy's ``dex(yr)``, which FITS and VOUnit lack: TOPCAT shows it as written, astropy
#: reads it back from VOTable and ECSV); units not listed here are written as they are
FILE_UNITS = {"log10(yr)": "dex(yr)", "Msun": "solMass", "Rsun": "solRad", "log10(Lsun)": "dex(solLum)",
              "log10(cm s^-2)": "dex(cm s-2)"}


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------
def _arrow_compatible(actual: pa.DataType, expected: pa.DataType) -> bool:
    if actual == expected:
        return True
    # dictionary-encoded strings (pandas categoricals) read back as dictionaries
    if pa.types.is_dictionary(actual) and actual.value_type in (expected, pa.large_string()):
        return True
    return pa.types.is_large_string(actual) and pa.types.is_string(expected)


def validate_table(table: pa.Table, schema: TableSchema, where: str = "table",
                   extra_columns: Sequence[str] = ()) -> None:
    """Check that ``table`` has every column of ``schema`` with its dtype and no forbidden nulls.

    ``where`` names the file (or object) in error messages. Columns listed in ``extra_columns``
    may be present beyond the schema; any other extra column is an error, so that a typo cannot
    slip through as a silently ignored column.
    """
    names = set(table.column_names)
    missing = [c.name for c in schema.columns if c.name not in names]
    if missing:
        raise SchemaError(f"{where}: missing column(s) {missing} of the {schema.name} schema")
    unknown = sorted(names - set(schema.names) - set(extra_columns))
    if unknown:
        raise SchemaError(f"{where}: column(s) {unknown} are not in the {schema.name} schema")
    for col in schema.columns:
        arr = table.column(col.name)
        if not _arrow_compatible(arr.type, col.dtype):
            raise SchemaError(f"{where}: column {col.name!r} has type {arr.type}, "
                              f"the {schema.name} schema wants {col.dtype}")
        if not col.nullable and arr.null_count:
            rows = _first_rows(pa.compute.is_null(arr))
            raise SchemaError(f"{where}: column {col.name!r} has {arr.null_count} null value(s) "
                              f"(first rows {rows}) but may not be null")
        if pa.types.is_floating(col.dtype) and not col.nullable:
            bad = pa.compute.invert(pa.compute.is_finite(arr))
            n_bad = pa.compute.sum(bad).as_py() or 0
            if n_bad:
                raise SchemaError(f"{where}: column {col.name!r} has {n_bad} non-finite value(s) "
                                  f"(first rows {_first_rows(bad)})")


def _first_rows(mask: pa.ChunkedArray | pa.Array, n: int = 5) -> list[int]:
    return np.flatnonzero(np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool))[:n].tolist()


def to_table(frame: pd.DataFrame | Mapping[str, np.ndarray], schema: TableSchema,
             where: str = "table", extra_columns: Sequence[str] = ()) -> pa.Table:
    """Convert a DataFrame or a dict of arrays to a pyarrow table in schema order and dtypes.

    Floating NaN in a nullable column becomes null (the catalog convention); a NaN in a column
    that may not be null is an error naming the column.
    """
    get = frame.__getitem__
    cols = list(frame.keys()) if isinstance(frame, Mapping) else list(frame.columns)
    missing = [c.name for c in schema.columns if c.name not in cols]
    if missing:
        raise SchemaError(f"{where}: missing column(s) {missing} of the {schema.name} schema")
    unknown = sorted(set(cols) - set(schema.names) - set(extra_columns))
    if unknown:
        raise SchemaError(f"{where}: column(s) {unknown} are not in the {schema.name} schema")
    arrays, fields = [], []
    for col in list(schema.columns) + [Column(n, None) for n in extra_columns if n in cols]:
        values = np.asarray(get(col.name))
        if col.dtype is None:  # carried-through extra column: keep its own type
            arr = pa.array(values)
        else:
            mask = None
            if col.nullable and values.dtype.kind == "f":
                mask = ~np.isfinite(values)
            elif values.dtype == object:
                mask = pd.isna(values)
            try:
                arr = pa.array(values, type=col.dtype, mask=mask, from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
                raise SchemaError(f"{where}: column {col.name!r} cannot be stored as {col.dtype}: {exc}") from exc
        arrays.append(arr)
        fields.append(col.name)
    table = pa.Table.from_arrays(arrays, names=fields)
    validate_table(table, schema, where, extra_columns)
    # attach units and descriptions for the schema's own columns
    meta_fields = [schema.arrow().field(n) if n in schema.names else table.schema.field(n) for n in fields]
    return table.cast(pa.schema(meta_fields, metadata=schema.arrow().metadata))


# ---------------------------------------------------------------------------------------------
# Atomic file writing
# ---------------------------------------------------------------------------------------------
_HOST = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname()) or "host"


def _temporary(path: Path) -> Path:
    """A new hidden file ``.NAME.HOST-PID.XXXXXXXX.part`` beside ``path``, after removing orphans of ``path``.

    The owner is in the name so that a later run can tell a temporary file whose process was killed
    (``kill -9``, an out-of-memory kill, a lost node: no cleanup code ran) from one still being written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_orphans(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_HOST}-{os.getpid()}.", suffix=".part", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def remove_orphans(path: str | os.PathLike) -> list[Path]:
    """Remove temporary files of ``path`` left by killed processes of this host; returns what was removed.

    Only files whose process no longer exists on this host are removed: another host's (a shared file system)
    cannot be checked from here and may be being written, and a live process's is in use.
    """
    path = Path(path)
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.{re.escape(_HOST)}-(\d+)\.[A-Za-z0-9_]+\.part$")
    removed = []
    try:
        candidates = list(path.parent.glob(f".{glob.escape(path.name)}.*.part"))
    except OSError:
        return removed
    for p in candidates:
        m = pattern.match(p.name)
        if m and not _alive(int(m.group(1))):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


@contextmanager
def scratch_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a hidden temporary file beside ``path`` (named as ``atomic_path``'s), removed when the block ends."""
    tmp = _temporary(Path(path))
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    A crash or an exception leaves no partial file at ``path`` (the temporary file is removed); one left by a
    killed process is removed by the next write of ``path`` (:func:`remove_orphans`).
    """
    path = Path(path)
    tmp = _temporary(path)
    try:
        yield tmp
        # mkstemp creates 0600; give the result the permissions of an ordinary new file
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_table(table: pa.Table | pd.DataFrame | Mapping[str, np.ndarray], path: str | os.PathLike,
                schema: TableSchema, metadata: Mapping[str, object] | None = None,
                extra_columns: Sequence[str] = ()) -> None:
    """Validate ``table`` against ``schema`` and write it to ``path`` atomically as Parquet.

    ``metadata`` (JSON-serialisable) is stored in the file's key-value metadata under
    ``ysocensus.meta`` (e.g. counts of stars dropped by a magnitude limit).
    """
    if not isinstance(table, pa.Table):
        table = to_table(table, schema, str(path), extra_columns)
    else:
        validate_table(table, schema, str(path), extra_columns)
    meta = dict(table.schema.metadata or {})
    meta[b"ysocensus.schema"] = schema.name.encode()
    if metadata is not None:
        meta[b"ysocensus.meta"] = json.dumps(metadata, sort_keys=True).encode()
    table = table.replace_schema_metadata(meta)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def read_table(path: str | os.PathLike, schema: TableSchema, columns: Sequence[str] | None = None,
               extra_columns: Sequence[str] = ()) -> pa.Table:
    """Read a Parquet file written by ``write_table`` and check it against ``schema``.

    Raises :class:`SchemaError` naming the file and the offending column. ``columns`` selects a
    subset (each must be in the schema).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file (expected a {schema.name} table)")
    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise SchemaError(f"{path}: not a readable Parquet file ({exc})") from exc
    if columns is None:
        table = pf.read()
        validate_table(table, schema, str(path), extra_columns)
        return table
    unknown = [c for c in columns if c not in schema.names]
    if unknown:
        raise SchemaError(f"{path}: requested column(s) {unknown} are not in the {schema.name} schema")
    absent = [c for c in columns if c not in pf.schema_arrow.names]
    if absent:
        raise SchemaError(f"{path}: missing column(s) {absent} of the {schema.name} schema")
    table = pf.read(columns=list(columns))
    sub = TableSchema(schema.name, tuple(schema[c] for c in columns))
    validate_table(table, sub, str(path))
    return table


def read_metadata(path: str | os.PathLike) -> dict:
    """The ``ysocensus.meta`` dictionary stored by :func:`write_table` (empty if none)."""
    meta = pq.read_schema(path).metadata or {}
    raw = meta.get(b"ysocensus.meta")
    return json.loads(raw) if raw else {}


def write_json(obj: object, path: str | os.PathLike) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")
