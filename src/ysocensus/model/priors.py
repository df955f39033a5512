"""The priors a census posterior can be sampled under (``ysocensus infer --prior``), without importing torch.

- ``simulation``: the training mix as simulated (young-enriched), the network's own posterior untilted;
- ``population``: the Galactic population, what a star drawn from the sky with these measurements is;
- ``structure``: a member of the named young structure of the simulated Galaxy, what a star of a membership list is
  (``posterior.corrections.StructureMembership``).

``PRIORS`` is the chain's order (each completes the one before); ``STRUCTURE`` branches off ``simulation``.
"""

#: the posteriors the standard chain can stop at, in order
PRIORS = ("simulation", "population")
#: the posterior of a member of the named young structure
STRUCTURE = "structure"
#: every prior a posterior can be sampled under
ALL_PRIORS = PRIORS + (STRUCTURE,)
