"""The observe stage: a chunk's true population → the catalog the surveys would have published.

One catalog row per population row, always (join on ``source_id``). A star that no survey detects
keeps its row with every measurement null and ``survey_mask == 0``; remnants (``is_remnant``) and
stars without stellar parameters (null ``teff_k``/``logg``/``log10_lum_lsun``) get null photometry
the same way. The "published catalog" of the surveys is ``survey_mask != 0``; the undetected rows
are what the census must account for. Counts (rows, remnants, stars without parameters, binaries,
detections per survey) go to the Parquet metadata (``io.read_metadata``).

Per star (vectorised over the chunk, no loop over stars):

1. Photometry: ``BCGrid.magnitudes`` (MIST/C3K BCs with extinction rebased on G23, first-order
   R_V correction) from the population's T_eff, log g, L, [Fe/H], A_V, R_V and distance.
2. Unresolved binaries: a fraction ``binary_fraction`` of stars has a companion of mass ratio
   q ~ U(``binary_q_min``, 1) (flat q distribution of solar-type binaries, Raghavan et al. 2010), same
   age, [Fe/H], distance and extinction; its parameters come from the isochrone grid and its flux
   is added in every band (parallax unchanged; LAMOST labels stay the primary's). Companions outside
   the models (e.g. below the grid's lowest mass) add nothing.
3. YSO tracers (``ysocensus.stars.tracers``): disk IR excess for ``has_disk``, Hα and Li 6708 EWs,
   variability that moves the measured values (Gaia mean magnitudes: σ_var/√n over the star's per-CCD or
   per-transit count, which the archive's mean-flux error carries too; 2MASS single epoch: σ_var; AllWISE two
   epochs: σ_var/√2 — their reported errors are measurement errors only, as those catalogs publish them).
4. Surveys (``gaia``, ``tmass``, ``wise``, ``lamost``): errors, noise, detection limits, footprint,
   then a configurable random loss per survey (``random_loss``), drawn independently per star.
5. ``survey_mask``: bit i set when ``io.MEASUREMENT_BITS[i]`` is not null (the missingness pattern).

Random numbers: each tile draws a fixed block of standard normals and uniforms from
``sky.tile_rng(seed, tile, "observe")``, assigned to its stars in ``source_id`` order, so a tile's
catalog depends neither on the chunking nor on the row order of the population file.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Mapping

import numpy as np
import pyarrow as pa

from ysocensus import io, sky
from ysocensus.stars import tracers
from ysocensus.stars.bolometric import BCGrid, load_bc_grid
from ysocensus.surveys import gaia, lamost, tmass, wise

log = logging.getLogger(__name__)

DEFAULTS = dict(
    binary_fraction=0.3, binary_q_min=0.1,
    random_loss={"gaia": 0.0, "tmass": 0.0, "wise": 0.0, "lamost": 0.0},
    rv_correction=True, variability=True, figure_chunk=None,
    gaia={}, tmass={}, wise={}, lamost={}, disk={}, halpha={},
)
#: population columns the stage reads
INPUT_COLUMNS = ("source_id", "tile", "l", "b", "distance_pc", "log10_age_yr", "initial_mass_msun", "feh",
                 "teff_k", "logg", "log10_lum_lsun", "av_mag", "rv", "has_disk", "is_remnant")

# slots of the per-tile random blocks (never renumber; spare slots for later additions). The normals from
# N_NORMAL on are drawn after the uniforms, so that adding them left every earlier draw as it was.
N_NORMAL, N_UNIFORM, N_NORMAL_LATE = 24, 24, 8
ZS = dict(gaia=slice(0, 4), tmass=slice(4, 7), wise=slice(7, 11), lamost=slice(11, 16), disk_alpha=16,
          disk_rk=17, variability=18, halpha=slice(19, 21), lithium=21, gaia_transits=22,
          field_variability=23, gaia_sigma=slice(24, 27))
US = dict(gaia=slice(0, 3), tmass=slice(3, 6), wise=slice(6, 10), lamost=slice(10, 12), binary=12,
          binary_q=13, accretor=14, loss_gaia=15, loss_tmass=16, loss_wise=17, loss_lamost=18,
          field_variable=19)

# ICRS -> Galactic rotation (Hipparcos, ESA 1997, vol. 1 §1.5.3); Galactic -> ICRS is its transpose
_A_G = np.array([[-0.0548755604162154, -0.8734370902348850, -0.4838350155487132],
                 [+0.4941094278755837, -0.4448296299600112, +0.7469822444972189],
                 [-0.8676661490190047, -0.1980763734312015, +0.4559837761750669]])


def merge_config(cfg: Mapping | None) -> dict:
    """The ``observe`` config with defaults filled in (one level deep for ``random_loss``)."""
    cfg = dict(cfg or {})
    out = dict(DEFAULTS, **cfg)
    out["random_loss"] = dict(DEFAULTS["random_loss"], **(cfg.get("random_loss") or {}))
    for k in ("gaia", "tmass", "wise", "lamost", "disk", "halpha"):
        out[k] = dict(cfg.get(k) or {})
    return out


def galactic_to_icrs(l_deg, b_deg) -> tuple[np.ndarray, np.ndarray]:
    """ICRS (ra, dec) in degrees of Galactic (l, b) in degrees (fixed rotation, float64)."""
    l = np.radians(np.asarray(l_deg, np.float64))
    b = np.radians(np.asarray(b_deg, np.float64))
    cb = np.cos(b)
    v = np.stack([cb * np.cos(l), cb * np.sin(l), np.sin(b)])
    x, y, z = _A_G.T @ v
    ra = np.degrees(np.arctan2(y, x)) % 360.0
    dec = np.degrees(np.arcsin(np.clip(z, -1.0, 1.0)))
    return ra, dec


def _check_inputs(pop: Mapping[str, np.ndarray], where: str) -> None:
    missing = [c for c in INPUT_COLUMNS if c not in pop]
    if missing:
        raise io.SchemaError(f"{where}: missing column(s) {missing} of the population schema")
    for c in INPUT_COLUMNS:
        col = io.POPULATION[c]
        arr = np.asarray(pop[c])
        if arr.dtype.kind == "f" and not col.nullable:
            bad = ~np.isfinite(arr)
            if bad.any():
                raise io.SchemaError(f"{where}: column {c!r} has {int(bad.sum())} non-finite value(s) "
                                     f"(first rows {np.flatnonzero(bad)[:5].tolist()})")
    d = np.asarray(pop["distance_pc"])
    if np.any(d <= 0):
        raise io.SchemaError(f"{where}: column 'distance_pc' has non-positive value(s) "
                             f"(first rows {np.flatnonzero(d <= 0)[:5].tolist()})")


def _draws(seed: int, tile: np.ndarray, source_id: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-tile random blocks (N_NORMAL + N_NORMAL_LATE, N) normals and (N_UNIFORM, N) uniforms, float32."""
    n = tile.shape[0]
    z = np.empty((N_NORMAL + N_NORMAL_LATE, n), np.float32)
    u = np.empty((N_UNIFORM, n), np.float32)
    if n == 0:
        return z, u
    order = np.lexsort((source_id, tile))
    tiles_sorted = tile[order]
    starts = np.flatnonzero(np.r_[True, tiles_sorted[1:] != tiles_sorted[:-1]])
    ends = np.r_[starts[1:], n]
    for s, e in zip(starts, ends):
        rng = sky.tile_rng(seed, int(tiles_sorted[s]), "observe")
        idx = order[s:e]
        if idx[-1] - idx[0] == e - s - 1 and np.all(np.diff(idx) == 1):
            idx = slice(int(idx[0]), int(idx[-1]) + 1)      # the usual case: rows already in order
        z[:N_NORMAL, idx] = rng.standard_normal((N_NORMAL, e - s), dtype=np.float32)
        u[:, idx] = rng.random((N_UNIFORM, e - s), dtype=np.float32)
        z[N_NORMAL:, idx] = rng.standard_normal((N_NORMAL_LATE, e - s), dtype=np.float32)
    return z, u


def _has_photometry(pop: Mapping[str, np.ndarray]) -> np.ndarray:
    """Stars the surveys can see: not remnants, with T_eff, log g and L."""
    return (~np.asarray(pop["is_remnant"], bool) & np.isfinite(np.asarray(pop["teff_k"], np.float32))
            & np.isfinite(np.asarray(pop["logg"], np.float32))
            & np.isfinite(np.asarray(pop["log10_lum_lsun"], np.float32)))


def _companions(age, mass, feh, eligible, u, isochrones, cfg):
    """Unresolved companions: (rows that have one on the model grid, their mass ratios q, the companions'
    log10 T_eff / log g / log10 L from the isochrones). ``u``: the tile's uniforms (``_draws``)."""
    bi = np.flatnonzero(eligible & (u[US["binary"]] < cfg["binary_fraction"]))
    q = cfg["binary_q_min"] + (1.0 - cfg["binary_q_min"]) * u[US["binary_q"], bi]
    comp = isochrones.interpolate(age[bi], np.log10(q * mass[bi]), feh[bi])
    ok = np.isfinite(comp["log10_teff"]) & np.isfinite(comp["logg"]) & np.isfinite(comp["log10_lum_lsun"])
    return bi[ok], q[ok], {k: v[ok] for k, v in comp.items()}


def companion_mass_ratio(pop: Mapping[str, np.ndarray], isochrones, seed: int,
                         cfg: Mapping | None = None) -> np.ndarray:
    """Simulation truth for diagnostics: per population row, the mass ratio q of the unresolved companion that
    ``observe_population(pop, ..., seed, cfg)`` adds, or 0 (single star, no photometry, companion off the
    model grid, or no isochrones given). The same draws as the catalog, so it can be joined to it."""
    cfg = merge_config(cfg)
    n = len(pop["source_id"])
    out = np.zeros(n, np.float32)
    if isochrones is None or cfg["binary_fraction"] <= 0 or n == 0:
        return out
    _, u = _draws(seed, np.asarray(pop["tile"], np.int64), np.asarray(pop["source_id"], np.int64))
    f32 = {k: np.asarray(pop[k], np.float32) for k in ("log10_age_yr", "initial_mass_msun", "feh")}
    bi, q, _ = _companions(f32["log10_age_yr"], f32["initial_mass_msun"], f32["feh"], _has_photometry(pop), u,
                           isochrones, cfg)
    out[bi] = q
    return out


def _add_flux(m1: np.ndarray, m2: np.ndarray) -> np.ndarray:
    """Magnitude of the sum of two fluxes (m2 NaN adds nothing)."""
    f = np.power(np.float32(10.0), np.float32(-0.4) * m1)
    f2 = np.where(np.isfinite(m2), np.power(np.float32(10.0), np.float32(-0.4) * np.nan_to_num(m2, nan=99.0)), 0)
    return (np.float32(-2.5) * np.log10(f + f2)).astype(np.float32)


def observe_population(pop: Mapping[str, np.ndarray], bc: BCGrid, isochrones=None, seed: int = 0,
                       cfg: Mapping | None = None, where: str = "population") -> tuple[dict, dict]:
    """Observe a population (dict of numpy arrays with INPUT_COLUMNS).

    Returns ``(columns, meta)``: a dict of catalog columns (NaN = null; convert with
    ``io.to_table(columns, io.CATALOG)``) and the counts for the file metadata. ``isochrones``
    (an ``IsochroneGrid``) is needed for unresolved binaries; without it none are added.
    """
    cfg = merge_config(cfg)
    _check_inputs(pop, where)
    n = len(pop["source_id"])
    source_id = np.asarray(pop["source_id"], np.int64)
    tile = np.asarray(pop["tile"], np.int64)
    teff = np.asarray(pop["teff_k"], np.float32)
    logg = np.asarray(pop["logg"], np.float32)
    lum = np.asarray(pop["log10_lum_lsun"], np.float32)
    feh = np.asarray(pop["feh"], np.float32)
    age = np.asarray(pop["log10_age_yr"], np.float32)
    mass = np.asarray(pop["initial_mass_msun"], np.float32)
    dist = np.asarray(pop["distance_pc"], np.float32)
    av = np.asarray(pop["av_mag"], np.float32)
    rv = np.asarray(pop["rv"], np.float32)
    has_disk = np.asarray(pop["has_disk"], bool)
    remnant = np.asarray(pop["is_remnant"], bool)
    has_phot = _has_photometry(pop)

    z, u = _draws(seed, tile, source_id)
    ra, dec = galactic_to_icrs(pop["l"], pop["b"])

    # 1. photometry of the primary
    mags = np.full((n, len(io.MAGNITUDES)), np.nan, np.float32)
    idx = np.flatnonzero(has_phot)
    rv_arg = rv[idx] if cfg["rv_correction"] else None
    mags[idx] = bc.magnitudes(teff[idx], logg[idx], lum[idx], feh[idx], av[idx], dist[idx], rv_arg)

    # 2. unresolved binaries
    n_bin = 0
    if isochrones is not None and cfg["binary_fraction"] > 0:
        bi, _, okq = _companions(age, mass, feh, has_phot, u, isochrones, cfg)
        m2 = bc.magnitudes(10.0 ** okq["log10_teff"], okq["logg"], okq["log10_lum_lsun"], feh[bi], av[bi],
                           dist[bi], rv[bi] if cfg["rv_correction"] else None)
        mags[bi] = _add_flux(mags[bi], m2)
        n_bin = int(bi.size)
    elif cfg["binary_fraction"] > 0:
        log.warning("%s: no isochrone grid given, unresolved binaries are not added", where)

    # 3. tracers
    mags, alpha = tracers.disk_excess(mags, has_disk & has_phot, z[ZS["disk_alpha"]], z[ZS["disk_rk"]], cfg["disk"])
    var = (tracers.variability_sigma(age, has_disk, z[ZS["variability"]], u_field=u[US["field_variable"]],
                                     z_field=z[ZS["field_variability"]]) if cfg["variability"] else None)
    ewha = tracers.halpha_ew(teff, age, has_disk, z[ZS["halpha"]], u[US["accretor"]], cfg["halpha"])
    ewli = tracers.lithium_ew(teff, mass, age, z[ZS["lithium"]])

    # 4. surveys
    loss = cfg["random_loss"]
    keep = {s: has_phot & (u[US[f"loss_{s}"]] >= np.float32(loss[s])) for s in io.SURVEYS}
    vg = var[:, :3] if var is not None else None
    g = gaia.observe(mags[:, :3], 1000.0 / dist.astype(np.float64), vg, z[ZS["gaia"]], u[US["gaia"]],
                     keep["gaia"], cfg["gaia"], z_transits=z[ZS["gaia_transits"]],
                     sin_beta=gaia.sin_ecliptic_latitude(ra, dec), z_sigma=z[ZS["gaia_sigma"]])
    t = tmass.observe(mags[:, 3:6], var[:, 3:6] if var is not None else None, z[ZS["tmass"]], u[US["tmass"]],
                      keep["tmass"], cfg["tmass"])
    w = wise.observe(mags[:, 6:10], np.asarray(pop["b"]), var[:, 6:10] if var is not None else None,
                     z[ZS["wise"]], u[US["wise"]], keep["wise"], cfg["wise"])
    truth = {"teff_k": teff, "logg": logg, "feh": feh, "ewli": ewli, "ewha": ewha}
    s = lamost.observe(mags[:, 0], dec, truth, z[ZS["lamost"]], u[US["lamost"]], keep["lamost"], cfg["lamost"])

    cols: dict[str, np.ndarray] = {"source_id": source_id, "tile": np.asarray(pop["tile"], np.int32),
                                   "l": np.asarray(pop["l"], np.float64), "b": np.asarray(pop["b"], np.float64),
                                   "ra": ra, "dec": dec}
    for part in (g, t, w, s):
        cols.update({k: v for k, v in part.items() if k != "detected"})
    mask = np.zeros(n, np.int32)
    for bit, name in enumerate(io.MEASUREMENT_BITS):
        mask |= np.isfinite(cols[name]).astype(np.int32) << bit
    cols["survey_mask"] = mask
    meta = {
        "n_rows": int(n), "n_remnant": int(remnant.sum()),
        "n_without_parameters": int((~remnant & ~has_phot).sum()),
        "n_with_photometry": int(has_phot.sum()), "n_binaries": n_bin, "n_disk": int((has_disk & has_phot).sum()),
        "n_detected": {"gaia": int(g["detected"].sum()), "tmass": int(t["detected"].sum()),
                       "wise": int(w["detected"].sum()), "lamost": int(s["detected"].sum()),
                       "any": int((mask != 0).sum())},
        "seed": int(seed),
    }
    return cols, meta


def read_population(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read the columns the stage needs from a population file, validated (file and column named)."""
    table = io.read_table(path, io.POPULATION, columns=list(INPUT_COLUMNS))
    out = {}
    for c in INPUT_COLUMNS:
        arr = table.column(c)
        if pa.types.is_floating(arr.type):
            out[c] = arr.to_numpy(zero_copy_only=False)   # nulls -> NaN
        else:
            out[c] = np.asarray(arr.to_numpy(zero_copy_only=False))
    return out


def run_observe(population_path: str | os.PathLike, output_path: str | os.PathLike, seed: int,
                  cfg: Mapping | None = None, bc_path: str | os.PathLike | None = None,
                  isochrones_path: str | os.PathLike | None = None) -> dict:
    """Entry point of ``rule observe``: read, observe, write the catalog atomically; returns the metadata."""
    t0 = time.perf_counter()
    pop = read_population(population_path)
    bc = load_bc_grid(bc_path)
    iso = None
    if isochrones_path is not None:
        from ysocensus.stars.tracks import IsochroneGrid

        iso = IsochroneGrid.load(isochrones_path)
    cols, meta = observe_population(pop, bc, iso, seed, cfg, where=str(population_path))
    meta["config"] = merge_config(cfg)
    # no run timing in the file's metadata: the same inputs give the same bytes (issue 23, point 8)
    io.write_table(cols, output_path, io.CATALOG, metadata=meta)
    log.info("%s: %d rows, detected %s, %.2f s", output_path, meta["n_rows"], meta["n_detected"],
             time.perf_counter() - t0)
    return meta
