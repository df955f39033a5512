"""HEALPix maps (NESTED) of YSO counts per age bin and median YSO age, and their FITS files.

Age-bin probabilities come from each star's posterior percentiles: a two-piece normal in log10 age with
median ``q50``, lower width ``q50 − q16`` and upper width ``q84 − q50`` (its 16/50/84th percentiles are exactly
those of the posterior; the tails beyond are Gaussian). A star adds ``weight × P(age in bin)`` to its pixel, where
``weight`` is the number of real stars it stands for (the population's 1/thinning).
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
from scipy.special import ndtr

from ysocensus import io

#: the units written into the FITS headers
COUNT_UNIT = "stars/pixel"


def log10_edges(age_bins_myr: Sequence[float]) -> np.ndarray:
    """log10(age/yr) of bin edges given in Myr (0 → −inf)."""
    edges = np.asarray(age_bins_myr, float)
    if np.any(np.diff(edges) <= 0):
        raise ValueError(f"maps.age_bins_myr must increase: {list(age_bins_myr)}")
    with np.errstate(divide="ignore"):
        return np.log10(edges * 1e6)


def split_normal_cdf(x: np.ndarray, q16: np.ndarray, q50: np.ndarray, q84: np.ndarray) -> np.ndarray:
    """CDF at ``x`` [..., k] of two-piece normals through (q16, q50, q84) [...] (broadcast on the last axis).

    Half the probability on each side of the median: Φ((x − q50)/(q50 − q16)) below it and
    Φ((x − q50)/(q84 − q50)) above, so the 16th, 50th and 84th percentiles are exactly q16, q50, q84.
    """
    q16, q50, q84 = (np.asarray(a, np.float64)[..., None] for a in (q16, q50, q84))
    lo = np.maximum(q50 - q16, 1e-6)
    hi = np.maximum(q84 - q50, 1e-6)
    x = np.asarray(x, np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(x <= q50, ndtr((x - q50) / lo), ndtr((x - q50) / hi))


def age_bin_probabilities(q16, q50, q84, edges_log10: np.ndarray) -> np.ndarray:
    """P(age in each bin) [n, n_bins] from log10-age percentiles; rows with NaN percentiles give 0."""
    cdf = split_normal_cdf(edges_log10[None, :], q16, q50, q84)
    cdf = np.where(np.isneginf(edges_log10)[None, :], 0.0, cdf)
    p = np.diff(cdf, axis=1)
    return np.nan_to_num(np.clip(p, 0.0, 1.0))


def pixels(nside: int, l_deg: np.ndarray, b_deg: np.ndarray) -> np.ndarray:
    import healpy as hp

    return hp.ang2pix(nside, np.asarray(l_deg, float), np.asarray(b_deg, float), nest=True, lonlat=True)


def count_maps(pix: np.ndarray, weights: np.ndarray, probs: np.ndarray, nside: int) -> np.ndarray:
    """[n_bins, npix] sums of weight × probability per pixel."""
    npix = 12 * nside * nside
    return np.stack([np.bincount(pix, weights=weights * probs[:, k], minlength=npix)
                     for k in range(probs.shape[1])])


def weighted_median_by_pixel(pix: np.ndarray, values: np.ndarray, weights: np.ndarray, npix: int) -> np.ndarray:
    """Weighted median of ``values`` in every pixel (NaN where a pixel has no positive weight)."""
    out = np.full(npix, np.nan)
    ok = np.isfinite(values) & (weights > 0)
    pix, values, weights = pix[ok], values[ok], weights[ok]
    if not len(pix):
        return out
    order = np.lexsort((values, pix))
    pix, values, weights = pix[order], values[order], weights[order]
    cum = np.cumsum(weights)
    starts = np.flatnonzero(np.r_[True, pix[1:] != pix[:-1]])
    ends = np.r_[starts[1:], len(pix)]
    base = np.r_[0.0, cum[:-1]][starts]
    total = cum[ends - 1] - base
    half = base + 0.5 * total
    idx = np.searchsorted(cum, half)          # first element whose cumulative weight reaches half
    out[pix[starts]] = values[np.clip(idx, starts, ends - 1)]
    return out


def write_healpix(path, maps: Mapping[str, np.ndarray], units: Mapping[str, str], nside: int,
                  extra_header: Sequence[tuple[str, object, str]] = ()) -> None:
    """Write NESTED HEALPix maps (one column each, Galactic coordinates) atomically with units in the header."""
    import healpy as hp

    names = list(maps)
    header = [("COORDSYS", "G", "Galactic"), ("ORIGIN", "ysocensus", "")] + list(extra_header)
    with io.atomic_path(path) as tmp:
        hp.write_map(str(tmp), [np.asarray(maps[n], np.float64) for n in names], nest=True, coord="G",
                     column_names=names, column_units=[units[n] for n in names], dtype=np.float64,
                     extra_header=header, overwrite=True)
    # healpy writes through its own file name; atomic_path renames it


def read_healpix(path) -> tuple[dict[str, np.ndarray], dict]:
    """Maps (by column name, NESTED) and the header of a file written by :func:`write_healpix`."""
    from astropy.io import fits

    with fits.open(path) as hdul:
        hdu = hdul[1]
        cols = {c.name: np.asarray(hdu.data[c.name], np.float64).ravel() for c in hdu.columns}
        header = dict(hdu.header)
        units = {c.name: c.unit for c in hdu.columns}
    header["units"] = units
    return cols, header


def pixel_area_deg2(nside: int) -> float:
    return 4 * math.pi * (180 / math.pi) ** 2 / (12 * nside * nside)
