"""LAMOST-like low-resolution spectroscopy: labels (T_eff, log g, [Fe/H]) and Li 6708 / Hα indices.

Footprint and targeting (LAMOST DR8–DR10 LRS; Cui et al. 2012, Zhao et al. 2012 LEGUE): the
telescope at Xinglong observes dec > −10° (to the north pole); spectra of useful S/N are obtained
for 9 ≲ G ≲ 17.8 (r < 17.8 for the survey, bright limit from fibre saturation), and only a fraction
of the stars in that range is targeted (≈ 10–20 million spectra among ≈ 10⁸ such stars;
``targeting_fraction``, default 0.3).

S/N per pixel in the g/r band, photon- and sky-limited: S/N ≈ 10 at G = 17.8, rising as the flux
(background-limited) and capped at 300 (fibre / flat-field systematics). Spectra with S/N below
``snr_min`` (6) are not published.

Labels from the LASP pipeline exist only for AFGK-type stars, ≈ 3700 < T_eff < 8750 K; M stars and hot
stars get no labels (null), but their line indices are still measured. Label uncertainties vs S/N,
σ = sqrt(a² + (b / SNR)²), match the LASP internal precision (Luo et al. 2015; Xiang et al. 2017):
T_eff (50 K, 2000 K) → 206 K at S/N 10 and 64 K at 50; log g (0.07, 2.5) → 0.26 / 0.09 dex; [Fe/H]
(0.04, 1.5) → 0.16 / 0.05 dex. Line indices at R ≈ 1800: σ(EW Li) = sqrt(0.02² + (1.0/SNR)²) Å
(0.1 Å at S/N 10, the usual LAMOST Li detection threshold), σ(EW Hα) = sqrt(0.1² + (5/SNR)²) Å.
Radial velocities are not modelled.
"""

from __future__ import annotations

import numpy as np

from ysocensus import io
from ysocensus.surveys.selection import detection_probability

DEFAULTS = dict(dec_min=-10.0, dec_max=90.0, g_bright=9.0, g_faint=17.8, g_width=0.15,
                targeting_fraction=0.3, snr_at_faint=10.0, snr_max=300.0, snr_min=6.0,
                teff_range=(3700.0, 8750.0),
                errors={"teff": [50.0, 2000.0], "logg": [0.07, 2.5], "feh": [0.04, 1.5],
                        "ewli": [0.02, 1.0], "ewha": [0.1, 5.0]})
#: catalog columns of the labels (``_ERRKEY`` order) and of their uncertainties, as in ``io``
LABELS = io.LAMOST_LABELS
ERRORS = io.LAMOST_ERRORS
_ERRKEY = ("teff", "logg", "feh", "ewli", "ewha")


def _merge(params):
    p = dict(DEFAULTS, **(params or {}))
    p["errors"] = dict(DEFAULTS["errors"], **((params or {}).get("errors") or {}))
    return p


def snr(g, params: dict | None = None) -> np.ndarray:
    """S/N per pixel of a LAMOST LRS spectrum of a star of Gaia G magnitude ``g``."""
    p = _merge(params)
    s = p["snr_at_faint"] * 10.0 ** (-0.4 * (np.asarray(g, np.float32) - p["g_faint"]))
    return np.minimum(s, p["snr_max"]).astype(np.float32)


def label_error(name: str, snr_) -> np.ndarray:
    a, b = DEFAULTS["errors"][name]
    return np.sqrt(np.float32(a) ** 2 + (np.float32(b) / snr_) ** 2).astype(np.float32)


def in_footprint(dec, params: dict | None = None) -> np.ndarray:
    p = _merge(params)
    dec = np.asarray(dec)
    return (dec > p["dec_min"]) & (dec <= p["dec_max"])


def observe(g_true, dec, truth: dict, z: np.ndarray, u: np.ndarray, keep: np.ndarray,
            params: dict | None = None) -> dict:
    """LAMOST labels and indices. ``truth``: teff_k, logg, feh, ewli, ewha (true values);
    ``z`` (5, N) normals, ``u`` (2, N) uniforms (targeting, magnitude edge); NaN = null."""
    p = _merge(params)
    g = np.asarray(g_true, np.float32)
    s = snr(g, p)
    in_range = (g >= p["g_bright"]) & (u[1] < detection_probability(g, p["g_faint"], p["g_width"]))
    obs = keep & in_footprint(dec, p) & in_range & (u[0] < p["targeting_fraction"]) & (s >= p["snr_min"])
    teff = np.asarray(truth["teff_k"], np.float32)
    labelled = obs & (teff > p["teff_range"][0]) & (teff < p["teff_range"][1])
    out = {}
    for j, (lab, err, key) in enumerate(zip(LABELS, ERRORS, _ERRKEY)):
        a, b = p["errors"][key]
        sig = np.sqrt(np.float32(a) ** 2 + (np.float32(b) / s) ** 2).astype(np.float32)
        have = labelled if j < 3 else obs
        tv = np.asarray(truth[("teff_k", "logg", "feh", "ewli", "ewha")[j]], np.float32)
        out[lab] = np.where(have, tv + sig * z[j], np.nan).astype(np.float32)
        out[err] = np.where(have, sig, np.nan).astype(np.float32)
    out["detected"] = obs
    return out
