# Stage 2: the forward observation model. A chunk's true population -> the catalog Gaia, 2MASS, AllWISE
# and LAMOST would have published (errors, detection limits, footprints, YSO tracers, binaries).
# See src/ysocensus/surveys/observe.py and config/README.observe.md.

BC_GRID = results("models/bc_grid.npz")
ISOCHRONES = results("models/isochrones.npz")


rule bolometric_corrections:
    """MIST/C3K BC tables (astrolachesis) of the ten bands, extinction rebased on G23, 2MASS/WISE put on the real
    surveys' systems from the mean colours of dwarfs (stars.photometric_offsets), cached as npz.
    """
    output:
        BC_GRID,
        offsets=results("models/photometric_offsets.json"),
        figure=report(
            results("models/photometric_offsets.png"),
            caption="../report/photometric_offsets.rst",
            category="Stellar models",
        ),
    log:
        logs("observe/bolometric_corrections.log"),
    benchmark:
        logs("benchmarks/bolometric_corrections.tsv")
    conda:
        "../../envs/ysocensus.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        offsets=config["population"]["stellar_models"]["photometric_offsets"],
    script:
        "../../scripts/bolometric_corrections.py"


rule observe:
    """One chunk of tiles: population (truth) -> observed catalog, one row per population row."""
    input:
        population=results("population/chunk_{chunk}.parquet"),
        bc=BC_GRID,
        isochrones=ISOCHRONES,
    output:
        results("catalog/chunk_{chunk}.parquet"),
    log:
        logs("observe/chunk_{chunk}.log"),
    benchmark:
        logs("benchmarks/observe/chunk_{chunk}.tsv")
    conda:
        "../../envs/ysocensus.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        seed=config["seed"],
        observe=config.get("observe", {}),
    script:
        "../../scripts/observe.py"


# (schema defaults inside $ref'd section schemas are not filled in by validate(): use .get with defaults;
# the Python side fills every default itself, ysocensus.surveys.observe.merge_config)
FIGURE_CHUNK = config.get("observe", {}).get("figure_chunk")
FIGURE_CHUNK = FIGURE_CHUNK if FIGURE_CHUNK in CHUNKS else CHUNKS[0]


rule observe_figure:
    """CMDs of one chunk (young stars highlighted) and the missing fraction per survey vs magnitude."""
    input:
        catalog=results(f"catalog/chunk_{FIGURE_CHUNK}.parquet"),
        population=results(f"population/chunk_{FIGURE_CHUNK}.parquet"),
        bc=BC_GRID,
    output:
        report(
            results("catalog/observe_summary.png"),
            caption="../report/observe_summary.rst",
            category="Observed catalog",
        ),
    log:
        logs("observe/observe_figure.log"),
    conda:
        "../../envs/ysocensus.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        young_threshold_myr=config["infer"]["young_threshold_myr"],
    script:
        "../../scripts/observe_figure.py"


FINAL_TARGETS.extend(per_chunk(results("catalog/chunk_{chunk}.parquet")))
FINAL_TARGETS.append(results("catalog/observe_summary.png"))
