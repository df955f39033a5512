# Stage 5: maps of YSO ages against the 3D dust, and the census completeness (ysocensus.maps).
# Outputs under results/maps/: HEALPix FITS (NESTED, Galactic, units in the header), Mollweide and dust
# figures, completeness_* maps, curves and table, JSON summaries.
from ysocensus.maps.run import COMPLETENESS_OUTPUTS, MAP_OUTPUTS

MAPS_DIR = results("maps")
MAP_CAPTIONS = {
    "counts_png": ("maps_counts.rst", "YSO maps"),
    "median_age_png": ("maps_median_age.rst", "YSO maps"),
    "dust_xy_png": ("maps_dust_xy.rst", "YSO ages and 3D dust"),
    "dust_edgeon_png": ("maps_dust_edgeon.rst", "YSO ages and 3D dust"),
    "dust_los_png": ("maps_dust_los.rst", "YSO ages and 3D dust"),
    "sky_png": ("maps_completeness_sky.rst", "Census completeness"),
    "curves_png": ("maps_completeness_1d.rst", "Census completeness"),
}

# every output path under results/maps/, figures wrapped in report() with their captions
MAP_FILES, COMPLETENESS_FILES = (
    {
        key: (
            f"{MAPS_DIR}/{name}"
            if key not in MAP_CAPTIONS
            else report(
                f"{MAPS_DIR}/{name}",
                caption=f"../report/{MAP_CAPTIONS[key][0]}",
                category=MAP_CAPTIONS[key][1],
            )
        )
        for key, name in outputs.items()
    }
    for outputs in (MAP_OUTPUTS, COMPLETENESS_OUTPUTS)
)


rule maps:
    """HEALPix maps of YSO counts per age bin and median age; YSOs on the 3D dust; age against dust."""
    input:
        posteriors=per_chunk(results("posteriors/chunk_{chunk}.parquet")),
        catalogs=per_chunk(results("catalog/chunk_{chunk}.parquet")),
        populations=per_chunk(results("population/chunk_{chunk}.parquet")),
        dust=results("dust/dust.npz"),
    output:
        **MAP_FILES,
    log:
        logs("maps/maps.log"),
    benchmark:
        logs("benchmarks/maps/maps.tsv")
    conda:
        "../../envs/ysocensus.yaml"
    threads: 1
    resources:
        mem_mb=config["maps"]["mem_mb"],
        runtime=config["maps"]["runtime"],
    params:
        maps=config["maps"],
        young_threshold_myr=config["infer"]["young_threshold_myr"],
        seed=config["seed"],
        preset=PRESET,
    script:
        "../../scripts/maps.py"


rule completeness:
    """Completeness (vs truth) and purity (vs inferred) of the YSO candidates on the sky and in 1D."""
    input:
        populations=per_chunk(results("population/chunk_{chunk}.parquet")),
        posteriors=per_chunk(results("posteriors/chunk_{chunk}.parquet")),
    output:
        **COMPLETENESS_FILES,
    log:
        logs("maps/completeness.log"),
    benchmark:
        logs("benchmarks/maps/completeness.tsv")
    conda:
        "../../envs/ysocensus.yaml"
    threads: 1
    resources:
        mem_mb=config["maps"]["mem_mb"],
        runtime=config["maps"]["runtime"],
    params:
        maps=config["maps"],
        young_threshold_myr=config["infer"]["young_threshold_myr"],
        preset=PRESET,
    script:
        "../../scripts/completeness.py"


FINAL_TARGETS.extend(f"{MAPS_DIR}/{name}" for name in MAP_OUTPUTS.values())
FINAL_TARGETS.extend(f"{MAPS_DIR}/{name}" for name in COMPLETENESS_OUTPUTS.values())
