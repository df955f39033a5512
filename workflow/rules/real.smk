# Real stars (issue 21): members of known young associations and of >= 300 Myr open clusters, shipped in
# src/ysocensus/data/real/ (provenance and licences in SOURCES*.md there), run through the same code path as
# `ysocensus infer` (ysocensus.validation.real). Output: results/validation/real.json (metrics per input
# variant and per group) and the report figures results/validation/real_*.png.
REAL = config["validate_real"]
# the cluster the stellar models were corrected to (stars.empirical) is not an independent check
EMPIRICAL = config["population"]["stellar_models"]["empirical_correction"]
REAL_FIGURES = {
    "p_young": "Per-group P(young) of the real members",
    "age": "Inferred age against the literature group age",
    "cmd": "Real members on the colour-magnitude diagram with the model's isochrones",
}


rule validate_real:
    """Real young and old cluster members through `ysocensus infer`'s code path: P(young), ages, CMD."""
    input:
        model=results("model/model.ckpt"),
        isochrones=results("models/isochrones.npz"),
        bc=results("models/bc_grid.npz"),
    output:
        **{
            name: report(
                results(f"validation/real_{name}.png"),
                caption=f"../report/real_{name}.rst",
                category="Real stars",
                labels={"figure": title},
            )
            for name, title in REAL_FIGURES.items()
        },
        json=results("validation/real.json"),
    log:
        logs("train/validate_real.log"),
    benchmark:
        logs("benchmarks/validate_real.tsv")
    conda:
        "../../envs/ysocensus.yaml"
    threads: REAL["threads"]
    resources:
        mem_mb=REAL["mem_mb"],
        runtime=REAL["runtime"],
    params:
        section=REAL,
        infer=config["infer"],
        seed=config["seed"],
        calibration_groups=[EMPIRICAL["cluster"]] if EMPIRICAL["enabled"] else [],
    script:
        "../../scripts/validate_real.py"


FINAL_TARGETS.append(results("validation/real.json"))
FINAL_TARGETS.extend(results(f"validation/real_{name}.png") for name in REAL_FIGURES)
