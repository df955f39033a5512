"""3D dust: a synthetic field on a grid (default), line-of-sight A_V, and an adapter to ``dustmaps``.

Interface (what the other stages call):
  ``DustField.load("results/dust/dust.npz")`` -> field with ``av(l_deg, b_deg, distance_pc)`` and the grid
  ``density`` (A_V per pc) on heliocentric Galactic axes ``x_pc``, ``y_pc``, ``z_pc``;
  ``dust_model(cfg, path)`` -> the object whose ``av`` the population uses: the synthetic field, or a
  ``DustmapsAV`` when ``dust.model == "dustmaps"``.
"""

from __future__ import annotations

from typing import Mapping

from .adapter import DustmapsAV, DustmapsMissing
from .field import DustField

MODELS = ("synthetic", "dustmaps")


def dust_model(cfg: Mapping, path):
    """The A_V provider selected by ``dust.model`` (the synthetic field is always read from ``path``)."""
    model = cfg.get("model", "synthetic")
    if model == "synthetic":
        return DustField.load(path)
    if model == "dustmaps":
        from .adapter import from_config

        return from_config(cfg)
    raise ValueError(f"dust.model: {model!r} is not one of {MODELS}")


def run_dust(cfg: Mapping, population_cfg: Mapping, seed: int, out_path, meta_path=None) -> DustField:
    """Build the synthetic field for the config (clouds at the population's complexes) and save it."""
    from ..galaxy.young import complexes_from_config
    from ..io import write_json

    young = (population_cfg or {}).get("young", {}) or {}
    complexes = complexes_from_config(young) if young.get("enabled", True) else []
    field = DustField.build(cfg, complexes, seed)
    field.save(out_path)
    if meta_path is not None:
        write_json({"params": dict(cfg), "seed": seed, "n_clouds": len(complexes),
                    "grid_shape": list(field.density.shape), "units": "density: A_V per pc; axes: heliocentric pc",
                    "calibration": field.summary()}, meta_path)
    return field


__all__ = ["DustField", "DustmapsAV", "DustmapsMissing", "dust_model", "run_dust", "MODELS"]
