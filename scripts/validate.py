"""rule validate: model + held-out simulations -> results/validation/ (src/ysocensus/validation/run.py)."""
from ysocensus.logs import configure
from ysocensus.validation.run import run_validate

configure(snakemake.log)  # noqa: F821 (snakemake is injected)
run_validate(
    snakemake.input.model,  # noqa: F821
    snakemake.params.training_dir,  # noqa: F821
    snakemake.output.calibration,  # noqa: F821
    snakemake.output.figures,  # noqa: F821
    snakemake.params.train,  # noqa: F821
    seed=snakemake.params.seed,  # noqa: F821
    threads=snakemake.threads,  # noqa: F821
    preset=snakemake.params.preset,  # noqa: F821
    young_threshold_myr=snakemake.params.young_threshold_myr,  # noqa: F821
)
