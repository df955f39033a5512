"""Census completeness and purity of the inferred YSO sample, from the truth (the simulation).

- A **true YSO** is a population star younger than the young threshold (``infer.young_threshold_myr``,
  default 50 Myr); every true YSO counts, observed or not, so completeness includes the surveys' selection.
- The **inferred YSO sample** is the set of catalog stars with status ``ok`` and ``p_young ≥ maps.p_young_min``.
- Completeness = Σ w [true YSO ∧ selected] / Σ w [true YSO], binned in **true** quantities (sky pixel,
  distance, age, initial mass): what fraction of the real young stars the census recovers.
- Purity = Σ w [true YSO ∧ selected] / Σ w [selected], binned in **inferred** quantities (sky pixel, median
  distance, median age, median mass): what fraction of the candidates an observer would select in that bin
  are really young.

``w`` is the population ``weight`` (1/thinning). Uncertainties are binomial with the effective number
of stars n_eff = (Σw)² / Σw² of the denominator: σ = √(f (1 − f) / n_eff). A bin (or pixel) with fewer than ``min_stars`` simulated stars
in the denominator gets no value (NaN: blank in the maps), rather than a meaningless 0 or 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ysocensus.maps.data import candidates
from ysocensus.maps.healpix import pixels

QUANTITIES = {
    # name: (truth column for completeness, inferred column for purity, label, log axis)
    "distance_pc": ("distance_pc", "distance_pc_q50", "distance (pc)", False),
    "log10_age_yr": ("log10_age_yr", "log10_age_yr_q50", "log10 age (yr)", False),
    "initial_mass_msun": ("initial_mass_msun", "initial_mass_msun_q50", "initial mass (M$_\\odot$)", True),
}


@dataclass
class _Sums:
    """Weighted sums in bins: numerator, denominator and Σw² of the denominator (+ raw counts)."""

    n: int
    num: np.ndarray = None
    den: np.ndarray = None
    den_w2: np.ndarray = None
    den_raw: np.ndarray = None

    def __post_init__(self):
        self.num, self.den, self.den_w2, self.den_raw = (np.zeros(self.n) for _ in range(4))

    def add(self, idx, w, is_num, is_den):
        ok = (idx >= 0) & (idx < self.n)
        for arr, m, ww in ((self.num, is_num, w), (self.den, is_den, w), (self.den_w2, is_den, w * w),
                           (self.den_raw, is_den, np.ones_like(w))):
            sel = ok & m
            arr += np.bincount(idx[sel], weights=ww[sel], minlength=self.n)[: self.n]

    def fraction(self):
        with np.errstate(invalid="ignore", divide="ignore"):
            f = self.num / self.den
            n_eff = self.den**2 / self.den_w2
            err = np.sqrt(np.clip(f * (1 - f), 0, None) / n_eff)
        return f, err


@dataclass
class Completeness:
    """Accumulates completeness and purity chunk by chunk (bounded memory)."""

    young_log10_age: float
    p_young_min: float
    nside: int
    bins: dict
    min_stars: int = 5
    sky_c: _Sums = None
    sky_p: _Sums = None
    c1d: dict = field(default_factory=dict)
    p1d: dict = field(default_factory=dict)
    totals: dict = field(default_factory=lambda: {"true_yso": 0.0, "true_yso_observed": 0.0, "selected": 0.0,
                                                   "selected_true": 0.0, "true_yso_raw": 0, "selected_raw": 0})

    def __post_init__(self):
        npix = 12 * self.nside**2
        self.sky_c, self.sky_p = _Sums(npix), _Sums(npix)
        for q in QUANTITIES:
            n = len(self.bins[q]) - 1
            self.c1d[q], self.p1d[q] = _Sums(n), _Sums(n)

    def add(self, joined: pd.DataFrame) -> None:
        """Add one chunk: the truth left-joined with the posterior (``maps.data.read_truth_joined``)."""
        w = joined["weight"].to_numpy(np.float64)
        true_young = (joined["log10_age_yr"].to_numpy() < self.young_log10_age) & ~joined["is_remnant"].to_numpy()
        sel = joined["observed"].to_numpy() & candidates(joined, self.p_young_min)
        hit = true_young & sel
        pix = pixels(self.nside, joined["l"].to_numpy(), joined["b"].to_numpy())
        self.sky_c.add(pix, w, hit, true_young)
        self.sky_p.add(pix, w, hit, sel)
        for q, (tcol, icol, _, _) in QUANTITIES.items():
            edges = np.asarray(self.bins[q], float)
            ti = np.digitize(joined[tcol].to_numpy(float), edges) - 1
            ii = np.digitize(joined[icol].to_numpy(float), edges) - 1
            self.c1d[q].add(ti, w, hit, true_young)
            self.p1d[q].add(ii, w, hit, sel)
        t = self.totals
        t["true_yso"] += float(w[true_young].sum())
        t["true_yso_observed"] += float(w[true_young & joined["observed"].to_numpy()].sum())
        t["selected"] += float(w[sel].sum())
        t["selected_true"] += float(w[hit].sum())
        t["true_yso_raw"] += int(true_young.sum())
        t["selected_raw"] += int(sel.sum())

    def sky_maps(self) -> dict[str, np.ndarray]:
        c, ce = self.sky_c.fraction()
        p, pe = self.sky_p.fraction()
        # too few simulated stars in a pixel for a fraction: left blank (NaN), not 0 or 1
        few_c = self.sky_c.den_raw < self.min_stars
        few_p = self.sky_p.den_raw < self.min_stars
        c, ce = np.where(few_c, np.nan, c), np.where(few_c, np.nan, ce)
        p, pe = np.where(few_p, np.nan, p), np.where(few_p, np.nan, pe)
        return {"COMPLETENESS": c, "COMPLETENESS_ERR": ce, "PURITY": p, "PURITY_ERR": pe,
                "N_TRUE_YSO": self.sky_c.den, "N_SELECTED": self.sky_p.den}

    def table(self) -> pd.DataFrame:
        rows = []
        for q in QUANTITIES:
            edges = np.asarray(self.bins[q], float)
            c, ce = self.c1d[q].fraction()
            p, pe = self.p1d[q].fraction()
            c = np.where(self.c1d[q].den_raw < self.min_stars, np.nan, c)
            p = np.where(self.p1d[q].den_raw < self.min_stars, np.nan, p)
            for k in range(len(edges) - 1):
                rows.append({"quantity": q, "bin_lo": edges[k], "bin_hi": edges[k + 1],
                             "completeness": c[k], "completeness_err": ce[k],
                             "n_true_yso": self.c1d[q].den[k], "n_true_yso_raw": int(self.c1d[q].den_raw[k]),
                             "n_recovered": self.c1d[q].num[k],
                             "purity": p[k], "purity_err": pe[k],
                             "n_selected": self.p1d[q].den[k], "n_selected_raw": int(self.p1d[q].den_raw[k])})
        t = self.totals
        with np.errstate(invalid="ignore", divide="ignore"):
            rows.append({"quantity": "all", "bin_lo": np.nan, "bin_hi": np.nan,
                         "completeness": t["selected_true"] / t["true_yso"] if t["true_yso"] else np.nan,
                         "completeness_err": np.nan, "n_true_yso": t["true_yso"],
                         "n_true_yso_raw": t["true_yso_raw"], "n_recovered": t["selected_true"],
                         "purity": t["selected_true"] / t["selected"] if t["selected"] else np.nan,
                         "purity_err": np.nan, "n_selected": t["selected"], "n_selected_raw": t["selected_raw"]})
        return pd.DataFrame(rows)

    def summary(self) -> dict:
        t = dict(self.totals)
        t["completeness"] = t["selected_true"] / t["true_yso"] if t["true_yso"] else None
        t["purity"] = t["selected_true"] / t["selected"] if t["selected"] else None
        t["observed_fraction_of_true_yso"] = t["true_yso_observed"] / t["true_yso"] if t["true_yso"] else None
        t["p_young_min"] = self.p_young_min
        t["young_log10_age_yr"] = self.young_log10_age
        return t


def plot_1d(comp: Completeness, path, dpi: int) -> None:
    """Completeness (vs truth) and purity (vs inferred) against distance, age and mass."""
    from ysocensus.maps.figures import _plt, save

    plt = _plt()
    table = comp.table()
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    for ax, (q, (_, _, label, logx)) in zip(axes, QUANTITIES.items()):
        t = table[table["quantity"] == q]
        x = np.sqrt(t["bin_lo"] * t["bin_hi"]) if logx else 0.5 * (t["bin_lo"] + t["bin_hi"])
        xerr = np.abs(np.vstack([x - t["bin_lo"], t["bin_hi"] - x]))
        ax.errorbar(x, t["completeness"], yerr=t["completeness_err"], xerr=xerr, fmt="o-", color="C0",
                    label="completeness (true bins)", capsize=2, ms=4)
        ax.errorbar(x, t["purity"], yerr=t["purity_err"], fmt="s--", color="C1",
                    label="purity (inferred bins)", capsize=2, ms=4)
        if q == "log10_age_yr":
            ax.axvline(comp.young_log10_age, color="k", lw=0.8, ls=":")
            ax.text(comp.young_log10_age, 1.02, " YSO age limit", fontsize=8, va="bottom")
        if logx:
            ax.set_xscale("log")
        ax.set_ylim(-0.02, 1.08)
        ax.set_xlabel(label)
        ax.set_ylabel("fraction")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="lower left", fontsize=9)
    s = comp.summary()
    fig.suptitle(f"Census of YSOs (< {10 ** comp.young_log10_age / 1e6:.0f} Myr), candidates p_young ≥ "
                 f"{comp.p_young_min:g}: completeness {s['completeness'] or float('nan'):.2f}, "
                 f"purity {s['purity'] or float('nan'):.2f} (weighted)", fontsize=12)
    fig.tight_layout()
    save(fig, path, dpi)
