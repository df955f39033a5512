# Stage 1: the simulated Milky Way (truth) per job chunk of tiles, the stellar-model grid and the 3D dust field.
# Outputs: results/models/isochrones.npz, results/dust/dust.npz (+ dust.json),
# results/population/chunk_{chunk}.parquet, results/population/sky.png.
# memory of rule dust: the float32 grid, its FFT (complex128, half spectrum) and temporaries (~32 B per cell)
DUST_CELLS = (
    2 * config["dust"]["grid_extent_xy_pc"] / config["dust"]["grid_step_pc"] + 1
) ** 2 * (2 * config["dust"]["grid_extent_z_pc"] / config["dust"]["grid_step_pc"] + 1)


rule stellar_models:
    input:
        bc=results("models/bc_grid.npz"),
    output:
        results("models/isochrones.npz"),
        correction=results("models/empirical_correction.json"),
        figure=report(
            results("models/empirical_correction.png"),
            caption="../report/empirical_correction.rst",
            category="Stellar models",
        ),
    log:
        logs("stellar_models.log"),
    benchmark:
        logs("benchmarks/stellar_models.tsv")
    conda:
        "../../envs/ysocensus.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        models=config["population"]["stellar_models"],
    script:
        "../../scripts/stellar_models.py"


rule dust:
    output:
        grid=results("dust/dust.npz"),
        meta=results("dust/dust.json"),
    log:
        logs("dust.log"),
    benchmark:
        logs("benchmarks/dust.tsv")
    conda:
        "../../envs/ysocensus.yaml"
    threads: 1
    resources:
        mem_mb=int(1000 + 32 * DUST_CELLS / 1e6),
        runtime=20,
    params:
        dust=config["dust"],
        population=config["population"],
        seed=config["seed"],
    script:
        "../../scripts/dust.py"


rule population:
    input:
        isochrones=rules.stellar_models.output[0],
        dust=rules.dust.output.grid,
    output:
        results("population/chunk_{chunk}.parquet"),
    log:
        logs("population/chunk_{chunk}.log"),
    benchmark:
        logs("benchmarks/population/chunk_{chunk}.tsv")
    conda:
        "../../envs/ysocensus.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=60,
    params:
        tiles=chunk_tiles,
        population=config["population"],
        dust=config["dust"],
        seed=config["seed"],
        nside=config["sky"]["nside"],
    script:
        "../../scripts/population.py"


rule population_figure:
    input:
        per_chunk(results("population/chunk_{chunk}.parquet")),
    output:
        report(
            results("population/sky.png"),
            caption="../report/population_sky.rst",
            category="Population",
        ),
    log:
        logs("population_figure.log"),
    conda:
        "../../envs/ysocensus.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        nside=config["sky"]["nside"],
        young_threshold_myr=config["infer"]["young_threshold_myr"],
    script:
        "../../scripts/population_figure.py"


FINAL_TARGETS.append(results("population/sky.png"))
