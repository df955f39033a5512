"""Real stars through the user's code path: the workflow's ``validate_real`` stage (issue 21, item 5).

Members of known young associations (ρ Oph, Corona Australis, β Pic, UCL; ``ysocensus/data/real/*.csv``,
provenance and licences in ``data/real/SOURCES.md``) and, where shipped, members of ≥ 300 Myr open clusters
(``old_clusters.csv``, the negatives) are written as catalogs with Gaia-archive column names, one catalog
per source file with only the columns that source publishes. Each catalog goes through
:func:`ysocensus.inference.infer_catalog` with :func:`ysocensus.inference.model_adapter.load_sampler`,
the same calls ``ysocensus infer`` makes. Then the output posterior is scored against the literature
group ages.

Variants of the input columns (``VARIANTS``):

- ``as_published``: every column the literature gives, including the uncertainties it gives;
- ``no_sigma``: every uncertainty column removed, so only magnitudes and parallax are left. The driver
  then does with the missing σ whatever ``ysocensus infer`` does by default.
- ``no_gaia_sigma``: Gaia's uncertainties removed (``GAIA_SIGMA_COLUMNS``: the three mean-flux errors and
  ``parallax_error``), 2MASS's and AllWISE's kept. Against ``as_published`` it isolates what issue 21 asks of real
  Gaia σ (``gaia_sigma_vs_no_gaia_sigma``); ``no_sigma`` asks it of every survey's σ at once
  (``sigma_vs_no_sigma``).

Labels: a row is *young* when its group age ``age_myr`` is below ``young_threshold_myr``, and *old* when
it is at or above the threshold. Rows without a literature age are *unlabelled*: they are inferred and
listed per group, but they take no part in the young/old metrics. A group age is revised only where the literature
says the file's label belongs to another population (``LABEL_REVISIONS``), and a group is split where the literature
finds two populations of different ages under one label (``POPULATION_SPLITS``); the files' own labels are scored
beside. Only rows with ``status == "ok"`` enter
the metrics. Every other status is counted, but not scored.

Nothing here imports Lightning or torch. The model is loaded only by :func:`run_real_validation` when no
sampler is passed in.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import tempfile
import zlib
from importlib import resources
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from ysocensus import io
from ysocensus.io import parse_flags
from ysocensus.inference.error_models import ERROR_OF
from ysocensus.model.priors import STRUCTURE

log = logging.getLogger(__name__)

#: the literature-side columns every shipped file must have
REQUIRED_COLUMNS = ("source_id", "ra", "dec", "parallax", "phot_g_mean_mag", "phot_bp_mean_mag",
                    "phot_rp_mean_mag", "group", "age_myr")
#: what the figures add to a calibration group's name; its stars are drawn faint, behind the scored groups
CALIBRATION_TAG = " [model calibration]"
#: ages (Myr) of the isochrones drawn on the colour–magnitude diagram
CMD_AGES_MYR = (2, 10, 25, 100, 1000, 4000)
#: 2.5 / ln 10: σ(mag) = this / (flux / σ_flux)
_MAG_PER_FOE = 2.5 / math.log(10.0)

_GAIA = dict(zip(("G", "BP", "RP"), io.GAIA_BANDS))
_GAIA_FOE = dict(zip(("G", "BP", "RP"), io.GAIA_FLUX_OVER_ERROR))
#: shared schema → 2MASS catalog columns (value, error), by band letter of ``jhk_source``
_TMASS = {"J": ("j_m", "j_err", "j_m", "j_msigcom"),
          "H": ("h_m", "h_err", "h_m", "h_msigcom"),
          "K": ("ks_m", "ks_err", "ks_m", "ks_msigcom")}
#: shared schema → AllWISE catalog columns
_WISE = {f"w{i}": (f"w{i}", f"w{i}_err", f"w{i}mpro", f"w{i}sigmpro") for i in range(1, 5)}
#: the shipped files' AllWISE flags of Esplin & Luhman (2022) in ``phot_flags`` (``W1:bl;...;W4:nodet``): the one that
#: says the band was not detected
WISE_NOT_DETECTED = "nodet"
#: the flag a catalog row gets for a band that holds a value the files give as the survey's own measurement, where
#: the file has no survey flag: any character but U and X is read as given (``io.PH_QUAL``)
READ_AS_GIVEN = "A"
#: catalog uncertainty columns (dropped by the no_sigma variant)
SIGMA_COLUMNS = tuple(ERROR_OF.values())
#: Gaia's catalog uncertainty columns (dropped by the no_gaia_sigma variant)
GAIA_SIGMA_COLUMNS = tuple(ERROR_OF[c] for c in io.GAIA_BANDS + ("parallax",))
#: the comparisons of the as_published variant against a variant without σ: JSON key → that variant
SIGMA_COMPARISONS = {"sigma_vs_no_sigma": "no_sigma", "gaia_sigma_vs_no_gaia_sigma": "no_gaia_sigma"}
#: the input variants and the columns each drops from what the literature gives
VARIANT_DROPS = {"as_published": (), "no_sigma": SIGMA_COLUMNS, "no_gaia_sigma": GAIA_SIGMA_COLUMNS}
VARIANTS = tuple(VARIANT_DROPS)

DEFINITIONS = {
    "young": "a member whose literature group age age_myr < young_threshold_myr",
    "old": "a member whose literature group age age_myr >= young_threshold_myr (the old-cluster negatives)",
    "calibration": "a member of the cluster the stellar models were corrected to (population.stellar_models."
                   "empirical_correction.cluster) or, with validate_real.age_scale_clusters, of a cluster with a "
                   "lithium-depletion-boundary age that sets their pre-main-sequence age scale (data/calibration): "
                   "inferred and listed per group, not in the young/old metrics",
    "unlabelled": "a member without a literature age (e.g. Sco OB2 diffuse/unassigned): inferred and listed per "
                  "group, not in the young/old metrics",
    "scored rows": "only rows with status 'ok' enter the metrics; rows with any other status (prior_only, "
                   "invalid_input, low_ess, ...) are counted in 'status' and 'n_not_ok' (per group too) and excluded",
    "auc_p_young": "area under the ROC curve of p_young, young vs old members (Mann-Whitney U / (n_young n_old), "
                   "ties counted one half); null without both classes",
    "young_called_young": "fraction of young members with p_young >= 0.5",
    "old_called_young": "fraction of old members with p_young >= 0.5",
    "median_abs_dlog_age": "median over young members with a literature age of |log10_age_yr_q50 - log10(age_myr 1e6)| "
                           "(dex)",
    "age_inside_16_84": "fraction of young members whose log10(group age in yr) lies inside "
                        "[log10_age_yr_q16, log10_age_yr_q84]",
    "groups": "per literature group (all statuses in 'rows', metrics over status ok): median p_young, fraction "
              "called young, median |dlog age|, fraction of group ages inside the 16-84 % interval, median "
              "posterior distance distance_pc_q50 against median 1000/parallax (pc) and the median of their ratio; "
              "by_g_magnitude: rows, median log10_age_yr_q50, fraction called young and fraction inside per bin of "
              "phot_g_mean_mag (edges G_MAG_EDGES; rows without G under 'no G')",
    "variants": "as_published: every column the literature gives, incl. its uncertainties; no_sigma: every "
                "uncertainty column removed (magnitudes and parallax only), the driver's default handling applies; "
                "no_gaia_sigma: Gaia's uncertainties removed (mean-flux errors and parallax_error), 2MASS's and "
                "AllWISE's kept",
    "label_revisions": "group ages the validation adopts in place of a shipped file's (LABEL_REVISIONS, with the "
                       "literature reason), and groups it splits into their literature populations (POPULATION_SPLITS: "
                       "split_into, each member to the population whose simulated structure is densest on the sky at "
                       "its position; age null where the file's is kept); the file's own values are kept and scored "
                       "beside them",
    "under_file_labels": "per variant: the four TARGETS metrics with the files' own group ages (null when no label "
                         "is revised)",
    "age_scale": "per young group: the literature log10 age, the median flat-prior best fit of each member's "
                 "(M_G, BP-RP, G-RP) on the workflow's own isochrone grid (grid_fit: the stellar models' age, no "
                 "network, no prior; A_V <= av_max_mag, default unreddened: for a reddened group such as rho Oph a lower bound) "
                 "and the "
                 "network's median age under each prior scored; models_minus_literature "
                 "is the models' age-scale offset, network_<prior>_minus_models what the inference adds",
    "extinction_check": "per group whose file gives per-star extinctions from spectral types (LITERATURE_EXTINCTION; "
                        "not read by the model): the literature A_V (the file's A_band over A_band/A_V of the model's "
                        "own extinction law at EXTINCTION_REFERENCE_STAR) against the model's A_V posterior (median, "
                        "fraction inside its 16-84 % interval), and the median age offset of the members below and "
                        "above EXTINCTION_SPLIT_AV_MAG; needs the BC grid",
    "catalog": "one catalog per source file, Gaia archive column names; J/H/Ks only where jhk_source is 2MASS "
               "(VHS/FourStar left null); columns no row of a file provides are absent. The surveys' quality flags "
               "tmass_ph_qual / allwise_ph_qual as the files give them (rho Oph: the 2MASS and AllWISE ph_qual), "
               "else per band U where the file says not detected (Esplin & Luhman: nodet), X where the file holds "
               "no value of that survey (another system, or a value the compilers removed: marginalised, not a "
               "non-detection), A where it holds the survey's value (read as given)",
}
#: group ages adopted in place of a shipped file's, keyed by (file, group): (age, lo, hi) in Myr and why. The file's
#: own values stay in ``age_myr_file`` / ``age_myr_lo_file`` / ``age_myr_hi_file`` and are reported beside the
#: revision (``label_revisions`` in the JSON). A revision must come from the literature about the population a file
#: samples, never from the model's answer on it.
LABEL_REVISIONS = {
    ("rhoOph_Canovas2019_gaiadr2.csv", "rho Oph"): (
        3.2, 2.0, 5.0,
        "The file's <2 Myr (0.3-3) is BANYAN Sigma's (Gagne et al. 2018, Table 1) from Wilking, Gagne & Allen 2008 "
        "(Handbook of Star Forming Regions II, 'Star Formation in the rho Ophiuchi Molecular Cloud'), which gives "
        "0.3 Myr for the young stellar objects of the L1688 dense cores and a median 2-5 Myr for the surface "
        "population. Canovas et al. (2019) selected their members in Gaia DR2, which sees the optically visible "
        "surface population, not the embedded cores (also Wilking et al. 2005, AJ 130, 1733; Grasser et al. 2021, "
        "A&A 652, A2, an older ~10 Myr population in the same volume). 3.2 Myr is the geometric middle of 2-5."),
}
#: groups of a shipped file that the literature splits into populations of different ages, keyed by (file, group):
#: each population is (its group name, the structure of ``galaxy.young`` that stands for it, the
#: ``data/young_associations.csv`` row whose age it takes or None to keep the file's), then why. A member goes to the
#: population whose simulated structure is densest on the sky at its position (:func:`split_populations`): the
#: literature's geometry as the simulator carries it, never the model's answer on the member.
POPULATION_SPLITS = {
    ("CrA_EsplinLuhman2022_gaiaedr3.csv", "Corona Australis"): (
        (("Corona Australis on-cloud", "corona_australis", None),
         ("Upper Corona Australis", "ucra", "ucra")),
        "The file gives all 378 Esplin & Luhman (2022, AJ 163, 64) members BANYAN Sigma's 4-5 Myr (Gagne et al. "
        "2018, Table 1, after Gennaro et al. 2012), the age of the on-cloud population around the Coronet. Esplin & "
        "Luhman describe two populations: a younger one (a few Myr) partially embedded in the cloud and an older "
        "one that surrounds and extends beyond it (Upper CrA, ~15 Myr in their isochrone ages); Galli et al. (2020, "
        "A&A 634, A98) find the off-cloud population north of the clouds twice as numerous as the on-cloud one, and "
        "Rigliaco, Gratton & Nascimbeni (2025, A&A, arXiv:2508.19757) date it 6.7 +- 0.3 Myr (CrA-North; CrA-Main "
        "3 +- 1 Myr). The on-cloud members keep the file's label; the off-cloud members take the Upper CrA age the "
        "simulator carries (young_associations.csv row ucra, Rigliaco et al. 2025). A member belongs to the "
        "population whose structure is denser on the sky at its position: the corona_australis complex of "
        "galaxy.young.COMPLEXES (Gaussian, sigma = its 3 pc radius, its stellar mass) against the ucra association "
        "(BANYAN Sigma's centre and sigma, the Galli et al. count), each at its own distance."),
}
#: per-star extinctions a shipped file gives from spectral types (not used by the model or the labels): file ->
#: (``member_flag`` key, band of the extinction). ``extinction_check`` compares the model's A_V with them.
LITERATURE_EXTINCTION = {"CrA_EsplinLuhman2022_gaiaedr3.csv": ("Ak", "ks_m")}
#: literature A_V (mag) that splits a group's members in ``extinction_check``: below it the field's few tenths of a
#: magnitude, above it the members seen through their cloud
EXTINCTION_SPLIT_AV_MAG = 1.5
#: the star at which the BC grid's A_band / A_V converts a literature extinction to A_V (T_eff K, log g, [Fe/H]):
#: a young M star, the typical member (A_Ks/A_V changes by a few per cent from K to late M)
EXTINCTION_REFERENCE_STAR = (3500.0, 4.0, 0.0)
#: inner edges of the G-magnitude bins of each group's ``by_g_magnitude`` (mag): the archive's BP turns unreliable
#: near G ≈ 19 for M stars (``surveys.gaia.unreliable_bp``), and a group's faint members answer differently
G_MAG_EDGES = (16.0, 18.0, 19.0)
#: issue 21 "done when" on the real members
TARGETS = {"auc_p_young": (">=", 0.95), "young_called_young": (">=", 0.85),
           "median_abs_dlog_age": ("<=", 0.20), "age_inside_16_84": (">=", 0.50)}


# ---------------------------------------------------------------------------------------------
# Loading the shipped members
# ---------------------------------------------------------------------------------------------
def data_files() -> list:
    """The shipped member files (``ysocensus/data/real/*.csv``, via importlib.resources), sorted by name."""
    root = resources.files("ysocensus") / "data" / "real"
    return sorted((p for p in root.iterdir() if p.name.endswith(".csv")), key=lambda p: p.name)


def read_members(source, name: str | None = None) -> pd.DataFrame:
    """One member file in the shared schema (a path or an importlib Traversable); adds ``file``.

    Fails naming the file when a column of :data:`REQUIRED_COLUMNS` is missing.
    """
    name = name or getattr(source, "name", str(source))
    with (source.open("r") if hasattr(source, "open") and not isinstance(source, (str, os.PathLike))
          else open(source)) as fh:
        frame = pd.read_csv(fh, dtype={"source_id": "int64", "jhk_source": "string", "phot_flags": "string",
                                       "group": "string", "subgroup": "string"})
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{name}: missing column(s) {missing} of the real-member schema (data/real/SOURCES.md)")
    frame["file"] = name
    return literature_extinction(split_populations(revise_labels(frame, name), name), name)


def label_revisions(revisions: Mapping = LABEL_REVISIONS, splits: Mapping = POPULATION_SPLITS) -> list[dict]:
    """The revisions as JSON rows: file, group, adopted age and range (Myr), why; then each split group with its
    populations (name, structure, age and range, null where the file's is kept)."""
    out = [{"file": f, "group": g, "age_myr": a, "age_myr_lo": lo, "age_myr_hi": hi, "why": why}
           for (f, g), (a, lo, hi, why) in revisions.items()]
    for (f, g), (populations, why) in splits.items():
        parts = [{"group": name, "structure": structure,
                  **(association_ages(age_row) if age_row is not None else dict.fromkeys(_AGE_COLUMNS))}
                 for name, structure, age_row in populations]
        out.append({"file": f, "group": g, "split_into": parts, "why": why})
    return out


#: the member files' age columns and the ``data/young_associations.csv`` columns they take a row's age from
_AGE_COLUMNS = {"age_myr": "age_myr", "age_myr_lo": "age_min_myr", "age_myr_hi": "age_max_myr"}


def association_ages(name: str) -> dict[str, float]:
    """A ``data/young_associations.csv`` row's age and range (Myr) under the member files' age column names."""
    from ysocensus.galaxy.young import literature_associations

    row = next((r for r in literature_associations() if r["name"] == name), None)
    if row is None:
        raise ValueError(f"POPULATION_SPLITS: no row {name!r} in data/young_associations.csv")
    return {col: float(row[key]) for col, key in _AGE_COLUMNS.items()}


def file_label_scores(table: pd.DataFrame, young_threshold_myr: float, calibration_groups=()) -> dict | None:
    """The ``TARGETS`` metrics with the files' own group ages (``age_myr_file``), beside the revised ones; None
    where no label was revised."""
    if "age_myr_file" not in table.columns or np.array_equal(_num(table, "age_myr_file"), _num(table, "age_myr"),
                                                              equal_nan=True):
        return None
    m = score(table.assign(age_myr=table["age_myr_file"]), young_threshold_myr, calibration_groups=calibration_groups)
    return {k: m[k] for k in TARGETS}


def revise_labels(frame: pd.DataFrame, name: str, revisions: Mapping = LABEL_REVISIONS) -> pd.DataFrame:
    """``frame`` with its age columns as float (Myr) and the group ages of ``revisions`` for file ``name`` adopted,
    the file's own kept in ``*_file``."""
    frame = frame.copy()
    for col in ("age_myr", "age_myr_lo", "age_myr_hi"):
        if col in frame.columns:
            frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
            frame[f"{col}_file"] = frame[col]
    for (file, group), (age, lo, hi, _why) in revisions.items():
        if file != name:
            continue
        rows = frame["group"].astype(str) == group
        if not rows.any():
            raise ValueError(f"{name}: LABEL_REVISIONS names group {group!r}, which the file does not have")
        for col, value in (("age_myr", age), ("age_myr_lo", lo), ("age_myr_hi", hi)):
            frame.loc[rows, col] = value
    return frame


def population_densities(ra_deg, dec_deg, structures: Sequence[str]) -> np.ndarray:
    """Projected stellar-mass density (Msun pc^-2) of each simulated structure of ``galaxy.young`` (default
    ``population.young`` config) at each ICRS position (deg): a Gaussian of sigma = the structure's radius holding its
    stellar mass, the angular offset taken at the structure's distance. Shape (n structures, n positions)."""
    from ysocensus.config import section
    from ysocensus.galaxy.young import complexes_from_config, lbd_to_xyz, xyz_to_lbd
    from ysocensus.surveys.observe import galactic_to_icrs

    by_name = {c.name: c for c in complexes_from_config(section("population")["young"])}
    missing = [n for n in structures if n not in by_name]
    if missing:
        raise ValueError(f"POPULATION_SPLITS: no structure {missing} in galaxy.young's default config")
    star = np.stack(lbd_to_xyz(np.asarray(ra_deg, np.float64), np.asarray(dec_deg, np.float64), 1.0), axis=-1)
    out = []
    for name in structures:
        c = by_name[name]
        l, b, _ = xyz_to_lbd(c.x, c.y, c.z)
        centre = np.stack(lbd_to_xyz(*galactic_to_icrs(l, b), 1.0), axis=-1)
        r = np.arccos(np.clip(star @ centre, -1.0, 1.0)) * c.distance
        s = c.radius_pc
        out.append(c.stellar_mass_msun / (2 * np.pi * s * s) * np.exp(-0.5 * (r / s) ** 2))
    return np.asarray(out)


def split_populations(frame: pd.DataFrame, name: str, splits: Mapping = POPULATION_SPLITS) -> pd.DataFrame:
    """``frame`` with each group of ``splits`` for file ``name`` divided into its populations: ``group`` becomes the
    population's name (the file's kept in ``group_file``) and the age columns the population's literature age where
    it names a ``young_associations.csv`` row."""
    frame = frame.copy()
    frame["group_file"] = frame["group"]
    for (file, group), (populations, _why) in splits.items():
        if file != name:
            continue
        rows = (frame["group"].astype(str) == group).to_numpy()
        if not rows.any():
            raise ValueError(f"{name}: POPULATION_SPLITS names group {group!r}, which the file does not have")
        dens = population_densities(_num(frame, "ra")[rows], _num(frame, "dec")[rows], [p[1] for p in populations])
        pick = np.argmax(dens, axis=0)
        idx = np.flatnonzero(rows)
        for k, (new_group, _structure, age_row) in enumerate(populations):
            sel = idx[pick == k]
            frame.loc[sel, "group"] = new_group
            if age_row is not None:
                for col, value in association_ages(age_row).items():
                    frame.loc[sel, col] = value
    return frame


def literature_extinction(frame: pd.DataFrame, name: str, sources: Mapping = LITERATURE_EXTINCTION) -> pd.DataFrame:
    """``frame`` with ``ext_lit_mag`` (the file's per-star extinction, mag, NaN where it gives none) and
    ``ext_lit_band`` for the files of ``sources``; the columns are absent for other files."""
    if name not in sources:
        return frame
    key, band = sources[name]
    frame = frame.copy()
    if "member_flag" not in frame.columns:
        raise ValueError(f"{name}: LITERATURE_EXTINCTION reads {key!r} from column 'member_flag', which it lacks")
    values = [parse_flags(f).get(key) for f in frame["member_flag"]]
    frame["ext_lit_mag"] = pd.to_numeric(pd.Series(values, index=frame.index, dtype="object"), errors="coerce")
    frame["ext_lit_band"] = band
    return frame


def extinction_check(table: pd.DataFrame, band_per_av: Mapping[str, float],
                     split_av_mag: float = EXTINCTION_SPLIT_AV_MAG) -> dict:
    """Per group with literature extinctions (status ok): the literature A_V (``ext_lit_mag`` / A_band/A_V of the
    model's own extinction law) against the model's A_V posterior, and the age offset of the members below and
    above ``split_av_mag``: a reddened member whose A_V the model misses is read as a cooler, more luminous, younger
    star."""
    if "ext_lit_mag" not in table.columns:
        return {}
    t = table[np.isfinite(_num(table, "ext_lit_mag")) & (table["status"].astype(str) == "ok").to_numpy()]
    out = {}
    for group, g in t.groupby("group", sort=True):
        band = str(g["ext_lit_band"].iloc[0])
        av_lit = _num(g, "ext_lit_mag") / float(band_per_av[band])
        q16, q50, q84 = (_num(g, f"av_mag_{q}") for q in ("q16", "q50", "q84"))
        dlog = _num(g, "log10_age_yr_q50") - np.log10(_num(g, "age_myr") * 1e6)
        row = {"rows": int(len(g)), "band": band, "band_per_av": float(band_per_av[band]),
               "median_av_literature": _median(av_lit), "median_av_q50": _median(q50),
               "av_literature_inside_16_84": _frac((q16 <= av_lit) & (av_lit <= q84))}
        for label, sel in ((f"av_literature < {split_av_mag:g}", av_lit < split_av_mag),
                           (f"av_literature >= {split_av_mag:g}", av_lit >= split_av_mag)):
            row[label] = {"rows": int(sel.sum()), "median_av_literature": _median(av_lit[sel]),
                          "median_av_q50": _median(q50[sel]), "median_dlog_age": _median(dlog[sel]),
                          "median_abs_dlog_age": _median(np.abs(dlog[sel]))}
        out[str(group)] = row
    return out


def age_scale_file():
    """The shipped clusters with lithium-depletion-boundary ages (``stars.empirical.AGE_SCALE_FILE``)."""
    from ysocensus.stars.empirical import AGE_SCALE_FILE, data_file

    return data_file(AGE_SCALE_FILE)


def age_scale_groups() -> list[str]:
    """The group names of :func:`age_scale_file`, in file order."""
    with age_scale_file().open("r") as fh:
        return list(dict.fromkeys(pd.read_csv(fh, usecols=["group"])["group"].astype(str)))


def load_members(files: Iterable | None = None) -> pd.DataFrame:
    """Every shipped member file (or ``files``), concatenated, with a ``file`` column."""
    files = data_files() if files is None else list(files)
    if not files:
        raise FileNotFoundError("no real-member files (ysocensus/data/real/*.csv)")
    return pd.concat([read_members(f) for f in files], ignore_index=True)


# ---------------------------------------------------------------------------------------------
# The catalog a user would have
# ---------------------------------------------------------------------------------------------
def tmass_bands(jhk_source) -> dict[str, bool]:
    """Which of J/H/K are 2MASS according to ``jhk_source``: ``"2MASS"`` (all three), or per band
    ``"J:VHS;H:2MASS;K:2MASS"``; anything else (empty, VHS, FS18, ...) is not 2MASS."""
    if jhk_source is None or jhk_source is pd.NA or (isinstance(jhk_source, float) and math.isnan(jhk_source)):
        return dict.fromkeys("JHK", False)
    s = str(jhk_source).strip()
    if s.upper() == "2MASS":
        return dict.fromkeys("JHK", True)
    per = {k.strip().upper()[:1]: v.strip().upper() for k, v in
           (p.split(":", 1) for p in s.split(";") if ":" in p)}
    return {b: per.get(b, "") == "2MASS" for b in "JHK"}


def _num(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[name], errors="coerce").to_numpy(np.float64)


def gaia_flux_over_error(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Gaia ``phot_*_mean_flux_over_error`` per band: the archive column where given, else from a σ in mag
    (``phot_*_mean_mag_error`` or ``G_err=``/``BP_err=``/``RP_err=`` in ``phot_flags``) as 2.5/ln 10 / σ."""
    flags = [parse_flags(t) for t in (frame["phot_flags"] if "phot_flags" in frame.columns
                                      else [None] * len(frame))]
    out = {}
    for band, foe_name in _GAIA_FOE.items():
        foe = _num(frame, foe_name)
        sigma = _num(frame, _GAIA[band].replace("_mag", "_mag_error"))
        from_flags = np.array([float(f.get(f"{band}_err", "nan") or "nan") for f in flags], np.float64)
        sigma = np.where(np.isfinite(sigma), sigma, from_flags)
        with np.errstate(divide="ignore", invalid="ignore"):
            alt = np.where(np.isfinite(sigma) & (sigma > 0), _MAG_PER_FOE / sigma, np.nan)
        out[foe_name] = np.where(np.isfinite(foe), foe, alt)
    return out


def _band_flags(text, bands: Sequence[str]) -> dict[str, str]:
    """``"W1:bl;W2:;W3:nodet;W4:nodet"`` → ``{"W1": "bl", "W2": "", ...}`` for the given band names."""
    if text is None or text is pd.NA or (isinstance(text, float) and math.isnan(text)):
        return {}
    parts = dict(p.split(":", 1) for p in str(text).split(";") if ":" in p and "=" not in p)
    return {b: parts[b].strip() for b in bands if b in parts}


def survey_quality_flags(members: pd.DataFrame, kept: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per row, the ``io.PH_QUAL`` flags the catalog gets (``DEFINITIONS["catalog"]``; null where the file says
    nothing of the survey for that row). ``kept``: per catalog value column, the rows whose value is the survey's."""
    n = len(members)
    flags = members["phot_flags"] if "phot_flags" in members.columns else pd.Series([None] * n, index=members.index)
    given = [parse_flags(t) for t in flags]
    out = {}
    for survey, file_key, letters, keys in (("tmass", "2mass_ph_qual", "JHK", [v[2] for v in _TMASS.values()]),
                                            ("wise", "allwise_ph_qual", ["W1", "W2", "W3", "W4"],
                                             [v[2] for v in _WISE.values()])):
        width = len(keys)
        real = np.array([g.get(file_key, "") for g in given], object)
        per = [_band_flags(t, letters) for t in flags] if survey == "wise" else [{}] * n
        other = np.array([bool(p) for p in per], bool).reshape(n)
        if survey == "tmass" and "jhk_source" in members.columns:
            other |= members["jhk_source"].notna().to_numpy() & ~np.all([kept[k] for k in keys], axis=0)
        col = np.full(n, None, object)
        for i in range(n):
            if len(real[i]) == width:
                col[i] = real[i].upper()
            elif other[i]:
                col[i] = "".join(io.PH_QUAL_UPPER_LIMIT if WISE_NOT_DETECTED in per[i].get(b, "") else
                                 READ_AS_GIVEN if kept[k][i] else io.PH_QUAL_NO_BRIGHTNESS
                                 for b, k in zip(letters, keys))
        if any(v is not None for v in col):
            out[io.PH_QUAL[survey]] = col
    return out


def catalog_frame(members: pd.DataFrame, variant: str = "as_published") -> pd.DataFrame:
    """The catalog a user would pass to ``ysocensus infer`` for these members (Gaia archive names).

    Gaia G/BP/RP, parallax, position and source_id as given; ``phot_*_mean_flux_over_error`` from the
    file (:func:`gaia_flux_over_error`) with the file's ``gaia_release`` (a DR2 σ is then not read, as
    ``ysocensus infer`` does with such a catalog); 2MASS ``j_m/h_m/ks_m`` + ``*_msigcom`` only for bands whose
    ``jhk_source`` says 2MASS; AllWISE ``w*mpro`` + ``w*sigmpro``. A column that no row provides is absent
    (a missing value is NaN, written as null). ``variant="no_sigma"`` drops every uncertainty column,
    ``"no_gaia_sigma"`` Gaia's (``GAIA_SIGMA_COLUMNS``).
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant {variant!r} is not one of {VARIANTS}")
    n = len(members)
    cols: dict[str, np.ndarray] = {"source_id": members["source_id"].to_numpy(np.int64)}
    for c in ("ra", "dec") + io.GAIA_BANDS:
        cols[c] = _num(members, c)
    cols.update(gaia_flux_over_error(members))
    cols["parallax"] = _num(members, "parallax")
    cols["parallax_error"] = _num(members, "parallax_error")
    is_2mass = pd.DataFrame([tmass_bands(s) for s in (members["jhk_source"] if "jhk_source" in members.columns
                                                       else [None] * n)], columns=list("JHK"))
    for band, (val, err, out_val, out_err) in _TMASS.items():
        keep = is_2mass[band].to_numpy(bool) if n else np.zeros(0, bool)
        cols[out_val] = np.where(keep, _num(members, val), np.nan)
        cols[out_err] = np.where(keep, _num(members, err), np.nan)
    for val, err, out_val, out_err in _WISE.values():
        cols[out_val] = _num(members, val)
        cols[out_err] = _num(members, err)
    kept = {v[2]: np.isfinite(cols[v[2]]) for v in list(_TMASS.values()) + list(_WISE.values())}
    cols.update(survey_quality_flags(members, kept))
    if io.RUWE in members.columns:  # an archive query's quality column (a σ with RUWE > 1.4 is not read)
        cols[io.RUWE] = _num(members, io.RUWE)
    if io.GAIA_RELEASE in members.columns:  # what a user's catalog says of its Gaia photometry (``--gaia-release``)
        cols[io.GAIA_RELEASE] = members[io.GAIA_RELEASE].astype("string").to_numpy(object)
    frame = pd.DataFrame(cols, index=members.index)
    present = [c for c in frame.columns if c in ("source_id", "ra", "dec") or frame[c].notna().any()]
    frame = frame[present]
    frame = frame.drop(columns=[c for c in VARIANT_DROPS[variant] if c in frame.columns])
    return frame.reset_index(drop=True)


def write_catalog(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a catalog as Parquet (``.parquet``, NaN written as null) or CSV (``.csv``, empty fields)."""
    path = Path(path)
    if path.suffix == ".csv":
        frame.to_csv(path, index=False, na_rep="")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    return path


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------
def auc(positive: Sequence[float], negative: Sequence[float]) -> float | None:
    """P(score of a positive > score of a negative), ties counted one half (Mann-Whitney); None if a class
    is empty."""
    pos = np.asarray(positive, np.float64)
    neg = np.asarray(negative, np.float64)
    pos, neg = pos[np.isfinite(pos)], neg[np.isfinite(neg)]
    if pos.size == 0 or neg.size == 0:
        return None
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([pos, neg]))
    u = ranks[:pos.size].sum() - pos.size * (pos.size + 1) / 2.0
    return float(u / (pos.size * neg.size))


def interval_coverage(truth, lo, hi) -> float | None:
    """Fraction of finite rows with lo <= truth <= hi; None when there is none."""
    truth, lo, hi = (np.asarray(x, np.float64) for x in (truth, lo, hi))
    ok = np.isfinite(truth) & np.isfinite(lo) & np.isfinite(hi)
    if not ok.any():
        return None
    return float(np.mean((lo[ok] <= truth[ok]) & (truth[ok] <= hi[ok])))


def _f(x) -> float | None:
    """JSON-safe float (None for NaN/inf/None)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _median(x) -> float | None:
    x = np.asarray(x, np.float64)
    x = x[np.isfinite(x)]
    return _f(np.median(x)) if x.size else None


def _frac(mask) -> float | None:
    mask = np.asarray(mask, bool)
    return _f(mask.mean()) if mask.size else None


def labels(age_myr, young_threshold_myr: float, group=None, calibration_groups: Sequence[str] = ()) -> np.ndarray:
    """'young' / 'old' / 'unlabelled' from the literature group age; 'calibration' for members of a group the
    stellar models were corrected to (``stars.empirical``), which would not be an independent check."""
    age = np.asarray(age_myr, np.float64)
    out = np.where(~np.isfinite(age), "unlabelled", np.where(age < young_threshold_myr, "young", "old"))
    if group is not None and len(calibration_groups):
        out = np.where(np.isin(np.asarray(group, dtype=str), list(calibration_groups)), "calibration", out)
    return out


def score(table: pd.DataFrame, young_threshold_myr: float = 50.0, score_column: str = "p_young",
          age_column: str = "log10_age_yr_q50", calibration_groups: Sequence[str] = ()) -> dict:
    """The metrics of one variant from a joined table (members + posterior columns).

    ``table`` needs ``group``, ``age_myr``, ``parallax``, ``status`` and ``score_column``; the age metrics
    use ``log10_age_yr_q16/q50/q84`` where present (``age_column`` for the point estimate), the distance
    metrics ``distance_pc_q50``; ``ess`` and ``conditioning`` are summarised when present.
    """
    t = table.reset_index(drop=True)
    h = _headline_arrays(t, young_threshold_myr, calibration_groups, score_column, age_column)
    status, ok, lab, p, q50 = h["status"], h["ok"], h["label"], h["p"], h["q50"]
    dlog, inside, has_interval, young, old = h["dlog"], h["inside"], h["has_interval"], h["young"], h["old"]
    plx = _num(t, "parallax")
    with np.errstate(divide="ignore", invalid="ignore"):
        d_plx = np.where(plx > 0, 1000.0 / plx, np.nan)
    d_post = _num(t, "distance_pc_q50")
    out = {
        "n_rows": int(len(t)),
        "status": {k: int(v) for k, v in sorted(pd.Series(status).value_counts().items())},
        "n_not_ok": int((~ok).sum()),
        "n_young": int(young.sum()), "n_old": int(old.sum()),
        "n_unlabelled": int((ok & (lab == "unlabelled")).sum()),
        "n_calibration": int((ok & (lab == "calibration")).sum()),
        **_headline(h, np.flatnonzero(young), np.flatnonzero(old)),
        "median_p_young_young": _median(p[young]),
        "median_p_young_old": _median(p[old]),
    }
    ess = _num(t, "ess") if "ess" in t.columns else None
    if ess is not None:
        out["median_ess_young"] = _median(ess[young])
        out["median_ess_old"] = _median(ess[old])
    if "conditioning" in t.columns:
        out["conditioning"] = {str(k): int(v) for k, v in t["conditioning"].astype(str).value_counts().items()}
    groups = {}
    for name, idx in t.groupby("group", sort=False, dropna=False).indices.items():
        g_ok = ok[idx]
        sel = idx[g_ok]
        age = _num(t.iloc[idx], "age_myr")
        g = {
            "file": ",".join(sorted(set(t["file"].iloc[idx].astype(str)))) if "file" in t.columns else None,
            "age_myr": _median(age),
            "label": str(lab[idx[0]]),
            "rows": int(idx.size), "ok": int(g_ok.sum()),
            "status": {k: int(v) for k, v in sorted(pd.Series(status[idx]).value_counts().items())},
            "median_p_young": _median(p[sel]),
            "called_young": _frac(p[sel] >= 0.5),
            "median_abs_dlog_age": _median(dlog[sel]),
            "age_inside_16_84": _frac(inside[sel][has_interval[sel]]) if has_interval[sel].any() else None,
            "median_log10_age_yr_q50": _median(q50[sel]),
            "median_distance_pc_q50": _median(d_post[sel]),
            "median_parallax_distance_pc": _median(d_plx[sel]),
            "median_distance_ratio": _median(d_post[sel] / d_plx[sel]),
        }
        if ess is not None:
            g["median_ess"] = _median(ess[sel])
        if "phot_g_mean_mag" in t.columns:
            g["by_g_magnitude"] = _by_g_magnitude(_num(t, "phot_g_mean_mag")[sel], q50[sel], p[sel],
                                                  inside[sel], has_interval[sel])
        groups["(none)" if name is None or name is pd.NA or (isinstance(name, float) and math.isnan(name))
               else str(name)] = g
    out["groups"] = groups
    return out


def _by_g_magnitude(g_mag, q50, p, inside, has_interval) -> dict:
    """A group's scored members per G bin (``G_MAG_EDGES``): rows, median age, called young, inside 16–84 %."""
    edges = (-np.inf,) + G_MAG_EDGES + (np.inf,)
    names = [f"G < {G_MAG_EDGES[0]:g}"] + [f"{a:g} <= G < {b:g}" for a, b in zip(G_MAG_EDGES, G_MAG_EDGES[1:])] \
        + [f"G >= {G_MAG_EDGES[-1]:g}"]
    out = {}
    bins = [(name, (g_mag >= lo) & (g_mag < hi)) for name, lo, hi in zip(names, edges[:-1], edges[1:])]
    for name, b in bins + [("no G", ~np.isfinite(g_mag))]:
        if b.any():
            out[name] = {"rows": int(b.sum()), "median_log10_age_yr_q50": _median(q50[b]),
                         "called_young": _frac(p[b] >= 0.5),
                         "age_inside_16_84": _frac(inside[b & has_interval]) if (b & has_interval).any() else None}
    return out


def targets_met(metrics: Mapping) -> dict:
    """Issue 21's targets on the real members: value, target and whether it is met."""
    out = {}
    for key, (op, target) in TARGETS.items():
        v = metrics.get(key)
        met = None if v is None else (v >= target if op == ">=" else v <= target)
        out[key] = {"value": v, "target": f"{op} {target}", "met": met}
    return out


#: the headline metrics whose larger / smaller value is better
BETTER_HIGH = ("auc_p_young", "young_called_young", "age_inside_16_84")
BETTER_LOW = ("median_abs_dlog_age", "old_called_young")


def compare_variants(with_sigma: Mapping, without: Mapping, intervals: Mapping | None = None,
                     without_name: str = "no_sigma") -> dict:
    """Is each headline metric with the published σ at least as good as without (issue 21)?

    ``intervals``: per metric the 95 % interval of the paired difference (with − without) over the members
    (:func:`paired_bootstrap`); with it, ``worse_beyond_noise`` says whether the interval lies wholly on the worse
    side, so that a strict comparison that one resampling of the same stars could reverse is told apart from a
    real loss. ``without_name``: the key of the variant without σ (``SIGMA_COMPARISONS``).
    """
    out = {}
    for key in BETTER_HIGH + BETTER_LOW:
        a, b = with_sigma.get(key), without.get(key)
        ok = None if a is None or b is None else (a >= b if key in BETTER_HIGH else a <= b)
        out[key] = {"as_published": a, without_name: b, "at_least_as_good": ok}
        ci = (intervals or {}).get(key)
        if ci is not None:
            out[key]["difference_95"] = list(ci)
            out[key]["worse_beyond_noise"] = bool(ci[1] < 0 if key in BETTER_HIGH else ci[0] > 0)
    return out


def _headline_arrays(table: pd.DataFrame, young_threshold_myr: float, calibration_groups: Sequence[str],
                     score_column: str = "p_young", age_column: str = "log10_age_yr_q50") -> dict:
    """Per-member arrays (the table's row order) behind :func:`score`'s metrics: status, label, P(young), median
    age, |Δ log age|, whether the literature age is inside the 16–84 % interval and whether there is one."""
    status = table["status"].astype(str).to_numpy()
    ok = status == "ok"
    lab = labels(table["age_myr"], young_threshold_myr, table["group"].astype(str), calibration_groups)
    log_age_true = np.log10(_num(table, "age_myr") * 1e6)
    q50 = _num(table, age_column)
    q16, q84 = _num(table, "log10_age_yr_q16"), _num(table, "log10_age_yr_q84")
    return {"index": table.index.to_numpy(), "status": status, "ok": ok, "label": lab,
            "young": ok & (lab == "young"), "old": ok & (lab == "old"), "p": _num(table, score_column), "q50": q50,
            "dlog": np.abs(q50 - log_age_true), "inside": (q16 <= log_age_true) & (log_age_true <= q84),
            "has_interval": np.isfinite(q16) & np.isfinite(q84) & np.isfinite(log_age_true)}


def _headline(h: Mapping, young: np.ndarray, old: np.ndarray) -> dict:
    """The five headline metrics of members ``young`` and ``old`` (row indices, repeats allowed)."""
    iv = young[h["has_interval"][young]]
    return {"auc_p_young": auc(h["p"][young], h["p"][old]),
            "young_called_young": _frac(h["p"][young] >= 0.5), "old_called_young": _frac(h["p"][old] >= 0.5),
            "median_abs_dlog_age": _median(h["dlog"][young]),
            "age_inside_16_84": _frac(h["inside"][iv]) if iv.size else None}


def paired_bootstrap(with_sigma: pd.DataFrame, without: pd.DataFrame, young_threshold_myr: float = 50.0,
                     calibration_groups: Sequence[str] = (), n_boot: int = 400, seed: int = 0) -> dict:
    """95 % intervals of each headline metric's difference (with − without) when the scored members are resampled
    with replacement, young and old apart, the same draw for both tables (the same stars): how far the comparison
    moves with the sample of stars alone. Both tables hold the same members (index); a star scored in one and not
    the other (status) counts where it is scored."""
    a = _headline_arrays(with_sigma.sort_index(), young_threshold_myr, calibration_groups)
    b = _headline_arrays(without.sort_index(), young_threshold_myr, calibration_groups)
    if not np.array_equal(a["index"], b["index"]):
        raise ValueError("paired_bootstrap: the two variants do not hold the same members")
    young = np.flatnonzero(a["young"] | b["young"])
    old = np.flatnonzero(a["old"] | b["old"])
    if young.size == 0 or old.size == 0:
        return {}
    rng = np.random.default_rng(seed)
    diffs: dict[str, list] = {k: [] for k in BETTER_HIGH + BETTER_LOW}
    for _ in range(int(n_boot)):
        y, o = rng.choice(young, young.size), rng.choice(old, old.size)
        ma = _headline(a, y[a["young"][y]], o[a["old"][o]])
        mb = _headline(b, y[b["young"][y]], o[b["old"][o]])
        for k in diffs:
            if ma[k] is not None and mb[k] is not None:
                diffs[k].append(ma[k] - mb[k])
    return {k: (_f(np.percentile(v, 2.5)), _f(np.percentile(v, 97.5))) for k, v in diffs.items() if v}


# ---------------------------------------------------------------------------------------------
# Running the members through the user's code path
# ---------------------------------------------------------------------------------------------
def infer_options(n_samples: int, seed: int, young_threshold_myr: float, stream: int = 0, **over):
    """``InferOptions`` as ``ysocensus infer`` builds them (only the fields this version knows)."""
    from ysocensus.inference import InferOptions

    names = {f.name for f in dataclasses.fields(InferOptions)}
    kw = dict(n_samples=int(n_samples), seed=int(seed), young_threshold_myr=float(young_threshold_myr),
              stream=int(stream), progress=False, on_invalid="flag")
    kw.update(over)
    return InferOptions(**{k: v for k, v in kw.items() if k in names})


def file_stream(name: str) -> int:
    """The random stream of a member file's catalog, from its name (CRC-32): a file's posteriors do not depend on
    which other files ran beside it (the clusters of ``age_scale_clusters`` sort among the others)."""
    return zlib.crc32(Path(str(name)).name.encode("utf-8"))


def run_members(members: pd.DataFrame, sampler, variant: str, n_samples: int, seed: int,
                young_threshold_myr: float, workdir: str | Path, catalog_format: str = "parquet",
                **options) -> tuple[pd.DataFrame, dict]:
    """Infer every member, one catalog per source file, and join the posteriors to the members.

    Returns (members with the posterior columns, {file: {"columns": [...], "report": InferReport dict}}).
    """
    import pyarrow.parquet as pq

    from ysocensus.inference import infer_catalog

    workdir = Path(workdir)
    parts, info = [], {}
    for name, sub in members.groupby("file", sort=True):
        cat = catalog_frame(sub, variant)
        stem = f"{variant}_{Path(name).stem}"
        cat_path = write_catalog(cat, workdir / f"{stem}.{catalog_format}")
        out_path = workdir / f"{stem}_posterior.parquet"
        opts = infer_options(n_samples, seed, young_threshold_myr, stream=file_stream(name), **options)
        report = infer_catalog(cat_path, out_path, sampler, opts)
        post = pq.read_table(out_path).to_pandas()
        if len(post) != len(sub) or not np.array_equal(post["source_id"].to_numpy(np.int64),
                                                       sub["source_id"].to_numpy(np.int64)):
            raise RuntimeError(f"{out_path}: posterior rows do not match the {len(sub)} catalog rows of {name}")
        post = post.drop(columns=["source_id"]).set_index(sub.index)
        post.columns = [c if c not in sub.columns else f"post_{c}" for c in post.columns]
        parts.append(pd.concat([sub, post], axis=1))
        rep = report.to_dict() if hasattr(report, "to_dict") else dict(vars(report))
        info[name] = {"rows": int(len(sub)), "columns": list(cat.columns), "report": rep}
        log.info("%s %s: %d rows, %s", variant, name, len(sub), rep.get("status"))
    return pd.concat(parts).sort_index(), info


def score_sagitta(members: pd.DataFrame, young_threshold_myr: float, calibration_groups: Sequence[str] = ()) -> dict | str:
    """Sagitta (``baselines.sagitta``) on the as_published columns of the same stars, or why not."""
    from ysocensus.baselines import sagitta

    why = sagitta.available()
    if why is not None:
        return "not installed"
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    cat = catalog_frame(members, "as_published")
    gal = SkyCoord(ra=cat["ra"].to_numpy() * u.deg, dec=cat["dec"].to_numpy() * u.deg, frame="icrs").galactic
    cat = cat.assign(l=gal.l.deg, b=gal.b.deg)
    inputs = {}
    for s, ours in sagitta.COLUMNS.items():
        v = _num(cat, ours)
        inputs[s] = sagitta.gaia_mag_error(v) if ours in io.GAIA_FLUX_OVER_ERROR else v
    pred = sagitta.SagittaModel().predict(inputs)
    table = members.reset_index(drop=True).assign(status="ok", sagitta_pms=pred["pms"], sagitta_age=pred["age"])
    out = score(table, young_threshold_myr, score_column="sagitta_pms", age_column="sagitta_age",
                calibration_groups=calibration_groups)
    out["note"] = ("Sagitta's PMS probability in place of p_young, its age regression (log10 yr, range 6-8) in "
                   "place of the median; it gives no interval, so age_inside_16_84 is null")
    out["age_inside_16_84"] = None
    for g in out["groups"].values():
        g["age_inside_16_84"] = None
    return out


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------
def isochrone_cmd(isochrones, bc, ages_myr: Sequence[float] = CMD_AGES_MYR, feh: float = 0.0,
                  av: float = 0.0) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """{age Myr: (BP−RP, M_G)} of the model's isochrones (``IsochroneGrid`` + ``BCGrid``), ordered by mass."""
    logm = np.asarray(isochrones.axes["log10_mass"], np.float64)
    out = {}
    for age in ages_myr:
        q = isochrones.interpolate(np.full(logm.size, math.log10(age * 1e6)), logm, np.full(logm.size, feh))
        ok = np.isfinite(q["log10_teff"]) & np.isfinite(q["logg"]) & np.isfinite(q["log10_lum_lsun"])
        if not ok.any():
            continue
        mags = bc.absolute_magnitudes(10.0 ** q["log10_teff"][ok], q["logg"][ok], q["log10_lum_lsun"][ok],
                                      np.full(ok.sum(), feh), np.full(ok.sum(), av))
        g, bp, rp = (mags[:, list(bc.bands).index(b)] for b in io.GAIA_BANDS)
        out[float(age)] = (np.asarray(bp - rp, np.float64), np.asarray(g, np.float64))
    return out


#: the grid of the flat-prior isochrone fit (``grid_fit``): log10(age/yr) from, to, step; A_V upper bound (mag).
#: In Gaia's bands the reddening vector runs almost along the pre-main-sequence isochrones: a fit with A_V free
#: trades ~0.2 dex of age per mag of A_V at the same χ². Fitted unreddened (0), the age is the models' age of an
#: unreddened star and, for a reddened one, a lower bound (dereddening moves it onto older isochrones).
GRID_FIT_LOG10_AGE = (5.8, 9.8, 0.05)
GRID_FIT_AV_MAX = 0.0
#: its uncertainties on M_G, BP−RP, G−RP (mag): not the photometric errors (mmag) but what a single-star,
#: solar-[Fe/H] isochrone cannot follow (unresolved binaries, spots, a model's colour at fixed T_eff)
GRID_FIT_SIGMA = (0.10, 0.05, 0.05)
#: members per vectorised step of the fit: each step holds a few [chunk, grid points, 3] float64 arrays (~40,000
#: grid points: ~60 MB each at 64), so memory stays bounded whatever the number of members
GRID_FIT_CHUNK = 64


def grid_fit(members: pd.DataFrame, isochrones, bc, feh: float = 0.0,
             log10_age: Sequence[float] = GRID_FIT_LOG10_AGE, av_max: float = GRID_FIT_AV_MAX,
             sigma: Sequence[float] = GRID_FIT_SIGMA) -> pd.DataFrame:
    """The age the stellar models alone give each member: the best fit of (M_G, BP − RP, G − RP) over the
    model's own isochrone grid (``IsochroneGrid`` + ``BCGrid``, as corrected for the workflow) in log age,
    initial mass and A_V ∈ [0, ``av_max``] (``GRID_FIT_AV_MAX``), flat in all three, at ``feh``, the distance 1/ϖ.

    Why: the network's age is the models' age through a prior. Beside the literature age and the network's
    median under either prior, this separates an offset of the models' age scale (literature vs this fit) from
    one the inference adds (this fit vs the network). A_V is fitted per model point by weighted least squares on
    the extinction coefficients at A_V = 1 (linear in A_V), clipped to [0, av_max]. Columns ``grid_log10_age``,
    ``grid_av_mag`` and ``grid_chi2`` (NaN where ϖ ≤ 0 or a band is missing), index as ``members``.
    """
    ages = np.arange(log10_age[0], log10_age[1] + 0.5 * log10_age[2], log10_age[2])
    logm = np.asarray(isochrones.axes["log10_mass"], np.float64)
    a, m = (v.ravel() for v in np.meshgrid(ages, logm, indexing="ij"))
    q = isochrones.interpolate(a, m, np.full(a.size, feh))
    ok = np.isfinite(q["log10_teff"]) & np.isfinite(q["logg"]) & np.isfinite(q["log10_lum_lsun"])
    a = a[ok]
    args = [10.0 ** q["log10_teff"][ok], q["logg"][ok], q["log10_lum_lsun"][ok], np.full(ok.sum(), feh)]
    col = [list(bc.bands).index(b) for b in io.GAIA_BANDS]
    m0 = bc.absolute_magnitudes(*args, np.zeros(ok.sum()))[:, col]
    k = bc.absolute_magnitudes(*args, np.ones(ok.sum()))[:, col] - m0
    def cmd(g, bp, rp):
        return np.stack([g, bp - rp, g - rp], axis=-1)
    model, kv = cmd(*m0.T), cmd(*k.T)
    inv = 1.0 / np.asarray(sigma, np.float64) ** 2
    plx = _num(members, "parallax")
    with np.errstate(divide="ignore", invalid="ignore"):
        mu = np.where(plx > 0, 5.0 * np.log10(100.0 / plx), np.nan)
    x = cmd(_num(members, "phot_g_mean_mag") - mu, _num(members, "phot_bp_mean_mag") - mu,
            _num(members, "phot_rp_mean_mag") - mu)
    rows = np.flatnonzero(np.isfinite(x).all(1))
    out = np.full((len(members), 3), np.nan)
    kk = (kv ** 2 * inv).sum(1)
    for start in range(0, rows.size, GRID_FIT_CHUNK):
        idx = rows[start:start + GRID_FIT_CHUNK]
        r = x[idx, None, :] - model[None]                                    # [n, models, 3]
        av = np.clip((r * kv[None] * inv).sum(-1) / kk[None], 0.0, av_max)
        chi2 = ((r - av[..., None] * kv[None]) ** 2 * inv).sum(-1)
        best = np.argmin(chi2, axis=1)
        out[idx] = np.stack([a[best], av[np.arange(idx.size), best], chi2[np.arange(idx.size), best]], 1)
    return pd.DataFrame(out, index=members.index, columns=["grid_log10_age", "grid_av_mag", "grid_chi2"])


def age_scale(members: pd.DataFrame, fit: pd.DataFrame, network: Mapping[str, Mapping],
              young_threshold_myr: float) -> dict:
    """Per young group with a literature age: log10(age/yr) from the literature, the median ``grid_fit`` and
    the network's median age under each prior scored (``network``: {prior: score()["groups"]}), and the
    differences that split the offset into the models' age scale and what the inference adds."""
    out = {}
    for name, idx in members.groupby(members["group"].astype(str)).groups.items():
        age = _median(_num(members.loc[idx], "age_myr"))
        if age is None or age >= young_threshold_myr:
            continue
        lit = math.log10(age * 1e6)
        grid = _median(fit.loc[idx, "grid_log10_age"].to_numpy(np.float64))
        g = {"literature_log10_age": lit, "grid_fit_log10_age": grid,
             "grid_fit_av_mag": _median(fit.loc[idx, "grid_av_mag"].to_numpy(np.float64)),
             "models_minus_literature": None if grid is None else grid - lit}
        for prior, groups in network.items():
            net = (groups.get(name) or {}).get("median_log10_age_yr_q50")
            g[f"network_{prior}_log10_age"] = net
            g[f"network_{prior}_minus_models"] = None if net is None or grid is None else net - grid
        out[name] = g
    return out


def _group_order(table: pd.DataFrame) -> list[str]:
    ages = table.groupby("group", dropna=False)["age_myr"].median()
    return sorted(ages.index.astype(str), key=lambda g: (not np.isfinite(ages.get(g, np.nan)),
                                                         ages.get(g, np.inf), g))


def _colours(groups: Sequence[str]) -> dict[str, tuple]:
    import matplotlib

    if len(groups) <= 10:
        cmap = matplotlib.colormaps["tab10"]
        return {g: cmap(i) for i, g in enumerate(groups)}
    # tab20 holds ten hues, dark then light: the first ten groups get the ten dark ones, so neighbours (ages in
    # order) never share a hue
    cmap = matplotlib.colormaps["tab20"]
    return {g: cmap((2 * i + (i // 10) % 2) % 20) for i, g in enumerate(groups)}


def _group_age(table: pd.DataFrame, group: str) -> float | None:
    return _median(table.loc[table["group"].astype(str) == group, "age_myr"])


def _label(group: str, table: pd.DataFrame) -> str:
    age = _group_age(table, group)
    return f"{group} ({age:g} Myr)" if age is not None else f"{group} (no age)"


def figure_p_young(tables: Mapping[str, pd.DataFrame], path: str | Path, young_threshold_myr: float,
                   dpi: int = 130) -> None:
    """(a) P(young) per group, one panel per variant: boxes + the stars, young groups left, old right."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = next(iter(tables.values()))
    order = _group_order(first)
    colours = _colours(order)
    fig, axes = plt.subplots(len(tables), 1, figsize=(max(7.0, 0.9 * len(order) + 3), 3.6 * len(tables)),
                             squeeze=False, sharex=True)
    rng = np.random.default_rng(0)
    for ax, (variant, t) in zip(axes[:, 0], tables.items()):
        t = t[t["status"].astype(str) == "ok"]
        data = [_num(t[t["group"].astype(str) == g], "p_young") for g in order]
        ax.boxplot([d[np.isfinite(d)] if np.isfinite(d).any() else [np.nan] for d in data],
                   positions=np.arange(len(order)), widths=0.6, showfliers=False)
        for i, (g, d) in enumerate(zip(order, data)):
            ax.scatter(i + rng.uniform(-0.22, 0.22, d.size), d, s=6, alpha=0.5, color=colours[g], lw=0)
        ax.axhline(0.5, color="r", lw=1, ls="--", label="called young: P(young) ≥ 0.5")
        n_young = sum(1 for g in order if (_group_age(first, g) or np.inf) < young_threshold_myr)
        if 0 < n_young < len(order):
            ax.axvline(n_young - 0.5, color="0.5", lw=0.8)
        ax.set_ylim(-0.03, 1.03)
        ax.set_ylabel(f"P(age < {young_threshold_myr:g} Myr)")
        ax.set_title(f"{variant}: {int((t['status'].astype(str) == 'ok').sum())} stars with status ok")
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)  # above the boxes, not on them
    axes[-1, 0].set_xticks(np.arange(len(order)), [_label(g, first) for g in order], rotation=30, ha="right",
                           fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def figure_age(tables: Mapping[str, pd.DataFrame], path: str | Path, young_threshold_myr: float,
               dpi: int = 130) -> None:
    """(b) inferred log age (median, 16–84 % bars) against the literature group age, one panel per variant."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = next(iter(tables.values()))
    order = _group_order(first)
    colours = _colours(order)
    fig, axes = plt.subplots(1, len(tables), figsize=(5.6 * len(tables), 6.2), squeeze=False, sharey=True)
    rng = np.random.default_rng(1)
    lims = (5.5, 10.3)
    for ax, (variant, t) in zip(axes[0], tables.items()):
        t = t[(t["status"].astype(str) == "ok") & np.isfinite(_num(t, "age_myr"))]
        for g in order:
            s = t[t["group"].astype(str) == g]
            if s.empty:
                continue
            x = np.log10(_num(s, "age_myr") * 1e6) + rng.uniform(-0.04, 0.04, len(s))
            q50 = _num(s, "log10_age_yr_q50")
            lo, hi = q50 - _num(s, "log10_age_yr_q16"), _num(s, "log10_age_yr_q84") - q50
            faint = g.endswith(CALIBRATION_TAG)
            ax.errorbar(x, q50, yerr=[np.clip(lo, 0, None), np.clip(hi, 0, None)], fmt="o", ms=1.5 if faint else 2.5,
                        lw=0.3 if faint else 0.5, alpha=0.15 if faint else 0.5, color=colours[g],
                        label=_label(g, first), zorder=1 if faint else 2)
        ax.plot(lims, lims, color="k", lw=1, label="one to one")
        thr = io.log10_age_threshold(young_threshold_myr)
        ax.axhline(thr, color="r", lw=0.8, ls="--", label=f"{young_threshold_myr:g} Myr")
        ax.set(xlim=lims, ylim=lims, xlabel="literature group age log10(age / yr)",
               ylabel="inferred log10(age / yr): median, 16–84 %", title=variant)
    handles, names = axes[0, 0].get_legend_handles_labels()
    ncols = min(2 * axes.shape[1], len(names))  # two legend columns per panel: one panel has room for two
    fig.legend(handles, names, loc="lower center", ncols=ncols, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.045 * math.ceil(len(names) / ncols) + 0.02, 1, 1))
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def figure_cmd(members: pd.DataFrame, path: str | Path, isochrones: Mapping | None = None,
               dpi: int = 130, young_threshold_myr: float = 50.0) -> None:
    """(c) the members on the absolute CMD (M_G = G + 5 log10(ϖ/100), ϖ in mas) with the model's isochrones."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = _group_order(members)
    colours = _colours(order)
    fig, ax = plt.subplots(figsize=(7.5, 7.5))
    if isochrones:
        cmap = matplotlib.colormaps["viridis"]
        for i, (age, (x, y)) in enumerate(sorted(isochrones.items())):
            ax.plot(x, y, color=cmap(i / max(1, len(isochrones) - 1)), lw=1.2,
                    label=f"model {age:g} Myr ([Fe/H] 0, A_V 0)")
    for g in order:
        s = members[members["group"].astype(str) == g]
        plx = _num(s, "parallax")
        ok = plx > 0
        mg = _num(s, "phot_g_mean_mag")[ok] + 5.0 * np.log10(plx[ok] / 100.0)
        col = (_num(s, "phot_bp_mean_mag") - _num(s, "phot_rp_mean_mag"))[ok]
        age = _group_age(members, g)
        ax.scatter(col, mg, s=8, alpha=0.7, color=colours[g], lw=0, marker="s" if age and age >= young_threshold_myr else "o",
                   label=f"{_label(g, members)}, {ok.sum()}")
    ax.set(xlim=(-0.5, 5.0), ylim=(16.0, -4.0), xlabel="BP − RP (mag)",
           ylabel="M_G = G + 5 log10(ϖ / 100 mas) (mag)",
           title="real members (no extinction correction)" + ("" if isochrones else "; no isochrone grids given"))
    ax.legend(fontsize=7, loc="lower left", ncols=1, markerscale=1.5)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------
def run_real_validation(model_path: str | Path | None, output_json: str | Path, figure_dir: str | Path,
                        n_samples: int = 64, seed: int = 0, young_threshold_myr: float = 50.0,
                        variants: Sequence[str] = VARIANTS, isochrones: str | Path | None = None,
                        bc_grid: str | Path | None = None, figures: Mapping[str, str | Path] | None = None,
                        sampler=None, device: str = "auto", threads: int | None = None,
                        n_steps: int | None = None, method: str | None = None,
                        rows_per_batch: int | None = None, prior: str | None = None,
                        catalog_format: str = "parquet", files: Iterable | None = None,
                        sagitta: bool = True, dpi: int = 130, calibration_groups: Sequence[str] = (),
                        compare_prior: bool = False, age_scale_clusters: bool = False,
                        structure_prior: bool = False) -> dict:
    """Real members through ``infer_catalog`` for each variant; metrics to ``output_json``, figures.

    ``figures`` maps ``p_young``, ``age``, ``cmd`` to PNG paths (default ``figure_dir/real_<name>.png``).
    ``isochrones``/``bc_grid``: the workflow's ``results/models/isochrones.npz`` and ``bc_grid.npz``; the CMD
    has no isochrones without them. ``sampler`` replaces the model (tests); otherwise the checkpoint is
    loaded with ``load_sampler`` exactly as ``ysocensus infer`` does. ``compare_prior``: also score the first
    variant under the other prior (``other_prior``), where the sampler can switch priors. ``structure_prior``: also
    score it under the prior of a member of the named young structure (``structure_prior``; ``model.priors``), the
    question a membership list asks.
    ``age_scale_clusters``: also the clusters of :func:`age_scale_file`, listed as calibration groups (they set the
    stellar models' pre-main-sequence age scale). Returns the JSON dict.
    """
    variants = list(variants)
    bad = [v for v in variants if v not in VARIANTS]
    if bad or not variants:
        raise ValueError(f"variants {bad or variants} must be a non-empty subset of {VARIANTS}")
    figure_dir = Path(figure_dir)
    paths = {k: Path(v) for k, v in (figures or {}).items()}
    for k in ("p_young", "age", "cmd"):
        paths.setdefault(k, figure_dir / f"real_{k}.png")
    for p in paths.values():
        p.parent.mkdir(parents=True, exist_ok=True)
    files = data_files() if files is None else list(files)
    if age_scale_clusters:
        files = files + [age_scale_file()]
        calibration_groups = list(calibration_groups) + age_scale_groups()
    members = load_members(files)
    if sampler is None:
        from ysocensus.inference.model_adapter import load_sampler

        sampler = load_sampler(model_path, device=device, threads=threads, n_steps=n_steps, method=method,
                               rows_per_batch=rows_per_batch, prior=prior)
    tables, out_variants = {}, {}
    with tempfile.TemporaryDirectory(prefix="validate_real_") as tmp:
        for v in variants:
            table, info = run_members(members, sampler, v, n_samples, seed, young_threshold_myr, tmp,
                                      catalog_format=catalog_format)
            tables[v] = table
            m = score(table, young_threshold_myr, calibration_groups=calibration_groups)
            m["targets"] = targets_met(m)
            m["under_file_labels"] = file_label_scores(table, young_threshold_myr, calibration_groups)
            m["catalogs"] = info
            out_variants[v] = m
            log.info("%s: AUC %s, young called young %s, median |dlog age| %s, inside 16-84 %s", v,
                     m["auc_p_young"], m["young_called_young"], m["median_abs_dlog_age"], m["age_inside_16_84"])
        if compare_prior:
            result_other = _other_prior(members, sampler, variants[0], n_samples, seed, young_threshold_myr, tmp,
                                        catalog_format, calibration_groups)
        if structure_prior:
            result_structure = _under_prior(STRUCTURE, members, sampler, variants[0], n_samples, seed,
                                            young_threshold_myr, tmp, catalog_format, calibration_groups)
    result = {
        "definitions": DEFINITIONS,
        "young_threshold_myr": float(young_threshold_myr),
        "n_samples": int(n_samples), "seed": int(seed),
        "model": str(model_path) if model_path is not None else None,
        "sampler": _jsonable(sampler.describe()) if hasattr(sampler, "describe") else None,
        "files": {name: {"rows": int(len(s)), "groups": {str(k): int(c) for k, c in
                                                         s["group"].astype(str).value_counts().items()}}
                  for name, s in members.groupby("file")},
        "variants": out_variants,
        "calibration_groups": list(calibration_groups),
        "label_revisions": label_revisions(),
    }
    for key, without in SIGMA_COMPARISONS.items():
        if "as_published" in out_variants and without in out_variants:
            intervals = paired_bootstrap(tables["as_published"], tables[without], young_threshold_myr,
                                         calibration_groups, seed=seed)
            result[key] = compare_variants(out_variants["as_published"], out_variants[without], intervals,
                                           without_name=without)
    if compare_prior:
        result["other_prior"] = result_other
    if structure_prior:
        result["structure_prior"] = result_structure
    result["sagitta"] = "not run (validate_real.sagitta: false)"
    if sagitta:
        try:
            result["sagitta"] = score_sagitta(members, young_threshold_myr, calibration_groups)
        except Exception as exc:  # a broken optional baseline must not cost the validation
            log.warning("Sagitta failed: %s: %s", type(exc).__name__, exc)
            result["sagitta"] = f"failed: {type(exc).__name__}: {exc}"
    # figures (the calibration cluster of the stellar models says so in its name)
    def tag(frame):
        cal = frame["group"].astype(str).isin(list(calibration_groups))
        return frame.assign(group=frame["group"].astype(str).where(~cal, frame["group"].astype(str) + CALIBRATION_TAG))

    tables = {v: tag(t) for v, t in tables.items()}
    members = tag(members)
    figure_p_young(tables, paths["p_young"], young_threshold_myr, dpi)
    figure_age(tables, paths["age"], young_threshold_myr, dpi)
    iso = None
    if isochrones is not None and bc_grid is not None:
        from ysocensus.stars.bolometric import load_bc_grid
        from ysocensus.stars.tracks import IsochroneGrid

        grid, bc = IsochroneGrid.load(isochrones), load_bc_grid(bc_grid)
        iso = isochrone_cmd(grid, bc)
        est = getattr(sampler, "estimator", None)
        young = members[_num(members, "age_myr") < young_threshold_myr]
        network = {str(getattr(est, "prior", "configured")): out_variants[variants[0]]["groups"]}
        for extra in (result.get("other_prior"), result.get("structure_prior")):
            if isinstance(extra, Mapping):
                network[str(extra["prior"])] = extra["scores"]["groups"]
        result["age_scale"] = {"variant": variants[0],
                               "av_max_mag": GRID_FIT_AV_MAX,
                               "groups": age_scale(young, grid_fit(young, grid, bc), network, young_threshold_myr)}
        from ysocensus.surveys.figures import extinction_per_av

        result["extinction_check"] = {"variant": variants[0], "reference_star": list(EXTINCTION_REFERENCE_STAR),
                                      "groups": extinction_check(tables[variants[0]],
                                                                 extinction_per_av(bc, *EXTINCTION_REFERENCE_STAR))}
    figure_cmd(members, paths["cmd"], iso, dpi, young_threshold_myr)
    result["figures"] = {k: str(p) for k, p in paths.items()}
    result["isochrones_myr"] = sorted(iso) if iso else None
    output_json = Path(output_json)
    output_json.parent.mkdir(parents=True, exist_ok=True)
    io.write_json(_jsonable(result), output_json)
    return result


def _other_prior(members, sampler, variant, n_samples, seed, young_threshold_myr, tmp, catalog_format,
                 calibration_groups) -> dict | str:
    """Scores of ``variant`` under the prior of the chain the sampler is not set to: the network's own posterior
    (simulation) against the population-corrected one, per group."""
    est = getattr(sampler, "estimator", None)
    other = "simulation" if getattr(est, "prior", None) == "population" else "population"
    return _under_prior(other, members, sampler, variant, n_samples, seed, young_threshold_myr, tmp, catalog_format,
                        calibration_groups)


def _under_prior(prior, members, sampler, variant, n_samples, seed, young_threshold_myr, tmp, catalog_format,
                 calibration_groups) -> dict | str:
    """Scores of ``variant`` under ``prior`` (``FlowPosterior.using_prior``), per group; a sentence where the sampler
    cannot switch priors."""
    est = getattr(sampler, "estimator", None)
    if est is None or not hasattr(est, "using_prior") or getattr(est, "prior_ratio", None) is None:
        return "not available (the sampler has no prior ratio to switch)"
    with est.using_prior(prior):
        table, _ = run_members(members, sampler, variant, n_samples, seed, young_threshold_myr, tmp,
                               catalog_format=catalog_format)
    m = score(table, young_threshold_myr, calibration_groups=calibration_groups)
    return {"prior": prior, "variant": variant, "scores": m}


def _jsonable(x):
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating, float)):
        return _f(x)
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if x is pd.NA:
        return None
    return x


def run_validate_real(model: str, isochrones: str | None, bc_grid: str | None, output_json: str,
             figures: Mapping[str, str], section: Mapping, infer: Mapping, seed: int, threads: int,
             log_files=None, calibration_groups: Sequence[str] = ()) -> dict:
    """Entry point of the workflow's ``validate_real`` rule (``scripts/validate_real.py``).

    ``section`` is the validated ``validate_real`` config section; the threshold and the sampler's solver
    and device come from the ``infer`` section, so the real stars see the settings the census uses.
    """
    from ysocensus.logs import configure

    configure(log_files)
    seed = int(section["seed"]) if section.get("seed") is not None else int(seed)
    return run_real_validation(
        model, output_json, Path(output_json).parent, n_samples=int(section["n_samples"]), seed=seed,
        young_threshold_myr=float(infer["young_threshold_myr"]), variants=section["variants"],
        isochrones=isochrones, bc_grid=bc_grid, figures=figures, device=infer.get("device", "auto"),
        threads=int(threads), n_steps=infer.get("ode_steps"), method=infer.get("ode_method"),
        rows_per_batch=infer.get("rows_per_batch"), prior=section.get("prior"),
        catalog_format=section["catalog_format"], sagitta=bool(section["sagitta"]), dpi=int(section["dpi"]),
        calibration_groups=calibration_groups, compare_prior=bool(section.get("compare_prior", False)),
        age_scale_clusters=bool(section.get("age_scale_clusters", False)),
        structure_prior=bool(section.get("structure_prior", False)))
