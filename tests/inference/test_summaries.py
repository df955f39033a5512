"""Vectorised posterior summaries agree with numpy and handle non-finite samples."""

import numpy as np
import pytest

from ysocensus import io
from ysocensus.inference import summaries


def test_quantiles_match_numpy_percentile():
    rng = np.random.default_rng(0)
    s = rng.normal(size=(50, 64, len(io.PARAMETERS))).astype(np.float32)
    got = summaries.quantiles(s)
    want = np.percentile(s.astype(np.float64), io.QUANTILES, axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_non_finite_samples_are_ignored_and_all_nan_gives_nan():
    rng = np.random.default_rng(1)
    s = rng.normal(size=(3, 32, len(io.PARAMETERS))).astype(np.float32)
    s[0, :5, 0] = np.nan
    s[1, :, 2] = np.inf
    got = summaries.quantiles(s)
    np.testing.assert_allclose(got[:, 0, 0], np.percentile(s[0, 5:, 0], io.QUANTILES), rtol=1e-5)
    assert np.isnan(got[:, 1, 2]).all()
    np.testing.assert_allclose(got[:, 2], np.percentile(s[2], io.QUANTILES, axis=0), rtol=1e-5)


def test_p_young_threshold_and_default():
    assert io.log10_age_threshold(50) == pytest.approx(7.69897, abs=1e-5)
    s = np.zeros((2, 4, len(io.PARAMETERS)), np.float32)
    s[0, :, 0] = [6.0, 7.0, 8.0, 9.0]
    s[1, :, 0] = [np.nan, 6.0, 6.5, np.nan]
    out = summaries.summarise(s, io.log10_age_threshold(50), io.log10_age_threshold(10))
    np.testing.assert_allclose(out["p_young"], [0.5, 1.0])
    np.testing.assert_allclose(out["p_young_2"], [0.25, 1.0])
    assert set(out) == {f"{p}_q{q}" for p in io.PARAMETERS for q in io.QUANTILES} | {"p_young", "p_young_2"}
    none = summaries.summarise(s, 7.7, None)
    assert np.isnan(none["p_young_2"]).all()


def test_empty_batch():
    out = summaries.summarise(np.zeros((0, 8, len(io.PARAMETERS)), np.float32), 7.7, 7.0)
    assert all(len(v) == 0 for v in out.values())
