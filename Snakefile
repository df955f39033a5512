# ysocensus: a census of young stars in the local Milky Way by simulation-based inference.
# Stages: population (+ 3D dust) -> observe -> train -> infer -> maps.
# See README.md and docs/ARCHITECTURE.md ("Stages and rules").
from snakemake.utils import min_version, validate

min_version("9")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


# the schemas ship inside the package (src/ysocensus/schemas/); the code outside Snakemake reads the same files
validate(config, "src/ysocensus/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/population.smk"
include: "workflow/rules/observe.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/infer.smk"
include: "workflow/rules/maps.smk"
include: "workflow/rules/peers.smk"
include: "workflow/rules/real.smk"


rule all:
    default_target: True
    input:
        final_targets(),
    localrule: True
