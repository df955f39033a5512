"""The brute-force grid posterior recovers a known star and contracts as surveys are added."""

from __future__ import annotations

import numpy as np
import pytest

from ysocensus import io
from ysocensus.baselines.grid import GalacticPrior, GridConfig, GridPosterior, ModelLibrary, Star


class LinearDust:
    """A_V = 1 mag per kpc in every direction."""

    def av(self, l_deg, b_deg, distance_pc):
        return np.asarray(distance_pc, float) * 1e-3


@pytest.fixture(scope="module")
def grid():
    from ysocensus.stars.bolometric import load_bc_grid
    from ysocensus.stars.tracks import IsochroneGrid

    iso = IsochroneGrid.build(feh_range=(-0.5, 0.5), feh_step=0.25, log10_age_range=(5.7, 10.2), log10_age_step=0.1,
                              log10_mass_range=(-1.2, 1.2), log10_mass_step=0.02)
    bc = load_bc_grid()
    cfg = GridConfig(feh_nodes=(-0.5, -0.25, 0.0, 0.25, 0.5), log_age_step=0.1, mass_stride=1, n_evolved=8,
                     n_distance_coarse=48, n_distance=96)
    prior = GalacticPrior({"distance_max_pc": 1000.0}, seed=0)
    lib = ModelLibrary.build(iso, bc, prior.imf_kind, prior.mass_range, cfg)
    return iso, bc, GridPosterior(lib, prior, LinearDust(), cfg)


TRUTH = dict(log10_age_yr=7.0, log10_mass=np.log10(0.8), feh=0.0, distance_pc=200.0)


def _star(iso, bc, bands, parallax=True, sigma=0.02):
    q = iso.interpolate(TRUTH["log10_age_yr"], TRUTH["log10_mass"], TRUTH["feh"])
    av = TRUTH["distance_pc"] * 1e-3
    mags = bc.magnitudes(10.0 ** np.atleast_1d(q["log10_teff"]), np.atleast_1d(q["logg"]),
                         np.atleast_1d(q["log10_lum_lsun"]), [TRUTH["feh"]], [av], [TRUTH["distance_pc"]])[0]
    all_bands = GridConfig().bands
    m = np.array([mags[io.MAGNITUDES.index(b)] if b in bands else np.nan for b in all_bands])
    s = np.where(np.isfinite(m), sigma, np.nan)
    plx = 1000.0 / TRUTH["distance_pc"] if parallax else np.nan
    return Star(180.0, 0.0, m, s, plx, 0.05 if parallax else np.nan)


def _width(x):
    q16, q84 = np.percentile(x, [16, 84])
    return 0.5 * (q84 - q16)


def test_recovers_a_known_star(grid):
    iso, bc, gp = grid
    s, diag = gp.sample(_star(iso, bc, GridConfig().bands), 400, np.random.default_rng(0))
    assert diag["status"] == "ok"
    assert s.shape == (400, 5) and np.isfinite(s).all()
    med = np.median(s, 0)
    assert abs(med[0] - TRUTH["log10_age_yr"]) < 0.2
    assert abs(np.log10(med[1]) - TRUTH["log10_mass"]) < 0.06
    assert abs(med[3] / TRUTH["distance_pc"] - 1) < 0.03
    assert abs(med[4] - 0.2) < 0.02                         # A_V follows the dust at the sampled distance
    # truth inside the central 95 % of each of age, mass, distance
    for j, t in ((0, TRUTH["log10_age_yr"]), (3, TRUTH["distance_pc"])):
        lo, hi = np.percentile(s[:, j], [2.5, 97.5])
        assert lo - 0.05 * abs(t) <= t <= hi + 0.05 * abs(t)


def test_posterior_contracts_with_more_surveys(grid):
    iso, bc, gp = grid
    gaia = ("phot_g_mean_mag", "phot_bp_mean_mag", "phot_rp_mean_mag")
    few, _ = gp.sample(_star(iso, bc, gaia, parallax=False), 400, np.random.default_rng(1))
    many, _ = gp.sample(_star(iso, bc, GridConfig().bands, parallax=True), 400, np.random.default_rng(1))
    assert _width(np.log10(many[:, 3])) < 0.5 * _width(np.log10(few[:, 3]))   # distance
    assert _width(many[:, 0]) < _width(few[:, 0])                             # age


def test_invalid_sky_position_gives_nan(grid):
    iso, bc, gp = grid
    star = _star(iso, bc, GridConfig().bands)
    star.l = np.nan
    s, diag = gp.sample(star, 10, np.random.default_rng(0))
    assert diag["status"] == "invalid_input" and np.isnan(s).all()


def test_prior_table_is_finite_somewhere_and_normalised_cells():
    from ysocensus.baselines.grid import _age_cell_mass_linear, _edges, default_age_nodes

    e = _edges(default_age_nodes())
    m = _age_cell_mass_linear(e, 0.0, 0.15)        # thin1: 0-150 Myr, uniform in linear age
    assert abs(m.sum() - 1.0) < 1e-9
    prior = GalacticPrior({"distance_max_pc": 500.0}, seed=0)
    d = np.linspace(10, 500, 50)
    P = prior.table(180.0, 0.0, d, np.full(50, 10.0), _edges(np.array([-0.5, 0.0, 0.5])), e)
    assert P.shape == (3, e.size - 1, 50) and np.isfinite(P).any()
