"""Shared helpers of the model tests: random token batches and a linear-Gaussian toy simulator."""
from __future__ import annotations

import numpy as np
import torch

from ysocensus.model.tokens import MISSING, N_THETA, N_TOKENS, OBSERVED, SKY_INDEX


def random_batch(B: int, seed: int = 0, p_measured: float = 0.7):
    g = torch.Generator().manual_seed(seed)
    measured = torch.rand(B, N_TOKENS, generator=g) < p_measured
    measured[:, :N_THETA] = True
    measured[:, SKY_INDEX] = True
    return {"values": torch.randn(B, N_TOKENS, generator=g), "logsig": torch.randn(B, N_TOKENS, generator=g),
            "sky": torch.randn(B, 4, generator=g), "measured": measured, "weight": torch.ones(B)}


class LinearGaussianToy:
    """θ ~ N(0, I_5), x = A θ + ε, ε ~ N(0, diag σ²), D observables, each missing completely at random.

    Tokens: θ → the 5 θ tokens, x → the first D observable tokens (the rest always missing). Every
    conditional of the joint Gaussian is analytic (``conditional``).
    """

    def __init__(self, D: int = 6, seed: int = 1, p_missing: float = 0.3, noise: float = 0.5):
        rng = np.random.default_rng(seed)
        self.D = D
        self.A = rng.normal(size=(D, N_THETA)) * 0.8
        self.sig = np.full(D, noise)
        self.p_missing = p_missing
        S = np.zeros((N_THETA + D, N_THETA + D))
        S[:N_THETA, :N_THETA] = np.eye(N_THETA)
        S[N_THETA:, :N_THETA] = self.A
        S[:N_THETA, N_THETA:] = self.A.T
        S[N_THETA:, N_THETA:] = self.A @ self.A.T + np.diag(self.sig ** 2)
        self.cov = S

    def simulate(self, n: int, rng: np.random.Generator) -> np.ndarray:
        th = rng.normal(size=(n, N_THETA))
        x = th @ self.A.T + rng.normal(size=(n, self.D)) * self.sig
        return np.concatenate([th, x], 1)

    def training_batch(self, n: int, seed: int = 0) -> dict:
        rng = np.random.default_rng(seed)
        z = self.simulate(n, rng)
        values = np.zeros((n, N_TOKENS), np.float32)
        values[:, :N_THETA + self.D] = z
        measured = np.zeros((n, N_TOKENS), bool)
        measured[:, :N_THETA] = True
        measured[:, N_THETA:N_THETA + self.D] = rng.random((n, self.D)) > self.p_missing
        measured[:, SKY_INDEX] = True
        values[~measured] = 0
        return {"values": torch.tensor(values), "logsig": torch.zeros(n, N_TOKENS), "sky": torch.zeros(n, 4),
                "measured": torch.tensor(measured), "weight": torch.ones(n)}

    def conditional(self, z: np.ndarray, latent: list[int], observed: list[int]):
        S = self.cov
        if not observed:
            return np.zeros(len(latent)), S[np.ix_(latent, latent)]
        K = S[np.ix_(latent, observed)] @ np.linalg.inv(S[np.ix_(observed, observed)])
        return K @ z[observed], S[np.ix_(latent, latent)] - K @ S[np.ix_(observed, latent)]

    def states(self, n: int, latent: list[int], observed: list[int]) -> np.ndarray:
        """Token states: listed latent/observed; other toy variables missing; the sky observed."""
        st = np.full((n, N_TOKENS), MISSING, np.int8)
        st[:, latent] = 0
        st[:, observed] = OBSERVED
        st[:, SKY_INDEX] = OBSERVED
        return st
