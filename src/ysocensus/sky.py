"""HEALPix tiling of the sky, job chunks, per-tile random streams and source ids.

Tiles are HEALPix pixels in NESTED ordering at ``sky.nside``. A job ("chunk") handles
``sky.tiles_per_job`` consecutive NESTED pixels (consecutive NESTED pixels are neighbours on the sky,
so a chunk is compact). Everything random about a tile is drawn from a stream derived from the
global seed, the tile index and the stage, never from the chunk, so a tile's content does not
depend on the chunking, on which other tiles run, or in what order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

#: stream ids of the stages that draw random numbers per tile (never reuse or renumber)
STAGES = {"population": 0, "dust": 1, "observe": 2, "training": 3, "infer": 4, "maps": 5}

#: bits of source_id that hold the row within the tile (source_id = tile << ROW_BITS | row)
ROW_BITS = 32


@dataclass(frozen=True)
class Tiling:
    """The tiles selected by the config and their grouping into job chunks."""

    nside: int
    tiles: tuple[int, ...]
    tiles_per_job: int

    @property
    def npix(self) -> int:
        return 12 * self.nside**2

    @property
    def chunks(self) -> tuple[int, ...]:
        """Ids of the chunks that hold at least one selected tile (chunk = tile // tiles_per_job)."""
        return tuple(sorted({t // self.tiles_per_job for t in self.tiles}))

    def tiles_in_chunk(self, chunk: int) -> tuple[int, ...]:
        """Selected tiles of one chunk, in NESTED order."""
        lo = chunk * self.tiles_per_job
        hi = lo + self.tiles_per_job
        return tuple(t for t in self.tiles if lo <= t < hi)

    @classmethod
    def from_config(cls, sky: Mapping) -> "Tiling":
        """Build from the ``sky`` section of the config (see ysocensus/schemas/config.schema.yaml)."""
        nside = int(sky["nside"])
        return cls(nside, select_tiles(nside, sky.get("tiles", "all")), int(sky.get("tiles_per_job", 1)))


def select_tiles(nside: int, selection: str | Sequence[int] | Mapping) -> tuple[int, ...]:
    """Tiles selected by ``sky.tiles``: ``"all"``, a list of NESTED pixels, or a region.

    A region is ``{"l": [lmin, lmax], "b": [bmin, bmax]}`` in degrees (longitudes may wrap, e.g.
    ``[340, 20]``); a tile is selected when its centre lies inside.
    """
    if nside < 1 or nside & (nside - 1):
        raise ValueError(f"sky.nside: {nside} is not a power of two")
    npix = 12 * nside**2
    if isinstance(selection, str):
        if selection != "all":
            raise ValueError(f"sky.tiles: expected 'all', a list of pixels or a region, got {selection!r}")
        tiles = range(npix)
    elif isinstance(selection, Mapping):
        l, b = tile_centres(nside, np.arange(npix))
        lmin, lmax = selection.get("l", [0.0, 360.0])
        bmin, bmax = selection.get("b", [-90.0, 90.0])
        in_l = (l >= lmin) & (l <= lmax) if lmin <= lmax else (l >= lmin) | (l <= lmax)
        tiles = np.flatnonzero(in_l & (b >= bmin) & (b <= bmax)).tolist()
    else:
        tiles = [int(t) for t in selection]
        bad = [t for t in tiles if not 0 <= t < npix]
        if bad:
            raise ValueError(f"sky.tiles: pixel(s) {bad} outside 0..{npix - 1} for nside={nside}")
    tiles = tuple(sorted(set(tiles)))
    if not tiles:
        raise ValueError(f"sky.tiles: the selection {selection!r} contains no tile at nside={nside}")
    return tiles


def tile_centres(nside: int, tiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Galactic (l, b) in degrees of the centres of NESTED pixels."""
    import healpy as hp  # imported here so that the DAG (Snakefile) does not need healpy

    l, b = hp.pix2ang(nside, np.asarray(tiles), nest=True, lonlat=True)
    return l, b


def tile_of(nside: int, l_deg: np.ndarray, b_deg: np.ndarray) -> np.ndarray:
    """NESTED pixel of Galactic directions (degrees)."""
    import healpy as hp

    return hp.ang2pix(nside, l_deg, b_deg, nest=True, lonlat=True)


def tile_seed(seed: int, tile: int, stage: str) -> np.random.SeedSequence:
    """The random stream of one tile for one stage, derived from the global seed alone.

    ``SeedSequence(seed, spawn_key=(stage, tile))`` is what ``SeedSequence(seed).spawn`` would
    produce for that key path, without having to spawn every tile before it.
    """
    if stage not in STAGES:
        raise KeyError(f"unknown stage {stage!r}; known: {sorted(STAGES)}")
    return np.random.SeedSequence(int(seed), spawn_key=(STAGES[stage], int(tile)))


def tile_rng(seed: int, tile: int, stage: str) -> np.random.Generator:
    """A numpy Generator (PCG64) for one tile and stage; see :func:`tile_seed`."""
    return np.random.Generator(np.random.PCG64(tile_seed(seed, tile, stage)))


def source_ids(tile: int, n: int) -> np.ndarray:
    """Sky-unique int64 ids ``tile << 32 | row`` for rows 0..n-1 of one tile."""
    if n >= 1 << ROW_BITS:
        raise ValueError(f"tile {tile}: {n} rows do not fit in {ROW_BITS} bits of source_id")
    return (np.int64(tile) << np.int64(ROW_BITS)) | np.arange(n, dtype=np.int64)


def tile_from_source_id(source_id: np.ndarray) -> np.ndarray:
    """Inverse of :func:`source_ids` for the tile part."""
    return (np.asarray(source_id, dtype=np.int64) >> np.int64(ROW_BITS)).astype(np.int64)
