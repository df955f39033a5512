"""rule bolometric_corrections: cache the BC grid (src/ysocensus/stars/bolometric.py)."""
from ysocensus.logs import configure
from ysocensus.stars.bolometric import run_bolometric_corrections

configure(snakemake.log)  # noqa: F821 (snakemake is injected)
run_bolometric_corrections(snakemake.output[0])  # noqa: F821
