"""The width recalibration of the population posterior (model.width_recalibration) and where it applies (no
Lightning)."""
import numpy as np
import pytest
import torch

from ysocensus import io
from ysocensus.model.checkpoint import load, save_checkpoint
from ysocensus.model.config import merge
from ysocensus.model.network import FlowTransformer, NetworkConfig
from ysocensus.model.posterior import flat_to_frame
from ysocensus.model.prior_ratio import PriorRatio
from ysocensus.model.tokens import N_THETA, N_TOKENS, N_X, OBSERVABLES, Normalisation, TokenArrays, \
    survey_combination_names, survey_flags, tokenize
from ysocensus.model.width_recalibration import K_GRID, WidthCorrection, fit_factors, pattern_name, patterns, scaled
from ysocensus.validation.calibration import LEVELS
from ysocensus.validation.calibration import model_space as to_model_space

NET = NetworkConfig(dim=16, latent_dim=16, heads=2, latent_heads=2, layers=1)


def _gaussian_posteriors(n, k, seed=0, s=64):
    """Stars whose exact posterior of each of 5 parameters is N(m, σ²) (σ differing from star to star), the truth
    drawn from it, and samples from N(m, (k σ)²): a posterior k times too wide."""
    rng = np.random.default_rng(seed)
    m = rng.normal(0.0, 3.0, (n, 5))
    sig = rng.uniform(0.05, 0.5, (n, 5))
    truth = rng.normal(m, sig)
    samples = rng.normal(m[:, None], k * sig[:, None], (n, s, 5))
    return samples, truth


def test_the_fit_finds_how_much_too_wide_a_posterior_is():
    samples, truth = _gaussian_posteriors(4000, 1.3)
    corr, summary = fit_factors(samples, truth, np.full(4000, 6), 300, LEVELS)
    assert np.allclose(corr.factors[6], 1.3, atol=0.06)
    assert summary["patterns"][pattern_name(6)]["fit"] == "own"
    # a calibrated posterior keeps (about) its widths, and one too narrow is widened
    exact, truth = _gaussian_posteriors(4000, 1.0, seed=1)
    narrow, truth_n = _gaussian_posteriors(4000, 0.85, seed=2)
    assert np.allclose(fit_factors(exact, truth, np.zeros(4000, int), 300, LEVELS)[0].factors[0], 1.0, atol=0.04)
    assert np.allclose(fit_factors(narrow, truth_n, np.zeros(4000, int), 300, LEVELS)[0].factors[0], 0.85, atol=0.05)


def test_rescaled_samples_cover_the_truth():
    samples, truth = _gaussian_posteriors(3000, 1.3, seed=3)
    corr, _ = fit_factors(samples, truth, np.full(3000, 2), 300, LEVELS)
    after = scaled(samples, np.asarray(corr.factors[2]))
    u = (after < truth[:, None]).mean(1)
    for level in (0.5, 0.9):  # central intervals at these levels hold the truth that often
        assert np.mean(np.abs(u - 0.5) <= level / 2) == pytest.approx(level, abs=0.03)


def test_few_stars_share_their_surveys_factors_or_keep_their_widths():
    samples, truth = _gaussian_posteriors(1000, 1.3, seed=4)
    codes = np.r_[np.full(900, 2), np.full(100, 3)]  # gaia without σ (900) and with σ (100)
    corr, summary = fit_factors(samples, truth, codes, 300, LEVELS)
    assert np.allclose(corr.factors[3], 1.3, atol=0.08)
    assert summary["patterns"][pattern_name(3)]["fit"] == "pooled over σ"
    corr, _ = fit_factors(samples[:200], truth[:200], codes[:200], 300, LEVELS)
    assert corr.factors == {}
    np.testing.assert_array_equal(corr.factor_array([2, 3]), 1.0)


def test_apply_rescales_about_the_median_in_model_space():
    rng = np.random.default_rng(5)
    theta = np.stack([rng.normal(7.0, 0.3, (3, 64)), 10 ** rng.normal(-0.3, 0.1, (3, 64)), rng.normal(0, 0.2, (3, 64)),
                      10 ** rng.normal(2.2, 0.05, (3, 64)), rng.uniform(0, 1, (3, 64))], -1).astype(np.float32)
    theta[2] = np.nan  # a star without samples keeps NaN
    corr = WidthCorrection({4: (2.0, 2.0, 1.0, 1.0, 0.5)})
    out = corr.apply(theta, np.array([4, 0, 4]))
    np.testing.assert_array_equal(out[1], theta[1])  # a pattern without factors is untouched
    assert np.isnan(out[2]).all()
    before, after = to_model_space(theta[0]), to_model_space(out[0])
    np.testing.assert_allclose(np.median(after, 0), np.median(before, 0), atol=1e-4)  # medians stay
    spread = lambda t: np.subtract(*np.percentile(t, [84, 16], axis=0))  # noqa: E731
    np.testing.assert_allclose(spread(after) / spread(before), [0.5, 0.5, 1.0, 1.0, 2.0], rtol=1e-3)
    assert out.dtype == np.float32


def test_the_correction_roundtrips_and_bad_factors_are_refused():
    corr = WidthCorrection({4: (1.0, 1.1, 1.0, 1.0, 0.9), 61: (1.2, 1.3, 1.1, 1.0, 1.0),
                            7: (1.0, 1.0, 0.8, 1.0, 1.0)})
    d = corr.to_dict()
    assert d["patterns"] == {"4": "gaia (no σ)", "7": "gaia, others not detected (σ)",
                             "61": "gaia+tmass+wise+lamost (σ)"}
    assert WidthCorrection.from_dict(d) == corr
    # factors stored under another coding of the patterns are refused, not applied to the wrong stars
    with pytest.raises(ValueError, match="retrain"):
        WidthCorrection.from_dict({**d, "patterns": {"4": "gaia (σ)"}})
    with pytest.raises(ValueError, match="positive factors"):
        WidthCorrection.from_dict({"factors": {"2": [1.0, 0.0, 1.0, 1.0, 1.0]}})
    with pytest.raises(ValueError, match="5 positive"):
        WidthCorrection.from_dict({"factors": {"2": [1.0, 1.0]}})
    assert K_GRID[0] == 0.75 and K_GRID[-1] == 1.5


def test_patterns_follow_the_surveys_and_gaias_sigma():
    rng = np.random.default_rng(6)
    B = 200
    measured = rng.random((B, N_TOKENS)) < 0.5
    sigma_known = rng.random((B, N_TOKENS)) < 0.5
    arrays = TokenArrays(np.zeros((B, N_TOKENS)), np.zeros((B, N_TOKENS)), np.zeros((B, 4)), measured, np.ones(B),
                         sigma_known=sigma_known)
    codes = patterns(arrays)
    names = survey_combination_names(measured)
    gaia = [N_THETA + i for i, v in enumerate(OBSERVABLES) if v.name in io.GAIA_BANDS]
    sigma = (measured[:, gaia] & sigma_known[:, gaia]).any(1)
    # without a searched array every survey was searched: one that measured nothing is a non-detection
    unseen = (survey_flags(measured) == 0).any(1)
    expect = [f"{n}{', others not detected' if u else ''} ({'σ' if s else 'no σ'})"
              for n, u, s in zip(names, unseen, sigma)]
    assert [pattern_name(c) for c in codes] == expect
    # a catalog never cross-matched with the other surveys: their absence is marginalised, not a non-detection
    only_gaia = np.zeros((B, N_TOKENS), bool)
    only_gaia[:, gaia] = True
    arrays.searched = np.broadcast_to(only_gaia, (B, N_TOKENS))
    np.testing.assert_array_equal((patterns(arrays) & 2) > 0, ~survey_flags(measured)[:, 0])  # Gaia's alone
    # without a sigma_known array every measured value came with its σ
    arrays.sigma_known = None
    assert (patterns(arrays) % 2 == measured[:, gaia].any(1)).all()


def _x(n=6):
    rng = np.random.default_rng(0)
    x = np.full((n, 2 * N_X + 2), np.nan)
    x[:, 1:4] = rng.normal(14, 1, (n, 3))  # G, BP, RP
    x[:, 0] = 5.0  # parallax (mas)
    x[:, N_X:N_X + 4] = 0.01
    x[:, 2 * N_X] = np.linspace(10.0, 300.0, n)
    x[:, 2 * N_X + 1] = np.linspace(-30.0, 60.0, n)
    return x


def test_the_checkpoint_carries_them_and_each_prior_uses_its_own(tmp_path):
    torch.manual_seed(0)
    p = tmp_path / "m.ckpt"
    save_checkpoint(p, FlowTransformer(NET), Normalisation(), merge({"anchors": {"enabled": False},
                                                                     "network": NET.to_dict()}),
                    prior_ratio=PriorRatio([1.0, 50.0, 1000.0]))
    assert load(p).widths == {}  # a checkpoint without one keeps the network's widths
    arrays = tokenize(flat_to_frame(_x()), Normalisation())
    code = int(patterns(arrays)[0])
    assert (patterns(arrays) == code).all() and pattern_name(code) == "gaia, others not detected (σ)"
    corr = WidthCorrection({code: (2.0, 2.0, 2.0, 2.0, 2.0)})
    member = WidthCorrection({code: (1.5, 1.0, 1.0, 1.0, 1.0)})
    save_checkpoint(p, FlowTransformer(NET), Normalisation(), merge({"anchors": {"enabled": False},
                                                                     "network": NET.to_dict()}),
                    prior_ratio=PriorRatio([1.0, 50.0, 1000.0]), widths={"population": corr, "structure": member})
    post = load(p)
    assert post.widths == {"population": corr, "structure": member} and post.describe()["width_recalibration"]

    def draw(prior):
        with post.using_prior(prior):
            return post.sample_tokens(arrays, 64, torch.Generator().manual_seed(3))[0]

    with_widths, member_widths = draw("population"), draw("structure")
    widths, post.widths = post.widths, {}
    without, member_without = draw("population"), draw("structure")
    np.testing.assert_allclose(corr.apply(without, patterns(arrays)), with_widths, rtol=1e-5)
    np.testing.assert_allclose(member.apply(member_without, patterns(arrays)), member_widths, rtol=1e-5)
    post.widths = widths
    s_sim = draw("simulation")
    post.widths = {}
    np.testing.assert_array_equal(draw("simulation"), s_sim)  # the simulation prior's posterior is the network's
    assert post.last_proposals is None or np.isfinite(post.last_proposals).any()
