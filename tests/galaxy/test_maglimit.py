"""The fast magnitude cut: solar magnitudes, extinction, and a clear error without the BC tables."""

import importlib.util

import numpy as np
import pytest

from ysocensus.galaxy.maglimit import MagnitudeLimit
from ysocensus.stars.tracks import StellarModelsMissing


def test_solar_absolute_magnitudes():
    """Sun: M_G = 4.67 (Casagrande & VandenBerg 2018), M_Ks = 3.27 (Willmer 2018)."""
    m = MagnitudeLimit({"gaia_g": 21.0, "tmass_ks": 15.0, "wise_w1": 17.5})
    mags = m.magnitudes(np.log10([5772.0]), [4.44], [0.0], [10.0], [0.0])
    assert mags["gaia_g"][0] == pytest.approx(4.67, abs=0.05)
    assert mags["tmass_ks"][0] == pytest.approx(3.27, abs=0.05)
    ext = m.magnitudes(np.log10([5772.0]), [4.44], [0.0], [10.0], [1.0])
    assert ext["gaia_g"][0] - mags["gaia_g"][0] == pytest.approx(0.773)


def test_visible_or_of_bands_and_margin():
    m = MagnitudeLimit({"gaia_g": 21.0, "tmass_ks": 15.0, "wise_w1": None, "margin_mag": 0.0})
    # an M dwarf at 1 kpc behind 20 mag of A_V: invisible in G, maybe in Ks; behind 200 mag: invisible
    keep = m.visible(np.log10([3500.0, 3500.0, np.nan]), [4.8, 4.8, np.nan], [-1.0, -1.0, np.nan],
                     [1000.0, 1000.0, 100.0], [0.0, 200.0, 0.0])
    assert keep.tolist() == [True, False, False]


def test_missing_bc_tables(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(StellarModelsMissing, match="astrolachesis"):
        MagnitudeLimit({"gaia_g": 21.0})
