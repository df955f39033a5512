"""rule population_figure: sky maps of the simulated population (src/ysocensus/galaxy/figure.py)."""
from ysocensus.galaxy.figure import sky_figure
from ysocensus.logs import configure

configure(snakemake.log)  # noqa: F821 (snakemake is injected)
sky_figure(snakemake.input, snakemake.output[0], snakemake.params.nside,  # noqa: F821
           young_threshold_myr=snakemake.params.young_threshold_myr)  # noqa: F821
