"""TEST DOUBLES of a trained posterior — for testing the inference driver, CLI and maps only.

``GaussianTestSampler`` is not a model: it draws from a broad Gaussian around a crude photometric-parallax
estimate, so that its output depends on each row's content (and only on it, given the seed) and is
finite. Product code never uses it.
"""

from __future__ import annotations

import time

import numpy as np

from ysocensus import io
from ysocensus.inference.protocol import SampleResult


class GaussianTestSampler:
    """TEST DOUBLE: samples ~ N(mean(row), widths) in physical units of io.PARAMETERS."""

    widths = np.array([0.5, 0.2, 0.3, 0.25, 0.4])

    def __init__(self, delay_s: float = 0.0):
        self.delay_s = delay_s
        self.calls = 0

    def sample(self, batch, n_samples, seed):
        self.calls += 1
        if self.delay_s:
            time.sleep(self.delay_s)
        n = len(batch["source_id"])
        g = batch["phot_g_mean_mag"]
        plx, eplx = batch["parallax"], batch["parallax_error"]
        with np.errstate(all="ignore"):
            d_plx = np.where((plx / eplx) > 5, 1000.0 / plx, np.nan)
            d_phot = 10 ** ((np.where(np.isfinite(g), g, 15.0) - 5.0 + 5.0) / 5.0)
            d = np.where(np.isfinite(d_plx), d_plx, d_phot)
            excess = np.nan_to_num(batch["w1mpro"] - batch["w3mpro"], nan=0.0)
        age = np.where(excess > 1.0, 6.5, 9.0)
        mean = np.stack([age, np.full(n, 0.8), np.zeros(n), d, np.full(n, 0.5)], -1)
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((n, n_samples, len(io.PARAMETERS)))
        samples = mean[:, None, :] + z * self.widths
        samples[..., 3] = mean[:, None, 3] * 10 ** (z[..., 3] * 0.1)
        samples[..., 1] = np.abs(samples[..., 1]) + 0.08
        return SampleResult(samples.astype(np.float32), np.full(n, "ok", dtype=object))

    def describe(self):
        return {"name": "GaussianTestSampler (test double)"}
