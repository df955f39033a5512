"""Rule completeness: completeness and purity of the YSO census (logic in ysocensus.maps)."""
from ysocensus.maps.run import run_completeness

run_completeness(snakemake.input, snakemake.output, snakemake.params, snakemake.log[0])
