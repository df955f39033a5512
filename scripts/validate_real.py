"""rule validate_real: real members through `ysocensus infer`'s code path -> results/validation/real.json (src/ysocensus/validation/real.py)."""
from ysocensus.validation.real import run_validate_real

run_validate_real(
    snakemake.input.model,  # noqa: F821 (snakemake is injected)
    snakemake.input.isochrones,  # noqa: F821
    snakemake.input.bc,  # noqa: F821
    snakemake.output.json,  # noqa: F821
    dict(p_young=snakemake.output.p_young, age=snakemake.output.age, cmd=snakemake.output.cmd),  # noqa: F821
    snakemake.params.section,  # noqa: F821
    snakemake.params.infer,  # noqa: F821
    seed=snakemake.params.seed,  # noqa: F821
    threads=snakemake.threads,  # noqa: F821
    log_files=snakemake.log,  # noqa: F821
    calibration_groups=snakemake.params.calibration_groups,  # noqa: F821
)
