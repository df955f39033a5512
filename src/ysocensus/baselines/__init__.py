"""Peers of the flow-matching posterior, run side by side by ``benchmarks/peers.py`` (rule ``compare_peers``).

- ``grid``: a brute-force grid posterior (brutus-style): the same stellar models, bolometric corrections and
  Galactic prior as the simulator, the likelihood on a dense ([Fe/H], log age, log mass) library times a
  distance grid per line of sight, A_V from the same 3D dust. The reference posterior on a small subset.
- ``c2st``: classifier two-sample test with an MLP, as in sbibm.
- ``sagitta``: the published Sagitta networks (McBride et al. 2021) on our catalog columns.
- ``npe``: a standard amortised NPE (zuko neural spline flow) with missing values filled plus missingness
  indicators, trained on the same training set under a wall-clock budget.
- ``peers``: the comparison driver (one table, JSON, figures).

Nothing here imports Lightning.
"""
