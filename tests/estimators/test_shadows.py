"""Classical shadows against known states: exact when all settings are averaged; variance formulas by simulation."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit.quantum_info import random_statevector

from qk_lstm_qiskit.estimators.bases import all_settings, random_settings
from qk_lstm_qiskit.estimators.shadows import (
    observed_distributions, shadow_kernel, shadow_variance, shadow_weights, simulate_counts,
)

from _moments import assert_mean, assert_variance

N_QUBITS = 3


@pytest.fixture(scope="module")
def states():
    return np.stack([random_statevector(2**N_QUBITS, seed=s).data for s in range(4)])


def _fidelity(a, b):
    return np.abs(a.conj() @ b.T) ** 2


@pytest.mark.parametrize("assignment", [None, np.array([[[0.96, 0.07], [0.04, 0.93]]] * N_QUBITS)])
def test_averaging_exact_distributions_over_all_settings_gives_the_fidelity(states, assignment):
    grid = all_settings(N_QUBITS)
    p = observed_distributions(states[:2], grid, assignment)  # exact "frequencies"
    k = shadow_kernel(p, shadow_weights(states[2:], grid, assignment))
    np.testing.assert_allclose(k, _fidelity(states[:2], states[2:]), atol=1e-12)


def test_variance_given_the_settings_matches_simulation(states):
    rng = np.random.default_rng(0)
    settings = random_settings(6, N_QUBITS, rng)
    weights = shadow_weights(states[2:], settings)
    m, reps = 16, 20_000
    k = np.stack([shadow_kernel(simulate_counts(states[:2], settings, m, rng), weights) for _ in range(reps)])
    expected_mean = shadow_kernel(observed_distributions(states[:2], settings), weights)
    assert_mean(k, expected_mean)
    assert_variance(k, shadow_variance(states[:2], states[2:], m, settings=settings))


def test_variance_over_random_settings_matches_simulation(states):
    rng = np.random.default_rng(1)
    assignment = np.array([[[0.96, 0.07], [0.04, 0.93]]] * N_QUBITS)
    k_settings, m, reps = 4, 8, 20_000
    k = np.empty((reps, 2, 2))
    for r in range(reps):
        settings = random_settings(k_settings, N_QUBITS, rng)
        counts = simulate_counts(states[:2], settings, m, rng, assignment)
        k[r] = shadow_kernel(counts, shadow_weights(states[2:], settings, assignment))
    assert_mean(k, _fidelity(states[:2], states[2:]))
    assert_variance(k, shadow_variance(states[:2], states[2:], m, num_settings=k_settings, assignment=assignment))


def test_variance_needs_exactly_one_design(states):
    with pytest.raises(ValueError, match="exactly one of settings and num_settings"):
        shadow_variance(states, states, 4)
