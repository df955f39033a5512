"""rule observe: one chunk's population -> observed catalog (src/ysocensus/surveys/observe.py)."""
from ysocensus.logs import configure
from ysocensus.surveys.observe import run_observe

configure(snakemake.log)  # noqa: F821 (snakemake is injected)
run_observe(
    snakemake.input.population,  # noqa: F821
    snakemake.output[0],  # noqa: F821
    seed=snakemake.params.seed,  # noqa: F821
    cfg=snakemake.params.observe,  # noqa: F821
    bc_path=snakemake.input.bc,  # noqa: F821
    isochrones_path=snakemake.input.isochrones,  # noqa: F821
)
