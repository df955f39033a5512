"""An empirical correction of the stellar models' low-mass main sequence, from an old cluster's members.

MIST (and the C3K atmospheres behind its bolometric corrections) make M dwarfs too blue in Gaia colours: at
fixed BP − RP, the main sequences of Praesepe and the Hyades in Gaia DR2 lie 0.3–0.6 mag above the 650–700 Myr
isochrone for K and early-M dwarfs and ~1–1.5 mag above it at BP − RP ≈ 2.6–2.9 (0.15–0.3 M☉). This is the
known deficit of model M-dwarf radii and the excess of their effective temperatures at fixed luminosity
(e.g. Boyajian et al. 2012; Mann et al. 2015). Left in the simulator, a real old M dwarf sits where the
simulation puts pre-main-sequence stars, and the network calls it young.

As brutus does (Speagle et al. 2025, §2.3: empirical corrections to MIST's effective temperatures and radii as
functions of initial mass, fitted to benchmark clusters), the isochrone grid is corrected by a shift of
log10 T_eff that depends on initial mass only, at fixed luminosity: the radius grows as T_eff^−2 and log g
changes by 4 Δlog10 T_eff. The shift is fitted to one named cluster's single-star main sequence (default the
Hyades at 650 Myr, [Fe/H] = +0.13, A_V = 0: ``DEFAULTS``, overridden by
``population.stellar_models.empirical_correction``), from its members shipped in
``ysocensus/data/real/old_clusters.csv`` (Gaia Collaboration 2018, A&A 616, A10), so the other old clusters
(Praesepe, Coma Ber, Ruprecht 147, NGC 6811) stay independent checks in
``validate_real``, which leaves the calibration cluster out of its scores.

The fit (:func:`fit_teff_correction`): the cluster's ridge line, M_G against BP − RP in colour bins, where the
brightest quarter of each bin is dropped first (unresolved binaries lie up to 0.75 mag above the single-star
sequence); then, for each initial mass of the model isochrone at the cluster's age, [Fe/H] and A_V, the shift on
a grid that puts the model star on the ridge line; a running median over neighbouring masses, the value at the
ends of the covered colour range held beyond them, and a linear taper to zero between ``taper_msun`` (above it
the models match). The correction applies at every [Fe/H].

Its amplitude on the way to the main sequence sets the age scale of young M stars. The grid carries the full
correction at every age; the population stage gives each star a fraction ``f`` of it
(:func:`pre_main_sequence_amplitude`, :func:`partial_correction`): f = 1 from ``age_myr[1]``, drawn per star from
``amplitude_range`` below ``age_myr[0]``, log-linear in age between. f = 0 is the standard (non-magnetic) models on
which most quoted ages of star-forming regions rest; f = 1 is the Hyades' radius inflation, which magnetic and spotted
models give young M stars too (Somers & Pinsonneault 2015; Feiden 2016), with pre-main-sequence ages about twice the
standard ones. The two differ by ~0.3 dex in the age of a young M star at a given position in the colour–magnitude
diagram; drawing f makes that systematic part of the simulated stars, so the network's posteriors carry it instead
of choosing one scale.

Where the amplitude is measured, it is not drawn. Clusters whose ages come from the lithium depletion boundary, which
does not rest on the models' radii, are fitted like the Hyades at those ages (:func:`age_scale_evidence`: IC 2602,
IC 2391, α Per, the Pleiades and Blanco 1, 46–126 Myr; Gaia Collaboration 2018 members in
``ysocensus/data/calibration/ldb_clusters.csv``), and each asks for about the Hyades' whole correction or more (the
``age_scale_clusters`` of ``results/models/empirical_correction.json``, drawn in its figure). So f is whole from the
youngest of them (46 Myr) on. Below it no cluster in the shipped data has an age independent of the models; the
correction is drawn, and the ramp starts at 10 Myr, from where standard-model ages of M dwarfs are documented to
fall short of LDB and higher-mass ages (NGC 2232: Binks et al. 2021; Sco–Cen: Pecaut & Mamajek 2016; β Pic: Malo
et al. 2014). These clusters calibrate the schedule and are not among the validation's scored stars.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from importlib import resources
from typing import Mapping

import numpy as np

log = logging.getLogger(__name__)

DEFAULTS = dict(enabled=True, cluster="Hyades", age_myr=650.0, feh=0.13, av_mag=0.0,
                mass_range_msun=(0.09, 0.85), taper_msun=(0.7, 0.85), shift_range=(-0.12, 0.03),
                colour_bin=0.1, drop_brightest=0.25, min_stars_per_bin=8, smooth=5)
#: the shipped members file the fit reads (``ysocensus/data/real``)
MEMBERS_FILE = "old_clusters.csv"
#: clusters with lithium-depletion-boundary ages (Gaia Collaboration 2018 members; provenance in
#: ``data/calibration/SOURCES.md``): the evidence for the correction's amplitude on the way to the main sequence
AGE_SCALE_FILE = "calibration/ldb_clusters.csv"
#: the M-dwarf masses (M☉) over which a cluster's fitted shift is compared with the Hyades': where the Hyades'
#: correction is whole (below the taper) and the clusters' ridge lines are populated
AGE_SCALE_MASS_MSUN = (0.2, 0.5)


#: what a shift Δ of log10 T_eff at fixed luminosity does to each grid quantity: Δ, 4Δ (g ∝ R⁻², R ∝ T⁻²), −2Δ
SHIFT_FACTORS = {"log10_teff": 1.0, "logg": 4.0, "log10_radius_rsun": -2.0}


@dataclass
class TeffCorrection:
    """Δ log10 T_eff against log10 initial mass (piecewise linear, held beyond the first knot, 0 beyond the
    last), applied at fixed luminosity."""

    log10_mass: np.ndarray
    dlog10_teff: np.ndarray
    meta: dict | None = None

    def shift(self, log10_mass) -> np.ndarray:
        return np.interp(np.asarray(log10_mass, np.float64), self.log10_mass, self.dlog10_teff,
                         left=self.dlog10_teff[0], right=0.0)

    def apply(self, grid):
        """A copy of ``grid`` (``tracks.IsochroneGrid``) with T_eff, log g and radius corrected."""
        import dataclasses

        q = {name: k for k, name in enumerate(grid.quantities)}
        d = self.shift(grid.axes["log10_mass"]).astype(np.float32)  # per mass node
        values = grid.values.copy()
        for key, factor in SHIFT_FACTORS.items():
            if key in q:
                values[..., q[key]] += np.float32(factor) * d
        meta = dict(grid.meta, empirical_teff_correction=self.to_dict())
        return dataclasses.replace(grid, values=values, meta=meta)

    def to_dict(self) -> dict:
        return {"log10_mass": [float(v) for v in self.log10_mass],
                "dlog10_teff": [float(v) for v in self.dlog10_teff], "meta": self.meta or {}}

    @classmethod
    def from_dict(cls, d: Mapping) -> "TeffCorrection":
        return cls(np.asarray(d["log10_mass"], np.float64), np.asarray(d["dlog10_teff"], np.float64),
                   dict(d.get("meta") or {}))


def pre_main_sequence_amplitude(log10_age_yr, u, amplitude_range, age_myr) -> np.ndarray:
    """The fraction f of the correction each star carries: ``lo + (hi − lo) u`` below ``age_myr[0]``, 1 from
    ``age_myr[1]`` on, linear in log age between (``u`` uniform in [0, 1), one per star). The defaults are the
    schema's (``population.stellar_models.empirical_correction.pre_main_sequence``)."""
    lo, hi = (float(v) for v in amplitude_range)
    a0, a1 = (np.log10(float(v) * 1e6) for v in age_myr)
    drawn = lo + (hi - lo) * np.asarray(u, np.float64)
    t = np.clip((np.asarray(log10_age_yr, np.float64) - a0) / max(a1 - a0, 1e-12), 0.0, 1.0)
    return drawn + (1.0 - drawn) * t


def partial_correction(props: Mapping[str, np.ndarray], log10_mass, correction: TeffCorrection, f) -> dict:
    """Stellar parameters of a grid that carries the full correction (``props``: log10_teff, logg, optionally
    log10_radius_rsun) with only the fraction ``f`` of it: (1 − f) of the shift taken back, at fixed luminosity."""
    back = (1.0 - np.asarray(f, np.float64)) * correction.shift(log10_mass)
    out = dict(props)
    for key, factor in SHIFT_FACTORS.items():
        if key in props:
            v = np.asarray(props[key])
            out[key] = (v - factor * back).astype(v.dtype)
    return out


def grid_correction(grid) -> TeffCorrection | None:
    """The correction an isochrone grid carries (its ``meta``), or None."""
    d = (getattr(grid, "meta", None) or {}).get("empirical_teff_correction")
    return TeffCorrection.from_dict(d) if d else None


def cluster_members(name: str, members_file: str = MEMBERS_FILE):
    """Members of the named cluster from a shipped file (``data/real/old_clusters.csv`` by default, or
    ``data/calibration/ldb_clusters.csv``: :data:`AGE_SCALE_FILE`), with M_G (from each star's parallax) and BP − RP."""
    return _members_of(_read_members(members_file), name, members_file)


def _read_members(members_file: str):
    import pandas as pd

    with data_file(members_file).open("r") as fh:
        return pd.read_csv(fh)


def _members_of(frame, name: str, members_file: str):
    from ysocensus.io import GAIA_BANDS

    g, bp, rp = GAIA_BANDS
    m = frame[frame["group"] == name].copy()
    if m.empty:
        raise ValueError(f"empirical correction: no members of {name!r} in {members_file} "
                         f"(groups: {sorted(frame['group'].unique())})")
    ok = (m["parallax"] > 0) & m[list(GAIA_BANDS)].notna().all(axis=1)
    m = m[ok]
    m["abs_g"] = m[g] + 5.0 * np.log10(m["parallax"] / 100.0)
    m["bp_rp_obs"] = m[bp] - m[rp]
    return m


def data_file(members_file: str):
    """A shipped members file by its path under ``ysocensus/data`` (a bare name is looked up in ``data/real``)."""
    parts = members_file.split("/") if "/" in members_file else ["real", members_file]
    return resources.files("ysocensus").joinpath("data", *parts)


def ridge_line(colour, abs_g, bin_width: float, drop_brightest: float, min_stars: int):
    """The single-star sequence: (colour centres, median M_G) of bins with at least ``min_stars`` stars, after
    the brightest ``drop_brightest`` of each bin is dropped."""
    c, g = np.asarray(colour, np.float64), np.asarray(abs_g, np.float64)
    ok = np.isfinite(c) & np.isfinite(g)
    c, g = c[ok], g[ok]
    edges = np.arange(np.floor(c.min() / bin_width) * bin_width, c.max() + bin_width, bin_width)
    centres, ridge = [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        s = np.sort(g[(c >= lo) & (c < hi)])
        if len(s) < min_stars:
            continue
        centres.append(0.5 * (lo + hi))
        ridge.append(float(np.median(s[int(drop_brightest * len(s)):])))
    return np.asarray(centres), np.asarray(ridge)


def _running_median(x: np.ndarray, k: int) -> np.ndarray:
    if k <= 1 or len(x) < k:
        return x
    pad = np.pad(x, k // 2, mode="edge")
    return np.median(np.lib.stride_tricks.sliding_window_view(pad, k), axis=1)


def fit_teff_correction(members, grid, bc, cfg: Mapping | None = None) -> tuple[TeffCorrection, dict]:
    """Fit the correction (module docstring) to ``members`` (``cluster_members``) with the uncorrected
    isochrone ``grid`` and the ``bc`` grid; returns it and diagnostics (ridge, model before and after)."""
    p = dict(DEFAULTS, **(cfg or {}))
    rc, rg = ridge_line(members["bp_rp_obs"], members["abs_g"], p["colour_bin"], p["drop_brightest"],
                        p["min_stars_per_bin"])
    if len(rc) < 3:
        raise ValueError(f"empirical correction: {p['cluster']} has too few stars for a ridge line")
    lm = np.linspace(np.log10(p["mass_range_msun"][0]), np.log10(p["mass_range_msun"][1]), 80)
    age = np.log10(float(p["age_myr"]) * 1e6)
    iso = grid.interpolate(np.full_like(lm, age), lm, np.full_like(lm, float(p["feh"])))
    keep = np.isfinite(iso["log10_teff"])
    lm = lm[keep]
    iso = {k: v[keep].astype(np.float64) for k, v in iso.items()}
    shifts = np.linspace(*p["shift_range"], 151)
    n, s = len(lm), len(shifts)
    t = np.repeat(iso["log10_teff"], s) + np.tile(shifts, n)
    gg = np.repeat(iso["logg"], s) + 4.0 * np.tile(shifts, n)
    lum = np.repeat(iso["log10_lum_lsun"], s)
    mags = bc.absolute_magnitudes(10.0 ** t, gg, lum, np.full(n * s, float(p["feh"])),
                                  np.full(n * s, float(p["av_mag"]))).astype(np.float64).reshape(n, s, -1)
    colour, abs_g = mags[..., 1] - mags[..., 2], mags[..., 0]
    # only shifts that land inside the ridge line's colour range, a bin away from its ends (the faint end of
    # a cluster's sequence is where its completeness and the BP photometry of faint red stars give out)
    inside = (colour >= rc[0] + p["colour_bin"]) & (colour <= rc[-1] - p["colour_bin"])
    miss = np.where(inside, np.abs(abs_g - np.interp(colour, rc, rg)), np.inf)
    best = np.argmin(miss, axis=1)
    # fitted only where the uncorrected model star already lies in the covered colour range too: beyond it a
    # shift of either sign could reach some part of the ridge line
    c0 = colour[:, int(np.argmin(np.abs(shifts)))]
    found = np.isfinite(miss[np.arange(n), best]) & (c0 >= rc[0] + p["colour_bin"]) & (c0 <= rc[-1] - p["colour_bin"])
    if found.sum() < 3:
        raise ValueError(f"empirical correction: the model isochrone does not reach {p['cluster']}'s ridge line")
    d = np.where(found, shifts[best], np.nan)
    # hold the ends of the covered range beyond them, smooth, taper to zero at the high-mass end
    idx = np.flatnonzero(found)
    d[: idx[0]] = d[idx[0]]
    d[idx[-1] + 1:] = d[idx[-1]]
    d = _running_median(d, int(p["smooth"]))
    m = 10.0 ** lm
    lo, hi = p["taper_msun"]
    d = d * np.clip((hi - m) / (hi - lo), 0.0, 1.0)
    corr = TeffCorrection(lm, d, {k: (list(v) if isinstance(v, tuple) else v) for k, v in p.items()})
    diag = {"ridge_bp_rp": rc.tolist(), "ridge_abs_g": rg.tolist(), "log10_mass": lm.tolist(),
            "model_bp_rp_before": colour[:, int(np.argmin(np.abs(shifts)))].tolist(),
            "model_abs_g_before": abs_g[:, int(np.argmin(np.abs(shifts)))].tolist(),
            "n_members": int(len(members))}
    after = bc.absolute_magnitudes(10.0 ** (iso["log10_teff"] + d), iso["logg"] + 4.0 * d, iso["log10_lum_lsun"],
                                   np.full(n, float(p["feh"])), np.full(n, float(p["av_mag"]))).astype(np.float64)
    diag["model_bp_rp_after"] = (after[:, 1] - after[:, 2]).tolist()
    diag["model_abs_g_after"] = after[:, 0].tolist()
    log.info("empirical T_eff correction from %s (%d members): dlog10 Teff %.3f..%.3f over %.2f..%.2f Msun",
             p["cluster"], len(members), d.min(), d.max(), m[0], m[-1])
    return corr, diag


def age_scale_evidence(grid, bc, corr: TeffCorrection, cfg: Mapping | None = None,
                       members_file: str = AGE_SCALE_FILE) -> list[dict]:
    """The correction's amplitude that clusters of known age ask for: each cluster of ``members_file`` (lithium
    depletion boundary ages, which do not rest on the models' pre-main-sequence radii) fitted like the Hyades
    (:func:`fit_teff_correction`, on the uncorrected ``grid``, at its LDB age and its Gaia Collaboration 2018 [Fe/H]
    and E(B − V), A_V = 3.1 E(B − V)); ``amplitude`` is the median over :data:`AGE_SCALE_MASS_MSUN` of its shift
    over the Hyades' (``corr``), ``amplitude_16``/``_84`` the spread over those masses. A cluster whose fit fails
    is listed with the reason."""
    from ysocensus.io import parse_flags

    p = dict(DEFAULTS, **(cfg or {}))
    p.pop("pre_main_sequence", None)
    frame = _read_members(members_file)
    lm = np.log10(np.linspace(*AGE_SCALE_MASS_MSUN, 16))
    out = []
    for name, rows in frame.groupby("group", sort=False):
        first = rows.iloc[0]
        flags = parse_flags(first["member_flag"])
        row = {"cluster": str(name), "age_myr": float(first["age_myr"]), "age_myr_lo": float(first["age_myr_lo"]),
               "age_myr_hi": float(first["age_myr_hi"]), "age_ref": str(first["age_ref"]),
               "feh": float(flags["feh"]), "av_mag": round(3.1 * float(flags["ebv"]), 4)}
        try:
            c, _ = fit_teff_correction(_members_of(frame, str(name), members_file), grid, bc,
                                       dict(p, cluster=str(name), age_myr=row["age_myr"], feh=row["feh"],
                                            av_mag=row["av_mag"]))
        except ValueError as err:
            out.append(dict(row, amplitude=None, why=str(err)))
            continue
        ratio = c.shift(lm) / corr.shift(lm)
        row.update(amplitude=float(np.median(ratio)), amplitude_16=float(np.percentile(ratio, 16)),
                   amplitude_84=float(np.percentile(ratio, 84)), n_members=int(len(rows)))
        out.append(row)
    return out


def schedule_curve(pms: Mapping, ages_myr) -> tuple[np.ndarray, np.ndarray]:
    """The lowest and highest amplitude f (:func:`pre_main_sequence_amplitude`) a star of each age can draw."""
    la = np.log10(np.asarray(ages_myr, np.float64) * 1e6)
    return tuple(pre_main_sequence_amplitude(la, np.full(la.shape, u), pms["amplitude_range"], pms["age_myr"])
                 for u in (0.0, 1.0))


def figure(diag: Mapping, corr: TeffCorrection, members, path, check=None, evidence=None, pms=None,
           dpi: int = 120) -> None:
    """The cluster, its ridge line and the model isochrone before and after (left); the shift (middle); with
    ``evidence`` (:func:`age_scale_evidence`) and ``pms`` (the schedule's config), the amplitude the clusters of known
    age ask for against the range the population draws (right). ``check``: another cluster's members (name, frame)
    drawn for comparison."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    third = evidence is not None and pms is not None
    fig, axes = plt.subplots(1, 3 if third else 2, figsize=(15 if third else 10, 5),
                             gridspec_kw={"width_ratios": [1.3, 1, 1] if third else [1.3, 1]})
    a, b = axes[0], axes[1]
    cluster = corr.meta.get("cluster", "cluster") if corr.meta else "cluster"
    a.scatter(members["bp_rp_obs"], members["abs_g"], s=4, c="0.6", label=f"{cluster} members (fit)")
    if check is not None:
        a.scatter(check[1]["bp_rp_obs"], check[1]["abs_g"], s=4, c="tab:green", alpha=0.5,
                  label=f"{check[0]} members (not fitted)")
    a.plot(diag["ridge_bp_rp"], diag["ridge_abs_g"], "k-", lw=2, label="single-star ridge line")
    a.plot(diag["model_bp_rp_before"], diag["model_abs_g_before"], "--", c="tab:red", label="model, uncorrected")
    a.plot(diag["model_bp_rp_after"], diag["model_abs_g_after"], "-", c="tab:blue", label="model, corrected")
    a.invert_yaxis()
    a.set_xlabel("BP − RP (mag)")
    a.set_ylabel("M_G (mag)")
    a.set_xlim(0.5, 4.2)
    a.set_ylim(15, 3)
    a.legend(fontsize=8, loc="lower left")
    a.set_title(f"{cluster}: {corr.meta.get('age_myr')} Myr, [Fe/H] {corr.meta.get('feh')}, A_V {corr.meta.get('av_mag')}",
                fontsize=10)
    b.plot(10.0 ** corr.log10_mass, corr.dlog10_teff, "k-")
    b.axhline(0, c="0.7", lw=0.8)
    b.set_xscale("log")
    from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter
    b.xaxis.set_major_locator(FixedLocator([0.1, 0.2, 0.3, 0.5, 0.8]))
    b.xaxis.set_major_formatter(ScalarFormatter())
    b.xaxis.set_minor_formatter(NullFormatter())
    b.set_xlabel("initial mass (M☉)")
    b.set_ylabel("Δ log10 T_eff (dex), at fixed luminosity")
    b.set_title("correction applied to the isochrone grid", fontsize=10)
    if third:
        _schedule_panel(axes[2], evidence, pms)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def _schedule_panel(ax, evidence, pms) -> None:
    ages = np.geomspace(1.0, 1000.0, 200)
    lo, hi = schedule_curve(pms, ages)
    ax.fill_between(ages, lo, hi, color="tab:blue", alpha=0.25, label="amplitude the population draws")
    fitted = [e for e in evidence if e.get("amplitude") is not None]
    if fitted:
        age = np.array([e["age_myr"] for e in fitted])
        amp = np.array([e["amplitude"] for e in fitted])
        ax.errorbar(age, amp, xerr=[age - [e["age_myr_lo"] for e in fitted], [e["age_myr_hi"] for e in fitted] - age],
                    yerr=[amp - [e["amplitude_16"] for e in fitted], [e["amplitude_84"] for e in fitted] - amp],
                    fmt="o", c="k", ms=4, label="cluster fit at its Li-depletion-boundary age")
        for k, e in enumerate(fitted):  # labels in a column at the upper left: the clusters crowd at 46-126 Myr
            ax.annotate(e["cluster"], (e["age_myr"], e["amplitude"]), xytext=(0.04, 0.95 - 0.06 * k),
                        textcoords="axes fraction", fontsize=7, va="top",
                        arrowprops=dict(arrowstyle="-", color="0.6", lw=0.5))
    ax.axhline(1.0, c="0.6", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("age (Myr)")
    ax.set_ylabel(f"amplitude of the Hyades' correction, {AGE_SCALE_MASS_MSUN[0]}–{AGE_SCALE_MASS_MSUN[1]} M☉")
    ax.set_ylim(-0.1, 1.6)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("the correction on the way to the main sequence", fontsize=10)


def corrected_grid(grid, bc, cfg: Mapping | None, json_path=None, figure_path=None):
    """``grid`` corrected as configured (``population.stellar_models.empirical_correction``), or unchanged
    when disabled; writes the fit (JSON) and its figure where paths are given."""
    p = dict(DEFAULTS, **(cfg or {}))
    if not p["enabled"]:
        if json_path is not None:
            from ysocensus.io import write_json
            write_json({"enabled": False}, json_path)
        if figure_path is not None:
            _blank(figure_path)
        return grid
    members = cluster_members(p["cluster"])
    corr, diag = fit_teff_correction(members, grid, bc, p)
    evidence = age_scale_evidence(grid, bc, corr, p)
    for e in evidence:
        log.info("age scale: %s (%.0f Myr) asks for %s of the %s correction", e["cluster"], e["age_myr"],
                 "-" if e.get("amplitude") is None else f"{e['amplitude']:.2f}", p["cluster"])
    if json_path is not None:
        from ysocensus.io import write_json
        write_json({"enabled": True, **corr.to_dict(), "diagnostics": diag, "age_scale_clusters": evidence}, json_path)
    if figure_path is not None:
        check = "Hyades" if p["cluster"] != "Hyades" else "Praesepe"
        try:
            check_members = (check, cluster_members(check))
        except ValueError:
            check_members = None
        figure(diag, corr, members, figure_path, check_members, evidence, p.get("pre_main_sequence"))
    return corr.apply(grid)


def _blank(path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 2))
    ax.axis("off")
    ax.text(0.5, 0.5, "empirical correction disabled", ha="center", va="center")
    fig.savefig(path)
    plt.close(fig)


def load(json_path) -> TeffCorrection | None:
    with open(json_path) as f:
        d = json.load(f)
    return TeffCorrection.from_dict(d) if d.get("enabled") else None


def run_stellar_models(models: Mapping, bc_path, output, correction_output, figure_output) -> None:
    """Entry point of the workflow's ``stellar_models`` rule: the isochrone grid of the ``models`` config section
    (``stars.tracks``), its low-mass main sequence corrected to the named cluster (``corrected_grid``), cached
    at ``output``; the correction's JSON and figure beside it."""
    from ysocensus.stars.bolometric import load_bc_grid
    from ysocensus.stars.tracks import IsochroneGrid

    grid = corrected_grid(IsochroneGrid.from_config(models), load_bc_grid(bc_path), models.get("empirical_correction"),
                          correction_output, figure_output)
    grid.save(output)
