"""Table files by extension: Parquet, FITS, VOTable, ECSV, CSV, read and written the way their users expect.

Astronomers open catalogs in TOPCAT, astropy and the Gaia archive, whose default download is a VOTable; a
Parquet file under a ``.fits`` name opens nowhere. So a file is what its extension says
(:data:`FORMATS`), in both directions:

- **Parquet**: the pipeline's own format; units and descriptions in the field metadata, the run's metadata
  as JSON under ``ysocensus.meta``, each :class:`Param` under ``ysocensus.<name>``.
- **FITS**: a binary-table extension after an empty primary HDU. Units in ``TUNITn`` (the strings of
  ``io.FILE_UNITS``; astropy writes the FITS-standard ones itself and this module the others, such as
  ``dex(yr)``, which astropy reads back as a unit it does not recognise), descriptions in ``TCOMMn`` (TOPCAT
  shows them), each :class:`Param` as a header keyword, the metadata JSON in ``YSOMETA`` (long-string
  ``CONTINUE`` cards). A null integer has a ``TNULLn``; a null float is NaN, the FITS convention.
- **VOTable**: BINARY2 serialisation (compact, exact floats), units and descriptions per ``FIELD``, each
  :class:`Param` a ``PARAM``, the metadata an ``INFO`` named ``ysocensus.meta``.
- **ECSV**: astropy's text format with units, descriptions and the metadata in its YAML header.
- **CSV**: values only (no place for units or metadata; use ECSV for a text file that keeps them).

Inputs may also be compressed (``.gz``, ``.bz2``); outputs may not (the compressed name would promise what
the bytes do not hold). Writing is atomic: a temporary file beside the target, renamed onto it only when
complete (``io.atomic_path``); a failure or interruption leaves no partial file.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pyarrow as pa

from ysocensus import io

#: format -> extensions (lower case) it is recognised by
FORMATS: dict[str, tuple[str, ...]] = {
    "parquet": (".parquet", ".pq"),
    "fits": (".fits", ".fit", ".fts"),
    "votable": (".vot", ".votable", ".xml"),
    "ecsv": (".ecsv",),
    "csv": (".csv", ".txt"),
}
_COMPRESSED = (".gz", ".bz2")
_ASTROPY_FORMAT = {"fits": "fits", "votable": "votable", "ecsv": "ascii.ecsv"}
#: FITS keyword of the metadata JSON
FITS_META_KEY = "YSOMETA"


class FormatError(ValueError):
    """A file cannot be read or written in the format its name says (the message names the file)."""


@dataclass(frozen=True)
class Param:
    """One scalar of a file's metadata that a reader should see without parsing JSON (e.g. the P(young)
    threshold): a FITS header keyword (``fits_key``, at most 8 characters), a VOTable PARAM, an ECSV meta item,
    a Parquet key-value pair."""

    name: str
    value: float | int | str | None
    unit: str = ""
    description: str = ""
    fits_key: str = ""

    def __post_init__(self):
        if len(self.fits_key) > 8:
            raise ValueError(f"FITS keyword {self.fits_key!r} is longer than 8 characters")


def file_format(path: str | os.PathLike, output: bool = False) -> str:
    """The format (a key of :data:`FORMATS`) a file name says; ``output``: refuse compressed names."""
    name = Path(path).name.lower()
    for suffix in _COMPRESSED:
        if name.endswith(suffix):
            if output:
                raise FormatError(f"{path}: compressed output is not written; name the file "
                                  f"{name.removesuffix(suffix)} and compress it afterwards")
            name = name.removesuffix(suffix)
    for fmt, exts in FORMATS.items():
        if name.endswith(exts):
            return fmt
    known = ", ".join(e for exts in FORMATS.values() for e in exts)
    raise FormatError(f"{path}: cannot tell the format from the name; use one of {known}")


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------
def read_table(path: str | os.PathLike, fmt: str | None = None) -> pa.Table:
    """The whole table of ``path`` as pyarrow, column names as in the file, units in the field metadata.

    Null (masked) values become nulls; a FITS or VOTable vector column becomes a fixed-size list. Raises
    :class:`FormatError` naming the file when it is empty, truncated or not of its format.
    """
    path = Path(path)
    fmt = fmt or file_format(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise FormatError(f"{path}: the file is empty (0 bytes)")
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq
            return pq.read_table(path)
        if fmt == "csv":
            import pyarrow.csv as pacsv
            return pacsv.read_csv(path)
        from astropy.table import Table
        from astropy.utils.exceptions import AstropyWarning

        kw = {"verify": "ignore"} if fmt == "votable" else {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            table = Table.read(path, format=_ASTROPY_FORMAT[fmt], **kw)
        return from_astropy(table)
    except FormatError:
        raise
    except Exception as exc:  # each reader raises its own types for truncated or foreign files
        raise FormatError(f"{path}: not a readable {fmt} file ({type(exc).__name__}: {one_line(exc)})") from exc


def from_astropy(table) -> pa.Table:
    """An astropy Table as pyarrow: masked values null, big-endian FITS data native, units in field metadata."""
    arrays, fields = [], []
    for name in table.colnames:
        col = table[name]
        data = np.ma.getdata(col)
        mask = np.ma.getmaskarray(col) if getattr(col, "mask", None) is not None else None
        if data.dtype.byteorder not in ("=", "|"):
            data = data.astype(data.dtype.newbyteorder("="))
        if data.dtype.kind == "S":
            data = np.char.decode(data, "utf-8", errors="replace")
        if data.dtype.kind == "f" and mask is not None:
            mask = mask | np.isnan(data)
        if data.ndim == 1 and data.dtype.kind != "O":
            arr = pa.array(data, mask=mask if mask is not None and mask.any() else None)
        elif data.ndim > 1:
            flat = pa.array(data.reshape(len(data), -1).reshape(-1))
            arr = pa.FixedSizeListArray.from_arrays(flat, int(np.prod(data.shape[1:])))
        else:  # variable-length arrays (VOTable arraysize="*", FITS P columns)
            try:
                arr = pa.array([None if m else np.asarray(v).tolist() for v, m in
                                zip(data, mask if mask is not None else np.zeros(len(data), bool))])
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                arr = pa.array([str(v) for v in data])
        meta = {}
        if col.unit is not None:
            meta["unit"] = str(col.unit)
        if col.description:
            meta["description"] = str(col.description)
        arrays.append(arr)
        fields.append(pa.field(name, arr.type, metadata=meta or None))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------
def write_table(table: pa.Table, path: str | os.PathLike, meta: Mapping[str, Any] | None = None,
                params: Sequence[Param] = (), fmt: str | None = None) -> None:
    """Write ``table`` to ``path`` in the format its name says (or ``fmt``), atomically.

    ``meta`` (JSON-serialisable) and ``params`` go where each format keeps metadata (module docstring); units
    and descriptions come from the fields' ``unit`` / ``description`` metadata (as ``io.to_table`` sets them).
    """
    fmt = fmt or file_format(path, output=True)
    with io.atomic_path(path) as tmp:
        write_to(table, tmp, fmt, meta, params, where=str(path))


def write_to(table: pa.Table, target: str | os.PathLike, fmt: str, meta: Mapping[str, Any] | None = None,
             params: Sequence[Param] = (), where: str | None = None) -> None:
    """Write ``table`` to ``target`` as ``fmt`` in place (no rename; ``target`` may be a temporary file).

    ``where`` names the file in error messages (default ``target``)."""
    where = where or str(target)
    meta_json = json.dumps(meta, sort_keys=True, default=json_default) if meta is not None else None
    if fmt == "parquet":
        import pyarrow.parquet as pq
        kv = dict(table.schema.metadata or {})
        if meta_json is not None:
            kv[b"ysocensus.meta"] = meta_json.encode()
        for p in params:
            kv[f"ysocensus.{p.name}".encode()] = json.dumps(p.value).encode()
        pq.write_table(table.replace_schema_metadata(kv), target, compression="zstd")
        return
    if fmt == "csv":
        import pyarrow.csv as pacsv
        pacsv.write_csv(table, target)
        return
    if fmt not in _ASTROPY_FORMAT:
        raise FormatError(f"{where}: unknown format {fmt!r}; choose from {sorted(FORMATS)}")
    from astropy.utils.exceptions import AstropyWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        if fmt == "fits":
            _write_fits(table, target, meta_json, params, where)
        elif fmt == "votable":
            _write_votable(table, target, meta_json, params, where)
        else:
            t = to_astropy(table, where)
            t.meta.update({p.name: p.value for p in params})
            if meta is not None:
                t.meta["ysocensus"] = json.loads(meta_json)
            t.write(target, format="ascii.ecsv", overwrite=True)


def _field_meta(field: pa.Field, key: str) -> str:
    value = (field.metadata or {}).get(key.encode(), b"").decode()
    return io.FILE_UNITS.get(value, value) if key == "unit" else value


def to_astropy(table: pa.Table, where: str = "table", fits_units_only: bool = False):
    """A pyarrow table as an astropy Table with units and descriptions (FITS/VOTable-ready column types).

    Null floats become NaN (the FITS and VOTable null of a float), other nulls masked entries. With
    ``fits_units_only`` a unit outside the FITS standard is left off the column (the caller writes it).
    """
    from astropy import units as u
    from astropy.table import Column, MaskedColumn, Table

    out = Table()
    for field, arr in zip(table.schema, table.columns):
        arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
        t = arr.type
        if pa.types.is_dictionary(t):
            arr = arr.cast(t.value_type)
            t = arr.type
        nulls = np.asarray(arr.is_null().to_numpy(zero_copy_only=False), bool)
        if pa.types.is_floating(t):
            col = Column(np.asarray(arr.to_numpy(zero_copy_only=False)))
        elif pa.types.is_integer(t) or pa.types.is_boolean(t):
            fill = False if pa.types.is_boolean(t) else 0
            data = np.asarray(arr.fill_null(fill).to_numpy(zero_copy_only=False))
            col = MaskedColumn(data, mask=nulls) if nulls.any() else Column(data)
        elif pa.types.is_string(t) or pa.types.is_large_string(t):
            data = np.asarray(arr.fill_null("").to_pylist(), dtype=str)
            if data.dtype.itemsize == 0 or len(data) == 0:
                data = data.astype("U1")
            col = MaskedColumn(data, mask=nulls) if nulls.any() else Column(data)
        elif pa.types.is_fixed_size_list(t) and pa.types.is_floating(t.value_type):
            size = t.list_size
            values = arr.values.slice(arr.offset * size, len(arr) * size)  # null lists keep their slots
            data = np.array(values.to_numpy(zero_copy_only=False), dtype=float).reshape(len(arr), size)
            data[nulls] = np.nan
            col = Column(data)
        else:
            raise FormatError(f"{where}: column {field.name!r} has type {t}, which this format cannot hold; "
                              "write Parquet, or do not carry that column")
        unit = _field_meta(field, "unit")
        if unit and not (fits_units_only and not _fits_unit(unit)):
            col.unit = u.Unit(unit, parse_strict="silent")
        description = _field_meta(field, "description")
        if description and not fits_units_only:
            col.description = description
        out[field.name] = col
    return out


def _fits_unit(unit: str) -> bool:
    from astropy import units as u
    try:
        u.Unit(unit, format="fits")
    except ValueError:
        return False
    return True


def _write_fits(table: pa.Table, target, meta_json: str | None, params: Sequence[Param], where: str) -> None:
    from astropy.io import fits

    hdu = fits.table_to_hdu(to_astropy(table, where, fits_units_only=True), character_as_bytes=True)
    schema_name = (table.schema.metadata or {}).get(b"ysocensus.schema", b"").decode()
    if schema_name:
        hdu.name = schema_name.upper()
    for i, field in enumerate(table.schema, start=1):
        unit = _field_meta(field, "unit")
        if unit and not _fits_unit(unit):
            hdu.columns[field.name].unit = unit  # TUNITn beside the column's TTYPEn, TFORMn
        description = _field_meta(field, "description")
        if description:
            hdu.header[f"TCOMM{i}"] = description
    for p in params:
        if p.value is not None:
            key = p.fits_key or p.name[:8].upper()
            hdu.header[key] = (p.value, f"{p.description} [{p.unit}]" if p.unit else p.description)
    if meta_json is not None:
        hdu.header[FITS_META_KEY] = (meta_json, "ysocensus run metadata (JSON)")
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(target, overwrite=True)


def _write_votable(table: pa.Table, target, meta_json: str | None, params: Sequence[Param], where: str) -> None:
    from astropy.io.votable import from_table
    from astropy.io.votable.tree import Info, Param as VOParam

    vot = from_table(to_astropy(table, where))
    element = vot.get_first_table()
    schema_name = (table.schema.metadata or {}).get(b"ysocensus.schema", b"").decode()
    if schema_name:
        element.name = schema_name
    for p in params:
        if p.value is None:
            continue
        datatype = "double" if isinstance(p.value, float) else "long" if isinstance(p.value, int) else "char"
        param = VOParam(vot, name=p.name, value=p.value, datatype=datatype, unit=p.unit or None,
                        arraysize="*" if datatype == "char" else None)
        param.description = p.description or None
        element.params.append(param)
    if meta_json is not None:
        vot.resources[0].infos.append(Info(name="ysocensus.meta", value=meta_json))
    vot.to_xml(str(target), tabledata_format="binary2")


def json_default(obj):
    """``json.dumps`` fallback for the run metadata: numpy scalars and arrays as Python values, anything else as text."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def one_line(exc: BaseException | str, limit: int = 300) -> str:
    """A library's message on one line of at most ``limit`` characters (torch's and astropy's can run to
    paragraphs): whitespace collapsed; an over-long parenthesised detail cut to its first sentence."""
    flat = " ".join(str(exc).split())
    if len(flat) > limit:
        m = re.match(r"^(.*?\()(.*)(\)[^()]*)$", flat)
        if m:
            detail = m.group(2).split(". ")[0]
            flat = m.group(1) + (detail if len(detail) <= 120 else detail[:119] + "…") + m.group(3)
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"
