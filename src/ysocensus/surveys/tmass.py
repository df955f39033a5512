"""2MASS Point Source Catalog: J, H, Ks profile-fit photometry, errors and completeness.

Numbers from the 2MASS Explanatory Supplement (Cutri et al. 2003; Skrutskie et al. 2006): the PSC
is ≥ 99% complete in unconfused regions to J = 15.8, H = 15.1, Ks = 14.3, which are also its 10σ
levels; photometric uncertainties are ≈ 0.02–0.03 mag for bright unsaturated stars and grow as
background-limited photon noise towards the limit (σ ≈ 0.1 mag at the 10σ level, ≈ 0.2 at SNR 5).
Stars brighter than ≈ 9 mag saturate the 1.3 s exposures and are measured on the 51 ms "Read 1"
frames; below J ≈ 4, H ≈ 4, Ks ≈ 3.5 even these saturate and the photometry carries ≈ 0.2–0.3 mag
errors (kept, with σ ≥ ``saturated_error``).

Selection: each band is detected with a logistic completeness (99% at the band limit, width 0.15 mag,
so 50% ≈ 0.7 mag fainter, where SNR ≈ 5); a band that is not detected is null (the PSC lists an
upper limit there, not a magnitude). The source itself is in the PSC when at least one band is
detected. Single epoch: variability moves the magnitude at full amplitude, but the reported ``*_msigcom``
is the measurement's own error (photon noise, flat-fielding, zero point; Cutri et al. 2003 §IV.4) and does
not know about it.

The noise is drawn with the uncertainty at the star's true magnitude, but the catalog's ``*_msigcom`` is computed
from what was measured (the profile-fit flux and its photon noise against the measured background), so it is the
uncertainty at the *measured* magnitude (``sigma_from_measured``). Reported at the true magnitude, a faint star's
σ would be an exact, noise-free function of its true brightness, which no real catalog gives.
"""

from __future__ import annotations

import numpy as np

from ysocensus import io
from ysocensus.surveys.selection import background_limited_error, detection_probability, m50_from_limit

DEFAULTS = dict(limits={"j": 15.8, "h": 15.1, "ks": 14.3}, completeness_at_limit=0.99, width=0.15,
                error_floor=0.022, saturation={"j": 4.0, "h": 4.0, "ks": 3.5}, saturated_error=0.2,
                sigma_from_measured=True)
_BANDS = ("j", "h", "ks")
#: catalog columns of the bands (``_BANDS`` order) and of their uncertainties, as in ``io``
NAMES = io.TMASS_BANDS
ERRORS = io.TMASS_ERRORS


def _merge(params):
    p = dict(DEFAULTS, **(params or {}))
    for k in ("limits", "saturation"):
        p[k] = dict(DEFAULTS[k], **((params or {}).get(k) or {}))
    return p


def magnitude_error(band: str, mag, params: dict | None = None) -> np.ndarray:
    """Photometric uncertainty (mag) of a 2MASS band at magnitude ``mag``: 10σ at the band limit."""
    p = _merge(params)
    sig = background_limited_error(mag, p["limits"][band], 10.0, p["error_floor"])
    return np.where(np.asarray(mag) < p["saturation"][band], np.maximum(sig, p["saturated_error"]), sig)


def observe(true_mags: np.ndarray, var_sigma: np.ndarray | None, z: np.ndarray, u: np.ndarray,
            keep: np.ndarray, params: dict | None = None) -> dict:
    """2MASS J, H, Ks of stars with true magnitudes (N, 3); ``z``, ``u`` (3, N); NaN = null."""
    p = _merge(params)
    out, any_det = {}, np.zeros(true_mags.shape[0], bool)
    for j, band in enumerate(_BANDS):
        m50 = m50_from_limit(p["limits"][band], p["completeness_at_limit"], p["width"])
        det = keep & (u[j] < detection_probability(true_mags[:, j], m50, p["width"]))
        sig = magnitude_error(band, true_mags[:, j], p).astype(np.float32)
        scatter = sig if var_sigma is None else np.sqrt(sig**2 + var_sigma[:, j] ** 2)
        mag = np.where(det, true_mags[:, j] + scatter * z[j], np.nan).astype(np.float32)
        reported = magnitude_error(band, mag, p) if p["sigma_from_measured"] else sig
        out[NAMES[j]] = mag
        out[ERRORS[j]] = np.where(det, reported, np.nan).astype(np.float32)
        any_det |= det
    out["detected"] = any_det
    return out
