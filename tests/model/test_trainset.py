"""Training-set helpers that need no Lightning."""
import numpy as np

from ysocensus import io
from ysocensus.model.trainset import rare_observation


def test_rare_observation_selects_on_x_only():
    n = 6
    cols = {"source_id": np.arange(n), "phot_g_mean_mag": np.array([10.0, 13.9, 14.0, 18.0, np.nan, 18.0])}
    for lab in io.LAMOST_LABELS:
        cols[lab] = np.full(n, np.nan)
    cols["teff_lamost"][3] = 5200.0  # a LAMOST spectrum of a faint star
    keep = rare_observation(cols, 14.0)
    # bright (G < 14) or spectroscopic; G = 14 exactly, no G and faint without LAMOST are not rare
    assert keep.tolist() == [True, True, False, True, False, False]
