"""The train rule's log without noise (issue 23, point 10): Lightning's tips and the warnings that say nothing about
the run are silenced one by one while the Trainer runs; every other warning and log line still gets through."""

import logging
import warnings

import pytest

from ysocensus.model.training import QUIET_WARNINGS, _quiet_lightning

NOISE = [
    (UserWarning, "Experiment logs directory results/model/logs/ exists and is not empty. Previous log files in "
                  "this directory will be deleted when the new ones are saved!"),
    (UserWarning, "Checkpoint directory /x/results/model/logs/checkpoints exists and is not empty."),
    (UserWarning, "Your `IterableDataset` has `__len__` defined. In combination with multi-process data loading"),
    (FutureWarning, "`isinstance(treespec, LeafSpec)` is deprecated, use `isinstance(treespec, TreeSpec) and "
                    "treespec.is_leaf()` instead."),
    (UserWarning, "The `srun` command is available on your system but is not used. HINT: If your intention is to "
                  "run Lightning on SLURM, prepend your python command with `srun`"),
]


def test_every_filter_is_scoped_to_one_message():
    assert len(QUIET_WARNINGS) == len(NOISE)
    assert all(len(message) > 20 for _, message in QUIET_WARNINGS)


@pytest.mark.parametrize("category, message", NOISE, ids=[m[:30] for _, m in NOISE])
def test_known_noise_is_silenced_inside_only(category, message):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with _quiet_lightning():
            warnings.warn(message, category)
        warnings.warn(message, category)
    assert len(caught) == 1  # the one outside


def test_other_warnings_still_get_through():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with _quiet_lightning():
            warnings.warn("The dataloader does not have many workers which may be a bottleneck.", UserWarning)
            warnings.warn("Checkpoint file is corrupt", UserWarning)
    assert len(caught) == 2


def test_lightning_tips_are_dropped_and_other_info_kept(caplog):
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    with caplog.at_level(logging.INFO, logger="lightning.pytorch.utilities.rank_zero"):
        with _quiet_lightning():
            rank_zero.info("💡 Tip: For seamless cloud logging and experiment tracking, try installing [litlogger]")
            rank_zero.info("GPU available: False, used: False")
        rank_zero.info("💡 Tip: outside the trainer")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["GPU available: False, used: False", "💡 Tip: outside the trainer"]
