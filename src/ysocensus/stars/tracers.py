"""Youth tracers of young stellar objects: disk IR excess, Hα and Li 6708 equivalent widths, variability.

Each tracer is a stated physical recipe with its reference numbers; all functions are vectorised
(numpy arrays of stars) and take their random draws as arguments (standard normals ``z`` and
uniforms ``u``) so that the caller controls the random streams (one per tile).

Sign convention: equivalent widths in Å, **emission positive** (the YSO convention of White & Basri
2003); photospheric Hα absorption is negative. Li 6708 is an absorption line, its EW is positive.
"""

from __future__ import annotations

import numpy as np

from ysocensus import io

# ------------------------------------------------------------------------------------------------
# Band data used for fluxes: isophotal wavelengths (µm) and Vega zero points F_ν0 (Jy)
#   2MASS: Cohen, Wheaton & Megeath (2003, AJ 126, 1090): J 1594, H 1024, Ks 666.7 Jy
#   WISE:  Jarrett et al. (2011, ApJ 735, 112): W1 309.540, W2 171.787, W3 31.674, W4 8.363 Jy
#   Gaia:  EDR3 (Riello et al. 2021) pivot wavelengths; F_ν0 ≈ 3229, 3553, 2554 Jy (G, BP, RP)
# ------------------------------------------------------------------------------------------------
WAVELENGTH_UM = np.array([0.622, 0.511, 0.777, 1.235, 1.662, 2.159, 3.353, 4.603, 11.561, 22.088])
ZERO_POINT_JY = np.array([3229.0, 3553.0, 2554.0, 1594.0, 1024.0, 666.7, 309.540, 171.787, 31.674, 8.363])
_KS = io.MAGNITUDES.index("ks_m")

DISK_DEFAULTS = dict(
    alpha_mean=-1.0, alpha_sd=0.35, alpha_range=(-1.8, 0.0),
    rk_median=0.3, rk_sigma_ln=0.7,
    inner_rim_k=1400.0,
)


def _nu_fnu(mags: np.ndarray) -> np.ndarray:
    """νF_ν (arbitrary common unit) of Vega magnitudes (N, 10)."""
    return ZERO_POINT_JY / WAVELENGTH_UM * np.power(10.0, -0.4 * mags.astype(np.float64))


def _bb_nu_fnu(lam_um, t):
    """λF_λ of a black body at temperature t (arbitrary normalisation)."""
    x = 14387.77 / (np.asarray(lam_um) * t)
    return np.asarray(lam_um) ** -4 / np.expm1(x)


def disk_excess(mags: np.ndarray, has_disk: np.ndarray, z_alpha: np.ndarray, z_rk: np.ndarray,
                params: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Add the emission of a protoplanetary disk to the photospheric magnitudes (N, 10) of disk bearers.

    Recipe (Class II SEDs). The observed SED slope α = d log(λF_λ) / d log λ between 2 and 24 µm
    classifies YSOs (Lada 1987; Greene et al. 1994): Class I α > 0.3, flat −0.3…0.3, Class II
    −1.6…−0.3, Class III/photospheres α < −1.6 (a Rayleigh–Jeans photosphere has α ≈ −3).
    Observed Class II slopes cluster around α ≈ −1 with a spread of ≈ 0.3–0.4 dex (e.g. Kirk et al.
    2009, Dunham et al. 2015), so α ~ N(alpha_mean = −1.0, alpha_sd = 0.35) clipped to
    ``alpha_range``. The K-band excess r_K = F_disk/F_* at Ks of classical T Tauri stars is typically
    0.1–1 (Meyer, Calvet & Hillenbrand 1997; Cieza et al. 2005): log-normal with median 0.3 and
    σ_ln = 0.7. The total λF_λ from Ks to W4 is then λF_λ,*(Ks)(1 + r_K)(λ/λ_Ks)^α; the disk is the
    total minus the photosphere (never negative). Shortward of Ks the inner rim (dust sublimation,
    T ≈ 1400 K; Dullemond & Monnier 2010) falls off as a 1400 K black body scaled to the Ks excess,
    which gives the modest H (and small J) excess of CTTS. Optical bands are unchanged (accretion
    veiling in the optical is not modelled). Returns (new mags, α) with α NaN for stars without disk.
    """
    p = dict(DISK_DEFAULTS, **(params or {}))
    out = mags.copy()
    alpha = np.full(mags.shape[0], np.nan, dtype=np.float32)
    idx = np.flatnonzero(np.asarray(has_disk, bool) & np.isfinite(mags[:, _KS]))
    if idx.size == 0:
        return out, alpha
    a = np.clip(p["alpha_mean"] + p["alpha_sd"] * z_alpha[idx], *p["alpha_range"])
    rk = p["rk_median"] * np.exp(p["rk_sigma_ln"] * z_rk[idx])
    phot = _nu_fnu(mags[idx])                          # (n, 10)
    pk = phot[:, _KS]
    lam = WAVELENGTH_UM
    disk = np.zeros_like(phot)
    long = lam >= lam[_KS]
    total = pk[:, None] * (1 + rk[:, None]) * (lam[None, long] / lam[_KS]) ** a[:, None]
    disk[:, long] = np.maximum(total - phot[:, long], 0.0)
    short = (lam < lam[_KS]) & (lam > 1.0)
    rim = _bb_nu_fnu(lam[short], p["inner_rim_k"]) / _bb_nu_fnu(lam[_KS], p["inner_rim_k"])
    disk[:, short] = (rk * pk)[:, None] * rim[None, :]
    with np.errstate(divide="ignore"):
        out[idx] = (mags[idx] - 2.5 * np.log10(1.0 + disk / phot)).astype(mags.dtype)
    alpha[idx] = a
    return out, alpha


# ------------------------------------------------------------------------------------------------
# Hα
# ------------------------------------------------------------------------------------------------
#: White & Basri (2003) EW(Hα) thresholds separating accretors from chromospheric emission:
#: 3 Å for K0–K3, 10 Å for K7–M2.5, 20 Å for M3–M5.5, 40 Å for M6–M7.5 (T_eff of the spectral types
#: from Pecaut & Mamajek 2013 for young stars)
_WB03_TEFF = np.array([2800.0, 3100.0, 3400.0, 3700.0, 4000.0, 4500.0, 4900.0, 6000.0])
_WB03_EW = np.array([40.0, 20.0, 20.0, 10.0, 10.0, 5.0, 3.0, 3.0])

HALPHA_DEFAULTS = dict(
    accreting_fraction=0.8, accretion_excess_dex=0.35, accretion_sd_dex=0.3, accretion_age_slope=-0.5,
    chromo_saturated=-3.8, chromo_decline=-1.0, scatter_a=0.3,
)


def _chi_halpha(teff):
    """Continuum flux per Å at 6563 Å over the bolometric flux (black body), χ(T_eff) in Å⁻¹.

    Converts L_Hα/L_bol into EW = (L_Hα/L_bol)/χ (Walkowicz, Hawley & West 2004 use model-atmosphere
    χ; a black body is within a factor ≈ 1.5 for M dwarfs).
    """
    lam_cm = 6563e-8
    h, c, k, sigma = 6.62607e-27, 2.99792e10, 1.380649e-16, 5.6704e-5
    t = np.asarray(teff, np.float64)
    b = 2 * h * c**2 / lam_cm**5 / np.expm1(h * c / (lam_cm * k * t))      # erg s⁻¹ cm⁻² cm⁻¹ sr⁻¹
    return np.pi * b * 1e-8 / (sigma * t**4)


def halpha_ew(teff, log10_age_yr, has_disk, z, u, params: dict | None = None) -> np.ndarray:
    """Hα equivalent width (Å, emission positive): photosphere + chromosphere + accretion.

    * Photospheric absorption: ≈ −0.5 Å for M/K stars growing to ≈ −10 Å for A stars
      (−0.5 − 9.5 x^1.5, x = (T_eff − 4000 K)/5500 K clipped to 0…1; ≈ −2.2 Å for the Sun).
    * Chromosphere (stars with convective envelopes, T_eff < 6500 K): log L_Hα/L_bol = −3.8 while
      activity is saturated (young M dwarfs: West et al. 2008; Douglas et al. 2014), until the
      saturation age t_sat(T_eff) — ≈ 30 Myr for solar-type stars (rotational spin-down, Barnes 2003)
      rising to ≈ 1 Gyr for early M and ≈ 8 Gyr for late M dwarfs (West et al. 2008 activity
      lifetimes) — and then declining by 1 dex per dex of age. EW = (L_Hα/L_bol)/χ(T_eff).
    * Accretion: a fraction ``accreting_fraction`` ≈ 0.8 of disk bearers accrete; their EW is
      log-normal around 10^0.35 ≈ 2.2 × the White & Basri (2003) threshold of their spectral type
      (3 Å K0–K3, 10 Å K7–M2.5, 20 Å M3–M5.5, 40 Å M6+), σ = 0.3 dex, declining as age^−0.5
      after 2 Myr (mass accretion rate ∝ t^−1.5, Hartmann et al. 1998, diluted by the fading continuum).
    * Measurement-independent scatter of 0.3 Å (line variability). ``z`` (2, N) standard normals,
      ``u`` (N,) uniforms.
    """
    p = dict(HALPHA_DEFAULTS, **(params or {}))
    t = np.asarray(teff, np.float64)
    age = np.asarray(log10_age_yr, np.float64)
    x = np.clip((t - 4000.0) / 5500.0, 0, 1)
    ew = -(0.5 + 9.5 * x**1.5)
    # chromosphere
    log_tsat = np.interp(t, [2800.0, 3200.0, 3900.0, 5000.0, 6500.0], [9.9, 9.6, 9.0, 7.7, 7.3])
    ratio = p["chromo_saturated"] + p["chromo_decline"] * np.maximum(age - log_tsat, 0.0)
    chromo = np.where(t < 6500.0, 10.0**ratio / _chi_halpha(t), 0.0)
    ew = ew + chromo
    # accretion
    acc = np.asarray(has_disk, bool) & (np.asarray(u) < p["accreting_fraction"])
    thr = np.interp(t, _WB03_TEFF, _WB03_EW)
    age_fac = np.minimum(0.0, p["accretion_age_slope"] * (age - np.log10(2e6)))
    ew_acc = thr * 10.0 ** (p["accretion_excess_dex"] + p["accretion_sd_dex"] * z[0] + age_fac)
    ew = ew + np.where(acc, ew_acc, 0.0) + p["scatter_a"] * z[1]
    return ew.astype(np.float32)


# ------------------------------------------------------------------------------------------------
# Lithium
# ------------------------------------------------------------------------------------------------
#: Li-depletion age (99% depleted, yr) vs mass: the lithium depletion boundary of fully convective
#: stars (Chabrier, Baraffe & Plez 1996; Baraffe et al. 2015; Soderblom et al. 2014, PPVI): ≈ 12 Myr at
#: 0.6 M☉, 15 Myr at 0.4, 25 Myr at 0.2, 50 Myr at 0.1 (IC 2391/2602), 125 Myr at 0.075 (Pleiades);
#: brown dwarfs below 0.065 M☉ never burn Li. Stars with radiative cores deplete slowly: K dwarfs by
#: a few hundred Myr (Pleiades/Hyades), the Sun by ≈ 2 dex in 4.6 Gyr; F stars above ≈ 1.3 M☉ keep it.
_LI_MASS = np.array([0.06, 0.065, 0.075, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.4])
_LI_LOG_TDEP = np.array([13.0, 10.5, 8.1, 7.7, 7.4, 7.18, 7.08, 8.5, 9.7, 10.3, 13.0])

LITHIUM_DEFAULTS = dict(scatter_dex=0.1, ew_floor=0.0)


def lithium_ew(teff, initial_mass_msun, log10_age_yr, z) -> np.ndarray:
    """Li I 6708 Å equivalent width (Å, absorption positive) from depletion with age and mass.

    Surviving fraction f = 10^(−2 (t / t_dep(M))²) (99% depleted at t_dep, interpolated in log mass
    from the table above). Undepleted EW (A(Li) = 3.3, meteoritic) vs T_eff from young clusters
    (Soderblom et al. 1993; Jeffries et al. 2014, γ Vel): ≈ 0.5 Å at 3000 K, 0.6 Å at 3500–4500 K,
    0.4 Å at 5000 K, 0.2 Å at 6000 K, 0.1 Å at 7000 K, 0 above 8000 K. The line saturates, so
    EW ∝ f^0.5 (square-root part of the curve of growth) until it vanishes. Log-normal scatter
    0.1 dex (``z``).
    """
    t = np.asarray(teff, np.float64)
    m = np.clip(np.asarray(initial_mass_msun, np.float64), _LI_MASS[0], _LI_MASS[-1])
    log_tdep = np.interp(np.log10(m), np.log10(_LI_MASS), _LI_LOG_TDEP)
    ratio = 10.0 ** (np.asarray(log10_age_yr, np.float64) - log_tdep)
    log_f = -2.0 * ratio**2
    ew0 = np.interp(t, [2500.0, 3000.0, 3500.0, 4500.0, 5000.0, 6000.0, 7000.0, 8000.0],
                    [0.4, 0.5, 0.6, 0.6, 0.4, 0.2, 0.1, 0.0])
    ew = ew0 * 10.0 ** (0.5 * np.maximum(log_f, -10.0) + LITHIUM_DEFAULTS["scatter_dex"] * z)
    return ew.astype(np.float32)


# ------------------------------------------------------------------------------------------------
# Variability
# ------------------------------------------------------------------------------------------------
#: relative amplitude of spot / accretion variability per band (io.MAGNITUDES order), normalised to
#: BP ≈ V: cool spots give amplitudes falling with wavelength (ΔV : ΔI : ΔK ≈ 1 : 0.6 : 0.35,
#: Herbst et al. 1994; Carpenter, Hillenbrand & Skrutskie 2001)
SPOT_SCALE = np.array([0.8, 1.0, 0.65, 0.45, 0.4, 0.35, 0.3, 0.3, 0.3, 0.3])
#: disk bearers are as variable in the near/mid-IR as in the optical (inner-disk changes; YSOVAR,
#: Morales-Calderón et al. 2011: [3.6] rms ≈ 0.05–0.2 mag)
DISK_SCALE = np.array([0.8, 1.0, 0.7, 0.6, 0.7, 0.8, 0.8, 0.8, 0.8, 0.8])

#: stars of any age that vary for reasons other than youth (eclipsing and ellipsoidal binaries, pulsators,
#: rotational modulation): the amplitude is taken grey, as for eclipses of similar components
FIELD_VARIABLE_SCALE = np.ones(10)

VARIABILITY_DEFAULTS = dict(disk_median=0.15, disk_sigma_ln=0.6, spot_median_10myr=0.04,
                            spot_age_slope=-0.5, spot_floor=0.003, spot_sigma_ln=0.5,
                            field_fraction=0.09, field_median=0.03, field_sigma_ln=0.8)


def variability_sigma(log10_age_yr, has_disk, z, params: dict | None = None, u_field=None,
                      z_field=None) -> np.ndarray:
    """Rms variability (mag) per band, (N, 10), of the star between epochs.

    Disk bearers (CTTS): accretion and extinction events, rms ≈ 0.1–0.5 mag in V (Herbst et al.
    1994; Cody et al. 2014): log-normal, median 0.15 mag, σ_ln 0.6. Diskless young stars (WTTS and
    young field stars): cool spots, rms ≈ 0.04 mag at 10 Myr decreasing as age^−0.5 (spot coverage
    falls with spin-down), floor 3 mmag. Scaled per band with SPOT_SCALE / DISK_SCALE.

    Variability is not a youth signature alone: about 9 % of nearby stars with precise parallaxes are detected
    as variable by Gaia (Gaia Collaboration, Eyer et al. 2019, A&A 623, A110, Fig. 8: 13.5 million stars with
    ϖ > 1 mas, ϖ/σ_ϖ > 20, |b| > 5°), most of them old: eclipsing binaries, δ Scuti / γ Dor pulsators,
    rotational modulation. Without them an old star with a real Gaia σ excess (a binary in an old cluster)
    is outside training and reads as young. With ``u_field`` and ``z_field`` (uniform, standard normal), a
    fraction ``field_fraction`` of stars of every age gets a grey variability (``FIELD_VARIABLE_SCALE``),
    log-normal with median ``field_median`` and σ_ln ``field_sigma_ln`` (≈ 0.01–0.1 mag within ±1.4σ, the
    range of those classes' rms amplitudes; an assumption, not a fit), added in quadrature.
    """
    p = dict(VARIABILITY_DEFAULTS, **(params or {}))
    age = np.asarray(log10_age_yr, np.float64)
    disk = np.asarray(has_disk, bool)
    spot = np.maximum(p["spot_median_10myr"] * 10.0 ** (p["spot_age_slope"] * (age - 7.0)), p["spot_floor"])
    sig = np.where(disk, p["disk_median"] * np.exp(p["disk_sigma_ln"] * z),
                   spot * np.exp(p["spot_sigma_ln"] * z)).astype(np.float32)
    out = sig[:, None] * SPOT_SCALE.astype(np.float32)[None, :]
    di = np.flatnonzero(disk)
    out[di] = sig[di, None] * DISK_SCALE.astype(np.float32)[None, :]
    if u_field is not None and z_field is not None:
        field = np.where(np.asarray(u_field) < p["field_fraction"],
                         p["field_median"] * np.exp(p["field_sigma_ln"] * np.asarray(z_field, np.float64)), 0.0)
        out = np.sqrt(out**2 + (field[:, None] * FIELD_VARIABLE_SCALE[None, :]) ** 2).astype(np.float32)
    return out
