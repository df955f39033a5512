"""Smooth Galactic components with the Besançon 2003 / Galaxia parameters (Robin et al. 2003).

Coordinates: heliocentric Galactic Cartesian (x to l=0, y to l=90, z to the north Galactic pole), in pc.
The Sun is at Galactocentric radius R_sun and height z_sun above the mid-plane. Every density law is
normalised so that ``rho_sun`` is the density at (R_sun, z = 0), i.e. the local *mid-plane* density,
in Msun pc^-3 of stars formed (0.08-100 Msun, see ``imf.NORM_RANGE``).

Thin disk, 7 age bins (Robin et al. 2003, Table 3; Einasto laws, a^2 = R^2 + z^2/eps^2 in kpc):
  bin 1 (0-0.15 Gyr): exp(-a^2/5^2) - exp(-a^2/3^2)
  bins 2-7:           exp(-sqrt(0.25 + a^2/2.53^2)) - exp(-sqrt(0.25 + a^2/1.32^2))
  rho_sun = 4.0, 7.9, 6.2, 4.0, 5.8, 4.9, 6.6 (x 1e-3), eps = 0.014, 0.0268, 0.0375, 0.0551, 0.0696,
  0.0785, 0.0791; <[Fe/H]> = 0.01, 0.03, 0.03, 0.01, -0.07, -0.14, -0.37 with dispersion 0.12, 0.12, 0.10,
  0.11, 0.18, 0.17, 0.20 and a radial gradient of -0.07 dex/kpc; constant star formation within each bin.
Thick disk: exponential, h_R = 2.5 kpc, h_z = 0.8 kpc, rho_sun = 1.34e-3, 11 Gyr, [Fe/H] = -0.78 +- 0.30.
Halo: rho ∝ a^-2.44 (a^2 = R^2 + z^2/0.76^2, core 0.5 kpc), rho_sun = 9.3e-6, 14 Gyr, [Fe/H] = -1.78 +- 0.50.
Bulge: triaxial Gaussian exp(-r_s^2/2), r_s^2 = (X/1.59)^2 + (Y/0.424)^2 + (Z/0.424)^2 kpc, major axis at
  78.9 deg from the direction perpendicular to the Sun-centre line (11.1 deg from that line, near end at
  positive l), central density rho_0 (config; default 2.0 Msun pc^-3, i.e. ~9e9 Msun), 10 Gyr, [Fe/H] 0.0 +- 0.4.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

R_SUN_PC = 8200.0
Z_SUN_PC = 20.0

THIN_AGE_BINS_GYR = ((0.0, 0.15), (0.15, 1.0), (1.0, 2.0), (2.0, 3.0), (3.0, 5.0), (5.0, 7.0), (7.0, 10.0))
THIN_RHO = (4.0e-3, 7.9e-3, 6.2e-3, 4.0e-3, 5.8e-3, 4.9e-3, 6.6e-3)
THIN_EPS = (0.014, 0.0268, 0.0375, 0.0551, 0.0696, 0.0785, 0.0791)
THIN_FEH = (0.01, 0.03, 0.03, 0.01, -0.07, -0.14, -0.37)
THIN_FEH_SIGMA = (0.12, 0.12, 0.10, 0.11, 0.18, 0.17, 0.20)
FEH_GRADIENT_DEX_PER_KPC = -0.07


@dataclass(frozen=True)
class Component:
    """A smooth component: density law, age range (Gyr) and metallicity distribution."""

    name: str
    rho_sun: float           # Msun pc^-3 at (R_sun, z=0), or central density for the bulge
    age_gyr: tuple[float, float]
    feh_mean: float
    feh_sigma: float
    feh_gradient: float = 0.0  # dex per kpc of Galactocentric radius
    law: str = "thin"        # thin1, thin, thick, halo, bulge
    eps: float = 0.0

    def shape(self, R_kpc: np.ndarray, Z_kpc: np.ndarray, X_kpc=None, Y_kpc=None) -> np.ndarray:
        """Unnormalised density law at Galactocentric cylindrical (R, Z) (and X, Y for the bulge)."""
        if self.law in ("thin1", "thin"):
            a2 = R_kpc**2 + (Z_kpc / self.eps) ** 2
            if self.law == "thin1":
                return np.exp(-a2 / 25.0) - np.exp(-a2 / 9.0)
            return np.exp(-np.sqrt(0.25 + a2 / 2.53**2)) - np.exp(-np.sqrt(0.25 + a2 / 1.32**2))
        if self.law == "thick":
            return np.exp(-R_kpc / 2.5 - np.abs(Z_kpc) / 0.8)
        if self.law == "halo":
            a = np.sqrt(R_kpc**2 + (Z_kpc / 0.76) ** 2)
            return np.maximum(a, 0.5) ** -2.44
        if self.law == "bulge":
            ang = np.deg2rad(90.0 - 78.9)
            # major axis along (cos, -sin): its near end (X < 0) lies at positive l (Y > 0)
            xb = X_kpc * np.cos(ang) - Y_kpc * np.sin(ang)
            yb = X_kpc * np.sin(ang) + Y_kpc * np.cos(ang)
            return np.exp(-0.5 * ((xb / 1.59) ** 2 + (yb / 0.424) ** 2 + (Z_kpc / 0.424) ** 2))
        raise ValueError(f"unknown density law {self.law!r}")


def smooth_components(bulge_rho0: float = 2.0) -> dict[str, Component]:
    """The smooth components by name (thin1..thin7, thick, halo, bulge)."""
    comps: dict[str, Component] = {}
    for i in range(7):
        comps[f"thin{i + 1}"] = Component(
            f"thin{i + 1}", THIN_RHO[i], THIN_AGE_BINS_GYR[i], THIN_FEH[i], THIN_FEH_SIGMA[i],
            FEH_GRADIENT_DEX_PER_KPC, "thin1" if i == 0 else "thin", THIN_EPS[i])
    comps["thick"] = Component("thick", 1.34e-3, (10.5, 11.5), -0.78, 0.30, law="thick")
    comps["halo"] = Component("halo", 9.3e-6, (13.5, 14.0), -1.78, 0.50, law="halo")
    comps["bulge"] = Component("bulge", bulge_rho0, (9.5, 10.5), 0.0, 0.40, law="bulge")
    return comps


class Galaxy:
    """Density of the smooth components in heliocentric Galactic coordinates (pc)."""

    def __init__(self, components: dict[str, Component], r_sun_pc: float = R_SUN_PC, z_sun_pc: float = Z_SUN_PC):
        self.components = components
        self.r_sun = float(r_sun_pc)
        self.z_sun = float(z_sun_pc)
        r0 = self.r_sun / 1000.0
        self._norm = {}
        for name, c in components.items():
            if c.law == "bulge":
                self._norm[name] = 1.0
            else:
                self._norm[name] = float(c.shape(np.array(r0), np.array(0.0), np.array(-r0), np.array(0.0)))

    def galactocentric_kpc(self, x_pc, y_pc, z_pc):
        X = (np.asarray(x_pc) - self.r_sun) / 1000.0  # Galactic centre at X = 0, Sun at X = -R_sun
        Y = np.asarray(y_pc) / 1000.0
        Z = (np.asarray(z_pc) + self.z_sun) / 1000.0
        return X, Y, Z, np.hypot(X, Y)

    def density(self, name: str, x_pc, y_pc, z_pc) -> np.ndarray:
        """Mass density (Msun pc^-3 formed) of one component at heliocentric positions."""
        c = self.components[name]
        X, Y, Z, R = self.galactocentric_kpc(x_pc, y_pc, z_pc)
        return c.rho_sun * c.shape(R, Z, X, Y) / self._norm[name]

    def feh_mean(self, name: str, x_pc, y_pc) -> np.ndarray:
        c = self.components[name]
        if c.feh_gradient == 0.0:
            return np.full(np.shape(x_pc), c.feh_mean)
        X = (np.asarray(x_pc) - self.r_sun) / 1000.0
        R = np.hypot(X, np.asarray(y_pc) / 1000.0)
        return c.feh_mean + c.feh_gradient * (R - self.r_sun / 1000.0)
