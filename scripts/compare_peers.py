"""rule compare_peers: our model vs Sagitta, grid posterior and NPE -> results/benchmarks/peers.json (src/ysocensus/baselines/peers.py)."""
from ysocensus.baselines.peers import run_compare_peers
from ysocensus.logs import configure

configure(snakemake.log)  # noqa: F821 (snakemake is injected)
run_compare_peers(
    snakemake.params.training_dir,  # noqa: F821
    snakemake.input.model,  # noqa: F821
    snakemake.input.isochrones,  # noqa: F821
    snakemake.input.bc,  # noqa: F821
    snakemake.input.dust,  # noqa: F821
    snakemake.output.json,  # noqa: F821
    snakemake.output.figures,  # noqa: F821
    population_cfg=snakemake.params.population,  # noqa: F821
    dust_cfg=snakemake.params.dust,  # noqa: F821
    train_cfg=snakemake.params.train,  # noqa: F821
    sim_seed=snakemake.params.seed,  # noqa: F821
    npe_path=snakemake.output.figures + "/npe.pt",  # noqa: F821
    threads=snakemake.threads,  # noqa: F821
    young_threshold_myr=snakemake.params.young_threshold_myr,  # noqa: F821
)
