"""Figures of ``rule validate``: coverage curves, SBC rank histograms, P(young) reliability, widths as surveys are added."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ysocensus import io
from ysocensus.validation.calibration import LEVELS

LABELS = {"log10_age_yr": "log age", "initial_mass_msun": "log mass", "feh": "[Fe/H]",
          "distance_pc": "log distance", "av_mag": "A_V"}


def make_all(out: dict, res: dict, widths: dict, directory: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    floor = out["noise_floor"]["per_parameter_p90"]
    # coverage curves, overall and per survey combination
    companions = {k: v for k, v in out.get("by_companion", {}).items() if k in ("single", "unresolved_binary")}
    fig, axes = plt.subplots(1, 3 if companions else 2, figsize=(15 if companions else 10, 4.5))
    lv = np.asarray(LEVELS)
    for p in io.PARAMETERS:
        cov = np.asarray(out["parameters"][p]["coverage"])
        axes[0].plot(lv, cov - lv, marker="o", label=f"{LABELS[p]} ({out['parameters'][p]['max_coverage_error']:.3f})")
    axes[0].fill_between(lv, -floor, floor, color="0.85", label=f"noise floor p90 ({floor:.3f})")
    axes[0].axhline(0, color="k", lw=0.5)
    axes[0].set(xlabel="credible level", ylabel="coverage − level", title=f"overall, {out['n_stars']} stars")
    axes[0].legend(fontsize=7)
    for c, r in out["by_survey_combination"].items():
        e = [r["parameters"][p]["max_coverage_error"] for p in io.PARAMETERS]
        axes[1].plot(range(len(e)), e, marker="o", label=f"{c} (n={r['n_stars']}, floor {r['noise_floor']['per_parameter_p90']:.3f})")
    axes[1].set_xticks(range(len(io.PARAMETERS)), [LABELS[p] for p in io.PARAMETERS])
    axes[1].axhline(0.08, color="r", lw=0.5)
    axes[1].set(ylabel="max coverage error", title="by survey combination")
    axes[1].legend(fontsize=6)
    # the same stars split by a truth the model does not infer: unresolved binarity
    for (name, r), ls in zip(companions.items(), ("-", "--")):
        for j, p in enumerate(io.PARAMETERS):
            cov = np.asarray(r["parameters"][p]["coverage"])
            axes[2].plot(lv, cov - lv, ls=ls, color=f"C{j}", marker="o", ms=3, label=LABELS[p] if ls == "-" else None)
    if companions:
        n = {k: v["n_stars"] for k, v in companions.items()}
        axes[2].axhline(0, color="k", lw=0.5)
        axes[2].set(xlabel="credible level", ylabel="coverage − level",
                    title=f"single stars (solid, n={n.get('single', 0)})\nunresolved binaries (dashed, "
                          f"n={n.get('unresolved_binary', 0)})")
        axes[2].title.set_fontsize(10)
        axes[2].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(directory / "coverage.png", dpi=110)
    plt.close(fig)
    # SBC rank histograms
    fig, axes = plt.subplots(1, len(io.PARAMETERS), figsize=(14, 2.8))
    for ax, p in zip(axes, io.PARAMETERS):
        h = np.asarray(out["parameters"][p]["rank_histogram"])
        ax.bar(np.arange(len(h)), h, color="C0")
        ax.axhline(h.mean(), color="k", lw=0.8)
        ax.set(title=f"{LABELS[p]}  KS p={out['parameters'][p]['sbc_ks_pvalue']:.2g}", xticks=[])
    fig.tight_layout()
    fig.savefig(directory / "sbc_ranks.png", dpi=110)
    plt.close(fig)
    p_young_reliability(out.get("p_young", {}), directory, plt)
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
        fig.savefig(directory / "widths_by_surveys.png", dpi=110)
        plt.close(fig)


def p_young_reliability(p_young: dict, directory: Path, plt) -> None:
    """Reliability diagram of P(young): fraction of truly young stars against the mean P(young) per bin, for the
    population posterior on the unweighted population sample and on the held-out stars weighted by w."""
    sets = [(name, p_young[key]["reliability"])
            for name, key in (("population sample (unweighted)", "test_population"),
                              ("held-out stars, weighted by w", "population_weighted"))
            if key in p_young and "reliability" in p_young[key]]
    if not sets:
        return
    fig, ax = plt.subplots(figsize=(5.2, 4.8))
    ax.plot([0, 1], [0, 1], color="k", lw=0.6)
    for j, (name, r) in enumerate(sets):
        b = r["bins"]
        mp = np.array([x["mean_p"] for x in b])
        # ±1σ of the fraction found if P(young) is calibrated (binomial, effective number of stars in the bin)
        sd = np.sqrt(mp * (1 - mp) / np.array([x.get("n_effective", x["n_stars"]) for x in b]))
        ax.errorbar(mp, [x["fraction_positive"] for x in b], yerr=sd, marker="o", color=f"C{j}", capsize=2,
                    label=f"{name}: expected {r['expected']:.4g}, found {r['observed']:.4g} (z = {r['z']:.1f})")
        for x in b:
            ax.annotate(str(x["n_stars"]), (x["mean_p"], x["fraction_positive"]), fontsize=6, color=f"C{j}",
                        xytext=(3, -8), textcoords="offset points")
    ax.set(xlabel="mean P(young) in bin", ylabel="fraction truly young", xlim=(0, 1), ylim=(0, 1),
           title="Is P(young) a probability? (stars per bin; bars: ±1σ if it is)")
    ax.legend(fontsize=6, loc="upper left")
    fig.tight_layout()
    fig.savefig(directory / "p_young_reliability.png", dpi=110)
    plt.close(fig)
