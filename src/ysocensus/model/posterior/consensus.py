"""``ConsensusPosterior``: one flow whose velocity is the mean of several networks' fields, importance-resampled
through the mean of their corrections.

A deep ensemble (``posterior.ensemble``) mixes the members' posteriors, so their disagreement becomes width: on the
project's simulations, where each member is already calibrated, the mixture is too wide (over-covers). The members
are K estimates of one velocity field, each with its own error; their mean is a better estimate of it, as averaging
the score models of an ensemble is for diffusion models. The consensus integrates that mean field from one noise
draw (``sampler.consensus_fn``: each network read through its own per-star map, all from the same base), so a
star's posterior is one flow's, as wide as the field says, while the members' independent errors (the network seed
moves a real young group by up to 0.4 dex) average out. The corrections are the members' averaged
(``corrections.mean_chain``). Every sample integrates all K networks: inference costs K × one network's.
"""

from __future__ import annotations

from typing import Sequence

from ysocensus.model.posterior.corrections import mean_chain
from ysocensus.model.posterior.flow_posterior import FlowPosterior
from ysocensus.model.posterior.importance import ImportanceSamplingPosterior
from ysocensus.model.posterior.proposal import ConsensusProposal, same_training_set


class ConsensusPosterior(FlowPosterior):
    """The consensus of ``members`` (``FlowPosterior`` each, trained on the same training set); sampling settings,
    prior and importance settings from the first member."""

    def __init__(self, members: Sequence[FlowPosterior]):
        members = same_training_set(members, "consensus")
        first = members[0]
        ImportanceSamplingPosterior.__init__(self, ConsensusProposal([m.proposal for m in members]),
                                             mean_chain([m.chain for m in members]), first.prior, first.oversample,
                                             first.min_ess, first.max_oversample)
        self.members = members
        self.young_log10_age = first.young_log10_age
        self.fingerprint = None
        self._default_x = None

    # what the chain is made of: the first member's (each member's chain holds the same corrections)
    prior_ratio = property(lambda self: self.members[0].prior_ratio)
    age_correction = property(lambda self: self.members[0].age_correction)

    def describe(self) -> dict:
        d = super().describe()
        d.update({"ensemble_members": len(self.members), "ensemble": "consensus"})
        return d
