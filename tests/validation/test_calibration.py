import numpy as np
import pytest

from ysocensus.validation import calibration as cal


def test_pit_coverage_of_a_calibrated_posterior_is_within_the_noise_floor():
    rng = np.random.default_rng(0)
    n, S = 4000, 64
    mu = rng.normal(size=(n, 2))
    truth = mu + rng.normal(size=(n, 2))
    samples = mu[:, None] + rng.normal(size=(n, S, 2))
    u = cal.pit(samples, truth, rng)
    cov = cal.coverage(u)
    err = cal.max_coverage_error(cov)
    floor = cal.noise_floor(n, 2, n_sim=100)
    assert (err <= floor["per_parameter_p90"] * 1.6).all(), (err, floor)
    assert all(cal.ks_pvalue(u[:, j]) > 1e-3 for j in range(2))


def test_overconfident_posterior_is_caught():
    rng = np.random.default_rng(1)
    n, S = 4000, 64
    mu = rng.normal(size=(n, 1))
    truth = mu + rng.normal(size=(n, 1))
    samples = mu[:, None] + 0.6 * rng.normal(size=(n, S, 1))
    u = cal.pit(samples, truth, rng)
    err = cal.max_coverage_error(cal.coverage(u))
    assert err[0] > 0.15
    assert cal.ks_pvalue(u[:, 0]) < 1e-6
    cov = cal.coverage(u)
    assert (cov[:, 0] < np.asarray(cal.LEVELS)).all()  # every level under-covered


def test_noise_floor_scales_like_one_over_sqrt_n():
    a = cal.noise_floor(500, 5, n_sim=100)["all_parameters_median"]
    b = cal.noise_floor(8000, 5, n_sim=100)["all_parameters_median"]
    assert 2.5 < a / b < 6
    assert 0.02 < cal.noise_floor(2000, 5, n_sim=100)["all_parameters_p90"] < 0.05


def test_roc_auc_and_purity():
    label = np.array([0, 0, 1, 1], bool)
    assert cal.roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), label) == 1.0
    assert cal.roc_auc(np.array([0.9, 0.8, 0.2, 0.1]), label) == 0.0
    assert cal.roc_auc(np.array([0.5, 0.5, 0.5, 0.5]), label) == 0.5
    # weights count like repeated stars
    s = np.array([0.1, 0.6, 0.4, 0.9])
    w = np.array([1, 2, 1, 3])
    rep = np.repeat(np.arange(4), w)
    assert cal.roc_auc(s, label, w) == pytest.approx(cal.roc_auc(s[rep], label[rep]))
    r = cal.purity_at_completeness(np.array([0.9, 0.8, 0.7, 0.1]), np.array([1, 0, 1, 0], bool), 0.9)
    assert r["purity"] == pytest.approx(2 / 3) and r["completeness"] == 1.0


def test_reliability_finds_a_probability_that_is_too_low():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 20000)
    label = rng.uniform(0, 1, 20000) < p
    r = cal.reliability(p, label)
    # calibrated: expected ≈ found within the binomial noise, every bin's fraction ≈ its mean p
    assert abs(r["z"]) < 4 and r["ratio"] == pytest.approx(1.0, abs=0.03)
    assert sum(b["n_stars"] for b in r["bins"]) == 20000
    assert all(b["n_effective"] == pytest.approx(b["n_stars"]) for b in r["bins"])  # unweighted: Kish n = n
    assert all(abs(b["fraction_positive"] - b["mean_p"]) < 0.05 for b in r["bins"])
    # the odds of every star divided by 3 (what a smeared age cliff did to P(young)): flagged
    q = p / (p + 3 * (1 - p))
    low = cal.reliability(q, label)
    assert low["z"] > 10 and low["ratio"] < 0.8
    # weights count like repeated stars
    w = rng.integers(1, 4, 20000)
    rep = np.repeat(np.arange(20000), w)
    rw = cal.reliability(p, label, w)
    assert rw["expected"] == pytest.approx(cal.reliability(p[rep], label[rep])["expected"])
    assert all(b["n_effective"] < b["n_stars"] for b in rw["bins"])  # unequal weights: fewer effective stars


def test_accuracy():
    a = cal.accuracy(np.array([1.0, 2.0, 3.5]), np.array([1.0, 2.5, 3.0]))
    assert a["median_abs_error"] == 0.5 and a["n"] == 3
