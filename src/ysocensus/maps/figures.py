"""Figures: Mollweide maps in Galactic coordinates (l = 0 at the centre, l increasing to the left, the plane
horizontal), face-on and edge-on dust maps with YSOs, and binned trends. Matplotlib with the Agg backend."""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import numpy as np

from ysocensus import io


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


#: set by :func:`smoke_test_figures`: every figure :func:`save` writes is marked as a smoke test's
_SMOKE_TEST: ContextVar[bool] = ContextVar("ysocensus_maps_smoke_test", default=False)
SMOKE_TEST_NOTE = "SMOKE TEST: a model trained far too briefly; these maps are not meaningful"


@contextmanager
def smoke_test_figures(on: bool):
    """Within this block, :func:`save` marks every figure as a smoke test's (config key ``preset.smoke_test``)."""
    token = _SMOKE_TEST.set(bool(on))
    try:
        yield
    finally:
        _SMOKE_TEST.reset(token)


def save(fig, path, dpi: int) -> None:
    """Save a figure atomically (PNG) and close it."""
    plt = _plt()
    if _SMOKE_TEST.get():
        fig.text(0.5, 1.0 + 0.08 / fig.get_figheight(), SMOKE_TEST_NOTE, ha="center", va="bottom", color="crimson",
                 fontsize=13, fontweight="bold", transform=fig.transFigure)
    with io.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=Path(path).suffix.lstrip(".") or "png", bbox_inches="tight")
    plt.close(fig)


def _log_ticks(lo: float, hi: float) -> list[float]:
    """Decades inside [lo, hi]; 1-2-5 steps where fewer than two decades fall inside."""
    decades = range(int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi))) + 1)
    for mantissas in ((1,), (1, 2, 5), (1, 1.5, 2, 3, 5, 7)):
        inside = [m * 10.0**k for k in decades for m in mantissas if lo * 0.999 <= m * 10.0**k <= hi * 1.001]
        if len(inside) >= 2:
            return inside
    return [lo, hi]


#: graticule spacing of the Mollweide panels (degrees)
MERIDIANS_DEG = 60
PARALLELS_DEG = 30


def plain_number(v: float) -> str:
    """A colour-bar or axis tick without float noise or exponents: 0.05, 2, 2.27, 1,000, 20,000."""
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def galactic_graticule_labels(ax, fontsize: float = 9) -> None:
    """Label a healpy Mollweide panel (Galactic, l = 0 at the centre, l growing to the left) outside the sky:
    latitudes beside the left edge, where the parallels meet it, and longitudes in a row below the map, under
    the points where the meridians cross the plane b = 0 (and 180° at both ends of the plane). Nothing is
    written over the data, the Galactic plane least of all."""
    def xy(l, b):
        x, y = ax.proj.ang2xy(np.array([float(l)]), np.array([float(b)]), lonlat=True)
        return float(np.ravel(x)[0]), float(np.ravel(y)[0])

    for b in range(-90 + PARALLELS_DEG, 90, PARALLELS_DEG):
        x, y = xy(180.0 - 1e-6, b)
        ax.text(-abs(x) - 0.05, y, f"b = {b:+d}°" if b else "b = 0°", ha="right", va="center", fontsize=fontsize,
                clip_on=False)
    x_edge = abs(xy(180.0 - 1e-6, 0)[0])
    for l in range(-180, 181, MERIDIANS_DEG):
        x = -x_edge if l == 180 else x_edge if l == -180 else xy(l % 360, 0)[0]
        ax.text(x, -1.06, f"{l % 360:d}°", ha="center", va="top", fontsize=fontsize, clip_on=False)
    ax.text(0.0, -1.2, "Galactic longitude l, where each meridian crosses the plane", ha="center", va="top",
            fontsize=fontsize, clip_on=False)


#: Mollweide panel layout (inches): room for the title above the map, the latitude labels to its left, the
#: longitude labels and the colour bar below it
_TITLE_IN, _LEFT_IN, _RIGHT_IN, _BELOW_IN = 0.55, 0.75, 0.2, 1.45


def panel_figure(n: int, ncols: int = 1, map_width_in: float = 9.0, extra_top_in: float = 0.0):
    """A figure for ``n`` Mollweide panels: (figure, [(map rect, colour-bar rect) in figure fractions, ...])."""
    plt = _plt()
    nrows = int(np.ceil(n / ncols))
    map_h = map_width_in / 2.0
    cell_w, cell_h = _LEFT_IN + map_width_in + _RIGHT_IN, _TITLE_IN + map_h + _BELOW_IN
    fw, fh = cell_w * ncols, cell_h * nrows + extra_top_in
    fig = plt.figure(figsize=(fw, fh))
    rects = []
    for i in range(n):
        r, c = divmod(i, ncols)
        x0 = c * cell_w + _LEFT_IN
        y0 = fh - extra_top_in - (r + 1) * cell_h + _BELOW_IN
        map_rect = (x0 / fw, y0 / fh, map_width_in / fw, map_h / fh)
        cbar_rect = ((x0 + 0.2 * map_width_in) / fw, (y0 - 1.0) / fh, 0.6 * map_width_in / fw, 0.17 / fh)
        rects.append((map_rect, cbar_rect))
    return fig, rects


def mollweide(fig, rects, hmap: np.ndarray, title: str, unit: str, log: bool = False, cmap: str = "viridis",
              vmin: float | None = None, vmax: float | None = None, ticks=None, nest: bool = True,
              badcolor: str = "lightgrey"):
    """One Mollweide panel of a HEALPix map in Galactic coordinates at ``rects`` = (map rect, colour-bar rect) of
    :func:`panel_figure`: NaN (and non-positive values on a log scale) in ``badcolor``, graticule labels outside
    the sky, a colour bar with plain tick labels. Returns the panel's axes (healpy ``projaxes``: ``ax.proj``,
    ``ax.projscatter``)."""
    import healpy as hp
    from matplotlib import cm
    from matplotlib.colors import LogNorm, Normalize
    from matplotlib.ticker import FuncFormatter, NullFormatter

    plt = _plt()
    m = np.array(hmap, np.float64)
    bad = ~np.isfinite(m) | ((m <= 0) if log else False) | (m == hp.UNSEEN)
    good = m[~bad]
    if vmin is None:
        vmin = float(np.nanpercentile(good, 1)) if good.size else (1.0 if log else 0.0)
    if vmax is None:
        vmax = float(np.nanmax(good)) if good.size else vmin * 10 + 1
    if vmax <= vmin:
        vmax = vmin * 10 if log else vmin + 1
    m[bad] = hp.UNSEEN
    if ticks is None:
        ticks = _log_ticks(vmin, vmax) if log else _nice_ticks(vmin, vmax)
    ticks = [float(t) for t in ticks if vmin * 0.999 <= t <= vmax * 1.001 or (t == 0 and vmin == 0)]
    map_rect, cbar_rect = rects
    plt.figure(fig.number)
    fig.add_axes(map_rect)  # healpy's hold=True puts the panel exactly where this placeholder is
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # healpy's masked-array and deprecation chatter while projecting
        hp.mollview(m, nest=nest, hold=True, margins=(0, 0, 0, 0), title="", cmap=cmap, min=vmin, max=vmax,
                    norm="log" if log else None, cbar=False, badcolor=badcolor, flip="astro", notext=True)
    ax = plt.gca()
    ax.graticule(dpar=PARALLELS_DEG, dmer=MERIDIANS_DEG, alpha=0.35, color="0.25", lw=0.6)
    galactic_graticule_labels(ax)
    ax.set_title(title, fontsize=11.5, pad=6)
    norm = LogNorm(vmin, vmax) if log else Normalize(vmin, vmax)
    cb = fig.colorbar(cm.ScalarMappable(norm=norm, cmap=ax.get_images()[0].cmap), cax=fig.add_axes(cbar_rect),
                      orientation="horizontal")
    cb.set_ticks(ticks)
    cb.ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: plain_number(v)))
    cb.ax.xaxis.set_minor_formatter(NullFormatter())
    cb.ax.tick_params(labelsize=9)
    cb.set_label(unit, fontsize=10)
    return ax


def _nice_ticks(lo: float, hi: float) -> list[float]:
    from matplotlib.ticker import MaxNLocator

    return [float(t) for t in MaxNLocator(nbins=5).tick_values(lo, hi) if lo - 1e-12 <= t <= hi + 1e-12]


def mollweide_panels(path, panels, dpi: int, ncols: int = 1, map_width_in: float = 9.0,
                     suptitle: str | None = None):
    """A figure of Mollweide panels: ``panels`` is a list of dicts of :func:`mollweide` keyword arguments."""
    fig, rects = panel_figure(len(panels), ncols, map_width_in, extra_top_in=0.45 if suptitle else 0.0)
    for p, r in zip(panels, rects):
        mollweide(fig, r, **p)
    if suptitle:
        fig.suptitle(suptitle, fontsize=13, y=1 - 0.12 / fig.get_figheight(), va="top")
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
