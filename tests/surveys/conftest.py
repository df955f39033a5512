"""Fixtures of the observe-stage tests: synthetic populations (the BC and isochrone grids are in tests/conftest.py)."""

from __future__ import annotations

import pytest

from ysocensus.surveys.synthetic import synthetic_population


@pytest.fixture(scope="session")
def population(isochrones):
    return synthetic_population(isochrones, 20000)


@pytest.fixture
def make_population(isochrones):
    return lambda **kw: synthetic_population(isochrones, **kw)
