"""Physics guidance: a χ² residual of the measurement operator on the one-step clean estimate.

    L = w_FM · L_FM + w_R · L_R,
    L_R = Σ_examples w_i · λ(t) · ρ(χ²) / Σ w_i,   χ² = mean over observed bands of ((m̂ − m) / σ)²,

where m̂ = MeasurementOperator(θ̂_1) are the magnitudes (and parallax) predicted from the one-step
estimate θ̂_1 of the clean sample (``flow.clean_estimate``; conditioned θ keep their given values), m and σ
the observed magnitudes and their errors, bands that are missing, dropped or latent masked out (and the
``exclude_bands``, by default W3 and W4, whose disk excess the operator does not model), and
λ(t) = t^k weights towards the data end of time (the one-step estimate is meaningless near the noise end).
ρ is a pseudo-Huber on each standardised residual (δ = 3) so that gross early errors do not dominate.

The operator is ``ysocensus.surveys.operator.MeasurementOperator`` (forward(log10_age_yr, log10_mass,
feh, distance_pc, av_mag) → (mags [..., 10] in io.MAGNITUDES order, parallax_mas, valid)); any module with
that signature works (the unit tests use a linear stand-in). Switch and weight come from config.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from ysocensus import io
from ysocensus.model.tokens import MAGNITUDE_TOKENS, N_THETA, OBSERVED, PARALLAX_TOKEN, Normalisation, model_theta_to_operator_inputs


@dataclass
class GuidanceConfig:
    enabled: bool = False
    weight: float = 0.01  # w_R
    fm_weight: float = 1.0  # w_FM
    time_power: float = 2.0  # k of λ(t) = t^k
    huber_delta: float = 3.0
    include_parallax: bool = True
    # W3/W4 carry disk excess, which the operator does not model (at the true θ the W4 residual of
    # disk-bearing stars is tens of σ): guiding on them would pull θ away from the truth
    exclude_bands: tuple = io.WISE_BANDS[2:]  # W3, W4

    def __post_init__(self):
        unknown = set(self.exclude_bands) - set(io.MAGNITUDES)
        if unknown:
            raise ValueError(f"guidance.exclude_bands: unknown bands {sorted(unknown)}; bands are {list(io.MAGNITUDES)}")
        self.exclude_bands = tuple(self.exclude_bands)

    def to_dict(self):
        return asdict(self)


def load_operator(isochrones_path, bc_path=None):
    """The project's differentiable measurement operator (``results/models/isochrones.npz`` and
    ``results/models/bc_grid.npz``), or None when the observation stage's module is not importable."""
    try:
        from ysocensus.surveys.operator import MeasurementOperator  # noqa: WPS433
    except ImportError:  # the observation stage may not have landed
        return None
    op = MeasurementOperator.from_files(isochrones_path, bc_path)
    for p in op.parameters():
        p.requires_grad_(False)
    return op


class Guidance:
    """Computes L_R for a batch. Needs ``batch`` to carry ``mags``, ``mag_sigma`` [B, 10] and
    ``parallax``, ``parallax_sigma`` [B] (physical units, NaN where missing)."""

    def __init__(self, config: GuidanceConfig, operator: torch.nn.Module | None, stats: Normalisation):
        self.config = config
        self.operator = operator
        self.stats = stats
        self.band_on = torch.tensor([m not in config.exclude_bands for m in io.MAGNITUDES])
        if config.enabled and operator is None:
            raise RuntimeError("guidance.enabled is true but no measurement operator is available "
                               "(ysocensus.surveys.operator.MeasurementOperator could not be imported)")

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    @property
    def weight(self) -> float:
        return self.config.weight

    @property
    def fm_weight(self) -> float:
        return self.config.fm_weight

    def _rho(self, r2):
        d = self.config.huber_delta
        return 2 * d * d * (torch.sqrt(1 + r2 / (d * d)) - 1)

    def loss(self, x1_hat, t, batch, state, lat_idx, lat_ok, weight) -> torch.Tensor:
        B, K, L = x1_hat.shape
        theta = batch["values"][:, None, :N_THETA].expand(B, K, N_THETA).clone()
        is_theta = lat_ok & (lat_idx < N_THETA)
        idx = torch.where(is_theta, lat_idx, torch.full_like(lat_idx, N_THETA))  # non-θ → dummy column
        theta = torch.cat([theta, theta.new_zeros(B, K, 1)], -1)
        theta.scatter_(2, idx[:, None].expand(B, K, L), x1_hat)
        theta = theta[..., :N_THETA]
        mags, plx, valid = self.operator(**model_theta_to_operator_inputs(theta, self.stats))
        obs = batch["mags"][:, None]
        sig = batch["mag_sigma"][:, None]
        use = (state[:, list(MAGNITUDE_TOKENS)] == OBSERVED)[:, None] & torch.isfinite(obs) & (sig > 0)
        use = use & self.band_on.to(use.device)
        r2 = torch.where(use, ((mags - torch.nan_to_num(obs)) / torch.where(use, sig, 1.0)) ** 2, 0.0)
        terms = self._rho(r2).masked_fill(~use, 0.0).sum(-1)
        n = use.to(mags.dtype).sum(-1)
        if self.config.include_parallax:
            p_obs, p_sig = batch["parallax"][:, None], batch["parallax_sigma"][:, None]
            use_p = (state[:, PARALLAX_TOKEN] == OBSERVED)[:, None] & torch.isfinite(p_obs) & (p_sig > 0)
            rp2 = torch.where(use_p, ((plx - torch.nan_to_num(p_obs)) / torch.where(use_p, p_sig, 1.0)) ** 2, 0.0)
            terms = terms + self._rho(rp2).masked_fill(~use_p, 0.0)
            n = n + use_p.to(mags.dtype)
        chi2 = terms / n.clamp(min=1)
        chi2 = torch.where(valid & (n > 0), chi2, torch.zeros_like(chi2))
        lam = t.clamp(0, 1) ** self.config.time_power
        per_example = (lam * chi2).mean(1)
        return (weight * per_example).sum() / weight.sum().clamp(min=1e-12)
