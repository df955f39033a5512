"""Small synthetic catalogs in the io.CATALOG schema (with survey-like nulls) for inference tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ysocensus import io


def make_catalog(n: int = 500, seed: int = 1, all_null_rows: int = 3) -> pd.DataFrame:
    """A catalog frame: every io.CATALOG column; surveys missing at random; the last rows all-null."""
    rng = np.random.default_rng(seed)
    d = {"source_id": (np.int64(7) << 32) | np.arange(n, dtype=np.int64),
         "tile": np.full(n, 7, np.int32)}
    l, b = rng.uniform(0, 360, n), rng.uniform(-30, 30, n)
    d["l"], d["b"] = l, b
    from astropy import units as u
    from astropy.coordinates import SkyCoord
    icrs = SkyCoord(l=l * u.deg, b=b * u.deg, frame="galactic").icrs
    d["ra"], d["dec"] = icrs.ra.deg, icrs.dec.deg
    g = rng.uniform(8, 20.5, n)
    dist = rng.uniform(50, 2000, n)
    d["parallax"] = 1000 / dist + rng.normal(0, 0.05, n)
    d["parallax_error"] = np.full(n, 0.05, np.float32)
    for k, (m, foe) in enumerate(zip(io.GAIA_BANDS, io.GAIA_FLUX_OVER_ERROR)):
        d[m] = (g + [0, 0.4, -0.6][k]).astype(np.float32)
        d[foe] = np.full(n, 500.0, np.float32)
    for k, (m, e) in enumerate(zip(io.TMASS_BANDS + io.WISE_BANDS, io.TMASS_ERRORS + io.WISE_ERRORS)):
        d[m] = (g - 1.0 - 0.3 * k).astype(np.float32)
        d[e] = np.full(n, 0.03, np.float32)
    for lab, e, (lo, hi, s) in zip(io.LAMOST_LABELS, io.LAMOST_ERRORS,
                                   [(3500, 7000, 100), (3, 5, 0.1), (-1, 0.3, 0.05), (0, 0.5, 0.02),
                                    (-5, 20, 0.5)]):
        d[lab] = rng.uniform(lo, hi, n).astype(np.float32)
        d[e] = np.full(n, s, np.float32)
    frame = pd.DataFrame(d)
    # missingness by survey
    no_tmass = rng.random(n) < 0.3
    no_wise = rng.random(n) < 0.4
    no_lamost = rng.random(n) < 0.7
    no_plx = rng.random(n) < 0.1
    frame.loc[no_tmass, list(io.TMASS_BANDS + io.TMASS_ERRORS)] = np.nan
    frame.loc[no_wise, list(io.WISE_BANDS + io.WISE_ERRORS)] = np.nan
    frame.loc[no_lamost, list(io.LAMOST_LABELS + io.LAMOST_ERRORS)] = np.nan
    frame.loc[no_plx, ["parallax", "parallax_error"]] = np.nan
    if all_null_rows:
        meas = [c for c in io.CATALOG.names if c not in ("source_id", "tile", "l", "b", "ra", "dec", "survey_mask")]
        frame.loc[frame.index[-all_null_rows:], meas] = np.nan
    mask = np.zeros(n, np.int32)
    for i, c in enumerate(io.MEASUREMENT_BITS):
        mask |= np.where(frame[c].notna(), 1 << i, 0).astype(np.int32)
    frame["survey_mask"] = mask
    return frame


def write_catalog(frame: pd.DataFrame, path, fmt: str = "parquet") -> None:
    """Write ``frame`` as Parquet (io schema), CSV or FITS (nulls as empty / NaN)."""
    if fmt == "parquet" and list(frame.columns) == io.CATALOG.names and frame.notna()[["l", "b"]].all().all():
        io.write_table(frame, path, io.CATALOG)
    elif fmt == "parquet":
        frame.to_parquet(path, index=False)
    elif fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "fits":
        from astropy.table import Table
        Table.from_pandas(frame).write(path, format="fits", overwrite=True)
    else:
        raise ValueError(fmt)
