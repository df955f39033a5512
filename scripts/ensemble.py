"""rule ensemble: results/model/members/*/model.ckpt -> results/model/model.ckpt (src/ysocensus/model/ensemble.py)."""
from ysocensus.logs import configure
from ysocensus.model.ensemble import write_ensemble

configure(snakemake.log)  # noqa: F821 (snakemake is injected)
write_ensemble(
    snakemake.input.members,  # noqa: F821
    snakemake.output.model,  # noqa: F821
)
