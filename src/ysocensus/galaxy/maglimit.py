"""A fast, conservative apparent-magnitude cut: drop stars that no survey could detect.

Apparent magnitudes for the cut only (the observe stage computes the real photometry):
m = Mbol - BC(Teff, logg) + 5 log10(d / 10 pc) + (A_band / A_V) * A_V with Mbol = 4.74 - 2.5 log10(L/Lsun),
BCs from the MIST/C3K tables of ``astrolachesis`` at [Fe/H] = 0 and A_V = 0 for Gaia EDR3 G, 2MASS Ks and
WISE W1, extinction ratios 0.773, 0.106, 0.048 (G23, R_V = 3.1; stellar-data notes). A star is kept when it is
brighter than ``limit + margin_mag`` in at least one band; remnants and stars without stellar parameters have
no magnitude and are dropped (and counted).
"""

from __future__ import annotations

import importlib.util
import os
from typing import Mapping

import numpy as np

from ..stars.tracks import StellarModelsMissing

BANDS = {"gaia_g": ("UBVRIplus", "Gaia_G_EDR3", 0.773),
         "tmass_ks": ("UBVRIplus", "2MASS_Ks", 0.106),
         "wise_w1": ("WISE", "WISE_W1", 0.048)}


def bc_table_path() -> str:
    spec = importlib.util.find_spec("lachesis")
    if spec is None or not spec.submodule_search_locations:
        raise StellarModelsMissing(
            "the magnitude limit needs the bolometric-correction tables of 'astrolachesis' "
            "(pip install astrolachesis), or set population.magnitude_limit.enabled: false")
    path = os.path.join(spec.submodule_search_locations[0], "Datafiles", "BC_tables", "bc_tables.h5")
    if not os.path.exists(path):
        raise StellarModelsMissing(f"astrolachesis is installed but has no BC table at {path}")
    return path


class MagnitudeLimit:
    def __init__(self, cfg: Mapping):
        import h5py

        self.margin = float(cfg.get("margin_mag", 0.3))
        self.limits = {b: float(cfg[b]) for b in BANDS if cfg.get(b) is not None}
        if not self.limits:
            raise ValueError("population.magnitude_limit: enabled but no band limit given")
        self.bc = {}
        with h5py.File(bc_table_path(), "r") as f:
            for band in self.limits:
                group, name, ratio = BANDS[band]
                g = f[group]
                names = [n.decode() if isinstance(n, bytes) else str(n) for n in g["band_names"][:]]
                fehs = g["feh_values"][:]
                d = g["data"][int(np.argmin(np.abs(fehs)))]
                d = d[d[:, 3] == 0.0]  # A_V = 0
                teff = np.unique(d[:, 0])
                logg = np.unique(d[:, 1])
                tab = np.full((teff.size, logg.size), np.nan)
                ti = np.searchsorted(teff, d[:, 0])
                gi = np.searchsorted(logg, d[:, 1])
                tab[ti, gi] = d[:, 5 + names.index(name)]
                # fill holes of the table along logg with the nearest finite value
                for i in range(teff.size):
                    ok = np.isfinite(tab[i])
                    if ok.any() and not ok.all():
                        tab[i, ~ok] = np.interp(logg[~ok], logg[ok], tab[i, ok])
                self.bc[band] = (np.log10(teff), logg, tab, ratio)

    @staticmethod
    def _bilinear(xn, yn, tab, x, y):
        fx = np.interp(x, xn, np.arange(xn.size))
        fy = np.interp(y, yn, np.arange(yn.size))
        i = np.minimum(fx.astype(np.int64), xn.size - 2)
        j = np.minimum(fy.astype(np.int64), yn.size - 2)
        wx, wy = fx - i, fy - j
        return ((1 - wx) * ((1 - wy) * tab[i, j] + wy * tab[i, j + 1])
                + wx * ((1 - wy) * tab[i + 1, j] + wy * tab[i + 1, j + 1]))

    def magnitudes(self, log10_teff, logg, log10_lum, distance_pc, av) -> dict[str, np.ndarray]:
        mbol = 4.74 - 2.5 * np.asarray(log10_lum, np.float64)
        dm = 5.0 * np.log10(np.asarray(distance_pc, np.float64) / 10.0)
        av = np.asarray(av, np.float64)
        out = {}
        for band, (xn, yn, tab, ratio) in self.bc.items():
            out[band] = mbol - self._bilinear(xn, yn, tab, log10_teff, logg) + dm + ratio * av
        return out

    def visible(self, log10_teff, logg, log10_lum, distance_pc, av) -> np.ndarray:
        ok = np.isfinite(log10_teff)
        keep = np.zeros(np.shape(log10_teff), bool)
        if not ok.any():
            return keep
        mags = self.magnitudes(np.asarray(log10_teff)[ok], np.asarray(logg)[ok], np.asarray(log10_lum)[ok],
                               np.asarray(distance_pc)[ok], np.asarray(av)[ok])
        vis = np.zeros(ok.sum(), bool)
        for band, m in mags.items():
            vis |= m <= self.limits[band] + self.margin
        keep[ok] = vis
        return keep
