"""C2ST (sbibm's MLP classifier test): ~0.5 for one distribution, ~1 for disjoint ones."""

import numpy as np
import pytest

from ysocensus.baselines.c2st import c2st


@pytest.mark.parametrize("backend", ["auto", "torch"])
def test_c2st_same_and_disjoint(backend):
    rng = np.random.default_rng(0)
    n = 300 if backend == "auto" else 150
    X, Y = rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
    Z = rng.normal(size=(n, 3)) + 6.0
    assert abs(c2st(X, Y, backend=backend) - 0.5) < 0.1
    assert c2st(X, Z, backend=backend) > 0.97


def test_c2st_drops_nan_rows_and_handles_tiny_sets():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 2))
    X[::10] = np.nan
    assert np.isfinite(c2st(X, rng.normal(size=(60, 2)) + 8.0, backend="torch"))
    assert np.isnan(c2st(X[:3], X[:3]))
