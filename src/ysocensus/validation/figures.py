"""Figures of ``rule validate``: coverage curves, SBC rank histograms, P(young) reliability, widths as surveys are added."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ysocensus import io
from ysocensus.validation.calibration import COVERAGE_TARGET_OVERALL, LEVELS

LABELS = {"log10_age_yr": "log age", "initial_mass_msun": "log mass", "feh": "[Fe/H]",
          "distance_pc": "log distance", "av_mag": "$A_V$"}


#: marks on the figures of a smoke-test preset (config key preset.smoke_test)
SMOKE_TEST_NOTE = "SMOKE TEST: a model trained far too briefly; these numbers are not meaningful"


def _stamp(fig, smoke_test: bool) -> None:
    if smoke_test:
        note = SMOKE_TEST_NOTE if fig.get_figwidth() >= 9 else SMOKE_TEST_NOTE.replace("; ", ";\n")
        fig.text(0.5, 1.0, note, ha="center", va="bottom", color="crimson", fontsize=12, fontweight="bold",
                 transform=fig.transFigure)


def _save(fig, path: Path, plt, dpi: int = 110) -> None:
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)


def make_all(out: dict, res: dict, widths: dict, directory: Path, smoke_test: bool = False) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    coverage_figure(out, directory / "coverage.png", plt, smoke_test)
    # SBC rank histograms
    fig, axes = plt.subplots(1, len(io.PARAMETERS), figsize=(14, 2.8))
    for ax, p in zip(axes, io.PARAMETERS):
        h = np.asarray(out["parameters"][p]["rank_histogram"])
        ax.bar(np.arange(len(h)), h, color="C0")
        ax.axhline(h.mean(), color="k", lw=0.8)
        ax.set(title=f"{LABELS[p]}  KS p={out['parameters'][p]['sbc_ks_pvalue']:.2g}", xticks=[0, len(h) - 1],
               xticklabels=["0", "1"], xlabel="rank of the truth among the draws")
    axes[0].set_ylabel("stars per rank bin")
    fig.tight_layout()
    _stamp(fig, smoke_test)
    _save(fig, directory / "sbc_ranks.png", plt)
    p_young_reliability(out.get("p_young", {}), directory, plt, smoke_test)
    # widths as surveys are added: one low-mass and one high-mass young star + the mean table
    per = widths.get("_per_star")
    if per:
        truth = widths["_truth"]
        steps = list(per)
        lo, hi = int(np.argmin(truth[:, 1])), int(np.argmax(truth[:, 1]))
        names = ["log age", "log mass", "[Fe/H]", "log d", "A_V"]
        fig, axes = plt.subplots(1, 3, figsize=(14, 4))
        for ax, star, title in ((axes[0], lo, "low-mass young star"), (axes[1], hi, "high-mass young star")):
            for j in range(5):
                ax.plot(range(len(steps)), [per[s][0][star, j] for s in steps], marker="o", label=names[j])
            ax.set_xticks(range(len(steps)), steps, rotation=20)
            ax.set(title=f"{title}: log M = {truth[star, 1]:.2f}, log age = {truth[star, 0]:.2f}",
                   ylabel="posterior half-width (q84−q16)/2")
            ax.legend(fontsize=7)
        for j in range(5):
            axes[2].plot(range(len(steps)), [np.nanmean(per[s][0][:, j]) for s in steps], marker="o", label=names[j])
        axes[2].set_xticks(range(len(steps)), steps, rotation=20)
        axes[2].set(title=f"mean over {len(truth)} young stars", yscale="log")
        axes[2].legend(fontsize=7)
        fig.tight_layout()
        _stamp(fig, smoke_test)
        _save(fig, directory / "widths_by_surveys.png", plt)


def coverage_figure(out: dict, path: Path, plt, smoke_test: bool = False) -> None:
    """Coverage − credible level of every parameter (all stars; single stars against unresolved binaries) and the
    max coverage error per survey combination against its target, each beside its noise floor."""
    floor = out["noise_floor"]["per_parameter_p90"]
    companions = {k: v for k, v in out.get("by_companion", {}).items() if k in ("single", "unresolved_binary")}
    targets = out.get("targets", {})
    overall_target = targets.get("overall", {}).get("threshold", COVERAGE_TARGET_OVERALL)
    fig, axes = plt.subplots(1, 3 if companions else 2, figsize=(17 if companions else 11.5, 5.2),
                             gridspec_kw={"wspace": 0.28})
    lv = np.asarray(LEVELS)
    ax = axes[0]
    ax.fill_between(lv, -floor, floor, color="0.85",
                    label=f"noise floor, p90 of a calibrated posterior (±{floor:.3f})")
    for j, p in enumerate(io.PARAMETERS):
        cov = np.asarray(out["parameters"][p]["coverage"])
        ax.plot(lv, cov - lv, marker="o", ms=4, color=f"C{j}",
                label=f"{LABELS[p]}: max error {out['parameters'][p]['max_coverage_error']:.3f}")
    ax.axhline(0, color="k", lw=0.6)
    ax.set(xlabel="credible level α (central interval)", ylabel="coverage − α",
           title=f"all {out['n_stars']:,} stars (target: max error ≤ {overall_target:g})")
    ax.legend(fontsize=8.5, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=1, frameon=False)

    # survey combinations are categories: one marker per combination and parameter, side by side, no lines
    ax = axes[1]
    combos = out["by_survey_combination"]
    width = 0.8 / max(len(combos), 1)
    group_target = None
    for k, (c, r) in enumerate(combos.items()):
        x = np.arange(len(io.PARAMETERS)) - 0.4 + width * (k + 0.5)
        e = [r["parameters"][p]["max_coverage_error"] for p in io.PARAMETERS]
        counted = r.get("meets_min_group", True)
        f = r["noise_floor"]["per_parameter_p90"]
        ax.bar(x, [f] * len(x), width=width * 0.9, color=f"C{k}", alpha=0.18, lw=0)
        ax.plot(x, e, ls="none", marker="o", ms=6, color=f"C{k}", mfc=f"C{k}" if counted else "white",
                label=f"{c}: {r['n_stars']:,} stars, floor {f:.3f}{'' if counted else ' (too few for the target)'}")
        if counted and c in targets.get("by_survey_combination", {}):
            group_target = targets["by_survey_combination"][c]["threshold"]
    group_target = 0.08 if group_target is None else group_target
    ax.axhline(group_target, color="crimson", lw=1, ls="--",
               label=f"target: ≤ {group_target:g} in every combination with enough stars")
    ax.set_xticks(range(len(io.PARAMETERS)), [LABELS[p] for p in io.PARAMETERS])
    ax.set_xlim(-0.5, len(io.PARAMETERS) - 0.5)
    ax.set_ylim(0, max(group_target * 1.25, ax.get_ylim()[1]))
    ax.set(ylabel="max coverage error", title="by survey combination (shaded: each one's noise floor)")
    ax.legend(fontsize=8.5, loc="upper center", bbox_to_anchor=(0.5, -0.09), ncol=1, frameon=False)
    # the same stars split by a truth the model does not infer: unresolved binarity
    if companions:
        from matplotlib.lines import Line2D

        ax = axes[2]
        n = {k: v["n_stars"] for k, v in companions.items()}
        for (name, r), ls in zip(companions.items(), ("-", "--")):
            for j, p in enumerate(io.PARAMETERS):
                cov = np.asarray(r["parameters"][p]["coverage"])
                ax.plot(lv, cov - lv, ls=ls, color=f"C{j}", marker="o", ms=3)
        ax.axhline(0, color="k", lw=0.6)
        ax.set(xlabel="credible level α (central interval)", ylabel="coverage − α",
               title="single stars against unresolved binaries")
        handles = [Line2D([], [], color=f"C{j}", marker="o", ms=3, label=LABELS[p])
                   for j, p in enumerate(io.PARAMETERS)]
        handles += [Line2D([], [], color="0.3", ls=ls, label=f"{label} ({n[key]:,})")
                    for key, ls, label in (("single", "-", "single stars"), ("unresolved_binary", "--",
                                                                              "unresolved binaries")) if key in n]
        ax.legend(handles=handles, fontsize=8.5, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2,
                  frameon=False)
    fig.suptitle("Calibration of the population posterior on held-out simulated stars", fontsize=13, y=0.99)
    _stamp(fig, smoke_test)
    _save(fig, path, plt)


def _count(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def p_young_reliability(p_young: dict, directory: Path, plt, smoke_test: bool = False) -> None:
    """Reliability diagram of P(young): fraction of truly young stars against the mean P(young) per bin, for the
    population posterior on the unweighted population sample and on the held-out stars weighted by w; below it,
    the stars in each bin."""
    sets = [(name, p_young[key]["reliability"])
            for name, key in (("population sample (unweighted)", "test_population"),
                              ("held-out stars, weighted by population weight w", "population_weighted"))
            if key in p_young and "reliability" in p_young[key]]
    if not sets:
        return
    fig, (ax, axn) = plt.subplots(2, 1, figsize=(6.4, 7.6), sharex=True, height_ratios=(3, 1.2),
                                  gridspec_kw={"hspace": 0.06})
    ax.plot([0, 1], [0, 1], color="k", lw=0.7, label="calibrated: fraction = P(young)")
    nbins = max(len(r["bins"]) for _, r in sets)
    for j, (name, r) in enumerate(sets):
        b = r["bins"]
        mp = np.array([x["mean_p"] for x in b])
        # ±1σ of the fraction found if P(young) is calibrated (binomial, effective number of stars in the bin)
        sd = np.sqrt(mp * (1 - mp) / np.array([x.get("n_effective", x["n_stars"]) for x in b]))
        ax.errorbar(mp, [x["fraction_positive"] for x in b], yerr=sd, marker="o", ms=5, color=f"C{j}", capsize=3,
                    label=f"{name}\n  young stars expected {_count(r['expected'])}, found {_count(r['observed'])}"
                          f" (z = {r['z']:.1f})")
        # stars per bin of P(young), side by side within each bin's range
        lo = np.array([x["p_lo"] for x in b])
        hi = np.array([x["p_hi"] for x in b])
        wbin = (hi - lo) / len(sets)
        axn.bar(lo + wbin * j, [x["n_stars"] for x in b], width=wbin * 0.95, align="edge", color=f"C{j}",
                alpha=0.8)
        for x, w in zip(b, wbin):
            axn.text(x["p_lo"] + w * (j + 0.5), x["n_stars"] * 1.15, f"{x['n_stars']:,}", ha="center",
                     va="bottom", fontsize=7, color=f"C{j}", rotation=90 if nbins > 4 else 0)
    ax.set(ylabel="fraction truly young (< 50 Myr)", xlim=(0, 1), ylim=(-0.02, 1.02),
           title="Is P(young) a probability?\n(bars: ±1σ of the fraction if P(young) is calibrated)")
    ax.legend(fontsize=8.5, loc="lower right", frameon=True, framealpha=0.9)
    ax.grid(alpha=0.3)
    axn.set_yscale("log")
    top = max(x["n_stars"] for _, r in sets for x in r["bins"])
    axn.set_ylim(0.8, top * 30)
    axn.set(xlabel="P(young) (upper panel: mean of the stars in each bin)", ylabel="stars per bin")
    axn.grid(alpha=0.3, axis="y")
    _stamp(fig, smoke_test)
    _save(fig, directory / "p_young_reliability.png", plt)
