"""Condition masks: which tokens are latent, observed, missing or dropped for each training example.

The state of every token (``tokens.LATENT/OBSERVED/MISSING/DROPPED``) is drawn per example, mixing

- ``posterior``: all θ latent, every measured x observed, every unmeasured x missing (what inference
  asks: the survey's own not-at-random missingness is kept and told to the model);
- ``survey_drop``: whole surveys (Gaia photometry, parallax, 2MASS, WISE, LAMOST) dropped at random, so
  the same model answers "Gaia only", "Gaia + 2MASS", ... (the widths-shrink figure uses this);
- ``gaia_only``: Gaia photometry and parallax kept, every other survey dropped: a Gaia archive query that was
  never cross-matched, the catalog users bring most often (``survey_drop`` alone gives it in 1 of 32 of its
  examples);
- ``random_subset``: each measured x dropped with its own probability, and occasionally some θ observed
  (e.g. a known distance), the Simformer-style arbitrary conditionals;
- ``predict_x``: some measured x latent (predict a band from the others);
- ``prior``: every x dropped, so a star with nothing observed gets p(θ | l, b), the prior along its line
  of sight.

On top of every kind, uncertainties are withheld (``VALUE_ONLY``): all of a star's σ with probability
``sigma_drop_all``, otherwise each group's (Gaia photometry, parallax, 2MASS, WISE, LAMOST) with probability
``sigma_drop_group``. Literature tables often give magnitudes and parallaxes without their errors, and a
simulated σ is only as honest as its error model; withholding it often enough keeps the posterior from the
values alone calibrated, and lets a user's catalog without σ columns be answered without inventing them.

A dropped (marginalised) token is not the same as a missing one: "not measured" carries information
(too faint, outside the footprint), "not conditioned on" carries none. Dropping a survey forgets both its
values and whether it detected the star: a catalog never cross-matched with 2MASS cannot say that the star was
too faint for 2MASS, so a dropped token must not imply "detected" either. The sky token is always observed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from ysocensus.io import SURVEYS
from ysocensus.model.tokens import (DROPPED, LATENT, MISSING, N_THETA, N_TOKENS, OBSERVED, PARALLAX_TOKEN,
                                    SKY_INDEX, SURVEY_TOKENS, VALUE_ONLY, is_observed)

#: groups dropped together by the survey_drop masks
DROP_GROUPS = {
    "gaia_phot": tuple(i for i in SURVEY_TOKENS["gaia"] if i != PARALLAX_TOKEN),
    "parallax": (PARALLAX_TOKEN,),
    **{s: SURVEY_TOKENS[s] for s in SURVEYS if s != "gaia"},
}


@dataclass
class MaskMix:
    """Probabilities of each kind of condition mask (normalised when drawn)."""

    posterior: float = 0.45
    survey_drop: float = 0.25
    gaia_only: float = 0.25
    random_subset: float = 0.08
    predict_x: float = 0.07
    prior: float = 0.03
    theta_observed_prob: float = 0.15  # in random_subset masks: chance that each θ is conditioned on
    sigma_drop_all: float = 0.25  # on top of any kind: every σ withheld (VALUE_ONLY)
    sigma_drop_group: float = 0.2  # otherwise: each DROP_GROUPS group's σ withheld

    def to_dict(self):
        return asdict(self)


def posterior_states(measured: torch.Tensor, sigma_known: torch.Tensor | None = None,
                     searched: torch.Tensor | None = None) -> torch.Tensor:
    """θ latent; measured x observed (``VALUE_ONLY`` where ``sigma_known`` is False); unmeasured x missing
    where ``searched`` (default) and dropped where not; the sky observed: [B, N] int8."""
    i8 = dict(dtype=torch.int8, device=measured.device)
    absent = torch.tensor(MISSING, **i8)
    if searched is not None:
        absent = torch.where(searched, absent, torch.tensor(DROPPED, **i8))
    seen = torch.tensor(OBSERVED, **i8)
    if sigma_known is not None:
        seen = torch.where(sigma_known, seen, torch.tensor(VALUE_ONLY, **i8))
    state = torch.where(measured, seen, absent)
    state[:, :N_THETA] = LATENT
    state[:, SKY_INDEX] = OBSERVED
    return state


def drop(state: torch.Tensor, which: torch.Tensor) -> torch.Tensor:
    """Marginalise the x tokens in ``which`` [B, N] bool: observed and missing alike become ``DROPPED`` (θ, latent
    x and the sky are left alone)."""
    which = which.clone()
    which[:, :N_THETA] = False
    which[:, SKY_INDEX] = False
    known = is_observed(state) | (state == MISSING)
    return torch.where(which & known, torch.tensor(DROPPED, dtype=torch.int8, device=state.device), state)


def withhold_sigma(state: torch.Tensor, which: torch.Tensor) -> torch.Tensor:
    """Mark OBSERVED x tokens in ``which`` [B, N] bool as observed without their σ (``VALUE_ONLY``)."""
    which = which.clone()
    which[:, :N_THETA] = False
    which[:, SKY_INDEX] = False
    return torch.where(which & (state == OBSERVED), torch.tensor(VALUE_ONLY, dtype=torch.int8), state)


def survey_states(measured: torch.Tensor, groups: tuple[str, ...]) -> torch.Tensor:
    """Posterior states conditioned only on the given groups of DROP_GROUPS (others dropped)."""
    state = posterior_states(measured)
    keep = torch.zeros(N_TOKENS, dtype=torch.bool)
    for g in groups:
        keep[list(DROP_GROUPS[g])] = True
    keep[SKY_INDEX] = True
    keep[:N_THETA] = True
    return drop(state, ~keep.expand_as(measured))


def sample_condition_states(measured: torch.Tensor, mix: MaskMix, generator: torch.Generator | None = None,
                            searched: torch.Tensor | None = None) -> torch.Tensor:
    """Draw a condition mask per example: [B, N] int8 token states (see the module docstring); ``searched``
    (``TokenArrays.searched``; None: all) marks the unmeasured x that no mask may read as a non-detection (e.g. a
    faint G_BP, ``surveys.gaia.unreliable_bp``): they stay dropped, as at inference."""
    B, N = measured.shape
    dev = measured.device
    g = generator

    def rand(*shape):
        return torch.rand(*shape, generator=g, device=dev)

    state = posterior_states(measured, searched=searched)
    probs = torch.tensor([mix.posterior, mix.survey_drop, mix.gaia_only, mix.random_subset, mix.predict_x,
                          mix.prior], dtype=torch.float32)
    kind = torch.multinomial(probs / probs.sum(), B, replacement=True, generator=g).to(dev)
    is_x = torch.zeros(N, dtype=torch.bool, device=dev)
    is_x[N_THETA:SKY_INDEX] = True

    # survey_drop: each group dropped with probability 1/2
    sd = kind == 1
    if sd.any():
        which = torch.zeros(B, N, dtype=torch.bool, device=dev)
        for idx in DROP_GROUPS.values():
            which[:, list(idx)] |= (rand(B, 1) < 0.5)
        state = torch.where(sd[:, None], drop(state, which), state)

    # gaia_only: every survey but Gaia's photometry and parallax dropped
    go = kind == 2
    if go.any():
        which = torch.zeros(B, N, dtype=torch.bool, device=dev)
        which[:, N_THETA:SKY_INDEX] = True
        which[:, list(SURVEY_TOKENS["gaia"])] = False
        state = torch.where(go[:, None], drop(state, which), state)

    # random_subset: drop each x with a per-example probability; sometimes condition on some θ
    rs = kind == 3
    if rs.any():
        p = rand(B, 1)
        which = (rand(B, N) < p) & is_x
        sub = drop(state, which)
        th_obs = (rand(B, N_THETA) < mix.theta_observed_prob) & measured[:, :N_THETA]
        # keep at least one θ latent
        all_obs = th_obs.all(1)
        th_obs[all_obs, 0] = False
        sub[:, :N_THETA] = torch.where(th_obs, torch.tensor(OBSERVED, dtype=torch.int8, device=dev),
                                       sub[:, :N_THETA])
        state = torch.where(rs[:, None], sub, state)

    # predict_x: some measured x latent
    px = kind == 4
    if px.any():
        which = (rand(B, N) < 0.3) & is_x & is_observed(state)
        sub = torch.where(which, torch.tensor(LATENT, dtype=torch.int8, device=dev), state)
        state = torch.where(px[:, None], sub, state)

    # prior: every x dropped
    pr = kind == 5
    if pr.any():
        state = torch.where(pr[:, None], drop(state, is_x.expand(B, N)), state)

    # uncertainties withheld: all of them, or group by group
    if mix.sigma_drop_all > 0 or mix.sigma_drop_group > 0:
        which = (rand(B, 1) < mix.sigma_drop_all).expand(B, N).clone()
        for idx in DROP_GROUPS.values():
            which[:, list(idx)] |= (rand(B, 1) < mix.sigma_drop_group)
        state = withhold_sigma(state, which)
    return state
