"""The observe figure (issue 23, point 9): reddening vectors from the simulator's own extinction, the tiles named."""

import pytest

from ysocensus.surveys.figures import _ranges, extinction_per_av


def test_reddening_vector_is_the_simulators_extinction(bc_grid):
    k = extinction_per_av(bc_grid)
    # A_band / A_V at R_V = 3.1 for a Sun-like star (stars.bolometric: G23 passband means)
    for band, value in {"phot_bp_mean_mag": 1.06, "phot_g_mean_mag": 0.84, "phot_rp_mean_mag": 0.63,
                        "j_m": 0.28, "ks_m": 0.11, "w1mpro": 0.05}.items():
        assert k[band] == pytest.approx(value, abs=0.02), band
    cool = extinction_per_av(bc_grid, teff=3500.0, logg=4.8)
    assert cool["phot_g_mean_mag"] < k["phot_g_mean_mag"]  # band-width effect: redder stars, smaller A_G / A_V


@pytest.mark.parametrize("tiles, text", [([0, 1, 2, 3], "0–3"), ([4, 5, 9], "4–5, 9"), ([7], "7"), ([], "")])
def test_tile_ranges(tiles, text):
    assert _ranges(tiles) == text
