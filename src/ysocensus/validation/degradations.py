"""Held-out simulated catalogs degraded the way users' catalogs are: the "catalog as users supply it" checks.

A network can be calibrated on complete simulated columns and still fail on what users bring. Each
degradation turns a held-out table (``test_population.parquet`` / ``test.parquet``) into what a user's
catalog would hold, and ``validate`` reports the same calibration and P(young) figures for it:

- ``no_sigma``: every uncertainty column null (a literature table of magnitudes and parallaxes): the values
  are read without their σ (``tokens.VALUE_ONLY``).
- ``gaia_unmatched``: 2MASS, AllWISE and LAMOST never cross-matched: their columns null and not searched, so
  they are marginalised (``io.SEARCHED_MASK``), not read as non-detections.
- ``gaia_unmatched_no_sigma``: both, the columns of a Gaia query pasted into a literature table.
- ``lamost_unmatched``: Gaia with the archive's 2MASS and AllWISE cross-matches but no LAMOST, the commonest real
  catalog: LAMOST's columns null and not searched (marginalised), the other surveys' absences still
  non-detections.
- ``lamost_unmatched_no_sigma``: the same without uncertainties (most literature membership tables).

Gaia DR2 photometry (a different G passband and error budget) is not simulated, so it is not among them.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ysocensus import io
from ysocensus.inference.error_models import ERROR_OF

#: every uncertainty column (io.MEASUREMENT_BITS order)
_ERRORS = tuple(ERROR_OF.values())
_NON_GAIA = io.TMASS_BANDS + io.TMASS_ERRORS + io.WISE_BANDS + io.WISE_ERRORS + io.LAMOST_LABELS + io.LAMOST_ERRORS
_GAIA_BITS = sum(1 << io.MEASUREMENT_BITS.index(c) for c in ("parallax",) + io.GAIA_BANDS)
_LAMOST = io.LAMOST_LABELS + io.LAMOST_ERRORS
_LAMOST_BITS = sum(1 << io.MEASUREMENT_BITS.index(c) for c in io.LAMOST_LABELS)
_ALL_BITS = (1 << len(io.MEASUREMENT_BITS)) - 1

DEGRADATIONS = ("no_sigma", "gaia_unmatched", "gaia_unmatched_no_sigma", "lamost_unmatched",
                "lamost_unmatched_no_sigma")
#: the surveys whose columns each catalog keeps ("full": the table as it is)
SURVEYS_KEPT = {"full": io.SURVEYS, "no_sigma": io.SURVEYS, "gaia_unmatched": ("gaia",),
                "gaia_unmatched_no_sigma": ("gaia",), "lamost_unmatched": ("gaia", "tmass", "wise"),
                "lamost_unmatched_no_sigma": ("gaia", "tmass", "wise")}


def _null(table: pa.Table, columns) -> pa.Table:
    for c in columns:
        if c in table.column_names:
            i = table.column_names.index(c)
            table = table.set_column(i, c, pa.nulls(table.num_rows, table.schema.field(c).type))
    return table


def degrade(table: pa.Table, name: str) -> pa.Table:
    """``table`` (catalog columns, truth optional) as a user's catalog of kind ``name`` (``DEGRADATIONS``)."""
    if name not in DEGRADATIONS:
        raise ValueError(f"unknown degradation {name!r}; choose from {DEGRADATIONS}")
    if name.endswith("no_sigma"):
        table = _null(table, _ERRORS)
    if name.startswith("gaia_unmatched"):
        table = _searched(_null(table, _NON_GAIA), np.full(table.num_rows, _GAIA_BITS, np.int64))
    if name.startswith("lamost_unmatched"):
        before = (table.column(io.SEARCHED_MASK).to_numpy(zero_copy_only=False).astype(np.int64)
                  if io.SEARCHED_MASK in table.column_names else np.full(table.num_rows, _ALL_BITS, np.int64))
        table = _searched(_null(table, _LAMOST), before & ~_LAMOST_BITS)
    return table


def _searched(table: pa.Table, bits: np.ndarray) -> pa.Table:
    """``table`` with its ``io.SEARCHED_MASK`` column set to ``bits`` (per row, io.MEASUREMENT_BITS order)."""
    if io.SEARCHED_MASK in table.column_names:
        table = table.drop_columns([io.SEARCHED_MASK])
    return table.append_column(io.SEARCHED_MASK, pa.array(bits.astype(np.int32)))
