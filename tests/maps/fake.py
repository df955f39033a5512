"""TEST DOUBLES for the maps: truth-derived fake posteriors (not inference!) and tiny populations.

``fake_posteriors`` perturbs the truth of a population file into posterior summaries so that the maps
and completeness code can be exercised without a trained model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import ndtr

from ysocensus import io


def fake_posteriors(population: pd.DataFrame, seed: int = 0, observed_fraction: float = 0.7,
                    age_sigma: float = 0.25) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(catalog-like frame with source_id, l, b; posterior frame in the io.POSTERIOR schema)."""
    rng = np.random.default_rng(seed)
    obs = population[rng.random(len(population)) < observed_fraction].reset_index(drop=True)
    n = len(obs)
    cat = obs[["source_id", "l", "b"]].copy()
    post = {"source_id": obs["source_id"].to_numpy(), "status": np.array(["ok"] * n, dtype=object),
            "n_samples": np.full(n, 64, np.int32)}
    noise = {"log10_age_yr": age_sigma, "initial_mass_msun": 0.1, "feh": 0.1, "distance_pc": 0.05, "av_mag": 0.1}
    for p in io.PARAMETERS:
        t = obs[p].to_numpy(np.float64)
        if p == "distance_pc":
            med = t * (1 + rng.normal(0, noise[p], n))
            lo, hi = med * (1 - noise[p]), med * (1 + noise[p])
        elif p == "initial_mass_msun":
            med = t * 10 ** rng.normal(0, noise[p], n)
            lo, hi = med / 10 ** noise[p], med * 10 ** noise[p]
        else:
            med = t + rng.normal(0, noise[p], n)
            lo, hi = med - noise[p], med + noise[p]
        post[f"{p}_q16"], post[f"{p}_q50"], post[f"{p}_q84"] = lo, med, hi
    post["p_young"] = ndtr((np.log10(50e6) - post["log10_age_yr_q50"]) / age_sigma)
    post["p_young_2"] = ndtr((7.0 - post["log10_age_yr_q50"]) / age_sigma)
    post["ess"] = np.full(n, np.nan, np.float32)
    post["conditioning"] = np.array(["gaia:measured;tmass:measured;wise:measured;lamost:not_detected"] * n, dtype=object)
    post["note"] = np.array([None] * n, dtype=object)
    if n > 2:
        post["status"][-1] = "invalid_input"
        for p in io.PARAMETERS:
            for q in io.QUANTILES:
                post[f"{p}_q{q}"][-1] = np.nan
        post["p_young"][-1] = np.nan
    return cat, pd.DataFrame(post)


def tiny_population(n: int = 4000, seed: int = 0, tile: int = 0) -> pd.DataFrame:
    """A small population in the io.POPULATION schema: an old field (weight 100) and young clumps (weight 1)."""
    rng = np.random.default_rng(seed)
    n_young = n // 4
    old = n - n_young
    d = np.concatenate([rng.uniform(30, 1000, old), rng.uniform(100, 500, n_young)])
    l = np.concatenate([rng.uniform(0, 360, old), rng.normal(200, 8, n_young) % 360])
    b = np.concatenate([np.degrees(np.arcsin(rng.uniform(-1, 1, old))), rng.normal(-15, 5, n_young)])
    lr, br = np.radians(l), np.radians(b)
    age = np.concatenate([rng.uniform(8.5, 10.1, old), rng.uniform(5.8, 7.6, n_young)])
    frame = pd.DataFrame({
        "source_id": (np.int64(tile) << 32) | np.arange(n, dtype=np.int64), "tile": np.full(n, tile, np.int32),
        "l": l, "b": b, "distance_pc": d, "x_pc": d * np.cos(br) * np.cos(lr), "y_pc": d * np.cos(br) * np.sin(lr),
        "z_pc": d * np.sin(br), "component": np.where(np.arange(n) < old, "thin5", "young_association"),
        "cluster_id": np.where(np.arange(n) < old, -1, 1).astype(np.int32), "log10_age_yr": age,
        "initial_mass_msun": 10 ** rng.uniform(-1, 0.5, n), "feh": rng.normal(0, 0.1, n),
        "teff_k": np.full(n, 5000.0), "logg": np.full(n, 4.5), "log10_lum_lsun": np.zeros(n),
        "radius_rsun": np.ones(n), "av_mag": rng.uniform(0, 2, n), "rv": np.full(n, 3.1),
        "has_disk": age < 6.5, "is_remnant": np.zeros(n, bool),
        "weight": np.where(np.arange(n) < old, 100.0, 1.0)})
    return frame
