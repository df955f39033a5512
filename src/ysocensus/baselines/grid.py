"""Brute-force grid posterior: the brutus-style reference for a few stars.

The posterior p(θ | x, l, b) of θ = (log10 age, log10 initial mass, [Fe/H], distance, A_V) under the very
models the simulator uses, evaluated by brute force:

* **Library** (``ModelLibrary``): a dense regular grid of ([Fe/H], log10 age) nodes (default [Fe/H] step
  0.1 dex in −1 … +0.5 and 0.25 dex below, log age step 0.05 dex from 5.7 = 0.5 Myr, the youngest age
  simulated, to 10.15) times, per node, every living mass of the isochrone grid's own log-mass axis below the
  terminal-age main sequence plus ``n_evolved`` points uniform in the evolved-segment fraction u
  (``IsochroneGrid`` keeps giants on that segment: a regular mass axis would miss them). Stellar parameters
  come from ``IsochroneGrid.interpolate`` (the population stage's lookup), absolute magnitudes from
  ``BCGrid.absolute_magnitudes`` (the observe stage's) at a few A_V nodes; between those nodes magnitudes
  are linear in A_V (the BC tables are piecewise linear in A_V; the chord error is < 0.01 mag).
* **Likelihood**: Gaussian in every observed magnitude of ``bands`` (σ from the catalog, plus
  ``error_floor_mag`` in quadrature), in the Gaia parallax and in the LAMOST T_eff, log g, [Fe/H] labels
  (the labels are the primary's truth plus Gaussian noise in the simulator). Single star, R_V = 3.1, no
  disk excess (W3/W4, where disks dominate, are left out by default), no Li/Hα tracers.
* **Prior** (``GalacticPrior``): the population stage's Milky Way: the smooth Besançon components
  (``galaxy.components``: density × d² along the line of sight, age uniform in linear age within each
  component's range, [Fe/H] Gaussian with the radial gradient), and the young complexes of
  ``galaxy.young.build_clusters`` for the same seed and config (associations: 3D Gaussians, ages uniform in
  log age; clusters: Plummer spheres, ages Gaussian with the cluster's spread), Kroupa/Chabrier IMF,
  distance limited to the population's [distance_min, distance_max]. A_V = the 3D dust field at (l, b, d),
  as in the simulator (no scatter): distance and A_V are one latent along the line of sight. Thinning
  weights are undone (the Galactic population, as the model's importance weights target).
* **Marginalisation / sampling**: for each library point and each node of a distance grid (log-spaced,
  two passes: a coarse pass over the whole range locates the posterior, a fine pass resolves it) the
  log posterior is exact up to the grid; samples are drawn from the discrete posterior (library point, then
  distance cell) and spread uniformly within their cell (log age, [Fe/H], log mass, log distance), A_V is
  the dust at the sampled distance.

Cost is reported per star (``GridPosterior.sample_frame`` returns seconds per star).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
from scipy.special import logsumexp, ndtr

from ysocensus import io

log = logging.getLogger(__name__)

GAIA_SIGMA = 2.5 / np.log(10.0)
#: Gaia G, BP, RP, 2MASS J, H, Ks and WISE W1, W2 (W3/W4 carry disk excess)
DEFAULT_BANDS = io.GAIA_BANDS + io.TMASS_BANDS + io.WISE_BANDS[:2]
_ERR = {m: e for m, e in zip(io.GAIA_BANDS, io.GAIA_FLUX_OVER_ERROR)}
_ERR.update(zip(io.TMASS_BANDS + io.WISE_BANDS, io.TMASS_ERRORS + io.WISE_ERRORS))
MIN_LOG_AGE = 5.7


def default_feh_nodes() -> np.ndarray:
    return np.round(np.r_[np.arange(-3.0, -1.0, 0.25), np.arange(-1.0, 0.5001, 0.1)], 4)


def default_age_nodes(step: float = 0.05) -> np.ndarray:
    return np.round(np.arange(MIN_LOG_AGE, 10.15 + 1e-9, step), 4)


@dataclass
class GridConfig:
    """Resolution and likelihood of the grid posterior (all have defaults)."""

    feh_nodes: Sequence[float] | None = None
    log_age_step: float = 0.05
    mass_stride: int = 2                 # take every k-th node of the isochrone grid's log-mass axis
    n_evolved: int = 24                  # points on each node's evolved segment (subgiant .. AGB)
    bands: Sequence[str] = DEFAULT_BANDS
    use_parallax: bool = True
    use_lamost: bool = True
    error_floor_mag: float = 0.01
    av_nodes: Sequence[float] = (0.0, 1.0, 2.0, 3.5, 5.0, 7.0, 10.0)
    n_distance_coarse: int = 64
    n_distance: int = 128
    log_range: float = 30.0              # fine pass covers where the coarse marginal is within e^-30 of its peak
    prune_delta_chi2: float = 100.0      # drop library points whose best-case χ² (distance, A_V free) is worse
    chunk_rows: int = 200_000


def _edges(nodes: np.ndarray, open_ends: bool = True) -> np.ndarray:
    mid = 0.5 * (nodes[1:] + nodes[:-1])
    lo = nodes[0] - (mid[0] - nodes[0])
    hi = nodes[-1] + (nodes[-1] - mid[-1])
    e = np.r_[lo, mid, hi]
    if open_ends:
        e[0], e[-1] = -np.inf, np.inf
    return e


# ----------------------------------------------------------------------------------------------------
# library
# ----------------------------------------------------------------------------------------------------
@dataclass
class ModelLibrary:
    """Flat arrays over library points (see the module doc)."""

    feh_nodes: np.ndarray
    age_nodes: np.ndarray
    fi: np.ndarray             # [N] index of the [Fe/H] node
    ai: np.ndarray             # [N] index of the age node
    log_mass: np.ndarray       # [N]
    half_width: np.ndarray     # [N] half of the log-mass cell
    log_w_mass: np.ndarray     # [N] log of IMF dn/dlogm × cell width
    teff: np.ndarray
    logg: np.ndarray
    mabs: np.ndarray           # [N, n_av, n_bands] float32 absolute magnitudes at av_nodes (bands = io.MAGNITUDES)
    av_nodes: np.ndarray
    meta: dict = field(default_factory=dict)

    def __len__(self):
        return self.log_mass.size

    @classmethod
    def build(cls, iso, bc, imf_kind: str = "kroupa", mass_range=(0.08, 100.0), cfg: GridConfig | None = None,
              feh_nodes=None, age_nodes=None) -> "ModelLibrary":
        from ysocensus.galaxy.imf import dn_dlogm

        cfg = cfg or GridConfig()
        t0 = time.perf_counter()
        feh_nodes = np.asarray(feh_nodes if feh_nodes is not None else
                               (cfg.feh_nodes if cfg.feh_nodes is not None else default_feh_nodes()), float)
        age_nodes = np.asarray(age_nodes if age_nodes is not None else default_age_nodes(cfg.log_age_step), float)
        lm_axis = np.asarray(iso.axes["log10_mass"], float)[:: max(1, int(cfg.mass_stride))]
        lo, hi = np.log10(mass_range[0]), np.log10(mass_range[1])
        lm_axis = lm_axis[(lm_axis >= lo - 1e-9) & (lm_axis <= hi + 1e-9)]
        step = float(np.median(np.diff(lm_axis)))
        F, A = np.meshgrid(np.arange(feh_nodes.size), np.arange(age_nodes.size), indexing="ij")
        F, A = F.ravel(), A.ravel()
        feh_fa, age_fa = feh_nodes[F], age_nodes[A]
        start, end, mmax = _segments(iso, age_fa, feh_fa)
        # regular part: every living mass below the start of the evolved segment
        fi = np.repeat(F, lm_axis.size)
        ai = np.repeat(A, lm_axis.size)
        lm = np.tile(lm_axis, F.size)
        st = np.repeat(np.where(np.isfinite(start), start, np.repeat(np.inf, start.size)), lm_axis.size)
        keep = lm < st
        fi, ai, lm = fi[keep], ai[keep], lm[keep]
        hw = np.full(lm.size, 0.5 * step)
        # the cell below the segment start ends there
        top = np.repeat(np.where(np.isfinite(start), start, np.inf), lm_axis.size)[keep]
        hw = np.minimum(hw, np.maximum(top - lm, 1e-6))
        # evolved segments
        ok = np.isfinite(start) & np.isfinite(end) & (end > start)
        n_ev = int(cfg.n_evolved)
        if n_ev > 0 and ok.any():
            e_end = np.minimum(end[ok], np.where(np.isfinite(mmax[ok]), mmax[ok], end[ok]))
            u = (np.arange(n_ev) + 0.5) / n_ev
            width = np.maximum(e_end - start[ok], 0.0)
            lm_e = (start[ok][:, None] + u[None, :] * width[:, None]).ravel()
            fi = np.r_[fi, np.repeat(F[ok], n_ev)]
            ai = np.r_[ai, np.repeat(A[ok], n_ev)]
            lm = np.r_[lm, lm_e]
            hw = np.r_[hw, np.repeat(0.5 * width / n_ev, n_ev)]
        q = iso.interpolate(age_nodes[ai], lm, feh_nodes[fi])
        good = np.isfinite(q["log10_teff"]) & np.isfinite(q["logg"]) & np.isfinite(q["log10_lum_lsun"]) & (hw > 0)
        good &= (lm >= lo - 1e-9) & (lm <= hi + 1e-9)
        fi, ai, lm, hw = fi[good], ai[good], lm[good], hw[good]
        teff = 10.0 ** q["log10_teff"][good].astype(np.float64)
        logg = q["logg"][good].astype(np.float64)
        logl = q["log10_lum_lsun"][good].astype(np.float64)
        feh = feh_nodes[fi]
        av_nodes = np.asarray(cfg.av_nodes, float)
        mabs = np.empty((lm.size, av_nodes.size, len(io.MAGNITUDES)), np.float32)
        for k, a in enumerate(av_nodes):
            mabs[:, k] = bc.absolute_magnitudes(teff, logg, logl, feh, np.full(lm.size, a))
        log_w = np.log(np.maximum(dn_dlogm(10.0 ** lm, imf_kind), 1e-300)) + np.log(2 * hw)
        lib = cls(feh_nodes, age_nodes, fi.astype(np.int32), ai.astype(np.int32), lm, hw, log_w,
                  teff.astype(np.float32), logg.astype(np.float32), mabs, av_nodes,
                  {"n_points": int(lm.size), "seconds": round(time.perf_counter() - t0, 2),
                   "n_feh": int(feh_nodes.size), "n_age": int(age_nodes.size), "log_mass_step": step,
                   "n_evolved": n_ev})
        log.info("grid library: %d points (%.1f s)", lm.size, time.perf_counter() - t0)
        return lib


def _segments(iso, log_age, feh):
    """Start / end of the evolved segment and the largest living log mass at ([Fe/H], age) points
    (the bilinear arithmetic of ``IsochroneGrid``)."""
    fi, wf, _ = iso._frac("feh", np.asarray(feh, float))
    ai, wa, _ = iso._frac("log10_age_yr", np.asarray(log_age, float))
    mmax, _ = iso._mass_limits(fi, wf, ai, wa)
    em = iso.evolved_log10_mass
    if em is None:
        nan = np.full(fi.size, np.nan)
        return nan, nan, mmax
    start = np.zeros(fi.size)
    end = np.zeros(fi.size)
    wt = np.zeros(fi.size)
    for df in (0, 1):
        for da in (0, 1):
            w = (wf if df else 1 - wf) * (wa if da else 1 - wa)
            se = em[fi + df, ai + da]
            ok = np.isfinite(se[:, 0]) & np.isfinite(se[:, 1]) & (w > 0)
            wv = np.where(ok, w, 0.0)
            start += wv * np.where(ok, se[:, 0], 0.0)
            end += wv * np.where(ok, se[:, 1], 0.0)
            wt += wv
    with np.errstate(invalid="ignore", divide="ignore"):
        start = np.where(wt > 1e-12, start / wt, np.nan)
        end = np.where(wt > 1e-12, end / wt, np.nan)
    return start, end, mmax


# ----------------------------------------------------------------------------------------------------
# Galactic prior along a line of sight
# ----------------------------------------------------------------------------------------------------
def _age_cell_mass_linear(edges_log: np.ndarray, lo_gyr: float, hi_gyr: float) -> np.ndarray:
    """Probability of each log-age cell for ages uniform in linear age in [lo, hi] Gyr (ages below 0.5 Myr
    are clamped to 0.5 Myr by the simulator: they fall in the first cell, whose lower edge is −inf)."""
    e = 10.0 ** (np.asarray(edges_log) - 9.0)  # Gyr, -inf -> 0
    a = np.clip(e[:-1], lo_gyr, hi_gyr)
    b = np.clip(e[1:], lo_gyr, hi_gyr)
    return np.maximum(b - a, 0.0) / max(hi_gyr - lo_gyr, 1e-12)


def _age_cell_mass_loguniform(edges_log, lo, hi):
    a = np.clip(edges_log[:-1], lo, hi)
    b = np.clip(edges_log[1:], lo, hi)
    return np.maximum(b - a, 0.0) / max(hi - lo, 1e-12) if hi > lo else ((edges_log[:-1] <= lo) & (edges_log[1:] > lo)).astype(float)


def _gauss_cell_mass(edges, mu, sigma):
    """[..., n_cells] probability of each cell for N(mu, sigma) (mu broadcast over leading axes)."""
    mu = np.asarray(mu, float)[..., None]
    return np.maximum(ndtr((edges[1:] - mu) / sigma) - ndtr((edges[:-1] - mu) / sigma), 0.0)


class GalacticPrior:
    """The population stage's prior p(d, log age, [Fe/H], log mass | l, b), see the module doc."""

    def __init__(self, population_cfg: Mapping | None = None, seed: int = 0):
        from ysocensus.galaxy.components import Galaxy, smooth_components
        from ysocensus.config import section
        from ysocensus.galaxy.young import build_clusters

        cfg = section("population", population_cfg or {})
        self.cfg = cfg
        gal = cfg["galaxy"]
        comps = {k: v for k, v in smooth_components(gal["bulge_rho0_msun_pc3"]).items() if k in cfg["components"]}
        self.galaxy = Galaxy(comps, gal["r_sun_pc"], gal["z_sun_pc"])
        young = cfg["young"]
        self.clusters = build_clusters(young, seed) if young["enabled"] else None
        self.d_min = max(float(cfg["distance_min_pc"]), 1.0)
        self.d_max = float(cfg["distance_max_pc"])
        self.imf_kind = cfg["imf"]["kind"]
        self.mass_range = (cfg["imf"]["mass_min_msun"], cfg["imf"]["mass_max_msun"])

    def table(self, l: float, b: float, d: np.ndarray, d_width: np.ndarray, feh_edges: np.ndarray,
              age_edges: np.ndarray) -> np.ndarray:
        """log prior mass [n_feh, n_age, n_d] of each ([Fe/H] cell, age cell, distance cell) on the line
        of sight (number of stars per steradian, up to a constant; IMF factor excluded)."""
        from ysocensus.galaxy.young import lbd_to_xyz

        x, y, z = lbd_to_xyz(l, b, d)
        nf, na, nd = feh_edges.size - 1, age_edges.size - 1, d.size
        P = np.zeros((nf, na, nd))
        vol = d ** 2 * d_width
        for name, c in self.galaxy.components.items():
            rho = self.galaxy.density(name, x, y, z) * vol                                # [nd]
            age = _age_cell_mass_linear(age_edges, *c.age_gyr)                          # [na]
            mu = self.galaxy.feh_mean(name, x, y)                                        # [nd]
            fm = _gauss_cell_mass(feh_edges, mu, c.feh_sigma)                            # [nd, nf]
            P += np.einsum("j,a,jf->faj", rho, age, fm)
        cl = self.clusters
        if cl is not None and len(cl):
            u = np.array(lbd_to_xyz(l, b, 1.0))
            cx = np.stack([cl.x, cl.y, cl.z], 1)
            s_c = cx @ u
            p2 = np.maximum((cx ** 2).sum(1) - s_c ** 2, 0.0)
            scale = cl.scale_pc
            reach = np.where(cl.kind == 0, 5.0 * scale, 10.0 * scale)
            near = (p2 < reach ** 2) & (s_c > self.d_min - reach) & (s_c < self.d_max + reach)
            for i in np.flatnonzero(near):
                a = scale[i]
                ds = d - s_c[i]
                if cl.kind[i] == 0:   # association: 3D Gaussian
                    rho = cl.mass_msun[i] / ((2 * np.pi) ** 1.5 * a ** 3) * np.exp(-(p2[i] + ds ** 2) / (2 * a * a))
                    dens = rho * vol
                    age = _age_cell_mass_loguniform(age_edges, cl.log10_age_lo[i], cl.log10_age_hi[i])
                else:                 # Plummer sphere (mass inside 10 a), projected, spread along the sight line
                    sigma_proj = cl.mass_msun[i] * a * a / (np.pi * (a * a + p2[i]) ** 2)
                    prof = (1.0 + (p2[i] + ds ** 2) / (a * a)) ** -2.5 * d_width
                    if prof.sum() <= 0 or prof.max() < 1e-12 * max(prof.sum(), 1e-300):
                        continue
                    if prof.sum() < 1e-30:
                        prof = np.zeros(nd)
                        prof[np.argmin(np.abs(ds))] = 1.0
                    dens = sigma_proj * max(s_c[i], 1.0) ** 2 * prof / prof.sum()
                    sp = cl.age_spread_dex[i]
                    age = _gauss_cell_mass(np.clip(age_edges, -1e9, 1e9), cl.log10_age_lo[i], max(sp, 1e-3))
                fm = _gauss_cell_mass(feh_edges, cl.feh[i], 0.05)
                P += np.einsum("j,a,f->faj", dens, age, fm)
        with np.errstate(divide="ignore"):
            return np.log(P)


# ----------------------------------------------------------------------------------------------------
# posterior
# ----------------------------------------------------------------------------------------------------
@dataclass
class Star:
    """One star's observations (NaN = missing)."""

    l: float
    b: float
    mags: np.ndarray         # [n_bands] (cfg.bands order)
    sigma: np.ndarray        # [n_bands]
    parallax: float = np.nan
    parallax_error: float = np.nan
    teff: float = np.nan
    teff_error: float = np.nan
    logg: float = np.nan
    logg_error: float = np.nan
    feh: float = np.nan
    feh_error: float = np.nan


def stars_from_frame(frame, bands: Sequence[str] = DEFAULT_BANDS) -> list[Star]:
    """Catalog rows (dict of arrays / pyarrow table / DataFrame) → ``Star`` objects."""

    n = io.n_rows(frame)
    mags = np.stack([io.float_column(frame, b, n) for b in bands], -1)
    sig = []
    for b in bands:
        e = io.float_column(frame, _ERR[b], n)
        with np.errstate(divide="ignore", invalid="ignore"):
            sig.append(GAIA_SIGMA / e if b in io.GAIA_BANDS else e)
    sig = np.stack(sig, -1)
    cols = {c: io.float_column(frame, c, n) for c in ("l", "b", "parallax", "parallax_error", "teff_lamost", "teff_err_lamost",
                                           "logg_lamost", "logg_err_lamost", "feh_lamost", "feh_err_lamost")}
    return [Star(float(cols["l"][i]), float(cols["b"][i]), mags[i], sig[i], cols["parallax"][i],
                 cols["parallax_error"][i], cols["teff_lamost"][i], cols["teff_err_lamost"][i],
                 cols["logg_lamost"][i], cols["logg_err_lamost"][i], cols["feh_lamost"][i],
                 cols["feh_err_lamost"][i]) for i in range(n)]


class GridPosterior:
    """Brute-force posterior on a ``ModelLibrary`` × a distance grid with a ``GalacticPrior`` and a dust model."""

    def __init__(self, library: ModelLibrary, prior: GalacticPrior, dust, cfg: GridConfig | None = None):
        self.lib = library
        self.prior = prior
        self.dust = dust
        self.cfg = cfg or GridConfig()
        self.band_idx = np.array([io.MAGNITUDES.index(b) for b in self.cfg.bands])
        self.feh_edges = _edges(library.feh_nodes)
        self.age_edges = _edges(library.age_nodes)
        self.feh_half = np.diff(_edges(library.feh_nodes, open_ends=False)) / 2
        self.age_half = np.diff(_edges(library.age_nodes, open_ends=False)) / 2
        self.age_half[0] = min(self.age_half[0], 1e-6)  # the 0.5 Myr node holds the clamped ages: keep it there
        self._mabs = library.mabs[:, :, self.band_idx]  # [N, n_av, nb]

    # ------------------------------------------------------------------ pieces
    def _distance_grid(self, lo: float, hi: float, n: int):
        e = np.geomspace(lo, hi, n + 1)
        d = np.sqrt(e[1:] * e[:-1])
        return d, np.diff(e), e

    def _static_terms(self, star: Star) -> np.ndarray:
        """Per library point: LAMOST label χ²/2 and the IMF weight (log)."""
        lib = self.lib
        out = lib.log_w_mass.copy()
        if self.cfg.use_lamost:
            if np.isfinite(star.teff) and np.isfinite(star.teff_error) and star.teff_error > 0:
                out -= 0.5 * ((lib.teff - star.teff) / star.teff_error) ** 2
            if np.isfinite(star.logg) and np.isfinite(star.logg_error) and star.logg_error > 0:
                out -= 0.5 * ((lib.logg - star.logg) / star.logg_error) ** 2
            if np.isfinite(star.feh) and np.isfinite(star.feh_error) and star.feh_error > 0:
                out -= 0.5 * ((lib.feh_nodes[lib.fi] - star.feh) / star.feh_error) ** 2
        return out

    def _log_post_rows(self, star: Star, rows: np.ndarray, d, dw, static) -> np.ndarray:
        """log posterior [len(rows), n_d] (unnormalised)."""
        lib, cfg = self.lib, self.cfg
        av = np.asarray(self.dust.av(np.full(d.size, star.l), np.full(d.size, star.b), d), float)
        mu = 5.0 * np.log10(d) - 5.0
        logP = self.prior.table(star.l, star.b, d, dw, self.feh_edges, self.age_edges)   # [nf, na, nd]
        ok = np.isfinite(star.mags) & np.isfinite(star.sigma) & (star.sigma > 0)
        out = static[rows][:, None] + logP[lib.fi[rows], lib.ai[rows]]                  # [n, nd]
        if cfg.use_parallax and np.isfinite(star.parallax) and np.isfinite(star.parallax_error) \
                and star.parallax_error > 0:
            out = out - 0.5 * ((star.parallax - 1000.0 / d) / star.parallax_error) ** 2
        if ok.any():
            w = (1.0 / (star.sigma[ok] ** 2 + cfg.error_floor_mag ** 2)).astype(np.float32)
            m = star.mags[ok].astype(np.float32)
            M = self._mabs[rows][:, :, ok]                                              # [n, nav, nbo] float32
            nodes = lib.av_nodes
            k = np.clip(np.searchsorted(nodes, av, side="right") - 1, 0, nodes.size - 2)
            chi2 = np.empty((rows.size, d.size))
            sw = w.sum()
            for i in np.unique(k):
                js = np.flatnonzero(k == i)
                r = m[None, :] - M[:, i]                                                # [n, nbo]
                R = (M[:, i + 1] - M[:, i]) / (nodes[i + 1] - nodes[i])
                c = (r * w).sum(1) / sw                                                 # weighted mean offset
                rc = r - c[:, None]
                s_rr = (w * rc * rc).sum(1)
                s_rR = (w * rc * R).sum(1)
                s_R = (w * R).sum(1)
                s_RR = (w * R * R).sum(1)
                a = av[js] - nodes[i]                                                   # [nj]
                dm = mu[js][None, :] - c[:, None]                                       # [n, nj]
                chi2[:, js] = (s_rr[:, None] - 2 * a[None, :] * s_rR[:, None] + dm * dm * sw
                               + 2 * dm * a[None, :] * s_R[:, None] + (a * a)[None, :] * s_RR[:, None])
            out = out - 0.5 * chi2
        return out

    def _prune(self, star: Star, static: np.ndarray) -> np.ndarray:
        """Library points worth evaluating: the photometric χ² minimised exactly over the box of distance
        modulus (prior range, narrowed to where the parallax alone gives χ² < ``prune_delta_chi2``) and
        A_V in [0, A_V at the far end] (a lower bound of the full χ²; the prior is left out), plus the LAMOST
        label χ², within ``prune_delta_chi2`` of the best point."""
        lib, cfg = self.lib, self.cfg
        ok = np.isfinite(star.mags) & np.isfinite(star.sigma) & (star.sigma > 0)
        lam = -2.0 * (static - lib.log_w_mass)
        if not ok.any():
            return np.flatnonzero(lam <= lam.min() + cfg.prune_delta_chi2)
        d_lo, d_hi = self.prior.d_min, self.prior.d_max
        if np.isfinite(star.parallax) and np.isfinite(star.parallax_error) and star.parallax_error > 0:
            k = np.sqrt(cfg.prune_delta_chi2)
            hi_p, lo_p = star.parallax + k * star.parallax_error, star.parallax - k * star.parallax_error
            d_lo = max(d_lo, 1000.0 / hi_p) if hi_p > 0 else d_hi
            if lo_p > 0:
                d_hi = min(d_hi, 1000.0 / lo_p)
            d_lo = min(d_lo, d_hi)
        mu_lo, mu_hi = 5 * np.log10(d_lo) - 5, 5 * np.log10(d_hi) - 5
        amax = float(self.dust.av(star.l, star.b, d_hi)) + 0.05
        w = 1.0 / (star.sigma[ok] ** 2 + cfg.error_floor_mag ** 2)
        nodes = lib.av_nodes
        i1 = int(np.clip(np.searchsorted(nodes, amax), 1, nodes.size - 1))
        sw = w.sum()
        score = np.empty(len(lib))
        for s in range(0, len(lib), cfg.chunk_rows):
            M = self._mabs[s:s + cfg.chunk_rows][:, :, ok].astype(np.float64)
            r = star.mags[ok][None, :] - M[:, 0]
            R = (M[:, i1] - M[:, 0]) / (nodes[i1] - nodes[0])
            c = (r * w).sum(1) / sw
            rc = r - c[:, None]          # centred: μ' = μ − c
            s_rr, s_rR = (w * rc * rc).sum(1), (w * rc * R).sum(1)
            s_R, s_RR = (w * R).sum(1), (w * R * R).sum(1)

            def q(m, a):
                return s_rr - 2 * a * s_rR + m * m * sw + 2 * m * a * s_R + a * a * s_RR

            lo, hi = mu_lo - c, mu_hi - c
            best = np.full(c.size, np.inf)
            for a in (np.zeros_like(c), np.full_like(c, amax)):       # edges a = 0, a = amax
                m = np.clip(-a * s_R / sw, lo, hi)
                best = np.minimum(best, q(m, a))
            for m in (lo, hi):                                         # edges μ = lo, μ = hi
                a = np.clip((s_rR - m * s_R) / np.maximum(s_RR, 1e-12), 0.0, amax)
                best = np.minimum(best, q(m, a))
            det = sw * s_RR - s_R ** 2                                 # interior optimum
            with np.errstate(divide="ignore", invalid="ignore"):
                a_i = np.where(det > 1e-12, sw * s_rR / det, np.nan)
                m_i = -a_i * s_R / sw
            inside = (a_i >= 0) & (a_i <= amax) & (m_i >= lo) & (m_i <= hi)
            best = np.where(inside, np.minimum(best, q(m_i, a_i)), best)
            score[s:s + cfg.chunk_rows] = best
        score = score + lam
        return np.flatnonzero(score <= score.min() + cfg.prune_delta_chi2)

    def _row_logsumexp(self, star, d, dw, static, rows_all):
        n = rows_all.size
        per_row = np.empty(n)
        per_d = np.full(d.size, -np.inf)
        for s in range(0, n, self.cfg.chunk_rows):
            sl = slice(s, min(n, s + self.cfg.chunk_rows))
            lp = self._log_post_rows(star, rows_all[sl], d, dw, static)
            per_row[sl] = logsumexp(lp, axis=1)
            per_d = np.logaddexp(per_d, logsumexp(lp, axis=0))
        return per_row, per_d

    # ------------------------------------------------------------------ public
    def sample(self, star: Star, n_samples: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        """[n_samples, 5] samples in physical units (io.PARAMETERS order) and diagnostics."""
        cfg, lib = self.cfg, self.lib
        if not (np.isfinite(star.l) and np.isfinite(star.b)):
            return np.full((n_samples, 5), np.nan, np.float32), {"status": "invalid_input"}
        static = self._static_terms(star)
        rows_all = self._prune(star, static)
        d0, d1 = self.prior.d_min, self.prior.d_max
        d, dw, e = self._distance_grid(d0, d1, cfg.n_distance_coarse)
        _, per_d = self._row_logsumexp(star, d, dw, static, rows_all)
        good = np.flatnonzero(per_d > per_d.max() - cfg.log_range)
        lo = e[max(good[0] - 1, 0)]
        hi = e[min(good[-1] + 2, e.size - 1)]
        d, dw, e = self._distance_grid(lo, hi, cfg.n_distance)
        per_row, per_d = self._row_logsumexp(star, d, dw, static, rows_all)
        logZ = logsumexp(per_row)
        p = np.exp(per_row - logZ)
        p /= p.sum()
        ks = rows_all[rng.choice(p.size, size=n_samples, p=p)]
        uk, inv = np.unique(ks, return_inverse=True)
        lp = self._log_post_rows(star, uk, d, dw, static)
        pj = np.exp(lp - logsumexp(lp, axis=1, keepdims=True))
        cdf = np.cumsum(pj, axis=1)
        u = rng.random(n_samples)
        js = np.minimum((cdf[inv] < (u * cdf[inv, -1])[:, None]).sum(1), d.size - 1)
        # spread uniformly within the cells
        fi, ai = lib.fi[ks], lib.ai[ks]
        log_age = lib.age_nodes[ai] + rng.uniform(-1, 1, n_samples) * self.age_half[ai]
        feh = lib.feh_nodes[fi] + rng.uniform(-1, 1, n_samples) * self.feh_half[fi]
        log_m = lib.log_mass[ks] + rng.uniform(-1, 1, n_samples) * lib.half_width[ks]
        log_d = np.log10(e[js]) + rng.random(n_samples) * (np.log10(e[js + 1]) - np.log10(e[js]))
        dist = 10.0 ** log_d
        av = np.asarray(self.dust.av(np.full(n_samples, star.l), np.full(n_samples, star.b), dist), float)
        out = np.stack([log_age, 10.0 ** log_m, feh, dist, av], -1).astype(np.float32)
        n_eff = float(1.0 / np.sum(p ** 2))
        return out, {"status": "ok", "log_evidence": float(logZ), "distance_range_pc": [float(lo), float(hi)],
                     "n_library_points_evaluated": int(rows_all.size), "n_effective_library_points": n_eff}

    def sample_frame(self, frame, n_samples: int, seed: int = 0) -> tuple[np.ndarray, list[dict], np.ndarray]:
        """Samples [B, S, 5], diagnostics per star, and wall-clock seconds per star."""
        stars = stars_from_frame(frame, self.cfg.bands)
        out = np.full((len(stars), n_samples, 5), np.nan, np.float32)
        diags, secs = [], np.zeros(len(stars))
        for i, s in enumerate(stars):
            rng = np.random.default_rng(np.random.SeedSequence([seed, i]))
            t0 = time.perf_counter()
            out[i], dg = self.sample(s, n_samples, rng)
            secs[i] = time.perf_counter() - t0
            diags.append(dg)
        return out, diags, secs


def build_grid_posterior(isochrones_path, bc_path, dust_path, population_cfg: Mapping | None = None,
                         dust_cfg: Mapping | None = None, seed: int = 0, cfg: GridConfig | None = None
                         ) -> GridPosterior:
    """Everything from the workflow's files: the isochrone and BC grids, the dust field, the population config."""
    from ysocensus.dust import dust_model
    from ysocensus.config import section
    from ysocensus.stars.bolometric import load_bc_grid
    from ysocensus.stars.tracks import IsochroneGrid

    prior = GalacticPrior(population_cfg, seed)
    iso = IsochroneGrid.load(isochrones_path)
    bc = load_bc_grid(bc_path)
    lib = ModelLibrary.build(iso, bc, prior.imf_kind, prior.mass_range, cfg)
    dust = dust_model(section("dust", dust_cfg or {}), dust_path)
    return GridPosterior(lib, prior, dust, cfg)
