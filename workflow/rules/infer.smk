# Stage 4: posterior inference per job chunk with the trained model (ysocensus.inference).
# Output: results/posteriors/chunk_{chunk}.parquet (io.POSTERIOR, one row per catalog row), and with
# infer.save_samples the raw samples results/posteriors/chunk_{chunk}_samples.parquet.


# the raw-samples side file only when infer.save_samples is set
INFER_SAMPLES = (
    {"samples": results("posteriors/chunk_{chunk}_samples.parquet")}
    if config["infer"]["save_samples"]
    else {}
)


rule infer:
    """Posterior summaries (16/50/84th percentiles, P(young)) of every catalog row of one chunk."""
    input:
        catalog=results("catalog/chunk_{chunk}.parquet"),
        model=results("model/model.ckpt"),
    output:
        **INFER_SAMPLES,
        posteriors=results("posteriors/chunk_{chunk}.parquet"),
    log:
        logs("infer/chunk_{chunk}.log"),
    benchmark:
        logs("benchmarks/infer/chunk_{chunk}.tsv")
    conda:
        "../../envs/ysocensus.yaml"
    threads: config["infer"]["threads"]
    resources:
        mem_mb=config["infer"]["mem_mb"],
        runtime=config["infer"]["runtime"],
    params:
        infer=config["infer"],
        train=config["train"],
        seed=config["seed"],
    script:
        "../../scripts/infer.py"


FINAL_TARGETS.extend(per_chunk(results("posteriors/chunk_{chunk}.parquet")))
