"""AllWISE: W1–W4 profile-fit photometry (w?mpro, w?sigmpro), errors and completeness.

Numbers from the AllWISE Explanatory Supplement (Cutri et al. 2013; Wright et al. 2010): 5σ
point-source sensitivities ≈ 0.054, 0.071, 0.73 and 5 mJy, i.e. W1 ≈ 16.9, W2 ≈ 16.0, W3 ≈ 11.5,
W4 ≈ 8.0 Vega mag on the ecliptic (deeper towards the poles) — W1/W2 deep, W3/W4 shallow, so
ordinary photospheres are mostly missing in W3/W4 unless nearby, while disk-bearing stars are
found there. Saturation sets in at W1 ≈ 8.0, W2 ≈ 6.7, W3 ≈ 3.8, W4 ≈ −0.4; profile fitting of the
PSF wings recovers brighter sources with larger errors (σ ≥ ``saturated_error``). Bright-star
error floor ≈ 0.02–0.03 (W1/W2), 0.03 (W3), 0.05 (W4) mag.

In the Galactic plane the bright, structured mid-IR background makes W3/W4 markedly shallower: the
5σ limit is brightened by ``plane_loss_mag`` × exp(−|b| / ``plane_scale_deg``) (default 1.5 mag, 5°).

Selection: per band, a logistic completeness with 50% at the 5σ limit (width 0.2 mag); a band
without a detection is null (AllWISE gives a 2σ upper limit in w?mpro with a null w?sigmpro;
here the magnitude itself is null). The source is in the catalog when at least one band is
detected. The w?mpro of AllWISE fits all single exposures of (mostly) two epochs ~6 months apart,
so variability moves the magnitude by σ_var / sqrt(2); the reported ``w?sigmpro`` is the profile-fit
measurement error and carries no variability term (Cutri et al. 2013, §II.1.c; variability is flagged
separately in ``var_flg``). It is the error of the measured flux, so it is taken at the measured magnitude, while
the noise is drawn with the error at the true one (``sigma_from_measured``; as ``surveys.tmass``): at the true
magnitude a faint star's σ would tell its true brightness exactly.
"""

from __future__ import annotations

import numpy as np

from ysocensus import io
from ysocensus.surveys.selection import background_limited_error, detection_probability

DEFAULTS = dict(limits={"w1": 16.9, "w2": 16.0, "w3": 11.5, "w4": 8.0}, width=0.2,
                error_floor={"w1": 0.022, "w2": 0.022, "w3": 0.03, "w4": 0.05},
                saturation={"w1": 8.0, "w2": 6.7, "w3": 3.8, "w4": -0.4}, saturated_error=0.05,
                plane_loss_mag=1.5, plane_scale_deg=5.0, n_epochs=2, sigma_from_measured=True)
_BANDS = ("w1", "w2", "w3", "w4")
#: catalog columns of the bands (``_BANDS`` order) and of their uncertainties, as in ``io``
NAMES = io.WISE_BANDS
ERRORS = io.WISE_ERRORS


def _merge(params):
    p = dict(DEFAULTS, **(params or {}))
    for k in ("limits", "error_floor", "saturation"):
        p[k] = dict(DEFAULTS[k], **((params or {}).get(k) or {}))
    return p


def limit(band: str, b_deg=None, params: dict | None = None):
    """5σ limit of a band (Vega mag), shallower near the Galactic plane in W3/W4."""
    p = _merge(params)
    lim = np.float32(p["limits"][band])
    if b_deg is not None and band in ("w3", "w4"):
        lim = lim - np.float32(p["plane_loss_mag"]) * np.exp(-np.abs(np.asarray(b_deg, np.float32))
                                                             / np.float32(p["plane_scale_deg"]))
    return lim


def magnitude_error(band: str, mag, b_deg=None, params: dict | None = None) -> np.ndarray:
    p = _merge(params)
    sig = background_limited_error(np.asarray(mag, np.float32) - (limit(band, b_deg, p) - p["limits"][band]),
                                   p["limits"][band], 5.0, p["error_floor"][band])
    return np.where(np.asarray(mag) < p["saturation"][band], np.maximum(sig, p["saturated_error"]), sig)


def observe(true_mags: np.ndarray, b_deg: np.ndarray, var_sigma: np.ndarray | None, z: np.ndarray,
            u: np.ndarray, keep: np.ndarray, params: dict | None = None) -> dict:
    """AllWISE W1–W4 of stars with true magnitudes (N, 4); ``z``, ``u`` (4, N); NaN = null."""
    p = _merge(params)
    out, any_det = {}, np.zeros(true_mags.shape[0], bool)
    for j, band in enumerate(_BANDS):
        det = keep & (u[j] < detection_probability(true_mags[:, j], limit(band, b_deg, p), p["width"]))
        sig = magnitude_error(band, true_mags[:, j], b_deg, p).astype(np.float32)
        scatter = sig if var_sigma is None else np.sqrt(sig**2 + var_sigma[:, j] ** 2 / np.float32(p["n_epochs"]))
        mag = np.where(det, true_mags[:, j] + scatter * z[j], np.nan).astype(np.float32)
        reported = magnitude_error(band, mag, b_deg, p) if p["sigma_from_measured"] else sig
        out[NAMES[j]] = mag
        out[ERRORS[j]] = np.where(det, reported, np.nan).astype(np.float32)
        any_det |= det
    out["detected"] = any_det
    return out
