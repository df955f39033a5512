"""rule stellar_models: build and cache the isochrone grid (src/ysocensus/stars/tracks.py)."""
from ysocensus.logs import configure
from ysocensus.stars.tracks import IsochroneGrid

configure(snakemake.log)  # noqa: F821 (snakemake is injected)
IsochroneGrid.from_config(snakemake.params.models).save(snakemake.output[0])  # noqa: F821
