"""``EnsemblePosterior``: the equal-weight mixture of the census posteriors of independently trained networks.

One network trained with one seed is one draw of the training's randomness (initialisation, batch order, the
prior-ratio classifier's fit); how far two such draws disagree on a star is epistemic uncertainty that no single
network's posterior contains. A deep ensemble (Lakshminarayanan, Pritzel & Blundell 2017) puts it in: the posterior
is the mixture (1/K) Σ_k p_k(θ | x) of K members trained on the same training set with different seeds
(``model.config.member_config``). Hermans et al. (2022, "A trust crisis in simulation-based inference?", TMLR)
found ensembles of neural posterior estimators more conservative and no less accurate than a single one.

Each member is a complete ``FlowPosterior`` (its network, prior ratio and age recalibration). A star's n samples are
shared out, n_k = n // K (+1 for the first n mod K members), each member drawing its own from its own stream
(``streams.for_member``), so an ensemble costs what one network costs at inference. Each member tops up to its share
of ``min_ess`` (n_k / n of it), so that the mixture's effective sample size reaches the single model's target. The
members' weighted proposals are kept with their log weights normalised per star to the member's share, so that
probabilities taken from the weights (P(young), ``inference.summaries``) are the mixture's too, and the ESS is the
mixture's Kish ESS, 1 / Σ_k (n_k/n)² / ESS_k.
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from typing import Sequence

import numpy as np
import torch

from ysocensus.model import streams
from ysocensus.model.posterior.flow_posterior import SbiInterface
from ysocensus.model.posterior.proposal import same_training_set


def shares(n: int, k: int) -> list[int]:
    """n samples shared out between k members, as evenly as possible (the first n mod k get one more)."""
    return [n // k + (i < n % k) for i in range(k)]


def mixture_ess(ess: Sequence[np.ndarray], share: Sequence[int]) -> np.ndarray:
    """Kish effective sample size of the mixture whose member k holds a share n_k / n of the weight with ESS_k."""
    n = float(sum(share))
    inv = sum((s / n) ** 2 / np.maximum(np.asarray(e, np.float64), 1e-12) for e, s in zip(ess, share) if s)
    return (1.0 / inv).astype(np.float32)


def normalised_log_weights(log_w: np.ndarray, fraction: float) -> np.ndarray:
    """A member's log weights [B, S] normalised per star to log(fraction) in all (rows without a finite weight stay
    −inf)."""
    lw = np.asarray(log_w, np.float64)
    top = np.max(lw, axis=1, keepdims=True)
    ok = np.isfinite(top)
    with np.errstate(invalid="ignore", divide="ignore"):
        lse = top + np.log(np.sum(np.exp(lw - np.where(ok, top, 0.0)), axis=1, keepdims=True))
        out = np.where(ok, lw - np.where(ok, lse, 0.0) + np.log(fraction), -np.inf)
    return out.astype(np.float32)


class EnsemblePosterior(SbiInterface):
    """The mixture of ``members`` (``FlowPosterior`` each, same normalisation and young threshold)."""

    def __init__(self, members: Sequence):
        members = same_training_set(members, "ensemble")
        first = members[0]
        self.members = members
        self.young_log10_age = first.young_log10_age
        self.fingerprint = None
        self._min_ess = first.min_ess
        self._default_x = None
        self.last_ess = self.last_proposals = self.last_log_weights = self.last_status = None

    # ---------------------------------------------------------------- settings shared by (and set on) every member
    stats = property(lambda self: self.members[0].stats)
    prior = property(lambda self: self.members[0].prior)
    prior_ratio = property(lambda self: self.members[0].prior_ratio)
    age_correction = property(lambda self: self.members[0].age_correction)
    chain = property(lambda self: self.members[0].chain)
    corrections = property(lambda self: self.members[0].corrections)
    device = property(lambda self: self.members[0].device)
    min_ess = property(lambda self: self._min_ess)

    def _shared(name):  # noqa: N805 (a property factory used in the class body)
        def set_all(self, v):
            for m in self.members:
                setattr(m, name, v)
        return property(lambda self: getattr(self.members[0], name), set_all)

    n_steps, method, time_power = _shared("n_steps"), _shared("method"), _shared("time_power")
    rows_per_batch, field_precision, oversample = _shared("rows_per_batch"), _shared("field_precision"), \
        _shared("oversample")
    max_oversample = _shared("max_oversample")
    del _shared

    @min_ess.setter
    def min_ess(self, v):
        self._min_ess = float(v)

    @contextmanager
    def using_prior(self, prior: str):
        with ExitStack() as stack:
            for m in self.members:
                stack.enter_context(m.using_prior(prior))
            yield self

    # ------------------------------------------------------------------------------------------ sampling
    def sample_tokens(self, arrays, n_samples: int, generator=None, keep=None, full_sequence: bool = False,
                      n_steps: int | None = None, method: str | None = None):
        """Samples [B, n, 5] (member blocks along the sample axis) and the status per star, as ``FlowPosterior``."""
        share = shares(int(n_samples), len(self.members))
        outs, ess, props, log_w = [], [], [], []
        status = None
        for k, (m, n_k) in enumerate(zip(self.members, share)):
            if not n_k:
                continue
            keep_min, m.min_ess = m.min_ess, self._min_ess * n_k / n_samples
            try:
                s, st = m.sample_tokens(arrays, n_k, streams.for_member(generator, k), keep, full_sequence,
                                        n_steps, method)
            finally:
                m.min_ess = keep_min
            status = st if status is None else status
            outs.append(s)
            ess.append(m.last_ess)
            if m.last_proposals is not None:
                props.append(m.last_proposals)
                log_w.append(normalised_log_weights(m.last_log_weights, n_k / n_samples))
        used = [s for s in share if s]
        self.last_ess = mixture_ess(ess, used)
        self.last_proposals = np.concatenate(props, 1) if len(props) == len(outs) else None
        self.last_log_weights = np.concatenate(log_w, 1) if len(props) == len(outs) else None
        self.last_status = status
        return np.concatenate(outs, 1), status

    @torch.no_grad()
    def reweight(self, samples: np.ndarray, sky: np.ndarray, n_out: int, generator=None,
                 from_network: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``FlowPosterior.reweight`` member by member: the sample axis is cut into the members' blocks (as
        ``sample_tokens`` laid them out when ``from_network``) and each block goes through its member's chain."""
        samples = np.asarray(samples, np.float32)
        cut = np.cumsum([0] + shares(samples.shape[1], len(self.members)))
        out_share = shares(int(n_out), len(self.members))
        outs, ess, used = [], [], []
        for k, m in enumerate(self.members):
            block = samples[:, cut[k]:cut[k + 1]]
            if not out_share[k] or not block.shape[1]:
                continue
            o, e = m.reweight(block, sky, out_share[k], generator, from_network)
            outs.append(o)
            ess.append(e)
            used.append(out_share[k])
        return np.concatenate(outs, 1), mixture_ess(ess, used)

    def log_prob(self, theta, x=None, n_steps: int = 32, method: str = "midpoint", **kw) -> torch.Tensor:
        """log of the members' mean proposal density (see ``FlowPosterior.log_prob``)."""
        lp = torch.stack([m.log_prob(theta, x if x is not None else self._default_x, n_steps, method, **kw)
                          for m in self.members])
        return torch.logsumexp(lp, 0) - float(np.log(len(self.members)))

    def describe(self) -> dict:
        d = self.members[0].describe()
        d.update({"fingerprint": self.fingerprint, "ensemble_members": len(self.members)})
        return d
