# Issue 7: our model side by side with the tools astronomers use today (Sagitta, a brute-force grid posterior,
# a standard NPE), on the same held-out simulated stars. Not part of `rule all`: run it on demand with
#   snakemake --cores 2 compare_peers
# Output: results/benchmarks/peers.json (one table + the targets of issue 7, met or missed) and
# results/benchmarks/peers/ (peers_summary.png, npe.pt: the trained NPE baseline). Needs the extras `peers`
# (sagitta installed with --no-deps, zuko, scikit-learn); see config/README.md.


rule compare_peers:
    """Sagitta, grid posterior (reference, C2ST) and NPE vs our model: one table with stars/s, calibration, accuracy."""
    input:
        training=rules.training_set.output,
        model=results("model/model.ckpt"),
        isochrones=results("models/isochrones.npz"),
        bc=results("models/bc_grid.npz"),
        dust=results("dust/dust.npz"),
    output:
        json=results("benchmarks/peers.json"),
        figures=directory(results("benchmarks/peers")),
    log:
        logs("benchmarks/compare_peers.log"),
    benchmark:
        logs("benchmarks/compare_peers.tsv")
    conda:
        "../../envs/ysocensus.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=30,
    params:
        training_dir=lambda wildcards, input: os.path.dirname(input.training[0]),
        population=config["population"],
        dust=config["dust"],
        train=config["train"],
        seed=config["seed"],
        young_threshold_myr=config["infer"]["young_threshold_myr"],
    script:
        "../../scripts/compare_peers.py"
