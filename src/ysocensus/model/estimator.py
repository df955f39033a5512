"""A plain-torch posterior object over the trained network (no Lightning import).

``FlowPosterior`` answers p(θ | x) for any subset of observed variables, in physical units
(io.PARAMETERS order: log10 age [yr], initial mass [M☉], [Fe/H], distance [pc], A_V [mag]):

- ``sample_batched(sample_shape, x)`` → [n, B, 5] and ``sample(sample_shape, x)`` → [n, 5] for one x,
  ``log_prob(theta, x)`` (exact divergence), so ``sbi.diagnostics``-like code (run_sbc, run_tarp) works.
  ``x`` is the flat observation vector of ``x_columns()``: value and σ of every observable (NaN where
  missing), then l and b in degrees.
- ``sample_frame(frame, n)`` for catalog tables (the pipeline's path): samples and a status per star.

A star with no observed value at all gets samples of p(θ | l, b), the prior along its line of sight (all
observables dropped), and the status ``prior_only``; a star whose (l, b) is not finite gets
``invalid_input`` and NaN samples. No exception for either.

Two priors. The network learns the posterior under the prior it was trained on: the simulated,
young-enriched mix (``training.importance_power`` < 1). With a ``PriorRatio`` attached and
``prior="population"`` (the default), samples are importance-resampled to the posterior under the
Galactic population (``ysocensus.model.prior_ratio``): ``oversample`` × n proposals per star are drawn,
weighted by the prior ratio (times the network's age recalibration, ``ysocensus.model.recalibration``, when
the model has one) and n of them resampled; ``last_ess`` keeps the effective sample size of each star's
weights. ``prior="simulation"`` returns the posterior under the training mix as simulated: the network's own,
resampled by 1/λ where it was trained with a field tilt (``prior_ratio.FieldTilt``). ``log_prob`` is always
the network's density (the population posterior's normaliser is not computed).
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch

from ysocensus import io
from ysocensus.model import sampler
from ysocensus.model import streams
from ysocensus.model.masks import drop, posterior_states
from ysocensus.model.streams import as_streams
from ysocensus.model.network import FlowTransformer, latent_slots
from ysocensus.model.posterior_field import resolve_precision
from ysocensus.model.tokens import (DROPPED, N_THETA, N_X, OBSERVABLES, OBSERVED, SKY_INDEX, Normalisation,
                                    is_observed, log_abs_det_model_per_phys, theta_from_model, theta_to_model,
                                    tokenize)

_GAIA_SIGMA = 2.5 / np.log(10.0)

#: the priors a posterior can be sampled under (see the module docstring)
PRIORS = ("population", "simulation")
#: the velocity fields a posterior can be drawn with: the network's light posterior field (``posterior_field``,
#: the production path) or its Transformer decoder (any conditional)
FIELDS = ("posterior_field", "transformer")


def _check_prior(prior: str) -> None:
    if prior not in PRIORS:
        raise ValueError(f"prior must be 'population' or 'simulation', not {prior!r}")


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
    from ysocensus.model.tokens import _col, _nrows

    n = _nrows(frame)
    vals = [_col(frame, v.name, n) for v in OBSERVABLES]
    sigs = []
    for v in OBSERVABLES:
        e = _col(frame, v.error, n)
        with np.errstate(divide="ignore", invalid="ignore"):
            sigs.append(_GAIA_SIGMA / e if v.error_kind == "flux_over_error" else e)
    return np.stack(vals + sigs + [_col(frame, "l", n), _col(frame, "b", n)], -1)


def top_up_factor(ess: np.ndarray, min_ess: float, have: int, most: int) -> np.ndarray:
    """Extra proposals per returned sample for stars of ``ess`` (< ``min_ess``) that already have ``have`` per
    sample: the ESS of self-normalised weights grows about in proportion to the number of proposals, so a star
    needs ~min_ess / ess times as many, rounded up to a power of two (few distinct sizes: batched network calls)
    with 50 % to spare, and never more than ``most`` in all."""
    need = have * 1.5 * min_ess / np.maximum(np.asarray(ess, np.float64), 1e-3)
    total = np.minimum(2.0 ** np.ceil(np.log2(np.maximum(need, 2 * have))), most)
    return np.maximum(total - have, 0).astype(np.int64)


#: the fewest stars one network call is made with (``FlowPosterior._draws``)
MIN_CALL_STARS = 8


class FlowPosterior:
    """Posterior sampling and density with a trained ``FlowTransformer`` (EMA weights)."""

    def __init__(self, net: FlowTransformer, stats: Normalisation, n_steps: int = 4, method: str = "midpoint",
                 rows_per_batch: int = 4096, young_log10_age: float = io.log10_age_threshold(io.YOUNG_THRESHOLD_MYR), prior_ratio=None,
                 prior: str = "population", oversample: int = 1, time_power: float = 1.0, anchors=None,
                 min_ess: float = 0.0, max_oversample: int = 0, field: str = "transformer",
                 field_precision: str = "float32"):
        _check_prior(prior)
        if field not in FIELDS:
            raise ValueError(f"field must be one of {FIELDS}, not {field!r}")
        if field == "posterior_field" and getattr(net, "posterior_field", None) is None:
            raise ValueError("field 'posterior_field': this network was trained without one "
                             "(train.network.posterior_field); use 'transformer'")
        # which velocity field draws the all-θ-latent posterior (``FIELDS``), and the precision of the posterior
        # field's trunk when it is the one (``posterior_field.PRECISIONS``; log_prob is always float32)
        self.field = field
        resolve_precision(field_precision, "cpu")  # a bad value fails here, not at the first star
        self.field_precision = field_precision
        self.anchors = anchors  # anchors.MeasurementAnchors the network was trained with (None: off)
        self.net = net.eval()
        self.prior_ratio = None if prior_ratio is None else prior_ratio.eval()
        self.prior = prior
        self.oversample = max(1, int(oversample))
        # stars whose weights keep an ESS below min_ess get more proposals, up to max_oversample × n (``_top_up``)
        self.min_ess = float(min_ess)
        self.max_oversample = int(max_oversample)
        self.last_ess = None
        self.stats = stats
        self.n_steps = n_steps
        self.method = method
        self.time_power = float(time_power)
        self.rows_per_batch = rows_per_batch
        self.young_log10_age = young_log10_age
        self._default_x = None

    # ---------------------------------------------------------------------------------- tokens
    def _states(self, measured: torch.Tensor, keep: np.ndarray | None = None, sigma_known=None, searched=None):
        """Posterior states (``masks.posterior_states``); stars with nothing observed are conditioned on (l, b)
        only."""
        state = posterior_states(measured, sigma_known, searched)
        nothing = ~measured[:, N_THETA:SKY_INDEX].any(1)
        if nothing.any():
            state[nothing, N_THETA:SKY_INDEX] = DROPPED
        if keep is not None:  # condition only on a subset of tokens (others dropped)
            state = drop(state, ~torch.as_tensor(keep, dtype=torch.bool).expand_as(measured))
        return state, nothing

    def _conditioning(self, values, logsig, sky, state, device) -> sampler.Conditioning:
        """The sampler's view of a batch of stars: observed values only, latent θ slots, their anchors."""
        lat_idx, lat_ok = latent_slots(state, N_THETA)
        values = values * is_observed(state)
        c = s = None
        if self.anchors is not None:
            c, s = self.anchors.affine(values, logsig, state, lat_idx, lat_ok)
            c, s = c.to(device), s.to(device)
        return sampler.Conditioning(values.to(device), logsig.to(device), sky.to(device), state.to(device),
                                    lat_idx.to(device), lat_ok.to(device), anchor_c=c, anchor_s=s)

    def sample_tokens(self, arrays, n_samples: int, generator: torch.Generator | None = None,
                      keep: np.ndarray | None = None, full_sequence: bool = False,
                      n_steps: int | None = None, method: str | None = None):
        """Samples [B, S, 5] (physical θ) and a status array for token arrays (``tokens.TokenArrays``)."""
        t, state, nothing, sky_ok = self._prepared(arrays, keep)
        B = len(arrays)
        out = np.full((B, n_samples, N_THETA), np.nan, np.float32)
        ess = np.full(B, float(n_samples), np.float32)
        # population: the prior ratio; simulation: undo the field tilt the network was trained with (if any)
        reweight = self.prior_ratio is not None and (self.prior == "population" or self.prior_ratio.tilt is not None)
        n_draw = n_samples * (self.oversample if reweight else 1)
        props = np.full((B, n_draw, N_THETA), np.nan, np.float32) if reweight else None
        log_w = np.full((B, n_draw), -np.inf, np.float32) if reweight else None
        rng = as_streams(generator)
        for sl, z, sky in self._draws(t, state, n_draw, rng, np.arange(B), streams.PROPOSALS, full_sequence,
                                      n_steps, method):
            if reweight:
                props[sl] = theta_from_model(z.float().cpu(), self.stats).numpy()
                z, ess[sl], log_w[sl] = self._resample(z, sky, n_samples, rng, np.arange(B)[sl])
            out[sl] = theta_from_model(z.float().cpu(), self.stats).numpy()
        if reweight and self.min_ess > 0 and self.max_oversample > self.oversample:
            props, log_w = self._top_up(t, state, props, log_w, out, ess, n_samples, rng,
                                        ~nothing.numpy() & sky_ok, full_sequence, n_steps, method)
        self.last_ess = ess
        # every weighted proposal, for probabilities taken from the weights (``inference.summaries``); None when
        # the samples are the network's own draws
        self.last_proposals, self.last_log_weights = props, log_w
        status = np.where(nothing.numpy(), "prior_only", "ok").astype(object)
        status[~sky_ok] = "invalid_input"
        out[~sky_ok] = np.nan
        return out, status

    @torch.no_grad()
    def _top_up(self, t, state, props, log_w, out, ess, n_samples, rng, eligible, full_sequence, n_steps,
                method):
        """More proposals for the stars whose weights have an effective sample size below ``min_ess`` (young stars
        under the population prior: their young proposals weigh ~1/20 of the training mix's): as many as their
        ESS says they need (``top_up_factor``), up to ``max_oversample`` × n in all; their samples are resampled
        from all their proposals. ``out`` and ``ess`` are updated in place; returns the proposals and log weights,
        widened with −inf weights for the other stars."""
        from ysocensus.model.prior_ratio import resample

        low = np.flatnonzero(eligible & (ess < self.min_ess))
        if not low.size:
            return props, log_w
        B, K, P = props.shape
        extra = top_up_factor(ess[low], self.min_ess, K // n_samples, self.max_oversample) * n_samples
        props = np.concatenate([props, np.full((B, int(extra.max()), P), np.nan, np.float32)], 1)
        log_w = np.concatenate([log_w, np.full((B, int(extra.max())), -np.inf, np.float32)], 1)
        for m in np.unique(extra):  # stars needing the same number of proposals share network calls
            rows_m = low[extra == m]
            sub = {k: v[rows_m] for k, v in t.items()}
            for sl, z, sky in self._draws(sub, state[rows_m], int(m), rng, rows_m, streams.TOP_UP, full_sequence,
                                          n_steps, method):
                rows = rows_m[sl]
                props[rows, K:K + m] = theta_from_model(z.float().cpu(), self.stats).numpy()
                log_w[rows, K:K + m] = self._log_weights(z, sky)
        idx, e = resample(torch.as_tensor(log_w[low]), n_samples, u=rng.uniform(low, streams.TOP_UP_RESAMPLE))
        out[low] = np.take_along_axis(props[low], idx.numpy()[..., None], 1)
        ess[low] = e.numpy()
        return props, log_w

    def _log_weights(self, z, sky) -> np.ndarray:
        """log importance weights [b, S] (float32, CPU) of proposals z to ``self.prior``."""
        from ysocensus.model.prior_ratio import log_weights

        return log_weights(self.prior_ratio, z, sky, self.prior).cpu().float().numpy()

    def _prepared(self, arrays, keep=None):
        """Torch views of token arrays and the posterior states (the truth, if the arrays carry it, is never
        conditioned on); → (tensors, state, nothing-observed mask, finite-sky mask)."""
        t = arrays.torch()
        measured = t["measured"].clone()  # a copy: arrays.torch() shares the caller's memory
        measured[:, :N_THETA] = False
        opt = {k: None if getattr(arrays, k, None) is None else torch.as_tensor(getattr(arrays, k))
               for k in ("sigma_known", "searched")}
        state, nothing = self._states(measured, keep, **opt)
        sky_ok = np.isfinite(arrays.sky).all(1) if arrays.sky_ok is None else arrays.sky_ok
        return t, state, nothing, sky_ok

    def _draws(self, t, state, n_draw, rng, rows, purpose, full_sequence=False, n_steps=None, method=None):
        """(star indices, network proposals z [b, n_draw, 5] standardised, sky [b, 4]) per network call (stars
        with the same observed count, ``sampler.batches``); ``rows``: the stars' indices in the streams ``rng``
        (``model.streams``). A call with fewer than ``MIN_CALL_STARS`` stars is padded with copies of its last
        star: matrix products of a handful of rows take another kernel and round differently, so a star's bytes
        would depend on how many stars shared its call."""
        n_obs = is_observed(state).sum(1).numpy()
        rows_per_call = max(self.rows_per_batch, MIN_CALL_STARS * n_draw)  # padding only for groups of < 8 stars
        for sl in sampler.batches(len(state), n_draw, rows_per_call, n_obs):
            n = len(sl)
            run = np.concatenate([sl, np.repeat(sl[-1:], MIN_CALL_STARS - n)]) if n < MIN_CALL_STARS else sl
            cond = self._conditioning(t["values"][run], t["logsig"][run], t["sky"][run], state[run], self.device)
            noise = rng.normal(rows[run], purpose, (n_draw, cond.lat_idx.shape[1])).to(cond.values.dtype)
            z = sampler.sample(self.net, cond, n_draw, n_steps or self.n_steps, method or self.method,
                               noise=noise, full_sequence=full_sequence, time_power=self.time_power,
                               field=self._use_field(full_sequence),
                               precision=resolve_precision(self.field_precision, self.device))
            yield sl, z[:n], cond.sky[:n]

    def _use_field(self, full_sequence: bool = False) -> bool:
        return self.field == "posterior_field" and not full_sequence

    @torch.no_grad()
    def proposals(self, arrays, n_draw: int, generator: torch.Generator | None = None):
        """The network's own proposals, before any resampling, for the age recalibration
        (``model.recalibration``): log10 age [B, n_draw] and their log prior ratio to the population [B, n_draw],
        without the recalibration (−inf for stars with nothing observed or no finite sky position, and for
        non-finite proposals)."""
        from ysocensus.model.prior_ratio import log_weights

        t, state, nothing, sky_ok = self._prepared(arrays)
        B = len(arrays)
        log_age = np.full((B, n_draw), np.nan, np.float64)
        log_w = np.full((B, n_draw), -np.inf, np.float64)
        for sl, z, sky in self._draws(t, state, n_draw, as_streams(generator), np.arange(B), streams.PROPOSALS):
            lr = log_weights(self.prior_ratio, z, sky, from_network=False)
            log_age[sl] = theta_from_model(z.float().cpu(), self.stats)[..., 0].numpy()
            log_w[sl] = lr.double().cpu().numpy()
        log_w[nothing.numpy() | ~sky_ok] = -np.inf
        return log_age, log_w

    @torch.no_grad()
    def _resample(self, z: torch.Tensor, sky: torch.Tensor, n: int, rng, rows):
        """Resample n of the proposals z [b, S, 5] to ``self.prior`` (``prior_ratio.log_weights``, systematic
        resampling with each star's offset from ``rng``); → (z [b, n, 5], ESS [b], log weights [b, S])."""
        from ysocensus.model.prior_ratio import resample

        log_w = self._log_weights(z, sky)
        idx, ess = resample(torch.as_tensor(log_w), n, u=rng.uniform(rows, streams.RESAMPLE))
        idx = idx.to(z.device)
        return torch.gather(z, 1, idx[..., None].expand(-1, -1, z.shape[-1])), ess.numpy(), log_w

    @contextmanager
    def using_prior(self, prior: str):
        """Sample under ``prior`` ("population" or "simulation") inside the block, then restore."""
        _check_prior(prior)
        keep, self.prior = self.prior, prior
        try:
            yield self
        finally:
            self.prior = keep

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

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

    def describe(self) -> dict:
        return {"field": self.field, "field_precision": resolve_precision(self.field_precision, self.device), "solver": self.method, "n_steps": self.n_steps, "time_power": self.time_power, "fingerprint": getattr(self, "fingerprint", None),
                "anchors": self.anchors is not None,
                "network": self.net.config.to_dict(),
                "prior": self.prior if self.prior_ratio is not None else "simulation (no prior ratio)",
                "age_recalibration": self.prior_ratio is not None and self.prior_ratio.age_correction is not None,
                "oversample": self.oversample}

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
        return torch.as_tensor(s).transpose(0, 1).reshape(*torch.Size(sample_shape if not isinstance(sample_shape, int) else (sample_shape,)), -1, N_THETA)

    def sample(self, sample_shape, x=None, generator=None, **_) -> torch.Tensor:
        """[n, 5] samples for one observation vector."""
        return self.sample_batched(sample_shape, self._x(x)[:1], generator)[..., 0, :]

    def log_prob(self, theta, x=None, n_steps: int = 32, method: str = "midpoint", **_) -> torch.Tensor:
        """log q(θ | x) in physical units: the density of the network's own proposals (the velocity field that
        ``sample`` integrates, in float32), under the training mix. It is *not* the density of what ``sample``
        returns under ``prior="population"``, which is these proposals importance-resampled by the prior ratio and
        the age recalibration (their normalising constant per star is not computed). θ [n, 5] with one x, or
        [n, B, 5] / [B, 5] matched with B x's."""
        xs = self._x(x)
        theta = torch.as_tensor(theta, dtype=torch.float32)
        arrays = tokenize(flat_to_frame(xs), self.stats)
        t = arrays.torch()
        t["measured"][:, :N_THETA] = False
        state, _ = self._states(t["measured"], None, torch.as_tensor(arrays.sigma_known),
                                torch.as_tensor(arrays.searched))
        B = len(arrays)
        if theta.dim() == 2 and B == 1:
            th = theta[None]  # [1, n, 5]
        elif theta.dim() == 2:
            th = theta[:, None]  # [B, 1, 5]
        else:
            th = theta.transpose(0, 1)  # [B, n, 5]
        cond = self._conditioning(t["values"], t["logsig"], t["sky"], state, self.device)
        z = theta_to_model(th, self.stats).to(self.device)
        lp = sampler.log_prob(self.net, cond, z, n_steps, method, field=self._use_field()).cpu() + log_abs_det_model_per_phys(th, self.stats)
        lp = torch.nan_to_num(lp, nan=-float("inf"))
        if theta.dim() == 2 and B == 1:
            return lp[0]
        if theta.dim() == 2:
            return lp[:, 0]
        return lp.transpose(0, 1)

    # ------------------------------------------------------------------------------ summaries
    def summarise(self, samples: np.ndarray) -> dict[str, np.ndarray]:
        """Quantiles named after io.POSTERIOR and p_young from samples [B, S, 5], at this model's young threshold:
        ``inference.summaries.summarise``, the one summary of the project (what ``ysocensus infer`` writes)."""
        from ysocensus.inference.summaries import summarise

        out = summarise(samples, self.young_log10_age)
        out.pop("p_young_2")
        return out
