"""The network's own posterior: proposals q(θ | x) from the trained flow and their log density.

q is the posterior under the prior the network was trained on (the simulated, young-enriched training mix, tilted
smooth across the field's weight step: ``prior_ratio``); the corrections that take it to the Galactic population
are ``corrections``. Proposals come from the posterior field (``posterior_field``; the production path, every θ
latent) or from the Transformer decoder (any conditional: ``keep`` drops tokens), integrated by ``sampler``; each
star's noise comes from its own stream (``model.streams``), so its proposals do not depend on the stars it is
batched with.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ysocensus.model import sampler
from ysocensus.model.masks import drop, posterior_states
from ysocensus.model.network import FlowTransformer, latent_slots
from ysocensus.model.posterior_field import resolve_precision
from ysocensus.model.tokens import DROPPED, N_THETA, SKY_INDEX, Normalisation, is_observed

#: the velocity fields a posterior can be drawn with: the network's light posterior field (``posterior_field``,
#: the production path) or its Transformer decoder (any conditional)
FIELDS = ("posterior_field", "transformer")
#: the fewest stars one network call is made with (``NetworkPosterior.draws``)
MIN_CALL_STARS = 8


class NetworkPosterior:
    """Proposals from a trained ``FlowTransformer`` (EMA weights) for token arrays, in standardised θ."""

    def __init__(self, net: FlowTransformer, stats: Normalisation, n_steps: int = 4, method: str = "midpoint",
                 rows_per_batch: int = 4096, time_power: float = 1.0, anchors=None, field: str = "transformer",
                 field_precision: str = "float32", age_classifier=None):
        if field not in FIELDS:
            raise ValueError(f"field must be one of {FIELDS}, not {field!r}")
        if field == "posterior_field" and getattr(net, "posterior_field", None) is None:
            raise ValueError("field 'posterior_field': this network was trained without one "
                             "(train.network.posterior_field); use 'transformer'")
        resolve_precision(field_precision, "cpu")  # a bad value fails here, not at the first star
        self.net = net.eval()
        self.stats = stats
        self.n_steps, self.method, self.time_power = n_steps, method, float(time_power)
        self.rows_per_batch = rows_per_batch
        self.anchors = anchors  # anchors.MeasurementAnchors the network was trained with (None: off)
        # which velocity field draws the all-θ-latent posterior (``FIELDS``), and the precision of the posterior
        # field's trunk when it is the one (``posterior_field.PRECISIONS``; log_prob is always float32)
        self.field = field
        self.field_precision = field_precision
        # P(age class | x) from the encoding (``age_classes.AgeClassifier``), which the importance sampling's
        # stratified correction gives the proposals; None: the flow's own class masses
        self.age_classifier = age_classifier

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def use_field(self, full_sequence: bool = False) -> bool:
        return self.field == "posterior_field" and not full_sequence

    def states(self, measured: torch.Tensor, keep: np.ndarray | None = None, sigma_known=None, searched=None):
        """Posterior states (``masks.posterior_states``) and the stars with nothing observed, which are
        conditioned on (l, b) only."""
        state = posterior_states(measured, sigma_known, searched)
        nothing = ~measured[:, N_THETA:SKY_INDEX].any(1)
        if nothing.any():
            state[nothing, N_THETA:SKY_INDEX] = DROPPED
        if keep is not None:  # condition only on a subset of tokens (others dropped)
            state = drop(state, ~torch.as_tensor(keep, dtype=torch.bool).expand_as(measured))
        return state, nothing

    def conditioning(self, values, logsig, sky, state) -> sampler.Conditioning:
        """The sampler's view of a batch of stars: observed values only, latent θ slots, their anchors."""
        device = self.device
        lat_idx, lat_ok = latent_slots(state, N_THETA)
        values = values * is_observed(state)
        c = s = None
        if self.anchors is not None:
            c, s = self.anchors.affine(values, logsig, state, lat_idx, lat_ok)
            c, s = c.to(device), s.to(device)
        return sampler.Conditioning(values.to(device), logsig.to(device), sky.to(device), state.to(device),
                                    lat_idx.to(device), lat_ok.to(device), anchor_c=c, anchor_s=s)

    def prepared(self, arrays, keep=None):
        """Torch views of token arrays and the posterior states (the truth, if the arrays carry it, is never
        conditioned on); → (tensors, state, nothing-observed mask, finite-sky mask)."""
        t = arrays.torch()
        measured = t["measured"].clone()  # a copy: arrays.torch() shares the caller's memory
        measured[:, :N_THETA] = False
        opt = {k: None if getattr(arrays, k, None) is None else torch.as_tensor(getattr(arrays, k))
               for k in ("sigma_known", "searched")}
        state, nothing = self.states(measured, keep, **opt)
        sky_ok = np.isfinite(arrays.sky).all(1) if arrays.sky_ok is None else arrays.sky_ok
        return t, state, nothing, sky_ok

    def draws(self, t, state, n_draw, rng, rows, purpose, full_sequence=False, n_steps=None, method=None):
        """(star indices, proposals z [b, n_draw, 5] standardised, sky [b, 4], the stars' age-class log-probabilities
        [b, K] or None: ``age_log_probs``) per network call (stars with the
        same observed count, ``sampler.batches``); ``rows``: the stars' indices in the streams ``rng``
        (``model.streams``). A call with fewer than ``MIN_CALL_STARS`` stars is padded with copies of its last
        star: matrix products of a handful of rows take another kernel and round differently, so a star's bytes
        would depend on how many stars shared its call."""
        n_obs = is_observed(state).sum(1).numpy()
        rows_per_call = max(self.rows_per_batch, MIN_CALL_STARS * n_draw)  # padding only for groups of < 8 stars
        for sl in sampler.batches(len(state), n_draw, rows_per_call, n_obs):
            n = len(sl)
            run = np.concatenate([sl, np.repeat(sl[-1:], MIN_CALL_STARS - n)]) if n < MIN_CALL_STARS else sl
            cond = self.conditioning(t["values"][run], t["logsig"][run], t["sky"][run], state[run])
            lead = self._lead(cond)
            noise = rng.normal(rows[run], purpose, (n_draw, lead.lat_idx.shape[1])).to(lead.values.dtype)
            z = self._sample(cond, n_draw, noise, n_steps or self.n_steps, method or self.method, full_sequence)
            lp = self.age_log_probs(cond)
            yield sl, z[:n], lead.sky[:n], None if lp is None else lp[:n].cpu().double().numpy()

    @property
    def age_class_edges(self) -> np.ndarray | None:
        """The age classes' edges (log10 yr) of ``age_log_probs``, or None without a classifier."""
        return None if self.age_classifier is None else self.age_classifier.edges.numpy()

    @torch.no_grad()
    def age_log_probs(self, cond) -> torch.Tensor | None:
        """log P(age class | x) [B, K] of a call's stars from their encoding (the one the sampler made, else made
        here), or None without a classifier or where a row's condition is not a posterior
        (``age_classes.posterior_rows``: the classifier was trained on those alone)."""
        from ysocensus.model.age_classes import posterior_rows

        if self.age_classifier is None or not bool(posterior_rows(cond.state).all()):
            return None
        if cond.cache is None or cond.cache.context is None:
            cond.cache = self.net.encode(cond.values, cond.logsig, cond.sky, cond.state)
        return self.age_classifier.to(cond.values.device)(cond.cache.context)

    @staticmethod
    def _lead(cond) -> sampler.Conditioning:
        """The conditioning whose shapes and sky the draws report (one network: its own)."""
        return cond

    def _sample(self, cond, n_draw, noise, n_steps, method, full_sequence):
        return sampler.sample(self.net, cond, n_draw, n_steps, method, noise=noise, full_sequence=full_sequence,
                              time_power=self.time_power, field=self.use_field(full_sequence),
                              precision=resolve_precision(self.field_precision, self.device))

    def log_prob(self, cond: sampler.Conditioning, z: torch.Tensor, n_steps: int = 32,
                 method: str = "midpoint") -> torch.Tensor:
        """log q(z | x) [B, S] of standardised θ z [B, S, 5] (exact divergence; float32)."""
        return sampler.log_prob(self.net, cond, z.to(self.device), n_steps, method, field=self.use_field()).cpu()


def same_training_set(members: Sequence, what: str) -> list:
    """``members`` as a list, refused (naming the member) when empty or when one was trained on another training set
    than the first (its normalisation differs): the networks of one ``what`` must read the same tokens."""
    members = list(members)
    if not members:
        raise ValueError(f"{what}: at least one member is needed")
    for k, m in enumerate(members[1:], 1):
        if m.stats.to_dict() != members[0].stats.to_dict():
            raise ValueError(f"{what} member {k} was trained on another training set (normalisation differs)")
    return members


class ConsensusProposal(NetworkPosterior):
    """Proposals from the consensus flow of several networks trained on the same training set
    (``sampler.consensus_fn``: the mean of their velocity fields, each read through its own per-star map): every
    sample integrates all networks, so it costs their number × one network's.

    The sampling settings (steps, solver, field, precision) are this proposal's own, taken from the first member;
    the members contribute their networks and their per-star maps (``conditioning``)."""

    def __init__(self, members: Sequence[NetworkPosterior]):
        members = same_training_set(members, "consensus")
        first = members[0]
        for k, m in enumerate(members[1:], 1):
            if m.use_field() != first.use_field():
                raise ValueError(f"consensus member {k} samples with another velocity field ({m.field}, not "
                                 f"{first.field})")
        super().__init__(first.net, first.stats, first.n_steps, first.method, first.rows_per_batch,
                         first.time_power, first.anchors, first.field, first.field_precision)
        self.members = members

    def conditioning(self, values, logsig, sky, state) -> list[sampler.Conditioning]:
        """One ``Conditioning`` per member (each with its own measurement anchors)."""
        return [m.conditioning(values, logsig, sky, state) for m in self.members]

    @staticmethod
    def _lead(cond) -> sampler.Conditioning:
        return cond[0]

    @property
    def age_class_edges(self) -> np.ndarray | None:
        """The members' age-class edges where every member has a classifier with the same ones, else None."""
        edges = [m.age_class_edges for m in self.members]
        if any(e is None for e in edges) or any(not np.array_equal(e, edges[0]) for e in edges[1:]):
            return None
        return edges[0]

    @torch.no_grad()
    def age_log_probs(self, cond) -> torch.Tensor | None:
        """The mean of the members' class probabilities (log), or None unless every member has a classifier with
        the same classes (``age_class_edges``)."""
        if self.age_class_edges is None:
            return None
        lps = [m.age_log_probs(c) for m, c in zip(self.members, cond)]
        if any(lp is None for lp in lps):
            return None
        return torch.logsumexp(torch.stack(lps), 0) - np.log(len(lps))

    def _sample(self, cond, n_draw, noise, n_steps, method, full_sequence):
        return sampler.sample_consensus([m.net for m in self.members], cond, n_draw, n_steps, method, noise=noise,
                                        full_sequence=full_sequence, time_power=self.time_power,
                                        field=self.use_field(full_sequence),
                                        precision=resolve_precision(self.field_precision, self.device))

    def log_prob(self, cond, z: torch.Tensor, n_steps: int = 32, method: str = "midpoint") -> torch.Tensor:
        """log q(z | x) [B, S] of the consensus flow (exact divergence; float32)."""
        return sampler.log_prob_consensus([m.net for m in self.members], cond, z.to(self.device), n_steps, method,
                                          field=self.use_field()).cpu()
