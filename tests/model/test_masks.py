import torch

from model_helpers import random_batch
from ysocensus.model.masks import MaskMix, posterior_states, survey_states, sample_condition_states
from ysocensus.model.tokens import (DROPPED, LATENT, MISSING, N_THETA, OBSERVED, SKY_INDEX, SURVEY_TOKENS, VALUE_ONLY,
                                    is_observed)


def test_condition_masks_respect_measurements():
    b = random_batch(5000, seed=0, p_measured=0.6)
    st = sample_condition_states(b["measured"], MaskMix(), torch.Generator().manual_seed(0))
    m = b["measured"]
    assert (st[:, SKY_INDEX] == OBSERVED).all()
    assert not ((st == MISSING) & m).any()  # missing only where not measured ...
    assert (((st == MISSING) | (st == DROPPED)) | m).all()  # ... and what was not measured is missing or dropped
    assert ((st == LATENT).sum(1) >= 1).all()
    assert ((st[:, :N_THETA] == LATENT).sum(1) >= 1).all()
    kinds = {int(k) for k in torch.unique(st)}
    assert kinds == {LATENT, OBSERVED, MISSING, DROPPED, VALUE_ONLY}
    # some examples condition on nothing but the sky (the prior), some predict an observable
    x = st[:, N_THETA:SKY_INDEX]
    assert (is_observed(x).sum(1) == 0).any()
    assert (x == LATENT).any()


def test_uncertainties_are_withheld_often_enough_to_learn_values_alone():
    """Every σ withheld in about sigma_drop_all of the examples (literature tables without error columns),
    each group's σ in about sigma_drop_group of the rest; only observed x tokens, never θ or the sky."""
    b = random_batch(20000, seed=3, p_measured=1.0)
    mix = MaskMix(posterior=1.0, survey_drop=0.0, gaia_only=0.0, random_subset=0.0, predict_x=0.0, prior=0.0)
    st = sample_condition_states(b["measured"], mix, torch.Generator().manual_seed(3))
    x = st[:, N_THETA:SKY_INDEX]
    assert not (st[:, :N_THETA] == VALUE_ONLY).any() and not (st[:, SKY_INDEX] == VALUE_ONLY).any()
    all_withheld = (x == VALUE_ONLY).all(1).float().mean().item()
    expected = mix.sigma_drop_all + (1 - mix.sigma_drop_all) * mix.sigma_drop_group ** 5  # 5 groups
    assert abs(all_withheld - expected) < 0.015
    none = (x == OBSERVED).all(1).float().mean().item()
    assert abs(none - (1 - mix.sigma_drop_all) * (1 - mix.sigma_drop_group) ** 5) < 0.015


def test_posterior_states_marginalise_what_was_not_searched_and_read_values_without_sigma():
    m = torch.zeros(3, SKY_INDEX + 1, dtype=torch.bool)
    t = SURVEY_TOKENS["tmass"][0]
    w = SURVEY_TOKENS["wise"][0]
    m[:, t] = True
    sig = torch.ones_like(m)
    sig[1, t] = False
    searched = torch.ones_like(m)
    searched[2, w] = False
    st = posterior_states(m, sig, searched)
    assert st[0, t] == OBSERVED and st[1, t] == VALUE_ONLY
    assert st[0, w] == MISSING and st[2, w] == DROPPED


def test_survey_states_drop_other_surveys():
    b = random_batch(50, seed=1, p_measured=1.0)
    st = survey_states(b["measured"], ("tmass",))
    assert (st[:, list(SURVEY_TOKENS["tmass"])] == OBSERVED).all()
    assert (st[:, list(SURVEY_TOKENS["wise"])] == DROPPED).all()


def test_a_dropped_survey_forgets_whether_it_detected_the_star():
    """Marginalising a survey drops its non-detections too: a catalog never cross-matched with 2MASS cannot say
    the star was too faint for 2MASS, so in training DROPPED must not mean "detected, value hidden"."""
    b = random_batch(20000, seed=5, p_measured=0.5)
    mix = MaskMix(posterior=0.0, survey_drop=0.0, gaia_only=1.0, random_subset=0.0, predict_x=0.0, prior=0.0,
                  sigma_drop_all=0.0, sigma_drop_group=0.0)
    st = sample_condition_states(b["measured"], mix, torch.Generator().manual_seed(5))
    gaia = list(SURVEY_TOKENS["gaia"])
    others = [i for i in range(N_THETA, SKY_INDEX) if i not in gaia]
    assert (st[:, others] == DROPPED).all()
    m = b["measured"][:, gaia]
    assert ((st[:, gaia] == OBSERVED) == m).all() and ((st[:, gaia] == MISSING) == ~m).all()
    # in survey_drop masks a dropped group is dropped whether or not the survey measured the star
    mix = MaskMix(posterior=0.0, survey_drop=1.0, gaia_only=0.0, random_subset=0.0, predict_x=0.0, prior=0.0)
    st = sample_condition_states(b["measured"], mix, torch.Generator().manual_seed(6))
    w = list(SURVEY_TOKENS["wise"])
    dropped = (st[:, w] == DROPPED).all(1)
    assert 0.4 < dropped.float().mean() < 0.6
    assert not (st[dropped][:, w] == MISSING).any()
    assert (~b["measured"][dropped][:, w]).any()  # non-detections among the dropped groups


def test_no_mask_reads_an_unsearched_token_as_a_non_detection():
    """Training masks start from the batch's ``searched`` (a faint G_BP: ``surveys.gaia.unreliable_bp``): such a
    token is DROPPED in every kind of mask, as inference reads it, never MISSING."""
    b = random_batch(4000, seed=9, p_measured=0.7)
    searched = torch.ones_like(b["measured"])
    searched[:2000, N_THETA + 2] = False
    measured = b["measured"].clone()
    measured[:2000, N_THETA + 2] = False
    st = sample_condition_states(measured, MaskMix(), torch.Generator().manual_seed(9), searched)
    col = st[:2000, N_THETA + 2]
    assert ((col == DROPPED) | (col == LATENT)).all() and (col == DROPPED).float().mean() > 0.9
    assert (st[2000:, N_THETA + 2] == MISSING).any()  # elsewhere an unmeasured token is still a non-detection
