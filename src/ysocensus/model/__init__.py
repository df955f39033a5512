"""The inference model: an all-in-one (Simformer-style) Transformer trained by flow matching.

One concern per module, importable without Lightning except ``lightning_module`` and ``data``:

- ``tokens``: the variable registry (θ and observed variables from ``ysocensus.io``), transforms to
  model space, normalisation statistics and the conversion of catalog rows into token tensors.
- ``masks``: condition masks (posterior, random subsets, survey drops, predict-a-band).
- ``network``: the Transformer. Observed tokens attend only among themselves, so their keys and values
  are computed once per star and reused across posterior samples and ODE steps.
- ``flow``: flow matching (straight paths, σ_min, time sampling) and its loss.
- ``anchors``: the per-star change of variables for [Fe/H] and distance around their LAMOST and
  parallax measurements, so measurement-sharp posteriors are learnt at unit width.
- ``guidance``: the χ² residual of the measurement operator on the one-step clean estimate.
- ``sampler``: fixed-step Euler/Heun/midpoint, an adaptive RK45 reference, exact-divergence log density.
- ``estimator``: a plain-torch posterior object (``sample_batched``, ``log_prob``) for sbi-style code.
- ``checkpoint``: save/load with ``weights_only=True`` and a config fingerprint check.
"""
