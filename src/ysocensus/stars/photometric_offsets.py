"""Empirical offsets of the synthetic 2MASS and WISE magnitudes, from the mean colours of real dwarfs.

The MIST/C3K synthetic photometry (``stars.bolometric``) is not on the real surveys' systems in the infrared. Along
the dwarf sequence, at fixed Gaia BP − RP, the models' J − H is 0.06–0.13 mag redder than the mean colours of real
dwarfs, their H − Ks 0.02–0.12 bluer, Ks − W1 0.02–0.06 bluer, and the G − Ks of K and M dwarfs 0.1–0.17 mag
redder (measured against the sequence below; ``results/models/photometric_offsets.json`` has the table). Left in
the simulator, the near-infrared colours of every real star disagree with the Gaia ones at a level the network
reads as extinction, disk emission or the surface gravity of a pre-main-sequence star.

As brutus does (Speagle et al. 2025, §2.4: per-band photometric offsets of the model grid), each 2MASS/WISE band
gets an offset δ_b(T_eff), added to the model's magnitude, fitted so that the models' dwarf colours equal the
empirical ones: the mean colour–T_eff sequence of dwarfs of Pecaut & Mamajek (2013, ApJS 208, 9, Table 5), in
E. Mamajek's version 2024.05.15 (``ysocensus/data/dwarf_colours.csv``, provenance in ``dwarf_colours.SOURCES.md``).
The Gaia bands are the reference and are not changed (their M-dwarf discrepancy is corrected in T_eff from the
Hyades by ``stars.empirical``). Ks follows from G − Ks (the table's M_G − M_Ks), H from H − Ks, J from J − H, W1 from
Ks − W1, W2 from W1 − W2 (missing in the table for K6–M4.5 dwarfs: interpolated in T_eff across the gap), and W3,
W4 take W2's offset (the table has no W1 − W3 for K and M dwarfs; the models' own W2 − W3 of a photosphere is kept).

Each table row is matched to the model at the same BP − RP: the T_eff at which the grid's BP − RP (solar [Fe/H],
no extinction, the row's dwarf log g from its mass and radius) equals the row's. The offsets, a running median
over ``smooth`` neighbouring rows, are interpolated linearly in T_eff, held beyond the coolest row and tapered
linearly to zero over ``taper_k`` above the hottest (A stars and hotter keep the models' colours). They are applied
at every log g, [Fe/H] and A_V of the grid: an assumption, since the table holds dwarfs only; the colours of
pre-main-sequence stars differ from dwarf colours in ways the models may not follow (Pecaut & Mamajek 2013), and
that difference is not corrected here.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from ysocensus import io

log = logging.getLogger(__name__)

#: the shipped dwarf colour sequence
DWARF_COLOURS_CSV = Path(__file__).resolve().parent.parent / "data" / "dwarf_colours.csv"
DEFAULTS = dict(enabled=True, bp_rp_range=(0.5, 4.2), smooth=9, taper_k=1000.0)
#: log g of the Sun (cgs), for a dwarf's log g from its mass and radius
LOGG_SUN = 4.438
#: each corrected band: (the table colour that sets it, the band it is measured from, sign). The offset of
#: ``band`` is the offset of ``reference`` + sign × (empirical − model colour), in this order; Gaia G is the root.
CHAIN = (
    ("ks_m", "G-Ks", "phot_g_mean_mag", -1.0),
    ("h_m", "H-Ks", "ks_m", +1.0),
    ("j_m", "J-H", "h_m", +1.0),
    ("w1mpro", "Ks-W1", "ks_m", -1.0),
    ("w2mpro", "W1-W2", "w1mpro", -1.0),
)
#: bands that take another band's offset (the table has no colour for them along the K/M sequence)
FOLLOW = {"w3mpro": "w2mpro", "w4mpro": "w2mpro"}
#: a table colour as the difference of two model bands
COLOUR_BANDS = {"G-Ks": ("phot_g_mean_mag", "ks_m"), "H-Ks": ("h_m", "ks_m"), "J-H": ("j_m", "h_m"),
                "Ks-W1": ("ks_m", "w1mpro"), "W1-W2": ("w1mpro", "w2mpro")}


def read_dwarf_colours(path: str | Path = DWARF_COLOURS_CSV) -> dict[str, np.ndarray]:
    """The dwarf sequence as float arrays (NaN where the table has no value), with G − Ks = M_G − M_Ks added."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(line for line in f if not line.startswith("#")))
    if not rows:
        raise ValueError(f"{path}: no rows")
    out = {"SpT": np.array([r["SpT"] for r in rows])}
    for k in rows[0]:
        if k != "SpT":
            out[k] = np.array([float(r[k]) if r[k].strip() else np.nan for r in rows])
    out["G-Ks"] = out["M_G"] - out["M_Ks"]
    return out


def dwarf_logg(mass_msun, radius_rsun) -> np.ndarray:
    return LOGG_SUN + np.log10(mass_msun) - 2.0 * np.log10(radius_rsun)


def model_colours(bc, teff, logg) -> dict[str, np.ndarray]:
    """Unreddened solar-[Fe/H] model magnitudes' differences at (T_eff, log g): BP − RP and the table colours."""
    b = bc.bc(teff, logg, np.zeros_like(teff), np.zeros_like(teff)).astype(np.float64)
    m = {band: -b[:, j] for j, band in enumerate(bc.bands)}       # M_bol cancels in a colour
    out = {name: m[a] - m[c] for name, (a, c) in COLOUR_BANDS.items()}
    out["Bp-Rp"] = m["phot_bp_mean_mag"] - m["phot_rp_mean_mag"]
    return out


def matched_teff(bc, bp_rp, logg, teff_grid=np.arange(2500.0, 9000.0, 5.0)) -> np.ndarray:
    """For each (BP − RP, log g), the T_eff at which the model's unreddened BP − RP equals it (NaN outside)."""
    out = np.full(len(bp_rp), np.nan)
    for i, (c, g) in enumerate(zip(bp_rp, logg)):
        col = model_colours(bc, teff_grid, np.full(teff_grid.size, g))["Bp-Rp"]
        order = np.argsort(col)
        if col.min() <= c <= col.max():
            out[i] = np.interp(c, col[order], teff_grid[order])
    return out


def _running_median(x: np.ndarray, k: int) -> np.ndarray:
    h = max(int(k), 1) // 2
    windows = [x[max(0, i - h): i + h + 1] for i in range(x.size)]
    return np.array([np.median(w[np.isfinite(w)]) if np.isfinite(w).any() else np.nan for w in windows])


def _fill_gaps(teff: np.ndarray, y: np.ndarray) -> np.ndarray:
    """NaN entries interpolated linearly in T_eff between the nearest finite ones (ends held)."""
    ok = np.isfinite(y)
    if ok.all() or not ok.any():
        return y
    order = np.argsort(teff[ok])
    return np.where(ok, y, np.interp(teff, teff[ok][order], y[ok][order]))


@dataclass
class PhotometricOffsets:
    """δ_b(T_eff) (mag, added to the model magnitude of band b) on T_eff nodes, for every band of ``io.MAGNITUDES``
    (zero for Gaia)."""

    teff: np.ndarray                 # K, increasing
    offsets: dict[str, np.ndarray]   # band -> δ at ``teff``
    taper_k: float
    meta: dict | None = None

    def at(self, teff) -> np.ndarray:
        """δ (N, n_bands) in ``io.MAGNITUDES`` order at ``teff`` (K): held below the coolest node, tapered linearly
        to zero over ``taper_k`` above the hottest."""
        t = np.asarray(teff, np.float64)
        hot = np.clip(1.0 - (t - self.teff[-1]) / self.taper_k, 0.0, 1.0) if self.taper_k > 0 else (t <= self.teff[-1])
        cols = [np.interp(t, self.teff, self.offsets[b]) * hot if b in self.offsets else np.zeros_like(t)
                for b in io.MAGNITUDES]
        return np.stack(cols, -1)

    def apply(self, bc):
        """A new ``BCGrid`` whose magnitudes carry the offsets (BC − δ at every T_eff node, all log g, [Fe/H], A_V)."""
        from ysocensus.stars.bolometric import BCGrid

        d = self.at(bc.axes["teff"]).T.astype(np.float32)              # (n_bands, n_teff)
        values = bc.values - d[:, None, None, :, None]
        return BCGrid(bc.axes, values, bc.bands, bc.rv_grid, bc.rv_k)

    def to_dict(self) -> dict:
        return {"teff_k": self.teff.tolist(), "taper_k": self.taper_k,
                "offsets_mag": {b: np.round(v, 5).tolist() for b, v in self.offsets.items()}, "meta": self.meta}


def fit_offsets(bc, table: Mapping[str, np.ndarray] | None = None, params: Mapping | None = None) -> PhotometricOffsets:
    """Offsets that put the models' dwarf colours on the table's, at the T_eff where the model has the row's BP − RP."""
    p = {**DEFAULTS, **(params or {})}
    tab = dict(table) if table is not None else read_dwarf_colours()
    lo, hi = p["bp_rp_range"]
    keep = (tab["Bp-Rp"] >= lo) & (tab["Bp-Rp"] <= hi)
    tab = {k: v[keep] for k, v in tab.items()}
    logg = dwarf_logg(tab["Msun"], tab["R_Rsun"])
    teff = matched_teff(bc, tab["Bp-Rp"], logg)
    ok = np.isfinite(teff)
    tab, logg, teff = {k: v[ok] for k, v in tab.items()}, logg[ok], teff[ok]
    order = np.argsort(teff)
    tab, logg, teff = {k: v[order] for k, v in tab.items()}, logg[order], teff[order]
    model = model_colours(bc, teff, logg)
    residual = {c: _fill_gaps(teff, _running_median(tab[c] - model[c], p["smooth"])) for c in COLOUR_BANDS}
    offsets = {"phot_g_mean_mag": np.zeros_like(teff)}
    for band, colour, ref, sign in CHAIN:
        offsets[band] = offsets[ref] + sign * residual[colour]
    for band, ref in FOLLOW.items():
        offsets[band] = offsets[ref].copy()
    offsets.pop("phot_g_mean_mag")
    meta = {"source": str(DWARF_COLOURS_CSV.name), "rows": [str(s) for s in tab["SpT"]],
            "bp_rp": np.round(tab["Bp-Rp"], 3).tolist(), "logg": np.round(logg, 3).tolist(),
            "residual_before_mag": {c: np.round(tab[c] - model[c], 4).tolist() for c in COLOUR_BANDS},
            "params": {k: list(v) if isinstance(v, tuple) else v for k, v in p.items()}}
    return PhotometricOffsets(teff, offsets, float(p["taper_k"]), meta)


def residuals_after(bc, offsets: PhotometricOffsets) -> dict[str, list]:
    """empirical − model colour of each table row used, with the offsets applied (the check of the fit)."""
    m = offsets.meta
    teff, logg = offsets.teff, np.asarray(m["logg"])
    model, bare = model_colours(offsets.apply(bc), teff, logg), model_colours(bc, teff, logg)
    before = m["residual_before_mag"]
    return {c: np.round(np.asarray(before[c]) + (bare[c] - model[c]), 4).tolist() for c in COLOUR_BANDS}


def figure(offsets: PhotometricOffsets, after: Mapping[str, list], path: str | Path, dpi: int = 120) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = offsets.meta
    x = np.asarray(m["bp_rp"])
    fig, (a0, a1) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    for c in COLOUR_BANDS:
        line, = a0.plot(x, m["residual_before_mag"][c], "o-", ms=3, label=f"{c} before")
        a0.plot(x, after[c], "x--", ms=4, color=line.get_color(), label=f"{c} after")
    a0.axhline(0, color="k", lw=0.8)
    a0.set_xlabel("BP − RP of the dwarf (mag)")
    a0.set_ylabel("empirical − model colour (mag)")
    a0.set_title("dwarf colours (Pecaut & Mamajek 2013 / Mamajek 2024) vs MIST/C3K")
    a0.legend(fontsize=7, ncol=2)
    t = np.linspace(2500, offsets.teff[-1] + offsets.taper_k + 500, 400)
    d = offsets.at(t)
    for j, b in enumerate(io.MAGNITUDES):
        if b in offsets.offsets:
            a1.plot(t, d[:, j], label=b)
    a1.axhline(0, color="k", lw=0.8)
    a1.set_xlabel("T_eff (K)")
    a1.set_ylabel("offset added to the model magnitude (mag)")
    a1.set_title("photometric offsets (Gaia bands: 0)")
    a1.legend(fontsize=7)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def rms(v) -> float:
    """Root mean square of the finite entries (mag)."""
    return float(np.sqrt(np.nanmean(np.square(np.asarray(v, np.float64)))))


def _null_nan(x):
    if isinstance(x, dict):
        return {k: _null_nan(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_null_nan(v) for v in x]
    return None if isinstance(x, float) and not np.isfinite(x) else x


def write_json(offsets: PhotometricOffsets, after: Mapping[str, list], path: str | Path) -> None:
    """The offsets, the residuals of the table rows before and after (NaN where the table has no colour: null)."""
    out = offsets.to_dict()
    out["residual_after_mag"] = dict(after)
    out["rms_before_mag"] = {c: rms(v) for c, v in offsets.meta["residual_before_mag"].items()}
    out["rms_after_mag"] = {c: rms(v) for c, v in after.items()}
    io.write_json(_null_nan(out), path)
