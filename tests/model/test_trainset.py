"""Training-set helpers that need no Lightning."""
import numpy as np

from ysocensus import io
from ysocensus.model.trainset import rare_observation


def test_rare_observation_selects_on_x_only():
    n = 6
    cols = {"source_id": np.arange(n), "phot_g_mean_mag": np.array([10.0, 13.9, 14.0, 18.0, np.nan, 18.0])}
    for lab in io.LAMOST_LABELS:
        cols[lab] = np.full(n, np.nan)
    cols["teff_lamost"][3] = 5200.0  # a LAMOST spectrum of a faint star
    keep = rare_observation(cols, 14.0)
    # bright (G < 14) or spectroscopic; G = 14 exactly, no G and faint without LAMOST are not rare
    assert keep.tolist() == [True, True, False, True, False, False]


def test_truth_is_joined_in_source_id_order_whatever_the_layout():
    # the split's shuffle and the test_population draw follow the row order, so it must not depend on how
    # Arrow's hash join happens to emit rows
    import pyarrow as pa

    from ysocensus.model.trainset import _inner_join

    rng = np.random.default_rng(0)
    sid = rng.permutation(1000).astype(np.int64)
    cat = pa.table({"source_id": sid, "x": sid * 2.0})
    truth = pa.table({"source_id": sid[::-1].copy(), "y": sid[::-1] * 3.0})
    joined = _inner_join(cat, truth)
    assert joined.column("source_id").to_pylist() == sorted(sid.tolist())
    assert np.array_equal(joined.column("y").to_numpy(), joined.column("source_id").to_numpy() * 3.0)
    wide = _inner_join(cat.append_column("z", pa.array(np.zeros(1000))), truth)
    assert wide.column("source_id").equals(joined.column("source_id"))
