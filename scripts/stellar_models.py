"""rule stellar_models: build the isochrone grid (src/ysocensus/stars/tracks.py), correct its low-mass main
sequence to a named old cluster (src/ysocensus/stars/empirical.py) and cache it."""
from ysocensus.logs import configure
from ysocensus.stars.empirical import run_stellar_models

configure(snakemake.log)  # noqa: F821 (snakemake is injected)
run_stellar_models(
    snakemake.params.models,  # noqa: F821
    snakemake.input.bc,  # noqa: F821
    snakemake.output[0],  # noqa: F821
    snakemake.output.correction,  # noqa: F821
    snakemake.output.figure,  # noqa: F821
)
