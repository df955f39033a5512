"""The driver of ``rule validate``: calibration.json and figures from held-out simulations.

Calibration (coverage, SBC) is judged twice. Headline: the posterior under the Galactic population
(prior-ratio resampled, ``model.prior_ratio``) on ``test_population.parquet``, an unweighted sample of the
population (drawn ∝ weight from held-out stars), without weights. Alongside (``as_simulated``): the
network's own posterior under the training mix on ``test.parquet`` (held-out stars as simulated, young
stars over-represented), which is what the network learned. P(young), accuracy of young ages and posterior
widths use ``test.parquet``: as simulated with the training-mix posterior, and population-weighted with
the population posterior.
Every coverage figure comes with its noise floor (``calibration.noise_floor``) for the number of stars.
Besides survey combination, G magnitude and |b|, the headline calibration is split by a truth the model does
not infer, unresolved binarity (``by_companion``, and per survey combination
``max_coverage_error_by_companion``; the training set's ``companion_mass_ratio``): the posteriors of single
stars and unresolved binaries miss in opposite directions where the data are sharp (LAMOST), which the
survey-combination figure alone cannot show.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Mapping

import numpy as np
import pyarrow.parquet as pq
import torch

from ysocensus import galaxy, io
from ysocensus.logs import duration, phase
from ysocensus.model.checkpoint import load, resolve_config
from ysocensus.model.posterior.observations import DROP_GROUPS, condition_mask, survey_combination_names, tokenize
from ysocensus.inference.summaries import probability_below, weighted_probability_below
from ysocensus.validation import calibration as cal
from ysocensus.validation.degradations import DEGRADATIONS, degrade
from ysocensus.model.priors import STRUCTURE

log = logging.getLogger(__name__)

G_BINS = (-np.inf, 12.0, 15.0, 17.0, 19.0, np.inf)
ABS_B_BINS = (0.0, 5.0, 15.0, 30.0, 90.01)
#: population test stars on which validate compares the other ODE solvers (``validation.solvers``)
SOLVER_STARS = 3000
#: survey steps of the widths table: conditioned token groups (masks.DROP_GROUPS), cumulative
WIDTH_STEPS = (("gaia_phot", ("gaia_phot",)), ("+parallax", ("gaia_phot", "parallax")),
               ("+2mass_wise", ("gaia_phot", "parallax", "tmass", "wise")),
               ("+lamost", ("gaia_phot", "parallax", "tmass", "wise", "lamost")))


def evaluate(post, table, n_samples: int, levels=cal.LEVELS, seed: int = 0, min_group: int = 500,
             method=None, n_steps=None, weights=None) -> dict:
    """Calibration of ``post`` on the rows of ``table``: overall, per survey combination, per G bin."""
    rng = np.random.default_rng(seed)
    g = torch.Generator().manual_seed(seed)
    arrays = tokenize(table, post.stats)
    samples, status = post.sample_tokens(arrays, n_samples, g, n_steps=n_steps, method=method)
    ok = status == "ok"
    truth = cal.truth_array(table)
    u = cal.pit(cal.model_space(samples), cal.model_space(truth), rng)
    combos = survey_combination_names(arrays.measured)
    gmag = table.column("phot_g_mean_mag").to_numpy(zero_copy_only=False).astype(float)
    out = {"n_stars": int(ok.sum()), "n_prior_only": int((status == "prior_only").sum())}

    def coverage(mask):
        return cal.coverage(u[mask], levels, None if weights is None else weights[mask])

    def block(mask):
        cov = coverage(mask)
        mce = cal.max_coverage_error(cov, levels)
        n_eff = cal.effective_size(None if weights is None else weights[mask], int(mask.sum()))
        res = {"n_stars": int(mask.sum()), "noise_floor": cal.noise_floor(n_eff, len(io.PARAMETERS), levels, 200, seed),
               "parameters": {}}
        for j, p in enumerate(io.PARAMETERS):
            res["parameters"][p] = {"max_coverage_error": float(mce[j]), "coverage": cov[:, j].tolist(),
                                    "sbc_ks_pvalue": cal.ks_pvalue(u[mask, j]),
                                    "rank_histogram": cal.rank_histogram(u[mask, j])}
        return res

    out["overall"] = block(ok)
    out["by_survey_combination"] = {}
    for c in np.unique(combos[ok]):
        m = ok & (combos == c)
        if m.sum() >= 50:
            r = block(m)
            r["meets_min_group"] = bool(m.sum() >= min_group)
            out["by_survey_combination"][str(c)] = r
    out["by_g_magnitude"] = {}
    for lo, hi in zip(G_BINS[:-1], G_BINS[1:]):
        m = ok & (gmag >= lo) & (gmag < hi)
        if m.sum() >= 50:
            out["by_g_magnitude"][f"{lo:g}..{hi:g}"] = block(m)
    m = ok & ~np.isfinite(gmag)
    if m.sum() >= 50:
        out["by_g_magnitude"]["no_G"] = block(m)
    # the prior depends on direction (the dust above all): calibration by Galactic latitude
    out["by_abs_b"] = {}
    absb = np.abs(table.column("b").to_numpy().astype(float))
    for lo, hi in zip(ABS_B_BINS[:-1], ABS_B_BINS[1:]):
        m = ok & (absb >= lo) & (absb < hi)
        if m.sum() >= 50:
            out["by_abs_b"][f"{lo:g}..{hi:g}"] = block(m)
    # simulation truth the model does not infer: unresolved binaries (LAMOST labels are the primary's, the
    # photometry is the pair's), where the posteriors' shape matters most
    if io.COMPANION_MASS_RATIO in table.column_names:
        q = table.column(io.COMPANION_MASS_RATIO).to_numpy(zero_copy_only=False).astype(float)
        groups = {"single": ok & (q == 0), "unresolved_binary": ok & (q > 0)}
        out["by_companion"] = {name: block(m) for name, m in
                               {**groups, "unresolved_binary_q_ge_0.6": ok & (q >= 0.6)}.items() if m.sum() >= 50}
        for c, r in out["by_survey_combination"].items():
            here = combos == c
            r["max_coverage_error_by_companion"] = {
                name: dict(zip(io.PARAMETERS, map(float, cal.max_coverage_error(coverage(m & here), levels))))
                for name, m in groups.items() if (m & here).sum() >= 50}
    out["_samples"], out["_status"], out["_truth"], out["_u"], out["_arrays"] = samples, status, truth, u, arrays
    return out


def worst_coverage_error(parameters: Mapping) -> float:
    """The largest max coverage error over the parameters of a calibration block (``evaluate``'s ``parameters``)."""
    return float(max(v["max_coverage_error"] for v in parameters.values()))


def p_young_metrics(samples_sim, samples_pop, truth, status, weights, threshold, p_pop=None, p_sim=None) -> dict:
    """ROC AUC and purity at completeness 0.9 of P(young): as simulated (posterior under the training mix,
    stars unweighted; ``p_sim``: its P(young) from the importance weights, as ``ysocensus infer --prior simulation``
    writes it, else from the samples) and population-weighted (posterior under the population, stars weighted;
    ``p_pop``: likewise)."""
    ok = (status == "ok") & np.isfinite(samples_sim[..., 0]).all(1) & np.isfinite(samples_pop[..., 0]).all(1)
    young = truth[:, 0] < threshold
    res = {"threshold_log10_age": threshold, "n_stars": int(ok.sum()), "n_young": int((ok & young).sum())}
    for name, w, s, pw in (("population_weighted", weights, samples_pop, p_pop),
                           ("as_simulated", None, samples_sim, p_sim)):
        p = (s[..., 0] < threshold).mean(1)
        if pw is not None:
            p = np.where(np.isfinite(pw), pw, p)
        ww = None if w is None else w[ok]
        pc = cal.purity_at_completeness(p[ok], young[ok], 0.9, ww)
        res[name] = {"auc": cal.roc_auc(p[ok], young[ok], ww), "purity_at_completeness_0.9": pc["purity"],
                     "threshold_p": pc["threshold"], "reliability": cal.reliability(p[ok], young[ok], ww)}
    # the headline: as simulated (young stars represented); population-weighted alongside
    res["auc"] = res["as_simulated"]["auc"]
    res["purity_at_completeness_0.9"] = res["as_simulated"]["purity_at_completeness_0.9"]
    return res


def p_young_of_last_call(post, samples, threshold) -> np.ndarray:
    """P(age < threshold) of the stars of ``post``'s last sampling call: from the weights of all its proposals
    where it importance-resampled them (what ``ysocensus infer`` writes), else from the samples."""
    if getattr(post, "last_proposals", None) is not None:
        return weighted_probability_below(post.last_proposals[..., 0], post.last_log_weights, threshold)
    return probability_below(samples, threshold)


def users_supply(post, pop, test, n_stars: int, n_samples: int, threshold: float, seed: int,
                 min_group: int, progress: "Progress | None" = None) -> dict:
    """The population posterior on catalogs as users supply them (``validation.degradations``), beside the full
    columns: calibration on the unweighted population sample (overall and worst survey combination with at
    least ``min_group`` stars) and P(young) on held-out stars as simulated (young stars represented; AUC
    population-weighted and unweighted, the fraction of young stars called young at P >= 0.5, the median
    |Δ log age| of young stars). ``progress`` logs each step (:class:`Progress`)."""
    pop_s = random_rows(pop, n_stars, seed + 2)
    test_s = random_rows(test, n_stars, seed + 3)
    w = test_s.column("weight").to_numpy().astype(float)
    out = {"n_stars": n_stars, "young_threshold_log10_age": threshold, "variants": {}}
    for name in ("full",) + DEGRADATIONS:
        t0 = time.monotonic()
        tp = pop_s if name == "full" else degrade(pop_s, name)
        with (progress or Progress()).phase(f"catalog as users supply it, {name}: calibration",
                                             tp.num_rows * n_samples):
            r = evaluate(post, tp, n_samples, seed=seed, min_group=min_group)
        combos = {c: worst_coverage_error(g["parameters"])
                  for c, g in r["by_survey_combination"].items() if g.get("meets_min_group")}
        worst = max(combos, key=combos.get) if combos else None
        tt = test_s if name == "full" else degrade(test_s, name)
        with (progress or Progress()).phase(f"catalog as users supply it, {name}: P(young)", tt.num_rows * n_samples):
            s, st = post.sample_tokens(tokenize(tt, post.stats), n_samples, torch.Generator().manual_seed(seed + 4))
        p = p_young_of_last_call(post, s, threshold)
        truth = cal.truth_array(tt)
        ok = (st == "ok") & np.isfinite(p)
        young = truth[:, 0] < threshold
        med = np.nanmedian(s[..., 0], axis=1)
        out["variants"][name] = {
            "calibration": {"n_stars": r["n_stars"], "n_prior_only": r["n_prior_only"],
                            "max_coverage_error": worst_coverage_error(r["overall"]["parameters"]),
                            "by_parameter": {k: v["max_coverage_error"] for k, v in r["overall"]["parameters"].items()},
                            "noise_floor_p90": r["overall"]["noise_floor"]["all_parameters_p90"],
                            "worst_survey_combination": worst,
                            "worst_survey_combination_error": None if worst is None else combos[worst],
                            "by_survey_combination": combos},
            "p_young": {"n_stars": int(ok.sum()), "n_young": int((ok & young).sum()),
                        "auc_population_weighted": cal.roc_auc(p[ok], young[ok], w[ok]),
                        "auc_unweighted": cal.roc_auc(p[ok], young[ok], None),
                        "called_young_of_young": float(np.mean(p[ok & young] >= 0.5)) if (ok & young).any() else None,
                        "called_young_of_old": float(np.mean(p[ok & ~young] >= 0.5)) if (ok & ~young).any() else None,
                        "young_median_abs_log_age_error": float(np.median(np.abs(med[ok & young] - truth[ok & young, 0])))
                        if (ok & young).any() else None}}
        log.info("catalog as users supply it, %s: max coverage error %.3f, AUC %.3f, %.0f s", name,
                 out["variants"][name]["calibration"]["max_coverage_error"],
                 out["variants"][name]["p_young"]["auc_population_weighted"], time.monotonic() - t0)
    return out


def widths_table(post, table, n_samples: int, seed: int, max_stars: int,
                 young_log10_age: float = io.log10_age_threshold(io.YOUNG_THRESHOLD_MYR)) -> dict:
    """Mean posterior half-width (q84 − q16)/2 of each parameter as surveys are added, for young stars
    measured by every survey step (the same stars in every step)."""
    arrays = tokenize(table, post.stats)
    meas = arrays.measured
    has = {g: meas[:, list(idx)].any(1) for g, idx in DROP_GROUPS.items()}
    truth = cal.truth_array(table)
    sel = has["gaia_phot"] & has["parallax"] & (has["tmass"] | has["wise"]) & has["lamost"] & (truth[:, 0] < young_log10_age)
    idx = np.flatnonzero(sel)[:max_stars]
    res = {"n_stars": int(len(idx)), "steps": {}}
    if not len(idx):
        return res
    sub = arrays.subset(idx)
    per_star = {}
    for name, groups in WIDTH_STEPS:
        s, _ = post.sample_tokens(sub, n_samples, torch.Generator().manual_seed(seed), keep=condition_mask(groups))
        ms = cal.model_space(s)
        q16, q84 = np.nanpercentile(ms, 16, axis=1), np.nanpercentile(ms, 84, axis=1)
        hw = 0.5 * (q84 - q16)
        per_star[name] = (hw, np.nanmedian(ms, axis=1))
        res["steps"][name] = {p: float(np.nanmean(hw[:, j])) for j, p in enumerate(("log10_age_yr", "log10_mass",
                                                                                      "feh", "log10_distance_pc", "av_mag"))}
    res["_per_star"] = per_star
    res["_truth"] = cal.model_space(truth[idx])
    return res


def random_rows(table, n: int, seed: int):
    """At most ``n`` rows of ``table``, a random subset (in file order) when it has more: the rows are in tile
    order, so the first rows would be one patch of sky."""
    if table.num_rows <= n:
        return table
    pick = np.random.default_rng(seed).choice(table.num_rows, n, replace=False)
    return table.take(np.sort(pick))


class Progress:
    """The phases of ``validate`` in the log: each phase's start with its expected duration, a line every minute
    while it runs, its elapsed time, and the time left overall. Durations are predicted from the rate (posterior
    samples drawn per second) measured so far on phases of the same kind (the first from a small probe), in
    proportion to each phase's stars × samples: ``population``, the population posterior (prior-ratio weights
    and top-ups of young stars), and ``simulation``, the network's own posterior (cheaper per sample)."""

    def __init__(self, planned: Mapping[str, float] | None = None, every_s: float = 60.0):
        self.planned = dict(planned or {})
        self.every_s = every_s
        self.units: dict[str, float] = {}
        self.seconds: dict[str, float] = {}
        self.t0 = time.monotonic()

    def measured(self, kind: str, units: float, seconds: float) -> None:
        """Count work done into the rate of its kind (also work outside a phase: the probe)."""
        self.units[kind] = self.units.get(kind, 0.0) + units
        self.seconds[kind] = self.seconds.get(kind, 0.0) + seconds

    def rate(self, kind: str) -> float | None:
        """Samples per second of this kind; of all kinds together until one of this kind is measured."""
        u, s = self.units.get(kind, 0.0), self.seconds.get(kind, 0.0)
        if u > 0 and s > 0:
            return u / s
        u, s = sum(self.units.values()), sum(self.seconds.values())
        return u / s if u > 0 and s > 0 else None

    def left_s(self) -> float:
        left = 0.0
        for kind, planned in self.planned.items():
            rate = self.rate(kind)
            if rate:
                left += max(planned - self.units.get(kind, 0.0), 0.0) / rate
        return left

    def phase(self, what: str, units: float, kind: str = "population"):
        rate = self.rate(kind)
        return _counted(self, what, units, kind, units / rate if rate else None)


@contextmanager
def _counted(progress: Progress, what: str, units: float, kind: str, expected_s: float | None):
    with phase(log, f"validation: {what}", expected_s, progress.every_s) as info:
        yield info
    progress.measured(kind, units, info["seconds"])
    log.info("validation: %s elapsed in all, ~%s left", duration(time.monotonic() - progress.t0),
             duration(progress.left_s()))


def _plan(vcfg: Mapping, n_pop: int, n_test: int, n_width: int, resample_twice: bool) -> dict:
    """Posterior samples validate will draw (stars × samples of each phase) by kind, for the time left in the log."""
    n = int(vcfg["n_samples"])
    population = n_pop * n + (n_test * n if resample_twice else 0)
    if int(vcfg["degraded_stars"]) > 0:
        population += (1 + len(DEGRADATIONS)) * 2 * min(int(vcfg["degraded_stars"]), n_pop) * n
    population += len(vcfg["solvers"]) * min(SOLVER_STARS, n_pop) * n
    population += int(vcfg.get("structure_stars", 0)) * n
    return {"population": float(population), "simulation": float(n_test * n + len(WIDTH_STEPS) * n_width * n)}


def structure_members(post, test_path, n_stars: int, n_samples: int, seed: int, min_group: int, progress) -> dict:
    """Calibration of the structure prior (``ysocensus infer --prior structure``) where its truth comes from: held-out
    members of the named young structure (test split, ``galaxy.STRUCTURE_COMPONENTS``, detected), whose parameters
    are drawn from exactly the prior that posterior assumes. Max coverage error per parameter and survey
    combination, and the median |error| and bias of the median log age (dex)."""
    test = pq.read_table(test_path)
    keep = (test.column("survey_mask").to_numpy() > 0) & galaxy.structure_members(test)
    table = random_rows(test.filter(keep), n_stars, seed)
    if table.num_rows == 0:
        return {"test_set": "no held-out members of the named young structure", "n_stars": 0}
    with post.using_prior(STRUCTURE), progress.phase("calibration of held-out structure members (structure prior)",
                                                     table.num_rows * n_samples):
        r = evaluate(post, table, n_samples, seed=seed, min_group=min_group)
    ok = (r["_status"] == "ok") & np.isfinite(r["_samples"][..., 0]).all(1)
    age = cal.accuracy(np.nanmedian(r["_samples"][ok, :, 0], 1), r["_truth"][ok, 0])
    params = r["overall"]["parameters"]
    return {"test_set": "test (held-out members of the named young structure as simulated), structure prior",
            "n_stars": r["n_stars"], "max_coverage_error_all": worst_coverage_error(params),
            "parameters": {p: {k: v[k] for k in ("max_coverage_error", "sbc_ks_pvalue")} for p, v in params.items()},
            "noise_floor": r["overall"]["noise_floor"],
            "by_survey_combination": {c: {"n_stars": b["n_stars"], "meets_min_group": b.get("meets_min_group"),
                                          "max_coverage_error": worst_coverage_error(b["parameters"])}
                                      for c, b in r["by_survey_combination"].items()},
            "log10_age_yr": age}


def run_validate(checkpoint, training_dir, out_json, figures_dir, train_cfg: Mapping | None, seed: int,
                   threads: int | None = None, preset: Mapping | None = None,
                   young_threshold_myr: float = io.YOUNG_THRESHOLD_MYR) -> dict:
    """calibration.json and the figures; ``preset`` (the workflow's ``preset`` section) is written into the
    JSON, so a smoke test's numbers say what they are; young = younger than ``young_threshold_myr`` (config
    ``infer.young_threshold_myr``, as in the catalog's p_young)."""
    cfg = resolve_config(train_cfg, seed)
    if threads:
        torch.set_num_threads(int(threads))
    t0 = time.monotonic()
    log.info("validation: loading %s", checkpoint)
    post = load(checkpoint, expected_config=cfg, young_threshold_myr=young_threshold_myr)
    young_age = post.young_log10_age
    vcfg = cfg["validation"]
    training_dir = Path(training_dir)
    pop = random_rows(pq.read_table(training_dir / "test_population.parquet"), int(vcfg["max_stars"]), cfg["seed"])
    n_test = pq.ParquetFile(training_dir / "test.parquet").metadata.num_rows
    progress = Progress(_plan(vcfg, pop.num_rows, min(n_test, int(vcfg["max_stars"])), int(vcfg["width_stars"]),
                              not (post.prior_ratio is not None and post.oversample == 1
                                   and not (post.min_ess > 0 and post.max_oversample > 1))))
    log.info("validation: %d population test stars, %d samples each; about %.2g posterior samples to draw in all",
             pop.num_rows, int(vcfg["n_samples"]), sum(progress.planned.values()))
    _probe(post, pop, int(vcfg["n_samples"]), progress)
    with progress.phase("calibration on the population test set (population posterior)",
                        pop.num_rows * int(vcfg["n_samples"])):
        res = evaluate(post, pop, int(vcfg["n_samples"]), seed=cfg["seed"],
                       min_group=int(vcfg["min_stars_per_group"]))
    out: dict = {"test_set": "test_population (unweighted sample of the Galactic population, held out)",
                 "solver": {"method": post.method, "n_steps": post.n_steps, "time_power": post.time_power}, "n_samples": int(vcfg["n_samples"]),
                 "levels": list(cal.LEVELS), "n_stars": res["n_stars"], "n_prior_only": res["n_prior_only"]}
    out["parameters"] = res["overall"]["parameters"]
    out["noise_floor"] = res["overall"]["noise_floor"]
    out["by_survey_combination"] = res["by_survey_combination"]
    out["by_g_magnitude"] = res["by_g_magnitude"]
    out["by_abs_b"] = res["by_abs_b"]
    if "by_companion" in res:
        out["by_companion"] = res["by_companion"]
    truth, samples = res["_truth"], res["_samples"]
    med = np.nanmedian(cal.model_space(samples), axis=1)
    tm = cal.model_space(truth)
    young = truth[:, 0] < young_age
    acc_defs = {"log10_age_yr": young, "initial_mass_msun": None, "feh": None, "distance_pc": None, "av_mag": None}
    for j, p in enumerate(io.PARAMETERS):
        m = np.ones(len(truth), bool) if acc_defs[p] is None else acc_defs[p]
        a = cal.accuracy(med[m, j], tm[m, j])
        out["parameters"][p].update({"median_abs_error": a["median_abs_error"], "bias": a["bias"],
                                     "accuracy_space": "log10" if p in ("initial_mass_msun", "distance_pc") else "linear",
                                     "accuracy_subset": "age < threshold" if p == "log10_age_yr" else "all"})
    out["max_coverage_error_all"] = worst_coverage_error(out["parameters"])

    ess = post.last_ess if post.last_ess is not None else np.full(len(truth), np.nan)
    described = post.describe()
    out["prior"] = {"posterior": described["prior"], "oversample": post.oversample,
                    "age_recalibration": described["age_recalibration"],
                    "ess_median": float(np.nanmedian(ess)), "ess_below_8_fraction": float(np.mean(ess < 8))}

    # held-out stars as simulated (young stars represented): P(young), young ages, the network's own calibration
    test = pq.read_table(training_dir / "test.parquet")
    det = test.column("survey_mask").to_numpy() > 0
    test = test.filter(det)
    test = random_rows(test, int(vcfg["max_stars"]), cfg["seed"] + 1)
    tr_t = cal.truth_array(test)
    w_t = test.column("weight").to_numpy().astype(float)
    g = torch.Generator().manual_seed(cfg["seed"] + 1)
    with post.using_prior("simulation"):  # the posterior under the training mix, which these stars come from
        with progress.phase("calibration on held-out stars as simulated (the network's own posterior)",
                            test.num_rows * int(vcfg["n_samples"]), kind="simulation"):
            sim = evaluate(post, test, int(vcfg["n_samples"]), seed=cfg["seed"] + 1,
                           min_group=int(vcfg["min_stars_per_group"]))
        p_sim = p_young_of_last_call(post, sim["_samples"], young_age)
        with progress.phase("posterior widths as surveys are added",
                            len(WIDTH_STEPS) * int(vcfg["width_stars"]) * int(vcfg["n_samples"]), kind="simulation"):
            wt = widths_table(post, test, int(vcfg["n_samples"]), cfg["seed"], int(vcfg["width_stars"]), young_age)
    s_sim, st_t = sim["_samples"], sim["_status"]
    if post.prior_ratio is not None and post.oversample == 1 and not (post.min_ess > 0 and post.max_oversample > 1):
        # the population posterior is these same samples resampled by the prior ratio (what sample_tokens
        # does with oversample 1), so the stars need not be sampled twice
        s_pop, _ = post.reweight(s_sim, sim["_arrays"].sky, int(vcfg["n_samples"]), g, from_network=True)
        p_pop = None
    else:
        with progress.phase("population posterior of the held-out stars (P(young))",
                            test.num_rows * int(vcfg["n_samples"])):
            s_pop, _ = post.sample_tokens(sim["_arrays"], int(vcfg["n_samples"]), g)
        p_pop = p_young_of_last_call(post, s_pop, young_age)
    out["as_simulated"] = {"test_set": "test (held-out stars as simulated), posterior under the training mix",
                           "parameters": {p: {k: v[k] for k in ("max_coverage_error", "sbc_ks_pvalue")}
                                          for p, v in sim["overall"]["parameters"].items()},
                           "noise_floor": sim["overall"]["noise_floor"],
                           "by_survey_combination": {c: {"n_stars": r["n_stars"],
                                                         "max_coverage_error": worst_coverage_error(r["parameters"])}
                                                     for c, r in sim["by_survey_combination"].items()}}
    out["p_young"] = p_young_metrics(s_sim, s_pop, tr_t, st_t, w_t, young_age, p_pop, p_sim)
    log.info("validation: calibration and P(young) done, %.0f s", time.monotonic() - t0)
    # is P(young) a probability: expected vs found young stars in the unweighted population sample
    ok_pop = (res["_status"] == "ok") & np.isfinite(samples[..., 0]).all(1)
    out["p_young"]["test_population"] = {
        "n_stars": int(ok_pop.sum()), "n_young": int((ok_pop & young).sum()),
        "reliability": cal.reliability((samples[ok_pop, :, 0] < young_age).mean(1), young[ok_pop])}
    if int(vcfg["degraded_stars"]) > 0:
        out["as_users_supply"] = users_supply(post, pop, test, int(vcfg["degraded_stars"]), int(vcfg["n_samples"]),
                                              young_age, cfg["seed"], int(vcfg["min_stars_per_group"]),
                                              progress)
    if int(vcfg["structure_stars"]) > 0 and post.prior_ratio is not None:
        out["structure_members"] = structure_members(post, training_dir / "test.parquet", int(vcfg["structure_stars"]),
                                                     int(vcfg["n_samples"]), cfg["seed"] + 2,
                                                     int(vcfg["min_stars_per_group"]), progress)
    yt = tr_t[:, 0] < young_age
    if yt.any():
        a = cal.accuracy(np.nanmedian(s_sim[yt, :, 0], 1), tr_t[yt, 0])
        out["young_age_accuracy_as_simulated"] = a
    # solver comparison on a subset (calibration, not loss, judges a solver)
    out["solvers"] = {}
    sub = random_rows(pop, SOLVER_STARS, cfg["seed"])
    for method, steps in vcfg["solvers"]:
        with progress.phase(f"solver {method} with {steps} steps", sub.num_rows * int(vcfg["n_samples"])):
            r = evaluate(post, sub, int(vcfg["n_samples"]), seed=cfg["seed"], method=method, n_steps=int(steps))
        out["solvers"][f"{method}_{steps}"] = {
            "max_coverage_error": {p: v["max_coverage_error"] for p, v in r["overall"]["parameters"].items()},
            "noise_floor_all_parameters_p90": r["overall"]["noise_floor"]["all_parameters_p90"]}
    out["widths_by_surveys"] = {k: v for k, v in wt.items() if not k.startswith("_")}
    out["targets"] = targets(out)
    if preset is not None:
        # which preset made these numbers; a smoke test's are not meaningful (config key preset.smoke_test)
        out["preset"] = {k: preset.get(k) for k in ("name", "smoke_test", "description")}
    # the run's wall-clock time stays in the log: identical inputs give identical bytes (issue 23, point 8)
    figures_dir = Path(figures_dir)
    try:
        from ysocensus.validation import figures
        with phase(log, "validation: figures"):
            figures.make_all(out, res, wt, figures_dir, smoke_test=bool(preset and preset.get("smoke_test")))
    except Exception as exc:  # figures must not lose the numbers
        log.warning("figures failed: %s", exc)
    io.write_json(_clean(out), out_json)
    log.info("validation: max coverage error %.3f (noise floor p90 %.3f), AUC %.3f; %s in all",
             out["max_coverage_error_all"], out["noise_floor"]["all_parameters_p90"], out["p_young"]["auc"],
             duration(time.monotonic() - t0))
    return out


def _probe(post, pop, n_samples: int, progress: Progress, n: int = 200) -> None:
    """Time the population posterior of a few stars (their own generator; nothing is kept), so that the first
    long phase of validate already has an expected duration in the log."""
    if pop.num_rows < 2 * n:
        return
    t = time.monotonic()
    post.sample_tokens(tokenize(random_rows(pop, n, 12345), post.stats), n_samples, torch.Generator().manual_seed(0))
    seconds = time.monotonic() - t
    progress.measured("population", n * n_samples, seconds)
    log.info("validation: %d stars sampled in %s (a probe for the time each phase will take)", n, duration(seconds))


def targets(out: Mapping, overall: float = cal.COVERAGE_TARGET_OVERALL,
            per_group: float = cal.COVERAGE_TARGET_PER_COMBINATION) -> dict:
    """The calibration targets on the population test set: max coverage error ≤ ``overall`` for every parameter,
    and ≤ ``per_group`` in every survey combination with at least ``min_stars_per_group`` stars; each with
    its value, the noise floor (p90 of a perfectly calibrated posterior with as many stars) and ``met``."""
    res = {"overall": {"threshold": overall, "value": out["max_coverage_error_all"],
                       "noise_floor_p90": out["noise_floor"]["all_parameters_p90"],
                       "met": bool(out["max_coverage_error_all"] <= overall)}, "by_survey_combination": {}}
    for c, r in out["by_survey_combination"].items():
        if not r.get("meets_min_group"):
            continue
        worst = max(r["parameters"], key=lambda p: r["parameters"][p]["max_coverage_error"])
        v = r["parameters"][worst]["max_coverage_error"]
        res["by_survey_combination"][c] = {"threshold": per_group, "value": v, "worst_parameter": worst,
                                           "n_stars": r["n_stars"],
                                           "noise_floor_p90": r["noise_floor"]["all_parameters_p90"],
                                           "met": bool(v <= per_group)}
    res["all_met"] = bool(res["overall"]["met"] and all(v["met"] for v in res["by_survey_combination"].values()))
    return res


def _clean(o):
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items() if not str(k).startswith("_")}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    if isinstance(o, float) and not np.isfinite(o):
        return None
    if isinstance(o, np.floating):
        return _clean(float(o))
    return o
