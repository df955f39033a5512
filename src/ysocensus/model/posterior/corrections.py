"""The corrections a census posterior applies to the network's proposals, each a log-weight per sample.

A correction is anything with ``log_weight(z, sky, memo) -> [B, S]`` (standardised θ ``z`` [B, S, 5], sky
features [B, 4]; float, up to a per-star constant; ``memo``: a dict shared by the corrections of one evaluation, so
that two of them built on the same classifier run it once), a ``name``, the ``prior`` whose posterior it completes and whether it
corrects the network's own error (``network_only``: not applied to another estimator's samples). The standard
chain, in the order the weights are summed (``standard_chain``):

1. ``FieldUntilt`` (completes ``simulation``): the network was trained on a prior tilted smooth across the field's
   weight step at 50 Myr (``prior_ratio.FieldTilt``); 1/E[λ | θ, l, b] takes its posterior back to the
   training mix as simulated. Only where the model was trained with a tilt.
2. ``PopulationRatio`` (completes ``population``): the training mix → the Galactic population,
   r(θ, l, b) = E_sim[w^(1−p) | θ, l, b] (``prior_ratio.PriorRatio``).
3. ``AgeRecalibration`` (``population``, network only): the network's leftover error in its age prior, measured on
   held-out simulations (``recalibration.AgeCorrection``).

Beside that chain, ``prior="structure"`` (``STRUCTURE``) is the posterior of a star known to belong to the named young
structure of the simulated Galaxy (the star-forming complexes, their clusters and associations, the literature
associations and moving groups, the Radcliffe Wave clouds: ``galaxy.young``): the field untilt, then
``StructureMembership``. It answers "how old is this member of a young association?", the question a user asks of a
membership list, where the population posterior answers "how old is a star with these measurements?". The two differ
because membership is not in the measurements: at a pre-main-sequence K star's position in the colour–magnitude
diagram the Galaxy holds old binaries and reddened old stars too, which the population posterior weighs in and a
membership list has removed by its kinematics.

A checkpoint stores the chain as a list (``chain_config``) and rebuilds it with ``chain_from_config``.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import torch

from ysocensus.model.prior_ratio import PriorRatio
from ysocensus.model.priors import ALL_PRIORS, PRIORS, STRUCTURE
from ysocensus.model.recalibration import AgeCorrection



class Correction(Protocol):
    name: str
    prior: str
    network_only: bool

    def log_weight(self, z: torch.Tensor, sky: torch.Tensor, memo: dict | None = None) -> torch.Tensor: ...

    def config(self) -> dict: ...


def _class_log_probs(ratio: PriorRatio, z, sky, memo: dict | None):
    """The prior ratio's class log-probabilities at z (on z's device), from ``memo`` when a correction of the same
    evaluation already computed them there."""
    ratio = ratio.to(z.device)
    if memo is None:
        return ratio.class_log_probs(z, sky)
    key = ("class_log_probs", id(ratio))
    if key not in memo:
        memo[key] = ratio.class_log_probs(z, sky)
    return memo[key]


class FieldUntilt:
    """log 1/E[λ | θ, l, b]: the network's tilted training prior → the training mix as simulated (0 outside the
    tilt's zone)."""

    name, prior, network_only = "field_untilt", "simulation", True

    def __init__(self, ratio: PriorRatio):
        self.ratio = ratio

    def log_weight(self, z, sky, memo=None):
        sky = sky[:, None, :].to(z.dtype)
        return self.ratio.log_untilt(z, sky, _class_log_probs(self.ratio, z, sky, memo))

    def config(self) -> dict:
        return {"name": self.name}


class PopulationRatio:
    """log r(θ, l, b): the training mix as simulated → the Galactic population."""

    name, prior, network_only = "population_ratio", "population", False

    def __init__(self, ratio: PriorRatio):
        self.ratio = ratio

    def log_weight(self, z, sky, memo=None):
        sky = sky[:, None, :].to(z.dtype)
        return self.ratio(z, sky, tilted=False, log_p=_class_log_probs(self.ratio, z, sky, memo))

    def config(self) -> dict:
        return {"name": self.name}


class StructureMembership:
    """log p_sim(structure | θ, l, b): the training mix as simulated → the named young structure alone.

    The population stage keeps the young structure complete (``population.thinning.young``) and thins every field
    component, so its members form a weight class of their own, recorded at training
    (``PriorRatio.structure_class``); the classifier's probability of that class is the factor
    p(θ | member) / p_sim(θ) up to a constant (Bayes). A ratio from before that record takes the class of the
    smallest weight, as the population stage makes it. Refused where no class holds the members alone (a mix whose
    structure shares a field weight, or whose weights were binned: ``prior_ratio.MAX_CLASSES``)."""

    name, prior, network_only = "structure_membership", STRUCTURE, False

    def __init__(self, ratio: PriorRatio):
        w = ratio.class_weight.double()
        index = ratio.structure_class
        if index is None:
            index = int(torch.argmin(w))
            index = index if int((w <= w[index] * (1 + 1e-6)).sum()) == 1 else -1
        if index < 0:
            raise ValueError("the structure prior needs the members of the young structure as a weight class of "
                             f"their own; this model's prior ratio has none (class weights {w.tolist()})")
        self.index, self.ratio = int(index), ratio

    def log_weight(self, z, sky, memo=None):
        sky = sky[:, None, :].to(z.dtype)
        return _class_log_probs(self.ratio, z, sky, memo)[..., self.index].to(z.dtype)

    def config(self) -> dict:
        return {"name": self.name}


class AgeRecalibration:
    """log c(age): the network's measured age-prior error (``recalibration``), at θ's log age (standardised by
    ``age_scale`` = (mean, std) of log10 age/yr)."""

    name, prior, network_only = "age_recalibration", "population", True

    def __init__(self, correction: AgeCorrection, age_scale: tuple[float, float]):
        self.correction = correction
        self.age_scale = (float(age_scale[0]), float(age_scale[1]))

    def log_weight(self, z, sky, memo=None):
        return self.correction.log_factor(z[..., 0] * self.age_scale[1] + self.age_scale[0])

    def config(self) -> dict:
        return {"name": self.name, **self.correction.to_dict(), "age_scale": list(self.age_scale)}


class MeanCorrection:
    """One correction as several networks trained on the same training set estimate it: the mean of their log
    weights (the geometric mean of their weights). For the corrections that estimate a property of the
    simulation (the field untilt, the population ratio: each network's classifier fits the same function) it is
    the ensemble's estimate of that function; for a network's own age recalibration it is the first-order
    correction of a flow whose velocity is the networks' mean (``sampler.consensus_fn``), whose error is the mean
    of theirs."""

    def __init__(self, corrections: Sequence):
        corrections = tuple(corrections)
        names = {c.name for c in corrections}
        if len(names) != 1:
            raise ValueError(f"a mean correction averages one correction of several networks, not {sorted(names)}")
        first = corrections[0]
        self.corrections = corrections
        self.name, self.prior, self.network_only = first.name, first.prior, first.network_only

    def log_weight(self, z, sky, memo=None):
        return sum(c.log_weight(z, sky, memo) for c in self.corrections) / len(self.corrections)

    def config(self) -> dict:
        return {"name": self.name, "mean_of": [c.config() for c in self.corrections]}


def mean_chain(chains: Sequence[Sequence]) -> tuple:
    """The chain of a consensus of networks: correction by correction, the mean of theirs (``MeanCorrection``).
    Their chains must list the same corrections in the same order."""
    names = [tuple(c.name for c in ch) for ch in chains]
    if any(n != names[0] for n in names):
        raise ValueError(f"the networks' posterior chains differ ({names}): they cannot be averaged")
    return tuple(MeanCorrection(cs) for cs in zip(*chains))


def standard_chain(ratio: PriorRatio | None, age_correction: AgeCorrection | None = None) -> tuple:
    """The chain of a trained model: field untilt (if trained with a tilt), population ratio, age recalibration
    (if fitted); empty without a prior ratio (a model trained with the population's weights)."""
    if ratio is None:
        return ()
    chain = [FieldUntilt(ratio)] if ratio.tilt is not None else []
    chain.append(PopulationRatio(ratio))
    if age_correction is not None:
        chain.append(AgeRecalibration(age_correction, ratio.age_scale))
    return tuple(chain)


def check_prior(prior: str) -> str:
    """``prior`` if it is one of ``ALL_PRIORS``, else a ValueError naming them."""
    if prior not in ALL_PRIORS:
        raise ValueError(f"prior must be one of {ALL_PRIORS}, not {prior!r}")
    return prior


def up_to(chain: Sequence, prior: str) -> tuple:
    """The corrections that make the posterior under ``prior`` (``ALL_PRIORS``) from the network's proposals; for
    ``STRUCTURE``, those of ``simulation`` and ``StructureMembership`` on the chain's prior ratio (a ValueError for
    a chain without one)."""
    check_prior(prior)
    if prior == STRUCTURE:
        ratios = [c for c in chain if c.name == "population_ratio"]
        if not ratios:
            raise ValueError("the structure prior needs the model's prior ratio (a model trained on the mix as "
                             "simulated, train.training.importance_power < 1)")
        c = ratios[0]
        member = (MeanCorrection([StructureMembership(m.ratio) for m in c.corrections])
                  if isinstance(c, MeanCorrection) else StructureMembership(c.ratio))
        return up_to(chain, "simulation") + (member,)
    return tuple(c for c in chain if c.prior in PRIORS and PRIORS.index(c.prior) <= PRIORS.index(prior))


def after(chain: Sequence, prior: str, network: bool) -> tuple:
    """The corrections that take samples already under ``prior`` onwards: of this network (``network``), or of
    another estimator trained on the same mix (without the network's own corrections)."""
    return tuple(c for c in chain if PRIORS.index(c.prior) > PRIORS.index(prior) and (network or not c.network_only))


def chain_config(chain: Sequence) -> list[dict]:
    """The chain as a checkpoint stores it: one dict per correction, in order."""
    return [c.config() for c in chain]


def chain_from_config(entries: Sequence[dict], ratio: PriorRatio | None) -> tuple:
    """Rebuild a stored chain around the checkpoint's prior ratio."""
    out = []
    for e in entries:
        name = e["name"]
        if name in ("field_untilt", "population_ratio") and ratio is None:
            raise ValueError(f"posterior chain: {name} needs the checkpoint's prior ratio, which it does not have")
        if name == "field_untilt":
            out.append(FieldUntilt(ratio))
        elif name == "population_ratio":
            out.append(PopulationRatio(ratio))
        elif name == "age_recalibration":
            out.append(AgeRecalibration(AgeCorrection(e["edges"], e["log_c"]), e["age_scale"]))
        else:
            raise ValueError(f"posterior chain: unknown correction {name!r}")
    return tuple(out)
