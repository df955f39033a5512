"""ysocensus: a census of young stars in the local Milky Way by simulation-based inference.

Stages (see docs/ARCHITECTURE.md, "Stages and rules"): ``galaxy`` + ``dust`` (population per HEALPix
tile) → ``surveys`` (observed catalog) → ``model`` (Transformer flow matching, Lightning) → ``inference``
(sky-wide posteriors) → ``maps``. Schemas of every stage's files: :mod:`ysocensus.io`; tiling and seeds:
:mod:`ysocensus.sky`; the config schemas: ``ysocensus/schemas/`` (package data, :mod:`ysocensus.config`).
"""

__version__ = "0.1.0"
