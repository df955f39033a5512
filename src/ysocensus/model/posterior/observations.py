"""Catalog rows as a posterior reads them: the public face of the token encoding (``model.tokens``) for code that
uses a posterior or is compared with one (validation, baselines, benchmarks).

``tokenize(frame, stats)`` gives ``TokenArrays`` (standardised values, log σ, which variables are measured, sky
features); ``theta_to_model`` / ``theta_from_model`` map physical θ (io.PARAMETERS) to and from the standardised
space the corrections take; ``survey_combination_names`` names each star's surveys; ``condition_mask`` is the
``keep`` argument of ``sample_tokens`` that conditions on named groups of variables only (``masks.DROP_GROUPS``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ysocensus.model.masks import DROP_GROUPS
from ysocensus.model.tokens import (N_THETA, N_TOKENS, N_X, SKY_INDEX, Normalisation, TokenArrays,
                                    survey_combination_names, theta_from_model, theta_to_model, tokenize)

__all__ = ["DROP_GROUPS", "N_THETA", "N_X", "SKY_INDEX", "Normalisation", "TokenArrays", "condition_mask",
           "survey_combination_names", "theta_from_model", "theta_to_model", "tokenize"]


def condition_mask(groups: Sequence[str]) -> np.ndarray:
    """[N_TOKENS] bool: the tokens a posterior conditioned on ``groups`` (names of ``DROP_GROUPS``) keeps: those
    groups, the sky position and θ (latent in a posterior); every other observed token is dropped."""
    unknown = [g for g in groups if g not in DROP_GROUPS]
    if unknown:
        raise ValueError(f"condition_mask: unknown groups {unknown}; one of {sorted(DROP_GROUPS)}")
    keep = np.zeros(N_TOKENS, bool)
    for g in groups:
        keep[list(DROP_GROUPS[g])] = True
    keep[SKY_INDEX] = True
    keep[:N_THETA] = True
    return keep
