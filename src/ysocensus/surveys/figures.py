"""Figure of the observe stage: CMDs of one chunk with young stars highlighted, and missingness vs magnitude."""

from __future__ import annotations

import logging
import os

import numpy as np

from ysocensus import io
from ysocensus.stars.bolometric import load_bc_grid

log = logging.getLogger(__name__)


def missing_fraction(true_mag: np.ndarray, measured: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """Fraction of stars per magnitude bin without a measurement (NaN where a bin is empty)."""
    ok = np.isfinite(true_mag)
    idx = np.digitize(true_mag[ok], bins) - 1
    nb = len(bins) - 1
    inb = (idx >= 0) & (idx < nb)
    tot = np.bincount(idx[inb], minlength=nb).astype(float)
    miss = np.bincount(idx[inb], weights=(~measured[ok][inb]).astype(float), minlength=nb)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tot > 0, miss / tot, np.nan)


def observe_summary_figure(catalog_path: str | os.PathLike, population_path: str | os.PathLike,
                           output_path: str | os.PathLike, bc_path: str | os.PathLike | None = None,
                           young_log10_age_yr: float = 7.7) -> None:
    """Four panels: Gaia CMD, 2MASS CMD, Ks−W3 vs W1−W2, missing fraction per survey vs magnitude."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cat = io.read_table(catalog_path, io.CATALOG).to_pandas()
    pop = io.read_table(population_path, io.POPULATION,
                        columns=["source_id", "log10_age_yr", "teff_k", "logg", "log10_lum_lsun", "feh",
                                 "av_mag", "distance_pc", "is_remnant", "has_disk"]).to_pandas()
    df = cat.merge(pop, on="source_id", how="left", validate="one_to_one")
    young = (df["log10_age_yr"] < young_log10_age_yr).to_numpy()
    disk = df["has_disk"].to_numpy(bool)
    plx, eplx = df["parallax"].to_numpy(float), df["parallax_error"].to_numpy(float)
    good = np.isfinite(plx) & (plx > 5 * eplx) & (plx > 0)
    mu = np.where(good, 5 * np.log10(np.where(good, plx, 1.0) / 100.0), np.nan)

    fig, axes = plt.subplots(2, 2, figsize=(12, 11))
    kw_old = dict(s=2, c="0.6", alpha=0.4, rasterized=True, lw=0)
    kw_young = dict(s=5, c="tab:red", alpha=0.8, rasterized=True, lw=0)
    kw_disk = dict(s=7, c="tab:blue", alpha=0.9, rasterized=True, lw=0)

    def panel(ax, x, y, title, xl, yl):
        for sel, kw, lab in ((~young, kw_old, f"age ≥ {10**young_log10_age_yr / 1e6:.0f} Myr"),
                             (young & ~disk, kw_young, "young, no disk"), (young & disk, kw_disk, "young, disk")):
            m = sel & np.isfinite(x) & np.isfinite(y)
            ax.scatter(x[m], y[m], label=f"{lab} ({m.sum()})", **kw)
        ax.set_title(title)
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        ax.legend(loc="best", fontsize=8, markerscale=3)

    g = df["phot_g_mean_mag"].to_numpy(float)
    bprp = (df["phot_bp_mean_mag"] - df["phot_rp_mean_mag"]).to_numpy(float)
    panel(axes[0, 0], bprp, g + mu, "Gaia DR3 (ϖ/σ > 5)", "BP − RP", "M_G = G + 5 log10(ϖ/100 mas)")
    axes[0, 0].invert_yaxis()
    ks = df["ks_m"].to_numpy(float)
    jk = (df["j_m"] - df["ks_m"]).to_numpy(float)
    panel(axes[0, 1], jk, ks + mu, "2MASS (ϖ/σ > 5)", "J − Ks", "M_Ks")
    axes[0, 1].invert_yaxis()
    kw3 = (df["ks_m"] - df["w3mpro"]).to_numpy(float)
    w12 = (df["w1mpro"] - df["w2mpro"]).to_numpy(float)
    panel(axes[1, 0], kw3, w12, "2MASS/AllWISE: disks show Ks − W3 excess", "Ks − W3", "W1 − W2")

    # missing fraction vs noise-free magnitude (photospheric, no binaries / disks), stars with photometry
    bc = load_bc_grid(bc_path)
    ph = ~df["is_remnant"].to_numpy(bool) & np.isfinite(df["teff_k"].to_numpy(float))
    m_true = np.full((len(df), len(io.MAGNITUDES)), np.nan, np.float32)
    m_true[ph] = bc.magnitudes(df["teff_k"].to_numpy()[ph], df["logg"].to_numpy()[ph],
                               df["log10_lum_lsun"].to_numpy()[ph], df["feh"].to_numpy()[ph],
                               df["av_mag"].to_numpy()[ph], df["distance_pc"].to_numpy()[ph])
    bins = np.arange(0.0, 24.01, 0.5)
    centres = 0.5 * (bins[1:] + bins[:-1])
    ax = axes[1, 1]
    col = {b: io.MAGNITUDES.index(b) for b in io.MAGNITUDES}
    curves = [("Gaia G", "phot_g_mean_mag", "phot_g_mean_mag"),
              ("Gaia BP/RP", "phot_g_mean_mag", "phot_bp_mean_mag"),
              ("Gaia parallax", "phot_g_mean_mag", "parallax"),
              ("2MASS Ks", "ks_m", "ks_m"),
              ("AllWISE W1", "w1mpro", "w1mpro"),
              ("AllWISE W3", "w3mpro", "w3mpro"),
              ("LAMOST spectrum (vs G)", "phot_g_mean_mag", "ewha")]
    for label, band, measured in curves:
        f = missing_fraction(m_true[ph, col[band]], df[measured].notna().to_numpy()[ph], bins)
        ax.plot(centres, f, drawstyle="steps-mid", label=label)
    ax.set_xlabel("noise-free magnitude in the survey's band")
    ax.set_ylabel("missing fraction")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("missingness is not at random: detection limits, footprint, targeting")
    ax.legend(fontsize=8)
    fig.suptitle(f"{os.path.basename(str(catalog_path))}: {len(df)} stars, "
                 f"{int((df['survey_mask'] != 0).sum())} detected by at least one survey")
    fig.tight_layout()
    with io.atomic_path(output_path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    log.info("wrote %s", output_path)
