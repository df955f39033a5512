import numpy as np
import torch

from ysocensus.model import streams
from ysocensus.model.streams import StarStreams, TorchStreams, normals, star_keys, uniforms


def test_a_stars_draws_depend_on_its_key_and_purpose_only():
    ids = np.array([5, 17, -3, 2**62 + 11], np.int64)
    keys = star_keys(20261125, ids)
    assert len(set(keys.tolist())) == 4
    a = normals(keys, streams.PROPOSALS, 40)
    b = normals(keys[[2, 0]], streams.PROPOSALS, 40)
    np.testing.assert_array_equal(a[[2, 0]], b)
    np.testing.assert_array_equal(normals(keys, streams.PROPOSALS, 10), a[:, :10])  # a prefix of the stream
    assert not np.allclose(normals(keys, streams.TOP_UP, 40), a)
    assert not np.array_equal(star_keys(20261126, ids), keys)


def test_stream_draws_are_uniform_and_standard_normal():
    """Moments and a Kolmogorov–Smirnov distance against the exact laws (n = 4·10^5: the 1 % critical value
    of D is 1.63/√n ≈ 0.0026)."""
    keys = star_keys(1, np.arange(2000))
    u = uniforms(keys, streams.RESAMPLE, 200).ravel()
    assert 0.0 < u.min() and u.max() < 1.0
    d_u = np.abs(np.sort(u) - (np.arange(u.size) + 0.5) / u.size).max()
    assert d_u < 0.0026
    z = normals(keys, streams.PROPOSALS, 200).ravel().astype(np.float64)
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1.0) < 0.01
    from math import erf, sqrt
    cdf = 0.5 * (1.0 + np.vectorize(erf)(np.sort(z) / sqrt(2.0)))
    assert np.abs(cdf - (np.arange(z.size) + 0.5) / z.size).max() < 0.0026
    # neighbouring stars are not correlated
    zz = normals(keys, streams.PROPOSALS, 64)
    assert abs(np.corrcoef(zz[:-1].ravel(), zz[1:].ravel())[0, 1]) < 0.01


def test_star_and_torch_streams_give_the_shapes_the_sampler_asks_for():
    rows = np.array([0, 2])
    s = StarStreams.for_stars(3, np.arange(4))
    assert s.normal(rows, streams.PROPOSALS, (8, 5)).shape == (2, 8, 5)
    assert s.uniform(rows, streams.RESAMPLE).shape == (2, 1)
    t = TorchStreams(torch.Generator().manual_seed(0))
    assert t.normal(rows, streams.PROPOSALS, (8, 5)).shape == (2, 8, 5)
    assert t.uniform(rows, streams.RESAMPLE).dtype == torch.float64
