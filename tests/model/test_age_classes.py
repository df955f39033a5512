"""The age classes (``model.age_classes``): the class of an age, the post-stratification of a star's proposals to the
classifier's class masses, the top-up of stars whose proposals miss a class, and the classifier in a checkpoint."""

import numpy as np
import pytest
import torch

from ysocensus import io
from ysocensus.model.age_classes import (DEFAULT_EDGES_MYR, AgeClassifier, age_class, from_payload,
                                         posterior_rows, stratified_log_weights, unreached)
from ysocensus.model.checkpoint import load, save_checkpoint
from ysocensus.model.config import merge
from ysocensus.model.network import FlowTransformer, NetworkConfig
from ysocensus.model.posterior import FlowPosterior, flat_to_frame
from ysocensus.model.tokens import DROPPED, LATENT, MISSING, N_THETA, N_TOKENS, N_X, OBSERVED, SKY_INDEX, Normalisation

EDGES = np.log10(np.asarray(DEFAULT_EDGES_MYR)) + 6.0  # 7.0, 7.69897


def test_the_default_classes_are_the_catalogs_two_thresholds():
    assert DEFAULT_EDGES_MYR == (io.SECOND_YOUNG_THRESHOLD_MYR, io.YOUNG_THRESHOLD_MYR)


def test_an_age_on_an_edge_is_in_the_older_class_as_p_young_counts_it():
    # p_young = P(age < threshold) (inference.summaries): an age equal to the threshold is not young
    got = age_class(np.array([6.0, 7.0, 7.5, EDGES[1], 9.0, np.nan]), EDGES)
    assert got.tolist() == [0, 1, 1, 2, 2, -1]


def _weighted_class_mass(log_age, log_w, K=3):
    w = np.exp(log_w - np.max(log_w, 1, keepdims=True))
    w[~np.isfinite(w)] = 0
    k = age_class(log_age, EDGES)
    return np.stack([(w * (k == c)).sum(1) for c in range(K)], 1) / w.sum(1, keepdims=True)


def test_the_stratified_weights_give_the_proposals_the_classifiers_class_masses():
    rng = np.random.default_rng(0)
    ages = rng.uniform(6.0, 9.5, (5, 200))  # every class reached
    p = rng.dirichlet(np.ones(3), 5)
    lw = stratified_log_weights(ages, np.log(p), EDGES)
    np.testing.assert_allclose(_weighted_class_mass(ages, lw), p, rtol=1e-12)
    # within a class every proposal of a star keeps the same weight: the flow's shape there is kept
    k = age_class(ages, EDGES)
    for b in range(5):
        assert all(np.ptp(lw[b][k[b] == c]) == 0 for c in range(3))


def test_a_class_no_proposal_reaches_keeps_no_mass_and_the_rest_are_renormalised():
    ages = np.array([[6.5, 6.6, 7.3, 7.4, 7.5, 7.6]])  # classes 0 and 1 only
    p = np.array([[0.2, 0.3, 0.5]])
    got = _weighted_class_mass(ages, stratified_log_weights(ages, np.log(p), EDGES))
    np.testing.assert_allclose(got, [[0.4, 0.6, 0.0]], rtol=1e-12)


def test_stars_left_as_drawn_and_failed_proposals():
    ages = np.array([[8.0, 8.5, 9.0], [6.0, 8.0, np.nan], [6.0, 8.0, 9.0]])
    lp = np.log(np.array([[0.5, 0.2, 0.3], [0.5, 0.2, 0.3], [np.nan, 0.5, 0.5]]))
    lw = stratified_log_weights(ages, lp, EDGES)
    assert (lw[0] == 0).all()  # one class among the proposals: as the flow drew them
    assert lw[1, 2] == -np.inf and np.isfinite(lw[1, :2]).all()  # a failed proposal keeps no weight
    np.testing.assert_allclose(lw[1, :2], [np.log(0.5 / 0.5), np.log(0.3 / 0.5)])  # q̂ over the finite ones
    assert (lw[2] == 0).all()  # no finite probabilities: as drawn


def test_unreached_flags_a_class_the_classifier_weighs_and_no_proposal_reaches():
    ages = np.array([[8.0, 8.5, 9.0], [8.0, 8.5, 9.0], [6.0, 7.2, 9.0]])
    p = np.array([[0.001, 0.001, 0.998], [0.1, 1e-9, 0.9], [0.1, 0.1, 0.8]])
    assert unreached(ages, np.log(p), EDGES, 1 / 64).tolist() == [False, True, False]


def test_posterior_rows_are_the_conditions_the_production_path_answers():
    st = np.full((3, N_TOKENS), OBSERVED, np.int8)
    st[:, :N_THETA] = LATENT
    st[1, N_THETA] = LATENT  # an observable predicted: not a posterior of θ
    st[2, 0] = OBSERVED  # a θ conditioned on
    st[0, N_THETA + 1], st[0, N_THETA + 2] = MISSING, DROPPED
    st[:, SKY_INDEX] = OBSERVED
    assert posterior_rows(torch.as_tensor(st)).tolist() == [True, False, False]


def test_the_classifier_roundtrips_and_bad_edges_are_refused():
    torch.manual_seed(0)
    clf = AgeClassifier(40, EDGES, width=16)
    back = from_payload({"config": clf.config(), "state_dict": clf.state_dict()})
    x = torch.randn(7, 40)
    torch.testing.assert_close(back(x), clf(x))
    assert torch.allclose(clf(x).exp().sum(-1), torch.ones(7))
    assert from_payload(None) is None
    with pytest.raises(ValueError, match="ascending"):
        AgeClassifier(40, [7.7, 7.0])


NET = NetworkConfig(dim=16, latent_dim=16, heads=2, latent_heads=2, layers=1, posterior_field=True,
                    posterior_field_width=32)
# model space centred on the classes: log age 7.4 ± 0.8, so the random network's proposals reach all three
STATS = Normalisation(theta_mean=[7.4, -0.3, 0.0, 2.5, 0.5], theta_std=[0.8, 0.3, 0.3, 0.3, 0.5])


def _x(n=6):
    rng = np.random.default_rng(0)
    x = np.full((n, 2 * N_X + 2), np.nan)
    x[:, 1:4] = rng.normal(14, 1, (n, 3))
    x[:, N_X + 1:N_X + 4] = 0.01
    x[:, 2 * N_X] = np.linspace(10.0, 300.0, n)
    x[:, 2 * N_X + 1] = np.linspace(-30.0, 60.0, n)
    return x


def _constant_classifier(p):
    """A classifier that says ``p`` for every star (its last layer's bias)."""
    clf = AgeClassifier(N_THETA * NET.dim, EDGES, width=8)
    with torch.no_grad():
        clf.mlp[-1].weight.zero_()
        clf.mlp[-1].bias.copy_(torch.log(torch.as_tensor(p, dtype=torch.float32)))
    return clf.eval()


def _posterior(clf=None, stats=STATS, **kw):
    torch.manual_seed(0)
    return FlowPosterior(FlowTransformer(NET).eval(), stats, n_steps=4, field="posterior_field", prior="simulation",
                         age_classifier=clf, **kw)


def test_a_posterior_takes_the_classifiers_p_young_from_its_weights_and_its_draws():
    from ysocensus.inference.summaries import weighted_probability_below

    frame = flat_to_frame(_x())
    plain = _posterior()
    s0, _ = plain.sample_frame(frame, 256, torch.Generator().manual_seed(3))
    assert plain.last_proposals is None  # no chain, no classes: the network's own draws
    young0 = (s0[..., 0] < EDGES[1]).mean(1)
    assert ((young0 > 0.05) & (young0 < 0.95)).all()  # the test needs both sides among the proposals

    post = _posterior(_constant_classifier([0.1, 0.6, 0.3]))
    s, status = post.sample_frame(frame, 256, torch.Generator().manual_seed(3))
    assert (status == "ok").all() and post.describe()["corrections"] == ["age_classes"]
    p = weighted_probability_below(post.last_proposals[..., 0], post.last_log_weights, EDGES[1])
    np.testing.assert_allclose(p, 0.7, atol=1e-5)
    # the resampled draws follow the weights (systematic resampling: within 1/n plus rounding)
    np.testing.assert_allclose((s[..., 0] < EDGES[1]).mean(1), 0.7, atol=0.02)
    # same seed, same posterior; the proposals are the network's own, only their weights changed
    s2, _ = post.sample_frame(frame, 256, torch.Generator().manual_seed(3))
    np.testing.assert_array_equal(s, s2)


def test_stars_whose_proposals_miss_a_class_get_more_proposals():
    frame = flat_to_frame(_x())
    # 40 % of the mass below 10 Myr, where few of the network's proposals go at this centre
    older = Normalisation(theta_mean=[8.3, -0.3, 0.0, 2.5, 0.5], theta_std=[0.4, 0.3, 0.3, 0.3, 0.5])
    post = _posterior(_constant_classifier([0.4, 0.3, 0.3]), older, min_ess=1.0, max_oversample=16)
    post.sample_frame(frame, 16, torch.Generator().manual_seed(3))
    reached = (post.last_proposals[..., 0] < EDGES[0]).any(1)
    assert post.last_proposals.shape[1] > 16 and reached.any()


def test_the_checkpoint_carries_the_classifier(tmp_path):
    torch.manual_seed(0)
    clf = _constant_classifier([0.2, 0.2, 0.6])
    p = tmp_path / "m.ckpt"
    cfg = merge({"anchors": {"enabled": False}, "network": NET.to_dict()})
    save_checkpoint(p, FlowTransformer(NET), STATS, cfg)
    assert load(p).proposal.age_classifier is None  # a checkpoint without one keeps the flow's class masses
    save_checkpoint(p, FlowTransformer(NET), STATS, cfg, age_classifier=clf)
    got = load(p).proposal.age_classifier
    x = torch.randn(3, N_THETA * NET.dim)
    torch.testing.assert_close(got(x), clf(x))
