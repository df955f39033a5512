"""``FlowPosterior``: the census posterior of a trained model, as ``ysocensus infer`` and the stages use it.

It is an ``importance.ImportanceSamplingPosterior`` whose proposal is the network's own posterior
(``proposal.NetworkPosterior``) and whose chain is the checkpoint's (``corrections``). p(θ | x) for any subset of
observed variables, in physical units (io.PARAMETERS order: log10 age [yr], initial mass [M☉], [Fe/H],
distance [pc], A_V [mag]):

- ``sample_batched(sample_shape, x)`` → [n, B, 5] and ``sample(sample_shape, x)`` → [n, 5] for one x,
  ``log_prob(theta, x)`` (exact divergence), so ``sbi.diagnostics``-like code (run_sbc, run_tarp) works.
  ``x`` is the flat observation vector of ``x_columns()``: value and σ of every observable (NaN where
  missing), then l and b in degrees.
- ``sample_frame(frame, n)`` / ``sample_catalog(batch, n)`` for catalog tables (the pipeline's path): samples and
  a status per star.

A star with no observed value at all gets samples of p(θ | l, b), the prior along its line of sight (all
observables dropped), and the status ``prior_only``; a star whose (l, b) is not finite gets
``invalid_input`` and NaN samples. No exception for either.

``prior="population"`` (the default) applies the whole chain; ``prior="simulation"`` the corrections up to the
training mix as simulated (the field untilt). ``log_prob`` is the proposal's density, not the population
posterior's (whose normaliser per star is not computed).
"""

from __future__ import annotations

import numpy as np
import torch

from ysocensus import io
from ysocensus.model.network import FlowTransformer
from ysocensus.model.posterior.corrections import AgeRecalibration, PopulationRatio, standard_chain
from ysocensus.model import streams
from ysocensus.model.posterior.importance import ImportanceSamplingPosterior, log_weights
from ysocensus.model.posterior.proposal import NetworkPosterior
from ysocensus.model.posterior_field import resolve_precision
from ysocensus.model.streams import as_streams
from ysocensus.model.tokens import (N_THETA, N_X, OBSERVABLES, Normalisation, log_abs_det_model_per_phys,
                                    theta_from_model, theta_to_model, tokenize)

_GAIA_SIGMA = 2.5 / np.log(10.0)


def x_columns() -> list[str]:
    """Layout of the flat observation vector: values, then σ (same unit), then l, b (deg)."""
    return [v.name for v in OBSERVABLES] + [f"{v.name}_sigma" for v in OBSERVABLES] + ["l", "b"]


def flat_to_frame(x: np.ndarray) -> dict[str, np.ndarray]:
    """Flat observation vectors [B, 2·N_X + 2] → a dict of catalog columns for ``tokens.tokenize``."""
    x = np.asarray(x, dtype=np.float64)
    out = {}
    for i, v in enumerate(OBSERVABLES):
        out[v.name] = x[:, i]
        sig = x[:, N_X + i]
        with np.errstate(divide="ignore", invalid="ignore"):
            out[v.error] = _GAIA_SIGMA / sig if v.error_kind == "flux_over_error" else sig
    out["l"], out["b"] = x[:, 2 * N_X], x[:, 2 * N_X + 1]
    return out


def frame_to_flat(frame) -> np.ndarray:
    """Catalog columns → flat observation vectors (inverse of ``flat_to_frame``)."""

    n = io.n_rows(frame)
    vals = [io.float_column(frame, v.name, n) for v in OBSERVABLES]
    sigs = []
    for v in OBSERVABLES:
        e = io.float_column(frame, v.error, n)
        with np.errstate(divide="ignore", invalid="ignore"):
            sigs.append(_GAIA_SIGMA / e if v.error_kind == "flux_over_error" else e)
    return np.stack(vals + sigs + [io.float_column(frame, "l", n), io.float_column(frame, "b", n)], -1)


class SbiInterface:
    """What a census posterior offers on top of ``sample_tokens(arrays, n, generator, ...)`` and ``stats``: catalog
    tables in, and sbi's ``sample`` / ``sample_batched`` / ``set_default_x`` on flat observation vectors."""

    def sample_frame(self, frame, n_samples: int, generator=None, keep=None):
        return self.sample_tokens(tokenize(frame, self.stats), n_samples, generator, keep)

    def sample_catalog(self, batch, n_samples: int, generator=None, n_steps: int | None = None,
                       method: str | None = None) -> np.ndarray:
        """Samples [n, S, 5] for a dict of catalog columns (the inference driver's path). The status of
        each star of the last call is kept in ``self.last_status`` (``ok`` / ``prior_only`` / ``invalid_input``)."""
        s, status = self.sample_tokens(tokenize(batch, self.stats), n_samples, generator,
                                       n_steps=n_steps, method=method)
        self.last_status = status
        return s

    # ---------------------------------------------------------------------------- sbi-like API
    def set_default_x(self, x):
        self._default_x = torch.as_tensor(x)
        return self

    def _x(self, x):
        if x is None:
            if self._default_x is None:
                raise ValueError("no x given and no default x set")
            x = self._default_x
        x = np.asarray(torch.as_tensor(x).detach().cpu().numpy(), np.float64)
        return x[None] if x.ndim == 1 else x

    def sample_batched(self, sample_shape, x=None, generator=None, **_) -> torch.Tensor:
        """[n, B, 5] samples for B observation vectors (sbi's convention)."""
        n = int(np.prod(sample_shape)) if not isinstance(sample_shape, int) else sample_shape
        s, _ = self.sample_tokens(tokenize(flat_to_frame(self._x(x)), self.stats), n, generator)
        shape = torch.Size(sample_shape if not isinstance(sample_shape, int) else (sample_shape,))
        return torch.as_tensor(s).transpose(0, 1).reshape(*shape, -1, N_THETA)

    def sample(self, sample_shape, x=None, generator=None, **_) -> torch.Tensor:
        """[n, 5] samples for one observation vector."""
        return self.sample_batched(sample_shape, self._x(x)[:1], generator)[..., 0, :]

    # ------------------------------------------------------------------------------ summaries
    def summarise(self, samples: np.ndarray) -> dict[str, np.ndarray]:
        """Quantiles named after io.POSTERIOR and p_young from samples [B, S, 5], at this model's young threshold:
        ``inference.summaries.summarise``, the one summary of the project (what ``ysocensus infer`` writes)."""
        from ysocensus.inference.summaries import summarise

        out = summarise(samples, self.young_log10_age)
        out.pop("p_young_2")
        return out


class FlowPosterior(SbiInterface, ImportanceSamplingPosterior):
    """The network's proposals (``NetworkPosterior``) importance-resampled through ``chain`` (default: the
    standard chain of ``prior_ratio`` and ``age_correction``, ``corrections.standard_chain``) and, with an
    ``age_classifier`` (``age_classes``), stratified to its age classes under every prior."""

    def __init__(self, net: FlowTransformer, stats: Normalisation, n_steps: int = 4, method: str = "midpoint",
                 rows_per_batch: int = 4096, young_log10_age: float = io.log10_age_threshold(io.YOUNG_THRESHOLD_MYR),
                 prior_ratio=None, prior: str = "population", oversample: int = 1, time_power: float = 1.0,
                 anchors=None, min_ess: float = 0.0, max_oversample: int = 0, field: str = "transformer",
                 field_precision: str = "float32", age_correction=None, chain=None, widths=None,
                 age_classifier=None):
        proposal = NetworkPosterior(net, stats, n_steps, method, rows_per_batch, time_power, anchors, field,
                                    field_precision, age_classifier)
        if prior_ratio is not None:
            prior_ratio.eval()
        chain = standard_chain(prior_ratio, age_correction) if chain is None else tuple(chain)
        super().__init__(proposal, chain, prior, oversample, min_ess, max_oversample, widths)
        self.young_log10_age = young_log10_age
        self.fingerprint = None
        self._default_x = None

    # the proposal's settings, read and set through the posterior
    net = property(lambda self: self.proposal.net)
    stats = property(lambda self: self.proposal.stats)
    anchors = property(lambda self: self.proposal.anchors)
    field = property(lambda self: self.proposal.field)
    device = property(lambda self: self.proposal.device)

    def _setting(name):  # noqa: N805 (a property factory used in the class body)
        return property(lambda self: getattr(self.proposal, name), lambda self, v: setattr(self.proposal, name, v))

    n_steps, method, time_power = _setting("n_steps"), _setting("method"), _setting("time_power")
    rows_per_batch, field_precision = _setting("rows_per_batch"), _setting("field_precision")
    del _setting

    @property
    def prior_ratio(self):
        """The chain's population prior ratio (``prior_ratio.PriorRatio``), or None."""
        return next((c.ratio for c in self.chain if isinstance(c, PopulationRatio)), None)

    @property
    def age_correction(self):
        """The chain's age recalibration (``recalibration.AgeCorrection``), or None."""
        return next((c.correction for c in self.chain if isinstance(c, AgeRecalibration)), None)

    @torch.no_grad()
    def proposals(self, arrays, n_draw: int, generator: torch.Generator | None = None):
        """The network's own proposals, before any resampling, for the age recalibration
        (``model.recalibration``): log10 age [B, n_draw] and their log weight to the population by every correction
        of the chain but the age recalibration, with the stratified correction to the age classes where the network
        has them (``age_classes``) [B, n_draw] (−inf for stars with nothing observed or no finite sky
        position, and for non-finite proposals)."""
        chain = tuple(c for c in self.chain if c.name != AgeRecalibration.name)
        t, state, nothing, sky_ok = self.proposal.prepared(arrays)
        B = len(arrays)
        log_age = np.full((B, n_draw), np.nan, np.float64)
        log_w = np.full((B, n_draw), -np.inf, np.float64)
        for sl, z, sky, lp in self.proposal.draws(t, state, n_draw, as_streams(generator), np.arange(B),
                                                  streams.PROPOSALS):
            theta = theta_from_model(z.float().cpu(), self.stats).numpy()
            log_age[sl] = theta[..., 0]
            log_w[sl] = self._with_classes(log_weights(chain, z, sky).cpu().float().numpy(), theta, lp)
        log_w[nothing.numpy() | ~sky_ok] = -np.inf
        return log_age, log_w

    def describe(self) -> dict:
        return {"field": self.field, "field_precision": resolve_precision(self.field_precision, self.device),
                "solver": self.method, "n_steps": self.n_steps, "time_power": self.time_power,
                "fingerprint": self.fingerprint, "anchors": self.anchors is not None,
                "network": self.net.config.to_dict(),
                "prior": self.prior if self.prior_ratio is not None else "simulation (no prior ratio)",
                "corrections": (["age_classes"] if self.proposal.age_class_edges is not None else [])
                + [c.name for c in self.corrections],
                "age_recalibration": self.age_correction is not None,
                "width_recalibration": self.prior in self.widths,
                "oversample": self.oversample}

    def log_prob(self, theta, x=None, n_steps: int = 32, method: str = "midpoint", **_) -> torch.Tensor:
        """log q(θ | x) in physical units: the density of the proposal (the network's own posterior, the velocity
        field that ``sample`` integrates, in float32). It is *not* the density of what ``sample`` returns when the
        chain has corrections (under ``prior="population"``: the proposals importance-resampled by them; their
        normalising constant per star is not computed). θ [n, 5] with one x, or
        [n, B, 5] / [B, 5] matched with B x's."""
        xs = self._x(x)
        theta = torch.as_tensor(theta, dtype=torch.float32)
        arrays = tokenize(flat_to_frame(xs), self.stats)
        t = arrays.torch()
        t["measured"][:, :N_THETA] = False
        state, _ = self.proposal.states(t["measured"], None, torch.as_tensor(arrays.sigma_known),
                                        torch.as_tensor(arrays.searched))
        B = len(arrays)
        if theta.dim() == 2 and B == 1:
            th = theta[None]  # [1, n, 5]
        elif theta.dim() == 2:
            th = theta[:, None]  # [B, 1, 5]
        else:
            th = theta.transpose(0, 1)  # [B, n, 5]
        cond = self.proposal.conditioning(t["values"], t["logsig"], t["sky"], state)
        lp = self.proposal.log_prob(cond, theta_to_model(th, self.stats), n_steps, method)
        lp = lp + log_abs_det_model_per_phys(th, self.stats)
        lp = torch.nan_to_num(lp, nan=-float("inf"))
        if theta.dim() == 2 and B == 1:
            return lp[0]
        if theta.dim() == 2:
            return lp[:, 0]
        return lp.transpose(0, 1)
