"""Column recognition: the names catalogs are downloaded with, mapped onto the canonical ones.

The canonical names (``inference.catalog.KNOWN``: Gaia DR3 / 2MASS PSC / AllWISE archive names, LAMOST-like
labels) are what the rest of the code reads. A catalog from VizieR, from the Gaia archive's cross-match
tables or from a TOPCAT join names the same quantities otherwise (``Gmag``, ``Plx``, ``RA_ICRS``,
``w1mpro_error``, ``ra_1``), and a column the code does not recognise is not used: a misnamed magnitude would
vanish silently and every star come out ``ok`` without it. So recognition is explicit and reported:

- ``ALIASES`` is the one table of accepted alternative names (case-insensitive), each for one canonical name.
- TOPCAT's match renames clashing columns with ``_1``, ``_2``, …; such a suffix is accepted on a canonical
  name or an alias.
- When two file columns would give the same canonical column, the canonical name wins over an alias, an
  alias over a suffixed name, and the lower suffix over a higher one (``ra_1`` over ``ra_2``: in a TOPCAT
  pair match the first table's); the others are reported as shadowed. Two columns of the same rank are an
  error: which one holds the measurement is the user's call.
- Every other column is ignored (``--carry`` copies it to the output). An ignored column that resembles a
  canonical name or an alias (``difflib``, after reading ``e_X``, ``X_err``, ``X_error`` as "error of X")
  whose canonical column the catalog lacks is a *near miss* (``g_mag``, ``plx_err``): warned about, never
  guessed.

:func:`recognise` is a pure function of the file's column names; ``inference.catalog`` applies it.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Collection, Mapping, Sequence

from ysocensus import io

# canonical (io) names the alias table maps onto, in io's band order
_G, _BP, _RP = io.GAIA_BANDS
_RFG, _RFBP, _RFRP = io.GAIA_FLUX_OVER_ERROR
_J, _H, _KS = io.TMASS_BANDS
_EJ, _EH, _EKS = io.TMASS_ERRORS
_W1, _W2, _W3, _W4 = io.WISE_BANDS
_EW1, _EW2, _EW3, _EW4 = io.WISE_ERRORS
_EWLI, _EWHA = io.LAMOST_LABELS[3:]
_EWLI_ERR, _EWHA_ERR = io.LAMOST_ERRORS[3:]


def _flux(mag_column: str) -> str:
    """The Gaia archive's mean-flux column of a mean-magnitude column (as ``catalog.GAIA_ALTERNATIVES``)."""
    return mag_column.replace("_mag", "_flux")


#: alternative (lower-case) name -> canonical column; targets are checked against catalog.KNOWN at import
ALIASES: dict[str, str] = {
    # VizieR Gaia DR3 (I/355/gaiadr3), DR2 (I/345/gaia2)
    "source": "source_id", "dr3name": "designation", "dr2name": "designation",
    "ra_icrs": "ra", "de_icrs": "dec", "dec_icrs": "dec",
    "plx": "parallax", "e_plx": "parallax_error",
    "gmag": _G, "bpmag": _BP, "rpmag": _RP,
    "e_gmag": f"{_G}_error", "e_bpmag": f"{_BP}_error", "e_rpmag": f"{_RP}_error",
    "fg": _flux(_G), "e_fg": f"{_flux(_G)}_error",
    "fbp": _flux(_BP), "e_fbp": f"{_flux(_BP)}_error",
    "frp": _flux(_RP), "e_frp": f"{_flux(_RP)}_error",
    "rfg": _RFG, "rfbp": _RFBP, "rfrp": _RFRP,
    # positions as VizieR computes them, other archives, HEASARC
    "raj2000": "ra", "dej2000": "dec", "_raj2000": "ra", "_dej2000": "dec",
    "radeg": "ra", "dedeg": "dec", "ra_deg": "ra", "dec_deg": "dec",
    "glon": "l", "glat": "b", "_glon": "l", "_glat": "b", "lii": "l", "bii": "b",
    # VizieR 2MASS PSC (II/246): e_ = the total uncertainty, as j_msigcom
    "jmag": _J, "hmag": _H, "kmag": _KS, "ksmag": _KS,
    "e_jmag": _EJ, "e_hmag": _EH, "e_kmag": _EKS, "e_ksmag": _EKS,
    # literature member tables (e.g. the real-member files shipped in ysocensus/data/real): j_err, w1, w1_err ...
    "j_err": _EJ, "h_err": _EH, "ks_err": _EKS, "k_err": _EKS,
    "w1": _W1, "w2": _W2, "w3": _W3, "w4": _W4,
    "w1_err": _EW1, "w2_err": _EW2, "w3_err": _EW3, "w4_err": _EW4,
    # AllWISE: the Gaia archive's allwise_original_valid, VizieR II/328
    "w1mpro_error": _EW1, "w2mpro_error": _EW2, "w3mpro_error": _EW3, "w4mpro_error": _EW4,
    "w1mag": _W1, "w2mag": _W2, "w3mag": _W3, "w4mag": _W4,
    "e_w1mag": _EW1, "e_w2mag": _EW2, "e_w3mag": _EW3, "e_w4mag": _EW4,
    # per-band quality flags: VizieR 2MASS PSC Qflg, AllWISE qph. The archives' own name, ph_qual, is the same in
    # both surveys: it is not guessed (AMBIGUOUS_PH_QUAL: Recognition.warnings says how to name it)
    "qflg": io.PH_QUAL["tmass"], "2mass_ph_qual": io.PH_QUAL["tmass"], "ph_qual_2mass": io.PH_QUAL["tmass"],
    "qph": io.PH_QUAL["wise"], "wise_ph_qual": io.PH_QUAL["wise"], "ph_qual_allwise": io.PH_QUAL["wise"],
    # LAMOST stellar parameters: no bare teff / logg / feh aliases. A photometric Teff or another survey's [Fe/H]
    # under those names would be read as a LAMOST LRS label with LAMOST's errors; the near-miss warning asks
    # the user to name them teff_lamost, ... when they are LAMOST's.
    "ew_li": _EWLI, "e_ewli": _EWLI_ERR, "ew_ha": _EWHA, "e_ewha": _EWHA_ERR,
}
assert all(k == k.lower() for k in ALIASES)

#: the archives' name of both surveys' quality flags (io.PH_QUAL), warned about when ignored
AMBIGUOUS_PH_QUAL = "ph_qual"
#: TOPCAT's suffix for columns of the same name in a join
_SUFFIX = re.compile(r"^(?P<base>.+)_(?P<n>[1-9])$")
#: how close (difflib ratio) an ignored name must be to a known one to be reported as a near miss; 0.8 takes
#: g_mag ~ gmag (0.89), bp_mag ~ bpmag, sourceid ~ source_id, and leaves ra_error, pmra, bp_rp alone
NEAR_MISS_RATIO = 0.8
_ERROR_PREFIXES = ("e_", "err_", "sig_", "sigma_")
_ERROR_SUFFIXES = ("_error", "_err", "_sigma", "_sig", "_unc", "error", "err")


class ColumnClash(ValueError):
    """Two columns of a catalog would both be read as one canonical column."""


@dataclass(frozen=True)
class Recognition:
    """What a catalog's columns were read as (:func:`recognise`)."""

    used: dict[str, str]                                   # canonical -> file column read for it
    groups: dict[str, str]                                 # canonical -> group (survey, position, identifier)
    ignored: tuple[str, ...] = ()                          # file columns not read
    shadowed: dict[str, str] = field(default_factory=dict)     # file column -> canonical read from another
    near_misses: dict[str, tuple[str, str]] = field(default_factory=dict)  # file column -> (resembled, canonical)

    def by_group(self) -> dict[str, list[str]]:
        """Per group, the recognised columns, ``canonical (as FileName)`` where the file names it otherwise."""
        out: dict[str, list[str]] = {}
        for canon, original in self.used.items():
            text = canon if original.lower() == canon else f"{canon} (as {original})"
            out.setdefault(self.groups.get(canon, "other"), []).append(text)
        return out

    def summary(self, where: str = "catalog") -> list[str]:
        """The recognition summary as log lines (what was read for which survey, what was not)."""
        lines = [f"{where}: columns read: " + "; ".join(f"{g}: {', '.join(cols)}"
                                                        for g, cols in self.by_group().items())]
        if self.shadowed:
            lines.append(f"{where}: columns not read because another column gives the same quantity: "
                         + ", ".join(f"{c} (for {canon}, read from {self.used[canon]})"
                                     for c, canon in self.shadowed.items()))
        if self.ignored:
            lines.append(f"{where}: {len(self.ignored)} column(s) ignored (not used by the model; --carry copies "
                         f"them to the output): " + ", ".join(self.ignored))
        return lines

    def warnings(self, where: str = "catalog") -> list[str]:
        """One line per near miss (a column that looks like a quantity the catalog lacks) and per ignored
        ``ph_qual`` (both surveys' archives use that name: which survey's it is is the user's call)."""
        lines = [f"{where}: column {col!r} is ignored, but looks like {like!r} ({canon}), which the catalog does "
                 f"not have; rename the column if it holds {canon}" for col, (like, canon) in self.near_misses.items()]
        flags = [c for c in self.ignored if _SUFFIX.sub(r"\g<base>", c.lower()) == AMBIGUOUS_PH_QUAL]
        lines += [f"{where}: column {c!r} is ignored: 2MASS and AllWISE both call their quality flags ph_qual; rename "
                  f"it {io.PH_QUAL['tmass']} or {io.PH_QUAL['wise']} to have its upper limits (U) read as "
                  f"non-detections and its X bands marginalised" for c in flags]
        return lines

    def to_dict(self) -> dict:
        """For the output file's metadata."""
        return {"read": dict(self.used), "groups": self.by_group(), "ignored": list(self.ignored),
                "shadowed": dict(self.shadowed),
                "near_misses": {c: {"looks_like": like, "column": canon}
                                for c, (like, canon) in self.near_misses.items()}}


def _candidate(name: str, known: Mapping[str, str]) -> tuple[str, tuple[int, int, int]] | None:
    """(canonical, rank) for one file column, or None; the lowest rank wins (module docstring).
    Rank: (TOPCAT-suffixed, the suffix, an alias): ra < ra_icrs < ra_1 < ra_icrs_1 < ra_2."""
    low = name.lower()
    if low in known:
        return low, (0, 0, 0)
    if low in ALIASES:
        return ALIASES[low], (0, 1, 0)
    m = _SUFFIX.match(low)
    if m:
        base = m.group("base")
        if base in known:
            return base, (1, int(m.group("n")), 0)
        if base in ALIASES:
            return ALIASES[base], (1, int(m.group("n")), 1)
    return None


def _error_key(name: str) -> tuple[bool, str]:
    """(is an uncertainty, base name without separators): e_Plx, plx_err and plx_error all give (True, 'plx')."""
    n, err = name.lower(), False
    for p in _ERROR_PREFIXES:
        if n.startswith(p) and len(n) > len(p):
            n, err = n[len(p):], True
            break
    for s in _ERROR_SUFFIXES:
        if n.endswith(s) and len(n) > len(s):
            n, err = n[:-len(s)], True
            break
    return err, n.replace("_", "")


def near_miss(name: str, targets: Collection[str], present: set[str]) -> tuple[str, str] | None:
    """(name it resembles, canonical) when ``name`` looks like one of the canonical ``targets`` (or an alias of
    one) that is absent from ``present``."""
    names = {**{k: k for k in targets}, **{a: c for a, c in ALIASES.items() if c in targets}}
    names = {n: c for n, c in names.items() if c not in present}
    if not names:
        return None
    low = name.lower()
    close = difflib.get_close_matches(low, list(names), n=1, cutoff=NEAR_MISS_RATIO)
    if close:
        return close[0], names[close[0]]
    err, base = _error_key(low)
    keyed = {}
    for n in names:
        e, b = _error_key(n)
        if e == err:
            keyed.setdefault(b, n)
    close = difflib.get_close_matches(base, list(keyed), n=1, cutoff=NEAR_MISS_RATIO)
    if close:
        return keyed[close[0]], names[keyed[close[0]]]
    return None


def recognise(names: Sequence[str], known: Mapping[str, str], keep: Sequence[str] = (),
              quantities: Collection[str] | None = None) -> Recognition:
    """Map a catalog's column ``names`` onto the canonical ones.

    ``known``: canonical name -> group (e.g. ``catalog.COLUMN_GROUPS``); ``keep``: file columns the user carries
    (not reported as ignored); ``quantities``: the canonical columns a near miss may point to (default all; a
    cross-match ID column is read only for its presence, and Gaia's ``designation`` is no misspelt
    ``tmass_designation``). Raises :class:`ColumnClash` when two columns of the same rank give one canonical
    column (module docstring).
    """
    best: dict[str, tuple[tuple[int, int, int], str]] = {}
    shadowed: dict[str, str] = {}
    for name in names:
        found = _candidate(name, known)
        if found is None:
            continue
        canon, rank = found
        if canon not in best:
            best[canon] = (rank, name)
            continue
        other_rank, other = best[canon]
        if rank == other_rank:
            raise ColumnClash(f"columns {other!r} and {name!r} would both be read as {canon!r}; rename or drop one")
        loser = name if rank > other_rank else other
        if rank < other_rank:
            best[canon] = (rank, name)
        shadowed[loser] = canon
    used = {canon: best[canon][1] for canon in known if canon in best}
    taken = set(used.values()) | set(shadowed)
    keep_lower = {k.lower() for k in keep}
    ignored = tuple(n for n in names if n not in taken and n.lower() not in keep_lower)
    present = set(used)
    misses = {}
    for n in ignored:
        hit = near_miss(n, known if quantities is None else quantities, present)
        if hit is not None:
            misses[n] = hit
    return Recognition(used, {c: known[c] for c in used}, ignored, shadowed, misses)
