"""Stage 1 driver: the Milky Way population of each HEALPix tile, written as one Parquet file per job chunk.

For a tile (NESTED pixel at ``sky.nside``) every random number comes from ``sky.tile_rng(seed, tile,
"population")`` (smooth components) or from per-cluster streams of the global seed (young clusters), so a
tile's rows do not depend on the chunking or on which other tiles run.

Smooth components (``galaxy.components``): the tile's cone between ``distance_min_pc`` and ``distance_max_pc``
is cut into volume elements (HEALPix sub-pixels at ``sampling.sub_nside`` x shells of ``sampling.shell_pc``);
the expected number of stars of a component in an element is density (at the volume-weighted midpoint) x
volume x stars per Msun formed (IMF) x thinning fraction, and the count is a Poisson draw of that mean (the
thinned Poisson process of the full population: a kept star has ``weight`` = 1/fraction). Each star is placed
uniformly inside its element (a random descendant pixel at nside 2^29 and a distance uniform in volume),
gets an age uniform within its component's age range (constant star formation; never younger than
0.5 Myr = the start of BHAC15), [Fe/H] from the component's distribution with the thin disk's radial
gradient (clipped to the isochrone grid), an IMF mass, stellar parameters from the isochrone grid
(``stars.tracks``), A_V from the dust model at its position, R_V ~ N(mean, sigma) clipped, and a disk with
probability exp(-age / disk_efold_myr).

Near young structure the field is thinned less: a field star (old or young field) within
``near_young_sigmas`` x sigma of an association's centre (``galaxy.young.near_young_zones``) is kept with
fraction max(f, ``thinning.near_young``) instead of its component's f, and weighs 1/that. Where young stars
live, the training mix then holds old field stars at a weight ratio of ~10 to them instead of 1000, so a young
star's small old tail of proposals does not take over its population posterior (``model.prior_ratio``). It stays
an exact thinned Poisson process without generating the whole tile at the higher fraction: volume elements that
may touch a zone get the expected count at the higher fraction, and a star placed in one of them but outside
every zone is kept with probability f / f_high (a uniform from the tile's stream, drawn only in batches that
have such elements: without zones the rows are those of the stage without the feature).

Young structure (``galaxy.young``) adds the stars of clusters and associations that fall in the tile.

An optional magnitude cut (``galaxy.maglimit``) drops stars no survey could see, and remnants; the numbers
dropped (raw and weighted, per component) go into the Parquet metadata (``ysocensus.meta`` → ``tiles``), so
completeness can be computed later. Generation runs in batches of at most ``sampling.batch_stars`` stars and
a chunk holds at most ``SPILL_ROWS`` rows in memory (beyond, rows are spilled to a staging file row group by
row group), so memory stays bounded whatever the tile or chunk size (≈ 1 GB at most). Counts per tile: ``io.read_metadata(path)["tiles"][str(tile)]["components"][name]``
with ``generated``, ``generated_weighted``, ``kept``, ``dropped``, ``dropped_weighted``, ``remnants``,
``no_parameters`` (weighted = the sum of the stars' weights, 1/fraction each).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np
import pyarrow as pa

from . import io
from .galaxy import COMPONENTS, SMOOTH_COMPONENTS
from .galaxy.budget import FIELD_COMPONENT
from .galaxy.components import Galaxy, smooth_components
from .galaxy.imf import IMF
from .galaxy.young import cluster_stars, clusters_from_config, near_structure, near_young_zones
from .sky import source_ids, tile_rng
from .stars.empirical import grid_correction, partial_correction, pre_main_sequence_amplitude

log = logging.getLogger(__name__)

NSIDE_FINE = 1 << 29
MIN_LOG_AGE = 5.7  # 0.5 Myr: youngest age simulated (BHAC15 starts here; MIST has holes below)
_COMP_INDEX = {c: i for i, c in enumerate(COMPONENTS)}


@dataclass
class Context:
    """Everything a tile needs, built once per job."""

    cfg: dict
    seed: int
    nside: int
    grid: object          # stars.tracks.IsochroneGrid
    dust: object          # anything with av(l, b, d)
    imf: IMF
    galaxy: Galaxy
    clusters: object      # galaxy.young.Clusters
    maglim: object | None
    #: (centres [n, 3] heliocentric pc, radii [n] pc) where the field is thinned by ``thinning.near_young``
    #: (``galaxy.young.near_young_zones``; global, so a tile's rows do not depend on which other tiles run)
    zones: tuple = field(default_factory=lambda: (np.zeros((0, 3)), np.zeros(0)))
    #: the young field's kept fraction per age bin, net of the named structure (``galaxy.budget``), or None
    budget: object | None = None
    #: the empirical T_eff correction the isochrone grid carries (``stars.empirical``), or None
    correction: object | None = None

    @classmethod
    def create(cls, cfg: Mapping, seed: int, nside: int, grid, dust) -> "Context":
        import healpy  # noqa: F401  (slow first import: keep it out of the per-tile timings)

        from .config import section

        cfg = section("population", cfg)
        check_config(cfg)
        imf_cfg = cfg["imf"]
        imf = IMF(imf_cfg["kind"], imf_cfg["mass_min_msun"], imf_cfg["mass_max_msun"])
        lo_m = 10 ** grid.axes["log10_mass"][0]
        if imf.mass_min < lo_m * 0.999:
            raise ValueError(f"population.imf.mass_min_msun = {imf.mass_min} is below the isochrone grid's "
                             f"lowest mass {lo_m:.3g} Msun (stellar_models.log10_mass_range)")
        gal = cfg["galaxy"]
        comps = {k: v for k, v in smooth_components(gal["bulge_rho0_msun_pc3"]).items() if k in cfg["components"]}
        galaxy = Galaxy(comps, gal["r_sun_pc"], gal["z_sun_pc"])
        clusters = clusters_from_config(cfg["young"], seed)
        maglim = None
        if cfg["magnitude_limit"]["enabled"]:
            from .galaxy.maglimit import MagnitudeLimit

            maglim = MagnitudeLimit(cfg["magnitude_limit"])
        return cls(cfg, int(seed), int(nside), grid, dust, imf, galaxy, clusters, maglim,
                   near_young_zones(cfg, seed, clusters), young_field_budget(cfg, galaxy, clusters),
                   grid_correction(grid))

    def near_fraction(self, f: float) -> float:
        """The fraction kept inside the zones of a field component thinned to ``f`` elsewhere."""
        return max(float(f), float(self.cfg["thinning"]["near_young"])) if self.zones[1].size else float(f)


def check_config(cfg: Mapping) -> None:
    """Clear errors for bad values the schema cannot express."""
    unknown = [c for c in cfg["components"] if c not in SMOOTH_COMPONENTS]
    if unknown:
        raise ValueError(f"population.components: unknown component(s) {unknown}; known: {list(SMOOTH_COMPONENTS)}")
    d0, d1 = cfg["distance_min_pc"], cfg["distance_max_pc"]
    if not 0 <= d0 < d1:
        raise ValueError(f"population: need 0 <= distance_min_pc < distance_max_pc, got {d0}, {d1}")
    for k, f in cfg["thinning"].items():
        if not 0 < f <= 1:
            raise ValueError(f"population.thinning.{k}: {f} is not in (0, 1]")
    _check_near_young(cfg)


def _check_near_young(cfg: Mapping) -> None:
    """Refuse ``thinning.near_young`` equal to the larger of the field's two fractions when they differ (a weight
    step at ``young_field_age_max_myr``) and there are zones: the field near young structure would then carry a
    far field weight on the wrong side of the step (e.g. old stars at the young field's 50), and the prior ratio,
    which finds the far field's classes by those weights to tilt them (``model.prior_ratio.FieldTilt``), would
    give its old proposals 1000 instead of 50. Any other value is consistent."""
    th = cfg["thinning"]
    lo, hi = sorted((float(th["field"]), float(th["young_field"])))
    step = lo < hi and cfg["young_field_age_max_myr"] > 0 and FIELD_COMPONENT in cfg["components"]
    zones = cfg.get("near_young_sigmas", 0) > 0 and cfg["young"]["enabled"]
    if step and zones and np.isclose(th.get("near_young", lo), hi, rtol=1e-3):
        raise ValueError(f"population.thinning.near_young = {th['near_young']} equals the larger field fraction "
                         f"({hi}): near young structure the field would share a far-field weight across the step at "
                         f"young_field_age_max_myr, which the prior ratio cannot tell apart; use another value (above "
                         f"{hi}: one weight of its own) or near_young_sigmas 0 (no zones)")


# ------------------------------------------------------------------------------------------------
# smooth components
# ------------------------------------------------------------------------------------------------
def volume_elements(nside: int, tile: int, cfg: Mapping):
    """Sub-pixels and shells of the tile's cone: (sub-pixel ids, their nside, shell edges, element centres, volumes)."""
    import healpy as hp

    sub_nside = max(int(cfg["sampling"]["sub_nside"]), nside)
    k2 = (sub_nside // nside) ** 2
    sub = np.arange(tile * k2, (tile + 1) * k2, dtype=np.int64)
    vec = np.stack(hp.pix2vec(sub_nside, sub, nest=True), axis=1)
    d0, d1, step = float(cfg["distance_min_pc"]), float(cfg["distance_max_pc"]), float(cfg["sampling"]["shell_pc"])
    n_sh = max(1, int(np.ceil((d1 - d0) / step)))
    edges = np.linspace(d0, d1, n_sh + 1)
    omega = 4 * np.pi / (12 * sub_nside**2)
    r_mid = ((edges[:-1] ** 3 + edges[1:] ** 3) / 2) ** (1 / 3)
    vol = omega / 3 * (edges[1:] ** 3 - edges[:-1] ** 3)
    pos = vec[:, None, :] * r_mid[None, :, None]            # (n_sub, n_sh, 3)
    return sub, sub_nside, edges, pos, vol


def near_elements(ctx: Context, sub_nside: int, edges: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """[n_sub, n_sh] bool: volume elements that may hold a point of a zone (``ctx.zones``).

    Conservative: a point of an element lies within pad = r1 · α + (r1 − r0) of its reference point ``pos``
    (r1, r0 its shell's edges; α = 1.5 × healpy's largest centre-to-corner angle, the margin because pixel edges
    are not great circles), so every element that touches a zone is flagged; flagging more costs only time
    (stars of a flagged element outside every zone are thinned back). Each zone is tested only on the shells it
    can reach."""
    import healpy as hp

    centres, radii = ctx.zones
    near = np.zeros(pos.shape[:2], bool)
    if radii.size == 0:
        return near
    pad = edges[1:] * 1.5 * hp.max_pixrad(sub_nside) + np.diff(edges)  # pc, per shell
    r_mid = np.linalg.norm(pos[0], axis=-1)                           # pc, per shell
    for c, r in zip(centres, radii):
        sh = np.flatnonzero(np.abs(r_mid - np.linalg.norm(c)) < r + pad)
        if sh.size:
            s = slice(sh[0], sh[-1] + 1)
            near[:, s] |= near_structure(pos[:, s, 0], pos[:, s, 1], pos[:, s, 2], c[None], [r], pad[s])
    return near


def young_field_budget(cfg: Mapping, galaxy, clusters):
    """The young field net of the named structure (``galaxy.budget``; ``young_field_budget`` config), or None (off,
    no young structure, no young field)."""
    from .galaxy.budget import field_budget

    b = cfg.get("young_field_budget") or {}
    t_young = float(cfg["young_field_age_max_myr"])
    if not b.get("enabled") or not cfg["young"]["enabled"] or t_young <= 0 or FIELD_COMPONENT not in galaxy.components:
        return None
    edges = [0.0] + [float(e) for e in b["age_edges_myr"] if 0 < e < t_young] + [t_young]
    budget = field_budget(galaxy, clusters, float(b["radius_pc"]), edges)
    log.info("young field net of the named structure within %.0f pc: %s", b["radius_pc"], budget.to_dict())
    return budget


def _young_field_rows(ctx: Context, name: str, lo: float, hi: float, t_young: float) -> list:
    """The young field's rows of ``_component_table``: one (age range, kept fraction) per bin of the budget, or one
    row for the whole range without a budget. Ages in Gyr."""
    f = ctx.cfg["thinning"]["young_field"]
    if ctx.budget is None:
        return [("young_field", name, f, (lo, min(t_young, hi)), (min(t_young, hi) - lo) / (hi - lo))]
    e = ctx.budget.edges_myr / 1000.0
    return [("young_field", name, f, (a0, a1), (a1 - a0) / (hi - lo) * k)
            for a0, a1, k in zip(e[:-1], e[1:], ctx.budget.keep) if k > 0]


def _component_table(ctx: Context):
    """(name, density component, thinning fraction, age range in Gyr, density factor) of every smooth sub-component."""
    cfg = ctx.cfg
    t_young = cfg["young_field_age_max_myr"] / 1000.0
    rows = []
    for name, comp in ctx.galaxy.components.items():
        f = cfg["thinning"]["field"]
        lo, hi = comp.age_gyr
        if name == FIELD_COMPONENT and t_young > 0:
            frac = (min(t_young, hi) - lo) / (hi - lo)
            rows.extend(_young_field_rows(ctx, name, lo, hi, t_young))
            if frac < 1:
                rows.append((name, name, f, (t_young, hi), 1 - frac))
        else:
            rows.append((name, name, f, (lo, hi), 1.0))
    return rows


def element_fractions(ctx: Context, f: float, near: np.ndarray) -> np.ndarray:
    """The fraction at which a component thinned to ``f`` is generated in each volume element: ``ctx.near_fraction``
    in the elements that may touch a zone (``near``, from ``expected_counts``), f elsewhere."""
    return np.where(near, ctx.near_fraction(f), float(f))


def expected_counts(ctx: Context, tile: int) -> tuple[list, np.ndarray, tuple]:
    """Expected (thinned) star counts per sub-component and volume element of a tile, ``lam`` [rows, elements],
    at each element's fraction (``element_fractions``): ``lam / fraction`` is the expected number of real stars,
    whatever the zones. Returns (rows of ``_component_table``, lam, (sub-pixels, sub_nside, shell edges, near
    [elements] bool: the elements that may touch a zone, ``near_elements``))."""
    sub, sub_nside, edges, pos, vol = volume_elements(ctx.nside, tile, ctx.cfg)
    rows = _component_table(ctx)
    x, y, z = pos[..., 0], pos[..., 1], pos[..., 2]
    near = near_elements(ctx, sub_nside, edges, pos).ravel()
    lam = np.empty((len(rows), x.size))
    cache = {}
    for k, (name, dens_name, f, _, factor) in enumerate(rows):
        if dens_name not in cache:
            cache[dens_name] = (ctx.galaxy.density(dens_name, x, y, z) * vol[None, :]).ravel()
        lam[k] = cache[dens_name] * factor * element_fractions(ctx, f, near) * ctx.imf.number_per_msun
    return rows, lam, (sub, sub_nside, edges, near)


def _smooth_batches(ctx: Context, tile: int, rng: np.random.Generator):
    """Yield (component name, thinning fraction per star, star dict) batches of the smooth components of a tile."""
    rows, lam, (sub, sub_nside, edges, near) = expected_counts(ctx, tile)
    counts = rng.poisson(lam)
    n_sh = edges.size - 1
    batch = int(ctx.cfg["sampling"]["batch_stars"])
    k_fine = (NSIDE_FINE // sub_nside) ** 2
    for k, (name, dens_name, f, (a_lo, a_hi), _) in enumerate(rows):
        c = counts[k]
        if c.sum() == 0:
            continue
        comp = ctx.galaxy.components[dens_name]
        csum = np.cumsum(c)
        start = 0
        while start < c.size:
            # elements [start, stop) hold at most `batch` stars (at least one element)
            base = csum[start - 1] if start else 0
            stop = max(start + 1, int(np.searchsorted(csum, base + batch, side="right")))
            elem = np.repeat(np.arange(start, stop), c[start:stop])
            start = stop
            n = elem.size
            if n == 0:
                continue
            i_sub, i_sh = np.divmod(elem, n_sh)
            pix = sub[i_sub] * k_fine + rng.integers(0, k_fine, n, dtype=np.int64)
            import healpy as hp

            vx, vy, vz = hp.pix2vec(NSIDE_FINE, pix, nest=True)
            r0, r1 = edges[i_sh], edges[i_sh + 1]
            d = np.cbrt(r0**3 + rng.random(n) * (r1**3 - r0**3))
            x, y, z = vx * d, vy * d, vz * d
            fs, keep = _zone_thinning(ctx, f, element_fractions(ctx, f, near[elem]), x, y, z, rng)
            if keep is not None:
                x, y, z, d, vx, vy, vz, fs = x[keep], y[keep], z[keep], d[keep], vx[keep], vy[keep], vz[keep], fs[keep]
                n = x.size
                if n == 0:
                    continue
            age_gyr = rng.uniform(a_lo, a_hi, n)
            log_age = np.maximum(np.log10(np.maximum(age_gyr, 1e-9)) + 9.0, MIN_LOG_AGE)
            feh = ctx.galaxy.feh_mean(dens_name, x, y) + comp.feh_sigma * rng.standard_normal(n)
            logm = ctx.imf.sample_log10(rng, n)
            u_disk = rng.random(n)
            u_rv = rng.standard_normal(n)
            u_pms = rng.random(n)
            yield name, fs, dict(x=x, y=y, z=z, d=d, vx=vx, vy=vy, vz=vz, log_age=log_age, feh=feh,
                                 logm=logm, u_disk=u_disk, u_rv=u_rv, u_pms=u_pms, cluster_id=None)


def _zone_thinning(ctx: Context, f: float, f_elem: np.ndarray, x, y, z, rng: np.random.Generator):
    """Per-star fraction and the stars kept, of stars placed at (x, y, z) (pc) in elements of fraction ``f_elem``.

    A star of an element generated at f_elem > f (``near_elements``) keeps f_elem inside a zone; outside every
    zone it is kept with probability f / f_elem and then has fraction f: the thinned Poisson process at f
    there, at f_elem in the zones. → (fractions [n], kept mask [n] or None when no star is in such an element:
    then no random number is drawn)."""
    fs = np.full(x.size, float(f))
    hi = np.flatnonzero(f_elem > f)
    if hi.size == 0:
        return fs, None
    inside = np.zeros(x.size, bool)
    inside[hi] = near_structure(x[hi], y[hi], z[hi], *ctx.zones)
    keep = inside | (rng.random(x.size) * f_elem < f)
    fs[inside] = f_elem[inside]
    return fs, keep


def _cluster_batches(ctx: Context, tile: int):
    """Yield the stars of young clusters / associations that fall inside the tile."""
    import healpy as hp

    cl = ctx.clusters
    if len(cl) == 0:
        return
    d0, d1 = ctx.cfg["distance_min_pc"], ctx.cfg["distance_max_pc"]
    f = ctx.cfg["thinning"]["young"]
    dist = np.sqrt(cl.x**2 + cl.y**2 + cl.z**2)
    ext = cl.extent_pc()
    near = (dist - ext <= d1) & (dist + ext >= d0)
    for i in np.flatnonzero(near):
        v = np.array([cl.x[i], cl.y[i], cl.z[i]]) / max(dist[i], 1e-9)
        if dist[i] > ext[i]:
            rad = np.arcsin(min(1.0, ext[i] / dist[i]))
            tiles = hp.query_disc(ctx.nside, v, rad, inclusive=True, nest=True)
            if tile not in tiles:
                continue
        s = cluster_stars(cl, i, ctx.seed, ctx.imf, f)
        if s["x"].size == 0:
            continue
        d = np.sqrt(s["x"] ** 2 + s["y"] ** 2 + s["z"] ** 2)
        pix = hp.vec2pix(ctx.nside, s["x"], s["y"], s["z"], nest=True)
        keep = (pix == tile) & (d >= d0) & (d <= d1)
        if not keep.any():
            continue
        out = {k: v[keep] for k, v in s.items()}
        out["d"] = d[keep]
        out["vx"], out["vy"], out["vz"] = out["x"] / out["d"], out["y"] / out["d"], out["z"] / out["d"]
        out["cluster_id"] = np.full(out["d"].size, cl.cluster_id[i], np.int32)
        yield ("young_association" if cl.kind[i] == 0 else "young_cluster"), np.full(out["d"].size, float(f)), out


def _properties(ctx: Context, name: str, frac: np.ndarray, s: dict) -> tuple[dict, dict]:
    """Stellar parameters, extinction and flags of a batch whose stars were kept with fractions ``frac`` [n];
    returns (kept columns, counts: weighted ones are sums of the stars' weights 1/frac)."""
    cfg = ctx.cfg
    grid = ctx.grid
    feh_ax = grid.axes["feh"]
    feh = np.clip(s["feh"], feh_ax[0], feh_ax[-1])
    log_age = np.minimum(s["log_age"], grid.axes["log10_age_yr"][-1])
    p = grid.interpolate(log_age, s["logm"], feh)
    if ctx.correction is not None:  # the correction's amplitude on the pre-main sequence, drawn per star
        pms = cfg["stellar_models"]["empirical_correction"]["pre_main_sequence"]
        f = pre_main_sequence_amplitude(log_age, s["u_pms"], pms["amplitude_range"], pms["age_myr"])
        p = partial_correction(p, s["logm"], ctx.correction, f)
    remnant = grid.is_remnant(log_age, s["logm"], feh)
    l = np.rad2deg(np.arctan2(s["vy"], s["vx"])) % 360.0
    b = np.rad2deg(np.arcsin(np.clip(s["vz"], -1.0, 1.0)))
    av = np.asarray(ctx.dust.av(l, b, s["d"]), np.float32)
    n = l.size
    if ctx.maglim is not None:
        keep = ctx.maglim.visible(p["log10_teff"], p["logg"], p["log10_lum_lsun"], s["d"], av)
    else:
        keep = np.ones(n, bool)
    w = 1.0 / np.asarray(frac, np.float64)
    counts = {"generated": int(n), "generated_weighted": float(w.sum()), "remnants": int(remnant.sum()),
              "no_parameters": int((~np.isfinite(p["log10_teff"]) & ~remnant).sum()),
              "kept": int(keep.sum()), "dropped": int(n - keep.sum()),
              "dropped_weighted": float(w[~keep].sum())}
    if not keep.all():
        idx = np.flatnonzero(keep)
        s = {k: (v[idx] if isinstance(v, np.ndarray) else v) for k, v in s.items()}
        p = {k: v[idx] for k, v in p.items()}
        l, b, av, remnant, feh, log_age, w = l[idx], b[idx], av[idx], remnant[idx], feh[idx], log_age[idx], w[idx]
    m = l.size
    rv_cfg = cfg["rv"]
    rv = np.clip(rv_cfg["mean"] + rv_cfg["sigma"] * s["u_rv"], rv_cfg["min"], rv_cfg["max"])
    age_myr = 10.0 ** (log_age - 6.0)
    has_disk = s["u_disk"] < np.exp(-age_myr / cfg["disk_efold_myr"])
    cols = {
        "l": l, "b": b, "distance_pc": s["d"].astype(np.float32),
        "x_pc": s["x"].astype(np.float32), "y_pc": s["y"].astype(np.float32), "z_pc": s["z"].astype(np.float32),
        "component": np.full(m, _COMP_INDEX[name], np.int8),
        "cluster_id": (s["cluster_id"] if s["cluster_id"] is not None else np.full(m, -1, np.int32)),
        "log10_age_yr": log_age.astype(np.float32),
        "initial_mass_msun": (10.0 ** s["logm"]).astype(np.float32),
        "feh": feh.astype(np.float32),
        "teff_k": (10.0 ** p["log10_teff"]).astype(np.float32),
        "logg": p["logg"], "log10_lum_lsun": p["log10_lum_lsun"],
        "radius_rsun": (10.0 ** p["log10_radius_rsun"]).astype(np.float32),
        "av_mag": av, "rv": rv.astype(np.float32), "has_disk": has_disk & ~remnant,
        "is_remnant": remnant, "weight": w.astype(np.float32),
    }
    return cols, counts


_FLOAT_COLS = {c.name for c in io.POPULATION.columns if pa.types.is_floating(c.dtype)}


def iter_tile(ctx: Context, tile: int, stats: dict) -> Iterator[pa.Table]:
    """Yield the tile's rows batch by batch (bounded memory); ``stats`` collects the per-component counts."""
    rng = tile_rng(ctx.seed, tile, "population")
    row0 = 0
    comps = stats.setdefault("components", {})
    for source in (_smooth_batches(ctx, tile, rng), _cluster_batches(ctx, tile)):
        for name, frac, s in source:
            cols, counts = _properties(ctx, name, frac, s)
            st = comps.setdefault(name, {k: 0 for k in counts})
            for k, v in counts.items():
                st[k] += v
            if cols["l"].size:
                table = _to_arrow([cols], tile, row0)
                row0 += table.num_rows
                yield table
    # no timings in the stats: they go into the file's metadata, which must be byte-reproducible
    stats["total"] = {k: sum(c[k] for c in comps.values()) for k in ("generated", "kept", "dropped", "remnants")}


def generate_tile(ctx: Context, tile: int) -> tuple[pa.Table, dict]:
    """The population table of one tile and its counts (per component: generated, kept, dropped, ...)."""
    stats: dict = {}
    tables = list(iter_tile(ctx, tile, stats))
    table = pa.concat_tables(tables) if tables else _to_arrow([], tile, 0)
    return table, stats


def _population_schema() -> pa.Schema:
    fields = []
    for f in io.POPULATION.arrow():
        if f.name == "component":
            f = pa.field("component", pa.dictionary(pa.int8(), pa.string()), nullable=False, metadata=f.metadata)
        fields.append(f)
    return pa.schema(fields, metadata=io.POPULATION.arrow().metadata)


POPULATION_ARROW = _population_schema()
_DICT = pa.array(COMPONENTS, pa.string())


def _to_arrow(parts: list[dict], tile: int, row0: int = 0) -> pa.Table:
    names = [f.name for f in POPULATION_ARROW]
    if parts:
        cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    else:
        cat = {k: np.empty(0, np.float32) for k in names}
        cat.update(l=np.empty(0), b=np.empty(0), component=np.empty(0, np.int8), cluster_id=np.empty(0, np.int32),
                   has_disk=np.empty(0, bool), is_remnant=np.empty(0, bool))
    n = cat["l"].size
    cat["source_id"] = source_ids(tile, row0 + n)[row0:]
    cat["tile"] = np.full(n, tile, np.int32)
    arrays = []
    for f in POPULATION_ARROW:
        v = cat[f.name]
        if f.name == "component":
            arrays.append(pa.DictionaryArray.from_arrays(pa.array(v.astype(np.int8)), _DICT))
        elif f.name in _FLOAT_COLS and f.nullable:
            v = np.asarray(v, f.type.to_pandas_dtype())
            arrays.append(pa.array(v, f.type, mask=~np.isfinite(v)))
        else:
            arrays.append(pa.array(np.asarray(v, f.type.to_pandas_dtype()), f.type))
    return pa.Table.from_arrays(arrays, schema=POPULATION_ARROW)


def run_population(tiles: Sequence[int], out_path, cfg: Mapping, seed: int, nside: int,
              isochrones_path, dust_path, dust_cfg: Mapping | None = None) -> dict:
    """Generate every tile of a job chunk and write them to one Parquet file (atomically)."""
    from .dust import dust_model
    from .config import section
    from .stars.tracks import IsochroneGrid

    if not tiles:
        raise ValueError("population: the chunk has no tile (empty tile selection)")
    grid = IsochroneGrid.load(isochrones_path)
    dcfg = section("dust", dust_cfg or {})
    dmax = section("population", cfg)["distance_max_pc"]
    if dcfg["model"] == "synthetic" and dcfg["los_distance_max_pc"] < dmax:
        raise ValueError(f"dust.los_distance_max_pc = {dcfg['los_distance_max_pc']} is below "
                         f"population.distance_max_pc = {dmax}: stars beyond the dust table would get too little A_V")
    dust = dust_model(dcfg, dust_path)
    ctx = Context.create(cfg, seed, nside, grid, dust)
    t0 = time.perf_counter()
    meta_tiles: dict = {}
    out_path = Path(out_path)
    with io.atomic_path(out_path) as final:
        stage = final.with_name(final.name + ".stream")
        try:
            rows, buffer = _stream_tiles(ctx, tiles, stage, meta_tiles)
            meta = {"tiles": meta_tiles, "nside": nside, "seed": seed, "thinning": ctx.cfg["thinning"],
                    "near_young_sigmas": ctx.cfg["near_young_sigmas"], "near_young_zones": int(ctx.zones[1].size),
                    "young_field_budget": ctx.budget.to_dict() if ctx.budget is not None else None,
                    "distance_pc": [ctx.cfg["distance_min_pc"], ctx.cfg["distance_max_pc"]],
                    "magnitude_limit": ctx.cfg["magnitude_limit"], "components": list(COMPONENTS),
                    "imf": {**ctx.cfg["imf"], "stars_per_msun": ctx.imf.number_per_msun},
                    "clusters": {str(int(c)): n for c, n in zip(ctx.clusters.cluster_id, ctx.clusters.complex_name)}}
            _finalise(stage, buffer, final, meta)
        finally:
            if stage.exists():
                stage.unlink()
    generated = sum(m["total"]["generated"] for m in meta_tiles.values())
    summary = {"tiles": len(tiles), "generated": generated, "rows": rows,
               "seconds": round(time.perf_counter() - t0, 3)}
    log.info("chunk written to %s: %s", out_path, summary)
    return summary


#: rows per Parquet row group
ROW_GROUP_ROWS = 1 << 20
#: a chunk keeps at most this many rows in memory; beyond, its rows are spilled to a staging file row group
#: by row group and copied into the final file at the end (the metadata is known only then)
SPILL_ROWS = 1 << 21


def _stream_tiles(ctx: Context, tiles: Sequence[int], stage: Path, meta_tiles: dict) -> tuple[int, list]:
    """Generate every tile's batches (validated); spill to ``stage`` when more than SPILL_ROWS are held.

    Returns the number of rows and the batches still in memory (all of them if nothing was spilled).
    """
    import pyarrow.parquet as pq

    rows = 0
    buffer: list[pa.Table] = []
    n_buf = 0
    writer = None
    try:
        for t in tiles:
            t1 = time.perf_counter()
            stats: dict = {}
            for batch in iter_tile(ctx, int(t), stats):
                io.validate_table(batch, io.POPULATION, f"{stage.name} (tile {t})")
                buffer.append(batch)
                n_buf += batch.num_rows
                rows += batch.num_rows
                if n_buf >= SPILL_ROWS:
                    if writer is None:
                        writer = pq.ParquetWriter(stage, POPULATION_ARROW, compression="zstd")
                    writer.write_table(pa.concat_tables(buffer), row_group_size=ROW_GROUP_ROWS)
                    buffer, n_buf = [], 0
            meta_tiles[str(int(t))] = stats
            log.info("tile %d: %d generated, %d kept (%.2f s)", t, stats["total"]["generated"],
                     stats["total"]["kept"], time.perf_counter() - t1)
    finally:
        if writer is not None:
            writer.close()
    return rows, buffer


def _finalise(stage: Path, buffer: list, final: Path, meta: dict) -> None:
    """Write ``final``: spilled row groups (if any) then the in-memory batches, with io.write_table's metadata."""
    import json

    import pyarrow.parquet as pq

    schema = POPULATION_ARROW.with_metadata({**(POPULATION_ARROW.metadata or {}),
                                             b"ysocensus.schema": io.POPULATION.name.encode(),
                                             b"ysocensus.meta": json.dumps(meta, sort_keys=True).encode()})
    with pq.ParquetWriter(final, schema, compression="zstd") as writer:
        if stage.exists():
            pf = pq.ParquetFile(stage)
            for i in range(pf.num_row_groups):
                writer.write_table(pf.read_row_group(i).replace_schema_metadata(schema.metadata),
                                   row_group_size=ROW_GROUP_ROWS)
        if buffer:
            table = pa.concat_tables(buffer).combine_chunks().replace_schema_metadata(schema.metadata)
            writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        elif not stage.exists():
            writer.write_table(_to_arrow([], 0).replace_schema_metadata(schema.metadata))
