"""Entry points of the workflow's ``maps`` and ``completeness`` rules (and of the same steps outside it)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ysocensus import io
from ysocensus.maps import data, healpix
from ysocensus.maps.figures import mollweide_panels, smoke_test_figures

log = logging.getLogger(__name__)

#: output keys of make_maps and the file names the workflow gives them under results/maps/
MAP_OUTPUTS = {
    "counts_fits": "yso_counts.fits", "median_age_fits": "yso_median_age.fits",
    "counts_png": "yso_counts.png", "median_age_png": "yso_median_age.png",
    "dust_xy_png": "yso_age_vs_dust_xy.png", "dust_edgeon_png": "yso_age_vs_dust_edgeon.png",
    "dust_los_png": "yso_age_vs_dust_los.png", "summary": "maps_summary.json",
}
COMPLETENESS_OUTPUTS = {
    "sky_fits": "completeness_sky.fits", "sky_png": "completeness_sky.png", "curves_png": "completeness_1d.png",
    "table": "completeness.csv", "summary": "completeness_summary.json",
}


def _bin_name(lo: float, hi: float) -> str:
    return f"N_{lo:g}_{hi:g}MYR".replace(".", "P")


def make_maps(posteriors: Sequence[str], catalogs: Sequence[str], populations: Sequence[str] | None,
              dust_path: str | None, out: Mapping[str, str], cfg: Mapping, young_threshold_myr: float = 50.0,
              seed: int = 0, preset: Mapping | None = None) -> dict:
    """HEALPix count and age maps, their Mollweide figures, the dust figures and a JSON summary.

    ``cfg`` is the validated ``maps`` section; ``out`` maps the keys of ``MAP_OUTPUTS`` to paths.
    ``populations`` (the truth) gives the weights and the truth curves; None for a real catalog (weight 1).
    ``preset`` (the workflow's ``preset`` section) goes into the summary; a smoke test's figures say so.
    """
    with smoke_test_figures(bool(preset and preset.get("smoke_test"))):
        summary = _make_maps(posteriors, catalogs, populations, dust_path, out, cfg, young_threshold_myr, seed)
    if preset is not None:
        summary["preset"] = _preset_summary(preset)
    io.write_json(summary, out["summary"])
    log.info("maps: %s", summary)
    return summary


def _preset_summary(preset: Mapping) -> dict:
    return {k: preset.get(k) for k in ("name", "smoke_test", "description")}


def _make_maps(posteriors, catalogs, populations, dust_path, out, cfg, young_threshold_myr, seed) -> dict:
    nside = int(cfg["nside"])
    npix = 12 * nside * nside
    edges = healpix.log10_edges(cfg["age_bins_myr"])
    counts = np.zeros((len(edges) - 1, npix))
    keep = {k: [] for k in ("pix", "l", "b", "d", "age", "w", "wp")}
    n_rows = n_ok = 0
    for frame in data.iter_inferred(posteriors, catalogs, populations):
        n_rows += len(frame)
        ok = frame["status"].to_numpy() == "ok"
        n_ok += int(ok.sum())
        sel = data.candidates(frame, cfg["p_young_min"]) if cfg["candidates_only"] else ok
        f = frame[sel]
        pix = healpix.pixels(nside, f["l"].to_numpy(), f["b"].to_numpy())
        probs = healpix.age_bin_probabilities(f["log10_age_yr_q16"].to_numpy(), f["log10_age_yr_q50"].to_numpy(),
                                              f["log10_age_yr_q84"].to_numpy(), edges)
        counts += healpix.count_maps(pix, f["weight"].to_numpy(), probs, nside)
        cand = data.candidates(frame, cfg["p_young_min"])
        c = frame[cand]
        keep["pix"].append(healpix.pixels(nside, c["l"].to_numpy(), c["b"].to_numpy()))
        keep["l"].append(c["l"].to_numpy())
        keep["b"].append(c["b"].to_numpy())
        keep["d"].append(c["distance_pc_q50"].to_numpy(np.float64))
        keep["age"].append(c["log10_age_yr_q50"].to_numpy(np.float64))
        keep["w"].append(c["weight"].to_numpy(np.float64))
        keep["wp"].append(c["weight"].to_numpy(np.float64) * c["p_young"].to_numpy(np.float64))
    cand = {k: np.concatenate(v) if v else np.zeros(0) for k, v in keep.items()}
    cand["pix"] = cand["pix"].astype(np.int64)
    median_age = healpix.weighted_median_by_pixel(cand["pix"], cand["age"], cand["wp"], npix)
    n_cand = np.bincount(cand["pix"], minlength=npix).astype(float)

    bins = list(zip(cfg["age_bins_myr"][:-1], cfg["age_bins_myr"][1:]))
    names = [_bin_name(lo, hi) for lo, hi in bins]
    header = [("YSO_PMIN", float(cfg["p_young_min"]), "candidates: p_young >= this"),
              ("CANDONLY", bool(cfg["candidates_only"]), "counts over candidates only"),
              ("AGEMODEL", "two-piece normal", "P(age bin) from log-age q16/50/84"),
              ("WEIGHTED", populations is not None, "weighted by 1/thinning")]
    healpix.write_healpix(out["counts_fits"], dict(zip(names, counts)), {n: healpix.COUNT_UNIT for n in names},
                          nside, header)
    healpix.write_healpix(out["median_age_fits"],
                          {"MEDIAN_AGE_MYR": 10 ** median_age / 1e6, "N_CANDIDATES": n_cand},
                          {"MEDIAN_AGE_MYR": "Myr", "N_CANDIDATES": "stars/pixel"}, nside, header)

    area = healpix.pixel_area_deg2(nside)
    dens = counts / area
    pos = dens[dens > 0]
    vmin = max(float(np.percentile(pos, 5)), 1e-4) if pos.size else 1e-3
    vmax = float(pos.max()) if pos.size else 1.0
    weighted = "weighted " if populations is not None else ""
    panels = [dict(hmap=np.where(d > 0, d, np.nan), log=True, cmap="magma", vmin=vmin, vmax=vmax,
                   unit="YSOs per deg$^2$",
                   title=f"YSOs {lo:g}–{hi:g} Myr ({weighted}Σ P(age in bin) = {counts[k].sum():,.0f})")
              for k, (d, (lo, hi)) in enumerate(zip(dens, bins))]
    mollweide_panels(out["counts_png"], panels, int(cfg["dpi"]), ncols=1,
                     suptitle=f"Inferred YSO counts per age bin (HEALPix nside {nside}, candidates p_young ≥ "
                              f"{cfg['p_young_min']:g}; grey: none)")
    mollweide_panels(out["median_age_png"],
                     [dict(hmap=10 ** median_age / 1e6, log=True, cmap="plasma", vmin=0.5, vmax=50,
                           ticks=[0.5, 1, 2, 5, 10, 20, 50],
                           unit="median YSO age (Myr)",
                           title=f"Median age of YSO candidates ({len(cand['age']):,} stars, "
                                 f"weight × p_young; nside {nside}; grey: no candidate)")],
                     int(cfg["dpi"]), map_width_in=10.0)

    summary = {"rows": n_rows, "status_ok": n_ok, "candidates": int(len(cand["age"])),
               "candidates_weighted": float(cand["w"].sum()), "nside": nside,
               "p_young_min": cfg["p_young_min"], "age_bins_myr": list(cfg["age_bins_myr"]),
               "counts_per_bin": {n: float(c.sum()) for n, c in zip(names, counts)}}
    summary.update(_dust_figures(cand, populations, dust_path, out, cfg, young_threshold_myr, seed))
    return summary


def _subsample(n: int, max_points: int, seed: int) -> np.ndarray:
    if n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, max_points, replace=False))


def _dust_figures(cand, populations, dust_path, out, cfg, young_threshold_myr, seed) -> dict:
    from ysocensus.dust import DustField
    from ysocensus.maps import dust_maps

    if dust_path is None:
        log.warning("maps: no dust grid given; the dust figures are skipped")
        return {}
    dust = DustField.load(dust_path)
    idx = _subsample(len(cand["age"]), int(cfg["max_points"]), seed)
    x, y, z = data.galactic_xyz(cand["l"][idx], cand["b"][idx], cand["d"][idx])
    age_myr = 10 ** cand["age"][idx] / 1e6
    yso = {"x": x, "y": y, "z": z, "age_myr": age_myr}
    dpi = int(cfg["dpi"])
    dust_maps.faceon(dust, yso, float(cfg["faceon_extent_pc"]), out["dust_xy_png"], dpi)
    dust_maps.edgeon(dust, yso, float(cfg["faceon_extent_pc"]), float(cfg["edgeon_slab_pc"]),
                     out["dust_edgeon_png"], dpi)
    inferred = {"rho": dust.density_at(x, y, z),
                "av": dust.av(cand["l"][idx], cand["b"][idx], np.maximum(cand["d"][idx], 0)),
                "age_myr": age_myr, "w": cand["wp"][idx]}
    truth = None
    if populations:
        young = io.log10_age_threshold(young_threshold_myr)
        parts = []
        for p in populations:
            t = io.read_table(p, io.POPULATION, columns=["x_pc", "y_pc", "z_pc", "av_mag", "log10_age_yr",
                                                         "weight", "is_remnant"]).to_pandas()
            parts.append(t[(t["log10_age_yr"] < young) & ~t["is_remnant"]])
        t = parts[0].iloc[:0] if not parts else __import__("pandas").concat(parts, ignore_index=True)
        ti = _subsample(len(t), int(cfg["max_points"]), seed + 1)
        t = t.iloc[ti]
        truth = {"rho": dust.density_at(t["x_pc"].to_numpy(), t["y_pc"].to_numpy(), t["z_pc"].to_numpy()),
                 "av": t["av_mag"].to_numpy(np.float64), "age_myr": 10 ** t["log10_age_yr"].to_numpy(np.float64) / 1e6,
                 "w": t["weight"].to_numpy(np.float64)}
    stats = dust_maps.age_vs_dust(inferred, truth, out["dust_los_png"], dpi)
    inside = np.ones(len(z), bool)
    for u, axis in ((x, dust.x_pc), (y, dust.y_pc), (z, dust.z_pc)):
        inside &= (u >= axis[0]) & (u <= axis[-1])
    stats["candidates_inside_dust_grid"] = int(inside.sum())
    return stats


def make_completeness(populations: Sequence[str], posteriors: Sequence[str], out: Mapping[str, str],
                      cfg: Mapping, young_threshold_myr: float = 50.0, preset: Mapping | None = None) -> dict:
    """Completeness and purity of the inferred YSO sample against the truth (see maps.completeness); ``preset``
    as in :func:`make_maps`."""
    with smoke_test_figures(bool(preset and preset.get("smoke_test"))):
        s = _make_completeness(populations, posteriors, out, cfg, young_threshold_myr)
    if preset is not None:
        s["preset"] = _preset_summary(preset)
    io.write_json(s, out["summary"])
    log.info("completeness: %s", s)
    return s


def _make_completeness(populations, posteriors, out, cfg, young_threshold_myr) -> dict:
    from ysocensus.maps.completeness import Completeness, plot_1d

    if len(populations) != len(posteriors):
        raise ValueError("completeness: need one population file per posterior file")
    comp = Completeness(io.log10_age_threshold(young_threshold_myr), float(cfg["p_young_min"]),
                        int(cfg["completeness_nside"]),
                        {"distance_pc": cfg["distance_bins_pc"], "initial_mass_msun": cfg["mass_bins_msun"],
                         "log10_age_yr": cfg["age_bins_log10_yr"]}, int(cfg["completeness_min_stars"]))
    for pop, post in zip(populations, posteriors):
        comp.add(data.read_truth_joined(pop, post))
    maps = comp.sky_maps()
    units = {"COMPLETENESS": "fraction", "COMPLETENESS_ERR": "fraction", "PURITY": "fraction",
             "PURITY_ERR": "fraction", "N_TRUE_YSO": "stars/pixel", "N_SELECTED": "stars/pixel"}
    header = [("YSO_PMIN", float(cfg["p_young_min"]), "candidates: p_young >= this"),
              ("YSO_AGE", float(young_threshold_myr), "true YSO: age below this (Myr)")]
    healpix.write_healpix(out["sky_fits"], maps, units, comp.nside, header)
    s = comp.summary()
    mollweide_panels(out["sky_png"], [
        dict(hmap=maps["COMPLETENESS"], cmap="viridis", vmin=0, vmax=1, unit="completeness (fraction)",
             ticks=[0, 0.25, 0.5, 0.75, 1],
             title=f"Completeness of the YSO census (true YSOs recovered): {s['completeness'] or float('nan'):.2f} overall"),
        dict(hmap=maps["PURITY"], cmap="viridis", vmin=0, vmax=1, unit="purity (fraction)",
             ticks=[0, 0.25, 0.5, 0.75, 1],
             title=f"Purity of the YSO candidates (p_young ≥ {cfg['p_young_min']:g}): "
                   f"{s['purity'] or float('nan'):.2f} overall")],
        int(cfg["dpi"]), ncols=1,
        suptitle=f"Census selection function (HEALPix nside {comp.nside}; grey: fewer than "
                 f"{comp.min_stars} simulated stars)")
    plot_1d(comp, out["curves_png"], int(cfg["dpi"]))
    table = comp.table()
    with io.atomic_path(out["table"]) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    return s


def run_maps(inp, output, params, log_files=None) -> dict:
    """Snakemake entry (``scripts/maps.py``): named inputs posteriors, catalogs, populations, dust."""
    from ysocensus.logs import configure

    configure(log_files)
    return make_maps(list(inp.posteriors), list(inp.catalogs), list(inp.populations), inp.dust,
                     {k: getattr(output, k) for k in MAP_OUTPUTS}, params.maps, params.young_threshold_myr, params.seed,
                     params.get("preset"))


def run_completeness(inp, output, params, log_files=None) -> dict:
    """Snakemake entry (``scripts/completeness.py``): named inputs populations, posteriors."""
    from ysocensus.logs import configure

    configure(log_files)
    return make_completeness(list(inp.populations), list(inp.posteriors),
                             {k: getattr(output, k) for k in COMPLETENESS_OUTPUTS}, params.maps,
                             params.young_threshold_myr, params.get("preset"))


def output_paths(directory: str = "results/maps") -> dict:
    """All files the two rules write, by key (for the rules and for tests)."""
    return {**{k: str(Path(directory) / v) for k, v in MAP_OUTPUTS.items()},
            **{f"completeness_{k}": str(Path(directory) / v) for k, v in COMPLETENESS_OUTPUTS.items()}}
