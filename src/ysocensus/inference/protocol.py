"""The one interface between the inference driver and a trained posterior: :class:`PosteriorSampler`.

The driver (``ysocensus.inference.driver``) streams catalog rows, validates them and hands each batch to
a sampler as a dict of numpy arrays named after the columns of ``io.CATALOG``:

- ``source_id`` int64, ``tile`` int32 (−1 where unknown), ``l``, ``b`` float64 degrees (always finite),
  ``ra``, ``dec`` float64 (NaN where unknown);
- every measurement and uncertainty column of ``io.CATALOG`` as float64 with **NaN for a missing
  measurement** (never a sentinel); an uncertainty is > 0 where given, and NaN where the catalog does not
  give it: the value is then read without one (the driver fills it from ``inference.error_models`` only
  with ``fill_errors``);
- ``io.SEARCHED_MASK`` int32: which null measurements were searched for (non-detections) rather than
  marginalised (``inference.catalog.survey_rules``);
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
    """Posterior samples of a batch: ``samples`` [n, S, P] float32 (physical units), ``status`` [n] str.

    A sampler that importance-resamples proposals (a posterior corrected to another prior) may also return
    every proposal, ``proposals`` [n, K, P], with its ``log_weights`` [n, K] (probabilities such as P(young) are
    then taken from all K weighted proposals) and ``ess`` [n], the effective sample size of the weights."""

    samples: np.ndarray
    status: np.ndarray
    proposals: np.ndarray | None = None
    log_weights: np.ndarray | None = None
    ess: np.ndarray | None = None

    def __post_init__(self):
        self.samples = np.asarray(self.samples, dtype=np.float32)
        self.status = np.asarray(self.status, dtype=object)
        n = self.samples.shape[0] if self.samples.ndim == 3 else -1
        if (self.proposals is None) != (self.log_weights is None):
            raise ValueError("proposals and log_weights come together")
        if self.proposals is not None:
            self.proposals = np.asarray(self.proposals, np.float32)
            self.log_weights = np.asarray(self.log_weights, np.float32)
            if self.proposals.shape[:1] != (n,) or self.log_weights.shape != self.proposals.shape[:2]:
                raise ValueError(f"proposals {self.proposals.shape} and log_weights {self.log_weights.shape} "
                                 f"do not match {n} stars")
        if self.ess is not None:
            self.ess = np.asarray(self.ess, np.float32)
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
        """Draw ``n_samples`` per star. The driver passes the same ``seed`` for every batch of a run: a star's draws
        must depend only on ``seed`` and its ``source_id``, not on the batch it falls in."""
        ...

    def describe(self) -> dict:
        """A JSON-serialisable description (model path, fingerprint, solver) stored in the output."""
        ...
