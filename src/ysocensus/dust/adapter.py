"""Adapter from ``dustmaps`` 3D maps (Edenhofer et al. 2023, Bayestar) to the dust interface ``av(l, b, d)``.

``dustmaps`` downloads its data separately (``dustmaps.edenhofer2023.fetch()``), so this adapter is used
only when the user has fetched a map and selected it with ``dust.model: dustmaps``. The workflow never
downloads anything. Units: Edenhofer et al. (2023) integrate the extinction in the units of Zhang, Green &
Rix (2023), roughly E(B-V); ``av_per_unit`` (default 2.8, i.e. R_V ≈ 3.1 × E(B-V) scaled to their
calibration) converts to A_V. Outside the map's distance range the distance is clipped into it, so A_V stays
defined and non-decreasing along a sight line.
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

#: map name -> (module, query class, keyword arguments, valid distance range in pc)
MAPS = {
    "edenhofer2023": ("dustmaps.edenhofer2023", "Edenhofer2023Query", {"integrated": True}, (69.0, 1250.0)),
    "bayestar2019": ("dustmaps.bayestar", "BayestarQuery", {"version": "bayestar2019"}, (63.0, 63000.0)),
}


class DustmapsMissing(RuntimeError):
    """dustmaps or its data are not installed."""


class DustmapsAV:
    """A_V(l, b, d) from a ``dustmaps`` query object; ``query`` may be injected (tests use a fake)."""

    def __init__(self, map_name: str = "edenhofer2023", av_per_unit: float = 2.8,
                 query: Callable | None = None, distance_range_pc: tuple[float, float] | None = None):
        if map_name not in MAPS:
            raise ValueError(f"dust.dustmaps.map: {map_name!r} is not one of {sorted(MAPS)}")
        self.map_name = map_name
        self.av_per_unit = float(av_per_unit)
        self.distance_range_pc = distance_range_pc or MAPS[map_name][3]
        self._query = query

    @property
    def query(self):
        if self._query is None:
            module, cls, kwargs, _ = MAPS[self.map_name]
            try:
                import importlib

                mod = importlib.import_module(module)
                self._query = getattr(mod, cls)(**kwargs)
            except ImportError as exc:
                raise DustmapsMissing(f"dust.model 'dustmaps' needs the 'dustmaps' package ({exc})") from exc
            except Exception as exc:  # dustmaps raises various errors when its data are absent
                raise DustmapsMissing(
                    f"dustmaps map {self.map_name!r} could not be opened ({exc}); fetch it first, e.g. "
                    f"python -c 'import dustmaps.edenhofer2023 as m; m.fetch()', or use dust.model: synthetic") from exc
        return self._query

    def av(self, l_deg, b_deg, distance_pc) -> np.ndarray:
        from astropy import units as u
        from astropy.coordinates import SkyCoord

        l, b, d = np.broadcast_arrays(np.asarray(l_deg, float), np.asarray(b_deg, float),
                                      np.asarray(distance_pc, float))
        if np.any(d < 0):
            raise ValueError("dust.av: negative distance")
        dc = np.clip(d, *self.distance_range_pc)
        coords = SkyCoord(l=l.ravel() * u.deg, b=b.ravel() * u.deg, distance=dc.ravel() * u.pc, frame="galactic")
        e = np.asarray(self.query(coords), dtype=np.float64).reshape(l.shape)
        return np.nan_to_num(e * self.av_per_unit, nan=0.0).astype(np.float32)


def from_config(cfg: Mapping) -> DustmapsAV:
    dm = dict(cfg.get("dustmaps", {}) or {})
    return DustmapsAV(dm.get("map", "edenhofer2023"), dm.get("av_per_unit", 2.8))
