"""Young star-forming structure: star-forming complexes, their clusters and associations, the Radcliffe Wave.

Each complex (``COMPLEXES``; positions from the literature, rounded: Taurus, Ophiuchus, Lupus, Chamaeleon,
Corona Australis and Perseus from Zucker et al. 2019/2020 and Galli et al. 2019; Sco-Cen subgroups from
de Zeeuw et al. 1999 and Pecaut & Mamajek 2016; Orion from Grossschedl et al. 2018; Cepheus, Serpens/Aquila,
Vela OB2, NGC 2264, North America / Pelican, Canis Major OB1 and Cygnus OB2 from Zucker et al. 2020 and
Cantat-Gaudin et al. 2019) has a centre (l, b, distance), a size, a stellar mass formed, a range of log ages
(widened to include the literature range of the catalogued group it stands for, ``covered_age_ranges``)
and a molecular cloud (peak A_V through its centre, radius) that the dust field places at the same spot.

A complex forms stars in two ways:
  * a distributed association (``component = "young_association"``, cluster number 0): a fraction
    ``distributed_fraction`` of its mass, Gaussian in space with sigma = the complex radius, ages uniform
    in log age over the complex's range;
  * clusters (``component = "young_cluster"``): masses drawn from dN/dM ∝ M^slope (slope = -2, Lada & Lada
    2003) between ``cluster_mass_min_msun`` and ``cluster_mass_max_msun`` until the clustered mass is used;
    centres Gaussian around the complex centre (sigma = half the complex radius), Plummer profiles of
    radius ``plummer_radius_pc`` truncated at 10 radii, one age per cluster (uniform in log age over the
    complex's range) with an internal spread ``age_spread_dex``.
Literature associations (``population.young.literature_associations``): every association, moving group and
nearby cluster within ~500 pc of the BANYAN Sigma compilation (Gagne et al. 2018, ApJ 856, 23: centre XYZ and
spatial covariance from its model file, ages and bona fide member counts from its Table 1), plus census
additions where BANYAN has no group (Lupus 3: Comeron 2008, Galli et al. 2020) or predates Gaia (Upper CrA's
count and age: Galli et al. 2020, Rigliaco et al. 2025), read from
``ysocensus/data/young_associations.csv`` (sources, licence and commits in ``young_associations.SOURCES.md``).
Each becomes a distributed association only (no clusters), an isotropic Gaussian with sigma = sqrt of the mean
eigenvalue of BANYAN's XYZ covariance, ages uniform in log age over its literature range, and a stellar mass
from the documented rule ``members x M_tot / N(m > member_mass_min_msun)`` for a Kroupa (2001) IMF (bona fide
BANYAN members taken as complete above 0.5 Msun: 2.40 Msun formed per member; see ``member_mass_factor``).
Groups whose literature age exceeds ``max_age_myr`` (Hyades, Coma Ber, UMa core, chi1 For at the default 200
Myr) or whose centre lies beyond ``max_distance_pc`` are left out, as is a group whose ``covered_by`` complex of
``COMPLEXES`` is selected (Taurus, rho Oph, US, UCL, LCC, CrA: that complex already carries it, with its
cloud and clusters). Only star-forming regions carry a cloud (``cloud_av_mag`` > 0); moving groups have none.
They come after the Radcliffe Wave clouds, so adding them changes no earlier cluster's id or random stream.
A ``young`` mapping without the ``literature_associations`` key (one that did not pass the schema) has none.

The Radcliffe Wave (Alves et al. 2020) is a chain of ``n_clouds`` small complexes spaced evenly along a
polyline through anchor points (heliocentric x, y, z in pc: Canis Major, Orion, Perseus, Cepheus, Cygnus),
which gives its ~2.7 kpc length and ~160 pc vertical undulation.

``cluster_id`` = complex index * 1000 + cluster number (0 = the association). Every cluster's stars come
from their own random stream (global seed, cluster id), so a cluster that straddles tiles is drawn the
same way in every tile and each tile keeps the stars that fall inside it.

Zones of young structure (``structure_zones``, ``near_structure``, ``near_young_zones``): spheres of
``population.near_young_sigmas`` x sigma around every association (cluster number 0, and the literature
associations and Radcliffe Wave clouds), where the population stage thins the field less
(``population.thinning.near_young``) and which the model's prior ratio is told (``model.prior_ratio``).
"""

from __future__ import annotations

import csv
import functools
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from ..sky import STAGES

#: spawn-key tags of the global (not per-tile) streams of the population stage
CATALOGUE_KEY = 1 << 40
CLUSTER_KEY = (1 << 40) + 1

# name: (l_deg, b_deg, distance_pc, radius_pc, stellar_mass_msun, (log_age_lo, log_age_hi), cloud_av_mag, cloud_radius_pc)
# Ophiuchus spans both of its populations (Wilking, Gagné & Allen 2008, Handbook of Star Forming Regions II): the
# YSOs of the L1688 dense cores (~0.3 Myr, from 0.5 Myr here: the start of the tracks) and the optically visible
# surface population around them (median 2–5 Myr), which is the one Gaia sees.
COMPLEXES: dict[str, tuple] = {
    "taurus":                (172.0, -15.0, 140.0, 12.0, 400.0, (6.0, 6.5), 4.0, 10.0),
    "ophiuchus":             (353.0, 17.0, 138.0, 4.0, 300.0, (5.7, 6.7), 10.0, 4.0),
    "lupus":                 (339.0, 16.0, 158.0, 6.0, 150.0, (6.0, 6.7), 3.0, 6.0),
    "chamaeleon":            (297.0, -15.0, 190.0, 5.0, 250.0, (6.0, 6.7), 4.0, 5.0),
    "corona_australis":      (359.9, -17.7, 152.0, 3.0, 100.0, (5.8, 6.5), 6.0, 3.0),
    "upper_scorpius":        (352.0, 20.0, 143.0, 20.0, 2500.0, (6.9, 7.2), 0.5, 15.0),
    "upper_centaurus_lupus": (331.0, 12.0, 140.0, 30.0, 3000.0, (7.1, 7.3), 0.2, 20.0),
    "lower_centaurus_crux":  (300.0, 5.0, 115.0, 25.0, 2000.0, (7.0, 7.2), 0.2, 20.0),
    "perseus":               (159.0, -20.0, 300.0, 8.0, 800.0, (6.0, 6.6), 5.0, 10.0),
    "orion":                 (209.0, -19.0, 400.0, 25.0, 15000.0, (6.0, 7.0), 5.0, 25.0),
    "cepheus":               (110.0, 12.0, 350.0, 15.0, 500.0, (6.0, 6.8), 3.0, 15.0),
    "serpens_aquila":        (30.0, 3.0, 440.0, 8.0, 600.0, (5.8, 6.5), 8.0, 8.0),
    "vela":                  (263.0, -7.0, 380.0, 20.0, 1500.0, (7.0, 7.3), 0.5, 15.0),
    "ngc2264":               (203.0, 2.0, 720.0, 5.0, 1000.0, (6.3, 6.7), 3.0, 6.0),
    "north_america":         (85.0, -1.0, 795.0, 10.0, 1000.0, (6.0, 6.5), 5.0, 10.0),
    "canis_major":           (224.0, -2.0, 1150.0, 30.0, 5000.0, (6.5, 7.0), 3.0, 25.0),
    "cygnus":                (80.0, 0.8, 1400.0, 40.0, 30000.0, (6.0, 6.8), 6.0, 40.0),
}
COMPLEX_NAMES = tuple(COMPLEXES)

#: Radcliffe Wave anchor points (heliocentric x, y, z in pc): Canis Major, Orion, Perseus, Cepheus, Cygnus
RADCLIFFE_ANCHORS = ((-830.0, -800.0, -30.0), (-330.0, -180.0, -130.0), (-260.0, 100.0, -100.0),
                     (-100.0, 450.0, 110.0), (250.0, 1350.0, 20.0))


@dataclass
class Complex:
    name: str
    x: float
    y: float
    z: float
    radius_pc: float
    stellar_mass_msun: float
    log10_age_yr: tuple[float, float]
    cloud_av_mag: float
    cloud_radius_pc: float
    feh: float = 0.0
    distributed_only: bool = False   # literature associations: the whole mass in the distributed association

    @property
    def distance(self) -> float:
        return float(np.sqrt(self.x**2 + self.y**2 + self.z**2))


def lbd_to_xyz(l_deg, b_deg, d_pc):
    l, b = np.deg2rad(l_deg), np.deg2rad(b_deg)
    cb = np.cos(b)
    return d_pc * cb * np.cos(l), d_pc * cb * np.sin(l), d_pc * np.sin(b)


def xyz_to_lbd(x, y, z):
    d = np.sqrt(x * x + y * y + z * z)
    l = np.rad2deg(np.arctan2(y, x)) % 360.0
    b = np.rad2deg(np.arcsin(np.clip(z / np.maximum(d, 1e-12), -1, 1)))
    return l, b, d


#: the literature catalogue shipped with the package
ASSOCIATIONS_CSV = Path(__file__).resolve().parent.parent / "data" / "young_associations.csv"
_LIT_FLOAT = ("x_pc", "y_pc", "z_pc", "l_deg", "b_deg", "distance_pc", "sigma_x_pc", "sigma_y_pc", "sigma_z_pc",
              "sigma_pc", "age_myr", "age_min_myr", "age_max_myr", "member_mass_min_msun", "cloud_av_mag",
              "cloud_radius_pc")


@functools.lru_cache(maxsize=None)
def _read_literature(path: str) -> tuple[dict, ...]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(line for line in f if not line.startswith("#")))
    out = []
    for r in rows:
        r = dict(r)
        for k in _LIT_FLOAT:
            r[k] = float(r[k])
        r["n_members"] = int(r["n_members"])
        if not 0 < r["age_min_myr"] <= r["age_myr"] <= r["age_max_myr"] or r["sigma_pc"] <= 0 or r["n_members"] < 1:
            raise ValueError(f"{path}: bad row {r['name']!r}")
        out.append(r)
    names = [r["name"] for r in out]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: duplicate names")
    return tuple(out)


def literature_associations(path=None) -> list[dict]:
    """The rows of ``data/young_associations.csv`` (numbers as floats, ``n_members`` as int)."""
    return [dict(r) for r in _read_literature(str(path or ASSOCIATIONS_CSV))]


def covered_age_ranges(path=None) -> dict[str, tuple[float, float]]:
    """log10 age ranges (yr) of the literature groups a complex of ``COMPLEXES`` stands for (``covered_by``), per
    complex: the complex's own range is widened to include them, so the simulated complex is as old as the census
    it replaces says (Corona Australis: 0.6–3 Myr in ``COMPLEXES`` for the embedded Coronet, 4–5 Myr for the
    region's members in Gagne et al. 2018, Table 1, after Gennaro et al. 2012)."""
    out: dict[str, tuple[float, float]] = {}
    for r in literature_associations(path):
        c = r["covered_by"]
        if c:
            lo, hi = float(np.log10(r["age_min_myr"] * 1e6)), float(np.log10(r["age_max_myr"] * 1e6))
            out[c] = (min(lo, out.get(c, (lo, hi))[0]), max(hi, out.get(c, (lo, hi))[1]))
    return out


def _kroupa_xi(m):
    m = np.asarray(m, np.float64)
    return np.where(m < 0.08, (0.08 / 0.5) ** -1.3 * (m / 0.08) ** -0.3,
                    np.where(m < 0.5, (m / 0.5) ** -1.3, (m / 0.5) ** -2.3))


def member_mass_factor(m_min: float, mass_range=(0.08, 100.0)) -> float:
    """Stellar mass formed (over ``mass_range``) per star above ``m_min`` for a Kroupa (2001) IMF (slopes 0.3,
    1.3, 2.3 with breaks at 0.08 and 0.5 Msun): 2.40 Msun for m_min = 0.5, 0.415 Msun for m_min = 0.03."""
    def integral(f, a, b):
        x = np.geomspace(a, b, 20001)
        y = f(x) * x  # d/dln m
        return float(np.sum((y[1:] + y[:-1]) * np.diff(np.log(x))) / 2)

    mass = integral(lambda m: m * _kroupa_xi(m), *mass_range)
    n = integral(_kroupa_xi, float(m_min), mass_range[1])
    return mass / n


def literature_complexes(lit: Mapping, selected: set, feh: float = 0.0) -> list[Complex]:
    """Complexes from the literature catalogue for the ``young.literature_associations`` settings."""
    max_age = float(lit.get("max_age_myr", 200.0))
    max_d = float(lit.get("max_distance_pc", 500.0))
    out = []
    for r in literature_associations(lit.get("path")):
        if r["age_myr"] > max_age or r["distance_pc"] > max_d or (r["covered_by"] and r["covered_by"] in selected):
            continue
        mass = r["n_members"] * member_mass_factor(r["member_mass_min_msun"])
        ages = (float(np.log10(r["age_min_myr"] * 1e6)), float(np.log10(r["age_max_myr"] * 1e6)))
        out.append(Complex(r["name"], r["x_pc"], r["y_pc"], r["z_pc"], r["sigma_pc"], mass, ages,
                           r["cloud_av_mag"], r["cloud_radius_pc"] if r["cloud_av_mag"] > 0 else r["sigma_pc"],
                           feh, distributed_only=True))
    return out


def complexes_from_config(young: Mapping) -> list[Complex]:
    """The complexes selected by ``population.young`` (named ones, extra ones, Radcliffe Wave clouds)."""
    out: list[Complex] = []
    names = list(young.get("complexes", COMPLEX_NAMES))
    unknown = [n for n in names if n not in COMPLEXES]
    if unknown:
        raise ValueError(f"population.young.complexes: unknown complex name(s) {unknown}; "
                         f"known: {list(COMPLEX_NAMES)}")
    feh = float(young.get("feh", 0.0))
    lit_ages = covered_age_ranges((young.get("literature_associations") or {}).get("path"))
    for n in names:
        l, b, d, r, m, ages, av, cr = COMPLEXES[n]
        if n in lit_ages:  # the literature age of the group it stands for is inside its range
            ages = (min(ages[0], lit_ages[n][0]), max(ages[1], lit_ages[n][1]))
        out.append(Complex(n, *map(float, lbd_to_xyz(l, b, d)), r, m, tuple(ages), av, cr, feh))
    for e in young.get("extra_complexes", []) or []:
        if e["name"] in COMPLEXES:
            raise ValueError(f"population.young.extra_complexes: {e['name']!r} is already a known complex")
        x, y, z = lbd_to_xyz(e["l_deg"], e["b_deg"], e["distance_pc"])
        out.append(Complex(e["name"], float(x), float(y), float(z), e["radius_pc"], e["stellar_mass_msun"],
                           tuple(e["log10_age_yr"]), e.get("cloud_av_mag", 0.0), e.get("cloud_radius_pc", e["radius_pc"]),
                           feh))
    wave = young.get("radcliffe_wave", {}) or {}
    if wave.get("enabled", True):
        n = int(wave.get("n_clouds", 20))
        pts = np.asarray(wave.get("anchors_xyz_pc", RADCLIFFE_ANCHORS), np.float64)
        seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
        s_nodes = np.r_[0, np.cumsum(seg)]
        s = np.linspace(0, s_nodes[-1], n)
        xyz = np.stack([np.interp(s, s_nodes, pts[:, k]) for k in range(3)], axis=1)
        for k in range(n):
            out.append(Complex(f"radcliffe_wave_{k:02d}", *map(float, xyz[k]), wave.get("cloud_radius_pc", 15.0),
                               wave.get("stellar_mass_msun", 150.0), tuple(wave.get("log10_age_yr", (6.0, 7.0))),
                               wave.get("cloud_av_mag", 1.5), wave.get("cloud_radius_pc", 15.0), feh))
    lit = young.get("literature_associations")
    if lit is not None and lit.get("enabled", True):
        taken = {c.name for c in out}
        for c in literature_complexes(lit, set(names), feh):
            if c.name in taken:
                raise ValueError(f"population.young: literature association {c.name!r} clashes with a complex name")
            out.append(c)
    return out


@dataclass
class Clusters:
    """Struct of arrays of every cluster / association (global, independent of tiles)."""

    cluster_id: np.ndarray
    complex_name: list[str]
    kind: np.ndarray          # 0 association (Gaussian), 1 cluster (Plummer)
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    scale_pc: np.ndarray      # Gaussian sigma or Plummer radius
    mass_msun: np.ndarray
    log10_age_lo: np.ndarray  # per-star ages: uniform in [lo, hi] for associations
    log10_age_hi: np.ndarray
    age_spread_dex: np.ndarray
    feh: np.ndarray

    def __len__(self):
        return self.cluster_id.size

    def extent_pc(self) -> np.ndarray:
        return np.where(self.kind == 0, 4.0 * self.scale_pc, 10.0 * self.scale_pc)


def build_clusters(young: Mapping, seed: int) -> Clusters:
    """Draw every cluster of every selected complex from the global catalogue stream."""
    cx = complexes_from_config(young)
    f_dist = float(young.get("distributed_fraction", 0.5))
    m_lo = float(young.get("cluster_mass_min_msun", 20.0))
    m_hi = float(young.get("cluster_mass_max_msun", 3000.0))
    slope = float(young.get("cluster_mass_slope", -2.0))
    a_pl = float(young.get("plummer_radius_pc", 1.0))
    spread = float(young.get("age_spread_dex", 0.05))
    if not 0 < m_lo < m_hi:
        raise ValueError("population.young: need 0 < cluster_mass_min_msun < cluster_mass_max_msun")
    rows = []
    for ci, c in enumerate(cx):
        key = zlib.crc32(c.name.encode())
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(
            int(seed), spawn_key=(STAGES["population"], CATALOGUE_KEY, key))))
        lo, hi = c.log10_age_yr
        if c.distributed_only:  # literature association: no clusters
            rows.append((ci * 1000, c.name, 0, c.x, c.y, c.z, c.radius_pc, c.stellar_mass_msun, lo, hi, 0.0, c.feh))
            continue
        rows.append((ci * 1000, c.name, 0, c.x, c.y, c.z, c.radius_pc, f_dist * c.stellar_mass_msun, lo, hi, 0.0, c.feh))
        m_cl_total = (1 - f_dist) * c.stellar_mass_msun
        top = min(m_hi, max(m_cl_total, m_lo * 1.0001))
        masses = []
        acc = 0.0
        while acc < m_cl_total and len(masses) < 998:
            u = rng.random()
            if abs(slope + 1) < 1e-9:
                mcl = m_lo * (top / m_lo) ** u
            else:
                g = slope + 1
                mcl = (m_lo**g + u * (top**g - m_lo**g)) ** (1 / g)
            masses.append(mcl)
            acc += mcl
        if masses:  # scale so that the complex forms exactly its configured clustered mass
            masses = np.asarray(masses) * (m_cl_total / acc)
        for k, mcl in enumerate(masses):
            off = rng.normal(0.0, 0.5 * c.radius_pc, 3)
            age = rng.uniform(lo, hi)
            rows.append((ci * 1000 + k + 1, c.name, 1, c.x + off[0], c.y + off[1], c.z + off[2], a_pl, mcl,
                         age, age, spread, c.feh))
    if not rows:
        return Clusters(np.empty(0, np.int32), [], np.empty(0, np.int8), *(np.empty(0) for _ in range(9)))
    cols = list(zip(*rows))
    return Clusters(np.asarray(cols[0], np.int32), list(cols[1]), np.asarray(cols[2], np.int8),
                    *(np.asarray(cols[i], np.float64) for i in range(3, 12)))


def clusters_from_config(young: Mapping, seed: int) -> Clusters:
    """The clusters of ``population.young`` (none when ``enabled`` is false)."""
    if young.get("enabled", True):
        return build_clusters(young, seed)
    return build_clusters({"complexes": [], "radcliffe_wave": {"enabled": False}}, seed)


# ------------------------------------------------------------------------------------------------
# zones of young structure (population.near_young_sigmas), where the field is thinned less
# ------------------------------------------------------------------------------------------------
def structure_zones(cl: Clusters, sigmas: float) -> tuple[np.ndarray, np.ndarray]:
    """Spheres around every association-kind entry (kind 0: complexes' distributed associations, literature
    associations, Radcliffe Wave clouds): centres [n, 3] (heliocentric x, y, z in pc, ``lbd_to_xyz``'s axes) and
    radii [n] = ``sigmas`` x the association's Gaussian sigma (pc). ``sigmas`` <= 0: no zones.

    The population stage thins the field less inside them (``population.thinning.near_young``), so that where
    young stars live the training mix holds old field stars at a weight ratio of ~10 to the young ones rather
    than 1000 (a young star's 0.3 % old proposals would otherwise outweigh the rest in the population
    posterior); ``model.prior_ratio.PriorRatio`` gets the same zones to know each proposal's weight class.
    The centres do not depend on the seed (only the clusters' positions do)."""
    assoc = (cl.kind == 0) if sigmas > 0 else np.zeros(len(cl), bool)
    centres = np.stack([cl.x[assoc], cl.y[assoc], cl.z[assoc]], axis=1).astype(np.float64).reshape(-1, 3)
    return centres, float(sigmas) * np.asarray(cl.scale_pc[assoc], np.float64)


def near_structure(x, y, z, centres, radii, pad=0.0):
    """True where heliocentric (x, y, z) (pc; numpy arrays or torch tensors, broadcast together) lies within
    ``radii`` + ``pad`` of a zone's centre (``structure_zones``); ``pad`` (pc, broadcast with x) widens every
    zone, e.g. by a volume element's size to find the elements a zone may touch. A loop over the zones
    (tens), vectorised over the points."""
    out = None
    for (cx, cy, cz), r in zip(np.asarray(centres, np.float64).reshape(-1, 3).tolist(),
                               np.asarray(radii, np.float64).reshape(-1).tolist()):
        inside = (x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2 < (r + pad) ** 2
        out = inside if out is None else out | inside
    if out is not None:
        return out
    if isinstance(x, np.ndarray) or np.isscalar(x):
        return np.zeros(np.broadcast(x, y, z, pad).shape, bool)
    import torch

    return torch.zeros(torch.broadcast_shapes(x.shape, y.shape, z.shape), dtype=torch.bool, device=x.device)


def near_young_zones(population: Mapping, seed: int = 0, clusters: Clusters | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The zones in which the population stage thins the field by ``thinning.near_young`` (resolved
    ``population`` section; ``clusters`` as built from it, or built here): ``structure_zones`` of its
    associations at ``near_young_sigmas``, none when that is 0 or when ``near_young`` is not above the field's
    fractions (then the zones change nothing). The one definition of the zones for the population stage and
    for the prior ratio of the model trained on it."""
    th = population["thinning"]
    sigmas = float(population.get("near_young_sigmas", 0.0))
    near = float(th.get("near_young", 0.0))
    if sigmas <= 0 or near <= min(float(th["field"]), float(th["young_field"])):
        return np.zeros((0, 3)), np.zeros(0)
    if clusters is None:
        clusters = clusters_from_config(population["young"], seed)
    return structure_zones(clusters, sigmas)


def cluster_stars(cl: Clusters, i: int, seed: int, imf, thinning: float = 1.0) -> dict[str, np.ndarray]:
    """All stars of cluster ``i`` (positions in heliocentric pc, log10 mass, log10 age, feh)."""
    cid = int(cl.cluster_id[i])
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(
        int(seed), spawn_key=(STAGES["population"], CLUSTER_KEY, cid))))
    n = int(rng.poisson(cl.mass_msun[i] * imf.number_per_msun * thinning))
    if cl.kind[i] == 0:
        off = rng.normal(0.0, cl.scale_pc[i], (n, 3))
        log_age = rng.uniform(cl.log10_age_lo[i], cl.log10_age_hi[i], n)
    else:
        a = cl.scale_pc[i]
        umax = 1000.0 / 101.0**1.5  # mass fraction of a Plummer sphere inside 10 a
        u = rng.uniform(1e-12, umax, n)
        r = a / np.sqrt(u ** (-2.0 / 3.0) - 1.0)
        v = rng.normal(size=(n, 3))
        off = v / np.linalg.norm(v, axis=1, keepdims=True) * r[:, None]
        log_age = cl.log10_age_lo[i] + rng.normal(0.0, cl.age_spread_dex[i], n) if cl.age_spread_dex[i] > 0 \
            else np.full(n, cl.log10_age_lo[i])
    logm = imf.sample_log10(rng, n)
    feh = cl.feh[i] + rng.normal(0.0, 0.05, n)
    u_disk = rng.random(n)
    u_rv = rng.standard_normal(n)
    u_pms = rng.random(n)
    return dict(x=cl.x[i] + off[:, 0], y=cl.y[i] + off[:, 1], z=cl.z[i] + off[:, 2], logm=logm,
                log_age=np.clip(log_age, 5.7, 10.0), feh=feh, u_disk=u_disk, u_rv=u_rv, u_pms=u_pms)
