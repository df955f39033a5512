"""Reading posteriors with their positions (catalog) and weights (population), chunk by chunk.

Maps use only what an observer has: the catalog's l, b and the posterior summaries. The population (truth)
contributes the ``weight`` column (the number of real stars a simulated star stands for, 1/thinning) and,
for completeness, the true parameters. Joins are on ``source_id``.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import pandas as pd

from ysocensus import io

POSTERIOR_COLUMNS = ["source_id", "status", "p_young"] + [
    f"{p}_q{q}" for p in io.PARAMETERS for q in io.QUANTILES]
TRUTH_COLUMNS = ["source_id", "l", "b", "distance_pc", "x_pc", "y_pc", "z_pc", "log10_age_yr",
                 "initial_mass_msun", "av_mag", "weight", "is_remnant", "component"]


def read_inferred(posterior: str, catalog: str, population: str | None = None) -> pd.DataFrame:
    """One chunk: posterior summaries + catalog l, b (+ population weight; 1 without a population)."""
    post = io.read_table(posterior, io.POSTERIOR, columns=POSTERIOR_COLUMNS).to_pandas()
    cat = io.read_table(catalog, io.CATALOG, columns=["source_id", "l", "b"]).to_pandas()
    if len(cat) != len(post) or not np.array_equal(cat["source_id"].to_numpy(), post["source_id"].to_numpy()):
        cat = cat.set_index("source_id").reindex(post["source_id"]).reset_index()
        if cat["l"].isna().any():
            raise ValueError(f"{posterior}: source_id(s) not in {catalog}")
    post["l"], post["b"] = cat["l"].to_numpy(), cat["b"].to_numpy()
    if population is not None:
        pop = io.read_table(population, io.POPULATION, columns=["source_id", "weight"]).to_pandas()
        w = pop.set_index("source_id")["weight"].reindex(post["source_id"]).to_numpy(np.float64)
        if np.isnan(w).any():
            raise ValueError(f"{posterior}: {int(np.isnan(w).sum())} source_id(s) not in {population}")
        post["weight"] = w
    else:
        post["weight"] = 1.0
    return post


def iter_inferred(posteriors: Sequence[str], catalogs: Sequence[str],
                  populations: Sequence[str] | None = None) -> Iterator[pd.DataFrame]:
    pops = populations or [None] * len(posteriors)
    if not (len(posteriors) == len(catalogs) == len(pops)):
        raise ValueError("maps: need one catalog (and population) per posterior file")
    for p, c, t in zip(posteriors, catalogs, pops):
        yield read_inferred(p, c, t)


def read_truth_joined(population: str, posterior: str) -> pd.DataFrame:
    """One chunk of the truth with the posterior columns of the stars that were observed (NaN otherwise)."""
    truth = io.read_table(population, io.POPULATION, columns=TRUTH_COLUMNS).to_pandas()
    post = io.read_table(posterior, io.POSTERIOR, columns=POSTERIOR_COLUMNS).to_pandas()
    merged = truth.merge(post, on="source_id", how="left", validate="one_to_one", indicator="_in_catalog")
    missing = np.setdiff1d(post["source_id"].to_numpy(), truth["source_id"].to_numpy())
    if len(missing):
        raise ValueError(f"{posterior}: {len(missing)} source_id(s) not in {population} (first {missing[:3]})")
    merged["observed"] = merged.pop("_in_catalog").eq("both").to_numpy()
    return merged


def candidates(frame: pd.DataFrame, p_young_min: float) -> np.ndarray:
    """YSO candidates: status ok and p_young >= p_young_min."""
    return (frame["status"].to_numpy() == "ok") & (np.nan_to_num(frame["p_young"].to_numpy(float)) >= p_young_min)


def galactic_xyz(l_deg, b_deg, d_pc):
    """Heliocentric Galactic Cartesian (pc): x towards l = 0, y towards l = 90°, z towards b = 90°."""
    l, b = np.deg2rad(l_deg), np.deg2rad(b_deg)
    return d_pc * np.cos(b) * np.cos(l), d_pc * np.cos(b) * np.sin(l), d_pc * np.sin(b)


