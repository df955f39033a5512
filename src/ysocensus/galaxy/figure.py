"""The population's sky figure: star counts, young stars and extinction in Galactic coordinates."""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

from .. import io

log = logging.getLogger(__name__)


def sky_figure(paths: Sequence[str], out_path, nside: int, map_nside: int = 8,
               young_threshold_myr: float = io.YOUNG_THRESHOLD_MYR) -> dict:
    """Write a three-panel Mollweide figure of the population files ``paths`` to ``out_path`` (PNG); young =
    younger than ``young_threshold_myr`` (config ``infer.young_threshold_myr``)."""
    import healpy as hp
    import pyarrow as pa

    cols = ["tile", "l", "b", "log10_age_yr", "weight", "av_mag"]
    table = pa.concat_tables([io.read_table(p, io.POPULATION, columns=cols) for p in paths])
    d = {c: table.column(c).to_numpy() for c in cols}
    mnside = max(map_nside, nside)
    npix = hp.nside2npix(mnside)
    pix = hp.ang2pix(mnside, d["l"], d["b"], lonlat=True)
    area = hp.nside2pixarea(mnside, degrees=True)
    counts = np.bincount(pix, weights=d["weight"], minlength=npix) / area
    covered = np.zeros(npix, bool)
    tiles = np.unique(d["tile"])
    # pixels of the fine map that lie in a simulated tile
    fine_tiles = hp.ang2pix(nside, *hp.pix2ang(mnside, np.arange(npix), lonlat=True), lonlat=True, nest=True)
    covered[np.isin(fine_tiles, tiles)] = True
    young_log_age = io.log10_age_threshold(young_threshold_myr)
    young = d["log10_age_yr"] < young_log_age
    ycount = np.bincount(pix[young], weights=d["weight"][young], minlength=npix) / area
    # extinction on a finer map (every star counts once, so it is less noisy than the weighted counts)
    anside = 2 * mnside
    apix = hp.ang2pix(anside, d["l"], d["b"], lonlat=True)
    order = np.argsort(apix, kind="stable")
    av_med = np.full(hp.nside2npix(anside), hp.UNSEEN)
    if apix.size:
        sp, sav = apix[order], d["av_mag"][order]
        starts = np.flatnonzero(np.r_[True, sp[1:] != sp[:-1]])
        ends = np.r_[starts[1:], sp.size]
        for s, e in zip(starts, ends):
            av_med[sp[s]] = np.median(sav[s:e])
    from ..maps.figures import mollweide, panel_figure, plain_number, save

    fig, rects = panel_figure(3, map_width_in=9.0)
    dens_lin = np.where(covered & (counts > 0), counts, np.nan)
    mollweide(fig, rects[0], dens_lin, nest=False, log=True, cmap="magma", unit="stars per deg$^2$",
              title="All simulated stars after the magnitude cut (weighted by 1/thinning)")
    # young stars: their density (white where a simulated tile has none) and the stars themselves by age
    yd = np.where(covered, ycount, np.nan)
    ypos = yd[np.isfinite(yd) & (yd > 0)]
    ylo = float(np.percentile(ypos, 2)) if ypos.size else 1e-2
    yhi = float(ypos.max()) if ypos.size else 1.0
    yd = np.where(np.isfinite(yd) & (yd <= 0), ylo * 0.5, yd)  # below the range: the colour map's white end
    map_rect, cbar_rect = rects[1]
    left = (cbar_rect[0] - 0.1 * cbar_rect[2], cbar_rect[1], 0.55 * cbar_rect[2], cbar_rect[3])
    right = (cbar_rect[0] + 0.6 * cbar_rect[2], cbar_rect[1], 0.55 * cbar_rect[2], cbar_rect[3])
    ax = mollweide(fig, (map_rect, left), yd, nest=False, log=True, cmap="Greys", vmin=ylo, vmax=yhi,
                   unit="young stars per deg$^2$ (grey scale)",
                   title=f"Young stars (< {young_threshold_myr:g} Myr): density, and the stars coloured by age")
    if young.any():
        sel = np.flatnonzero(young)
        if sel.size > 20000:
            sel = np.random.default_rng(0).choice(sel, 20000, replace=False)
        sel = sel[np.argsort(-d["log10_age_yr"][sel])]  # youngest on top
        from matplotlib.colors import LogNorm
        from matplotlib.ticker import FuncFormatter, NullFormatter

        age_myr = 10 ** d["log10_age_yr"][sel] / 1e6
        sc = ax.projscatter(d["l"][sel], d["b"][sel], lonlat=True, s=3, c=age_myr, cmap="plasma",
                            norm=LogNorm(0.5, young_threshold_myr), alpha=0.7, edgecolors="none")
        cb = fig.colorbar(sc, cax=fig.add_axes(right), orientation="horizontal")
        cb.set_ticks([0.5, 1, 2, 5, 10, 20, 50])
        cb.ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: plain_number(v)))
        cb.ax.xaxis.set_minor_formatter(NullFormatter())
        cb.ax.tick_params(labelsize=9)
        cb.set_label("age of each young star (Myr; points)", fontsize=10)
    good_av = av_med != hp.UNSEEN
    mollweide(fig, rects[2], np.where(good_av, av_med, np.nan), nest=False, cmap="viridis", vmin=0.0,
              vmax=float(np.percentile(av_med[good_av], 98)) if good_av.any() else 1.0, unit="median $A_V$ (mag)",
              title="Extinction: median $A_V$ of the simulated stars in each pixel")
    save(fig, out_path, 90)
    summary = {"rows": int(table.num_rows), "young_rows": int(young.sum()), "tiles": int(tiles.size),
               "weighted_stars": float(d["weight"].sum())}
    log.info("sky figure %s: %s", out_path, summary)
    return summary
