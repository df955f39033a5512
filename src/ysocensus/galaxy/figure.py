"""The population's sky figure: star counts, young stars and extinction in Galactic coordinates."""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

from .. import io

log = logging.getLogger(__name__)

YOUNG_LOG_AGE = np.log10(50e6)


def sky_figure(paths: Sequence[str], out_path, nside: int, map_nside: int = 8) -> dict:
    """Write a three-panel Mollweide figure of the population files ``paths`` to ``out_path`` (PNG)."""
    import healpy as hp
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
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
    dens = np.where(covered & (counts > 0), np.log10(np.maximum(counts, 1e-30)), hp.UNSEEN)
    young = d["log10_age_yr"] < YOUNG_LOG_AGE
    ycount = np.bincount(pix[young], weights=d["weight"][young], minlength=npix) / area
    ymap = np.where(covered, np.log10(ycount + 1e-2), hp.UNSEEN)
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
    fig = plt.figure(figsize=(10, 15))
    hp.mollview(dens, fig=fig.number, sub=(3, 1, 1), title="stars per deg$^2$ (log$_{10}$, weighted, after the magnitude cut)",
                unit="log10 N / deg2", cmap="magma", badcolor="lightgrey")
    hp.graticule(dpar=30, dmer=60, alpha=0.3)
    hp.mollview(ymap, fig=fig.number, sub=(3, 1, 2), title="young stars (< 50 Myr): density and the stars themselves",
                unit="log10 N / deg2", cmap="Greys", badcolor="lightgrey")
    hp.graticule(dpar=30, dmer=60, alpha=0.3)
    if young.any():
        sel = np.flatnonzero(young)
        if sel.size > 20000:
            sel = np.random.default_rng(0).choice(sel, 20000, replace=False)
        hp.projscatter(d["l"][sel], d["b"][sel], lonlat=True, s=1.5, c=d["log10_age_yr"][sel], cmap="plasma",
                       vmin=5.7, vmax=YOUNG_LOG_AGE, alpha=0.6)
    hp.mollview(av_med, fig=fig.number, sub=(3, 1, 3), title="median A$_V$ of the simulated stars",
                unit="mag", cmap="viridis", min=0, max=np.percentile(av_med[av_med != hp.UNSEEN], 98) if (av_med != hp.UNSEEN).any() else 1,
                badcolor="lightgrey")
    hp.graticule(dpar=30, dmer=60, alpha=0.3)
    from ..io import atomic_path

    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    summary = {"rows": int(table.num_rows), "young_rows": int(young.sum()), "tiles": int(tiles.size),
               "weighted_stars": float(d["weight"].sum())}
    log.info("sky figure %s: %s", out_path, summary)
    return summary
