"""Physics of the sampled population: counts, scale heights, AMR, luminosity function, HR diagram, disks."""

import numpy as np
import pytest

from ysocensus import population as P
from ysocensus.dust import DustField
from ysocensus.config import section
from ysocensus.galaxy.young import complexes_from_config
from ysocensus.sky import tile_of
from ysocensus.stars.tracks import IsochroneGrid

NO_CUT = {"magnitude_limit": {"enabled": False}}


@pytest.fixture(scope="module")
def grid():
    return IsochroneGrid.build(log10_mass_step=0.01)


@pytest.fixture(scope="module")
def dust():
    cfg = section("dust", {"grid_step_pc": 25.0, "grid_extent_xy_pc": 500.0, "grid_extent_z_pc": 250.0,
                           "los_nside": 16, "los_distance_max_pc": 3000.0})
    return DustField.build(cfg, complexes_from_config(section("population")["young"]), 1)


def ctx_for(grid, dust, nside=2, seed=5, **cfg):
    return P.Context.create(cfg, seed, nside, grid, dust)


def arrays(table, *cols):
    return [table.column(c).to_numpy(zero_copy_only=False) for c in cols]


def test_counts_match_integrated_density(grid, dust):
    """Star counts in a volume = the integrated density within Poisson errors; the element integration
    agrees with an independent Monte-Carlo integral of the density law over the same cone."""
    ctx = ctx_for(grid, dust, components=["thin3", "thick"], distance_max_pc=400.0, thinning={"field": 0.05},
                  young={"enabled": False}, **NO_CUT)
    tiles = [0, 13, 26, 40]
    n_obs = lam_tot = 0
    for t in tiles:
        rows, lam, _ = P.expected_counts(ctx, t)
        lam_tot += lam.sum()
        table, st = P.generate_tile(ctx, t)
        n_obs += table.num_rows
    assert abs(n_obs - lam_tot) < 4 * np.sqrt(lam_tot)
    # independent Monte-Carlo integral over tile 26's cone (healpy pixel area, uniform in volume)
    import healpy as hp

    rng = np.random.default_rng(0)
    n = 400_000
    v = rng.normal(size=(n, 3))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    inside = hp.vec2pix(2, v[:, 0], v[:, 1], v[:, 2], nest=True) == 26
    r = 400.0 * rng.random(n) ** (1 / 3)
    p = v * r[:, None]
    rho = ctx.galaxy.density("thin3", *p.T)
    mc = (4 / 3 * np.pi * 400.0**3) * np.mean(np.where(inside, rho, 0.0))
    rows, lam, _ = P.expected_counts(ctx, 26)
    k = [r[0] for r in rows].index("thin3")
    quad = lam[k].sum() / (0.05 * ctx.imf.number_per_msun)
    assert quad == pytest.approx(mc, rel=0.02)


def test_scale_heights_recovered_per_age_bin(grid, dust):
    """Density-weighted mean height of each thin-disk bin, estimated from the sampled stars of the four
    north-polar tiles at nside 4 (weights 1/d^2 undo the cone's volume growth), matches the same quantity
    integrated from the density law on an independent fine grid."""
    import healpy as hp

    nside = 4
    l, b = hp.pix2ang(nside, np.arange(12 * nside**2), nest=True, lonlat=True)
    poles = np.flatnonzero(b > 60).tolist()
    d0, d1 = 20.0, 1500.0
    # fine grid over the same cones for the expectation
    fine = 64
    k2 = (fine // nside) ** 2
    pix = np.concatenate([np.arange(t * k2, (t + 1) * k2) for t in poles])
    vec = np.stack(hp.pix2vec(fine, pix, nest=True), axis=1)
    dd = np.arange(d0 + 1.0, d1, 2.0)
    pos = vec[:, None, :] * dd[None, :, None]
    for i, f in zip(range(1, 8), [1.0, 0.3, 0.2, 0.15, 0.1, 0.1, 0.1]):
        ctx = ctx_for(grid, dust, nside=nside, components=[f"thin{i}"], distance_min_pc=d0, distance_max_pc=d1,
                      young_field_age_max_myr=0.0, thinning={"field": f}, young={"enabled": False},
                      sampling={"sub_nside": 64, "shell_pc": 5.0}, **NO_CUT)
        z_all, d_all = [], []
        for t in poles:
            table, _ = P.generate_tile(ctx, t)
            z, d = arrays(table, "z_pc", "distance_pc")
            z_all.append(z), d_all.append(d)
        z, d = np.concatenate(z_all).astype(float), np.concatenate(d_all).astype(float)
        assert z.size > 150, f"thin{i}: too few stars ({z.size}) for the test"
        w = 1.0 / d**2
        zg = z + ctx.galaxy.z_sun
        est = np.sum(w * zg) / np.sum(w)
        rho = ctx.galaxy.density(f"thin{i}", pos[..., 0], pos[..., 1], pos[..., 2])
        expect = np.sum(rho * (pos[..., 2] + ctx.galaxy.z_sun)) / np.sum(rho)
        n_eff = np.sum(w) ** 2 / np.sum(w**2)
        err = np.sqrt(np.sum(w * (zg - est) ** 2) / np.sum(w)) / np.sqrt(n_eff)
        assert abs(est - expect) < 4 * err + 0.01 * expect, f"thin{i}: {est:.0f} vs {expect:.0f} pc"


def test_age_metallicity_relation_recovered(grid, dust):
    ctx = ctx_for(grid, dust, distance_max_pc=300.0, thinning={"field": 0.02, "young_field": 0.02},
                  young={"enabled": False}, **NO_CUT)
    tables = [P.generate_tile(ctx, t)[0] for t in (18, 19, 20, 21, 22, 23, 24, 25, 26, 27)]
    comp = np.concatenate([t.column("component").to_numpy(zero_copy_only=False).astype(str) for t in tables])
    feh = np.concatenate([t.column("feh").to_numpy() for t in tables])
    age = np.concatenate([t.column("log10_age_yr").to_numpy() for t in tables])
    expected = {"thin2": 0.03, "thin3": 0.03, "thin4": 0.01, "thin5": -0.07, "thin6": -0.14, "thin7": -0.37,
                "thick": -0.78}
    for name, mean in expected.items():
        sel = comp == name
        assert sel.sum() > 100
        assert np.mean(feh[sel]) == pytest.approx(mean, abs=0.03), name
    # ages inside each bin (constant star formation)
    sel = comp == "thin5"
    assert np.all((age[sel] >= np.log10(3e9) - 1e-5) & (age[sel] <= np.log10(5e9) + 1e-5))
    # AMR: older bins are more metal-poor
    means = [np.mean(feh[comp == n]) for n in ("thin4", "thin5", "thin6", "thin7", "thick")]
    assert np.all(np.diff(means) < 0)


def test_solar_neighbourhood_luminosity_function(grid, dust):
    """Within 30 pc: ~0.06-0.1 living stars per pc^3 and a luminosity function peaking at M_G ~ 9-13
    (Gaia Catalogue of Nearby Stars, Gaia Collaboration, Smart et al. 2021: main-sequence LF peaks near
    M_G ~ 10-12, total ~0.08 objects pc^-3; Reid, Gizis & Hawley 2002: peak at M_V ~ 12)."""
    from ysocensus.galaxy.maglimit import MagnitudeLimit

    ctx = ctx_for(grid, dust, distance_min_pc=0.0, distance_max_pc=30.0, thinning={"field": 1.0, "young_field": 1.0},
                  young={"enabled": False}, sampling={"sub_nside": 8, "shell_pc": 2.0}, **NO_CUT)
    tables = [P.generate_tile(ctx, t)[0] for t in range(48)]
    import pyarrow as pa

    t = pa.concat_tables(tables)
    teff, logg, lum, rem, w = arrays(t, "teff_k", "logg", "log10_lum_lsun", "is_remnant", "weight")
    alive = ~rem & np.isfinite(teff)
    vol = 4 / 3 * np.pi * 30.0**3
    dens = np.sum(w[alive]) / vol
    assert 0.05 < dens < 0.12
    mg = MagnitudeLimit({"gaia_g": 21.0}).magnitudes(np.log10(teff[alive]), logg[alive], lum[alive],
                                                     np.full(alive.sum(), 10.0), np.zeros(alive.sum()))["gaia_g"]
    hist, edges = np.histogram(mg, bins=np.arange(-2, 18, 1.0))
    peak = edges[np.argmax(hist)] + 0.5
    assert 9 <= peak <= 13
    # stars brighter than M_G = 5 (F/G and earlier): a few percent
    assert 0.02 < np.mean(mg < 5) < 0.15
    # remnants are flagged, have no parameters, and are ~5-15% of an old population's stars
    assert np.all(np.isnan(teff[rem]))
    assert 0.02 < rem.mean() < 0.2


def test_pms_above_main_sequence_and_disks(grid, dust):
    ctx = ctx_for(grid, dust, distance_max_pc=600.0, thinning={"field": 0.005, "young_field": 0.005},
                  **NO_CUT)
    import pyarrow as pa

    # tiles around Orion (l=209, b=-19) and Taurus (l=172, b=-15)
    tiles = sorted({int(tile_of(2, 209.0, -19.0)), int(tile_of(2, 172.0, -15.0))})
    t = pa.concat_tables([P.generate_tile(ctx, x)[0] for x in tiles])
    comp = t.column("component").to_numpy(zero_copy_only=False).astype(str)
    teff, lum, age, disk, cid = arrays(t, "teff_k", "log10_lum_lsun", "log10_age_yr", "has_disk", "cluster_id")
    young = np.isin(comp, ["young_cluster", "young_association"]) & (age < 6.5) & np.isfinite(teff)
    old = np.isin(comp, ["thin4", "thin5", "thin6", "thin7"]) & np.isfinite(teff) & (lum < 0.0)
    assert young.sum() > 200 and old.sum() > 50
    assert np.all(cid[young] >= 0) and np.all(cid[old] == -1)
    bins = np.linspace(3.5, 3.65, 4)
    for lo, hi in zip(bins[:-1], bins[1:]):
        sy = young & (np.log10(teff) >= lo) & (np.log10(teff) < hi)
        so = old & (np.log10(teff) >= lo) & (np.log10(teff) < hi)
        if sy.sum() > 10 and so.sum() > 10:
            assert np.median(lum[sy]) > np.median(lum[so]) + 0.5
    # disk fraction falls with age (e-folding 2.5 Myr)
    a = 10 ** (age - 6)
    f1 = disk[(comp != "thin1") & (a < 1.5)].mean()
    f2 = disk[(a > 5) & (a < 10)].mean()
    assert f1 > 0.4 and f2 < 0.15
    assert not disk[old].any()


def test_young_stars_in_complexes(grid, dust):
    ctx = ctx_for(grid, dust, distance_max_pc=600.0, thinning={"field": 0.001, "young_field": 0.001}, **NO_CUT)
    t, st = P.generate_tile(ctx, int(tile_of(2, 209.0, -19.0)))
    comp = t.column("component").to_numpy(zero_copy_only=False).astype(str)
    d, cid = arrays(t, "distance_pc", "cluster_id")
    names = np.array(ctx.clusters.complex_name)[np.searchsorted(ctx.clusters.cluster_id, cid[cid >= 0])]
    in_orion = names == "orion"
    assert in_orion.sum() > 1000
    assert np.median(d[cid >= 0][in_orion]) == pytest.approx(400, abs=40)
    assert set(np.unique(comp[cid >= 0])) <= {"young_cluster", "young_association"}


# ------------------------------------------------------------------------------------------------
# the near-young field: thinned less inside the zones of young structure (population.thinning.near_young)
# ------------------------------------------------------------------------------------------------
NEAR = dict(distance_max_pc=300.0, thinning={"field": 0.005, "young_field": 0.05, "near_young": 0.5},
            sampling={"sub_nside": 32, "shell_pc": 5.0}, **NO_CUT)
SCO_CEN = int(tile_of(2, 340.0, 15.0))  # Upper Sco, UCL, Lupus, rho Oph: zones of 8-60 pc within 160 pc


def _smooth(table):
    comp = table.column("component").to_numpy(zero_copy_only=False).astype(str)
    return np.flatnonzero(table.column("cluster_id").to_numpy() < 0), comp


def test_near_young_field_weights_per_star(grid, dust):
    """A field star inside a zone weighs 1/max(f, near_young), one outside 1/f (f: its component's fraction)."""
    from ysocensus.galaxy.young import near_structure

    ctx = ctx_for(grid, dust, **NEAR)
    assert ctx.zones[1].size > 50
    table, st = P.generate_tile(ctx, SCO_CEN)
    idx, comp = _smooth(table)
    x, y, z, w = (arrays(table, c)[0][idx] for c in ("x_pc", "y_pc", "z_pc", "weight"))
    inside = near_structure(x.astype(float), y.astype(float), z.astype(float), *ctx.zones)
    f = np.where(comp[idx] == "young_field", 0.05, 0.005)
    assert 100 < inside.sum() < inside.size - 100
    assert np.allclose(w, 1.0 / np.where(inside, np.maximum(f, 0.5), f))
    # per component, the metadata's weighted count is the sum of the stars' weights (no cut: all kept)
    for name in ("young_field", "thin3"):
        sel = comp[idx] == name
        assert st["components"][name]["generated_weighted"] == pytest.approx(w[sel].sum(), rel=1e-6)
    # young structure keeps its own weight (thinning.young = 1)
    assert np.all(arrays(table, "weight")[0][table.column("cluster_id").to_numpy() >= 0] == 1.0)


def test_near_young_thinning_keeps_the_weighted_counts(grid, dust):
    """The zones change how many stars are drawn, not how many real stars they stand for: expected counts
    divided by the element's fraction are the same with and without them, and the sum of the weights of the
    generated field stars matches that expectation in both (within Poisson noise)."""
    on = ctx_for(grid, dust, **NEAR)
    off = ctx_for(grid, dust, near_young_sigmas=0.0, **NEAR)
    rows, lam_on, (*_, near_on) = P.expected_counts(on, SCO_CEN)
    _, lam_off, (*_, near_off) = P.expected_counts(off, SCO_CEN)
    assert near_on.any() and not near_off.any()
    frac_on = np.stack([P.element_fractions(on, r[2], near_on) for r in rows])
    frac_off = np.stack([P.element_fractions(off, r[2], near_off) for r in rows])
    assert np.allclose(lam_on / frac_on, lam_off / frac_off, rtol=1e-12)
    assert lam_on.sum() > 1.5 * lam_off.sum() and set(np.unique(frac_off)) == {0.005, 0.05}
    assert set(np.unique(frac_on)) == {0.005, 0.05, 0.5}
    expect = (lam_off / frac_off).sum()
    for ctx in (on, off):
        table, _ = P.generate_tile(ctx, SCO_CEN)
        idx, _ = _smooth(table)
        w = arrays(table, "weight")[0][idx].astype(float)
        assert abs(w.sum() - expect) < 4 * np.sqrt((w**2).sum())
    # switched off, the rows are those of the stage without zones (no random number drawn for them)
    t_off, _ = P.generate_tile(off, SCO_CEN)
    t_none, _ = P.generate_tile(ctx_for(grid, dust, **{**NEAR, "thinning": {**NEAR["thinning"], "near_young": 0.005}}),
                                SCO_CEN)
    assert t_off.equals(t_none)
