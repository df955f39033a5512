"""rule stellar_models: build the isochrone grid (src/ysocensus/stars/tracks.py), correct its low-mass main
sequence to a named old cluster (src/ysocensus/stars/empirical.py) and cache it."""
from ysocensus.logs import configure
from ysocensus.stars.bolometric import load_bc_grid
from ysocensus.stars.empirical import corrected_grid
from ysocensus.stars.tracks import IsochroneGrid

configure(snakemake.log)  # noqa: F821 (snakemake is injected)
models = snakemake.params.models  # noqa: F821
grid = IsochroneGrid.from_config(models)
grid = corrected_grid(grid, load_bc_grid(snakemake.input.bc), models.get("empirical_correction"),  # noqa: F821
                      snakemake.output.correction, snakemake.output.figure)  # noqa: F821
grid.save(snakemake.output[0])  # noqa: F821
