"""What a ysocensus posterior is, top to bottom.

1. **The network's own posterior** (``proposal.NetworkPosterior``): proposals q(θ | x) from the trained flow (its
   posterior field, or its Transformer decoder for other conditionals), under the prior it was trained on, and
   their log density.
2. **Corrections** (``corrections``), each a log-weight per proposal given θ and the sky position, summed in order:
   ``FieldUntilt`` (the training prior's smooth tilt at the field's 50 Myr weight step → the training mix as
   simulated), ``PopulationRatio`` (the training mix → the Galactic population), ``AgeRecalibration`` (the
   network's measured age-prior error). A checkpoint stores this ordered list.
3. **Importance resampling** (``importance.ImportanceSamplingPosterior``): proposals weighted by the corrections
   and systematically resampled per star, with ESS-sized top-ups; the only importance sampling in the code
   (``reweight`` takes another estimator's samples through the same chain).
4. **The census posterior** (``flow_posterior.FlowPosterior``): 1–3 assembled for a checkpoint
   (``model.checkpoint.load``), with the sbi-like API; ``inference.summaries.summarise`` turns its samples and
   weights into the catalog's columns.
5. **A deep ensemble** (``ensemble.EnsemblePosterior``): the equal-weight mixture of the census posteriors (4) of
   several independently trained networks, each drawing its share of a star's samples; or their consensus
   (``consensus.ConsensusPosterior``): one flow whose velocity is the networks' mean field (``proposal.
   ConsensusProposal``), through the mean of their corrections (``corrections.mean_chain``).

``prior="simulation"`` stops after the field untilt; ``prior="population"`` applies the whole chain.
"""

from ysocensus.model.posterior.corrections import (AgeRecalibration, Correction, FieldUntilt, PopulationRatio,
                                                   standard_chain)
from ysocensus.model.posterior.consensus import ConsensusPosterior
from ysocensus.model.posterior.ensemble import EnsemblePosterior
from ysocensus.model.posterior.flow_posterior import FlowPosterior, flat_to_frame, frame_to_flat, x_columns
from ysocensus.model.posterior.importance import ImportanceSamplingPosterior, resample, top_up_factor
from ysocensus.model.posterior.proposal import ConsensusProposal, NetworkPosterior

__all__ = ["AgeRecalibration", "ConsensusPosterior", "ConsensusProposal", "Correction", "EnsemblePosterior",
           "FieldUntilt", "FlowPosterior", "ImportanceSamplingPosterior", "NetworkPosterior", "PopulationRatio",
           "flat_to_frame", "frame_to_flat", "resample", "standard_chain", "top_up_factor", "x_columns"]
