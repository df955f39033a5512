"""rule training_set: simulated stars -> results/training/ (src/ysocensus/model/trainset.py)."""
from ysocensus.logs import configure
from ysocensus.model.trainset import run_training_set

configure(snakemake.log)  # noqa: F821 (snakemake is injected)
run_training_set(
    snakemake.input.population,  # noqa: F821
    snakemake.input.catalog,  # noqa: F821
    outdir=snakemake.output[0].rsplit("/", 1)[0],  # noqa: F821
    seed=snakemake.params.seed,  # noqa: F821
    cfg=snakemake.params.training,  # noqa: F821
    observe_cfg=snakemake.params.observe,  # noqa: F821
    bc_path=snakemake.input.bc,  # noqa: F821
    isochrones_path=snakemake.input.isochrones,  # noqa: F821
)
