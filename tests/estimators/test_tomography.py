"""Product-kernel tomography: exact kernel from Bloch vectors, unbiasedness and variance by simulation."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit.quantum_info import DensityMatrix, Pauli, Statevector, partial_trace, random_statevector

from qk_lstm_qiskit.estimators.tomography import (
    bloch_from_marginals, kernel_covariance, kernel_variance, observed_zero_probability, product_kernel,
    simulate_marginals,
)

from _moments import assert_mean, assert_variance


def _random_product(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A product state ``(2**n,)`` and its Bloch vectors ``(n, 3)`` read by Qiskit."""
    factors = [random_statevector(2, seed=seed * 10 + q) for q in range(n)]
    state = factors[0]
    for f in factors[1:]:
        state = f.tensor(state)  # qubit q is factor q
    rho = DensityMatrix(state)
    bloch = np.array([[np.real(partial_trace(rho, [r for r in range(n) if r != q]).expectation_value(Pauli(p)))
                       for p in "XYZ"] for q in range(n)])
    return state.data, bloch


@pytest.fixture(scope="module")
def products():
    pairs = [_random_product(3, s) for s in range(5)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def test_product_kernel_equals_the_state_fidelity(products):
    states, bloch = products
    expected = np.abs(states.conj() @ states.T) ** 2
    np.testing.assert_allclose(product_kernel(bloch, bloch), expected, atol=1e-12)


def test_readout_correction_inverts_the_assignment(products):
    _, bloch = products
    a = np.array([[[0.97, 0.05], [0.03, 0.95]], [[0.9, 0.2], [0.1, 0.8]], [[1.0, 0.0], [0.0, 1.0]]])
    np.testing.assert_allclose(bloch_from_marginals(observed_zero_probability(bloch, a), a), bloch, atol=1e-12)


@pytest.mark.parametrize("assignment", [None, np.array([[[0.95, 0.08], [0.05, 0.92]]] * 3)])
def test_estimate_is_unbiased_and_its_variance_and_covariance_match_the_formulas(products, assignment):
    _, bloch = products
    x, refs, shots, reps = bloch[:2], bloch[2:], 64, 20_000
    rng = np.random.default_rng(0)
    draws = simulate_marginals(np.broadcast_to(x, (reps, *x.shape)), shots, rng, assignment)  # (reps, 2, n, 3)
    k = np.stack([product_kernel(bloch_from_marginals(d, assignment), refs) for d in draws])  # (reps, 2, 3)
    assert_mean(k, product_kernel(x, refs))
    assert_variance(k, kernel_variance(x, refs, shots, assignment))
    cov = kernel_covariance(x[0], refs, shots, assignment)  # one input, three references share its shots
    np.testing.assert_allclose(np.diag(cov), kernel_variance(x, refs, shots, assignment)[0], rtol=1e-12)
    products_ = k[:, 0, 0] * k[:, 0, 1]  # E[k0 k1] = Cov + μ0 μ1
    mean = product_kernel(x, refs)[0]
    assert_mean(products_[:, None], np.array([cov[0, 1] + mean[0] * mean[1]]))


def test_variance_vanishes_without_shot_noise_limit(products):
    _, bloch = products
    assert np.all(kernel_variance(bloch, bloch, 10**12) < 1e-10)
    assert np.all(kernel_variance(bloch, bloch, 10) > 0)


def test_statevector_sanity_against_pauli_expectations():
    state = Statevector.from_label("+")
    _, bloch = _random_product(1, 0)
    assert bloch.shape == (1, 3)
    assert np.isclose(np.real(state.expectation_value(Pauli("X"))), 1.0)
