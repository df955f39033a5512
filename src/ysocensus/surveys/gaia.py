"""Gaia DR3: G, BP, RP mean photometry and parallax with DR3 uncertainties, and Gaia's selection.

Uncertainties from ``pygaia`` (Gaia DR3 performance, sky-averaged): parallax σ_ϖ(G) (12.9 µas at
G ≤ 13, 79 µas at 17, 282 µas at 19, 938 µas at 20.5) and mean-magnitude uncertainties σ_G(G),
σ_BP(BP), σ_RP(RP) for DR3's typical numbers of transits. pygaia's photometric relation holds for
4 ≤ m ≤ 21: brighter it is held constant; fainter, the background-limited law σ ∝ 10^(0.4 (m − 21)) is
continued. The curves are tabulated once (0.01 mag steps) and interpolated.

Reported uncertainties follow the archive: ``parallax_error`` (mas) and
``phot_*_mean_flux_over_error`` = 1 / (σ_mag · ln10 / 2.5). The archive's mean-flux error is the scatter
of the epoch fluxes divided by the square root of their number (Riello et al. 2021, §3; Evans et al. 2018),
so variability of the source enters both the mean and its error as σ_var / √n: for G, n is the number of
per-CCD measurements (``phot_g_n_obs`` ≈ ``ccd_per_transit`` × transits), for BP and RP the number of
transits (``phot_bp_n_obs``). The measurement noise averages down the same way: pygaia's curve is for DR3's
typical numbers (``N_REFERENCE``), and a star observed n times has σ × sqrt(N_REFERENCE / n) (the EDR3
uncertainty model, Riello et al. 2021, which pygaia implements). The number of transits depends on the scanning
law: it scales with the nominal scanning law's count at the star's ecliptic latitude β (``SCAN_LAW_TRANSITS``:
61 on the ecliptic, 144 at |β| ≈ 45°, 81 averaged over the sky), so a star near the ecliptic (Taurus, ρ Oph,
Upper Sco, Praesepe, Ruprecht 147) reports a σ ≈ 15 % larger than at the sky-average count (54 % larger than at
|β| ≈ 45°), and scatters log-normally about that (``n_transits_sigma_ln``) around ``n_transits_median`` (≈ 40
over DR3's 34 months) at the sky-averaged count. The network sees the star's position, so it can tell a σ excess
of the scanning law from one of variability.

The parallax uncertainty averages down the same way: pygaia's curve is the sky average, for DR3's median number of
transits (``N_REFERENCE["bp"]``, as the photometry's), and a star seen n times has σ_ϖ × sqrt(N_REFERENCE / n)
(``parallax_transits``; the astrometric solution's formal uncertainties follow the scanning law, Lindegren et al.
2021, A&A 649, A2), so a config with a longer release's ``n_transits_median`` shrinks σ_ϖ with the photometric σ
(only by the number of transits: the longer baseline's gain for the parallax is not modelled). Without it σ_ϖ would
be a fixed function of G, and a real σ_ϖ off that curve (a star near the ecliptic; a Gaia DR2 parallax, from 22
months instead of 34) would be a value never seen in training, rather than the less precise parallax it is.

The reported uncertainty is itself an estimate: the sample standard deviation of the n epoch values, which scatters
about the true one as sqrt(χ²_{n−1} / (n − 1)), independently in G, BP and RP (``sigma_sampling``). Without it the
three σ of a constant star would move together exactly, set by one number of transits, and any difference between
the bands' excesses would read as variability, that is as youth, where real constant stars differ by chance.

Selection (DR3 numbers): sources from G ≈ 3 (brighter stars are largely missing) to G ≈ 21
(completeness falls steeply at 20.5–21 in uncrowded fields; Fabricius et al. 2021, Cantat-Gaudin et al.
2023); BP/RP mean photometry is missing for a growing fraction of faint sources (≈ 1.54 of 1.81 billion
have BP/RP; the loss sets in near G ≈ 19.5–20.5, Riello et al. 2021); parallaxes (5/6-parameter
solutions) exist for ≈ 1.47 of 1.81 billion, the rest (2-parameter) mostly at G > 20 (Lindegren et al.
2021). All three are logistic edges in G (config ``observe.gaia``).
"""

from __future__ import annotations

import functools

import numpy as np

from ysocensus import io
from ysocensus.surveys.selection import detection_probability

#: the numbers of epoch measurements behind pygaia's DR3 curves (``pygaia.errors.photometric``: G per CCD, BP/RP
#: per transit); a star with n measurements has σ × sqrt(N_REFERENCE / n) (Riello et al. 2021, §3)
N_REFERENCE = {"g": 351.0, "bp": 40.0, "rp": 40.0}


#: Gaia's nominal scanning law: the end-of-mission number of focal-plane transits (both fields of view) in bins of
#: 0.05 in |sin β| (β: ecliptic latitude) centred on ``SCAN_LAW_SIN_BETA`` (de Bruijne 2012, Ap&SS 341, 31; the
#: table of error factors against β on ESA's Gaia science performance pages, as tabulated in PyGaia 1.x,
#: ``data/errorFactorVariationBeta.txt``, column N_obs). The count peaks where the spin axis's 45° precession cone
#: about the Sun direction makes scans pile up and is lowest on the ecliptic; its mean over the sky (uniform in
#: sin β) is 81.2. Only the ratio to that mean is used, so the release's length (DR3: 34 months) drops out.
SCAN_LAW_SIN_BETA = np.arange(0.025, 1.0, 0.05)
SCAN_LAW_TRANSITS = np.array([61, 61, 62, 62, 63, 65, 66, 68, 71, 75, 80, 87, 98, 122, 144, 106, 93, 85, 80, 75],
                             np.float64)
#: obliquity of the ecliptic at J2000 (IAU 1976: 84381.448″), for the ecliptic latitude of ICRS positions
OBLIQUITY_DEG = 23.4392911

DEFAULTS = dict(g_bright=3.0, g_faint=20.9, g_faint_width=0.12,
                bprp_faint=20.3, bprp_faint_width=0.35,
                parallax_faint=20.6, parallax_faint_width=0.3,
                # 0.256 = sqrt(0.35² − 0.238²): with the scanning law's own spread over the sky (σ_ln 0.238 of
                # SCAN_LAW_TRANSITS) the total star-to-star spread stays the 0.35 drawn before it
                n_transits_median=40.0, n_transits_sigma_ln=0.256, n_transits_range=(10.0, 250.0),
                scan_law=True,
                ccd_per_transit=N_REFERENCE["g"] / N_REFERENCE["bp"],  # the median star gets pygaia's σ
                sigma_sampling=True, parallax_transits=True)
#: pygaia's names of the bands of io.GAIA_BANDS, in that order
BANDS = ("g", "bp", "rp")


@functools.lru_cache(maxsize=None)
def _mag_error_curve(band: str) -> tuple[np.ndarray, np.ndarray]:
    from pygaia.errors.photometric import magnitude_uncertainty

    grid = np.round(np.arange(4.0, 21.0 + 1e-9, 0.01), 2)
    return grid, (magnitude_uncertainty(band, grid, release="dr3") / 1000.0).astype(np.float64)


def magnitude_error(band: str, mag) -> np.ndarray:
    """DR3 uncertainty (mag) of the mean magnitude in ``band`` ('g', 'bp', 'rp') at magnitude ``mag``, for DR3's
    typical number of measurements (``N_REFERENCE``)."""
    grid, sig = _mag_error_curve(band)
    m = np.asarray(mag, np.float64)
    out = np.interp(np.clip(m, grid[0], grid[-1]), grid, sig)
    faint = m > grid[-1]
    out = np.where(faint, sig[-1] * 10.0 ** (0.4 * (m - grid[-1])), out)
    return out.astype(np.float32)


def parallax_error(g) -> np.ndarray:
    """DR3 sky-averaged parallax uncertainty (mas) at G (pygaia, arrays only)."""
    from pygaia.errors.astrometric import parallax_uncertainty

    g = np.clip(np.asarray(g, np.float64), 3.0, 25.0)
    return (parallax_uncertainty(np.atleast_1d(g), release="dr3") / 1000.0).astype(np.float32)


def sin_ecliptic_latitude(ra_deg, dec_deg) -> np.ndarray:
    """sin β of ICRS positions (degrees), β the ecliptic latitude (J2000 mean ecliptic, ``OBLIQUITY_DEG``)."""
    ra = np.radians(np.asarray(ra_deg, np.float64))
    dec = np.radians(np.asarray(dec_deg, np.float64))
    eps = np.radians(OBLIQUITY_DEG)
    return np.sin(dec) * np.cos(eps) - np.cos(dec) * np.sin(eps) * np.sin(ra)


def scan_law_factor(sin_beta) -> np.ndarray:
    """Number of transits at ecliptic latitude β relative to the sky average (``SCAN_LAW_TRANSITS``): 0.75 on the
    ecliptic, 1.77 at |β| ≈ 45°, linear in |sin β| between the table's bin centres; 1 (the sky average) where
    sin β is NaN (no position)."""
    s = np.abs(np.asarray(sin_beta, np.float64))
    factor = np.interp(s, SCAN_LAW_SIN_BETA, SCAN_LAW_TRANSITS) / SCAN_LAW_TRANSITS.mean()
    return np.where(np.isnan(s), 1.0, factor)


def n_observations(z_transits: np.ndarray, params: dict | None = None, sin_beta=None) -> np.ndarray:
    """Number of epoch measurements averaged into the mean magnitude, (N, 3) for G, BP, RP: per-CCD for G,
    per-transit for BP/RP, from one standard normal per star (``z_transits``) for its number of transits and, with
    ``scan_law`` on, the scanning law at its ecliptic latitude (``sin_beta``; None: the sky average)."""
    p = dict(DEFAULTS, **(params or {}))
    lo, hi = p["n_transits_range"]
    z = np.asarray(z_transits, np.float64)
    median = p["n_transits_median"] * (scan_law_factor(sin_beta) if p["scan_law"] and sin_beta is not None else 1.0)
    transits = np.clip(median * np.exp(p["n_transits_sigma_ln"] * z), lo, hi)
    return np.stack([transits * p["ccd_per_transit"], transits, transits], -1).astype(np.float32)


def observe(true_mags: np.ndarray, parallax_true: np.ndarray, var_sigma: np.ndarray | None,
            z: np.ndarray, u: np.ndarray, keep: np.ndarray, params: dict | None = None,
            z_transits: np.ndarray | None = None, sin_beta: np.ndarray | None = None,
            z_sigma: np.ndarray | None = None) -> dict:
    """Gaia measurements of stars with true magnitudes (N, 3) in G, BP, RP and true parallax (mas).

    ``z`` (4, N) standard normals (G, BP, RP, parallax noise), ``u`` (3, N) uniforms (G detection,
    BP/RP availability, parallax solution), ``keep`` (N,) bool (footprint / random loss / photometry
    exists), ``var_sigma`` (N, 3) rms variability (mag) or None, ``z_transits`` (N,) standard normals for
    the number of transits (None: the median everywhere), ``sin_beta`` (N,) sin of the ecliptic latitude for the
    scanning law (None: the sky average), ``z_sigma`` (3, N) standard normals for the sampling scatter of the
    reported G, BP, RP σ (None or ``sigma_sampling`` off: σ reported exactly). Returns archive columns (float
    arrays, NaN = null) and the boolean mask ``detected``.
    """
    p = dict(DEFAULTS, **(params or {}))
    n_obs = n_observations(np.zeros(len(true_mags)) if z_transits is None else z_transits, p, sin_beta)
    g = true_mags[:, 0]
    p_det = detection_probability(g, p["g_faint"], p["g_faint_width"]) * (g >= p["g_bright"])
    det = keep & (u[0] < p_det)
    has_bprp = det & (u[1] < detection_probability(g, p["bprp_faint"], p["bprp_faint_width"]))
    has_plx = det & (u[2] < detection_probability(g, p["parallax_faint"], p["parallax_faint_width"]))
    out = {}
    for j, (band, name, foe_name) in enumerate(zip(BANDS, io.GAIA_BANDS, io.GAIA_FLUX_OVER_ERROR)):
        have = det if j == 0 else has_bprp
        sig = noise_sigma(band, true_mags[:, j], n_obs[:, j])
        if var_sigma is not None:
            sig = np.sqrt(sig**2 + var_sigma[:, j] ** 2 / n_obs[:, j])
        mag = np.where(have, true_mags[:, j] + sig * z[j], np.nan).astype(np.float32)
        out[name] = mag
        reported = sig
        if z_sigma is not None and p["sigma_sampling"]:
            reported = sig * sample_sigma_factor(n_obs[:, j], z_sigma[j])
        foe = np.float32(1.0) / (reported * np.float32(np.log(10.0) / 2.5))
        out[foe_name] = np.where(have, foe, np.nan).astype(np.float32)
    sig_plx = parallax_error(g)
    if p["parallax_transits"]:
        sig_plx = sig_plx * np.sqrt(N_REFERENCE["bp"] / n_obs[:, 1]).astype(np.float32)
    out["parallax"] = np.where(has_plx, parallax_true + sig_plx.astype(np.float64) * z[3], np.nan)
    out["parallax_error"] = np.where(has_plx, sig_plx, np.nan).astype(np.float32)
    out["detected"] = det
    return out


def sample_sigma_factor(n_obs, z) -> np.ndarray:
    """The ratio of a sample standard deviation of ``n_obs`` Gaussian values to the true one, sqrt(χ²_ν / ν) with
    ν = n − 1, from one standard normal ``z`` per star (Wilson & Hilferty 1931, PNAS 17, 684: (χ²_ν / ν)^(1/3) is
    nearly normal with mean 1 − 2 / (9ν) and variance 2 / (9ν); relative scatter ≈ 1 / √(2ν): 11 % at 40
    transits, 4 % at 350 per-CCD values)."""
    nu = np.maximum(np.asarray(n_obs, np.float64) - 1.0, 1.0)
    a = 2.0 / (9.0 * nu)
    cube = np.maximum(1.0 - a + np.asarray(z, np.float64) * np.sqrt(a), 0.05)
    return (cube ** 1.5).astype(np.float32)


def noise_sigma(band: str, mag, n_obs) -> np.ndarray:
    """Measurement noise (mag) of the mean magnitude in ``band`` from ``n_obs`` epoch measurements: pygaia's DR3
    curve, which is for ``N_REFERENCE`` of them, averaged down as 1/√n (Riello et al. 2021, §3)."""
    return magnitude_error(band, mag) * np.sqrt(N_REFERENCE[band] / n_obs)


def constant_star_sigma(band: str, mag, sin_beta=None) -> np.ndarray:
    """The mean-magnitude σ (mag) this model gives a star without variability at magnitude ``mag`` in ``band``
    ('g', 'bp', 'rp') and ecliptic latitude ``sin_beta`` (None or NaN: the sky average), observed the median number
    of times (``n_observations`` at z = 0). A reported σ above it is the star's variability (σ_var / √n) or a
    number of transits below the median: the model reads Gaia's σ as this excess (``model.tokens``)."""
    m = np.asarray(mag, np.float64)
    return noise_sigma(band, m, n_observations(np.zeros(m.shape), None, sin_beta)[..., BANDS.index(band)])


def unreliable_bp(bp_mag, bp_max_mag: float | None) -> np.ndarray:
    """Rows whose Gaia G_BP (mag; NaN = none) is fainter than ``bp_max_mag``, where the archive's mean BP flux is
    biased bright: the background and the minimum-flux handling of faint BP epochs raise the mean flux of a
    source near the BP noise (Riello et al. 2021, A&A 649, A3, Sect. 8.1; ESA's Gaia EDR3 known issues advise care
    with G_BP fainter than 20.3). Real faint red stars then keep reddening in G − G_RP while G_BP − G_RP turns
    blue; the simulator draws unbiased BP, so such a BP would be read as a bluer, older star. None: no row."""
    bp = np.asarray(bp_mag, np.float64)
    if bp_max_mag is None:
        return np.zeros(bp.shape, bool)
    return np.isfinite(bp) & (bp > float(bp_max_mag))
