"""The per-chunk driver: schema, determinism, chunk independence, metadata, bad input."""

import hashlib

import numpy as np
import pyarrow as pa
import pytest

from ysocensus import io
from ysocensus import population as P
from ysocensus.dust import DustField
from ysocensus.galaxy import COMPONENTS
from ysocensus.config import section
from ysocensus.galaxy.young import complexes_from_config, near_structure, near_young_zones
from ysocensus.stars.tracks import IsochroneGrid

SMALL = {"distance_max_pc": 300.0, "thinning": {"field": 0.002, "young_field": 0.05, "young": 0.3},
         "sampling": {"sub_nside": 16, "shell_pc": 10.0}}
DUST = {"grid_step_pc": 25.0, "grid_extent_xy_pc": 400.0, "grid_extent_z_pc": 200.0, "los_nside": 16,
        "los_distance_max_pc": 400.0}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    grid = IsochroneGrid.build(log10_mass_step=0.01)
    grid.save(root / "iso.npz")
    dcfg = section("dust", DUST)
    DustField.build(dcfg, complexes_from_config(section("population")["young"]), 3).save(root / "dust.npz")
    return root / "iso.npz", root / "dust.npz"


def run(models, path, tiles, cfg=SMALL, seed=11, nside=2):
    return P.run_population(tiles, path, cfg, seed, nside, models[0], models[1], DUST)


def test_schema_weights_and_metadata(models, tmp_path):
    out = tmp_path / "chunk_3.parquet"
    summary = run(models, out, [24, 25, 26])
    table = io.read_table(out, io.POPULATION)
    assert table.num_rows == summary["rows"] > 1000
    df = table.to_pandas()
    assert set(df["component"].astype(str)) <= set(COMPONENTS)
    assert set(df["tile"]) == {24, 25, 26}
    assert df["source_id"].is_unique
    assert np.all((df["source_id"].to_numpy() >> 32) == df["tile"].to_numpy())
    # field weights 1/f (thin3 500, young field 20), 1/max(f, near_young) = 10 inside the zones of young structure
    zones = near_young_zones(section("population", SMALL), 11)
    inside = near_structure(*(df[c].to_numpy(np.float64) for c in ("x_pc", "y_pc", "z_pc")), *zones)
    f = np.where(df["component"].astype(str) == "young_field", 0.05, 0.002)
    field = (df.cluster_id < 0).to_numpy()
    assert np.allclose(df.loc[field, "weight"], 1 / np.where(inside, np.maximum(f, 0.1), f)[field])
    assert (field & inside).sum() > 10 and ((df["component"] == "thin3") & ~inside).sum() > 10
    assert np.allclose(df.loc[df.cluster_id >= 0, "weight"], 1 / 0.3)
    assert np.all(df["distance_pc"] <= 300.0 + 1e-3)
    assert df["rv"].between(2.5, 6.0).all() and abs(df["rv"].mean() - 3.1) < 0.05
    assert not df["is_remnant"].any()  # the magnitude cut drops remnants (counted in the metadata)
    meta = io.read_metadata(out)
    assert set(meta["tiles"]) == {"24", "25", "26"}
    t = meta["tiles"]["26"]
    assert t["total"]["generated"] == t["total"]["kept"] + t["total"]["dropped"]
    assert t["total"]["kept"] == int((df["tile"] == 26).sum())
    c7 = t["components"]["thin7"]
    kept_w = df.loc[(df["tile"] == 26) & (df["component"] == "thin7"), "weight"].sum()
    assert c7["generated_weighted"] - c7["dropped_weighted"] == pytest.approx(kept_w, rel=1e-6)
    assert 10.0 * c7["dropped"] <= c7["dropped_weighted"] <= 500.0 * c7["dropped"] and c7["dropped"] > 0
    assert meta["thinning"]["field"] == 0.002 and meta["components"] == list(COMPONENTS)


def test_no_magnitude_cut_keeps_flagged_remnants(models, tmp_path):
    out = tmp_path / "c.parquet"
    run(models, out, [26], {**SMALL, "magnitude_limit": {"enabled": False}})
    df = io.read_table(out, io.POPULATION).to_pandas()
    rem = df["is_remnant"]
    assert rem.any()
    assert df.loc[rem, "teff_k"].isna().all()
    # without the cut every star stays: those without model parameters besides the remnants lie below MIST's
    # 0.1 Msun and have cooled off BHAC15's grid (old brown dwarfs), counted in the metadata's no_parameters
    lost = ~rem & df["teff_k"].isna()
    assert (df.loc[lost, "initial_mass_msun"] < 0.1).all() and (df.loc[~lost & ~rem, "teff_k"] > 0).all()
    tiles = io.read_metadata(out)["tiles"]
    assert sum(c["no_parameters"] for t in tiles.values() for c in t["components"].values()) == lost.sum()
    assert not df.loc[rem, "has_disk"].any()


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_seed_byte_identical(models, tmp_path):
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    run(models, a, [26, 27])
    run(models, b, [26, 27])
    assert _sha(a) == _sha(b)
    c = tmp_path / "c.parquet"
    run(models, c, [26, 27], seed=12)
    assert _sha(a) != _sha(c)


def test_tile_independent_of_chunking(models, tmp_path):
    alone, together = tmp_path / "alone.parquet", tmp_path / "together.parquet"
    run(models, alone, [26])
    run(models, together, [24, 25, 26, 27])
    t1 = io.read_table(alone, io.POPULATION)
    t2 = io.read_table(together, io.POPULATION)
    t2 = t2.filter(pa.compute.equal(t2.column("tile"), 26))
    assert t1.num_rows == t2.num_rows > 0
    for name in t1.column_names:
        assert t1.column(name).equals(t2.column(name)), name
    m1, m2 = io.read_metadata(alone)["tiles"]["26"], io.read_metadata(together)["tiles"]["26"]
    assert m1["components"] == m2["components"]


@pytest.mark.parametrize("bad, match", [
    ({"components": ["thin1", "spiral_arm"]}, "components"),
    ({"young": {"complexes": ["orion", "mordor"]}}, "complexes"),
    ({"distance_max_pc": 1e6}, "distance_max_pc"),
    ({"distance_min_pc": 500.0, "distance_max_pc": 300.0}, "distance_min_pc"),
    ({"thinning": {"field": -0.1}}, "thinning"),
    ({"thinning": {"field": 0.0}}, "thinning"),
    ({"thinning": {"near_young": 0.0}}, "thinning"),
    # = the young field's fraction: the near field would have no weight of its own
    ({"thinning": {**SMALL["thinning"], "near_young": 0.05}}, "near_young"),
    ({"imf": {"kind": "salpeter"}}, "imf"),
    ({"unknown_key": 1}, "unknown_key|Additional properties"),
])
def test_bad_config_clear_error_nothing_written(models, tmp_path, bad, match):
    out = tmp_path / "chunk.parquet"
    with pytest.raises(ValueError, match=match):
        run(models, out, [26], {**SMALL, **bad})
    assert list(tmp_path.iterdir()) == []


def test_empty_tile_selection(models, tmp_path):
    with pytest.raises(ValueError, match="no tile"):
        run(models, tmp_path / "x.parquet", [])
    assert list(tmp_path.iterdir()) == []


def test_dust_shorter_than_population_rejected(models, tmp_path):
    with pytest.raises(ValueError, match="los_distance_max_pc"):
        run(models, tmp_path / "x.parquet", [26], {**SMALL, "distance_max_pc": 800.0})


def test_missing_models_file(models, tmp_path):
    with pytest.raises(FileNotFoundError, match="stellar_models"):
        P.run_population([26], tmp_path / "x.parquet", SMALL, 1, 2, tmp_path / "none.npz", models[1], DUST)
    assert not (tmp_path / "x.parquet").exists()


def test_extinction_monotonic_along_each_sight_line(models, tmp_path):
    out = tmp_path / "c.parquet"
    run(models, out, [26])
    df = io.read_table(out, io.POPULATION).to_pandas()
    assert (df["av_mag"] >= 0).all()
    field = DustField.load(models[1])
    # each star's A_V is the field's along its own sight line, which never decreases with distance (stars of one
    # HEALPix pixel need not be ordered: the clouds are integrated along each star's ray, dust.field)
    l, b, d = (df[c].to_numpy(np.float64) for c in ("l", "b", "distance_pc"))
    assert np.allclose(df["av_mag"].to_numpy(), field.av(l, b, d), rtol=1e-5, atol=1e-6)
    ladder = np.stack([field.av(l, b, d * f) for f in (0.25, 0.5, 0.9, 1.0, 1.1, 2.0)], axis=1)
    assert np.all(np.diff(ladder, axis=1) >= -1e-6)


def test_spill_to_staging_file_same_content(models, tmp_path, monkeypatch):
    """With a tiny in-memory limit the chunk is staged row group by row group: same rows, no leftovers."""
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    run(models, a, [25, 26])
    monkeypatch.setattr(P, "SPILL_ROWS", 300)
    run(models, b, [25, 26])
    ta, tb = io.read_table(a, io.POPULATION), io.read_table(b, io.POPULATION)
    assert ta.equals(tb)
    assert io.read_metadata(a) == io.read_metadata(b)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.parquet", "b.parquet"]
