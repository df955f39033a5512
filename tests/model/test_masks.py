import torch

from model_helpers import random_batch
from ysocensus.model.masks import MaskMix, survey_states, sample_condition_states
from ysocensus.model.tokens import DROPPED, LATENT, MISSING, N_THETA, OBSERVED, SKY_INDEX, SURVEY_TOKENS


def test_condition_masks_respect_measurements():
    b = random_batch(5000, seed=0, p_measured=0.6)
    st = sample_condition_states(b["measured"], MaskMix(), torch.Generator().manual_seed(0))
    m = b["measured"]
    assert (st[:, SKY_INDEX] == OBSERVED).all()
    assert ((st == MISSING) == ~m).all()  # missing exactly where not measured
    assert ((st == LATENT).sum(1) >= 1).all()
    assert ((st[:, :N_THETA] == LATENT).sum(1) >= 1).all()
    kinds = {int(k) for k in torch.unique(st)}
    assert kinds == {LATENT, OBSERVED, MISSING, DROPPED}
    # some examples condition on nothing but the sky (the prior), some predict an observable
    x = st[:, N_THETA:SKY_INDEX]
    assert ((x == OBSERVED).sum(1) == 0).any()
    assert (x == LATENT).any()


def test_survey_states_drop_other_surveys():
    b = random_batch(50, seed=1, p_measured=1.0)
    st = survey_states(b["measured"], ("tmass",))
    assert (st[:, list(SURVEY_TOKENS["tmass"])] == OBSERVED).all()
    assert (st[:, list(SURVEY_TOKENS["wise"])] == DROPPED).all()
