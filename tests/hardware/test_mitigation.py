"""Kernel estimators under readout noise: binomial statistics, variance bounds, the mitigated sampler."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import numpy as np
import pytest
import torch
from qiskit import QuantumCircuit

from _assertions import raises_one_line
from _samplers import ReadoutNoiseSampler, assignment
from qk_lstm_qiskit.circuits.feature_map import FeatureMap
from qk_lstm_qiskit.errors import QKLSTMError
from qk_lstm_qiskit.hardware.backends import fake_backend, resolve_backend
from qk_lstm_qiskit.hardware.mitigation import (
    MitigatedSampler,
    check_factorises,
    corrected_marginals,
    frequency_variance,
    marginal_variance,
    plan_mitigation,
    product_distribution,
    shots_for_target_error,
    variance_factor,
)
from qk_lstm_qiskit.hardware.readout import ReadoutCalibration
from qk_lstm_qiskit.kernels.kernel import QuantumKernel

REPEATS, SHOTS = 3000, 200
TRUE_P0 = np.array([0.7, 0.55, 0.85])  # P(qubit q in |0>) of a product state
A = np.stack([assignment(0.06, 0.03), assignment(0.02, 0.05), assignment(0.04, 0.01)])  # (3, 2, 2)


def _observed_p0(p0=TRUE_P0, a=A):
    return a[:, 0, 0] * p0 + a[:, 0, 1] * (1 - p0)  # P(read 0) = P(0|0) p + P(0|1) (1 − p)


def _product_shots(rng, p_read0, repeats=REPEATS, shots=SHOTS):
    """Independent qubits: bits (repeats, shots, n), True = read 1."""
    return rng.random((repeats, shots, p_read0.size)) >= p_read0


def _check_mean_and_variance(estimates, mean, variance):
    """Sample mean within 5 standard errors; sample variance within 5 of its standard errors (≈ √(2/R))."""
    r = estimates.size
    assert abs(estimates.mean() - mean) < 5 * math.sqrt(variance / r)
    assert estimates.var(ddof=1) == pytest.approx(variance, rel=5 * math.sqrt(2 / (r - 1)))


def test_frequency_of_all_zeros_is_binomial_and_biased_by_readout(rng):
    bits = _product_shots(rng, _observed_p0())
    estimates = (~bits.any(axis=2)).mean(axis=1)  # the plain estimator: frequency of 0…0
    k_obs = float(np.prod(_observed_p0()))
    _check_mean_and_variance(estimates, k_obs, frequency_variance(k_obs, SHOTS))
    k = float(np.prod(TRUE_P0))
    assert abs(estimates.mean() - k) > 20 * math.sqrt(frequency_variance(k_obs, SHOTS) / REPEATS)  # readout bias


def test_marginal_estimator_is_unbiased_with_the_documented_variance(rng):
    bits = _product_shots(rng, _observed_p0())
    estimates = corrected_marginals(bits, A).prod(axis=1)
    k = float(np.prod(TRUE_P0))
    variance = marginal_variance(_observed_p0(), A, SHOTS)
    _check_mean_and_variance(estimates, k, variance)
    # first order: Σ_q σ_q² Π_{r≠q} μ_r²
    det = A[:, 0, 0] + A[:, 1, 1] - 1
    sigma2 = _observed_p0() * (1 - _observed_p0()) / (SHOTS * det**2)
    first = sum(sigma2[q] * np.prod(np.delete(TRUE_P0, q) ** 2) for q in range(3))
    assert variance == pytest.approx(first, rel=0.02)


def test_without_readout_error_marginal_variance_is_below_the_frequency_variance():
    ideal = np.stack([np.eye(2)] * 3)
    for p0 in (TRUE_P0, np.array([0.99, 0.5, 0.9]), np.array([0.2, 0.3, 0.4])):
        k = float(np.prod(p0))
        assert marginal_variance(p0, ideal, SHOTS) <= frequency_variance(k, SHOTS)


def test_variance_factor_bounds_the_tensored_estimator_and_is_one_without_errors():
    assert variance_factor("none") == 1.0
    assert variance_factor("m3", np.stack([np.eye(2)] * 4)) == pytest.approx(1.0)
    # brute force over the 2**n single-shot values c_b = Π_q (A_q^{-1})_{0 b_q}
    inverse = np.linalg.inv(A)
    values = [np.prod([inverse[q, 0, (b >> q) & 1] for q in range(3)]) for b in range(8)]
    assert variance_factor("marginal", A) == pytest.approx((max(values) - min(values)) ** 2)
    # Popoviciu: Var(c_b) <= γ/4 for the true outcome distribution
    dist = product_distribution(_observed_p0()[None])[0]
    mean = np.dot(dist, values)
    assert mean == pytest.approx(np.prod(TRUE_P0))  # the tensored inverse is unbiased
    assert np.dot(dist, np.square(values)) - mean**2 <= variance_factor("m3", A) / 4


def test_shots_for_target_error():
    assert shots_for_target_error(0.01) == 2500  # 1 / (4 · 1e-4)
    assert shots_for_target_error(0.01, 1.3) == 3250
    with raises_one_line(ValueError, r"expected target_error in \(0, 0.5\], got 0"):
        shots_for_target_error(0)
    with raises_one_line(ValueError, "expected a variance factor >= 1, got 0.5"):
        shots_for_target_error(0.1, 0.5)


def test_product_distribution_matches_kron():
    p0 = np.array([[0.9, 0.3, 0.6]])
    # clbit 0 is the least significant bit: kron(qubit 2, qubit 1, qubit 0)
    single = [np.array([p, 1 - p]) for p in p0[0]]
    expected = np.kron(np.kron(single[2], single[1]), single[0])
    assert np.allclose(product_distribution(p0)[0], expected)


def test_factorisation_is_decided_from_the_isa_circuit():
    rb = resolve_backend("fake:manila", shots=64, seed=0)
    paper, _, _ = FeatureMap(4, reps=1).fidelity_circuit()
    check_factorises(rb.pass_manager.run(paper))  # the transpiler removed every CNOT
    entangled, _, _ = FeatureMap(4, reps=2).fidelity_circuit()
    with raises_one_line(ValueError, "expected a transpiled fidelity circuit without multi-qubit gates .* got cx"):
        check_factorises(rb.pass_manager.run(entangled))


def _kernel_inputs():
    g = torch.Generator().manual_seed(3)
    return torch.randn(3, 2, generator=g), torch.randn(2, 2, generator=g)


@pytest.fixture(scope="module")
def manila():
    return fake_backend("manila")


def _noisy_kernel(manila, method, shots, seed=0):
    from qiskit.transpiler import generate_preset_pass_manager

    pm = generate_preset_pass_manager(optimization_level=1, backend=manila, initial_layout=[2, 3], seed_transpiler=0)
    matrices = {2: assignment(0.08, 0.04), 3: assignment(0.03, 0.06)}
    inner = ReadoutNoiseSampler(matrices, default_shots=shots, seed=seed)
    cal = ReadoutCalibration(backend="fake_manila", matrices=matrices, shots=10**6, date="2026-12-01")
    sampler = inner if method == "none" else MitigatedSampler(inner, method, device=manila, calibration=cal)
    return QuantumKernel(FeatureMap(2, reps=1), sampler=sampler, pass_manager=pm), inner


@pytest.mark.parametrize("method", ["m3", "marginal"])
def test_mitigated_kernels_are_unbiased_within_five_standard_errors(manila, method):
    shots = 20_000
    x, y = _kernel_inputs()
    exact = QuantumKernel(FeatureMap(2, reps=1))(x, y).double()
    raw, _ = _noisy_kernel(manila, "none", shots)
    kernel, inner = _noisy_kernel(manila, method, shots)
    with torch.no_grad():
        mitigated, plain = kernel(x, y).double(), raw(x, y).double()
    bound = 5 * math.sqrt(variance_factor("m3", np.stack([assignment(0.08, 0.04), assignment(0.03, 0.06)])) / (4 * shots))
    assert (mitigated - exact).abs().max() < bound
    assert abs((mitigated - exact).mean()) < bound / math.sqrt(exact.numel())  # independent kernels: no bias
    assert (plain - exact).mean() < -2 * bound / math.sqrt(exact.numel())  # readout error pulls P(0…0) down
    assert inner.runs == 1  # the calibration was given: only the kernel job ran


def test_marginal_refuses_an_entangling_circuit(manila):
    from qiskit.transpiler import generate_preset_pass_manager

    pm = generate_preset_pass_manager(optimization_level=1, backend=manila, initial_layout=[0, 1], seed_transpiler=0)
    inner = ReadoutNoiseSampler({}, default_shots=16)
    kernel = QuantumKernel(FeatureMap(2, reps=2), sampler=MitigatedSampler(inner, "marginal", device=manila),
                           pass_manager=pm)
    with pytest.raises(QKLSTMError, match="ValueError: mitigation 'marginal': expected a transpiled fidelity circuit "
                       "without multi-qubit gates"):
        kernel(*_kernel_inputs())
    assert inner.runs == 0  # refused before anything ran


def test_mitigated_sampler_checks_its_arguments(manila):
    with raises_one_line(TypeError, "expected sampler to be a BaseSamplerV2, got int"):
        MitigatedSampler(3, "m3", device=manila)
    with raises_one_line(ValueError, r"expected method in \('none', 'm3', 'marginal'\), got 'trex'"):
        MitigatedSampler(ReadoutNoiseSampler({}), "trex", device=manila)
    with raises_one_line(ValueError, "expected method 'm3' or 'marginal', got 'none'"):
        MitigatedSampler(ReadoutNoiseSampler({}), "none", device=manila)


def test_plan_counts_the_calibration_and_reuses_a_cached_one(manila, tmp_path):
    circuit = QuantumCircuit(5, 2)
    circuit.sx(1)
    circuit.measure([1, 4], [0, 1])
    plan = plan_mitigation("m3", circuit, manila, calibration_shots=1000, cache_dir=tmp_path)
    assert plan.qubits == (1, 4) and plan.cached is None
    assert (plan.calibration_circuits, plan.calibration_shots) == (4, 500)  # HadamardGenerator(2): 4 strings
    assert plan.variance_factor > 1.0
    today = datetime.now(timezone.utc).date().isoformat()
    ReadoutCalibration(backend="fake_manila", matrices={1: np.eye(2), 4: np.eye(2)}, shots=10, date=today).save(tmp_path)
    again = plan_mitigation("m3", circuit, manila, calibration_shots=1000, cache_dir=tmp_path)
    assert again.calibration_circuits == 0 and again.cached is not None and again.variance_factor == 1.0
    assert plan_mitigation("none", None, None).calibration_circuits == 0
    with raises_one_line(ValueError, "expected a device backend"):
        plan_mitigation("m3", None, None)
