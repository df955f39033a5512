"""Training-set helpers that need no Lightning."""
import numpy as np
import pytest

from ysocensus.model.tokens import OBSERVABLES
from ysocensus.model.trainset import rare_observation


def test_rare_observation_selects_on_x_only():
    n = 6
    cols = {"source_id": np.arange(n)}
    for v in OBSERVABLES:
        cols[v.name] = np.full(n, np.nan)
    cols["phot_g_mean_mag"] = np.array([10.0, 13.9, 14.0, 18.0, np.nan, 18.0])
    cols["teff_lamost"][3] = 5200.0  # a LAMOST spectrum of a faint star
    keep = rare_observation(cols, 14.0)
    # bright (G < 14) or spectroscopic; G = 14 exactly, no G and faint without LAMOST are not rare
    assert keep.tolist() == [True, True, False, True, False, False]


def _sparse_columns():
    """Rows measured by: Gaia only, WISE only, Gaia + WISE, nothing, Gaia + 2MASS + WISE (all faint, no LAMOST)."""
    n = 5
    cols = {"source_id": np.arange(n)}
    for v in OBSERVABLES:
        cols[v.name] = np.full(n, np.nan)
    cols["phot_g_mean_mag"][[0, 2, 4]] = 19.0
    cols["parallax"][[0, 2, 4]] = 0.5
    cols["w1mpro"][[1, 2, 4]] = 15.0
    cols["ks_m"][4] = 15.5
    return cols


def test_rare_observation_counts_sparsely_observed_rows():
    cols = _sparse_columns()
    # the default criteria see none of these faint, non-spectroscopic rows
    assert not rare_observation(cols, 14.0).any()
    # one survey at most: Gaia alone and WISE alone; a star seen by nothing is not "sparse", it is undetected
    assert rare_observation(cols, 14.0, 1).tolist() == [True, True, False, False, False]
    assert rare_observation(cols, 14.0, 2).tolist() == [True, True, True, False, False]


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


def test_population_sample_is_unweighted_and_without_repeats():
    from ysocensus.model.trainset import population_sample

    # the laptop default's three weight classes (thinning 1, 1/50, 1/1000 in config/config.yaml)
    w = np.repeat([1.0, 50.0, 1000.0], [40000, 20000, 10000])
    idx = population_sample(w, 10**9, np.random.default_rng(0))
    assert np.all(np.diff(idx) > 0)  # sorted, each row at most once
    counts = np.bincount(np.searchsorted([40000, 60000], idx, side="right"), minlength=3)
    # real stars per class: 4e4, 1e6, 1e7, so the sample's class shares are 0.0036 : 0.09 : 0.906
    expected = np.array([4e4, 1e6, 1e7]) / 1.104e7 * counts.sum()
    assert np.all(np.abs(counts - expected) < 4 * np.sqrt(expected) + 1)
    assert counts[2] == 10000  # the heaviest rows are all kept: the largest sample without repeats
    small = population_sample(w, 500, np.random.default_rng(0))
    assert len(small) == 500 and len(np.unique(small)) == 500
    assert len(population_sample(np.zeros(3), 10, np.random.default_rng(0))) == 0


def test_training_refuses_a_training_set_built_under_another_bp_rule():
    """The network learns, and the checkpoint carries, the training set's faint-BP rule; a config that asks for
    another one is refused naming the file and the key instead of training a model whose fingerprint lies."""
    from ysocensus.model import config as mconfig
    from ysocensus.model.tokens import Normalisation
    from ysocensus.model.trainset import check_bp_rule

    cfg = mconfig.resolve({}, 0)
    check_bp_rule(Normalisation(bp_max_mag=cfg["training"]["bp_max_mag"]), cfg, "n.json")
    with pytest.raises(ValueError, match=r"n\.json.*train\.training\.bp_max_mag = 20\.3"):
        check_bp_rule(Normalisation(), cfg, "n.json")
    old = mconfig.resolve({"training": {"bp_max_mag": None}}, 0)
    check_bp_rule(Normalisation(), old, "n.json")
