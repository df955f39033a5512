"""Fixtures of the observe-stage tests: the BC grid, the isochrone grid, synthetic populations."""

from __future__ import annotations

import pytest

from ysocensus.surveys.synthetic import synthetic_population


@pytest.fixture(scope="session")
def bc_grid():
    from ysocensus.stars.bolometric import load_bc_grid

    return load_bc_grid()


@pytest.fixture(scope="session")
def isochrones():
    from ysocensus.stars.tracks import IsochroneGrid

    return IsochroneGrid.build()


@pytest.fixture(scope="session")
def population(isochrones):
    return synthetic_population(isochrones, 20000)


@pytest.fixture
def make_population(isochrones):
    return lambda **kw: synthetic_population(isochrones, **kw)
