"""rule dust: the synthetic 3D dust field and its sight-line table (src/ysocensus/dust/)."""
from ysocensus.dust import run_dust
from ysocensus.config import section
from ysocensus.logs import configure

configure(snakemake.log)  # noqa: F821 (snakemake is injected)
run_dust(
    section("dust", snakemake.params.dust),  # noqa: F821
    section("population", snakemake.params.population),  # noqa: F821
    snakemake.params.seed,  # noqa: F821
    snakemake.output.grid,  # noqa: F821
    snakemake.output.meta,  # noqa: F821
)
