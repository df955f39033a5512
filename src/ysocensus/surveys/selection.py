"""Shared pieces of the survey models: detection probabilities and photon-noise error laws.

A survey's detection of a source is not at random: it depends on the source's brightness
(a detection limit with a soft edge), its position (footprints) and, on top, a configurable random
loss. The soft edge is a logistic in magnitude, ``P(m) = 1 / (1 + exp((m − m50) / width))``.
"""

from __future__ import annotations

import numpy as np

LN10_OVER_2P5 = np.float32(np.log(10.0) / 2.5)       # 0.921: σ_mag = σ_F/F / 0.921 … i.e. 1.0857/SNR


def detection_probability(mag, m50, width) -> np.ndarray:
    """Logistic completeness: 0.5 at ``m50``, 0.99 at ``m50 − 4.6 width``; NaN magnitudes give 0."""
    x = (np.asarray(mag, np.float32) - np.float32(m50)) / np.float32(width)
    p = 1.0 / (1.0 + np.exp(np.clip(x, -60, 60)))
    return np.where(np.isfinite(x), p, 0.0).astype(np.float32)


def m50_from_limit(m_limit: float, completeness: float, width: float) -> float:
    """The 50% magnitude of a logistic whose completeness at ``m_limit`` is ``completeness``."""
    return float(m_limit + width * np.log(completeness / (1.0 - completeness)))


def background_limited_error(mag, m_ref, snr_ref, floor) -> np.ndarray:
    """σ_mag = sqrt(floor² + (1.0857 / SNR)²) with SNR = snr_ref · 10^(−0.4 (m − m_ref)).

    Background-limited photometry (faint sources, where detection limits bite): the flux error is
    constant, so SNR scales with flux.
    """
    snr = np.float32(snr_ref) * np.power(np.float32(10.0), np.float32(-0.4) * (np.asarray(mag, np.float32)
                                                                           - np.float32(m_ref)))
    return np.sqrt(np.float32(floor) ** 2 + (np.float32(1.0857) / snr) ** 2).astype(np.float32)
