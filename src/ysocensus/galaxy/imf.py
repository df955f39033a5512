"""Initial mass functions (Kroupa 2001, Chabrier 2003) with fast inverse-CDF sampling.

Normalisation convention: a stellar mass density or cluster mass is the mass *formed* in stars of
0.08-100 Msun (``NORM_RANGE``), whatever mass range is sampled, so that lowering the sampled minimum
mass to the brown-dwarf regime adds brown dwarfs instead of removing stars.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NORM_RANGE = (0.08, 100.0)
IMF_KINDS = ("kroupa", "chabrier")


def dn_dlogm(m: np.ndarray, kind: str) -> np.ndarray:
    """dN/dlog10(m), unnormalised, continuous at the break masses."""
    m = np.asarray(m, np.float64)
    if kind == "kroupa":
        # xi(m) = dN/dm ∝ m^-0.3 (m<0.08), m^-1.3 (0.08-0.5), m^-2.3 (>0.5); dN/dlogm = m xi(m) ln10
        xi = np.where(m < 0.08, (m / 0.08) ** -0.3 * (0.08 / 0.5) ** -1.3,
                      np.where(m < 0.5, (m / 0.5) ** -1.3, (m / 0.5) ** -2.3))
        return m * xi
    if kind == "chabrier":
        # Chabrier (2003) single-star IMF: log-normal below 1 Msun (mc = 0.079, sigma = 0.69),
        # Salpeter-like dN/dlogm ∝ m^-1.3 above, continuous at 1 Msun
        ln = np.exp(-(np.log10(m) - np.log10(0.079)) ** 2 / (2 * 0.69**2))
        at1 = np.exp(-(np.log10(0.079)) ** 2 / (2 * 0.69**2))
        return np.where(m < 1.0, ln, at1 * m**-1.3)
    raise ValueError(f"population.imf.kind: {kind!r} is not one of {IMF_KINDS}")


@dataclass
class IMF:
    """An IMF sampled between ``mass_min`` and ``mass_max`` (Msun)."""

    kind: str = "kroupa"
    mass_min: float = 0.08
    mass_max: float = 100.0
    n_table: int = 65536

    def __post_init__(self):
        if self.kind not in IMF_KINDS:
            raise ValueError(f"population.imf.kind: {self.kind!r} is not one of {IMF_KINDS}")
        if not 0 < self.mass_min < self.mass_max:
            raise ValueError(f"population.imf: need 0 < mass_min < mass_max, got {self.mass_min}, {self.mass_max}")
        lo = np.log10(min(self.mass_min, NORM_RANGE[0]))
        hi = np.log10(max(self.mass_max, NORM_RANGE[1]))
        lg = np.linspace(lo, hi, 20001)
        f = dn_dlogm(10**lg, self.kind)
        dl = lg[1] - lg[0]

        def integral(y, a, b):
            sel = (lg >= np.log10(a) - 1e-12) & (lg <= np.log10(b) + 1e-12)
            return np.trapezoid(y[sel], dx=dl)

        n_sampled = integral(f, self.mass_min, self.mass_max)
        mass_norm = integral(f * 10**lg, *NORM_RANGE)
        #: stars (in the sampled mass range) per Msun formed in NORM_RANGE
        self.number_per_msun = float(n_sampled / mass_norm)
        sel = (lg >= np.log10(self.mass_min) - 1e-12) & (lg <= np.log10(self.mass_max) + 1e-12)
        lgs, fs = lg[sel], f[sel]
        cdf = np.concatenate([[0.0], np.cumsum(0.5 * (fs[1:] + fs[:-1]) * dl)])
        cdf /= cdf[-1]
        u = np.linspace(0, 1, self.n_table)
        self._u = u
        self._lgm = np.interp(u, cdf, lgs)
        #: mean mass of the sampled stars (Msun)
        self.mean_mass = float(np.trapezoid(fs * 10**lgs, dx=dl) / np.trapezoid(fs, dx=dl))

    def sample_log10(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """log10 initial masses of n stars."""
        return np.interp(rng.random(n), self._u, self._lgm)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return 10.0 ** self.sample_log10(rng, n)

    def fraction_between(self, m1: float, m2: float) -> float:
        """Fraction (by number) of sampled stars with m1 <= m < m2."""
        a, b = np.log10([m1, m2])
        return float(np.interp(b, self._lgm, self._u) - np.interp(a, self._lgm, self._u))
