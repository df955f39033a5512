"""Survey error models: the uncertainty of a measurement as a function of magnitude, for filling gaps.

Used where a catalog has a measurement but not its uncertainty (the column is absent, or null in a row
where the value is present). The model (``ysocensus.model.tokens``) treats a value without a usable
uncertainty as missing, so filling it keeps the information; every filled uncertainty is reported in the
posterior's ``note`` column, in the run report and in the log.

The error models are the observe stage's own (``ysocensus.surveys``, the ones the simulated training
catalogs were made with), at their default parameters:

- **Gaia DR3** (``surveys.gaia``, pygaia DR3 sky-averaged): σ of G, BP, RP vs the band's magnitude, returned
  as ``phot_*_mean_flux_over_error = 2.5 / ln 10 / σ_mag``; ``parallax_error`` (mas) vs G — a row without G
  keeps a null parallax error, so its parallax is not used (``note`` says so).
- **2MASS PSC** (``surveys.tmass``): background-limited, σ = √(0.022² + (1.0857/SNR)²), SNR 10 at
  J = 15.8, H = 15.1, Ks = 14.3; ≥ 0.2 mag where saturated.
- **AllWISE** (``surveys.wise``): the same law with SNR 5 at W1–W4 = 16.9, 16.0, 11.5, 8.0 mag (W3/W4
  shallower near the Galactic plane), floors 0.022/0.022/0.03/0.05 mag.
- **LAMOST-like** (``surveys.lamost``): S/N 10 at G = 17.8 rising with flux (cap 300); σ = √(a² + (b/SNR)²)
  with (a, b) = Teff (50, 2000) K, log g (0.07, 2.5), [Fe/H] (0.04, 1.5), EW Li (0.02, 1.0) Å,
  EW Hα (0.1, 5.0) Å. A row without G is given S/N 10 (the survey's faint limit: the conservative choice).
"""

from __future__ import annotations

import math
from typing import Callable, Mapping

import numpy as np

from ysocensus import io
from ysocensus.surveys import gaia, lamost, tmass, wise

_GAIA_SIGMA = 2.5 / math.log(10.0)
#: catalog column -> the survey module's band / label key
_GAIA_BAND = dict(zip(io.GAIA_BANDS, ("g", "bp", "rp"), strict=True))
_LAMOST_KEY = dict(zip(io.LAMOST_LABELS, ("teff", "logg", "feh", "ewli", "ewha"), strict=True))
_G_MAG = io.GAIA_BANDS[0]


def gaia_flux_over_error(mag_column: str, mag: np.ndarray) -> np.ndarray:
    """Gaia DR3 ``phot_*_mean_flux_over_error`` expected at the band's magnitude."""
    sigma = np.asarray(gaia.magnitude_error(_GAIA_BAND[mag_column], mag), np.float64)
    return _GAIA_SIGMA / sigma


def gaia_parallax_error(g_mag: np.ndarray) -> np.ndarray:
    """Gaia DR3 sky-averaged parallax uncertainty (mas) at G; NaN where G is unknown."""
    g = np.asarray(g_mag, np.float64)
    out = np.full(g.shape, np.nan)
    ok = np.isfinite(g)
    if ok.any():
        out[ok] = gaia.parallax_error(g[ok])
    return out


def tmass_sigma(mag_column: str, mag: np.ndarray) -> np.ndarray:
    """2MASS ``*_msigcom`` (mag) at magnitude ``mag``."""
    return np.asarray(tmass.magnitude_error(mag_column.removesuffix("_m"), mag), np.float64)


def wise_sigma(mag_column: str, mag: np.ndarray, b_deg: np.ndarray | None = None) -> np.ndarray:
    """AllWISE ``w*sigmpro`` (mag) at magnitude ``mag`` (and Galactic latitude, for W3/W4)."""
    if b_deg is not None:
        b_deg = np.where(np.isfinite(b_deg), b_deg, 90.0)  # unknown latitude: the nominal depth
    return np.asarray(wise.magnitude_error(mag_column.removesuffix("mpro"), mag, b_deg), np.float64)


def lamost_sigma(label: str, g_mag: np.ndarray | None, n: int) -> np.ndarray:
    """LAMOST-like label uncertainty (label units) from G (S/N 10 where G is unknown)."""
    faint = lamost.DEFAULTS["g_faint"]
    g = np.full(n, faint) if g_mag is None else np.where(np.isfinite(g_mag), g_mag, faint)
    return np.asarray(lamost.label_error(_LAMOST_KEY[label], lamost.snr(g)), np.float64)


#: uncertainty column → (value column it describes, model f(columns, n) → uncertainty in the column's unit)
ERROR_MODELS: dict[str, tuple[str, Callable[[Mapping[str, np.ndarray], int], np.ndarray]]] = {}
for _m, _e in zip(io.GAIA_BANDS, io.GAIA_FLUX_OVER_ERROR):
    ERROR_MODELS[_e] = (_m, lambda c, n, _m=_m: gaia_flux_over_error(_m, c[_m]))
ERROR_MODELS["parallax_error"] = ("parallax", lambda c, n: gaia_parallax_error(c[_G_MAG]))
for _m, _e in zip(io.TMASS_BANDS, io.TMASS_ERRORS):
    ERROR_MODELS[_e] = (_m, lambda c, n, _m=_m: tmass_sigma(_m, c[_m]))
for _m, _e in zip(io.WISE_BANDS, io.WISE_ERRORS):
    ERROR_MODELS[_e] = (_m, lambda c, n, _m=_m: wise_sigma(_m, c[_m], c.get("b")))
for _m, _e in zip(io.LAMOST_LABELS, io.LAMOST_ERRORS):
    ERROR_MODELS[_e] = (_m, lambda c, n, _m=_m: lamost_sigma(_m, c.get(_G_MAG), n))

#: value column → its uncertainty column, in io.MEASUREMENT_BITS order
ERROR_OF = {value: err for err, (value, _) in ERROR_MODELS.items()}
ERROR_OF = {v: ERROR_OF[v] for v in io.MEASUREMENT_BITS}


def fill(columns: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    """Fill, in place, uncertainties that are NaN where their value is finite; return what was filled.

    ``columns`` holds float arrays for every value and uncertainty column (NaN = missing) and ``b``.
    The result maps each uncertainty column to the boolean mask of rows filled from its model (only
    columns with at least one filled row).
    """
    filled = {}
    for err, (value, model) in ERROR_MODELS.items():
        need = np.isfinite(columns[value]) & np.isnan(columns[err])
        if need.any():
            with np.errstate(all="ignore"):
                modelled = np.asarray(model(columns, n), np.float64)
            ok = need & np.isfinite(modelled) & (modelled > 0)
            columns[err] = np.where(ok, modelled, columns[err])
            if ok.any():
                filled[err] = ok
    return filled
