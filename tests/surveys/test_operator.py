"""The torch measurement operator agrees with the numpy forward model and has finite gradients."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ysocensus import io  # noqa: E402
from ysocensus.surveys.operator import MeasurementOperator, forward_numpy  # noqa: E402


@pytest.fixture(scope="module")
def operator(isochrones, bc_grid):
    return MeasurementOperator.from_grids(isochrones, bc_grid)


def _theta(n=20000, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.uniform(5.5, 10.2, n), rng.uniform(-1.3, 1.5, n), rng.uniform(-2.5, 0.5, n),
            rng.uniform(10, 3000, n), rng.uniform(0, 8, n))


def test_operator_agrees_with_numpy_forward_model(operator, isochrones, bc_grid):
    theta = _theta()
    mags_np, plx_np, valid_np = forward_numpy(isochrones, bc_grid, *theta)
    mags, plx, valid = operator(*(torch.tensor(x, dtype=torch.float32) for x in theta))
    assert mags.shape == (len(theta[0]), len(io.MAGNITUDES))
    np.testing.assert_array_equal(valid.numpy(), valid_np)
    assert valid_np.mean() > 0.5
    diff = np.abs(mags.numpy()[valid_np] - mags_np[valid_np])
    assert diff.max() < 0.01, diff.max()
    np.testing.assert_allclose(plx.numpy(), plx_np, rtol=1e-5)
    assert torch.isfinite(mags).all()                    # finite also where invalid


def test_operator_gradients_are_finite_everywhere(operator):
    theta = _theta(5000, seed=1)
    # include points far outside the grids and at edges
    extra = [np.array([3.0, 11.0, 7.0, 5.0]), np.array([-3.0, 3.0, 2.5, -1.0]), np.array([-5.0, 1.0, 0.0, 0.3]),
             np.array([0.5, 1e5, 100.0, 50.0]), np.array([-1.0, 0.0, 50.0, 6.0])]
    theta = [np.concatenate([t, e]) for t, e in zip(theta, extra)]
    ts = [torch.tensor(x, dtype=torch.float32, requires_grad=True) for x in theta]
    mags, plx, valid = operator(*ts)
    (mags.sum() + plx.sum()).backward()
    for t in ts:
        assert torch.isfinite(t.grad).all()
    assert not valid[-4:].any()
    # d m / d A_V is the band extinction: positive, decreasing with wavelength
    i = int(np.flatnonzero(valid.numpy())[0])
    ts = [torch.tensor(x[i:i + 1], dtype=torch.float64, requires_grad=True) for x in theta]
    jac = torch.autograd.functional.jacobian(lambda av: operator(ts[0], ts[1], ts[2], ts[3], av)[0], ts[4])
    a = jac.squeeze().numpy()
    assert np.all(a > 0) and a[1] > a[0] > a[2] > a[3] > a[5]
    # d m / d log10 d = 5 / ln 10 per unit log: dm/dd = 5 / (d ln 10)
    jd = torch.autograd.functional.jacobian(lambda d: operator(ts[0], ts[1], ts[2], d, ts[4])[0], ts[3])
    np.testing.assert_allclose(jd.squeeze().numpy(), 5 / (theta[3][i] * np.log(10)), rtol=1e-4)


def test_operator_batch_shapes_and_device_buffers(operator):
    x = [torch.full((4, 3), v) for v in (7.0, 0.0, 0.0, 100.0, 1.0)]
    mags, plx, valid = operator(*x)
    assert mags.shape == (4, 3, 10) and plx.shape == (4, 3) and valid.shape == (4, 3)
    assert valid.all()
    names = dict(operator.named_buffers())
    assert "bc_rows" in names and "track_table" in names


def test_operator_from_files(tmp_path, isochrones, bc_grid):
    isochrones.save(tmp_path / "iso.npz")
    bc_grid.save(tmp_path / "bc.npz")
    op = MeasurementOperator.from_files(tmp_path / "iso.npz", tmp_path / "bc.npz")
    m, _, v = op(torch.tensor([9.0]), torch.tensor([0.0]), torch.tensor([0.0]), torch.tensor([10.0]),
                 torch.tensor([0.0]))
    assert v.item() and abs(m[0, 0].item() - 4.7) < 0.3     # a 1 Gyr solar-mass star, M_G ≈ 4.7
