"""The posterior field (``model.posterior_field``): trained jointly with the Transformer on a linear-Gaussian
toy, it reproduces the exact all-θ-latent posteriors and its log density follows the analytic one; it refuses
conditionals it was not built for."""
import numpy as np
import pytest
import torch

from model_helpers import LinearGaussianToy
from ysocensus.model import sampler
from ysocensus.model.flow import FlowConfig, fit_plain
from ysocensus.model.masks import MaskMix
from ysocensus.model.network import FlowTransformer, NetworkConfig, latent_slots
from ysocensus.model.posterior_field import PosteriorField, all_theta_latent
from ysocensus.model.tokens import N_THETA, N_TOKENS

D = 4
TH = list(range(N_THETA))
X = [N_THETA + j for j in range(D)]


def test_all_theta_latent_selects_exactly_the_posterior_rows():
    idx = torch.tensor([[0, 1, 2, 3, 4, 0], [0, 1, 2, 3, 4, 7], [1, 2, 3, 4, 0, 0], [0, 1, 2, 3, 4, 0]])
    ok = torch.tensor([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 1, 0]], dtype=torch.bool)
    assert all_theta_latent(idx, ok).tolist() == [True, False, False, False]
    assert not all_theta_latent(idx[:, :3], ok[:, :3]).any()  # fewer slots than θ


def test_readout_ignores_unobserved_tokens():
    torch.manual_seed(0)
    field = PosteriorField(8, width=16, layers=2, heads=2)
    h = torch.randn(2, 4, 8)
    ok = torch.tensor([[True, True, False, False], [False, False, False, False]])
    c = field.readout(h, ok)
    assert c.shape == (2, N_THETA * 8)
    h2 = h.clone()
    h2[0, 2:] = 100.0  # what an unobserved token holds must not matter
    assert torch.equal(field.readout(h2, ok)[0], c[0])
    assert torch.equal(c[1], torch.zeros(N_THETA * 8))  # nothing observed: zeros, not NaN
    h3 = h.clone()
    h3[0, 1] += torch.randn(8)  # an observed token does matter
    assert not torch.allclose(field.readout(h3, ok)[0], c[0])


def test_a_network_without_the_field_says_so():
    net = FlowTransformer(NetworkConfig(dim=16, latent_dim=16, heads=2, latent_heads=2, layers=1)).eval()
    state = torch.tensor(LinearGaussianToy(D=D, seed=1).states(2, TH, X))
    lat_idx, lat_ok = latent_slots(state)
    cond = sampler.Conditioning(torch.zeros(2, N_TOKENS), torch.zeros(2, N_TOKENS), torch.zeros(2, 4), state,
                                lat_idx, lat_ok)
    with pytest.raises(ValueError, match="no posterior field"):
        sampler.sample(net, cond, 4, 2, "midpoint", field=True)


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    toy = LinearGaussianToy(D=D, seed=1)
    batch = toy.training_batch(20000, seed=2)
    net = FlowTransformer(NetworkConfig(dim=32, latent_dim=32, heads=2, latent_heads=2, layers=2,
                                        posterior_field=True, posterior_field_width=64))
    mix = MaskMix(posterior=0.6, survey_drop=0.0, gaia_only=0.0, random_subset=0.2, predict_x=0.1, prior=0.1,
                  theta_observed_prob=0.3)
    hist = fit_plain(net, batch, mix, FlowConfig(), steps=700, batch_size=256, lr=5e-3, seed=0)
    return toy, net, hist


def _cond(toy, z, observed):
    n = z.shape[0]
    values = np.zeros((n, N_TOKENS), np.float32)
    values[:, :N_THETA + toy.D] = z
    state = torch.tensor(toy.states(n, TH, observed))
    values[state.numpy() != 1] = 0
    lat_idx, lat_ok = latent_slots(state)
    return sampler.Conditioning(torch.tensor(values), torch.zeros(n, N_TOKENS), torch.zeros(n, 4), state,
                                lat_idx, lat_ok)


@pytest.mark.slow
def test_field_posteriors_match_the_analytic_ones(trained):
    toy, net, _ = trained
    rng = np.random.default_rng(5)
    report = {}
    for name, observed in {"all_x": X, "x0_x1": X[:2], "prior": []}.items():
        z = toy.simulate(16, rng)
        s = sampler.sample(net, _cond(toy, z, observed), 300, 8, "midpoint", field=True,
                           generator=torch.Generator().manual_seed(5)).numpy()
        mean_err, width_err, broken = [], [], []
        for i in range(len(z)):
            mu, cov = toy.conditional(z[i], TH, observed)
            sd = np.sqrt(np.diag(cov))
            mean_err.append((s[i].mean(0) - mu) / sd)
            width_err.append(np.log(s[i].std(0) / sd))
            broken.append((toy.conditional(z[i], TH, [])[0] - mu) / sd)
        rms = lambda a: float(np.sqrt(np.mean(np.square(a))))  # noqa: E731
        report[name] = (round(rms(mean_err), 3), round(float(np.mean(np.abs(width_err))), 3), round(rms(broken), 3))
    print("posterior field on the toy (rms mean error / σ, mean |log width ratio|, model ignoring x):", report)
    for name, (m, w, b) in report.items():
        # same bounds as the Transformer's in test_toy_analytic (0.05-0.22 σ, 3-5 % measured there)
        assert m < 0.4 and w < 0.2, (name, report)
        if name != "prior":  # a field that ignored the observation would be off by 0.6-0.9 σ
            assert b > 0.5 and m < 0.5 * b, (name, report)


@pytest.mark.slow
def test_field_log_density_matches_the_analytic_one(trained):
    toy, net, _ = trained
    from scipy.stats import multivariate_normal
    rng = np.random.default_rng(7)
    z = toy.simulate(6, rng)
    pts, exact = [], []
    for i in range(len(z)):
        mu, cov = toy.conditional(z[i], TH, X)
        p = rng.multivariate_normal(mu, cov, size=20)
        pts.append(p)
        exact.append(multivariate_normal(mu, cov).logpdf(p))
    lp = sampler.log_prob(net, _cond(toy, z, X), torch.tensor(np.array(pts), dtype=torch.float32), n_steps=16,
                          field=True).numpy()
    exact = np.array(exact)
    assert np.corrcoef(lp.ravel(), exact.ravel())[0, 1] > 0.8, (lp, exact)
    assert np.median(np.abs(lp - exact)) < 1.5


def test_the_folded_sampling_field_is_the_trained_one():
    # velocity() folds y_in and theta_in into one per-star map; it must be forward() up to float rounding
    torch.manual_seed(0)
    pf = PosteriorField(16, width=32, layers=3, heads=2).eval()
    with torch.no_grad():
        for p in pf.parameters():
            p.normal_(0, 0.3)
    cond, y = torch.randn(5, 1, 32), torch.randn(5, 9, N_THETA)
    c, s = torch.randn(5, N_THETA), torch.rand(5, N_THETA) + 0.5
    for cc, ss in ((None, None), (c, s)):
        f = pf.velocity(cond, cc, ss)
        for t in (0.0, 0.4, 1.0):
            torch.testing.assert_close(f(y, t), pf(cond, y, torch.full((1, 1), t), cc, ss), atol=1e-4, rtol=0)
    # bfloat16 trunk: a sampling copy (the module's own weights stay float32), ~1 % of the velocity's scale
    v32, v16 = pf.velocity(cond, c, s)(y, 0.5), pf.velocity(cond, c, s, "bfloat16")(y, 0.5)
    assert v16.dtype == torch.float32 and pf.out.weight.dtype == torch.float32
    assert (v16 - v32).abs().max() < 0.05 * v32.abs().max()
    with pytest.raises(ValueError, match="precision"):
        sampler.sample(FlowTransformer(NetworkConfig(posterior_field=True)).eval(), _cond(
            LinearGaussianToy(D=D, seed=1), np.zeros((1, N_THETA + D), np.float32), X), 4, 2, field=True,
            precision="float16")


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_field_samples_do_not_depend_on_the_thread_count_or_the_batch(precision):
    # 7 stars: the per-star conditioning is then a few-row matrix product, which 2 CPU threads split differently
    # from 1 unless it runs on one (sampler._one_thread); the stars' samples must be the same bytes either way.
    # A star's samples must also be the same whether it is sampled alone or with others, in calls of at least
    # proposal.MIN_CALL_STARS stars (what NetworkPosterior.draws pads a call to): an AVX2 CPU takes another kernel
    # for a 1- or 3-row product than for 7 or more, and rounds its last bit differently
    from ysocensus.model.posterior.proposal import MIN_CALL_STARS

    torch.manual_seed(3)
    net = FlowTransformer(NetworkConfig(affine_head=True, affine_widths=(0.05, 0.15), posterior_field=True)).eval()
    toy = LinearGaussianToy(D=D, seed=1)
    z = toy.simulate(7, np.random.default_rng(2))
    c = _cond(toy, z, X)
    noise = torch.randn(7, 64, c.lat_idx.shape[1], generator=torch.Generator().manual_seed(0))
    out = {}
    keep = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            cond = sampler.Conditioning(c.values, c.logsig, c.sky, c.state, c.lat_idx, c.lat_ok)
            out[threads] = sampler.sample(net, cond, 64, 4, "midpoint", field=True, noise=noise, precision=precision)
        # the first 3 stars alone, padded with copies of the last one as NetworkPosterior.draws pads a call
        run = np.r_[0, 1, 2, np.repeat(2, MIN_CALL_STARS - 3)]
        part = sampler.Conditioning(c.values[run], c.logsig[run], c.sky[run], c.state[run], c.lat_idx[run],
                                    c.lat_ok[run])
        alone = sampler.sample(net, part, 64, 4, "midpoint", field=True, noise=noise[run], precision=precision)[:3]
    finally:
        torch.set_num_threads(keep)
    assert torch.equal(out[1], out[2])
    assert torch.equal(alone, out[2][:3])
