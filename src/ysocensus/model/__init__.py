"""The inference model: an all-in-one (Simformer-style) Transformer trained by flow matching.

One concern per module, importable without Lightning except ``lightning_module``, ``data`` and ``training``:

- ``config``: the ``train`` config section with the schema's defaults (outside Snakemake).
- ``tokens``: the variable registry (θ and observed variables from ``ysocensus.io``), transforms to model space,
  normalisation statistics and the conversion of catalog rows into token tensors.
- ``masks``: condition masks (posterior, survey drops, Gaia only, random subsets, predict-a-band, prior).
- ``network``: the Transformer. Observed tokens attend only among themselves, so their keys and values are
  computed once per star and reused across posterior samples and ODE steps.
- ``posterior_field``: the light MLP velocity field for the all-θ-latent posterior (the production sampler).
- ``flow``: flow matching (straight paths, σ_min, time sampling) and its loss.
- ``anchors``: the per-star change of variables around the LAMOST [Fe/H] and parallax measurements.
- ``guidance``: the χ² residual of the measurement operator on the one-step clean estimate (off by default).
- ``sampler``: fixed-step Euler/Heun/midpoint, an adaptive RK45 reference, exact-divergence log density.
- ``streams``: per-star counter-based random streams (a star's draws do not depend on its batch).
- ``prior_ratio``: the population / training-mix ratio r(θ, l, b) (classifier, field tilt, near-young zones) and
  the loss weights it pairs with.
- ``age_classes``: P(age class | x) from the frozen network's observation encoding, fitted after training, and the
  post-stratification that gives a posterior's proposals those class masses (sharper P(young)).
- ``recalibration``: the network's age recalibration, fitted on held-out stars after training.
- ``width_recalibration``: the network's leftover width error per conditioning pattern (a scale per parameter about
  each star's median), fitted on held-out stars in the catalogs users supply after the age recalibration, for the
  population and the structure prior.
- ``priors``: the names of the priors a posterior is sampled under (simulation, population, structure), torch-free.
- ``posterior``: what a posterior is, top to bottom: ``proposal`` (the network's own posterior), ``corrections``
  (field untilt, population ratio, age recalibration, structure membership: one log-weight each), ``importance``
  (the one importance resampling with the age classes' stratification, ESS and top-ups, then the width
  recalibration of the prior sampled under),
  ``flow_posterior`` (``FlowPosterior``: the chain for a checkpoint, sbi-like API), ``observations`` (catalog rows
  as a posterior reads them, for validation and baselines), ``ensemble`` (``EnsemblePosterior``: the equal-weight
  mixture of a deep ensemble's members).
- ``checkpoint``: save/load with ``weights_only=True``, a config fingerprint check, the posterior chain and an
  ensemble's members in one file.
- ``ensemble``: an ensemble's members' checkpoints → its checkpoint and side files (rule ``ensemble``).
- ``trainset``: the training / validation / test splits joined from truth and catalog.
- ``data``: the Lightning data module streaming the Parquet splits.
- ``lightning_module``: the ``LightningModule`` (step logic only).
- ``training``: the ``train`` stage: Lightning fit, then the prior ratio, the age classes, the age and the width
  recalibrations.
"""
