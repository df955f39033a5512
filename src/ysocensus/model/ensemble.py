"""An ensemble's files (``train.ensemble``): the members' checkpoints → one checkpoint and its side files.

Each member is trained like the single model (``model.training.run_train`` with ``member=k``) into
``results/model/members/{k}/``; this writes ``results/model/`` as the single model's training does: the checkpoint
(``model.checkpoint.save_ensemble``), ``config.json`` (member 0's, the config the ensemble was asked for),
``normalisation.json`` and ``training_summary.json`` (each member's summary, in order). The posterior is
``model.posterior.ensemble.EnsemblePosterior``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Sequence

from ysocensus import io
from ysocensus.model.checkpoint import save_ensemble

log = logging.getLogger(__name__)

#: the side files each member's directory holds beside its checkpoint (as ``run_train`` writes them)
SIDE_FILES = ("config.json", "normalisation.json", "training_summary.json")


def write_ensemble(member_paths: Sequence, checkpoint_path) -> dict:
    """Write the ensemble's checkpoint and side files; returns the training summary written."""
    member_paths = [Path(p) for p in member_paths]
    for p in member_paths:
        for name in SIDE_FILES:
            if not (p.parent / name).exists():
                raise FileNotFoundError(f"{p.parent / name}: missing beside the member checkpoint {p}")
    save_ensemble(checkpoint_path, member_paths)
    out = Path(checkpoint_path).parent
    first = member_paths[0].parent
    io.write_json(json.loads((first / "config.json").read_text()), out / "config.json")
    io.write_json(json.loads((first / "normalisation.json").read_text()), out / "normalisation.json")
    summaries = [json.loads((p.parent / "training_summary.json").read_text()) for p in member_paths]
    summary = {"ensemble_members": len(member_paths), "members": summaries,
               "steps": [s.get("steps") for s in summaries], "seconds": sum(float(s.get("seconds", 0.0))
                                                                        for s in summaries)}
    io.write_json(summary, out / "training_summary.json")
    log.info("ensemble of %d members written to %s", len(member_paths), checkpoint_path)
    return summary
