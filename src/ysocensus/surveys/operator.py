"""The differentiable measurement operator: θ = (log10 age, log10 mass, [Fe/H], distance, A_V) →
noise-free magnitudes (io.MAGNITUDES order, Vega) and parallax (mas).

Two implementations on the very same tables:

* :func:`forward_numpy` — ``IsochroneGrid.interpolate`` (multilinear in [Fe/H], log age, log mass, with
  renormalised weights over the finite corners near the end of a track) → T_eff, log g, L →
  ``BCGrid.magnitudes`` (multilinear in [Fe/H], A_V, T_eff, log g) + distance modulus. This is the
  photometry of the observe stage.
* :class:`MeasurementOperator` — a ``torch.nn.Module`` doing the same arithmetic with gathers on
  registered buffers (so ``.to(device)`` works), differentiable in every input almost everywhere
  (multilinear interpolation is piecewise linear; gradients are finite everywhere).

Validity: ``valid`` is False where θ lies outside the stellar models (outside the grid axes, a
remnant above the isochrone's largest living mass, below its smallest mass, or in a hole of the
models). There the magnitudes are still finite: they come from a copy of the track grid whose
holes are filled along the mass axis (``IsochroneGrid.values_filled``) with θ clamped to the axes,
so gradients never become NaN. R_V = 3.1 is assumed (the BC grid's own, G23-rebased, extinction).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ysocensus import io
from ysocensus.stars.bolometric import AXES as BC_AXES, AXIS_STEPS, MBOL_SUN, BCGrid

#: fallback track quantities where not even the filled grid has a value (log Teff, log g, log L, log R)
_FALLBACK = (3.6, 4.5, 0.0, 0.0)


def forward_numpy(isochrones, bc: BCGrid, log10_age_yr, log10_mass, feh, distance_pc, av_mag):
    """Numpy reference: ``(mags (N, 10) float32, parallax_mas (N,), valid (N,) bool)``; NaN where invalid."""
    q = isochrones.interpolate(log10_age_yr, log10_mass, feh)
    teff = 10.0 ** q["log10_teff"].astype(np.float64)
    mags = bc.magnitudes(teff, q["logg"], q["log10_lum_lsun"], feh, av_mag, distance_pc)
    valid = np.all(np.isfinite(mags), axis=1)
    parallax = 1000.0 / np.asarray(distance_pc, np.float64)
    return mags, parallax, valid


class MeasurementOperator(torch.nn.Module):
    """θ → (mags [..., 10], parallax_mas [...], valid [...]) on the track grid and the BC grid.

    Build with :meth:`from_files` (npz of ``IsochroneGrid.save`` and ``BCGrid.save``) or
    :meth:`from_grids`. All tensors of ``forward`` share one shape [...]; float32 or float64 in,
    same dtype out (the tables are float32).
    """

    bands = io.MAGNITUDES

    def __init__(self, isochrones, bc: BCGrid):
        super().__init__()
        # ---- track grid: values with NaN -> 0 plus a finiteness mask (renormalised weights, as numpy)
        vals = np.asarray(isochrones.values, np.float32)
        qi = [list(isochrones.quantities).index(q) for q in ("log10_teff", "logg", "log10_lum_lsun")]
        vals = vals[..., qi]
        ok = np.all(np.isfinite(vals), axis=-1)
        filled = np.asarray(isochrones.values_filled, np.float32)[..., qi]
        for k in range(3):
            filled[..., k] = np.where(np.isfinite(filled[..., k]), filled[..., k], _FALLBACK[k])
        self.track_shape = vals.shape[:3]
        # one row per node: 3 values (0 where absent), finiteness, 3 values of the filled grid
        table = np.concatenate([np.where(ok[..., None], vals, 0).reshape(-1, 3), ok.reshape(-1, 1).astype(np.float32),
                                filled.reshape(-1, 3)], axis=1)
        self.register_buffer("track_table", torch.from_numpy(np.ascontiguousarray(table, dtype=np.float32)))
        self.track_axes = []
        for name in ("feh", "log10_age_yr", "log10_mass"):
            ax = np.asarray(isochrones.axes[name], np.float64)
            self.track_axes.append((float(ax[0]), float((ax[-1] - ax[0]) / (ax.size - 1)), int(ax.size)))
        # per (feh, age) node: mass_max, mass_min (0 where ±inf) and their finiteness
        lims = [np.asarray(a, np.float64) for a in (isochrones.log10_mass_max, isochrones.log10_mass_min)]
        cols = [np.where(np.isfinite(a), a, 0.0) for a in lims] + [np.isfinite(a).astype(np.float64) for a in lims]
        self.register_buffer("mass_limits", torch.from_numpy(np.stack([c.reshape(-1) for c in cols], 1)
                                                             .astype(np.float32)))
        # evolved segments (IsochroneGrid.evolved_*): parameters vs the fraction u along the segment
        ev = getattr(isochrones, "evolved_values", None)
        self.has_evolved = ev is not None
        if self.has_evolved:
            em = np.asarray(isochrones.evolved_log10_mass, np.float64)
            ev = np.asarray(ev, np.float32)[..., qi]
            ev_ok = np.all(np.isfinite(ev), axis=-1)
            em_ok = np.all(np.isfinite(em), axis=-1)
            self.n_u = ev.shape[2]
            em_t = np.concatenate([np.where(em_ok[..., None], em, 0.0), em_ok[..., None]], -1).reshape(-1, 3)
            ev_t = np.concatenate([np.where(ev_ok[..., None], ev, 0.0), ev_ok[..., None]], -1).reshape(-1, 4)
            self.register_buffer("evo_m", torch.from_numpy(em_t.astype(np.float32)))
            self.register_buffer("evo_v", torch.from_numpy(ev_t.astype(np.float32)))
        # ---- BC grid (band-major flat tables), look-up tables of its irregular axes
        nb = len(bc.bands)
        self.register_buffer("bc_rows", torch.from_numpy(np.ascontiguousarray(bc.values.reshape(nb, -1).T)))
        self.register_buffer("bc_offsets", torch.from_numpy(bc.corner_offsets.astype(np.int64)))
        self.bc_strides = [int(s) for s in bc.strides]
        for a in BC_AXES:
            ax = bc._axes[a]
            self.register_buffer(f"bc_lut_{a}", torch.from_numpy(ax.lut.astype(np.int64)))
            self.register_buffer(f"bc_lo_{a}", torch.from_numpy(ax.lo32.copy()))
            self.register_buffer(f"bc_inv_{a}", torch.from_numpy(ax.inv32.copy()))
        self.bc_range = {a: (float(bc.axes[a][0]), float(bc.axes[a][-1])) for a in BC_AXES}

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_grids(cls, isochrones, bc: BCGrid) -> "MeasurementOperator":
        return cls(isochrones, bc)

    @classmethod
    def from_files(cls, isochrones_path: str | os.PathLike, bc_path: str | os.PathLike | None = None
                   ) -> "MeasurementOperator":
        """From ``results/models/isochrones.npz`` and ``results/models/bc_grid.npz`` (None: build BCs now)."""
        from ysocensus.stars.tracks import IsochroneGrid

        iso = IsochroneGrid.load(Path(isochrones_path))
        bc = BCGrid.load(bc_path) if bc_path is not None else BCGrid.from_astrolachesis()
        return cls(iso, bc)

    # ------------------------------------------------------------------ pieces
    def _track_axis(self, k: int, x: torch.Tensor):
        x0, step, n = self.track_axes[k]
        t = (x - x0) / step
        inside = (t >= -1e-6) & (t <= n - 1 + 1e-6)
        t = t.clamp(0.0, n - 1 - 1e-6)
        i = torch.floor(t.detach()).long().clamp(0, n - 2)
        return i, t - i.to(t.dtype), inside

    def stellar_parameters(self, log10_age_yr, log10_mass, feh):
        """(log10 T_eff, log g, log10 L) [..., 3] and valid [...] for flattened inputs."""
        fi, wf, in_f = self._track_axis(0, feh)
        ai, wa, in_a = self._track_axis(1, log10_age_yr)
        mi, wm, in_m = self._track_axis(2, log10_mass)
        _, na, nm = self.track_shape
        dt = feh.dtype
        acc = torch.zeros(feh.shape + (3,), dtype=dt, device=feh.device)
        accf = torch.zeros_like(acc)
        wsum = torch.zeros_like(feh)
        for df, wfc in ((0, 1 - wf), (1, wf)):
            for da, wac in ((0, 1 - wa), (1, wa)):
                base = ((fi + df) * na + (ai + da)) * nm + mi
                for dm, wmc in ((0, 1 - wm), (1, wm)):
                    idx = base + dm
                    row = torch.index_select(self.track_table, 0, idx.reshape(-1)).reshape(idx.shape + (7,)).to(dt)
                    w = wfc * wac * wmc
                    okw = w * row[..., 3]
                    acc = acc + okw[..., None] * row[..., :3]
                    wsum = wsum + okw
                    accf = accf + w[..., None] * row[..., 4:]
        if self.has_evolved:
            acc, wsum = self._evolved(acc, wsum, log10_mass, fi, wf, ai, wa)
        # mass limits of the (feh, age) cell, bilinear as in IsochroneGrid._mass_limits (a corner
        # without any star, limit ±inf there, makes the limit undefined: invalid)
        lim = [torch.zeros_like(feh), torch.zeros_like(feh)]
        lim_ok = torch.ones_like(in_f)
        for df, wfc in ((0, 1 - wf), (1, wf)):
            for da, wac in ((0, 1 - wa), (1, wa)):
                w = wfc * wac
                k = (fi + df) * na + (ai + da)
                row = torch.index_select(self.mass_limits, 0, k.reshape(-1)).reshape(k.shape + (4,)).to(dt)
                lim[0] = lim[0] + w * row[..., 0]
                lim[1] = lim[1] + w * row[..., 1]
                lim_ok = lim_ok & (((row[..., 2] > 0) & (row[..., 3] > 0)) | (w <= 0))
        valid = (in_f & in_a & in_m & (wsum > 1e-12) & lim_ok & (log10_mass <= lim[0] + 1e-6)
                 & (log10_mass >= lim[1] - 1e-6))
        params = torch.where(valid[..., None], acc / wsum.clamp_min(1e-12)[..., None], accf)
        return params, valid

    def _evolved(self, acc, wsum, m, fi, wf, ai, wa):
        """Stars on the evolved segment take parameters at the same fraction u of every corner's segment
        (the arithmetic of IsochroneGrid._evolved)."""
        dt = m.dtype
        n_u = self.n_u
        na = self.track_shape[1]
        corners = [(df, da, (wf if df else 1 - wf) * (wa if da else 1 - wa)) for df in (0, 1) for da in (0, 1)]
        keys = [(fi + df) * na + (ai + da) for df, da, _ in corners]
        start = torch.zeros_like(m)
        end = torch.zeros_like(m)
        wtot = torch.zeros_like(m)
        for k, (_, _, w) in zip(keys, corners):
            se = torch.index_select(self.evo_m, 0, k.reshape(-1)).reshape(k.shape + (3,)).to(dt)
            wv = w * se[..., 2] * (w > 0).to(dt)
            start = start + wv * se[..., 0]
            end = end + wv * se[..., 1]
            wtot = wtot + wv
        has = wtot > 1e-12
        start = start / wtot.clamp_min(1e-12)
        end = end / wtot.clamp_min(1e-12)
        sel = has & (m >= start) & (end > start)
        width = torch.where(sel, end - start, torch.ones_like(m))
        u = ((m - start) / width).clamp(0.0, 1.0) * (n_u - 1)
        iu = torch.floor(u.detach()).long().clamp(0, n_u - 2)
        fu = (u - iu.to(dt))[..., None]
        a2 = torch.zeros_like(acc)
        w2 = torch.zeros_like(m)
        for k, (_, _, w) in zip(keys, corners):
            j = k * n_u + iu
            r0 = torch.index_select(self.evo_v, 0, j.reshape(-1)).reshape(j.shape + (4,)).to(dt)
            r1 = torch.index_select(self.evo_v, 0, (j + 1).reshape(-1)).reshape(j.shape + (4,)).to(dt)
            wv = w * r0[..., 3] * r1[..., 3] * (w > 0).to(dt)
            a2 = a2 + wv[..., None] * (r0[..., :3] + fu * (r1[..., :3] - r0[..., :3]))
            w2 = w2 + wv
        good = sel & (w2 > 1e-12)
        return torch.where(good[..., None], a2, acc), torch.where(good, w2, wsum)

    def _bc_axis(self, a: str, x: torch.Tensor, extrapolate_high: bool = False):
        lo, hi = self.bc_range[a]
        xc = x.clamp(min=lo) if extrapolate_high else x.clamp(lo, hi)
        lut = getattr(self, f"bc_lut_{a}")
        cell = ((xc.detach().clamp(max=hi) - lo) * (1.0 / AXIS_STEPS[a])).long().clamp(0, lut.numel() - 1)
        i = lut[cell]
        t = (xc - getattr(self, f"bc_lo_{a}")[i].to(x.dtype)) * getattr(self, f"bc_inv_{a}")[i].to(x.dtype)
        return i, t

    def bolometric_corrections(self, teff, logg, feh, av):
        """BC [..., n_bands] (R_V = 3.1), the arithmetic of BCGrid.bc."""
        i_f, t_f = self._bc_axis("feh", feh)
        i_a, t_a = self._bc_axis("av", av, extrapolate_high=True)
        i_t, t_t = self._bc_axis("teff", teff)
        i_g, t_g = self._bc_axis("logg", logg)
        s = self.bc_strides
        base = i_f * s[0] + i_a * s[1] + i_t * s[2] + i_g
        fa = torch.stack([(1 - t_f) * (1 - t_a), (1 - t_f) * t_a, t_f * (1 - t_a), t_f * t_a], dim=-1)
        tg = torch.stack([(1 - t_t) * (1 - t_g), (1 - t_t) * t_g, t_t * (1 - t_g), t_t * t_g], dim=-1)
        w = (fa[..., :, None] * tg[..., None, :]).flatten(-2)                  # [..., 16]
        idx = base[..., None] + self.bc_offsets                                 # [..., 16]
        nb = self.bc_rows.shape[1]
        vals = torch.index_select(self.bc_rows, 0, idx.reshape(-1)).reshape(idx.shape + (nb,)).to(teff.dtype)
        return torch.einsum("...k,...kb->...b", w, vals)

    # ------------------------------------------------------------------ forward
    def forward(self, log10_age_yr, log10_mass, feh, distance_pc, av_mag):
        """``(mags [..., 10], parallax_mas [...], valid [...])``; mags finite everywhere."""
        log10_age_yr, log10_mass, feh, distance_pc, av_mag = torch.broadcast_tensors(
            log10_age_yr, log10_mass, feh, distance_pc, av_mag)
        params, valid = self.stellar_parameters(log10_age_yr, log10_mass, feh)
        teff = torch.pow(10.0, params[..., 0])
        bc = self.bolometric_corrections(teff, params[..., 1], feh, av_mag.clamp_min(0.0))
        d = distance_pc.clamp_min(1e-3)
        dm = 5.0 * torch.log10(d) - 5.0
        mbol = MBOL_SUN - 2.5 * params[..., 2]
        mags = (mbol + dm)[..., None] - bc
        parallax = 1000.0 / d
        return mags, parallax, valid
