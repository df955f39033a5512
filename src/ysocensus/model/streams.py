"""Random streams for posterior sampling: per star, or shared by a batch.

A catalog's posterior must not depend on how it was cut into batches, on which rows were skipped or on which
other stars needed more proposals: a star's draws come from its own counter-based stream, keyed by the run's
seed and the star's ``source_id`` (``StarStreams``). Every draw is a pure function of (key, purpose, counter):
the splitmix64 finaliser (Steele, Lea & Flood 2014, "Fast splittable pseudorandom number generators", OOPSLA;
the mixer of Java's SplittableRandom) of the key mixed with the counter, so there is no state to carry between
batches and no Python loop over stars. Gaussians by Box–Muller from pairs of uniforms.

``TorchStreams`` is the batch-shared torch generator the validation and training code use (its draws depend on
the batch, which is fine where a whole held-out set is one reproducible call).

A purpose separates the uses of one star's stream, so that, e.g., the first proposals are the same whether or
not the star is later topped up.
"""

from __future__ import annotations

import numpy as np
import torch

#: what a draw is for; each purpose has its own counter space in a star's stream
PROPOSALS, RESAMPLE, TOP_UP, TOP_UP_RESAMPLE = 1, 2, 3, 4

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, elementwise on uint64 (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def star_keys(seed: int, ids) -> np.ndarray:
    """uint64 stream keys [B] of stars with integer ids (``source_id``) under a run's ``seed``."""
    ids = np.asarray(ids).astype(np.int64).view(np.uint64)
    with np.errstate(over="ignore"):
        base = _mix(np.asarray([seed & 0xFFFFFFFFFFFFFFFF], np.uint64) * _GOLDEN + _GOLDEN)
        return _mix(ids * _GOLDEN ^ base)


def uniforms(keys: np.ndarray, purpose: int, n: int) -> np.ndarray:
    """float64 [B, n] in (0, 1): draws 0..n−1 of each key's stream for ``purpose``."""
    with np.errstate(over="ignore"):
        counter = _mix(np.arange(n, dtype=np.uint64) + np.uint64(purpose) * np.uint64(1 << 40))
    bits = _mix(keys[:, None] ^ counter[None, :])
    return ((bits >> np.uint64(11)).astype(np.float64) + 0.5) / float(1 << 53)


def normals(keys: np.ndarray, purpose: int, n: int) -> np.ndarray:
    """float32 [B, n] standard normal draws (Box–Muller on pairs of ``uniforms``)."""
    u = uniforms(keys, purpose, 2 * n)
    r = np.sqrt(-2.0 * np.log(u[:, 0::2]))
    return (r * np.cos(2.0 * np.pi * u[:, 1::2])).astype(np.float32)


class StarStreams:
    """One stream per star (``star_keys``); ``rows`` (an index array) pick the stars of the call being sampled."""

    def __init__(self, keys: np.ndarray):
        self.keys = np.asarray(keys, np.uint64)

    @classmethod
    def for_stars(cls, seed: int, ids) -> "StarStreams":
        return cls(star_keys(seed, ids))

    def normal(self, rows, purpose: int, shape: tuple[int, ...]) -> torch.Tensor:
        k = self.keys[rows]
        n = int(np.prod(shape))
        return torch.from_numpy(normals(k, purpose, n)).view(len(k), *shape)

    def uniform(self, rows, purpose: int) -> torch.Tensor:
        """One float64 uniform per star [b, 1] (the offset of systematic resampling)."""
        return torch.from_numpy(uniforms(self.keys[rows], purpose, 1))


class TorchStreams:
    """A torch generator shared by the whole call: draws follow the order of the calls, not the stars."""

    def __init__(self, generator: torch.Generator | None = None):
        self.generator = generator

    def normal(self, rows, purpose: int, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.randn(len(rows), *shape, generator=self.generator)

    def uniform(self, rows, purpose: int) -> torch.Tensor:
        return torch.rand(len(rows), 1, generator=self.generator, dtype=torch.float64)


def as_streams(source) -> StarStreams | TorchStreams:
    """A streams object from a torch generator, None (torch's global generator) or streams already."""
    if isinstance(source, (StarStreams, TorchStreams)):
        return source
    return TorchStreams(source)


#: mixed into a star's key for the draws of ensemble member k > 0 (``for_member``)
_MEMBER = np.uint64(0xD1B54A32D192ED03)


def for_member(source, k: int) -> StarStreams | TorchStreams:
    """The streams of ensemble member ``k`` (``posterior.ensemble``): member 0 draws exactly what a single model
    draws; member k > 0 from each star's key mixed with k, so the members' draws are independent and each star's
    still do not depend on its batch. A shared torch generator is shared on (its draws follow the calls)."""
    s = as_streams(source)
    if k == 0 or not isinstance(s, StarStreams):
        return s
    with np.errstate(over="ignore"):
        return StarStreams(_mix(s.keys ^ (_MEMBER * np.uint64(k))))
