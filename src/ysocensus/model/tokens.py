"""The variable registry of the model, its transforms, normalisation statistics and token tensors.

Every variable of the joint p(θ, x) is one token. The registry is built from ``ysocensus.io`` (the single
source of truth for column names):

- θ (``THETA``): the inferred parameters ``io.PARAMETERS`` in model space: log10 age, log10 initial
  mass, [Fe/H], log10 distance, log10(A_V + ``AV_SHIFT_MAG``), each standardised with the training-set mean and
  standard deviation.
- x (``OBSERVABLES``): Gaia parallax, the ten magnitudes of ``io.MAGNITUDES`` and the LAMOST labels;
  each carries its value and its uncertainty (log σ in model space), standardised. Gaia's G, BP and RP carry
  log σ relative to a constant star's σ at the same magnitude and ecliptic latitude
  (``surveys.gaia.constant_star_sigma``): the archive's mean-flux error holds the star's variability (σ_var / √n),
  a sign of youth, as a small excess over a curve that spans two decades in G; read raw, that excess is a
  fraction of the standardised σ's spread, read as an excess it is the whole of it. The row's values and position
  give the curve, so nothing is added or lost.
- the sky position (l, b), one token that is always observed (sin/cos features), since the prior depends
  on direction.

Each token is in one of five states (``LATENT``, ``OBSERVED``, ``VALUE_ONLY``, ``MISSING``, ``DROPPED``).
``MISSING`` means "the survey searched and did not measure it" (not at random: detection limits, footprints);
missing tokens take no part in attention or in the loss, but which variables are missing is told to the
model through the always-observed sky token (a learned embedding per missing variable is added to it).
``DROPPED`` means "not conditioned on" (marginalised): a survey the catalog was never cross-matched with, a
column it does not carry, or a condition mask that answers p(θ | a subset of x); a dropped token is invisible
and tells nothing. ``VALUE_ONLY`` is observed without its uncertainty (literature tables rarely carry Gaia
flux errors): the value is read, its log σ is not (the network learns the precision a value of that kind
typically has from the training mix, where every survey's σ is withheld at random), so a missing σ is never
invented and then read as information.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import torch

from ysocensus import io
from ysocensus.surveys.gaia import BANDS as PYGAIA_BANDS
from ysocensus.surveys.gaia import constant_star_sigma, sin_ecliptic_latitude, unreliable_bp

LATENT, OBSERVED, MISSING, DROPPED, VALUE_ONLY = 0, 1, 2, 3, 4
STATE_NAMES = ("latent", "observed", "missing", "dropped", "value_only")
#: batch column of per-star "searched" bits (io.MEASUREMENT_BITS order): a measurement that is null and not
#: searched is marginalised (DROPPED) instead of read as a non-detection (MISSING); absent = all searched
SEARCHED_COLUMN = io.SEARCHED_MASK


def is_observed(state):
    """Tokens conditioned on (with or without their uncertainty)."""
    return (state == OBSERVED) | (state == VALUE_ONLY)

_GAIA_SIGMA = 2.5 / math.log(10.0)  # σ_mag = 2.5/ln10 / (flux / flux error)


@dataclass(frozen=True)
class Variable:
    """One token's variable.

    ``transform`` maps the physical value to model space before standardisation: ``identity``,
    ``log10`` (log10(v + shift)) or ``asinh`` (asinh(v / scale), robust to the long tail of parallaxes and line
    widths).
    ``error`` names the uncertainty column; ``error_kind`` is ``abs`` (σ in the value's unit) or
    ``flux_over_error`` (Gaia: σ_mag = 2.5/ln10 / flux_over_error).
    """

    name: str
    transform: str = "identity"
    scale: float = 1.0
    error: str | None = None
    error_kind: str = "abs"
    survey: str = ""
    shift: float = 0.0


#: A_V is inferred as log10(A_V + AV_SHIFT_MAG) [mag]. Extinction is bounded at 0 and most nearby stars lie within
#: a few tenths of a magnitude of that bound; in linear A_V the prior has a hard edge at 0 that a continuous flow
#: can only smear, widening the posterior of low-extinction stars (over-coverage) and putting draws below 0. In
#: the shifted log the edge becomes a soft tail (density × (A_V + shift)), and no draw falls below −shift. The
#: shift is well under the photometric precision of A_V (~0.03–0.1 mag), and keeps a dust map that returns
#: exactly 0 (real 3D maps inside the Local Bubble) finite.
AV_SHIFT_MAG = 0.01

THETA: tuple[Variable, ...] = (
    Variable("log10_age_yr"),
    Variable("initial_mass_msun", "log10"),
    Variable("feh"),
    Variable("distance_pc", "log10"),
    Variable("av_mag", "log10", shift=AV_SHIFT_MAG),
)
assert tuple(v.name for v in THETA) == io.PARAMETERS

OBSERVABLES: tuple[Variable, ...] = (
    (Variable("parallax", "asinh", 1.0, "parallax_error", "abs", "gaia"),)
    + tuple(Variable(m, "identity", 1.0, e, "flux_over_error", "gaia")
            for m, e in zip(io.GAIA_BANDS, io.GAIA_FLUX_OVER_ERROR))
    + tuple(Variable(m, "identity", 1.0, e, "abs", "tmass") for m, e in zip(io.TMASS_BANDS, io.TMASS_ERRORS))
    + tuple(Variable(m, "identity", 1.0, e, "abs", "wise") for m, e in zip(io.WISE_BANDS, io.WISE_ERRORS))
    + (Variable("teff_lamost", "log10", 1.0, "teff_err_lamost", "abs", "lamost"),
       Variable("logg_lamost", "identity", 1.0, "logg_err_lamost", "abs", "lamost"),
       Variable("feh_lamost", "identity", 1.0, "feh_err_lamost", "abs", "lamost"),
       Variable("ewli", "asinh", 0.1, "ewli_err", "abs", "lamost"),
       Variable("ewha", "asinh", 5.0, "ewha_err", "abs", "lamost"))
)
assert tuple(v.name for v in OBSERVABLES) == io.MEASUREMENT_BITS

N_THETA = len(THETA)
N_X = len(OBSERVABLES)
SKY_INDEX = N_THETA + N_X  # the (l, b) token, always observed
N_TOKENS = SKY_INDEX + 1
VARIABLE_NAMES = tuple(v.name for v in THETA) + tuple(v.name for v in OBSERVABLES) + ("sky",)
#: token index of each magnitude of io.MAGNITUDES (order of the measurement operator's output)
MAGNITUDE_TOKENS = tuple(N_THETA + io.MEASUREMENT_BITS.index(m) for m in io.MAGNITUDES)
PARALLAX_TOKEN = N_THETA + io.MEASUREMENT_BITS.index("parallax")
#: the Gaia G_BP token (``unreliable_bp``)
BP_TOKEN = N_THETA + io.MEASUREMENT_BITS.index(io.GAIA_BANDS[1])
#: token indices of each survey's variables
SURVEY_TOKENS = {s: tuple(N_THETA + i for i, v in enumerate(OBSERVABLES) if v.survey == s) for s in io.SURVEYS}
#: columns of the catalog the model reads
CATALOG_COLUMNS = ("source_id", "l", "b") + tuple(
    c for v in OBSERVABLES for c in (v.name, v.error)) + ("survey_mask",)


# ---------------------------------------------------------------------------------------------------
# transforms
# ---------------------------------------------------------------------------------------------------
def _forward(v: Variable, x):
    lib = torch if isinstance(x, torch.Tensor) else np
    if v.transform == "identity":
        return x
    if v.transform == "log10":
        return lib.log10(x + v.shift)
    if v.transform == "asinh":
        return lib.arcsinh(x / v.scale) if lib is np else torch.asinh(x / v.scale)
    raise ValueError(f"unknown transform {v.transform!r} of {v.name}")


def _inverse(v: Variable, y):
    lib = torch if isinstance(y, torch.Tensor) else np
    if v.transform == "identity":
        return y
    if v.transform == "log10":
        return 10.0 ** y - v.shift
    if v.transform == "asinh":
        return v.scale * lib.sinh(y)
    raise ValueError(f"unknown transform {v.transform!r} of {v.name}")


def _derivative(v: Variable, x):
    """|dT/dx| at x (to carry σ into model space and for log-density Jacobians)."""
    lib = torch if isinstance(x, torch.Tensor) else np
    if v.transform == "identity":
        return lib.ones_like(x)
    if v.transform == "log10":
        return 1.0 / (lib.abs(x + v.shift) * math.log(10.0))
    if v.transform == "asinh":
        return 1.0 / lib.sqrt(x * x + v.scale * v.scale)
    raise ValueError(f"unknown transform {v.transform!r} of {v.name}")


# ---------------------------------------------------------------------------------------------------
# normalisation statistics
# ---------------------------------------------------------------------------------------------------
#: the statistics of ``Normalisation`` (its other field is the BP rule)
STAT_FIELDS = ("theta_mean", "theta_std", "x_mean", "x_std", "logsig_mean", "logsig_std")


@dataclass
class Normalisation:
    """Mean and standard deviation of every variable in model space (θ, x values, x log σ)."""

    theta_mean: list[float] = field(default_factory=lambda: [0.0] * N_THETA)
    theta_std: list[float] = field(default_factory=lambda: [1.0] * N_THETA)
    x_mean: list[float] = field(default_factory=lambda: [0.0] * N_X)
    x_std: list[float] = field(default_factory=lambda: [1.0] * N_X)
    logsig_mean: list[float] = field(default_factory=lambda: [0.0] * N_X)
    logsig_std: list[float] = field(default_factory=lambda: [1.0] * N_X)
    #: G_BP fainter than this (mag) is not conditioned on (``unreliable_bp``; config ``train.training.bp_max_mag``);
    #: None: read at every magnitude. Kept with the statistics so that every reader of the model's tokens applies
    #: the rule its training applied
    bp_max_mag: float | None = None

    def to_dict(self) -> dict:
        out = {k: [float(x) for x in getattr(self, k)] for k in STAT_FIELDS}
        if self.bp_max_mag is not None:
            out["bp_max_mag"] = float(self.bp_max_mag)
        return out

    @classmethod
    def from_dict(cls, d: Mapping) -> "Normalisation":
        bp = d.get("bp_max_mag")
        out = cls(**{k: [float(x) for x in d[k]] for k in STAT_FIELDS}, bp_max_mag=None if bp is None else float(bp))
        for k, n in (("theta", N_THETA), ("x", N_X), ("logsig", N_X)):
            if len(getattr(out, f"{k}_mean")) != n or len(getattr(out, f"{k}_std")) != n:
                raise ValueError(f"normalisation stats: {k} has the wrong length (registry has changed?)")
        return out

    def save(self, path) -> None:
        io.write_json(self.to_dict(), path)

    @classmethod
    def load(cls, path) -> "Normalisation":
        with open(path) as f:
            return cls.from_dict(json.load(f))

    @classmethod
    def fit(cls, frame: Mapping[str, np.ndarray], weights: np.ndarray | None = None) -> "Normalisation":
        """Statistics from a table with the catalog columns and the truth θ columns (nulls ignored)."""
        raw = _raw_arrays(frame)
        w = None if weights is None else np.asarray(weights, float)

        def stats(a):
            ok = np.isfinite(a)
            if not ok.any():
                return 0.0, 1.0
            ww = np.ones(ok.sum()) if w is None else w[ok]
            m = float(np.average(a[ok], weights=ww))
            s = float(np.sqrt(np.average((a[ok] - m) ** 2, weights=ww)))
            return m, max(s, 1e-3)

        th = np.stack([stats(raw["theta"][:, i]) for i in range(N_THETA)])
        xv = np.stack([stats(raw["x"][:, i]) for i in range(N_X)])
        ls = np.stack([stats(raw["logsig"][:, i]) for i in range(N_X)])
        return cls(th[:, 0].tolist(), th[:, 1].tolist(), xv[:, 0].tolist(), xv[:, 1].tolist(),
                   ls[:, 0].tolist(), ls[:, 1].tolist())

    # tensors (cached per device/dtype by the caller when it matters)
    def theta_tensors(self, like: torch.Tensor):
        return (torch.as_tensor(self.theta_mean, dtype=like.dtype, device=like.device),
                torch.as_tensor(self.theta_std, dtype=like.dtype, device=like.device))


def fingerprint_dict(d: Mapping) -> str:
    """A short stable hash of a JSON-serialisable mapping (config and stats fingerprints)."""
    import hashlib
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=float).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------------
# θ in physical units <-> standardised model space
# ---------------------------------------------------------------------------------------------------
def theta_to_model(theta, stats: Normalisation):
    """Physical θ [..., 5] (io.PARAMETERS order) → standardised model space."""
    is_t = isinstance(theta, torch.Tensor)
    cols = [_forward(v, theta[..., i]) for i, v in enumerate(THETA)]
    z = torch.stack(cols, -1) if is_t else np.stack(cols, -1)
    if is_t:
        m, s = stats.theta_tensors(z)
    else:
        m, s = np.asarray(stats.theta_mean), np.asarray(stats.theta_std)
    return (z - m) / s


def theta_from_model(z, stats: Normalisation):
    """Standardised model space [..., 5] → physical θ (io.PARAMETERS order)."""
    is_t = isinstance(z, torch.Tensor)
    if is_t:
        m, s = stats.theta_tensors(z)
    else:
        m, s = np.asarray(stats.theta_mean), np.asarray(stats.theta_std)
    y = z * s + m
    cols = [_inverse(v, y[..., i]) for i, v in enumerate(THETA)]
    return torch.stack(cols, -1) if is_t else np.stack(cols, -1)


def log_abs_det_model_per_phys(theta, stats: Normalisation):
    """log |d z / d θ_phys| summed over parameters (log p_phys = log p_model + this)."""
    is_t = isinstance(theta, torch.Tensor)
    lib = torch if is_t else np
    out = 0.0
    for i, v in enumerate(THETA):
        out = out + lib.log(_derivative(v, theta[..., i])) - math.log(stats.theta_std[i])
    return out


def model_theta_to_operator_inputs(z: torch.Tensor, stats: Normalisation) -> dict[str, torch.Tensor]:
    """Standardised θ → the measurement operator's keyword arguments (log10 mass, linear distance)."""
    m, s = stats.theta_tensors(z)
    y = z * s + m
    return {"log10_age_yr": y[..., 0], "log10_mass": y[..., 1], "feh": y[..., 2],
            "distance_pc": _inverse(THETA[3], y[..., 3]), "av_mag": _inverse(THETA[4], y[..., 4])}


# ---------------------------------------------------------------------------------------------------
# catalog rows → token arrays
# ---------------------------------------------------------------------------------------------------
def _sin_ecliptic_latitude(frame, n: int) -> np.ndarray:
    """sin β of each row from its Galactic (l, b) (NaN where absent: ``constant_star_sigma`` then takes the sky
    average)."""
    from ysocensus.surveys.observe import galactic_to_icrs

    ra, dec = galactic_to_icrs(io.float_column(frame, "l", n), io.float_column(frame, "b", n))
    return sin_ecliptic_latitude(ra, dec)


def _raw_arrays(frame) -> dict[str, np.ndarray]:
    """Model-space (unstandardised) θ, x values and x log σ; NaN where absent."""
    n = io.n_rows(frame)
    with np.errstate(all="ignore"):
        theta = np.stack([_forward(v, io.float_column(frame, v.name, n)) for v in THETA], -1) if n else np.zeros((0, N_THETA))
        xs, ls = [], []
        sin_beta = None
        for v in OBSERVABLES:
            val = io.float_column(frame, v.name, n)
            err = io.float_column(frame, v.error, n)
            if v.error_kind == "flux_over_error":
                err = _GAIA_SIGMA / err
            sig = err * _derivative(v, val)
            y = _forward(v, val)
            ok = np.isfinite(y) & np.isfinite(sig) & (sig > 0)
            xs.append(np.where(np.isfinite(y), y, np.nan))  # a value without a usable σ is still a value
            log_sig = np.log(np.where(ok, sig, 1.0))
            if v.error_kind == "flux_over_error":  # Gaia photometry: the σ excess over a constant star's
                sin_beta = _sin_ecliptic_latitude(frame, n) if sin_beta is None else sin_beta
                band = PYGAIA_BANDS[io.GAIA_BANDS.index(v.name)]
                log_sig = log_sig - np.log(constant_star_sigma(band, np.where(ok, val, 15.0), sin_beta))
            ls.append(np.where(ok, log_sig, np.nan))
        x = np.stack(xs, -1) if n else np.zeros((0, N_X))
        logsig = np.stack(ls, -1) if n else np.zeros((0, N_X))
    return {"theta": theta, "x": x, "logsig": logsig}


@dataclass
class TokenArrays:
    """Per-star token arrays (numpy or torch), standardised.

    ``values`` [B, N_TOKENS] (0 where unknown), ``logsig`` [B, N_TOKENS] (0 for θ and the sky, and where
    the σ is not given), ``sky`` [B, 4] (sin l, cos l, sin b, cos b), ``measured`` [B, N_TOKENS] bool (θ: truth
    known; x: the survey measured it; sky: always), ``weight`` [B] loss weights (1 if absent),
    ``sigma_known`` [B, N_TOKENS] bool (a measured x came with its σ; None: all), ``searched`` [B, N_TOKENS]
    bool (an unmeasured x was searched for: a non-detection, not a gap in the catalog; None: all).
    """

    values: np.ndarray
    logsig: np.ndarray
    sky: np.ndarray
    measured: np.ndarray
    weight: np.ndarray
    sky_ok: np.ndarray | None = None  # [B] bool: (l, b) finite (the sky features are 0 where not)
    sigma_known: np.ndarray | None = None
    searched: np.ndarray | None = None

    def __len__(self):
        return len(self.values)

    def torch(self, device=None) -> dict[str, torch.Tensor]:
        out = {k: torch.as_tensor(getattr(self, k), device=device) for k in
               ("values", "logsig", "sky", "measured", "weight")}
        if self.searched is not None:
            out["searched"] = torch.as_tensor(self.searched, device=device)
        return out

    def subset(self, idx) -> "TokenArrays":
        opt = (None if getattr(self, k) is None else getattr(self, k)[idx] for k in ("sky_ok", "sigma_known", "searched"))
        return TokenArrays(*(getattr(self, k)[idx] for k in ("values", "logsig", "sky", "measured", "weight")), *opt)


def tokenize(frame, stats: Normalisation, weight_column: str | None = None) -> TokenArrays:
    """Catalog rows (plus truth θ columns where present) → standardised token arrays.

    ``frame`` is a pyarrow table, a pandas DataFrame or a dict of arrays with the catalog columns;
    the truth columns ``io.PARAMETERS`` are optional (absent at inference). A value whose σ is null is
    measured with ``sigma_known`` False; ``SEARCHED_COLUMN`` (if present) gives ``searched``.
    """
    n = io.n_rows(frame)
    raw = _raw_arrays(frame)
    values = np.zeros((n, N_TOKENS), np.float32)
    logsig = np.zeros((n, N_TOKENS), np.float32)
    measured = np.zeros((n, N_TOKENS), bool)
    th = (raw["theta"] - np.asarray(stats.theta_mean)) / np.asarray(stats.theta_std)
    ok = np.isfinite(th)
    values[:, :N_THETA] = np.where(ok, th, 0.0)
    measured[:, :N_THETA] = ok
    xv = (raw["x"] - np.asarray(stats.x_mean)) / np.asarray(stats.x_std)
    lv = (raw["logsig"] - np.asarray(stats.logsig_mean)) / np.asarray(stats.logsig_std)
    ok = np.isfinite(xv)
    sig_ok = ok & np.isfinite(lv)
    values[:, N_THETA:SKY_INDEX] = np.where(ok, xv, 0.0)
    logsig[:, N_THETA:SKY_INDEX] = np.where(sig_ok, lv, 0.0)
    measured[:, N_THETA:SKY_INDEX] = ok
    measured[:, SKY_INDEX] = True
    sigma_known = measured.copy()
    sigma_known[:, N_THETA:SKY_INDEX] = sig_ok
    searched = np.ones((n, N_TOKENS), bool)
    bits = io.float_column(frame, SEARCHED_COLUMN, n)
    if np.isfinite(bits).any():
        bits = np.where(np.isfinite(bits), bits, -1).astype(np.int64)  # null: searched everywhere
        searched[:, N_THETA:SKY_INDEX] = (bits[:, None] >> np.arange(N_X)[None, :]) & 1 == 1
    if stats.bp_max_mag is not None:  # a faint BP is marginalised (DROPPED): neither a value nor a non-detection
        faint = unreliable_bp(io.float_column(frame, io.GAIA_BANDS[1], n), stats.bp_max_mag)
        for a in (measured, sigma_known, searched):
            a[:, BP_TOKEN] &= ~faint
        values[:, BP_TOKEN] = np.where(faint, 0.0, values[:, BP_TOKEN])
        logsig[:, BP_TOKEN] = np.where(faint, 0.0, logsig[:, BP_TOKEN])
    l = np.deg2rad(io.float_column(frame, "l", n))
    b = np.deg2rad(io.float_column(frame, "b", n))
    sky = np.stack([np.sin(l), np.cos(l), np.sin(b), np.cos(b)], -1).astype(np.float32)
    sky_ok = np.isfinite(sky).all(1)
    sky = np.nan_to_num(sky)
    w = io.float_column(frame, weight_column, n) if weight_column else np.ones(n)
    return TokenArrays(values, logsig, sky, measured, np.asarray(w, np.float32), sky_ok, sigma_known, searched)


def observed_magnitudes(frame) -> dict[str, np.ndarray]:
    """Observed magnitudes and σ [B, 10] (io.MAGNITUDES order), parallax and its σ; NaN where missing."""
    n = io.n_rows(frame)
    mags, sig = [], []
    for m in io.MAGNITUDES:
        v = next(o for o in OBSERVABLES if o.name == m)
        mags.append(io.float_column(frame, m, n))
        e = io.float_column(frame, v.error, n)
        sig.append(_GAIA_SIGMA / e if v.error_kind == "flux_over_error" else e)
    return {"mags": np.stack(mags, -1).astype(np.float32), "mag_sigma": np.stack(sig, -1).astype(np.float32),
            "parallax": io.float_column(frame, "parallax", n).astype(np.float32),
            "parallax_sigma": io.float_column(frame, "parallax_error", n).astype(np.float32)}


def survey_flags(measured: np.ndarray) -> np.ndarray:
    """[B, 4] bool: which of io.SURVEYS measured anything (from the token ``measured`` array)."""
    return np.stack([measured[:, list(SURVEY_TOKENS[s])].any(1) for s in io.SURVEYS], -1)


def survey_combination_names(measured: np.ndarray) -> np.ndarray:
    """A readable name per star of its survey combination, e.g. ``gaia+tmass+wise`` or ``none``."""
    flags = np.asarray(survey_flags(measured), bool).reshape(-1, len(io.SURVEYS))
    code = flags @ (1 << np.arange(len(io.SURVEYS)))  # one name per combination, not per star
    table = np.array(["+".join(s for k, s in enumerate(io.SURVEYS) if c >> k & 1) or "none"
                      for c in range(1 << len(io.SURVEYS))])
    return table[code]
