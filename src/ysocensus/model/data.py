"""LightningDataModule streaming the Parquet splits of ``results/training/`` as token batches.

Rows are read one row group at a time (never the whole file), shuffled within a buffer of a few row
groups (row-group order reshuffled every epoch, deterministic from the seed), tokenized with the
training set's normalisation (``tokens.tokenize``) and yielded as ready batches of tensors, so the
DataLoader runs with ``batch_size=None``. Each batch also carries the observed magnitudes and errors
for the guidance term.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.data import DataLoader, IterableDataset

from ysocensus import io
from ysocensus.model.prior_ratio import FieldTilt, loss_weights
from ysocensus.model.tokens import Normalisation, observed_magnitudes, tokenize

#: the truth column the field tilt reads
AGE = io.PARAMETERS[0]


def _loss_weights(table: pa.Table, weight_power: float, tilt: FieldTilt | None) -> np.ndarray:
    w = table.column("weight").to_numpy().astype(np.float64)
    age = table.column(AGE).to_numpy().astype(np.float64) if tilt is not None else None
    return loss_weights(w, age, weight_power, tilt)


def batch_from_table(table: pa.Table, stats: Normalisation, weight_power: float = 1.0,
                     tilt: FieldTilt | None = None, weight_scale: float | None = None) -> dict[str, torch.Tensor]:
    """Token tensors (+ magnitudes for guidance) of a table of training rows; loss weights
    (``prior_ratio.loss_weights``) divided by ``weight_scale`` (None: their mean in this table)."""
    arrays = tokenize(table, stats, "weight" if "weight" in table.column_names else None)
    if "weight" in table.column_names:
        w = _loss_weights(table, weight_power, tilt)
        arrays.weight = (w / (weight_scale or max(w.mean(), 1e-30))).astype(np.float32)
    out = arrays.torch()
    mags = observed_magnitudes(table)
    out.update({k: torch.as_tensor(v) for k, v in mags.items()})
    return out


class ParquetStream(IterableDataset):
    """Batches from one Parquet file, streamed by row groups."""

    def __init__(self, path, stats: Normalisation, batch_size: int, shuffle: bool, seed: int = 0,
                 buffer_row_groups: int = 4, weight_power: float = 1.0, tilt: FieldTilt | None = None):
        self.path = str(path)
        self.stats = stats
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.buffer = buffer_row_groups
        self.weight_power = weight_power
        self.tilt = tilt
        self.epoch = 0
        pf = pq.ParquetFile(self.path)
        self.n_rows = pf.metadata.num_rows
        self.n_groups = pf.num_row_groups
        # one normalisation of the loss weights over the whole file (not per batch)
        w = _loss_weights(pq.read_table(self.path, columns=["weight", AGE]), weight_power, tilt)
        self.weight_scale = float(np.mean(w)) if len(w) else 1.0

    def __len__(self):
        n = self.n_rows // self.batch_size
        return n if self.shuffle else -(-self.n_rows // self.batch_size)

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        pf = pq.ParquetFile(self.path)
        order = rng.permutation(self.n_groups) if self.shuffle else np.arange(self.n_groups)
        carry = None
        for i in range(0, len(order), self.buffer):
            t = pf.read_row_groups([int(g) for g in order[i:i + self.buffer]])
            if carry is not None:
                t = pa.concat_tables([carry, t])
            idx = rng.permutation(t.num_rows) if self.shuffle else np.arange(t.num_rows)
            n_full = len(idx) // self.batch_size
            for b in range(n_full):
                yield self._batch(t.take(pa.array(idx[b * self.batch_size:(b + 1) * self.batch_size])))
            rest = idx[n_full * self.batch_size:]
            carry = t.take(pa.array(rest)) if len(rest) else None
        if carry is not None and carry.num_rows and not self.shuffle:
            yield self._batch(carry)

    def _batch(self, t: pa.Table):
        return batch_from_table(t, self.stats, self.weight_power, self.tilt, self.weight_scale)


class FlowDataModule(L.LightningDataModule):
    """train/val splits of ``results/training/`` for ``FlowModule``."""

    def __init__(self, directory, batch_size: int = 1024, seed: int = 0, weight_power: float = 1.0,
                 tilt: FieldTilt | None = None):
        super().__init__()
        self.dir = Path(directory)
        self.batch_size = batch_size
        self.seed = seed
        self.weight_power = weight_power
        self.tilt = tilt
        self.stats = Normalisation.load(self.dir / "normalisation.json")

    def train_dataloader(self):
        ds = ParquetStream(self.dir / "train.parquet", self.stats, self.batch_size, True, self.seed,
                           weight_power=self.weight_power, tilt=self.tilt)
        return DataLoader(ds, batch_size=None, num_workers=0)

    def val_dataloader(self):
        ds = ParquetStream(self.dir / "val.parquet", self.stats, 4 * self.batch_size, False, self.seed,
                           weight_power=self.weight_power, tilt=self.tilt)
        return DataLoader(ds, batch_size=None, num_workers=0)
