# Stage 3: the inference model (ysocensus.model): training set -> trained model -> validation.
# Outputs: results/training/ (train/val/test/test_population/calibration.parquet, normalisation.json, summary.json),
# results/model/model.ckpt (+ config.json, normalisation.json, training_summary.json, logs/ with CSV logs and
# Lightning checkpoints for resuming), results/validation/calibration.json (+ figures).
# The `train` section of the config is documented in src/ysocensus/schemas/train.schema.yaml
# and config/README.md.
TRAIN = config["train"]

TRAINING_SET = [
    results("training/train.parquet"),
    results("training/val.parquet"),
    results("training/test.parquet"),
    results("training/test_population.parquet"),
    results("training/calibration.parquet"),
    results("training/normalisation.json"),
    results("training/summary.json"),
]


rule training_set:
    """Simulated stars (truth joined with the observed catalog) split into train / val / test."""
    input:
        population=per_chunk(results("population/chunk_{chunk}.parquet")),
        catalog=per_chunk(results("catalog/chunk_{chunk}.parquet")),
        bc=results("models/bc_grid.npz"),
        isochrones=results("models/isochrones.npz"),
    output:
        TRAINING_SET,
    log:
        logs("train/training_set.log"),
    benchmark:
        logs("benchmarks/training_set.tsv")
    conda:
        "../../envs/ysocensus.yaml"
    threads: 1
    resources:
        mem_mb=6000,
        runtime=30,
    params:
        seed=config["seed"],
        training=TRAIN["training"],
        observe=config.get("observe", {}),
    script:
        "../../scripts/training_set.py"


# a single network (the default) is trained by rule train straight into results/model/; a deep ensemble
# (train.ensemble.members > 1; config/ensemble.yaml) trains each member as its own job of the same rule, then
# named train_member, into results/model/members/{member}/, and `ensemble` writes their one checkpoint
N_MEMBERS = int(TRAIN["ensemble"]["members"])
MEMBER_DIR = results("model") if N_MEMBERS == 1 else results("model/members/{member}")
MEMBER_JOB = "train" if N_MEMBERS == 1 else "train_member_{member}"


rule train:
    """Flow-matching Transformer with Lightning (one network of an ensemble: seed + member x MEMBER_SEED_STRIDE);
    resumes from the logs/checkpoints/last.ckpt beside its model."""
    name:
        "train" if N_MEMBERS == 1 else "train_member"
    input:
        training=TRAINING_SET,
        bc=results("models/bc_grid.npz"),
        isochrones=results("models/isochrones.npz"),
    output:
        model=os.path.join(MEMBER_DIR, "model.ckpt"),
        config=os.path.join(MEMBER_DIR, "config.json"),
        normalisation=os.path.join(MEMBER_DIR, "normalisation.json"),
        summary=os.path.join(MEMBER_DIR, "training_summary.json"),
    log:
        logs(f"train/{MEMBER_JOB}.log"),
    benchmark:
        logs(f"benchmarks/{MEMBER_JOB}.tsv")
    wildcard_constraints:
        member=r"\d+",
    conda:
        "../../envs/ysocensus.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        # a wall-clock budget bounds it; a step budget alone (the laptop preset) runs ~10-15 min on 2 cores
        runtime=(
            int(TRAIN["optim"]["max_minutes"]) + 30
            if TRAIN["optim"]["max_minutes"]
            else 90
        ),
    params:
        seed=config["seed"],
        member=lambda wildcards: int(wildcards.get("member", 0)),
        train=TRAIN,
        population=config["population"],
        training_dir=lambda wildcards, input: os.path.dirname(input.training[0]),
        logs_dir=lambda wildcards, output: os.path.join(
            os.path.dirname(output.model), "logs"
        ),
    script:
        "../../scripts/train.py"


if N_MEMBERS > 1:

    rule ensemble:
        """The ensemble's checkpoint: every member's network, prior ratio and age recalibration in one file."""
        input:
            members=expand(
                results("model/members/{member}/model.ckpt"), member=range(N_MEMBERS)
            ),
        output:
            model=results("model/model.ckpt"),
            config=results("model/config.json"),
            normalisation=results("model/normalisation.json"),
            summary=results("model/training_summary.json"),
        log:
            logs("train/ensemble.log"),
        conda:
            "../../envs/ysocensus.yaml"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=10,
        script:
            "../../scripts/ensemble.py"


rule validate:
    """Calibration (coverage, SBC), accuracy, P(young) and widths on held-out simulations."""
    input:
        model=results("model/model.ckpt"),
        training=TRAINING_SET,
    output:
        calibration=results("validation/calibration.json"),
        figures=report(
            directory(results("validation/figures")),
            patterns=["{name}.png"],
            caption="../report/model_validation.rst",
            category="Model calibration",
        ),
    log:
        logs("train/validate.log"),
    benchmark:
        logs("benchmarks/validate.tsv")
    conda:
        "../../envs/ysocensus.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        seed=config["seed"],
        train=TRAIN,
        training_dir=lambda wildcards, input: os.path.dirname(input.training[0]),
        preset=PRESET,
        young_threshold_myr=config["infer"]["young_threshold_myr"],
    script:
        "../../scripts/validate.py"


# the checkpoint is a product in itself (ysocensus infer --model): required by `all`, so a plain rerun after an
# interrupted `--forcerun train` retrains instead of finding the downstream files up to date without a model
FINAL_TARGETS.append(results("model/model.ckpt"))
FINAL_TARGETS.append(results("validation/calibration.json"))
