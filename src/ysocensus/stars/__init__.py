"""Stellar models: isochrone grids (MIST v2.5 blended with BHAC15), used by every stage.

``ysocensus.stars.tracks.IsochroneGrid`` is the one regular (feh, log10 age, log10 mass) grid of
stellar parameters that the population, the observation model and the measurement operator of the
inference share. The workflow caches it at ``results/models/isochrones.npz`` (rule ``stellar_models``).
"""

from .tracks import IsochroneGrid, StellarModelsMissing

__all__ = ["IsochroneGrid", "StellarModelsMissing"]
