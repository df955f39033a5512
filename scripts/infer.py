"""Rule infer: posterior summaries of one chunk's catalog (logic in ysocensus.inference)."""
from ysocensus.inference.rule import run_infer

run_infer(snakemake.input.catalog, snakemake.input.model, snakemake.output.posteriors,
         snakemake.output.get("samples"), snakemake.params.infer, snakemake.params.seed,
         snakemake.wildcards.chunk, snakemake.threads, snakemake.log[0], snakemake.params.train)
