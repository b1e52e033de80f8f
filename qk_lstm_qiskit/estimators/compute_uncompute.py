"""Compute–uncompute: ``k̂`` = frequency of ``0…0`` in ``U†(y)U(x)|0⟩`` (one circuit per pair).

.. math:: \\hat k = n_{0\\dots0}/S,\\qquad E\\hat k = \\tilde k,\\quad \\mathrm{Var}\\,\\hat k = \\tilde k(1 - \\tilde k)/S

with ``k̃`` the circuit's probability of ``0…0`` (``= k`` without noise).
"""

from __future__ import annotations

import numpy as np

__all__ = ["frequency_variance", "simulate_frequencies"]


def frequency_variance(probability: np.ndarray, shots: int) -> np.ndarray:
    """``p(1 − p)/S``: variance of the frequency of an outcome of probability ``p`` in ``S`` shots."""
    probability = np.asarray(probability, dtype=float)
    return probability * (1.0 - probability) / shots


def simulate_frequencies(probability: np.ndarray, shots: int, rng: np.random.Generator) -> np.ndarray:
    """Exact binomial draws ``n/S`` of frequencies of outcomes with ``probability`` (any shape)."""
    return rng.binomial(shots, np.clip(np.asarray(probability, dtype=float), 0.0, 1.0)) / shots
