"""Pauli settings and per-qubit maps against Qiskit's Statevector and explicit Kronecker products."""

from __future__ import annotations

import numpy as np
from qiskit import QuantumCircuit
from qiskit.quantum_info import Statevector, random_statevector

from qk_lstm_qiskit.estimators.bases import (
    BASIS_ANGLES, all_settings, apply_per_qubit, basis_angles, measured_distributions,
)


def test_apply_per_qubit_equals_the_kronecker_product():
    rng = np.random.default_rng(0)
    mats = rng.normal(size=(3, 2, 2))
    t = rng.normal(size=(5, 8))
    full = np.kron(np.kron(mats[2], mats[1]), mats[0])  # qubit 0 is the least significant bit
    np.testing.assert_allclose(apply_per_qubit(mats, t), t @ full.T, atol=1e-12)


def test_batched_matrices_broadcast_against_the_tensor():
    rng = np.random.default_rng(1)
    mats = rng.normal(size=(4, 2, 2, 2))  # a different pair of matrices for each of 4 rows
    t = rng.normal(size=(4, 4))
    expected = np.stack([np.kron(m[1], m[0]) @ row for m, row in zip(mats, t)])
    np.testing.assert_allclose(apply_per_qubit(mats, t), expected, atol=1e-12)


def test_measured_distributions_equal_qiskit_circuits_with_the_basis_change():
    n = 3
    states = np.stack([random_statevector(2**n, seed=s).data for s in range(2)])
    settings = all_settings(n)[[0, 5, 13, 26]]
    got = measured_distributions(states, settings)
    angles = basis_angles(settings)
    for i, state in enumerate(states):
        for k in range(len(settings)):
            qc = QuantumCircuit(n)
            for q in range(n):
                qc.rz(angles[k, q], q)
                qc.ry(angles[k, n + q], q)
            expected = Statevector(state).evolve(qc).probabilities()
            np.testing.assert_allclose(got[i, k], expected, atol=1e-12)


def test_outcome_zero_is_the_plus_one_eigenvalue_of_each_pauli():
    plus = {0: np.array([1, 1]) / np.sqrt(2), 1: np.array([1, 1j]) / np.sqrt(2), 2: np.array([1, 0])}
    for basis, state in plus.items():
        p = measured_distributions(state[None].astype(complex), np.array([[basis]]))
        np.testing.assert_allclose(p[0, 0], [1.0, 0.0], atol=1e-12)
    assert BASIS_ANGLES.shape == (3, 2)
