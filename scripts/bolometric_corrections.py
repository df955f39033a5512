"""rule bolometric_corrections: cache the BC grid (src/ysocensus/stars/bolometric.py) with the empirical 2MASS/WISE
offsets (src/ysocensus/stars/photometric_offsets.py)."""
from ysocensus.logs import configure
from ysocensus.stars.bolometric import run_bolometric_corrections

configure(snakemake.log)  # noqa: F821 (snakemake is injected)
run_bolometric_corrections(
    snakemake.output[0],  # noqa: F821
    offsets=snakemake.params.offsets,  # noqa: F821
    offsets_json=snakemake.output.offsets,  # noqa: F821
    figure=snakemake.output.figure,  # noqa: F821
)
