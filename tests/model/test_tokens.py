import numpy as np
import pytest

from ysocensus import io
from ysocensus.model.tokens import (MAGNITUDE_TOKENS, N_THETA, Normalisation, OBSERVABLES, SKY_INDEX, theta_from_model,
                                    theta_to_model, tokenize, log_abs_det_model_per_phys)


def _frame(n=50, seed=0):
    rng = np.random.default_rng(seed)
    f = {"l": rng.uniform(0, 360, n), "b": rng.uniform(-90, 90, n),
         "log10_age_yr": rng.uniform(6, 10, n), "initial_mass_msun": 10 ** rng.uniform(-1, 1, n),
         "feh": rng.normal(0, 0.3, n), "distance_pc": rng.uniform(10, 1000, n), "av_mag": rng.uniform(0, 3, n)}
    for v in OBSERVABLES:
        val = rng.normal(12, 2, n) if v.transform == "identity" else rng.uniform(0.5, 5000, n)
        val[rng.random(n) < 0.3] = np.nan
        f[v.name] = val
        f[v.error] = rng.uniform(10, 100, n) if v.error_kind == "flux_over_error" else rng.uniform(0.01, 0.2, n)
    return f


def test_registry_follows_io():
    assert [v.name for v in OBSERVABLES] == list(io.MEASUREMENT_BITS)
    assert len(MAGNITUDE_TOKENS) == len(io.MAGNITUDES)


def test_tokenize_and_theta_roundtrip():
    f = _frame()
    stats = Normalisation.fit(f)
    arr = tokenize(f, stats)
    assert arr.values.shape == (50, SKY_INDEX + 1)
    assert arr.measured[:, :N_THETA].all() and arr.measured[:, SKY_INDEX].all()
    assert (arr.values[~arr.measured] == 0).all()
    np.testing.assert_allclose(arr.values[:, :N_THETA].mean(0), 0, atol=1e-5)
    theta = np.stack([f[p] for p in io.PARAMETERS], -1)
    z = theta_to_model(theta, stats)
    np.testing.assert_allclose(theta_from_model(z, stats), theta, rtol=1e-6)
    assert np.isfinite(log_abs_det_model_per_phys(theta, stats)).all()


def test_gaia_sigma_from_flux_over_error_as_excess_over_a_constant_star():
    """σ_G = 2.5/ln10 / (flux over error), read relative to the σ a non-variable star has at that G and ecliptic
    latitude: a constant star's own σ reads 0, ten times it reads ln 10, at any position."""
    from ysocensus.surveys.gaia import constant_star_sigma, sin_ecliptic_latitude
    from ysocensus.surveys.observe import galactic_to_icrs

    f = _frame(5)
    f["phot_g_mean_mag"] = np.array([8.0, 12.0, 15.0, 18.0, 20.0])
    ref = constant_star_sigma("g", f["phot_g_mean_mag"], sin_ecliptic_latitude(*galactic_to_icrs(f["l"], f["b"])))
    j = N_THETA + [v.name for v in OBSERVABLES].index("phot_g_mean_mag")
    for factor in (1.0, 10.0):
        f["phot_g_mean_flux_over_error"] = 2.5 / np.log(10) / (factor * ref)
        arr = tokenize(f, Normalisation())
        np.testing.assert_allclose(arr.logsig[:, j], np.log(factor), atol=1e-4)
    f["l"] = np.full(5, np.nan)  # no position: the sky-averaged scanning law
    f["phot_g_mean_flux_over_error"] = 2.5 / np.log(10) / constant_star_sigma("g", f["phot_g_mean_mag"])
    np.testing.assert_allclose(tokenize(f, Normalisation()).logsig[:, j], 0.0, atol=1e-4)


def test_normalisation_roundtrip(tmp_path):
    s = Normalisation.fit(_frame())
    s.save(tmp_path / "n.json")
    assert Normalisation.load(tmp_path / "n.json") == s
    with pytest.raises(ValueError):
        Normalisation.from_dict({**s.to_dict(), "x_mean": [0.0]})


def test_tokenize_reads_arrow_tables_and_dataframes_alike():
    import pandas as pd
    import pyarrow as pa
    f = _frame(20, seed=3)
    stats = Normalisation.fit(f)
    a = tokenize(f, stats)
    for other in (pa.table(f), pd.DataFrame(f)):
        b = tokenize(other, stats)
        np.testing.assert_array_equal(a.measured, b.measured)
        np.testing.assert_allclose(a.values, b.values, rtol=1e-6)
    assert Normalisation.fit(pa.table(f)) == stats


def test_a_faint_bp_is_marginalised_where_the_model_was_trained_so():
    """A G_BP fainter than ``bp_max_mag`` is dropped (neither measured nor searched: DROPPED, not a non-detection);
    brighter BP, a null BP and every other token are untouched; without the rule (None, the default of checkpoints
    from before it) BP is read at every magnitude. The rule survives the normalisation's JSON."""
    f = _frame(40, seed=7)
    f["phot_bp_mean_mag"] = np.where(np.arange(40) % 4 == 0, np.nan, np.linspace(18.0, 22.0, 40))
    stats = Normalisation.fit(f)
    plain = tokenize(f, stats)
    stats.bp_max_mag = 20.3
    ruled = tokenize(f, Normalisation.from_dict(stats.to_dict()))
    bp = N_THETA + [v.name for v in OBSERVABLES].index("phot_bp_mean_mag")
    faint = np.isfinite(f["phot_bp_mean_mag"]) & (f["phot_bp_mean_mag"] > 20.3)
    assert faint.sum() >= 10 and (plain.measured[faint, bp]).all()
    assert not ruled.measured[faint, bp].any() and not ruled.searched[faint, bp].any()
    assert (ruled.values[faint, bp] == 0).all() and (ruled.logsig[faint, bp] == 0).all()
    keep = np.ones_like(plain.measured)
    keep[faint, bp] = False
    np.testing.assert_array_equal(ruled.measured[keep], plain.measured[keep])
    np.testing.assert_array_equal(ruled.values[keep], plain.values[keep])
    assert ruled.searched[~faint, bp].all()
    assert "bp_max_mag" not in Normalisation.fit(f).to_dict()  # no rule: the old JSON, byte for byte


def test_extinction_is_inferred_in_a_shifted_log():
    """A_V = 0 (a dust map inside the Local Bubble) maps to a finite model value, every model value maps back to
    A_V ≥ −AV_SHIFT_MAG, and the Jacobian is the derivative of log10(A_V + shift) (checked numerically)."""
    import math

    import torch

    from ysocensus.model.tokens import AV_SHIFT_MAG, THETA, model_theta_to_operator_inputs

    f = _frame()
    f["av_mag"][:3] = 0.0
    stats = Normalisation.fit(f)
    theta = np.stack([f[p] for p in io.PARAMETERS], -1)
    z = theta_to_model(theta, stats)
    assert np.isfinite(z).all()
    np.testing.assert_allclose(theta_from_model(z, stats)[:, 4], f["av_mag"], atol=1e-9)
    wild = np.zeros((5, N_THETA))
    wild[:, 4] = [-30.0, -5.0, 0.0, 2.0, 5.0]
    back = theta_from_model(wild, stats)[:, 4]
    assert (back >= -AV_SHIFT_MAG).all() and np.all(np.diff(back) > 0)
    # log|dz/dθ| differs between two stars only through A_V here: compare with a finite difference
    a = np.array([[7.0, 1.0, 0.0, 100.0, 0.05], [7.0, 1.0, 0.0, 100.0, 0.05 + 1e-6]])
    dz = (theta_to_model(a, stats)[1, 4] - theta_to_model(a, stats)[0, 4]) / 1e-6
    np.testing.assert_allclose(math.exp(log_abs_det_model_per_phys(a, stats)[0]
                                        - log_abs_det_model_per_phys(a * [1, 1, 1, 1, 0], stats)[0]),
                               abs(dz) * AV_SHIFT_MAG * math.log(10) * stats.theta_std[4], rtol=1e-4)
    ops = model_theta_to_operator_inputs(torch.as_tensor(theta_to_model(theta, stats)), stats)
    np.testing.assert_allclose(ops["av_mag"].numpy(), f["av_mag"], atol=1e-9)
    assert THETA[4].shift == AV_SHIFT_MAG
