"""Sky-wide posterior inference: catalog batches → validated sampler input → posterior summaries.

- ``protocol``: :class:`PosteriorSampler`, the one interface to a trained model, and :class:`SampleResult`.
- ``catalog``: streaming readers (Parquet, FITS, VOTable, ECSV, CSV) and input validation (``InputError``).
- ``columns``: column recognition: the alias table (VizieR, Gaia archive joins, TOPCAT), near misses.
- ``formats``: files by extension (Parquet, FITS, VOTable, ECSV, CSV), read and written with units.
- ``error_models``: survey uncertainties vs magnitude, for filling missing uncertainty columns.
- ``summaries``: vectorised quantiles and P(age < threshold).
- ``driver``: :func:`infer_catalog`, the bounded-memory, atomic, one-row-out-per-row-in driver.
- ``model_adapter``: :func:`load_sampler`, the trained model (results/model/model.ckpt) as a sampler.
- ``rule``: the entry point of the workflow's ``infer`` rule.

Nothing here imports Lightning; torch is imported only by ``model_adapter``.
"""

from ysocensus.inference.catalog import CatalogReader, InputError, prepare
from ysocensus.inference.driver import InferOptions, InferReport, infer_catalog, read_report
from ysocensus.inference.protocol import PosteriorSampler, SampleResult

__all__ = ["CatalogReader", "InputError", "prepare", "InferOptions", "InferReport", "infer_catalog",
           "read_report", "PosteriorSampler", "SampleResult"]
