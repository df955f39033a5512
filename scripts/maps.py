"""Rule maps: YSO count / age maps and the YSO-vs-dust figures (logic in ysocensus.maps)."""
from ysocensus.maps.run import run_maps

run_maps(snakemake.input, snakemake.output, snakemake.params, snakemake.log[0])
