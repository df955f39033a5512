"""rule observe_figure: CMDs and missing fractions of one chunk (src/ysocensus/surveys/figures.py)."""
from ysocensus.logs import configure
from ysocensus.surveys.figures import observe_summary_figure

configure(snakemake.log)  # noqa: F821 (snakemake is injected)
observe_summary_figure(
    snakemake.input.catalog,  # noqa: F821
    snakemake.input.population,  # noqa: F821
    snakemake.output[0],  # noqa: F821
    bc_path=snakemake.input.bc,  # noqa: F821
    young_threshold_myr=snakemake.params.young_threshold_myr,  # noqa: F821
)
