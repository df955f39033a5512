"""A regular isochrone grid from MIST v2.5 EEP isochrones, blended with BHAC15 for young low-mass stars.

Interface used by the population, observe and inference stages (keep it stable):

``IsochroneGrid``
    ``axes``        dict of 1-D, uniformly spaced float64 arrays ``"feh"`` (dex), ``"log10_age_yr"``,
                    ``"log10_mass"`` (log10 initial mass in Msun);
    ``values``      float32 array (n_feh, n_age, n_mass, n_quantities); NaN where no star exists
                    (past the end of its track = remnant, or outside every model);
    ``quantities``  ("log10_teff", "logg", "log10_lum_lsun", "log10_radius_rsun");
    ``log10_mass_max`` / ``log10_mass_min``: float64 (n_feh, n_age), the largest / smallest initial mass
                    still alive on each isochrone (a star above ``log10_mass_max`` is a remnant);
    ``interpolate(log10_age_yr, log10_mass, feh)`` -> dict of arrays (float32), NaN outside / remnant;
    ``is_remnant(log10_age_yr, log10_mass, feh)`` -> bool array;
    ``save(path)`` / ``IsochroneGrid.load(path)`` (npz, written atomically);
    ``IsochroneGrid.build(**params)`` from the installed packages (``lachesis-grids``).

How the grid is made
    * MIST v2.5 (vvcrit 0.4) isochrones from ``lachesis-grids`` are stored per ([Fe/H], log age) node
      as a run of equivalent evolutionary points (EEPs). Rows that are not finite, and white-dwarf /
      post-AGB rows (MIST phase 6), are dropped, so each isochrone ends where the star stops being a
      "star" with photometry; initial mass increases along the EEPs of an isochrone.
    * A grid node that is not a MIST node ([Fe/H] = -2.75 and -2.25 on the default 0.25 dex axis, or
      finer ages) is made by interpolating *in EEP* between the two neighbouring isochrones (each EEP
      keeps its evolutionary phase; mass and parameters are interpolated linearly at fixed EEP), never
      in mass across ages (stellar-data notes: mass sampling along EEPs is uneven for young stars).
    * Along each isochrone the parameters are interpolated linearly in log10 initial mass onto the
      regular mass axis; masses outside the isochrone's mass range are NaN.
    * BHAC15 (Baraffe et al. 2015, solar [Fe/H], log age 5.7-10.0, 0.01-1.4 Msun, in ``lachesis-grids``)
      covers the young low-mass stars where MIST has holes (at 1 Myr and solar [Fe/H] MIST starts at
      0.25 Msun; at [Fe/H] = +0.5 it starts at 0.5 Msun at every age). Blend ("bhac15", default):
      with w = w_mass * w_age, w_mass = 1 below ``blend_mass_msun[0]`` falling linearly in log mass to 0
      at ``blend_mass_msun[1]``, w_age = 1 below ``blend_log10_age_yr[0]`` falling linearly to 0 at
      ``blend_log10_age_yr[1]``, a node takes (1 - w) MIST + w BHAC15 where both exist, the one that
      exists where only one does (so BHAC15 also fills MIST's holes at any age and [Fe/H]), NaN where
      neither does. At every age the weight is at least that of a ramp from 1 at 0.10 Msun to 0 at
      0.15 Msun (``MIST_EDGE_BLEND_MSUN``), so MIST's lowest masses join BHAC15's brown dwarfs smoothly. BHAC15 is solar only: its values are used at every [Fe/H] (the metallicity
      dependence of pre-main-sequence M dwarfs is not modelled). ``low_mass_models="none"`` keeps MIST only.
    * Between nodes ``interpolate`` is multilinear in ([Fe/H], log age, log mass). Near the end of a
      track some of the 8 corners are NaN; for a star that is alive (its mass is below the bilinearly
      interpolated ``log10_mass_max``) the finite corners are used with renormalised weights, so giants
      near the tip of their track keep parameters. A naive multilinear lookup (e.g. in torch) gives NaN
      within one cell of any edge; use ``values_filled`` if that matters.
    * Evolved stars. After the main sequence a whole isochrone (subgiants, the red giant branch, the
      horizontal branch, the AGB) spans a tiny range of initial mass (at 10 Gyr and solar [Fe/H]:
      1.031-1.041 Msun for the RGB, 1.041-1.044 Msun for HB + AGB, i.e. 0.006 dex), far below any regular
      mass step. So each node also keeps its evolved segment (EEP >= 454, MIST's TAMS) resampled at
      ``N_EVOLVED`` points uniform in u = (log m - log m_TAMS) / (log m_end - log m_TAMS)
      (``evolved_log10_mass`` = (start, end) per node, ``evolved_values``). ``interpolate`` computes u of a
      star from the bilinearly interpolated start/end masses, takes each corner isochrone's parameters at
      the same u (the same stage of evolution, as EEP interpolation does) and blends them with the
      ([Fe/H], age) weights. Giants and the red clump therefore come out with the right parameters and
      in the right numbers (lifetime x IMF), which the regular ``values`` alone cannot give.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..io import atomic_path

log = logging.getLogger(__name__)

QUANTITIES = ("log10_teff", "logg", "log10_lum_lsun", "log10_radius_rsun")
#: columns of the lachesis-grids HDF5 files that give QUANTITIES, in order
_SOURCE_COLUMNS = ("log_Teff", "log_g", "log_L", "log_R")
MIST_FILE = "mist_v2.5_vvcrit0.4.h5"
BHAC15_FILE = "bhac15.h5"
#: MIST phase of post-AGB stars and white dwarfs (remnants here); WR stars (9) stay
_MIST_WD_PHASE = 6
#: MIST primary EEP of the terminal-age main sequence: the evolved segment of an isochrone starts here
MIST_TAMS_EEP = 454
#: BHAC15 weight falls from 1 to 0 over this mass range at every age (MIST's tracks start at 0.1 Msun)
MIST_EDGE_BLEND_MSUN = (0.10, 0.15)
#: samples of the evolved segment of each isochrone (uniform in its mass fraction u, see module doc)
N_EVOLVED = 512

DEFAULTS = dict(
    feh_range=(-3.0, 0.5), feh_step=0.25,
    log10_age_range=(5.0, 10.3), log10_age_step=0.05,
    log10_mass_range=(-2.0, 2.5), log10_mass_step=0.005,
    low_mass_models="bhac15",
    blend_mass_msun=(0.5, 0.7),
    blend_log10_age_yr=(7.5, 8.0),
)


class StellarModelsMissing(RuntimeError):
    """A stellar-model package or file that the configuration needs is not installed."""


def _grid_file(name: str) -> Path:
    try:
        import lachesis_grids
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise StellarModelsMissing(
            "the stellar-model package 'lachesis-grids' is not installed (pip install lachesis-grids); "
            "it provides the MIST v2.5 and BHAC15 tracks the isochrone grid is built from") from exc
    try:
        return Path(lachesis_grids.grid_path(name))
    except FileNotFoundError as exc:
        raise StellarModelsMissing(f"lachesis-grids has no grid file {name!r}: {exc}") from exc


@dataclass
class _Iso:
    """One isochrone: EEP numbers, log10 initial mass and QUANTITIES along the EEPs."""

    eep: np.ndarray
    logm: np.ndarray
    q: np.ndarray  # (n_eep, n_quantities)

    @property
    def empty(self) -> bool:
        return self.eep.size < 2


def _clean(eep, mass, q, phase=None) -> _Iso:
    ok = np.isfinite(mass) & (mass > 0) & np.all(np.isfinite(q), axis=1)
    if phase is not None:
        ok &= ~(phase == _MIST_WD_PHASE)
        # everything after the first white-dwarf EEP is a remnant
        wd = np.flatnonzero(phase >= _MIST_WD_PHASE - 0.5)
        wd = wd[phase[wd] != 9]
        if wd.size:
            ok[wd[0]:] = False
    eep, logm, q = eep[ok], np.log10(mass[ok]), q[ok]
    # initial mass must increase along an isochrone: keep the strictly increasing envelope
    if logm.size:
        runmax = np.maximum.accumulate(logm)
        keep = np.r_[True, logm[1:] > runmax[:-1]]
        eep, logm, q = eep[keep], logm[keep], q[keep]
    return _Iso(eep.astype(np.float64), logm.astype(np.float64), q.astype(np.float64))


def _read_sparse(path: Path, use_phase: bool) -> tuple[np.ndarray, np.ndarray, list[list[_Iso]]]:
    """Isochrones of a lachesis-grids 'sparse_v1' file, indexed [feh][age]."""
    import h5py

    with h5py.File(path, "r") as f:
        cols = [c.decode() if isinstance(c, bytes) else str(c) for c in f.attrs["columns"]]
        feh = f["feh_values"][:].astype(np.float64)
        age = f["age_values"][:].astype(np.float64)
        lengths = f["lengths"][:].astype(np.int64)
        offsets = f["offsets"][:].astype(np.int64)
        values = f["values"][:]
    starts = np.r_[0, np.cumsum(lengths)]
    iq = [cols.index(c) for c in _SOURCE_COLUMNS]
    im, ie = cols.index("initial_mass"), cols.index("eep")
    ip = cols.index("phase") if (use_phase and "phase" in cols) else None
    out: list[list[_Iso]] = []
    for fi in range(feh.size):
        row = []
        for ai in range(age.size):
            i = fi * age.size + ai
            seg = values[starts[i]:starts[i + 1]]
            eep = seg[:, ie] if np.all(np.isfinite(seg[:, ie])) else offsets[i] + np.arange(len(seg))
            row.append(_clean(np.asarray(eep, np.float64), seg[:, im], seg[:, iq],
                              None if ip is None else seg[:, ip]))
        out.append(row)
    return feh, age, out


def _eep_blend(a: _Iso, b: _Iso, w: float) -> _Iso:
    """Isochrone at (1-w)*a + w*b, interpolated at fixed EEP over the EEPs both share."""
    if w <= 0 or b.empty:
        return a if w < 1 else b
    if w >= 1 or a.empty:
        return b
    common, ia, ib = np.intersect1d(a.eep, b.eep, return_indices=True)
    if common.size < 2:
        return _Iso(np.empty(0), np.empty(0), np.empty((0, a.q.shape[1])))
    logm = (1 - w) * a.logm[ia] + w * b.logm[ib]
    q = (1 - w) * a.q[ia] + w * b.q[ib]
    return _clean(common, 10.0**logm, q)


def _bracket(nodes: np.ndarray, x: float) -> tuple[int, int, float]:
    """Indices of the nodes around x and the weight of the upper one (exact nodes give w=0)."""
    j = int(np.clip(np.searchsorted(nodes, x - 1e-9), 0, nodes.size - 1))
    if abs(nodes[j] - x) < 1e-6:
        return j, j, 0.0
    if x < nodes[0] or x > nodes[-1]:
        return -1, -1, 0.0
    lo = j - 1
    return lo, j, float((x - nodes[lo]) / (nodes[j] - nodes[lo]))


def _on_mass_axis(iso: _Iso, logm_axis: np.ndarray) -> np.ndarray:
    out = np.full((logm_axis.size, len(QUANTITIES)), np.nan)
    if iso.empty:
        return out
    inside = (logm_axis >= iso.logm[0]) & (logm_axis <= iso.logm[-1])
    for k in range(len(QUANTITIES)):
        out[inside, k] = np.interp(logm_axis[inside], iso.logm, iso.q[:, k])
    return out


def _axis(lo: float, hi: float, step: float) -> np.ndarray:
    n = int(round((hi - lo) / step)) + 1
    if n < 2:
        raise ValueError(f"axis {lo}..{hi} step {step} has fewer than 2 points")
    return np.round(lo + step * np.arange(n), 10)


@dataclass
class IsochroneGrid:
    """Regular grid of stellar parameters on ([Fe/H], log10 age, log10 initial mass); see module doc."""

    axes: dict[str, np.ndarray]
    values: np.ndarray
    log10_mass_max: np.ndarray
    log10_mass_min: np.ndarray
    quantities: tuple[str, ...] = QUANTITIES
    meta: dict = field(default_factory=dict)
    evolved_log10_mass: np.ndarray | None = None   # (n_feh, n_age, 2): start (TAMS) and end of the evolved segment
    evolved_values: np.ndarray | None = None       # (n_feh, n_age, N_EVOLVED, n_quantities) float32

    AXES = ("feh", "log10_age_yr", "log10_mass")

    # ------------------------------------------------------------------ building
    @classmethod
    def build(cls, feh_range: Sequence[float] = DEFAULTS["feh_range"], feh_step: float = DEFAULTS["feh_step"],
              log10_age_range: Sequence[float] = DEFAULTS["log10_age_range"],
              log10_age_step: float = DEFAULTS["log10_age_step"],
              log10_mass_range: Sequence[float] = DEFAULTS["log10_mass_range"],
              log10_mass_step: float = DEFAULTS["log10_mass_step"],
              low_mass_models: str = DEFAULTS["low_mass_models"],
              blend_mass_msun: Sequence[float] = DEFAULTS["blend_mass_msun"],
              blend_log10_age_yr: Sequence[float] = DEFAULTS["blend_log10_age_yr"]) -> "IsochroneGrid":
        """Build the grid from MIST v2.5 (and BHAC15) in ``lachesis-grids``; parameters as in the config."""
        if low_mass_models not in ("bhac15", "none"):
            raise ValueError(f"stellar_models.low_mass_models: {low_mass_models!r} is not one of 'bhac15', 'none'")
        feh_axis = _axis(*feh_range, feh_step)
        age_axis = _axis(*log10_age_range, log10_age_step)
        m_axis = _axis(*log10_mass_range, log10_mass_step)
        mist_feh, mist_age, mist = _read_sparse(_grid_file(MIST_FILE), use_phase=True)
        if feh_axis[0] < mist_feh[0] - 1e-9 or feh_axis[-1] > mist_feh[-1] + 1e-9:
            raise ValueError(f"stellar_models.feh_range {feh_range} is outside MIST's {mist_feh[0]}..{mist_feh[-1]}")
        if age_axis[0] < mist_age[0] - 1e-9 or age_axis[-1] > mist_age[-1] + 1e-9:
            raise ValueError(f"stellar_models.log10_age_range {log10_age_range} is outside MIST's "
                             f"{mist_age[0]}..{mist_age[-1]}")
        nf, na, nm, nq = feh_axis.size, age_axis.size, m_axis.size, len(QUANTITIES)
        values = np.full((nf, na, nm, nq), np.nan)
        evo_m = np.full((nf, na, 2), np.nan)
        evo_v = np.full((nf, na, N_EVOLVED, nq), np.nan, np.float32)
        end_m = np.full((nf, na), np.nan)
        u = np.linspace(0.0, 1.0, N_EVOLVED)

        age_br = [_bracket(mist_age, a) for a in age_axis]
        for fi, feh in enumerate(feh_axis):
            f0, f1, wf = _bracket(mist_feh, feh)
            for ai, (a0, a1, wa) in enumerate(age_br):
                iso = _eep_blend(_eep_blend(mist[f0][a0], mist[f0][a1], wa),
                                 _eep_blend(mist[f1][a0], mist[f1][a1], wa), wf)
                values[fi, ai] = _on_mass_axis(iso, m_axis)
                if iso.empty:
                    continue
                end_m[fi, ai] = iso.logm[-1]
                seg = iso.eep >= MIST_TAMS_EEP
                if seg.sum() >= 2:
                    lm, q = iso.logm[seg], iso.q[seg]
                    evo_m[fi, ai] = lm[0], lm[-1]
                    target = lm[0] + u * (lm[-1] - lm[0])
                    for k in range(nq):
                        evo_v[fi, ai, :, k] = np.interp(target, lm, q[:, k])

        meta = dict(source="MIST v2.5 vvcrit0.4 (lachesis-grids " + MIST_FILE + ")", low_mass_models=low_mass_models)
        if low_mass_models == "bhac15":
            bh_feh, bh_age, bh = _read_sparse(_grid_file(BHAC15_FILE), use_phase=False)
            bvals = np.full((na, nm, nq), np.nan)
            for ai, age in enumerate(age_axis):
                a0, a1, wa = _bracket(bh_age, age)
                if a0 < 0:
                    continue
                bvals[ai] = _on_mass_axis(_eep_blend(bh[0][a0], bh[0][a1], wa), m_axis)
            lo_m, hi_m = np.log10(blend_mass_msun[0]), np.log10(blend_mass_msun[1])
            lo_a, hi_a = blend_log10_age_yr
            if not (hi_m > lo_m and hi_a > lo_a):
                raise ValueError("stellar_models blend ranges must be increasing [low, high] pairs")
            w_m = np.clip((hi_m - m_axis) / (hi_m - lo_m), 0, 1)
            w_a = np.clip((hi_a - age_axis) / (hi_a - lo_a), 0, 1)
            # at every age, blend across MIST's lowest masses (0.10-0.15 Msun) so that the MIST main sequence
            # joins the BHAC15 one below 0.1 Msun without a step
            e_lo, e_hi = np.log10(MIST_EDGE_BLEND_MSUN[0]), np.log10(MIST_EDGE_BLEND_MSUN[1])
            w_edge = np.clip((e_hi - m_axis) / (e_hi - e_lo), 0, 1)
            w = np.maximum(w_a[:, None] * w_m[None, :], w_edge[None, :])[None, :, :, None]  # (1, na, nm, 1)
            b = bvals[None]
            m_ok, b_ok = np.isfinite(values), np.isfinite(b)
            blended = np.where(m_ok & b_ok, (1 - w) * values + w * b, np.where(m_ok, values, b))
            values = blended
            meta.update(low_mass_source="BHAC15 (lachesis-grids " + BHAC15_FILE + "), solar [Fe/H] used at every [Fe/H]",
                        blend_mass_msun=list(blend_mass_msun), blend_log10_age_yr=list(blend_log10_age_yr))
        # a node is either complete or NaN in every quantity
        values[~np.all(np.isfinite(values), axis=-1)] = np.nan
        alive = np.isfinite(values[..., 0])
        any_alive = alive.any(axis=-1)
        idx_max = nm - 1 - np.argmax(alive[..., ::-1], axis=-1)
        idx_min = np.argmax(alive, axis=-1)
        mmax = np.where(any_alive, m_axis[idx_max], -np.inf)
        # the exact end of the MIST isochrone where it lies beyond the last alive node
        mmax = np.where(np.isfinite(end_m), np.fmax(mmax, np.fmin(end_m, m_axis[-1])), mmax)
        mmin = np.where(any_alive, m_axis[idx_min], np.inf)
        axes = {"feh": feh_axis, "log10_age_yr": age_axis, "log10_mass": m_axis}
        meta.update(feh_range=list(feh_range), feh_step=feh_step, log10_age_range=list(log10_age_range),
                    log10_age_step=log10_age_step, log10_mass_range=list(log10_mass_range),
                    log10_mass_step=log10_mass_step)
        log.info("isochrone grid built: %s nodes, %.1f%% finite", values.shape[:3], 100 * alive.mean())
        return cls(axes, values.astype(np.float32), mmax, mmin, QUANTITIES, meta, evo_m, evo_v)

    @classmethod
    def from_config(cls, cfg: Mapping | None) -> "IsochroneGrid":
        """Build from the ``population.stellar_models`` section of the config."""
        cfg = dict(cfg or {})
        cfg.pop("empirical_correction", None)  # applied after building (ysocensus.stars.empirical)
        cfg.pop("photometric_offsets", None)   # applied to the BC grid (ysocensus.stars.photometric_offsets)
        keys = set(DEFAULTS)
        unknown = set(cfg) - keys
        if unknown:
            raise ValueError(f"population.stellar_models: unknown key(s) {sorted(unknown)}")
        return cls.build(**cfg)

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> None:
        """Write the grid as .npz, atomically."""
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, feh=self.axes["feh"], log10_age_yr=self.axes["log10_age_yr"],
                     log10_mass=self.axes["log10_mass"], values=self.values,
                     log10_mass_max=self.log10_mass_max, log10_mass_min=self.log10_mass_min,
                     quantities=np.array(self.quantities), meta=np.array(json.dumps(self.meta)),
                     evolved_log10_mass=self.evolved_log10_mass, evolved_values=self.evolved_values)

    @classmethod
    def load(cls, path) -> "IsochroneGrid":
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no isochrone grid (run the stellar_models rule)")
        with np.load(path, allow_pickle=False) as z:
            axes = {k: z[k].astype(np.float64) for k in cls.AXES}
            evo = (z["evolved_log10_mass"], z["evolved_values"]) if "evolved_values" in z.files else (None, None)
            return cls(axes, z["values"], z["log10_mass_max"], z["log10_mass_min"],
                       tuple(str(q) for q in z["quantities"]), json.loads(str(z["meta"])), *evo)

    # ------------------------------------------------------------------ lookup
    def _frac(self, name: str, x: np.ndarray):
        ax = self.axes[name]
        step = (ax[-1] - ax[0]) / (ax.size - 1)
        t = (x - ax[0]) / step
        inside = (t >= -1e-9) & (t <= ax.size - 1 + 1e-9)
        t = np.clip(t, 0, ax.size - 1 - 1e-9)
        i = np.floor(t).astype(np.int64)
        return i, (t - i), inside

    def _mass_limits(self, fi, wf, ai, wa):
        out = []
        for arr in (self.log10_mass_max, self.log10_mass_min):
            v00, v01 = arr[fi, ai], arr[fi, ai + 1]
            v10, v11 = arr[fi + 1, ai], arr[fi + 1, ai + 1]
            with np.errstate(invalid="ignore"):
                out.append((1 - wf) * ((1 - wa) * v00 + wa * v01) + wf * ((1 - wa) * v10 + wa * v11))
        return out

    def interpolate(self, log10_age_yr, log10_mass, feh, strict: bool = False) -> dict[str, np.ndarray]:
        """Multilinear interpolation; NaN outside the axes, for remnants and in model holes.

        ``strict=True`` gives plain multilinear interpolation (NaN if any of the 8 corners is NaN).
        """
        a = np.asarray(log10_age_yr, np.float64)
        m = np.asarray(log10_mass, np.float64)
        z = np.asarray(feh, np.float64)
        a, m, z = np.broadcast_arrays(a, m, z)
        shape = a.shape
        a, m, z = a.ravel(), m.ravel(), z.ravel()
        fi, wf, in_f = self._frac("feh", z)
        ai, wa, in_a = self._frac("log10_age_yr", a)
        mi, wm, in_m = self._frac("log10_mass", m)
        nf, na, nm, nq = self.values.shape
        flat = self.values.reshape(-1, nq)
        acc = np.zeros((a.size, nq), np.float64)
        wsum = np.zeros(a.size, np.float64)
        bad = np.zeros(a.size, bool)
        for df, wfc in ((0, 1 - wf), (1, wf)):
            for da, wac in ((0, 1 - wa), (1, wa)):
                base = ((fi + df) * na + (ai + da)) * nm + mi
                w_fa = wfc * wac
                for dm, wmc in ((0, 1 - wm), (1, wm)):
                    v = flat[base + dm]
                    w = w_fa * wmc
                    ok = np.isfinite(v[:, 0])
                    if strict:
                        bad |= ~ok & (w > 0)
                    wv = np.where(ok, w, 0.0)
                    acc += wv[:, None] * np.where(ok[:, None], v, 0.0)
                    wsum += wv
        mmax, mmin = self._mass_limits(fi, wf, ai, wa)
        if self.evolved_values is not None and not strict:
            self._evolved(acc, wsum, m, fi, wf, ai, wa)
        valid = in_f & in_a & in_m & (wsum > 1e-12) & (m <= mmax + 1e-9) & (m >= mmin - 1e-9) & ~bad
        with np.errstate(invalid="ignore", divide="ignore"):
            res = acc / wsum[:, None]
        res[~valid] = np.nan
        res = res.astype(np.float32)
        return {q: res[:, k].reshape(shape) for k, q in enumerate(self.quantities)}

    def _evolved(self, acc, wsum, m, fi, wf, ai, wa) -> None:
        """Overwrite acc/wsum of stars on the evolved segment (see module doc), in place."""
        em, ev = self.evolved_log10_mass, self.evolved_values
        n_u = ev.shape[2]
        corners = [(df, da, (wf if df else 1 - wf) * (wa if da else 1 - wa)) for df in (0, 1) for da in (0, 1)]
        start = np.zeros(m.size)
        end = np.zeros(m.size)
        wtot = np.zeros(m.size)
        for df, da, w in corners:
            s_e = em[fi + df, ai + da]
            ok = np.isfinite(s_e[:, 0]) & (w > 0)
            wv = np.where(ok, w, 0.0)
            start += wv * np.where(ok, s_e[:, 0], 0.0)
            end += wv * np.where(ok, s_e[:, 1], 0.0)
            wtot += wv
        has = wtot > 1e-12
        with np.errstate(invalid="ignore", divide="ignore"):
            start /= wtot
            end /= wtot
            sel = np.flatnonzero(has & (m >= start) & (end > start))
        if sel.size == 0:
            return
        u = np.clip((m[sel] - start[sel]) / (end[sel] - start[sel]), 0.0, 1.0) * (n_u - 1)
        iu = np.minimum(u.astype(np.int64), n_u - 2)
        fu = (u - iu)[:, None]
        a2 = np.zeros((sel.size, acc.shape[1]))
        w2 = np.zeros(sel.size)
        fs, as_ = fi[sel], ai[sel]
        wfs, was = wf[sel], wa[sel]
        for df, da, _ in corners:
            w = (wfs if df else 1 - wfs) * (was if da else 1 - was)
            v0 = ev[fs + df, as_ + da, iu]
            v1 = ev[fs + df, as_ + da, iu + 1]
            v = v0 + fu * (v1 - v0)
            ok = np.isfinite(v[:, 0]) & (w > 0)
            wv = np.where(ok, w, 0.0)
            a2 += wv[:, None] * np.where(ok[:, None], v, 0.0)
            w2 += wv
        good = w2 > 1e-12
        acc[sel[good]] = a2[good]
        wsum[sel[good]] = w2[good]

    def is_remnant(self, log10_age_yr, log10_mass, feh) -> np.ndarray:
        """True where the star is past the end of its track (more massive than the isochrone's last star)."""
        a = np.asarray(log10_age_yr, np.float64)
        m = np.asarray(log10_mass, np.float64)
        z = np.asarray(feh, np.float64)
        a, m, z = np.broadcast_arrays(a, m, z)
        fi, wf, _ = self._frac("feh", z.ravel())
        ai, wa, _ = self._frac("log10_age_yr", a.ravel())
        mmax, _ = self._mass_limits(fi, wf, ai, wa)
        return (m.ravel() > mmax + 1e-9).reshape(a.shape)

    @property
    def values_filled(self) -> np.ndarray:
        """``values`` with NaN replaced along the mass axis by the nearest finite node (for naive lookups)."""
        v = self.values.copy()
        nm = v.shape[2]
        ok = np.isfinite(v[..., 0])
        idx = np.where(ok, np.arange(nm), 0)
        np.maximum.accumulate(idx, axis=-1, out=idx)
        fwd = np.take_along_axis(v, idx[..., None], axis=2)
        idx2 = np.where(ok, np.arange(nm), nm - 1)
        idx2 = np.flip(np.minimum.accumulate(np.flip(idx2, -1), axis=-1), -1)
        bwd = np.take_along_axis(v, idx2[..., None], axis=2)
        out = np.where(np.isfinite(fwd), fwd, bwd)
        return out
