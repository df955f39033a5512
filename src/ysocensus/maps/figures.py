"""Figures: Mollweide maps in Galactic coordinates (l = 0 at the centre, l increasing to the left, the plane
horizontal), face-on and edge-on dust maps with YSOs, and binned trends. Matplotlib with the Agg backend."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ysocensus import io


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path, dpi: int) -> None:
    """Save a figure atomically (PNG) and close it."""
    plt = _plt()
    with io.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=Path(path).suffix.lstrip(".") or "png", bbox_inches="tight")
    plt.close(fig)


def _log_ticks(lo: float, hi: float) -> list[float]:
    ticks = [10.0**k for k in range(int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi))) + 1)]
    inside = [t for t in ticks if lo * 0.999 <= t <= hi * 1.001]
    return inside if len(inside) >= 2 else [lo, hi]


def mollweide(fig, sub, hmap: np.ndarray, title: str, unit: str, log: bool = False, cmap: str = "viridis",
              vmin: float | None = None, vmax: float | None = None, ticks=None) -> None:
    """One Mollweide panel of a NESTED map (Galactic; NaN / non-positive-on-log shown grey)."""
    import healpy as hp

    m = np.array(hmap, np.float64)
    bad = ~np.isfinite(m) | ((m <= 0) if log else False)
    good = m[~bad]
    if vmin is None:
        vmin = float(np.nanpercentile(good, 1)) if good.size else (1.0 if log else 0.0)
    if vmax is None:
        vmax = float(np.nanmax(good)) if good.size else vmin * 10 + 1
    if vmax <= vmin:
        vmax = vmin * 10 if log else vmin + 1
    m[bad] = hp.UNSEEN
    if ticks is None:
        ticks = _log_ticks(vmin, vmax) if log else list(np.linspace(vmin, vmax, 5))
    ticks = [float(t) for t in ticks if vmin * 0.999 <= t <= vmax * 1.001]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hp.projview(m, nest=True, fig=fig.number, sub=sub, coord=None, graticule=True, graticule_labels=True,
                    projection_type="mollweide", flip="astro", unit=unit, title=title,
                    norm="log" if log else None, min=vmin, max=vmax, cmap=cmap, xlabel="Galactic longitude l",
                    ylabel="Galactic latitude b", cb_orientation="horizontal", longitude_grid_spacing=60,
                    latitude_grid_spacing=30, badcolor="lightgrey", cbar_ticks=ticks,
                    override_plot_properties={"figure_width": fig.get_figwidth(), "cbar_label_pad": 2})


def mollweide_panels(path, panels, dpi: int, ncols: int = 1, panel_size=(8.5, 5.0), suptitle: str | None = None):
    """A figure of Mollweide panels: ``panels`` is a list of dicts of :func:`mollweide` keyword arguments."""
    plt = _plt()
    nrows = int(np.ceil(len(panels) / ncols))
    fig = plt.figure(figsize=(panel_size[0] * ncols, panel_size[1] * nrows))
    for i, p in enumerate(panels):
        mollweide(fig, (nrows, ncols, i + 1), **p)
    if suptitle:
        fig.suptitle(suptitle, fontsize=14, y=1.0 + 0.35 / fig.get_figheight())
    save(fig, path, dpi)


def running_percentiles(x, y, w, edges, qs=(16, 50, 84)):
    """Weighted percentiles of y in bins of x → (centres, [len(qs), n_bins]) (NaN in empty bins)."""
    centres = 0.5 * (edges[1:] + edges[:-1])
    out = np.full((len(qs), len(centres)), np.nan)
    idx = np.digitize(x, edges) - 1
    for k in range(len(centres)):
        sel = (idx == k) & np.isfinite(y) & (w > 0)
        if sel.sum() < 5:
            continue
        order = np.argsort(y[sel])
        ys, cw = y[sel][order], np.cumsum(w[sel][order])
        cw = cw / cw[-1]
        out[:, k] = np.interp(np.asarray(qs) / 100.0, cw, ys)
    return centres, out
