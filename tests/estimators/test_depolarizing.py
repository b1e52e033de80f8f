"""Global-depolarising correction: exact inversion of the model, delta-method variance by simulation."""

from __future__ import annotations

import numpy as np
import pytest

from qk_lstm_qiskit.estimators.compute_uncompute import frequency_variance, simulate_frequencies
from qk_lstm_qiskit.estimators.depolarizing import (
    correct_depolarizing, corrected_variance, depolarizing_rate, rate_variance, single_pass_rate,
)

from _moments import assert_mean, assert_variance


def _noisy(k, rate, n):
    return (1 - rate) * k + rate / 2**n


def test_correction_inverts_the_global_depolarising_model():
    k = np.array([0.9, 0.3, 0.01])
    rate, n = 0.2, 4
    echo = _noisy(np.ones(3), rate, n)
    assert np.isclose(depolarizing_rate(echo, n), rate)
    np.testing.assert_allclose(correct_depolarizing(_noisy(k, rate, n), rate, n), k, atol=1e-12)
    assert np.isclose(1 - single_pass_rate(rate), np.sqrt(1 - rate))


def test_matches_pennylanes_average_method_formula():
    # qml.kernels.mitigate_depolarizing_noise(K, n, "average"): λ = mean((1 − K_ii)·d/(d − 1)), (K − λ/d)/(1 − λ)
    n, d = 2, 4
    diag = np.array([0.8, 0.7])
    k = np.array([[0.8, 0.4], [0.4, 0.7]])
    rate = np.mean((1 - diag) * d / (d - 1))
    np.testing.assert_allclose(correct_depolarizing(k, depolarizing_rate(diag, n), n), (k - rate / d) / (1 - rate))


def test_corrected_estimate_mean_and_variance_match_simulation():
    rng = np.random.default_rng(0)
    n, rate, shots, echoes, reps = 4, 0.25, 4000, 3, 20_000
    k = np.array([0.7, 0.2, 0.05])
    noisy, echo = _noisy(k, rate, n), _noisy(np.ones(echoes), rate, n)
    kt = simulate_frequencies(np.broadcast_to(noisy, (reps, 3)), shots, rng)
    et = simulate_frequencies(np.broadcast_to(echo, (reps, echoes)), shots, rng)
    corrected = np.stack([correct_depolarizing(a, depolarizing_rate(e, n), n) for a, e in zip(kt, et)])
    expected_var = corrected_variance(noisy, frequency_variance(noisy, shots), rate, rate_variance(echo, shots, n), n)
    assert_mean(corrected, k)
    assert_variance(corrected, expected_var)


def test_frequency_variance_matches_simulation():
    rng = np.random.default_rng(2)
    p = np.array([0.5, 0.1, 0.99])
    assert_variance(simulate_frequencies(np.broadcast_to(p, (20_000, 3)), 100, rng), frequency_variance(p, 100))


def test_rate_needs_echoes_above_the_maximally_mixed_value():
    with pytest.raises(ValueError, match="mean above 1/2\\*\\*n"):
        depolarizing_rate(np.array([0.2]), 2)
