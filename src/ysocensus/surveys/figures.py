"""Figure of the observe stage: CMDs of one chunk with young stars highlighted, and missingness vs magnitude."""

from __future__ import annotations

import logging
import os

import numpy as np

from ysocensus import io
from ysocensus.stars.bolometric import REFERENCE_STAR, load_bc_grid

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


def _ranges(values) -> str:
    """0, 1, 2, 3, 5 → '0–3, 5'."""
    out, run = [], []
    for v in sorted(values):
        if run and v != run[-1] + 1:
            out.append(f"{run[0]}–{run[-1]}" if len(run) > 1 else f"{run[0]}")
            run = []
        run.append(v)
    if run:
        out.append(f"{run[0]}–{run[-1]}" if len(run) > 1 else f"{run[0]}")
    return ", ".join(out)


def extinction_per_av(bc, teff: float = REFERENCE_STAR[0], logg: float = REFERENCE_STAR[1],
                      feh: float = REFERENCE_STAR[2]) -> dict:
    """A_band / A_V of every catalog band as the simulator applies it (the BC grid's extinction, G23 at
    R_V = 3.1, ``stars.bolometric``), for one star (by default the grid's Sun-like reference star), at A_V = 1."""
    a0 = bc.bc([teff], [logg], [feh], [0.0])[0].astype(float)
    a1 = bc.bc([teff], [logg], [feh], [1.0])[0].astype(float)
    return dict(zip(bc.bands, a0 - a1))


def _reddening_arrow(ax, dx: float, dy: float, label: str, at=(0.70, 0.10), y_inverted: bool = False) -> None:
    """The reddening vector (dx in colour, dy in magnitude or colour), from ``at`` (axes fraction) in an empty
    corner; a fainter magnitude points down on an inverted magnitude axis."""
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    sx = x0 + at[0] * (x1 - x0)
    sy = y0 + at[1] * (y1 - y0)
    ax.annotate("", xy=(sx + dx, sy + dy), xytext=(sx, sy),
                arrowprops=dict(arrowstyle="-|>", lw=1.8, color="k", mutation_scale=14))
    ax.annotate(label, xy=(sx, sy), xytext=(0, -6 if not y_inverted else 6), textcoords="offset points",
                ha="left", va="top" if not y_inverted else "bottom", fontsize=8.5)


def observe_summary_figure(catalog_path: str | os.PathLike, population_path: str | os.PathLike,
                           output_path: str | os.PathLike, bc_path: str | os.PathLike | None = None,
                           young_threshold_myr: float = io.YOUNG_THRESHOLD_MYR) -> None:
    """Four panels: Gaia CMD, 2MASS CMD, Ks−W3 vs W1−W2 (each with the reddening vector of the simulator's
    extinction), missing fraction per survey vs magnitude; the title says which tiles and that young stars are
    over-represented on purpose; ``young_threshold_myr`` (config ``infer.young_threshold_myr``) splits young from old."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cat = io.read_table(catalog_path, io.CATALOG).to_pandas()
    pop = io.read_table(population_path, io.POPULATION,
                        columns=["source_id", "log10_age_yr", "teff_k", "logg", "log10_lum_lsun", "feh",
                                 "av_mag", "distance_pc", "is_remnant", "has_disk"]).to_pandas()
    df = cat.merge(pop, on="source_id", how="left", validate="one_to_one")
    young = (df["log10_age_yr"] < io.log10_age_threshold(young_threshold_myr)).to_numpy()
    disk = df["has_disk"].to_numpy(bool)
    plx, eplx = df["parallax"].to_numpy(float), df["parallax_error"].to_numpy(float)
    good = np.isfinite(plx) & (plx > 5 * eplx) & (plx > 0)
    mu = np.where(good, 5 * np.log10(np.where(good, plx, 1.0) / 100.0), np.nan)

    bc = load_bc_grid(bc_path)
    k = extinction_per_av(bc)
    fig, axes = plt.subplots(2, 2, figsize=(12, 11.5))
    kw_old = dict(s=2, c="0.6", alpha=0.4, rasterized=True, lw=0)
    kw_young = dict(s=5, c="tab:red", alpha=0.8, rasterized=True, lw=0)
    kw_disk = dict(s=7, c="tab:blue", alpha=0.9, rasterized=True, lw=0)

    def panel(ax, x, y, title, xl, yl, legend_loc="lower left"):
        for sel, kw, lab in ((~young, kw_old, f"age ≥ {young_threshold_myr:g} Myr"),
                             (young & ~disk, kw_young, "young, no disk"), (young & disk, kw_disk, "young, disk")):
            m = sel & np.isfinite(x) & np.isfinite(y)
            ax.scatter(x[m], y[m], label=f"{lab} ({m.sum()})", **kw)
        ax.set_title(title)
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        ax.legend(loc=legend_loc, fontsize=8.5, markerscale=3)

    g = df["phot_g_mean_mag"].to_numpy(float)
    bprp = (df["phot_bp_mean_mag"] - df["phot_rp_mean_mag"]).to_numpy(float)
    panel(axes[0, 0], bprp, g + mu, "Gaia DR3 (ϖ/σ > 5)", "BP − RP (mag)",
          "$M_G$ = G + 5 log$_{10}$(ϖ / 100 mas) (mag, not dereddened)")
    axes[0, 0].invert_yaxis()
    av = 2.0
    _reddening_arrow(axes[0, 0], av * (k["phot_bp_mean_mag"] - k["phot_rp_mean_mag"]), av * k["phot_g_mean_mag"],
                     f"$A_V$ = {av:g} mag", at=(0.72, 0.93), y_inverted=True)
    ks = df["ks_m"].to_numpy(float)
    jk = (df["j_m"] - df["ks_m"]).to_numpy(float)
    panel(axes[0, 1], jk, ks + mu, "2MASS (ϖ/σ > 5)", "J − Ks (mag)", "$M_{Ks}$ (mag, not dereddened)")
    axes[0, 1].invert_yaxis()
    av = 5.0
    _reddening_arrow(axes[0, 1], av * (k["j_m"] - k["ks_m"]), av * k["ks_m"], f"$A_V$ = {av:g} mag", at=(0.55, 0.93),
                     y_inverted=True)
    kw3 = (df["ks_m"] - df["w3mpro"]).to_numpy(float)
    w12 = (df["w1mpro"] - df["w2mpro"]).to_numpy(float)
    panel(axes[1, 0], kw3, w12, "2MASS/AllWISE: disks show Ks − W3 excess", "Ks − W3 (mag)", "W1 − W2 (mag)",
          legend_loc="upper left")
    av = 10.0
    _reddening_arrow(axes[1, 0], av * (k["ks_m"] - k["w3mpro"]), av * (k["w1mpro"] - k["w2mpro"]),
                     f"$A_V$ = {av:g} mag", at=(0.62, 0.12))

    # missing fraction vs noise-free magnitude (photospheric, no binaries / disks), stars with photometry
    ph = ~df["is_remnant"].to_numpy(bool) & np.isfinite(df["teff_k"].to_numpy(float))
    m_true = np.full((len(df), len(io.MAGNITUDES)), np.nan, np.float32)
    m_true[ph] = bc.magnitudes(df["teff_k"].to_numpy()[ph], df["logg"].to_numpy()[ph],
                               df["log10_lum_lsun"].to_numpy()[ph], df["feh"].to_numpy()[ph],
                               df["av_mag"].to_numpy()[ph], df["distance_pc"].to_numpy()[ph])
    bins = np.arange(0.0, 24.01, 0.5)
    centres = 0.5 * (bins[1:] + bins[:-1])
    ax = axes[1, 1]
    col = {b: io.MAGNITUDES.index(b) for b in io.MAGNITUDES}
    g_col, bp_col, _ = io.GAIA_BANDS
    ks_col, w1_col, w3_col = io.TMASS_BANDS[2], io.WISE_BANDS[0], io.WISE_BANDS[2]
    ewha_col = io.LAMOST_LABELS[4]
    curves = [("Gaia G", g_col, g_col),
              ("Gaia BP/RP", g_col, bp_col),
              ("Gaia parallax", g_col, "parallax"),
              ("2MASS Ks", ks_col, ks_col),
              ("AllWISE W1", w1_col, w1_col),
              ("AllWISE W3", w3_col, w3_col),
              ("LAMOST spectrum (vs G)", g_col, ewha_col)]
    for label, band, measured in curves:
        f = missing_fraction(m_true[ph, col[band]], df[measured].notna().to_numpy()[ph], bins)
        ax.plot(centres, f, drawstyle="steps-mid", label=label)
    ax.set_xlabel("noise-free magnitude in the survey's band (mag)")
    ax.set_ylabel("fraction of stars without the measurement")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("missingness is not at random: detection limits, footprint, targeting")
    ax.legend(fontsize=8.5, loc="center left")
    meta = io.read_metadata(population_path) or {}
    tiles = sorted({int(t) for t in df["tile"].unique()}) if "tile" in df.columns else []
    where = (f"tile{'s' if len(tiles) > 1 else ''} {_ranges(tiles)} (HEALPix nside {meta['nside']})"
             if tiles and "nside" in meta else "one job chunk")
    fig.suptitle(f"Simulated catalog of {where}: {len(df):,} stars, "
                 f"{int((df['survey_mask'] != 0).sum()):,} detected by at least one survey", fontsize=13, y=0.995)
    thin = meta.get("thinning") or {}

    def kept(f):
        return "all" if f >= 1 else f"1 in {1 / f:,.0f}"

    rates = (f": kept are {kept(thin['young'])} of the cluster and association stars, {kept(thin['young_field'])} "
             f"of the young field, {kept(thin['field'])} of the old field"
             if {"young", "young_field", "field"} <= set(thin) else "")
    fig.text(0.5, 0.962,
             f"Young stars (< {young_threshold_myr:g} Myr) are over-represented on purpose{rates}.\n"
             "Counts are simulated rows, not stars on the sky. Arrows: reddening by the simulator's extinction "
             "(G23, $R_V$ = 3.1) for a Sun-like star.",
             ha="center", va="top", fontsize=10, color="0.2")
    fig.tight_layout(rect=(0, 0, 1, 0.935))
    with io.atomic_path(output_path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    log.info("wrote %s", output_path)
