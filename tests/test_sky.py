"""Tiling, chunks, per-tile random streams and source ids (ysocensus.sky)."""

import healpy as hp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ysocensus import sky


def test_all_tiles_and_chunks():
    t = sky.Tiling.from_config({"nside": 4, "tiles": "all", "tiles_per_job": 16})
    assert t.tiles == tuple(range(192))
    assert t.chunks == tuple(range(12))
    assert t.tiles_in_chunk(3) == tuple(range(48, 64))


def test_listed_tiles_group_into_chunks():
    t = sky.Tiling.from_config({"nside": 1, "tiles": [9, 0, 5, 4], "tiles_per_job": 2})
    assert t.tiles == (0, 4, 5, 9)
    assert t.chunks == (0, 2, 4)
    assert t.tiles_in_chunk(2) == (4, 5)


def test_region_selects_tiles_with_centres_inside_and_wraps_in_longitude():
    nside = 8
    tiles = sky.select_tiles(nside, {"l": [340, 20], "b": [-10, 10]})
    l, b = hp.pix2ang(nside, np.array(tiles), nest=True, lonlat=True)
    assert len(tiles) > 0
    assert np.all((l >= 340) | (l <= 20)) and np.all(np.abs(b) <= 10)
    # and every tile whose centre is inside is selected
    l_all, b_all = hp.pix2ang(nside, np.arange(hp.nside2npix(nside)), nest=True, lonlat=True)
    inside = ((l_all >= 340) | (l_all <= 20)) & (np.abs(b_all) <= 10)
    assert set(np.flatnonzero(inside)) == set(tiles)


@pytest.mark.parametrize("selection, message", [
    ([48], "outside 0..47"),
    ({"l": [10, 11], "b": [89.9, 90]}, "contains no tile"),
    ("some", "expected 'all'"),
])
def test_bad_selections_name_the_key(selection, message):
    with pytest.raises(ValueError, match=message) as err:
        sky.select_tiles(2, selection)
    assert "sky.tiles" in str(err.value)


def test_nside_must_be_power_of_two():
    with pytest.raises(ValueError, match="sky.nside"):
        sky.select_tiles(3, "all")


def test_tile_streams_depend_only_on_seed_tile_and_stage():
    a = sky.tile_rng(42, 7, "population").random(5)
    # drawing other tiles first, in any order, changes nothing
    for t in (3, 9, 1):
        sky.tile_rng(42, t, "population").random(100)
    b = sky.tile_rng(42, 7, "population").random(5)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, sky.tile_rng(42, 8, "population").random(5))
    assert not np.array_equal(a, sky.tile_rng(42, 7, "observe").random(5))
    assert not np.array_equal(a, sky.tile_rng(43, 7, "population").random(5))


def test_tile_seed_matches_seedsequence_spawn():
    # the documented equivalence with SeedSequence(seed).spawn for the (stage, tile) key path
    stage = sky.tile_seed(5, 0, "population")
    spawned = np.random.SeedSequence(5).spawn(1)[0].spawn(1)[0]
    assert stage.spawn_key == spawned.spawn_key
    assert np.array_equal(stage.generate_state(4), spawned.generate_state(4))


def test_unknown_stage_is_an_error():
    with pytest.raises(KeyError, match="unknown stage"):
        sky.tile_seed(1, 1, "populaton")


@settings(max_examples=50, deadline=None)
@given(tile=st.integers(0, 12 * 1024**2 - 1), n=st.integers(0, 1000))
def test_source_ids_are_unique_and_invertible(tile, n):
    ids = sky.source_ids(tile, n)
    assert ids.dtype == np.int64 and len(np.unique(ids)) == n
    assert np.all(sky.tile_from_source_id(ids) == tile)


def test_tile_of_inverts_tile_centres():
    tiles = np.arange(hp.nside2npix(4))
    l, b = sky.tile_centres(4, tiles)
    np.testing.assert_array_equal(sky.tile_of(4, l, b), tiles)
