"""The trained model (``results/model/model.ckpt``) as a :class:`~ysocensus.inference.PosteriorSampler`.

This is the one place that knows the model's API (``ysocensus.model``, stage 3):
``model.checkpoint.load(path, device, n_steps, method)`` gives an ``estimator.FlowPosterior`` whose
``sample_catalog(batch, n_samples, streams)`` tokenizes the catalog columns with the model's own
normalisation and returns physical samples [n, S, 5]; its ``last_status`` holds the per-star status
(``prior_only`` when nothing is observed, ``invalid_input`` when l, b are not finite).

Threads: ``torch.set_num_threads(threads)`` (Snakemake's ``threads``); device: ``auto`` takes the GPU when
``torch.cuda.is_available()``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping

import numpy as np

from ysocensus import io
from ysocensus.inference.protocol import SampleResult

log = logging.getLogger(__name__)


def _device(device: str):
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but torch sees no GPU")
    return torch.device(device)


class ModelSampler:
    """Posterior samples from the trained flow-matching model, in physical units of ``io.PARAMETERS``."""

    def __init__(self, estimator, path: str, device, n_steps: int | None = None, method: str | None = None):
        self.estimator = estimator
        self.path = str(path)
        self.device = device
        self.n_steps = n_steps
        self.method = method

    @property
    def bp_max_mag(self) -> float | None:
        """The model's faint-BP rule (``surveys.gaia.unreliable_bp``; None: BP read at every magnitude)."""
        return getattr(getattr(self.estimator, "stats", None), "bp_max_mag", None)

    def sample(self, batch: Mapping[str, np.ndarray], n_samples: int, seed: np.random.SeedSequence) -> SampleResult:
        import torch

        from ysocensus.model.streams import StarStreams

        n = len(batch["source_id"])
        # each star's draws from its own stream (the run's seed and its source_id): the same posterior whatever
        # the batch it falls in, the rows skipped around it or the stars that need a top-up
        rng = StarStreams.for_stars(int(seed.generate_state(1, np.uint64)[0]), batch["source_id"])
        kw = {}
        if self.n_steps is not None:
            kw["n_steps"] = self.n_steps
        if self.method is not None:
            kw["method"] = self.method
        with torch.inference_mode():
            samples = self.estimator.sample_catalog(batch, n_samples, generator=rng, **kw)
        samples = np.asarray(samples, np.float32)
        if samples.shape != (n, n_samples, len(io.PARAMETERS)):
            raise RuntimeError(f"model returned samples of shape {samples.shape}, "
                               f"expected {(n, n_samples, len(io.PARAMETERS))}")
        status = getattr(self.estimator, "last_status", None)
        if status is None or len(status) != n:
            status = np.full(n, "ok", dtype=object)
        props = getattr(self.estimator, "last_proposals", None)
        log_w = getattr(self.estimator, "last_log_weights", None)
        ess = getattr(self.estimator, "last_ess", None)
        return SampleResult(samples, np.asarray(status, dtype=object), props, log_w if props is not None else None,
                            ess if props is not None else None)

    def describe(self) -> dict:
        d = {"model": self.path, "device": str(self.device), "n_steps": self.n_steps, "method": self.method}
        describe = getattr(self.estimator, "describe", None)
        if callable(describe):
            d.update(describe())
        return d


def load_sampler(path: str | Path, device: str = "auto", threads: int | None = None,
                 n_steps: int | None = None, method: str | None = None,
                 rows_per_batch: int | None = None, expected_config: Mapping | None = None,
                 prior: str | None = None, field: str | None = None,
                 field_precision: str | None = None, ensemble: str | None = None) -> ModelSampler:
    """Load a trained model checkpoint as a sampler (``threads``: torch CPU threads; None = torch's default).

    ``rows_per_batch`` (stars × samples per network call; None = the model's own setting) trades memory for
    speed on CPU. ``expected_config`` (a resolved ``train`` section) makes loading fail, naming the keys,
    when the checkpoint was trained under another config. ``prior``: one of ``model.priors.ALL_PRIORS``
    (None = the model's own setting, ``train.sampling.prior``); ``field``: ``posterior_field`` or ``transformer``
    (None = the model's own setting, ``train.sampling.field``); ``field_precision``: ``auto``, ``float32`` or
    ``bfloat16`` for the posterior field's trunk (None = the model's own, ``train.sampling.field_precision``;
    ``float32`` gives the same samples on machines with and without bf16 matrix units); ``ensemble``: ``mixture`` or
    ``consensus`` for a checkpoint of several networks (None = the model's own, ``train.sampling.ensemble``).
    """
    import torch

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such model checkpoint (train one with the workflow's train rule)")
    if threads:
        torch.set_num_threads(int(threads))
    dev = _device(device)
    from ysocensus.model import checkpoint  # stage 3

    estimator = checkpoint.load(path, device=dev, n_steps=n_steps, method=method,
                                expected_config=expected_config, prior=prior, field=field,
                                field_precision=field_precision, ensemble=ensemble)
    if rows_per_batch:
        estimator.rows_per_batch = int(rows_per_batch)
    log.info("loaded %s on %s (%d threads)", path, dev, torch.get_num_threads())
    return ModelSampler(estimator, str(path), dev, n_steps, method)
