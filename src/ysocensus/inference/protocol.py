"""The one interface between the inference driver and a trained posterior: :class:`PosteriorSampler`.

The driver (``ysocensus.inference.driver``) streams catalog rows, validates them and hands each batch to
a sampler as a dict of numpy arrays named after the columns of ``io.CATALOG``:

- ``source_id`` int64, ``tile`` int32 (−1 where unknown), ``l``, ``b`` float64 degrees (always finite),
  ``ra``, ``dec`` float64 (NaN where unknown);
- every measurement and uncertainty column of ``io.CATALOG`` as float64 with **NaN for a missing
  measurement** (never a sentinel); an uncertainty is finite and > 0 wherever its value is finite (the driver
  fills missing ones from ``inference.error_models`` before the sampler sees them);
- ``survey_mask`` int32 recomputed from what is finite (bit i ↔ ``io.MEASUREMENT_BITS[i]``).

The sampler returns :class:`SampleResult`: ``samples`` float32 ``[n_stars, n_samples, len(io.PARAMETERS)]``
in the physical units of the truth columns (``io.PARAMETERS`` order: log10 age/yr, initial mass/M☉,
[Fe/H], distance/pc, A_V/mag), and ``status`` (one entry of ``io.POSTERIOR_STATUS`` per star). A star
with nothing observed still gets samples (the prior given l, b) and the status ``prior_only``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Protocol, runtime_checkable

import numpy as np

from ysocensus import io


@dataclass
class SampleResult:
    """Posterior samples of a batch: ``samples`` [n, S, P] float32 (physical units), ``status`` [n] str."""

    samples: np.ndarray
    status: np.ndarray

    def __post_init__(self):
        self.samples = np.asarray(self.samples, dtype=np.float32)
        self.status = np.asarray(self.status, dtype=object)
        if self.samples.ndim != 3 or self.samples.shape[2] != len(io.PARAMETERS):
            raise ValueError(f"samples must be [n_stars, n_samples, {len(io.PARAMETERS)}], "
                             f"got {self.samples.shape}")
        if self.status.shape != (self.samples.shape[0],):
            raise ValueError(f"status must have one entry per star ({self.samples.shape[0]}), "
                             f"got {self.status.shape}")
        bad = sorted(set(self.status.tolist()) - set(io.POSTERIOR_STATUS))
        if bad:
            raise ValueError(f"unknown status value(s) {bad}; allowed: {io.POSTERIOR_STATUS}")


@runtime_checkable
class PosteriorSampler(Protocol):
    """Anything that draws posterior samples of ``io.PARAMETERS`` for a batch of catalog rows."""

    def sample(self, batch: Mapping[str, np.ndarray], n_samples: int,
               seed: np.random.SeedSequence) -> SampleResult:
        """Draw ``n_samples`` per star; deterministic for a given ``seed`` and batch."""
        ...

    def describe(self) -> dict:
        """A JSON-serialisable description (model path, fingerprint, solver) stored in the output."""
        ...
