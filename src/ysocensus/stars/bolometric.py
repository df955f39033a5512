"""Bolometric corrections (MIST/C3K, with extinction) for the ten survey bands, and magnitudes.

Source: the MIST v1 / C3K bolometric-correction tables shipped with ``astrolachesis``
(``lachesis/Datafiles/BC_tables/bc_tables.h5``; Choi et al. 2016, Dotter 2016, C3K atmospheres by
Conroy et al.). Group ``UBVRIplus`` holds ``Gaia_G_EDR3``, ``Gaia_BP_EDR3``, ``Gaia_RP_EDR3``,
``2MASS_J``, ``2MASS_H``, ``2MASS_Ks``; group ``WISE`` holds ``WISE_W1``..``WISE_W4``. Each table is a
full grid over

* [Fe/H]: 18 nodes, −4 … +0.75,
* A_V: 13 nodes, 0, 0.05, …, 1, 2, 4, 6 mag (the extinction is folded into the BC, R_V = 3.1),
* T_eff: 70 nodes, 2500 K … 10⁶ K,
* log g: 26 nodes, −4 … 9.5,

so a band's magnitude is

    m = M_bol − BC(T_eff, log g, [Fe/H], A_V) + 5 log10(d / 10 pc),   M_bol = 4.74 − 2.5 log10(L / L☉)

(M_bol,☉ = 4.74 is the IAU 2015 B2 nominal value that MIST uses).

Interpolation is multilinear on the native nodes (linear in T_eff, log g, [Fe/H] and A_V). It is
fast because every axis is located by index arithmetic: all nodes of an axis are multiples of a
step (50 K, 0.5 dex, 0.25 dex, 0.05 mag), so a look-up table maps ``floor((x − x0) / step)`` to
the interval; the 16 corners of each star are then fetched with 1-D ``take`` on band-major float32
tables. Outside the grid, T_eff, log g and [Fe/H] are clamped to the edge nodes; A_V above 6 mag
is extrapolated linearly from the last interval (extinction is linear in A_V to first order); A_V
below 0 is clamped to 0. The torch measurement operator (``ysocensus.surveys.operator``) uses the
very same tables and the same arithmetic.

The table has a few sentinel values (|BC| = 99 in WISE at [Fe/H] = +0.75, T_eff ≥ 45,000 K); they are
replaced by the value at the nearest [Fe/H] node.

Extinction curve: the tables fold in Cardelli et al. (1989, CCM89) with R_V = 3.1, which stops at
3.3 µm (the tables' W3/W4 extinction is ≈ 0.01 and 0.003 A_V). The grid is therefore rebased on
Gordon et al. (2023, G23): each band's table extinction A_tab = BC(A_V=0) − BC(A_V) is rescaled so
that A_band/A_V at the reference star (the Sun: 5772 K, log g 4.44, [Fe/H] 0, A_V = 0.1) equals
k_band(3.1), keeping the tables' own dependence on T_eff, log g and A_V (band-width effects, e.g.
A_G/A_V falls from ≈ 0.85 for the Sun to ≈ 0.7 for M dwarfs); in W3/W4 A_band = k_band · A_V.
Here k_band(R_V) = A_band/A_V is the photon-weighted mean of G23 over the band's passband
(``speclite``) for a 5772 K black body in the small-extinction limit. With this, A_λ/A_V at R_V = 3.1
for BP, G, RP, J, H, Ks, W1–W4 ≈ 1.06, 0.84, 0.63, 0.28, 0.17, 0.11, 0.05, 0.03, 0.05, 0.04 for a
solar-type star (the monochromatic G23 values at the bands' effective wavelengths are 1.041, 0.773,
0.597, 0.272, 0.168, 0.106, 0.048, 0.031, 0.033, 0.038; broad Gaia bands and the 9.7 µm silicate
feature in W3 make the passband means differ).

R_V ≠ 3.1 (first-order correction, documented): for another R_V the band extinction changes by
``A_V · (k_band(R_V) − k_band(3.1))``. The neglected second-order
terms (the dependence of k on the stellar spectrum and on A_V itself) change the correction by a
few per cent of itself, i.e. millimagnitudes for |R_V − 3.1| ≲ 1 and A_V of a few magnitudes.
G23 is defined for 2.3 ≤ R_V ≤ 5.6; R_V outside is clamped.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ysocensus import io

log = logging.getLogger(__name__)

#: the table column of each catalog band (io.MAGNITUDES order)
TABLE_BANDS: dict[str, tuple[str, str]] = dict(zip(io.MAGNITUDES, (
    ("UBVRIplus", "Gaia_G_EDR3"), ("UBVRIplus", "Gaia_BP_EDR3"), ("UBVRIplus", "Gaia_RP_EDR3"),
    ("UBVRIplus", "2MASS_J"), ("UBVRIplus", "2MASS_H"), ("UBVRIplus", "2MASS_Ks"),
    ("WISE", "WISE_W1"), ("WISE", "WISE_W2"), ("WISE", "WISE_W3"), ("WISE", "WISE_W4"),
), strict=True))
#: speclite passband of each catalog band (io.MAGNITUDES order)
PASSBANDS: dict[str, str] = dict(zip(io.MAGNITUDES, (
    "gaiadr3-G", "gaiadr3-BP", "gaiadr3-RP", "twomass-J", "twomass-H", "twomass-Ks",
    "wise2010-W1", "wise2010-W2", "wise2010-W3", "wise2010-W4",
), strict=True))
#: bolometric magnitude of the Sun (IAU 2015 Resolution B2; the MIST zero point)
MBOL_SUN = 4.74
#: the R_V of the tables
RV_TABLE = 3.1
#: G23 validity range of R_V
RV_RANGE = (2.3, 5.6)
#: index-arithmetic step of each axis (every node is a multiple of it)
AXIS_STEPS = {"feh": 0.25, "av": 0.05, "teff": 50.0, "logg": 0.5}
AXES = ("feh", "av", "teff", "logg")
#: (T_eff, log g, [Fe/H]) of the star at which the tables' extinction is put on the G23 scale
REFERENCE_STAR = (5772.0, 4.44, 0.0)
#: star chunk of the vectorised interpolation (keeps the working set in cache)
BLOCK = 32768


def default_table_path() -> Path:
    """The astrolachesis BC table inside the installed package (no download)."""
    import importlib.util

    spec = importlib.util.find_spec("lachesis")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("astrolachesis (module 'lachesis') is not installed; it provides the BC tables")
    return Path(list(spec.submodule_search_locations)[0]) / "Datafiles" / "BC_tables" / "bc_tables.h5"


@dataclass
class _Axis:
    """One interpolation axis: nodes plus a look-up table from uniform cells to intervals."""

    nodes: np.ndarray          # float64 (n,)
    step: float
    lut: np.ndarray = field(init=False)       # int32: cell -> interval index
    lo32: np.ndarray = field(init=False)      # float32 (n-1,) left node of each interval
    inv32: np.ndarray = field(init=False)     # float32 (n-1,) 1/width of each interval

    def __post_init__(self):
        nodes = np.asarray(self.nodes, dtype=np.float64)
        if np.any(np.diff(nodes) <= 0):
            raise ValueError("axis nodes must increase strictly")
        k = np.round((nodes - nodes[0]) / self.step)
        if not np.allclose(k * self.step + nodes[0], nodes, rtol=0, atol=1e-9 * max(1.0, abs(nodes).max())):
            raise ValueError(f"axis nodes are not multiples of the step {self.step}")
        ncell = int(k[-1])
        cells = nodes[0] + (np.arange(ncell) + 0.5) * self.step
        self.lut = np.clip(np.searchsorted(nodes, cells, side="right") - 1, 0, len(nodes) - 2).astype(np.int32)
        self.lo32 = nodes[:-1].astype(np.float32)
        self.inv32 = (1.0 / np.diff(nodes)).astype(np.float32)

    def locate(self, x: np.ndarray, extrapolate_high: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Interval index (int32) and fractional position (float32) of ``x``; clamped at the edges.

        With ``extrapolate_high`` the fraction grows beyond 1 above the last node (linear
        extrapolation of the last interval).
        """
        x = np.asarray(x, dtype=np.float32)
        x0, xn = np.float32(self.nodes[0]), np.float32(self.nodes[-1])
        xc = np.clip(x, x0, xn if not extrapolate_high else np.float32(np.inf))
        cell = ((np.minimum(xc, xn) - x0) * np.float32(1.0 / self.step)).astype(np.int32)
        np.clip(cell, 0, len(self.lut) - 1, out=cell)
        i = self.lut[cell]
        t = (xc - self.lo32[i]) * self.inv32[i]
        return i, t


class BCGrid:
    """MIST/C3K bolometric corrections of io.MAGNITUDES on their native (feh, A_V, T_eff, log g) grid.

    ``values`` is float32 with shape (n_bands, n_feh, n_av, n_teff, n_logg), band-major so that one
    band's table is a contiguous 1-D array for fast ``take``. ``rv_grid`` / ``rv_k`` tabulate the
    G23 passband extinction coefficients k_band(R_V) = A_band / A_V used for the R_V correction.
    """

    def __init__(self, axes: dict[str, np.ndarray], values: np.ndarray, bands=io.MAGNITUDES,
                 rv_grid: np.ndarray | None = None, rv_k: np.ndarray | None = None):
        self.bands = tuple(bands)
        self.axes = {a: np.asarray(axes[a], dtype=np.float64) for a in AXES}
        self.values = np.ascontiguousarray(values, dtype=np.float32)
        shape = (len(self.bands),) + tuple(len(self.axes[a]) for a in AXES)
        if self.values.shape != shape:
            raise ValueError(f"BC values have shape {self.values.shape}, axes want {shape}")
        if not np.all(np.isfinite(self.values)):
            raise ValueError("BC values must be finite")
        self._axes = {a: _Axis(self.axes[a], AXIS_STEPS[a]) for a in AXES}
        self._flat = self.values.reshape(len(self.bands), -1)
        n = [len(self.axes[a]) for a in AXES]
        self.strides = np.array([n[1] * n[2] * n[3], n[2] * n[3], n[3], 1], dtype=np.int64)
        self.corner_offsets = np.array([p * self.strides[0] + q * self.strides[1] + r * self.strides[2] + s
                                        for p in (0, 1) for q in (0, 1) for r in (0, 1) for s in (0, 1)],
                                       dtype=np.int32)
        if rv_grid is None:
            rv_grid = np.array([RV_TABLE])
            rv_k = np.zeros((1, len(self.bands)))
        self.rv_grid = np.asarray(rv_grid, dtype=np.float64)
        self.rv_k = np.asarray(rv_k, dtype=np.float64)
        if len(self.rv_grid) > 1:
            x = 1.0 / self.rv_grid - 1.0 / RV_TABLE
            self._rv_slope = np.array([np.polyfit(x, self.rv_k[:, j], 1)[0] for j in range(len(self.bands))],
                                      dtype=np.float32)
        else:
            self._rv_slope = np.zeros(len(self.bands), np.float32)

    # ------------------------------------------------------------------ construction and files
    @classmethod
    def from_astrolachesis(cls, path: str | os.PathLike | None = None, with_rv: bool = True) -> "BCGrid":
        """Read the astrolachesis HDF5 tables (about 0.5 s) and, optionally, compute the G23 R_V terms."""
        import h5py

        path = Path(path) if path is not None else default_table_path()
        if not path.exists():
            raise FileNotFoundError(f"{path}: BC table not found (is astrolachesis installed?)")
        with h5py.File(path, "r") as f:
            groups = {}
            for g in sorted({g for g, _ in TABLE_BANDS.values()}):
                names = [b.decode() if isinstance(b, bytes) else str(b) for b in f[g]["band_names"][:]]
                groups[g] = (names, f[g]["data"][:], np.asarray(f[g]["feh_values"][:], dtype=np.float64))
        ref = groups["UBVRIplus"][1]
        nfeh = ref.shape[0]
        # float32 in the file: round the nodes to their decimal values
        av = np.round(np.unique(ref[0, :, 3]).astype(np.float64), 4)
        teff = np.round(np.unique(ref[0, :, 0]).astype(np.float64), 1)
        logg = np.round(np.unique(ref[0, :, 1]).astype(np.float64), 4)
        feh = np.round(groups["UBVRIplus"][2], 4)
        shape = (nfeh, len(av), len(teff), len(logg))
        values = np.empty((len(io.MAGNITUDES),) + shape, dtype=np.float32)
        for j, band in enumerate(io.MAGNITUDES):
            g, name = TABLE_BANDS[band]
            names, data, feh_g = groups[g]
            if not np.allclose(feh_g, feh, atol=1e-4):
                raise ValueError(f"{path}: group {g} has other [Fe/H] nodes than UBVRIplus")
            d = data.reshape(shape + (data.shape[-1],))
            # row order: A_V slowest, then T_eff, then log g (checked against the node columns)
            if not (np.allclose(d[..., 0], teff[None, None, :, None]) and np.allclose(d[..., 1], logg, atol=1e-4)
                    and np.allclose(d[..., 3], av[None, :, None, None], atol=1e-4)):
                raise ValueError(f"{path}: group {g} rows are not ordered (A_V, T_eff, log g)")
            col = d[..., 5 + names.index(name)].astype(np.float64)
            col[np.abs(col) >= 50] = np.nan          # sentinel 99 of missing models
            values[j] = _fill_along_feh(col)
        axes = {"feh": feh, "av": av, "teff": teff, "logg": logg}
        rv_grid = rv_k = None
        if with_rv:
            rv_grid, rv_k = passband_extinction_coefficients()
            k31 = np.array([np.interp(RV_TABLE, rv_grid, rv_k[:, j]) for j in range(rv_k.shape[1])])
            values = _rebase_extinction(axes, values, k31)
        log.info("BC grid from %s: %s nodes (feh, A_V, Teff, logg), %d bands", path, shape, len(io.MAGNITUDES))
        return cls(axes, values, io.MAGNITUDES, rv_grid, rv_k)

    def save(self, path: str | os.PathLike) -> None:
        """Write the grid as a compressed npz (atomically)."""
        with io.atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, bands=np.array(self.bands), values=self.values,
                                    rv_grid=self.rv_grid, rv_k=self.rv_k,
                                    **{f"axis_{a}": self.axes[a] for a in AXES})

    @classmethod
    def load(cls, path: str | os.PathLike) -> "BCGrid":
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no BC grid (written by rule bolometric_corrections)")
        with np.load(path) as z:
            bands = tuple(str(b) for b in z["bands"])
            if bands != tuple(io.MAGNITUDES):
                raise ValueError(f"{path}: bands {bands} differ from io.MAGNITUDES; rebuild the grid")
            return cls({a: z[f"axis_{a}"] for a in AXES}, z["values"], bands, z["rv_grid"], z["rv_k"])

    # ------------------------------------------------------------------ interpolation
    def locate(self, teff, logg, feh, av):
        """Base flat index (int32, shape (N,)) and the four fractional positions (float32)."""
        i_f, t_f = self._axes["feh"].locate(feh)
        i_a, t_a = self._axes["av"].locate(np.maximum(np.asarray(av, np.float32), 0), extrapolate_high=True)
        i_t, t_t = self._axes["teff"].locate(teff)
        i_g, t_g = self._axes["logg"].locate(logg)
        s = self.strides.astype(np.int32)
        base = i_f * s[0] + i_a * s[1] + i_t * s[2] + i_g
        return base, (t_f, t_a, t_t, t_g)

    def bc(self, teff, logg, feh, av, bands: slice | None = None) -> np.ndarray:
        """Bolometric corrections, float32 array (N, n_bands), for R_V = 3.1.

        Inputs are broadcast 1-D arrays; NaN T_eff or log g give NaN rows.
        """
        teff, logg, feh, av = np.broadcast_arrays(*(np.atleast_1d(np.asarray(x, np.float32))
                                                     for x in (teff, logg, feh, av)))
        n = teff.shape[0]
        nb = len(self.bands)
        out = np.empty((n, nb), dtype=np.float32)
        bad = ~(np.isfinite(teff) & np.isfinite(logg) & np.isfinite(feh) & np.isfinite(av))
        for s0 in range(0, n, BLOCK):
            sl = slice(s0, min(n, s0 + BLOCK))
            tf, ta, tt, tg = teff[sl], logg[sl], feh[sl], av[sl]
            base, (wf, wa, wt, wg) = self.locate(np.nan_to_num(tf, nan=5000.0), np.nan_to_num(ta, nan=4.0),
                                                 np.nan_to_num(tt), np.nan_to_num(tg))
            w = _corner_weights(wf, wa, wt, wg)            # (16, B)
            idx = base[None, :] + self.corner_offsets[:, None]
            for j in range(nb):
                out[sl, j] = np.einsum("kb,kb->b", w, self._flat[j].take(idx))
        out[bad] = np.nan
        return out

    def rv_correction(self, rv, av) -> np.ndarray:
        """Magnitude change (N, n_bands) for R_V ≠ 3.1: A_V · (k_band(R_V) − k_band(3.1)).

        G23 is linear in 1/R_V at every wavelength (A_λ/A_V = a(λ) + b(λ)(1/R_V − 1/3.1)), so the
        passband means are too: k_band(R_V) − k_band(3.1) = c_band (1/R_V − 1/3.1), with c_band fitted
        exactly to the tabulated ``rv_k``.
        """
        rv = np.clip(np.asarray(rv, np.float32), *RV_RANGE)
        x = (np.float32(1.0) / rv - np.float32(1.0 / RV_TABLE)) * np.asarray(av, np.float32)
        return x[:, None] * self._rv_slope[None, :]

    def absolute_magnitudes(self, teff, logg, log10_lum_lsun, feh, av, rv=None) -> np.ndarray:
        """Absolute magnitudes (at 10 pc, extinction A_V applied), float32 (N, n_bands)."""
        mbol = np.float32(MBOL_SUN) - np.float32(2.5) * np.asarray(log10_lum_lsun, np.float32)
        m = mbol[:, None] - self.bc(teff, logg, feh, av)
        if rv is not None:
            m += self.rv_correction(rv, av)
        return m

    def magnitudes(self, teff, logg, log10_lum_lsun, feh, av, distance_pc, rv=None) -> np.ndarray:
        """Apparent magnitudes (Vega), float32 (N, n_bands) in io.MAGNITUDES order."""
        dm = np.float32(5.0) * np.log10(np.asarray(distance_pc, np.float32)) - np.float32(5.0)
        return self.absolute_magnitudes(teff, logg, log10_lum_lsun, feh, av, rv) + dm[:, None]


def _rebase_extinction(axes: dict, values: np.ndarray, k_g23: np.ndarray) -> np.ndarray:
    """Put the tables' extinction (CCM89, R_V = 3.1) onto the G23 scale, band by band.

    With A_tab(x) = BC(A_V = 0, x) − BC(A_V, x) the tables' band extinction and k_tab its ratio to
    A_V for the reference star (REFERENCE_STAR, A_V = 0.1), the new table is
    BC(A_V = 0) − (k_G23 / k_tab) · A_tab: the G23 normalisation at R_V = 3.1 with the tables' own
    dependence on T_eff, log g, [Fe/H] and A_V (band-width effects). For W3 and W4 the tables carry
    almost no extinction (k_tab ≈ 0.01 and 0.003: CCM89 stops at 3.3 µm), so there the extinction
    is G23's alone: A_band = k_G23 · A_V.
    """
    raw = BCGrid(axes, values)
    t, g, f = REFERENCE_STAR
    a0 = raw.bc([t], [g], [f], [0.0])[0].astype(np.float64)
    a1 = raw.bc([t], [g], [f], [0.1])[0].astype(np.float64)
    k_tab = (a0 - a1) / 0.1
    av = np.asarray(axes["av"], dtype=np.float64)[None, None, :, None, None]
    bc0 = values[:, :, :1].astype(np.float64)
    out = np.empty_like(values)
    for j in range(values.shape[0]):
        if k_tab[j] > 0.03:
            out[j] = bc0[j] - (k_g23[j] / k_tab[j]) * (bc0[j] - values[j])
        else:
            out[j] = bc0[j] - k_g23[j] * av[0]
    return out.astype(np.float32)


def _corner_weights(wf, wa, wt, wg) -> np.ndarray:
    """(16, N) multilinear weights in the corner order of BCGrid.corner_offsets."""
    one = np.float32(1.0)
    fa = np.stack([(one - wf) * (one - wa), (one - wf) * wa, wf * (one - wa), wf * wa])        # (4, N)
    tg = np.stack([(one - wt) * (one - wg), (one - wt) * wg, wt * (one - wg), wt * wg])        # (4, N)
    return (fa[:, None, :] * tg[None, :, :]).reshape(16, -1)


def _fill_along_feh(col: np.ndarray) -> np.ndarray:
    """Replace NaN entries by the value at the nearest [Fe/H] node that has one."""
    bad = np.isnan(col)
    if not bad.any():
        return col.astype(np.float32)
    out = col.copy()
    nfeh = col.shape[0]
    for idx in np.argwhere(bad):
        f = idx[0]
        for d in range(1, nfeh):
            for g in (f - d, f + d):
                if 0 <= g < nfeh and not np.isnan(col[(g,) + tuple(idx[1:])]):
                    out[tuple(idx)] = col[(g,) + tuple(idx[1:])]
                    break
            else:
                continue
            break
    if np.isnan(out).any():
        raise ValueError("BC table has a node with no finite value at any [Fe/H]")
    return out.astype(np.float32)


def passband_extinction_coefficients(rv_grid: np.ndarray | None = None, teff_ref: float = REFERENCE_STAR[0]):
    """k_band(R_V) = A_band / A_V of the G23 curve over each passband, small-extinction limit.

    Photon-counting weights ``λ T(λ) B_λ(T_ref)``; returns ``(rv_grid, k)`` with k of shape
    (n_rv, n_bands) in io.MAGNITUDES order.
    """
    import astropy.units as u
    import speclite.filters as sf
    from dust_extinction.parameter_averages import G23

    if rv_grid is None:
        rv_grid = np.round(np.arange(RV_RANGE[0], RV_RANGE[1] + 1e-9, 0.05), 4)
    filters = sf.load_filters(*[PASSBANDS[b] for b in io.MAGNITUDES])
    k = np.empty((len(rv_grid), len(io.MAGNITUDES)))
    h_c_over_k = 1.438777e8  # Å K
    for j, f in enumerate(filters):
        lam = np.asarray(f.wavelength, dtype=np.float64)          # Å
        resp = np.asarray(f.response, dtype=np.float64)
        bb = lam**-5 / np.expm1(h_c_over_k / (lam * teff_ref))
        wgt = lam * resp * bb
        lam_um = np.clip(lam / 1e4, 1 / 10.96, 1 / 0.0313)
        for i, rv in enumerate(rv_grid):
            alav = G23(Rv=float(rv))(lam_um * u.micron)
            k[i, j] = np.trapezoid(wgt * alav, lam) / np.trapezoid(wgt, lam)
    return np.asarray(rv_grid, dtype=np.float64), k


_CACHE: dict[str, BCGrid] = {}


def load_bc_grid(path: str | os.PathLike | None = None) -> BCGrid:
    """The BC grid from a cached npz (``path``) or, without a path, from astrolachesis (memoised)."""
    key = str(path) if path is not None else "<astrolachesis>"
    if key not in _CACHE:
        _CACHE[key] = BCGrid.load(path) if path is not None else BCGrid.from_astrolachesis()
    return _CACHE[key]


def run_bolometric_corrections(output: str | os.PathLike, table: str | os.PathLike | None = None,
                               offsets: dict | None = None, offsets_json: str | os.PathLike | None = None,
                               figure: str | os.PathLike | None = None) -> BCGrid:
    """Entry point of ``rule bolometric_corrections``: read the tables, put the 2MASS/WISE bands on the real surveys'
    systems (``stars.photometric_offsets``, config ``offsets``; not with ``enabled: false``), write the npz cache and
    the offsets' JSON and figure (both written in either case, so the rule's outputs always exist)."""
    from ysocensus.stars import photometric_offsets as po

    grid = BCGrid.from_astrolachesis(table)
    params = {**po.DEFAULTS, **(offsets or {})}
    fit = po.fit_offsets(grid, params=params)
    after = po.residuals_after(grid, fit)
    if params["enabled"]:
        grid = fit.apply(grid)
        before = fit.meta["residual_before_mag"]
        log.info("photometric offsets applied (rms of the dwarf colour residuals before -> after: %s)",
                 {c: (round(po.rms(b), 3), round(po.rms(after[c]), 3)) for c, b in before.items()})
    else:
        log.info("photometric offsets fitted but not applied (enabled: false)")
    fit.meta["applied"] = bool(params["enabled"])
    if offsets_json is not None:
        po.write_json(fit, after, offsets_json)
    if figure is not None:
        po.figure(fit, after, figure)
    grid.save(output)
    log.info("wrote %s", output)
    return grid
