"""Surveys: Gaia, 2MASS, WISE, LAMOST error models, footprints and selection; the observe driver; the torch measurement operator."""
