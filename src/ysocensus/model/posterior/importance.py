"""Importance sampling: a posterior made of a proposal and an ordered chain of corrections.

The one place in the code where samples are weighted and resampled (sampling–importance–resampling, Rubin 1988;
in sbi the same idea is ``ImportanceSamplingPosterior(potential_fn, proposal)``). For each star,
``oversample`` × n proposals are drawn, weighted by exp(Σ corrections) (``corrections``) times the post-stratification
to the network's age classes where it has them (``age_classes``), and n of them kept by
systematic resampling with the star's own uniform offset (``model.streams``); stars whose weights keep an
effective sample size below ``min_ess``, or whose proposals miss an age class the classifier weighs, get more
proposals (``top_up_factor``), up to ``max_oversample`` × n.
Every proposal and its log weight stay available (``last_proposals``, ``last_log_weights``) so that
probabilities such as P(young) come from the weights rather than from the n resampled draws, with the ESS per
star (``last_ess``). Under a prior the network's width recalibration was fitted for (``widths``:
``model.width_recalibration``, the population and the structure prior), it then rescales the returned draws about their
medians; the proposals and their weights stay as drawn.
"""

from __future__ import annotations

import dataclasses
import math
from contextlib import contextmanager
from typing import Mapping, Sequence

import numpy as np
import torch

from ysocensus.model import streams
from ysocensus.model.age_classes import stratified_log_weights, unreached
from ysocensus.model.posterior.corrections import after, check_prior, up_to
from ysocensus.model.streams import as_streams
from ysocensus.model.tokens import N_THETA, theta_from_model, theta_to_model
from ysocensus.model.width_recalibration import patterns


def resample(log_w: torch.Tensor, n_out: int, generator: torch.Generator | None = None,
             u: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Systematic resampling per row: indices [B, n_out] into the S proposals of ``log_w`` [B, S], and the
    effective sample size of each row's weights (Kish). Rows with no finite weight keep their order. ``u``
    [B, 1] (float64 in [0, 1)): each row's offset (a star's own stream, ``model.streams``); else drawn from
    ``generator``."""
    B, S = log_w.shape
    lw = torch.nan_to_num(log_w.double(), nan=-math.inf)
    bad = ~torch.isfinite(lw).any(1)
    lw = torch.where(bad[:, None], torch.zeros_like(lw), lw)
    w = torch.softmax(lw, 1)
    ess = 1.0 / (w ** 2).sum(1)
    c = torch.cumsum(w, 1)
    c[:, -1] = 1.0
    if u is None:
        u = torch.rand(B, 1, generator=generator, dtype=torch.float64)
    u = (u.to(torch.float64).reshape(B, 1) + torch.arange(n_out, dtype=torch.float64)) / n_out
    idx = torch.searchsorted(c, u.contiguous()).clamp_(max=S - 1)
    return idx, ess.float()


@torch.no_grad()
def log_weights(chain: Sequence, z: torch.Tensor, sky: torch.Tensor) -> torch.Tensor:
    """Σ of the corrections' log weights [B, S] at proposals z [B, S, 5] (standardised θ; sky [B, 4]), summed in
    the chain's order; −inf where a proposal is not finite. The corrections share one ``memo`` (work common to
    several of them, such as the prior ratio's classifier, is done once)."""
    zz = torch.nan_to_num(z)
    log_w = torch.zeros(z.shape[:-1], dtype=z.dtype, device=z.device)
    memo: dict = {}
    for c in chain:
        log_w = log_w + c.log_weight(zz, sky, memo)
    return torch.where(torch.isfinite(z).all(-1), log_w, torch.full_like(log_w, -math.inf))


def top_up_factor(ess: np.ndarray, min_ess: float, have: int, most: int) -> np.ndarray:
    """Extra proposals per returned sample for stars of ``ess`` (< ``min_ess``) that already have ``have`` per
    sample: the ESS of self-normalised weights grows about in proportion to the number of proposals, so a star
    needs ~min_ess / ess times as many, rounded up to a power of two (few distinct sizes: batched network calls)
    with 50 % to spare, and never more than ``most`` in all."""
    need = have * 1.5 * min_ess / np.maximum(np.asarray(ess, np.float64), 1e-3)
    total = np.minimum(2.0 ** np.ceil(np.log2(np.maximum(need, 2 * have))), most)
    return np.maximum(total - have, 0).astype(np.int64)


def by_prior(widths) -> dict:
    """Width recalibrations keyed by the prior each was fitted under, from a mapping, from one correction (the
    population posterior's, as checkpoints before the structure prior stored it) or from None."""
    if widths is None:
        return {}
    if isinstance(widths, Mapping):
        return {str(k): v for k, v in widths.items() if v is not None}
    return {"population": widths}


class ImportanceSamplingPosterior:
    """The posterior under ``prior`` from a proposal (``proposal.NetworkPosterior``) and the chain of corrections
    (``corrections``) that leads to it: the corrections ``up_to(chain, prior)``; none (the proposal's own
    draws) when that is empty."""

    def __init__(self, proposal, chain: Sequence = (), prior: str = "population", oversample: int = 1,
                 min_ess: float = 0.0, max_oversample: int = 0, widths=None):
        self.proposal = proposal
        # the network's width recalibrations (``width_recalibration.WidthCorrection``) by the prior each was fitted
        # under: a mapping, or one correction (the population posterior's), or None
        self.widths = by_prior(widths)
        self.chain = tuple(chain)
        self.prior = check_prior(prior)
        self.oversample = max(1, int(oversample))
        # stars whose weights keep an ESS below min_ess get more proposals, up to max_oversample × n (``_top_up``)
        self.min_ess = float(min_ess)
        self.max_oversample = int(max_oversample)
        self.last_ess = self.last_proposals = self.last_log_weights = None

    @property
    def corrections(self) -> tuple:
        """The corrections applied under the current prior, in order."""
        return up_to(self.chain, self.prior)

    @contextmanager
    def using_prior(self, prior: str):
        """Sample under ``prior`` (``model.priors.ALL_PRIORS``) inside the block, then restore."""
        keep, self.prior = self.prior, check_prior(prior)
        try:
            yield self
        finally:
            self.prior = keep

    def sample_tokens(self, arrays, n_samples: int, generator: torch.Generator | None = None,
                      keep: np.ndarray | None = None, full_sequence: bool = False,
                      n_steps: int | None = None, method: str | None = None):
        """Samples [B, S, 5] (physical θ) and a status array for token arrays (``tokens.TokenArrays``)."""
        prop = self.proposal
        t, state, nothing, sky_ok = prop.prepared(arrays, keep)
        B = len(arrays)
        chain = self.corrections
        weighted = bool(chain) or getattr(prop, "age_class_edges", None) is not None
        out = np.full((B, n_samples, N_THETA), np.nan, np.float32)
        ess = np.full(B, float(n_samples), np.float32)
        n_draw = n_samples * (self.oversample if weighted else 1)
        props = np.full((B, n_draw, N_THETA), np.nan, np.float32) if weighted else None
        log_w = np.full((B, n_draw), -np.inf, np.float32) if weighted else None  # the chain's
        weights = np.full((B, n_draw), -np.inf, np.float32) if weighted else None  # the chain's and the classes'
        classes = None  # the stars' age-class log-probabilities (``age_classes``), where the proposal gives them
        rng = as_streams(generator)
        for sl, z, sky, lp in prop.draws(t, state, n_draw, rng, np.arange(B), streams.PROPOSALS, full_sequence,
                                         n_steps, method):
            if weighted:
                props[sl] = theta_from_model(z.float().cpu(), prop.stats).numpy()
                log_w[sl] = log_weights(chain, z, sky).cpu().float().numpy()
                if lp is not None:
                    classes = np.full((B, lp.shape[1]), np.nan) if classes is None else classes
                    classes[sl] = lp
                weights[sl] = self._with_classes(log_w[sl], props[sl], None if classes is None else classes[sl])
                idx, e = resample(torch.as_tensor(weights[sl]), n_samples,
                                  u=rng.uniform(np.arange(B)[sl], streams.RESAMPLE))
                z = torch.gather(z, 1, idx.to(z.device)[..., None].expand(-1, -1, z.shape[-1]))
                ess[sl] = e.numpy()
            out[sl] = theta_from_model(z.float().cpu(), prop.stats).numpy()
        if weighted and self.min_ess > 0 and self.max_oversample > self.oversample:
            props, weights = self._top_up(chain, t, state, props, log_w, weights, out, ess, n_samples, rng,
                                          ~nothing.numpy() & sky_ok, full_sequence, n_steps, method, classes)
        self.last_ess = ess
        # every weighted proposal, for probabilities taken from the weights (``inference.summaries``); None when
        # the samples are the proposal's own draws
        self.last_proposals, self.last_log_weights = props, weights
        status = np.where(nothing.numpy(), "prior_only", "ok").astype(object)
        status[~sky_ok] = "invalid_input"
        out[~sky_ok] = np.nan
        if self.prior in self.widths:
            out = self.widths[self.prior].apply(out, self.patterns(arrays, keep))
        return out, status

    def _with_classes(self, log_w: np.ndarray, props: np.ndarray, classes: np.ndarray | None) -> np.ndarray:
        """The chain's log weights [B, S] plus the stratified correction to the stars' age classes
        (``age_classes.stratified_log_weights``) over all of each star's proposals ``props`` [B, S, 5] (physical θ)."""
        if classes is None:
            return log_w
        strat = stratified_log_weights(props[..., 0], classes, self.proposal.age_class_edges)
        return (log_w.astype(np.float64) + strat).astype(np.float32)

    @staticmethod
    def patterns(arrays, keep: np.ndarray | None = None) -> np.ndarray:
        """Each star's conditioning pattern (``width_recalibration.patterns``), of the tokens ``keep`` leaves."""
        if keep is not None:
            arrays = dataclasses.replace(arrays, measured=np.asarray(arrays.measured, bool)
                                         & np.broadcast_to(np.asarray(keep, bool), np.shape(arrays.measured)))
        return patterns(arrays)

    @torch.no_grad()
    def _top_up(self, chain, t, state, props, log_w, weights, out, ess, n_samples, rng, eligible, full_sequence,
                n_steps, method, classes=None):
        """More proposals for the stars whose weights have an effective sample size below ``min_ess`` (young
        stars under the population prior: their young proposals weigh ~1/20 of the training mix's): as many as
        their ESS says they need (``top_up_factor``), up to ``max_oversample`` × n in all; as many as allowed
        for stars whose proposals miss an age class the classifier gives mass to (``age_classes.unreached``);
        their samples are resampled from all their proposals. ``log_w`` are the chain's log weights, ``weights``
        those with the classes' correction (``classes``: the stars' age-class log-probabilities, a correction
        taken over all of a star's proposals, so retaken for the stars topped up). ``out`` and ``ess`` are updated
        in place; returns the proposals and ``weights``, widened with −inf weights for the other stars."""
        prop = self.proposal
        # and stars whose proposals miss an age class the classifier gives at least one returned sample's worth of mass
        missed = np.zeros(len(ess), bool) if classes is None else unreached(
            props[..., 0], classes, self.proposal.age_class_edges, 1.0 / n_samples)
        low = np.flatnonzero(eligible & ((ess < self.min_ess) | missed))
        if not low.size:
            return props, weights
        B, K, P = props.shape
        need = np.where(missed[low], 0.0, ess[low])  # as many as allowed
        extra = top_up_factor(need, self.min_ess, K // n_samples, self.max_oversample) * n_samples
        props = np.concatenate([props, np.full((B, int(extra.max()), P), np.nan, np.float32)], 1)
        log_w = np.concatenate([log_w, np.full((B, int(extra.max())), -np.inf, np.float32)], 1)
        for m in np.unique(extra):  # stars needing the same number of proposals share network calls
            rows_m = low[extra == m]
            sub = {k: v[rows_m] for k, v in t.items()}
            for sl, z, sky, _ in prop.draws(sub, state[rows_m], int(m), rng, rows_m, streams.TOP_UP, full_sequence,
                                            n_steps, method):
                rows = rows_m[sl]
                props[rows, K:K + m] = theta_from_model(z.float().cpu(), prop.stats).numpy()
                log_w[rows, K:K + m] = log_weights(chain, z, sky).cpu().float().numpy()
        weights = np.concatenate([weights, np.full((B, int(extra.max())), -np.inf, np.float32)], 1)
        weights[low] = self._with_classes(log_w[low], props[low], None if classes is None else classes[low])
        idx, e = resample(torch.as_tensor(weights[low]), n_samples, u=rng.uniform(low, streams.TOP_UP_RESAMPLE))
        out[low] = np.take_along_axis(props[low], idx.numpy()[..., None], 1)
        ess[low] = e.numpy()
        return props, weights

    @torch.no_grad()
    def reweight(self, samples: np.ndarray, sky: np.ndarray, n_out: int, generator: torch.Generator | None = None,
                 from_network: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Samples [B, n_out, 5] under the population (physical units) from samples [B, S, 5] under the training
        mix as simulated: another estimator's trained on the same training set, or (``from_network``) this
        network's own posterior under ``prior="simulation"``, which then takes the network's own corrections
        too (``corrections.after``); and the ESS per star. Rows with non-finite samples are returned as they
        are."""
        chain = after(self.chain, "simulation", from_network)
        th = torch.as_tensor(np.asarray(samples, np.float32))
        z = theta_to_model(th, self.proposal.stats).float()
        lw = log_weights(chain, z, torch.as_tensor(np.asarray(sky, np.float32)))
        idx, ess = resample(lw.cpu(), n_out, generator)
        out = torch.gather(th, 1, idx[..., None].expand(-1, -1, th.shape[-1])).numpy()
        bad = ~np.isfinite(np.asarray(samples)).all((1, 2))
        if bad.any():
            out[bad] = np.asarray(samples, np.float32)[bad][:, :n_out]
        return out, ess.numpy()
