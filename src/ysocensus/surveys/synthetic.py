"""A synthetic population (io.POPULATION columns) on the track grid, for tests and benchmarks of the observe stage.

Not a Milky Way model (that is stage 1): uniform directions, a uniform-density sphere, a power-law-like
mass function, field ages 0.1–12 Gyr and young stars 1–30 Myr, A_V growing with distance, R_V = 3.1.
"""

from __future__ import annotations

import numpy as np

from ysocensus import sky


def synthetic_population(iso, n: int = 20000, seed: int = 1, tiles=(0, 1), young_fraction: float = 0.3,
                         dmax: float = 2000.0) -> dict:
    """POPULATION columns for ``n`` stars: field stars 0.1–12 Gyr and young stars 1–30 Myr on the track grid."""
    rng = np.random.default_rng(seed)
    tile = np.sort(rng.choice(np.asarray(tiles), n)).astype(np.int32)
    source_id = np.concatenate([sky.source_ids(int(t), int((tile == t).sum())) for t in np.unique(tile)])
    young = rng.random(n) < young_fraction
    age = np.where(young, rng.uniform(6.0, 7.5, n), rng.uniform(8.0, 10.1, n))
    logm = np.log10(np.clip(rng.pareto(1.3, n) * 0.1 + 0.1, 0.1, 30.0))
    feh = np.clip(rng.normal(0.0, 0.2, n), -1.0, 0.45)
    q = iso.interpolate(age, logm, feh)
    remnant = iso.is_remnant(age, logm, feh)
    d = dmax * rng.random(n) ** (1 / 3) + 5.0
    l = rng.uniform(0, 360, n)
    b = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    av = np.clip(d / 1000.0 * rng.lognormal(0, 0.5, n), 0, 30)
    return {
        "source_id": source_id.astype(np.int64), "tile": tile, "l": l, "b": b,
        "distance_pc": d.astype(np.float32), "x_pc": np.zeros(n, np.float32), "y_pc": np.zeros(n, np.float32),
        "z_pc": np.zeros(n, np.float32), "component": np.array(["thin_disk"] * n, dtype=object),
        "cluster_id": np.full(n, -1, np.int32), "log10_age_yr": age.astype(np.float32),
        "initial_mass_msun": (10**logm).astype(np.float32), "feh": feh.astype(np.float32),
        "teff_k": (10.0 ** q["log10_teff"]).astype(np.float32), "logg": q["logg"],
        "log10_lum_lsun": q["log10_lum_lsun"], "radius_rsun": (10.0 ** q["log10_radius_rsun"]).astype(np.float32),
        "av_mag": av.astype(np.float32), "rv": np.full(n, 3.1, np.float32),
        "has_disk": young & (age < 6.7) & (rng.random(n) < 0.6), "is_remnant": remnant,
        "weight": np.ones(n, np.float32),
    }
