"""Mollweide panels and dust figures an astronomer can read (issue 23, point 9): graticule labels outside the sky,
colour-bar ticks without float noise, the dust figures cut to the dust grid, candidates visible."""

import numpy as np
import pytest

from ysocensus.maps import dust_maps
from ysocensus.maps.figures import _log_ticks, mollweide, panel_figure, plain_number


@pytest.mark.parametrize("value, text", [(2.26991, "2.27"), (0.05, "0.05"), (1000.0, "1,000"), (20000.0, "20,000"),
                                         (0.0, "0"), (3.0, "3")])
def test_plain_number(value, text):
    assert plain_number(value) == text


@pytest.mark.parametrize("lo, hi", [(0.003, 300.0), (2.26991, 3.86557), (0.5, 50.0), (391.0, 7300.0)])
def test_colour_bar_ticks_read_plainly(lo, hi):
    ticks = _log_ticks(lo, hi)
    assert len(ticks) >= 2 and all(lo * 0.999 <= t <= hi * 1.001 for t in ticks)
    assert all(len(plain_number(t).replace(",", "").replace(".", "")) <= 5 for t in ticks)


def test_graticule_labels_lie_outside_the_sky():
    import matplotlib.pyplot as plt

    fig, rects = panel_figure(1, map_width_in=6.0)
    hmap = np.random.default_rng(0).uniform(1, 100, 12 * 4**2)
    ax = mollweide(fig, rects[0], hmap, title="t", unit="stars per deg$^2$", log=True)
    texts = [t for t in ax.texts if t.get_text()]
    assert len(texts) >= 10  # 5 latitudes, 7 longitudes, the axis title
    for t in texts:
        x, y = t.get_position()
        assert (x / 2.0) ** 2 + y**2 > 1.0, f"label {t.get_text()!r} at ({x:.2f}, {y:.2f}) is on the sky"
    labels = {t.get_text() for t in texts}
    assert {"b = 0°", "b = +30°", "0°", "120°", "240°", "180°"} <= labels
    cbar = fig.axes[-1]
    assert all("e+" not in t.get_text() for t in cbar.get_xticklabels())
    plt.close(fig)


def test_dust_figures_are_cut_to_the_dust_grid():
    grid = np.arange(-600.0, 600.1, 20.0)
    assert dust_maps._limits(grid, 1250.0) == (-600.0, 600.0)
    assert dust_maps._limits(np.arange(-1250.0, 1250.1, 10.0), 800.0) == (-800.0, 800.0)


def test_candidates_are_drawn_large_enough_to_see():
    assert dust_maps.dot_size(1) == 25.0 and dust_maps.dot_size(10**6) == 10.0
    assert 10.0 <= dust_maps.dot_size(20000) <= 25.0
