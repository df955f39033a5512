"""rule train: results/training/ -> results/model/model.ckpt (src/ysocensus/model/training.py)."""
from ysocensus.logs import configure
from ysocensus.model.training import run_train

configure(snakemake.log)  # noqa: F821 (snakemake is injected)
run_train(
    snakemake.params.training_dir,  # noqa: F821
    snakemake.output.model,  # noqa: F821
    snakemake.params.logs_dir,  # noqa: F821
    snakemake.params.train,  # noqa: F821
    seed=snakemake.params.seed,  # noqa: F821
    threads=snakemake.threads,  # noqa: F821
    isochrones=snakemake.input.isochrones,  # noqa: F821
    bc_grid=snakemake.input.bc,  # noqa: F821
    population=snakemake.params.population,  # noqa: F821
    member=snakemake.params.member,  # noqa: F821
)
