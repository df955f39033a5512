"""Train the model with Lightning: the driver behind ``rule train`` (``scripts/train.py``).

Deterministic seeding, CPU by default and GPU (bf16-mixed) when present, a wall-clock budget with the
learning rate following a cosine over it, CSV logs under ``<logs>/``, a progress bar, early stopping on the
validation loss, Lightning checkpoints (``last.ckpt``) under ``<logs>/checkpoints`` from which an
interrupted run of the same config resumes (``resume_point``: a finished run, or one under another config,
starts afresh), and at the end the EMA weights exported as the model checkpoint
(``checkpoint.save_checkpoint``) next to its config and normalisation statistics.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
import warnings
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from ysocensus import io
from ysocensus.logs import duration, phase
from ysocensus.model import config as mconfig
from ysocensus.galaxy import structure_members
from ysocensus.model.checkpoint import WIDTHS_KEY, model_fingerprint
from ysocensus.model.priors import STRUCTURE
from ysocensus.model.trainset import CALIBRATION, check_bp_rule
from ysocensus.model.posterior.corrections import standard_chain

log = logging.getLogger(__name__)

#: Lightning and torch messages that say nothing about this run, silenced one by one (never a blanket filter):
#: the checkpoint directory always holds run_config.json (``resume_point``), and its parent the checkpoints;
#: the data loaders run in-process (num_workers 0), so an IterableDataset's __len__ is exact; Lightning calls
#: torch's deprecated LeafSpec itself; jobs of the SLURM profile are already launched by the executor.
QUIET_WARNINGS = (
    (UserWarning, r"Experiment logs directory .* exists and is not empty"),
    (UserWarning, r"Checkpoint directory .* exists and is not empty"),
    (UserWarning, r"Your `IterableDataset` has `__len__` defined"),
    (FutureWarning, r"`isinstance\(treespec, LeafSpec\)` is deprecated"),
    (UserWarning, r"The `srun` command is available on your system but is not used"),
)
#: Lightning's advertisements in the log ("💡 Tip: ... try installing litlogger / litmodels")
QUIET_LOG_PREFIXES = ("💡 Tip:",)


class _DropPrefixes(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(QUIET_LOG_PREFIXES)


@contextlib.contextmanager
def _quiet_lightning():
    """Silence :data:`QUIET_WARNINGS` and Lightning's tips while the Trainer is built and run; every other warning
    and log line goes through as before."""
    drop = _DropPrefixes()
    loggers = [logging.getLogger(n) for n in ("lightning.pytorch.utilities.rank_zero",
                                               "lightning.fabric.utilities.rank_zero")]
    with warnings.catch_warnings():
        for category, message in QUIET_WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=category)
        for lg in loggers:
            lg.addFilter(drop)
        try:
            yield
        finally:
            for lg in loggers:
                lg.removeFilter(drop)


def _lr_lambda(module, optim: Mapping):
    """Warm-up then cosine to 2% over whichever budget is tighter: max_steps or max_minutes."""
    max_steps = int(optim.get("max_steps", -1))
    budget_s = 60.0 * float(optim.get("max_minutes", 0) or 0)

    def f(step):
        p = 0.0
        if max_steps > 0:
            p = max(p, step / max_steps)
        if budget_s > 0:
            p = max(p, (time.monotonic() - module._t_start) / budget_s)
        warm = min(1.0, (step + 1) / 100)
        return warm * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(p, 1.0))))

    return f


def fit_population_ratio(train_path, stats, power: float, seed: int, tilt=None, zones=None):
    """The prior ratio population / training mix (``model.prior_ratio``) from the training rows' truth, with the
    field tilt the loss used (or None) and the zones of the near-young field the population was simulated with
    (``population_zones``; None or empty: none); (None, note) when the loss already used the full population
    weights (power 1)."""
    import pyarrow.parquet as pq

    from ysocensus.galaxy.young import lbd_to_xyz, near_structure
    from ysocensus.model.prior_ratio import DISTANCE_INDEX, fit_prior_ratio
    from ysocensus.model.tokens import N_THETA, tokenize

    if power >= 1.0:
        return None, {"note": "importance_power = 1: the network's prior is the population's"}
    t0 = time.monotonic()
    table = pq.read_table(train_path, columns=list(io.PARAMETERS) + ["l", "b", "weight", "component"])
    arrays = tokenize(table, stats, "weight")
    ok = arrays.measured[:, :N_THETA].all(1)
    weight = table.column("weight").to_numpy()[ok]
    age = table.column(io.PARAMETERS[0]).to_numpy()[ok]
    has_zones = zones is not None and len(zones[1]) > 0
    near = near_structure(*lbd_to_xyz(*(table.column(c).to_numpy()[ok] for c in ("l", "b", "distance_pc"))),
                          *zones) if has_zones else np.zeros(len(weight), bool)
    others = 0 if tilt is None else tilt.check_zone(age, weight, str(train_path), near=near)
    model, summary = fit_prior_ratio(arrays.values[ok, :N_THETA], arrays.sky[ok], weight, power, seed=seed,
                                     tilt=tilt, age_scale=(stats.theta_mean[0], stats.theta_std[0]),
                                     zones=zones if has_zones else None,
                                     distance_scale=(stats.theta_mean[DISTANCE_INDEX], stats.theta_std[DISTANCE_INDEX]),
                                     members=structure_members(table)[ok])
    if tilt is not None:
        summary["tilt_zone_non_field_rows"] = others
        summary["tilt_zone_near_young_rows"] = int((tilt.in_zone(age) & near).sum())
    summary["seconds"] = round(time.monotonic() - t0, 1)
    log.info("prior ratio: %s", summary)
    return model, summary


def recalibration_edges(cfg: Mapping, population: Mapping | None):
    """The age recalibration's inner bin edges (``recalibration.step_edges``) for ``training.age_recalibration_bins:
    field_step``, from the field's weight step of the population config and the field tilt's half-width; None for
    uniform bins."""
    from ysocensus.config import section
    from ysocensus.model.recalibration import step_edges

    tr = cfg["training"]
    if tr["age_recalibration_bins"] != "field_step":
        return None
    step = io.log10_age_threshold(float(section("population", population)["young_field_age_max_myr"]))
    return step_edges(step, float(tr["field_tilt_dex"]))


def fit_age_classes(net, stats, cfg: Mapping, train_path, tilt=None):
    """The network's age classes (``model.age_classes``) from a random subset of the training rows, under the
    flow's own condition masks and loss weights; → (the ``AgeClassifier``, its summary)."""
    import pyarrow.parquet as pq

    from ysocensus.model.age_classes import fit_age_classifier
    from ysocensus.model.data import _loss_weights
    from ysocensus.model.masks import MaskMix

    tr = cfg["training"]
    table = pq.read_table(train_path)
    rng = np.random.default_rng(np.random.SeedSequence([int(cfg["seed"]), 7, 2]))
    n = min(int(tr["age_classes_rows"]), table.num_rows)
    table = table.take(np.sort(rng.choice(table.num_rows, n, replace=False)))
    weight = _loss_weights(table, float(tr["importance_power"]), tilt)
    return fit_age_classifier(net, table, stats, MaskMix(**cfg["masks"]), weight, int(cfg["seed"]),
                              tuple(map(float, tr["age_classes_myr"])), int(tr["age_classes_steps"]))


def fit_age_recalibration(net, stats, prior_ratio, anchors, cfg: Mapping, val_path, edges=None,
                          age_classifier=None):
    """Fit the network's age recalibration (``model.recalibration``) on the validation split's detected stars,
    sampled as ``infer`` will sample them (the chain before it: ``posterior.corrections``); → (the
    ``AgeCorrection`` or None, its summary)."""
    import pyarrow.parquet as pq

    from ysocensus.model.checkpoint import sampling_field
    from ysocensus.model.posterior import FlowPosterior
    from ysocensus.model.recalibration import fit_from_posterior

    t0 = time.monotonic()
    samp = cfg["sampling"]
    post = FlowPosterior(net.eval(), stats, n_steps=samp["n_steps"], method=samp["method"],
                         rows_per_batch=samp["rows_per_batch"], prior_ratio=prior_ratio,
                         time_power=samp["time_power"], anchors=anchors, field=sampling_field(net, samp),
                         age_classifier=age_classifier)
    table = pq.read_table(val_path)
    table = table.filter(table.column("survey_mask").to_numpy() > 0)
    tr = cfg["training"]
    corr, summary = fit_from_posterior(post, table, float(tr["age_recalibration_dex"]), cfg["seed"],
                                       tuple(map(float, tr["age_recalibration_range"])), edges)
    summary["seconds"] = round(time.monotonic() - t0, 1)
    log.info("age recalibration: %s", summary)
    return corr, summary


def fit_width_recalibration(net, stats, chain, anchors, cfg: Mapping, calibration_path, prior: str = "population",
                            age_classifier=None):
    """Fit the width recalibration (``model.width_recalibration``) of the posterior under ``prior`` whose corrections
    are ``chain`` on the held-out stars of ``calibration_path`` (``trainset.CALIBRATION``) drawn from that prior: for
    ``population`` a population sample of them (∝ ``weight``, as ``test_population`` is drawn), for ``structure``
    the members of the named young structure (``galaxy.STRUCTURE_COMPONENTS``, kept complete, so unweighted); in full
    and in every catalog users supply (``validation.degradations``); → (the ``WidthCorrection``, its summary)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ysocensus.model.checkpoint import sampling_field
    from ysocensus.model.posterior import FlowPosterior
    from ysocensus.model.trainset import population_sample, surveys_measured
    from ysocensus.model.width_recalibration import fit_from_posterior
    from ysocensus.validation.degradations import DEGRADATIONS, SURVEYS_KEPT, degrade

    t0 = time.monotonic()
    samp, tr = cfg["sampling"], cfg["training"]
    post = FlowPosterior(net.eval(), stats, n_steps=samp["n_steps"], method=samp["method"],
                         rows_per_batch=samp["rows_per_batch"], time_power=samp["time_power"], anchors=anchors,
                         field=sampling_field(net, samp), chain=chain, prior=prior, age_classifier=age_classifier)
    table = pq.read_table(calibration_path)
    mask = table.column("survey_mask").to_numpy()
    rare = table.column("repeat").to_numpy() >= max(1, int(tr["repeats"]))
    lamost = surveys_measured(table)[:, io.SURVEYS.index("lamost")]
    rng = np.random.default_rng(np.random.SeedSequence([int(cfg["seed"]), 7, 1]))
    n = int(tr["width_recalibration_stars"])
    if prior == STRUCTURE:
        member = np.flatnonzero(structure_members(table))
        sample = np.sort(rng.choice(member, min(n, member.size), replace=False))
    else:
        sample = population_sample(table.column("weight").to_numpy(), n, rng)
    keep = np.zeros(table.num_rows, bool)
    keep[sample] = True
    keep &= mask > 0
    # a rare re-observation was kept for what it measured (trainset.rare_observation): unbiased for the LAMOST
    # patterns of the catalogs that keep LAMOST, but among Gaia-only stars it would over-represent bright ones
    every, plain = table.filter(pa.array(keep & (~rare | lamost))), table.filter(pa.array(keep & ~rare))
    catalogs = {"full": every, **{d: degrade(every if "lamost" in SURVEYS_KEPT[d] else plain, d)
                                  for d in DEGRADATIONS}}
    corr, summary = fit_from_posterior(post, catalogs, int(tr["width_recalibration_min_stars"]), int(cfg["seed"]))
    summary["seconds"] = round(time.monotonic() - t0, 1)
    log.info("width recalibration (%s prior): %s", prior, summary)
    return corr, summary


#: written into ``<logs>/checkpoints`` when a run has finished and exported its model
FINISHED = "finished.json"
RUN_CONFIG = "run_config.json"


def resume_point(ckpt_dir: Path, cfg: Mapping) -> str | None:
    """``last.ckpt`` to resume from when an interrupted run of this same config left one; else None, after
    clearing the directory. A finished run, or one made under another config (the
    checkpoint's model-defining keys, ``checkpoint.FINGERPRINT_KEYS``), is never resumed: rerunning
    ``train`` trains afresh."""
    import shutil

    last, run_cfg = ckpt_dir / "last.ckpt", ckpt_dir / RUN_CONFIG
    fp = model_fingerprint(cfg)
    same = run_cfg.exists() and json.loads(run_cfg.read_text()).get("fingerprint") == fp
    if last.exists() and same and not (ckpt_dir / FINISHED).exists():
        log.info("resuming the interrupted run from %s", last)
        return str(last)
    if ckpt_dir.exists():
        log.info("starting afresh: %s", "the last run finished" if (ckpt_dir / FINISHED).exists()
                 else "no checkpoint of this config")
        shutil.rmtree(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    io.write_json({"fingerprint": fp}, run_cfg)
    return None


def field_tilt(cfg: Mapping, population: Mapping | None):
    """The training prior's field tilt (``prior_ratio.FieldTilt``) from the resolved train config and the population
    config the training set was simulated with (its defaults when None); None when off or not needed (power 1)."""
    from ysocensus.config import section
    from ysocensus.model.prior_ratio import FieldTilt

    if float(cfg["training"]["importance_power"]) >= 1.0:
        return None
    return FieldTilt.from_population(section("population", population), float(cfg["training"]["field_tilt_dex"]))


def population_zones(population: Mapping | None, seed: int):
    """The zones of the near-young field (``galaxy.young.near_young_zones``) of the population config the training
    set was simulated with (its defaults when None), for the prior ratio's near-structure flag."""
    from ysocensus.config import section
    from ysocensus.galaxy.young import near_young_zones

    return near_young_zones(section("population", population), seed)


def run_train(training_dir, checkpoint_path, logs_dir, train_cfg: Mapping | None, seed: int,
                 threads: int | None = None, isochrones=None, bc_grid=None, population: Mapping | None = None,
                 member: int = 0) -> dict:
    """Train the model on ``training_dir``; ``population`` is the population config of the simulation (for the
    field tilt and the near-young zones of the prior ratio; its defaults when None). ``member`` k > 0 trains the
    k-th network of an ensemble (``train.ensemble``) under ``config.member_config`` (its own seed); 0 is the
    single model of the seed."""
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    from ysocensus.model.anchors import from_config as anchors_from_config
    from ysocensus.model.checkpoint import save_checkpoint
    from ysocensus.model.data import FlowDataModule
    from ysocensus.model.guidance import Guidance, GuidanceConfig, load_operator
    from ysocensus.model.lightning_module import FlowModule

    cfg = mconfig.member_config(mconfig.resolve(train_cfg, seed), member)
    if not 0 <= int(member) < int(cfg["ensemble"]["members"]):
        raise ValueError(f"train: member {member} of an ensemble of {cfg['ensemble']['members']} "
                         "(train.ensemble.members)")
    if threads:
        torch.set_num_threads(int(threads))
    L.seed_everything(cfg["seed"], workers=True)
    logs_dir = Path(logs_dir)
    ckpt_dir = logs_dir / "checkpoints"
    tilt = field_tilt(cfg, population)
    dm = FlowDataModule(training_dir, cfg["optim"]["batch_size"], cfg["seed"],
                        cfg["training"]["importance_power"], tilt)
    check_bp_rule(dm.stats, cfg, Path(training_dir) / "normalisation.json")
    gcfg = GuidanceConfig(**cfg["guidance"])
    guidance = None
    if gcfg.enabled:
        op = load_operator(isochrones, bc_grid)
        guidance = Guidance(gcfg, op, dm.stats)
    optim = dict(cfg["optim"], seed=cfg["seed"])
    anchors = anchors_from_config(dm.stats, cfg["anchors"])
    module = FlowModule(cfg["network"], cfg["flow"], cfg["masks"], optim, guidance, anchors)
    module._t_start = time.monotonic()
    lr_f = _lr_lambda(module, optim)

    def configure_optimizers():
        opt = torch.optim.AdamW(module.net.parameters(), lr=float(optim["lr"]), weight_decay=float(optim["weight_decay"]))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_f)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    module.configure_optimizers = configure_optimizers
    gpu = torch.cuda.is_available() and optim["accelerator"] in ("auto", "gpu")
    precision = optim["precision"] if optim["precision"] != "auto" else ("bf16-mixed" if gpu else "32-true")
    max_time = {"seconds": int(60 * float(optim["max_minutes"]))} if optim["max_minutes"] else None
    n_train = len(dm.train_dataloader().dataset)
    val_every = min(int(optim["val_every_steps"]), max(1, n_train))
    # deterministic kernels: same config and seed, same weights (CPU, ~1 % slower); "warn" on a GPU, where some
    # ops have no deterministic implementation
    with _quiet_lightning():
        trainer = L.Trainer(
            accelerator="gpu" if gpu else "cpu", devices=1, precision=precision, max_epochs=int(optim["max_epochs"]),
            max_steps=int(optim["max_steps"]), max_time=max_time, deterministic=True if not gpu else "warn",
            logger=CSVLogger(str(logs_dir), name="", version=""),
            callbacks=[ModelCheckpoint(dirpath=str(ckpt_dir), save_last=True, monitor="val/loss", save_top_k=1)]
            + ([EarlyStopping(monitor="val/loss", patience=int(optim["patience"]))] if int(optim["patience"]) > 0 else []),
            val_check_interval=val_every if n_train > val_every else 1.0,
            check_val_every_n_epoch=None if n_train > val_every else 1,
            limit_val_batches=20, enable_progress_bar=True, log_every_n_steps=20, num_sanity_val_steps=0,
            enable_model_summary=False,
        )
        resume = resume_point(ckpt_dir, cfg)
        start = {}
        module.on_train_start = lambda: start.setdefault("step", int(module.global_step))  # restored by now
        log.info("training: %d parameters (an EMA copy is kept for the checkpoint), %s, batch %d; budget %s%s; "
                 "CSV logs in %s", sum(p.numel() for p in module.net.parameters()),
                 "GPU, " + precision if gpu else "CPU", int(optim["batch_size"]),
                 f"{int(optim['max_steps'])} steps" if int(optim["max_steps"]) > 0 else "no step limit",
                 f", {float(optim['max_minutes']):g} min of wall clock" if optim["max_minutes"] else "", logs_dir)
        t0 = time.monotonic()
        trainer.fit(module, datamodule=dm, ckpt_path=resume)
    seconds = time.monotonic() - t0
    start_step = start.get("step", int(trainer.global_step))
    done = int(trainer.global_step) - start_step
    summary = {"steps": int(trainer.global_step), "epochs": int(trainer.current_epoch), "seconds": round(seconds, 1),
               "resumed_from_step": start_step if resume else None,
               "examples_seen": int(trainer.global_step) * int(optim["batch_size"]),
               "examples_per_s": round(done * optim["batch_size"] / max(seconds, 1e-9), 1),
               "val_loss": float(trainer.callback_metrics.get("val/loss", float("nan"))),
               "parameters": sum(p.numel() for p in module.net.parameters())}
    log.info("training: stopped after %d steps in %s (val/loss %.4f); the prior ratio and the age recalibration "
             "follow", summary["steps"], duration(seconds), summary["val_loss"])
    with phase(log, "prior ratio (population / training mix): fitting the classifier on the training rows"):
        prior_ratio, summary["prior_ratio"] = fit_population_ratio(Path(training_dir) / "train.parquet", dm.stats,
                                                                    float(cfg["training"]["importance_power"]),
                                                                    cfg["seed"], tilt, population_zones(population, seed))
    age_classifier = None
    if cfg["training"]["age_classes"] and getattr(module.ema, "posterior_field", None) is not None:
        with phase(log, "age classes: encoding training rows under the flow's condition masks, then fitting"):
            age_classifier, summary["age_classes"] = fit_age_classes(module.ema, dm.stats, cfg,
                                                                     Path(training_dir) / "train.parquet", tilt)
    age_correction = None
    if prior_ratio is not None and float(cfg["training"]["age_recalibration_dex"]) > 0:
        with phase(log, "age recalibration: sampling the validation split's stars as infer will, then fitting"):
            age_correction, summary["age_recalibration"] = fit_age_recalibration(
                module.ema, dm.stats, prior_ratio, anchors, cfg, Path(training_dir) / "val.parquet",
                recalibration_edges(cfg, population), age_classifier)
    chain = standard_chain(prior_ratio, age_correction)
    widths = {}
    calibration = Path(training_dir) / f"{CALIBRATION}.parquet"
    if prior_ratio is not None and cfg["training"]["width_recalibration"]:
        if not calibration.exists():
            raise FileNotFoundError(f"{calibration}: no held-out calibration stars (rerun rule training_set), or set "
                                    "train.training.width_recalibration: false")
        for prior, key in WIDTHS_KEY.items():
            if prior == STRUCTURE and (prior_ratio.structure_class is None or prior_ratio.structure_class < 0):
                summary[key] = {"note": "no weight class of the named young structure in the training mix"}
                continue
            with phase(log, f"width recalibration ({prior} prior): sampling held-out stars in the catalogs users "
                            "supply, then fitting"):
                widths[prior], summary[key] = fit_width_recalibration(module.ema, dm.stats, chain, anchors, cfg,
                                                                      calibration, prior, age_classifier)
    log.info("training: writing the checkpoint %s", checkpoint_path)
    save_checkpoint(checkpoint_path, module.ema, dm.stats, cfg, extra={"training": summary}, prior_ratio=prior_ratio,
                    chain=chain, widths=widths, age_classifier=age_classifier)
    io.write_json({"fingerprint": model_fingerprint(cfg), "steps": summary["steps"]}, ckpt_dir / FINISHED)
    out = Path(checkpoint_path).parent
    io.write_json(cfg, out / "config.json")
    dm.stats.save(out / "normalisation.json")
    io.write_json(summary, out / "training_summary.json")
    log.info("model written to %s: %s", checkpoint_path, json.dumps(summary))
    return summary
