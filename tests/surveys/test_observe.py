"""The observe stage end to end on synthetic populations: schema, determinism, bad input, physics."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from ysocensus import io
from ysocensus.surveys.observe import companion_mass_ratio, galactic_to_icrs, run_observe, observe_population


@pytest.fixture(scope="module")
def observed(population, bc_grid, isochrones):
    cols, meta = observe_population(population, bc_grid, isochrones, seed=11)
    return cols, meta


def test_catalog_follows_schema_one_row_per_population_row(observed, population):
    cols, meta = observed
    table = io.to_table(cols, io.CATALOG)
    assert table.num_rows == len(population["source_id"])
    np.testing.assert_array_equal(table.column("source_id").to_numpy(), population["source_id"])
    assert meta["n_rows"] == table.num_rows
    # missing measurements are null (no sentinel numbers)
    for name in io.MAGNITUDES:
        col = table.column(name)
        assert col.null_count > 0
        vals = col.drop_null().to_numpy()
        assert np.all(np.isfinite(vals)) and vals.min() > -5 and vals.max() < 30


def test_survey_mask_records_the_missingness_pattern(observed):
    cols, _ = observed
    mask = cols["survey_mask"]
    assert mask.dtype == np.int32 and mask.min() >= 0
    for bit, name in enumerate(io.MEASUREMENT_BITS):
        np.testing.assert_array_equal((mask >> bit) & 1, np.isfinite(cols[name]).astype(int))


def test_remnants_and_stars_without_parameters_get_null_photometry(population, bc_grid, isochrones):
    pop = {k: v.copy() for k, v in population.items()}
    pop["is_remnant"][:50] = True
    pop["teff_k"][50:100] = np.nan
    cols, meta = observe_population(pop, bc_grid, isochrones, seed=1)
    assert np.all(cols["survey_mask"][:100] == 0)
    for name in io.MAGNITUDES + ("parallax",):
        assert np.all(np.isnan(cols[name][:100]))
    assert meta["n_remnant"] >= 50 and meta["n_without_parameters"] >= 50


def test_same_seed_identical_catalog_other_seed_differs(population, bc_grid, isochrones, observed):
    again, _ = observe_population(population, bc_grid, isochrones, seed=11)
    for k, v in observed[0].items():
        np.testing.assert_array_equal(v, again[k], err_msg=k)
    other, _ = observe_population(population, bc_grid, isochrones, seed=12)
    assert not np.array_equal(np.nan_to_num(other["phot_g_mean_mag"]), np.nan_to_num(observed[0]["phot_g_mean_mag"]))


def test_a_tile_does_not_depend_on_its_chunk_or_row_order(population, bc_grid, isochrones, observed):
    tile1 = population["tile"] == 1
    sub = {k: v[tile1] for k, v in population.items()}
    perm = np.random.default_rng(0).permutation(tile1.sum())
    shuffled = {k: v[perm] for k, v in sub.items()}
    alone, _ = observe_population(shuffled, bc_grid, isochrones, seed=11)
    inv = np.argsort(perm)
    for k in ("phot_g_mean_mag", "parallax", "ks_m", "w3mpro", "ewha", "survey_mask"):
        np.testing.assert_array_equal(alone[k][inv], observed[0][k][tile1], err_msg=k)


def test_disk_bearers_show_ks_w3_excess_in_the_catalog(observed, population):
    cols, _ = observed
    kw3 = cols["ks_m"] - cols["w3mpro"]
    ok = np.isfinite(kw3)
    disk = population["has_disk"]
    old = population["log10_age_yr"] > 8.5
    assert np.median(kw3[ok & disk]) > 2.0
    assert abs(np.median(kw3[ok & old & ~disk])) < 0.4


def test_binaries_brighten(population, bc_grid, isochrones):
    single, _ = observe_population(population, bc_grid, isochrones, seed=5, cfg={"binary_fraction": 0.0})
    binary, meta = observe_population(population, bc_grid, isochrones, seed=5, cfg={"binary_fraction": 1.0})
    assert meta["n_binaries"] > 0.5 * len(population["source_id"])
    d = binary["phot_g_mean_mag"] - single["phot_g_mean_mag"]
    d = d[np.isfinite(d) & (single["phot_g_mean_mag"] < 18)]     # noise ≪ 0.01 mag
    assert np.median(d) < -0.01 and np.percentile(d, 99) < 0.05     # never fainter beyond noise
    # at most an equal twin (-0.75), except where a young companion still on its pre-main-sequence
    # track outshines a slightly more massive primary that has already reached the ZAMS
    assert np.percentile(d, 1) > -0.76 and d.min() > -1.5


def test_companion_mass_ratio_is_the_catalogs_own_binaries(population, bc_grid, isochrones):
    # the truth the training set records must be the companions observe_population actually added
    cfg = {"binary_fraction": 0.3}
    binary, meta = observe_population(population, bc_grid, isochrones, seed=5, cfg=cfg)
    single, _ = observe_population(population, bc_grid, isochrones, seed=5, cfg={"binary_fraction": 0.0})
    q = companion_mass_ratio(population, isochrones, 5, cfg)
    assert q.shape == (len(population["source_id"]),)
    assert int((q > 0).sum()) == meta["n_binaries"] > 0
    assert np.all((q == 0) | ((q >= 0.1) & (q <= 1.0)))  # binary_q_min = 0.1
    g1, g2 = single["phot_g_mean_mag"], binary["phot_g_mean_mag"]
    seen = np.isfinite(g1) & np.isfinite(g2)
    # same seed: single stars get the same photometry, and only the recorded binaries change
    np.testing.assert_array_equal(g2[seen & (q == 0)], g1[seen & (q == 0)])
    assert np.median((g2 - g1)[seen & (q > 0.5) & (g1 < 18)]) < -0.05
    assert not companion_mass_ratio(population, None, 5, cfg).any()  # no isochrones: no companions
    other = companion_mass_ratio(population, isochrones, 6, cfg)
    assert (other > 0).any() and not np.array_equal(other, q)


def test_random_loss(population, bc_grid, isochrones):
    base, _ = observe_population(population, bc_grid, isochrones, seed=5)
    lossy, _ = observe_population(population, bc_grid, isochrones, seed=5, cfg={"random_loss": {"tmass": 0.5}})
    nb, nl = np.isfinite(base["ks_m"]).sum(), np.isfinite(lossy["ks_m"]).sum()
    assert abs(nl / nb - 0.5) < 0.05
    np.testing.assert_array_equal(base["phot_g_mean_mag"], lossy["phot_g_mean_mag"])


def test_galactic_to_icrs_matches_astropy():
    from astropy.coordinates import SkyCoord
    import astropy.units as u

    rng = np.random.default_rng(0)
    l, b = rng.uniform(0, 360, 200), rng.uniform(-90, 90, 200)
    ra, dec = galactic_to_icrs(l, b)
    c = SkyCoord(l=l * u.deg, b=b * u.deg, frame="galactic").icrs
    sep = SkyCoord(ra=ra * u.deg, dec=dec * u.deg).separation(c).arcsec
    assert sep.max() < 0.1


def test_file_round_trip_and_metadata(tmp_path, population, bc_grid):
    pop_path, out = tmp_path / "pop.parquet", tmp_path / "cat.parquet"
    io.write_table(population, pop_path, io.POPULATION)
    bc_path = tmp_path / "bc.npz"
    bc_grid.save(bc_path)
    meta = run_observe(pop_path, out, seed=3, cfg={}, bc_path=bc_path)
    table = io.read_table(out, io.CATALOG)
    assert table.num_rows == len(population["source_id"])
    assert io.read_metadata(out)["n_detected"] == meta["n_detected"]


def test_same_inputs_give_the_same_bytes(tmp_path, population, bc_grid):
    """No run timing (or anything else of the run) in the catalog's metadata (issue 23, point 8)."""
    pop_path, bc_path = tmp_path / "pop.parquet", tmp_path / "bc.npz"
    io.write_table(population, pop_path, io.POPULATION)
    bc_grid.save(bc_path)
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    meta = run_observe(pop_path, a, seed=3, cfg={}, bc_path=bc_path)
    run_observe(pop_path, b, seed=3, cfg={}, bc_path=bc_path)
    assert "seconds" not in meta and "seconds" not in io.read_metadata(a)
    assert a.read_bytes() == b.read_bytes()


def test_bad_input_missing_column_names_file_and_column(tmp_path, population, bc_grid):
    import pyarrow as pa

    pop_path, out = tmp_path / "pop.parquet", tmp_path / "cat.parquet"
    table = io.to_table(population, io.POPULATION).drop(["av_mag"])
    pq.write_table(table, pop_path)
    with pytest.raises(io.SchemaError, match=r"pop\.parquet.*av_mag"):
        run_observe(pop_path, out, seed=3)
    assert not out.exists() and not list(tmp_path.glob(".cat.parquet*"))


def test_bad_input_nan_masses_names_file_and_column(tmp_path, population):
    pop_path, out = tmp_path / "pop.parquet", tmp_path / "cat.parquet"
    table = io.to_table(population, io.POPULATION)
    mass = table.column("initial_mass_msun").to_numpy().copy()
    mass[7] = np.nan
    import pyarrow as pa

    table = table.set_column(table.schema.get_field_index("initial_mass_msun"), "initial_mass_msun",
                             pa.array(mass, pa.float32()))
    pq.write_table(table, pop_path)
    with pytest.raises(io.SchemaError, match=r"pop\.parquet.*initial_mass_msun"):
        run_observe(pop_path, out, seed=3)
    assert not out.exists() and not list(tmp_path.glob(".cat.parquet*"))
    # the in-memory path says the same
    from ysocensus.stars.bolometric import load_bc_grid

    pop = dict(population, initial_mass_msun=mass)
    with pytest.raises(io.SchemaError, match="initial_mass_msun"):
        observe_population(pop, load_bc_grid(), None, where=str(pop_path))


def test_empty_population_gives_empty_catalog(tmp_path, population, bc_grid, isochrones):
    empty = {k: v[:0] for k, v in population.items()}
    cols, meta = observe_population(empty, bc_grid, isochrones, seed=1)
    assert meta["n_rows"] == 0
    table = io.to_table(cols, io.CATALOG)
    assert table.num_rows == 0


def test_late_normals_leave_the_earlier_draws_as_they_were():
    """The normals from N_NORMAL on are drawn after the uniforms: every slot that existed before them keeps its
    value (a catalog made before they were added differs only where they are used)."""
    from ysocensus import sky
    from ysocensus.surveys.observe import N_NORMAL, N_UNIFORM, _draws
    tile = np.zeros(50, np.int64)
    z, u = _draws(7, tile, np.arange(50, dtype=np.int64))
    rng = sky.tile_rng(7, 0, "observe")
    np.testing.assert_array_equal(z[:N_NORMAL], rng.standard_normal((N_NORMAL, 50), dtype=np.float32))
    np.testing.assert_array_equal(u, rng.random((N_UNIFORM, 50), dtype=np.float32))
    np.testing.assert_array_equal(z[N_NORMAL:], rng.standard_normal((z.shape[0] - N_NORMAL, 50), dtype=np.float32))
