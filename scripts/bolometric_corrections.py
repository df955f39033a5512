"""rule bolometric_corrections: cache the BC grid (src/ysocensus/stars/bolometric.py)."""
from ysocensus.logs import configure
from ysocensus.stars.bolometric import build_bc_grid

configure(snakemake.log)  # noqa: F821 (snakemake is injected)
build_bc_grid(snakemake.output[0])  # noqa: F821
