"""The NPE baseline's context vector: filled values plus missingness indicators."""

import numpy as np
import pytest

from ysocensus.model.tokens import N_X, Normalisation

zuko = pytest.importorskip("zuko")


def _frame(n=64, seed=0):
    rng = np.random.default_rng(seed)
    g = rng.uniform(10, 18, n)
    f = {"l": rng.uniform(0, 360, n), "b": rng.uniform(-30, 30, n), "phot_g_mean_mag": g,
         "phot_g_mean_flux_over_error": np.full(n, 500.0), "parallax": rng.uniform(0.5, 5, n),
         "parallax_error": np.full(n, 0.1), "weight": np.ones(n)}
    f["parallax"][::4] = np.nan
    f.update(log10_age_yr=rng.uniform(6, 10, n), initial_mass_msun=10 ** rng.uniform(-1, 0.5, n),
             feh=rng.normal(0, 0.2, n), distance_pc=1000 / np.nan_to_num(f["parallax"], nan=2.0),
             av_mag=rng.uniform(0, 2, n))
    return f


def test_features_fill_and_flag_missing():
    from ysocensus.baselines.npe import N_FEATURES, features

    x = features(_frame(), Normalisation())
    assert x.shape == (64, N_FEATURES) and np.isfinite(x).all()
    flags = x[:, 2 * N_X:3 * N_X]
    assert flags[::4, 0].all() and not flags[1::4, 0].any()     # parallax missing every 4th row
    assert (x[::4, 0] == 0).all()                               # filled with 0
    assert flags[:, 2:].all()                                   # BP ... LAMOST never measured here


def test_npe_trains_and_samples(tmp_path):
    import pyarrow as pa

    from ysocensus.baselines.npe import NPEPosterior, train_npe

    tab = pa.table(_frame(256))
    post = train_npe(tab, pa.table(_frame(64, 1)), Normalisation(), minutes=0.02, batch_size=64, hidden=16)
    s = post.sample_frame(_frame(8, 2), 16)
    assert s.shape == (8, 16, 5) and np.isfinite(s).all()
    post.save(tmp_path / "npe.pt")
    again = NPEPosterior.load(tmp_path / "npe.pt")
    assert again.info["train_rows"] == 256
