"""rule population: simulate the tiles of one job chunk (src/ysocensus/population.py)."""
from ysocensus.logs import configure
from ysocensus.population import run_population

configure(snakemake.log)  # noqa: F821 (snakemake is injected)
run_population(
    snakemake.params.tiles,  # noqa: F821
    snakemake.output[0],  # noqa: F821
    snakemake.params.population,  # noqa: F821
    snakemake.params.seed,  # noqa: F821
    snakemake.params.nside,  # noqa: F821
    snakemake.input.isochrones,  # noqa: F821
    snakemake.input.dust,  # noqa: F821
    snakemake.params.dust,  # noqa: F821
)
