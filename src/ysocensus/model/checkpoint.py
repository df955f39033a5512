"""Model checkpoints: save and load with ``torch.load(weights_only=True)`` and a config fingerprint check.

A checkpoint holds the EMA weights of the network, its architecture config, the flow and guidance config,
the normalisation statistics, the prior-ratio classifier (``model.prior_ratio``; absent when the model was
trained with population weights), the age classifier (``model.age_classes``; absent when none was trained), the
ordered chain of posterior corrections (``posterior.corrections``), the width recalibrations of the population and
the structure posterior (``model.width_recalibration``, ``WIDTHS_KEY``; absent when none was fitted) and a
fingerprint (hash of the model-defining config and the variable registry). An ensemble's checkpoint
(``train.ensemble``, ``save_ensemble``) holds every member's payload: member 0 at the top level, the others in order
under ``ENSEMBLE_KEY``; ``load`` makes it an ``EnsemblePosterior``. Loading checks, with a clear message each:

- the file exists and is a readable torch file (a truncated or corrupted file → ``CheckpointError``);
- its format version and the variable registry match this code;
- when ``expected_config`` is given (the current workflow config), its model-defining keys equal the
  stored ones, value by value (a checkpoint trained under another config → ``CheckpointError`` naming the
  keys that differ; the fingerprint hash is reported beside them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import torch

from ysocensus import io
from ysocensus.model.anchors import from_config as anchors_from_config
from ysocensus.model.network import FlowTransformer, NetworkConfig
from ysocensus.model.config import member_config
from ysocensus.model.config import merge as merge_config  # noqa: F401 (the loader's config API, for its users)
from ysocensus.model.config import resolve as resolve_config  # noqa: F401
from ysocensus.model.tokens import VARIABLE_NAMES, Normalisation, fingerprint_dict

#: 3: the VALUE_ONLY state (network.value_only_emb); 4: A_V as log10(A_V + shift), Gaia σ read as an excess (tokens)
FORMAT_VERSION = 4


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used: missing, corrupted, or made under another config."""


#: sections of the train config that define the trained model (sampling/validation settings do not)
FINGERPRINT_KEYS = ("network", "flow", "masks", "guidance", "anchors", "training", "optim", "seed", "ensemble")


#: what model-defining sections and keys added after checkpoints were written were before they existed: absent
#: from an older checkpoint's config means these values (which reproduce that model), so such a checkpoint
#: keeps loading under a config that asks for the model it is, and fails under one that asks for the new default
LEGACY = {"anchors": {"enabled": False}, "ensemble": {"members": 1},
          "network": {"affine_head": False, "affine_rows": "all", "affine_widths": None},
          "training": {"field_tilt_dex": 0.0, "age_recalibration_dex": 0.0, "age_recalibration_bins": "uniform",
                       "bp_max_mag": None, "width_recalibration": False, "age_classes": False}}

#: revision of the per-star map's inputs to the network (anchors, affine head): 2 = the slot's offset
#: t·c + (s − 1)·x_t and the head read before the last layer; a checkpoint of a network with a map from an earlier
#: revision has weights for other inputs and is refused (plain networks are unaffected)
MAP_REVISION = 2

#: how an ensemble's networks make one posterior (``train.sampling.ensemble``): their mixture
#: (``posterior.ensemble``) or their consensus flow (``posterior.consensus``)
ENSEMBLE_POSTERIORS = ("mixture", "consensus")

#: the payload key of an ensemble's members after the first (``save_ensemble``; absent for a single network)
ENSEMBLE_KEY = "ensemble_members"

#: the payload key of the width recalibration fitted under each prior (``model.width_recalibration``; absent when none
#: was: checkpoints from before the structure prior carry the population's alone)
WIDTHS_KEY = {"population": "width_recalibration", "structure": "width_recalibration_structure"}


def _model_part(cfg: Mapping) -> dict:
    from ysocensus.model.config import DEFAULTS

    out = {}
    for k in FINGERPRINT_KEYS:
        v = cfg.get(k)
        if k in LEGACY:
            v = {**DEFAULTS[k], **LEGACY[k], **(v or {})}
        out[k] = v
    return out


def model_fingerprint(model_config: Mapping) -> str:
    """Hash of the model-defining part of the config (``FINGERPRINT_KEYS``) and the variable registry."""
    return fingerprint_dict({"config": json.loads(json.dumps(_model_part(model_config), sort_keys=True, default=float)),
                             "variables": list(VARIABLE_NAMES)})


def save_checkpoint(path, net: FlowTransformer, stats: Normalisation, model_config: Mapping,
                    extra: Mapping | None = None, prior_ratio=None, chain=None, widths=None,
                    age_classifier=None) -> None:
    """Write atomically; ``model_config`` is the JSON-able config section the model was trained under; ``chain``
    the posterior's corrections in order (``posterior.corrections``; those built on a prior ratio use
    ``prior_ratio``; None: the standard chain of ``prior_ratio``, without an age recalibration); ``widths`` the
    width recalibrations (``width_recalibration.WidthCorrection``) by prior (``posterior.importance.by_prior``: a
    mapping, one correction of the population posterior, or None); ``age_classifier`` the network's age classes
    (``age_classes.AgeClassifier``) or None."""
    from ysocensus.model.posterior.importance import by_prior
    from ysocensus.model.posterior.corrections import chain_config, standard_chain

    chain = standard_chain(prior_ratio) if chain is None else chain
    payload = {
        "posterior_chain": json.dumps(chain_config(chain)),
        **{WIDTHS_KEY[p]: json.dumps(w.to_dict()) for p, w in by_prior(widths).items()},
        "prior_ratio": None if prior_ratio is None else {
            "config": json.dumps(prior_ratio.config()),
            "state_dict": {k: v.detach().cpu() for k, v in prior_ratio.state_dict().items()}},
        "age_classifier": None if age_classifier is None else {
            "config": age_classifier.config(),
            "state_dict": {k: v.detach().cpu() for k, v in age_classifier.state_dict().items()}},
        "format_version": FORMAT_VERSION,
        "network": net.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
        "normalisation": json.dumps(stats.to_dict()),
        "model_config": json.dumps(model_config, sort_keys=True, default=float),
        "fingerprint": model_fingerprint(model_config),
        "variables": list(VARIABLE_NAMES),
        "extra": json.dumps(dict(extra or {}), sort_keys=True, default=float),
        "map_revision": MAP_REVISION,
    }
    _save(payload, path)


def _save(payload: Mapping, path) -> None:
    """torch.save through a file handle, atomically: given a path, torch names the zip's root folder after the file, and
    the temporary file's random name would make the same model different bytes from run to run."""
    with io.atomic_path(path) as tmp, open(tmp, "wb") as fh:
        torch.save(payload, fh)


def _diff(a: Mapping, b: Mapping, prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k, "<absent>"), b.get(k, "<absent>")
        if isinstance(va, Mapping) and isinstance(vb, Mapping):
            out += _diff(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k}: checkpoint {va!r} vs config {vb!r}")
    return out


def _read(path) -> dict:
    """The checkpoint's payload, after the checks that do not depend on a config."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint (run the `train` rule first)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, bad pickle, not a torch file
        raise CheckpointError(f"{path}: corrupted or not a ysocensus checkpoint ({type(exc).__name__}: {exc}); "
                              "delete it and retrain") from exc
    if not isinstance(payload, dict) or "format_version" not in payload:
        raise CheckpointError(f"{path}: not a ysocensus model checkpoint (no format_version)")
    if payload["format_version"] != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {payload['format_version']} but this code reads "
                              f"{FORMAT_VERSION}; retrain")
    if list(payload.get("variables", [])) != list(VARIABLE_NAMES):
        raise CheckpointError(f"{path}: trained on variables {payload.get('variables')} but this code has "
                              f"{list(VARIABLE_NAMES)}; retrain")
    return payload


def members(payload: Mapping) -> list[dict]:
    """The payload of every network of a checkpoint: one, or an ensemble's members in order (``save_ensemble``)."""
    return [{k: v for k, v in payload.items() if k != ENSEMBLE_KEY}] + list(payload.get(ENSEMBLE_KEY) or [])


def load_checkpoint(path, expected_config: Mapping | None = None, member: int = 0):
    """Load → (net in eval mode, Normalisation, model_config dict, extra dict) of network ``member`` (0 for a single
    model; an ensemble's k-th, checked against ``expected_config``'s ``model.config.member_config``). See the module
    docstring. The prior ratio (or None) is in ``extra["prior_ratio_module"]``, the posterior's corrections in order
    in ``extra["posterior_chain"]``, the width recalibrations by prior in ``extra["width_recalibration"]``, the age
    classifier (or None) in ``extra["age_classifier"]``, the
    measurement anchors (or None, when the model was trained without them) in
    ``extra["anchors"]``; ``extra["ensemble_members"]`` says how many networks the checkpoint holds."""
    path = Path(path)
    return _load_member(path, members(_read(path)), expected_config, member)


def _load_member(path: Path, every: list[dict], expected_config: Mapping | None, member: int):
    """``load_checkpoint`` of network ``member`` from the payloads of a checkpoint already read (``members``)."""
    if not 0 <= member < len(every):
        raise CheckpointError(f"{path}: holds {len(every)} network(s), no member {member}")
    payload = every[member]
    model_config = json.loads(payload["model_config"])
    if expected_config is not None:
        expected = member_config(expected_config, member) if member else expected_config
        fp = model_fingerprint(expected)
        # compared key by key, by value: 7 and 7.0 minutes are the same config (the hash alone would differ)
        diffs = _diff(_model_part(model_config),
                      json.loads(json.dumps(_model_part(expected), sort_keys=True, default=float)))
        if diffs:
            raise CheckpointError(f"{path}: trained under another config (fingerprint {payload['fingerprint']} "
                                  f"!= {fp}); differing keys: {diffs[:10]}; retrain or use the "
                                  "matching config")
    stats = Normalisation.from_dict(json.loads(payload["normalisation"]))
    anchors = anchors_from_config(stats, model_config.get("anchors"))
    has_map = anchors is not None or bool(payload["network"].get("affine_head"))
    if has_map and payload.get("map_revision", 1) != MAP_REVISION:
        raise CheckpointError(f"{path}: a network with measurement anchors or the affine head from map revision "
                              f"{payload.get('map_revision', 1)} (this code reads {MAP_REVISION}: the map's inputs "
                              "changed); retrain")
    try:
        net = FlowTransformer(NetworkConfig(**payload["network"]), anchor_inputs=anchors is not None)
        net.load_state_dict(payload["state_dict"])
    except Exception as exc:
        raise CheckpointError(f"{path}: weights do not fit the network ({exc}); corrupted checkpoint?") from exc
    extra = json.loads(payload["extra"])
    ratio, legacy_age = _prior_ratio(path, payload.get("prior_ratio"))
    extra["prior_ratio_module"] = ratio
    extra["posterior_chain"] = _chain(path, payload.get("posterior_chain"), ratio, legacy_age)
    extra["width_recalibration"] = {p: w for p, key in WIDTHS_KEY.items()
                                    if (w := _widths(path, payload.get(key))) is not None}
    extra["anchors"] = anchors
    extra["age_classifier"] = _age_classifier(path, payload.get("age_classifier"))
    extra["ensemble_members"] = len(every)
    return net.eval(), stats, model_config, extra


def save_ensemble(path, member_paths) -> None:
    """Write the checkpoint of an ensemble (``train.ensemble``) from its members' checkpoints, in member order
    (atomically; a single member is written as the single model it is). Members must be single networks trained on
    the same training set under the same config but for their seeds (``model.config.member_config``)."""
    payloads = [_read(p) for p in member_paths]
    if not payloads:
        raise CheckpointError(f"{path}: an ensemble needs at least one member checkpoint")
    base = json.loads(payloads[0]["model_config"])
    for k, (p, pl) in enumerate(zip(member_paths, payloads)):
        if pl.get(ENSEMBLE_KEY):
            raise CheckpointError(f"{p}: already an ensemble; members must be single networks")
        if k and pl["normalisation"] != payloads[0]["normalisation"]:
            raise CheckpointError(f"{p}: trained on another training set than {member_paths[0]} (normalisation "
                                  "differs)")
        diffs = _diff(_model_part(json.loads(pl["model_config"])), _model_part(member_config(base, k)))
        if diffs:
            raise CheckpointError(f"{p}: not member {k} of {member_paths[0]}'s ensemble; differing keys: "
                                  f"{diffs[:10]}")
    payload = dict(payloads[0])
    if len(payloads) > 1:
        payload[ENSEMBLE_KEY] = payloads[1:]
    _save(payload, path)


def _prior_ratio(path, entry):
    """The prior ratio (or None) and, from a checkpoint written before the posterior chain was stored, the age
    recalibration it carried inside its config (or None)."""
    if entry is None:
        return None, None
    from ysocensus.model.prior_ratio import PriorRatio

    try:
        cfg = json.loads(entry["config"])
        legacy_age = cfg.pop("age_correction", None)
        pr = PriorRatio(**cfg)
        pr.load_state_dict(entry["state_dict"])
    except Exception as exc:
        raise CheckpointError(f"{path}: prior ratio does not fit its config ({exc}); corrupted checkpoint?") from exc
    return pr.eval(), legacy_age


def _age_classifier(path, entry):
    """The network's age classes (``age_classes.AgeClassifier``), or None (a checkpoint without them keeps the
    flow's own class masses)."""
    from ysocensus.model.age_classes import from_payload

    try:
        return from_payload(entry)
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: the age classifier does not fit its config ({exc}); corrupted checkpoint?") \
            from exc


def _widths(path, entry):
    """The stored width recalibration, or None (a checkpoint without one keeps the network's widths)."""
    from ysocensus.model.width_recalibration import WidthCorrection

    if entry is None:
        return None
    try:
        return WidthCorrection.from_dict(json.loads(entry))
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: the width recalibration cannot be read: {exc}") from exc


def _chain(path, entry, ratio, legacy_age):
    """The stored chain of corrections; for a checkpoint from before it was stored, the standard chain of its prior
    ratio and age recalibration (what such a checkpoint was sampled with)."""
    from ysocensus.model.posterior.corrections import chain_from_config, standard_chain
    from ysocensus.model.recalibration import AgeCorrection

    if entry is None:
        return standard_chain(ratio, None if legacy_age is None else AgeCorrection(**legacy_age))
    try:
        return chain_from_config(json.loads(entry), ratio)
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: posterior chain cannot be rebuilt ({exc}); corrupted checkpoint?") from exc


def sampling_field(net, samp: Mapping, asked: str | None = None) -> str:
    """The field asked for, else the configured one; the Transformer for a network trained without a posterior
    field unless the posterior field is asked for explicitly (``FlowPosterior`` then says it has none)."""
    if asked is not None:
        return asked
    return samp["field"] if getattr(net, "posterior_field", None) is not None else "transformer"


def load(path, device=None, expected_config: Mapping | None = None, n_steps: int | None = None,
         method: str | None = None, prior: str | None = None, field: str | None = None,
         young_threshold_myr: float | None = None, field_precision: str | None = None, ensemble: str | None = None):
    """Load a checkpoint as a ready ``posterior.FlowPosterior``; an ensemble's checkpoint as the mixture of them
    (``posterior.ensemble.EnsemblePosterior``) or their consensus flow (``posterior.consensus.ConsensusPosterior``),
    as ``ensemble`` says (else ``sampling.ensemble``; ``ENSEMBLE_POSTERIORS``). Sampling settings (solver, steps,
    prior, ensemble) do not
    define the model: they come from ``expected_config`` when given (so the workflow's config decides how
    ``validate`` and ``infer`` sample), else from the config the model was trained under. Neither is the young
    threshold of ``summarise`` (``young_threshold_myr``, default ``io.YOUNG_THRESHOLD_MYR``): a reporting choice."""
    from ysocensus.model.config import DEFAULTS
    from ysocensus.model.posterior import FlowPosterior

    every = members(_read(path))  # the file is read once, whatever the number of networks it holds

    def sampling(model_config: Mapping) -> dict:
        # sampling keys added after a model was trained take today's defaults
        return {**DEFAULTS["sampling"], **model_config.get("sampling", {}),
                **dict((expected_config or {}).get("sampling") or {})}

    def posterior(member: int):
        net, stats, model_config, extra = _load_member(Path(path), every, expected_config, member)
        if device is not None:
            net = net.to(device)
        samp = sampling(model_config)
        post = FlowPosterior(net, stats, n_steps=n_steps or samp["n_steps"], method=method or samp["method"],
                             rows_per_batch=samp["rows_per_batch"],
                             young_log10_age=io.log10_age_threshold(young_threshold_myr or io.YOUNG_THRESHOLD_MYR),
                             chain=extra["posterior_chain"], widths=extra["width_recalibration"],
                             prior=prior or samp["prior"],
                             oversample=samp["prior_oversample"], min_ess=samp["prior_min_ess"],
                             max_oversample=samp["prior_max_oversample"], time_power=samp["time_power"],
                             anchors=extra["anchors"], field=sampling_field(net, samp, field),
                             field_precision=field_precision or samp["field_precision"],
                             age_classifier=extra["age_classifier"])
        return post, model_config, extra["ensemble_members"]

    post, model_config, k = posterior(0)
    if k > 1:
        from ysocensus.model.posterior.consensus import ConsensusPosterior
        from ysocensus.model.posterior.ensemble import EnsemblePosterior

        combine = ensemble or sampling(model_config)["ensemble"]
        if combine not in ENSEMBLE_POSTERIORS:
            raise ValueError(f"ensemble posterior must be one of {ENSEMBLE_POSTERIORS}, not {combine!r}")
        every_member = [post] + [posterior(m)[0] for m in range(1, k)]
        post = (EnsemblePosterior if combine == "mixture" else ConsensusPosterior)(every_member)
    post.fingerprint = model_fingerprint(model_config)
    return post
