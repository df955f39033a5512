"""The young field net of the named young structure: star formation is counted once.

The smooth young disk (Besançon's first thin-disk bin, ``galaxy.components``: constant star formation over 0–150 Myr,
normalised to local star counts) is the average of all the stars the disk formed recently, those born in today's
associations and clusters included. The population places the named structure (``galaxy.young``: the complexes,
the literature associations, the Radcliffe Wave) on top of it, so near the Sun the young stars would be counted
twice: within 500 pc, the structure holds as much mass younger than 3 Myr as the smooth field, and 60 % and 30 %
of its mass at 3–10 and 10–20 Myr.

Mass conservation: within ``radius_pc`` of the Sun, where the literature census of young structure is taken as
complete, the smooth young field keeps, in each age bin, the fraction 1 − M_structure / M_field of its mass (at
least 0), where M_field is the smooth component's mass formed in the bin inside that sphere and M_structure the mass
of the structure whose centre lies inside it, spread uniformly in log age over its range. The fraction applies to
the whole young field (it thins the field's age distribution, not its positions). Above the oldest structure the
field keeps everything. Where the named structure outweighs the average, the field of that age is empty: the
solar neighbourhood formed more stars recently than the disk average, and all of them are in named structure.

Off by default (``population.young_field_budget.enabled``): the census is not complete enough for it. The moving
groups' masses come from BANYAN's bona fide member counts (lower bounds), and associations such as UCL extend beyond
their modelled spheres, so removing the field's young mass removed the prior of real members there (measured in
``docs/measurements.md``, seventh session).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: the smooth component the young field is cut from, and its age range (Gyr)
FIELD_COMPONENT = "thin1"


@dataclass(frozen=True)
class FieldBudget:
    """Kept fraction of the young field per age bin (``edges_myr``, Myr) and the masses (Msun) it came from."""

    edges_myr: np.ndarray
    keep: np.ndarray
    field_msun: np.ndarray
    structure_msun: np.ndarray
    radius_pc: float

    def to_dict(self) -> dict:
        return {"radius_pc": self.radius_pc, "edges_myr": self.edges_myr.tolist(),
                "keep": np.round(self.keep, 4).tolist(), "field_msun": np.round(self.field_msun, 1).tolist(),
                "structure_msun": np.round(self.structure_msun, 1).tolist()}


def sphere_mass(galaxy, name: str, radius_pc: float, step_pc: float = 10.0, step_z_pc: float = 2.0) -> float:
    """Mass formed (Msun) of a smooth component inside a sphere of ``radius_pc`` around the Sun (a grid sum; the thin
    disk's young bin is ~50 pc thick, hence the finer vertical step)."""
    r = float(radius_pc)
    xy = np.arange(-r + step_pc / 2, r, step_pc)
    zz = np.arange(-r + step_z_pc / 2, r, step_z_pc)
    total = 0.0
    for z in zz:
        x, y = np.meshgrid(xy, xy, indexing="ij")
        inside = x * x + y * y + z * z <= r * r
        if inside.any():
            total += float(galaxy.density(name, x[inside], y[inside], np.full(inside.sum(), z)).sum())
    return total * step_pc * step_pc * step_z_pc


def log_age_overlap(lo, hi, a0, a1) -> np.ndarray:
    """Fraction of each uniform-in-log-age range [lo, hi] (log10 yr) inside [a0, a1); a point range counts whole."""
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    width = hi - lo
    inside_point = (lo >= a0) & (lo < a1)
    over = np.clip(np.minimum(hi, a1) - np.maximum(lo, a0), 0.0, None) / np.where(width > 0, width, 1.0)
    return np.where(width > 0, over, inside_point.astype(np.float64))


def structure_mass(clusters, radius_pc: float, edges_myr) -> np.ndarray:
    """Mass (Msun) of the structure rows whose centre lies within ``radius_pc``, per age bin of ``edges_myr``."""
    e = np.asarray(edges_myr, np.float64)
    if len(clusters) == 0:
        return np.zeros(e.size - 1)
    d = np.sqrt(clusters.x ** 2 + clusters.y ** 2 + clusters.z ** 2)
    sel = d <= radius_pc
    log_e = np.log10(np.maximum(e, 1e-12) * 1e6)
    log_e[0] = -np.inf
    return np.array([float(np.sum(clusters.mass_msun[sel] * log_age_overlap(clusters.log10_age_lo[sel],
                                                                             clusters.log10_age_hi[sel], a0, a1)))
                     for a0, a1 in zip(log_e[:-1], log_e[1:])])


def field_budget(galaxy, clusters, radius_pc: float, edges_myr) -> FieldBudget:
    """The kept fraction of the young field per age bin (``edges_myr`` from 0 to the young field's oldest age)."""
    e = np.asarray(edges_myr, np.float64)
    lo, hi = galaxy.components[FIELD_COMPONENT].age_gyr
    m_bin = sphere_mass(galaxy, FIELD_COMPONENT, radius_pc) * np.diff(e) / ((hi - lo) * 1000.0)
    m_struct = structure_mass(clusters, radius_pc, e)
    keep = np.clip(1.0 - m_struct / np.maximum(m_bin, 1e-30), 0.0, 1.0)
    return FieldBudget(e, keep, m_bin, m_struct, float(radius_pc))
