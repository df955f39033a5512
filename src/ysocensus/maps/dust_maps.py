"""YSO ages against the 3D dust: face-on (X–Y) and edge-on (X–Z, Y–Z) dust maps with the inferred YSOs
coloured by median age, and median age against the dust density at the star and the dust column to it.

The dust is the stage-1 grid (``ysocensus.dust.DustField``: ``density`` in A_V per pc on heliocentric
``x_pc``, ``y_pc``, ``z_pc``). Face-on shows the vertical column ∫ρ dz (mag); edge-on the column through a
slab |y| < ``edgeon_slab_pc`` (X–Z) or |x| < ``edgeon_slab_pc`` (Y–Z). A YSO's position is its catalog l, b
at the posterior median distance.
"""

from __future__ import annotations

import numpy as np

from ysocensus.maps.figures import _plt, running_percentiles, save

AGE_RANGE_MYR = (0.3, 50.0)
AGE_TICKS_MYR = (0.3, 1, 3, 10, 30, 50)


def _plain_ticks(cb, ticks=None):
    from matplotlib.ticker import FuncFormatter, NullFormatter

    if ticks is None:  # 1-2-5 ticks inside the colour range
        lo, hi = cb.mappable.norm.vmin, cb.mappable.norm.vmax
        ticks = [m * 10.0**k for k in range(-4, 3) for m in (1, 2, 5) if lo <= m * 10.0**k <= hi]
    cb.set_ticks(list(ticks))
    fmt = FuncFormatter(lambda v, _: f"{v:g}")
    axis = cb.ax.xaxis if cb.orientation == "horizontal" else cb.ax.yaxis
    axis.set_major_formatter(fmt)
    axis.set_minor_formatter(NullFormatter())


def dot_size(n: int) -> float:
    """Marker area (pt²) of n candidates: large enough to see one star (≥ 3.5 pt across), smaller in crowds."""
    return float(np.clip(2.0e5 / max(n, 1), 10.0, 25.0))


def _age_scatter(ax, u, v, age_myr, norm, size=None):
    order = np.argsort(-age_myr)  # youngest on top
    size = dot_size(len(u)) if size is None else size
    return ax.scatter(u[order], v[order], c=age_myr[order], s=size, cmap="plasma", norm=norm,
                      edgecolors="none", alpha=0.85)


def _limits(axis: np.ndarray, extent: float) -> tuple[float, float]:
    """The plotted range along one axis: ±``extent`` (``maps.faceon_extent_pc``), cut to the dust grid, so that the
    axes never show empty space around a smaller grid (config/test.yaml: ±600 pc)."""
    return max(-extent, float(axis[0])), min(extent, float(axis[-1]))


def _inside(u, lim) -> np.ndarray:
    return (u >= lim[0]) & (u <= lim[1])


def _sun(ax):
    ax.plot(0, 0, marker="*", color="cyan", ms=11, mec="k", mew=0.6, zorder=5)


def faceon(dust, yso: dict, extent: float, path, dpi: int, title_extra: str = "") -> None:
    """Face-on X–Y: vertical dust column with YSO candidates coloured by median age."""
    from matplotlib.colors import LogNorm

    plt = _plt()
    dz = float(dust.z_pc[1] - dust.z_pc[0])
    column = np.maximum(dust.density, 0).sum(axis=2) * dz
    fig, ax = plt.subplots(figsize=(10, 10))
    pos = column[column > 0]
    im = ax.imshow(column.T, origin="lower", cmap="Greys",
                   extent=[dust.x_pc[0], dust.x_pc[-1], dust.y_pc[0], dust.y_pc[-1]],
                   norm=LogNorm(vmin=max(np.percentile(pos, 2), 1e-3), vmax=np.percentile(pos, 99.8)))
    norm = LogNorm(*AGE_RANGE_MYR)
    xlim, ylim = _limits(dust.x_pc, extent), _limits(dust.y_pc, extent)
    shown = _inside(yso["x"], xlim) & _inside(yso["y"], ylim)
    sc = _age_scatter(ax, yso["x"][shown], yso["y"][shown], yso["age_myr"][shown], norm)
    _sun(ax)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.set_xlabel("X (pc, towards the Galactic centre)")
    ax.set_ylabel("Y (pc, towards l = 90°)")
    beyond = f"; {int((~shown).sum()):,} more beyond the dust grid" if (~shown).any() else ""
    ax.set_title(f"YSO candidates on the 3D dust, face-on: {int(shown.sum()):,} stars{beyond}\n"
                 f"(the Sun: cyan star){title_extra}", fontsize=11)
    c1 = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
    c1.set_label("dust column through the disk, ∫ρ dz = A$_V$ (mag)")
    _plain_ticks(c1)
    c2 = fig.colorbar(sc, ax=ax, fraction=0.04, pad=0.07, location="bottom")
    c2.set_label("YSO candidate: posterior median age (Myr)")
    _plain_ticks(c2, AGE_TICKS_MYR)
    save(fig, path, dpi)


def edgeon(dust, yso: dict, extent: float, slab: float, path, dpi: int) -> None:
    """Edge-on X–Z (|Y| < slab) and Y–Z (|X| < slab) dust columns with YSO candidates."""
    from matplotlib.colors import LogNorm

    plt = _plt()
    step = float(dust.x_pc[1] - dust.x_pc[0])
    rho = np.maximum(dust.density, 0)
    in_y = np.abs(dust.y_pc) < slab
    in_x = np.abs(dust.x_pc) < slab
    xz = rho[:, in_y, :].sum(axis=1) * step
    yz = rho[in_x, :, :].sum(axis=0) * step
    zmax = float(dust.z_pc[-1])
    xlim, ylim = _limits(dust.x_pc, extent), _limits(dust.y_pc, extent)
    # each panel as tall as its data at equal aspect, plus its title and labels: no blank margins
    width = 13.0
    heights = [(width - 1.6) * 2 * zmax / (lim[1] - lim[0]) + 0.75 for lim in (xlim, ylim)]
    fig, axes = plt.subplots(2, 1, figsize=(width, sum(heights) + 1.1), layout="constrained",
                             height_ratios=heights)
    norm = LogNorm(*AGE_RANGE_MYR)
    pos = np.concatenate([xz[xz > 0], yz[yz > 0]])
    dnorm = LogNorm(vmin=max(np.percentile(pos, 2), 1e-3), vmax=np.percentile(pos, 99.8))
    sc = None
    for ax, img, hcoord, haxis, hlim, other, label in (
            (axes[0], xz, "x", dust.x_pc, xlim, "y", "X (pc, towards the Galactic centre)"),
            (axes[1], yz, "y", dust.y_pc, ylim, "x", "Y (pc, towards l = 90°)")):
        im = ax.imshow(img.T, origin="lower", cmap="Greys", norm=dnorm, aspect="equal",
                       extent=[haxis[0], haxis[-1], dust.z_pc[0], dust.z_pc[-1]])
        sel = (np.abs(yso[other]) < slab) & _inside(yso[hcoord], hlim) & (np.abs(yso["z"]) <= zmax)
        sc = _age_scatter(ax, yso[hcoord][sel], yso["z"][sel], yso["age_myr"][sel], norm, size=dot_size(len(yso["z"])))
        _sun(ax)
        ax.set_xlim(*hlim)
        ax.set_ylim(-zmax, zmax)
        ax.set_xlabel(label)
        ax.set_ylabel("Z (pc)")
        ax.set_title(f"edge-on, |{other.upper()}| < {slab:g} pc: {int(sel.sum()):,} YSO candidates inside the "
                     f"dust grid", fontsize=11)
        cb = fig.colorbar(im, ax=ax, fraction=0.025, pad=0.01)
        cb.set_label("dust column through\nthe slab, A$_V$ (mag)")
        _plain_ticks(cb)
    cb = fig.colorbar(sc, ax=axes, fraction=0.04, pad=0.02, location="bottom", aspect=40)
    cb.set_label("YSO candidate: posterior median age (Myr)")
    _plain_ticks(cb, AGE_TICKS_MYR)
    save(fig, path, dpi)


def age_vs_dust(inferred: dict, truth: dict | None, path, dpi: int) -> dict:
    """Median age against local dust density and against the dust column to the star (with the truth).

    Returns Spearman rank correlations of age with local density (inferred, truth).
    """
    from scipy.stats import spearmanr

    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.6), sharey=True)
    out = {}
    for ax, key, label, edges in (
            (axes[0], "rho", "dust density at the star, ρ (A$_V$ per pc)", np.logspace(-5, -1, 17)),
            (axes[1], "av", "dust column to the star, A$_V$ (mag)", np.logspace(-2.5, 1, 15))):
        x = np.clip(inferred[key], edges[0], None)
        ax.scatter(x, inferred["age_myr"], s=5, c="C0", alpha=0.25, edgecolors="none",
                   label="YSO candidate (posterior median age)")
        c, q = running_percentiles(np.log10(x), np.log10(inferred["age_myr"]), inferred["w"], np.log10(edges))
        ax.plot(10**c, 10 ** q[1], "-", color="C0", lw=2.5, label="inferred: running median")
        ax.fill_between(10**c, 10 ** q[0], 10 ** q[2], color="C0", alpha=0.15)
        if truth is not None and len(truth["age_myr"]):
            xt = np.clip(truth[key], edges[0], None)
            c, q = running_percentiles(np.log10(xt), np.log10(truth["age_myr"]), truth["w"], np.log10(edges))
            ax.plot(10**c, 10 ** q[1], "--", color="C3", lw=2.2, label="truth (all YSOs): running median")
            ax.fill_between(10**c, 10 ** q[0], 10 ** q[2], color="C3", alpha=0.10)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(edges[0], edges[-1])
        ax.set_xlabel(label)
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("age (Myr)")
    axes[0].set_ylim(0.3, 60)
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    axes[0].yaxis.set_major_locator(FixedLocator(AGE_TICKS_MYR))
    axes[0].yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axes[0].yaxis.set_minor_formatter(NullFormatter())
    axes[0].legend(loc="lower left", fontsize=9, markerscale=3)
    ok = np.isfinite(inferred["rho"]) & np.isfinite(inferred["age_myr"])
    if ok.sum() > 3:
        out["spearman_age_vs_density_inferred"] = float(spearmanr(inferred["rho"][ok], inferred["age_myr"][ok])[0])
    if truth is not None and len(truth["age_myr"]) > 3:
        out["spearman_age_vs_density_truth"] = float(spearmanr(truth["rho"], truth["age_myr"])[0])
    fig.suptitle("Do young stars sit in their clouds? YSO age against the dust (band: 16–84%)", fontsize=13)
    fig.tight_layout()
    save(fig, path, dpi)
    return out
