"""StatevectorExecutor against qiskit.quantum_info.Statevector of the bound circuit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter, ParameterVector
from qiskit.circuit.library import get_standard_gate_name_mapping
from qiskit.quantum_info import SparsePauliOp, Statevector

from qk_lstm_qiskit.circuits.feature_map import ENTANGLEMENTS, FeatureMap
from qk_lstm_qiskit.circuits.vqc import vqc_circuit
from qk_lstm_qiskit.kernels.statevector import SUPPORTED_GATES, StatevectorExecutor

TOLERANCE = {torch.float32: 1e-6, torch.float64: 1e-12}
PARAMETERIZED = ("p", "rx", "ry", "rz")


def reference_states(circuit: QuantumCircuit, parameters, values: np.ndarray) -> np.ndarray:
    """Statevector of the circuit bound to each row of ``values`` (columns in ``parameters`` order)."""
    plain = circuit.remove_final_measurements(inplace=False)
    rows = []
    for row in values:
        bound = plain.assign_parameters({p: float(v) for p, v in zip(parameters, row) if p in set(plain.parameters)})
        rows.append(Statevector(bound).data)
    return np.array(rows)


def assert_matches_qiskit(circuit: QuantumCircuit, parameters, values: np.ndarray, dtype: torch.dtype) -> None:
    executor = StatevectorExecutor(circuit, parameters)
    states = executor.statevectors(torch.tensor(values, dtype=dtype))
    assert states.dtype == (torch.complex64 if dtype == torch.float32 else torch.complex128)
    assert states.shape == (len(values), 2**circuit.num_qubits)
    expected = reference_states(circuit, executor.parameters, values)
    error = np.abs(states.detach().numpy().astype(np.complex128) - expected).max()
    assert error <= TOLERANCE[dtype], f"max |ψ - ψ_qiskit| = {error:.3g}"


def random_circuit(num_qubits: int, num_gates: int, rng: np.random.Generator) -> tuple[QuantumCircuit, ParameterVector]:
    """Every supported gate at least once, then random ones; angles a·θ + b, plain floats, or θ."""
    theta = ParameterVector("t", 4)
    mapping = get_standard_gate_name_mapping()
    names = list(SUPPORTED_GATES) + list(rng.choice(SUPPORTED_GATES, size=num_gates - len(SUPPORTED_GATES)))
    rng.shuffle(names)
    circuit = QuantumCircuit(num_qubits)
    for name in names:
        qubits = [int(q) for q in rng.choice(num_qubits, size=mapping[name].num_qubits, replace=False)]
        if name in PARAMETERIZED:
            kind = rng.integers(3)
            param = theta[int(rng.integers(len(theta)))]
            if kind == 0:
                angle = float(rng.uniform(-1.5, 2.5)) * param + float(rng.uniform(-3, 3))  # a·θ + b
            elif kind == 1:
                angle = float(rng.uniform(-np.pi, np.pi))  # constant angle
            else:
                angle = param
            getattr(circuit, name)(angle, *qubits)
        else:
            getattr(circuit, name)(*qubits)
    return circuit, theta


DTYPES = [torch.float32, torch.float64]


# --------------------------------------------------------------------------- equivalence
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("entanglement", ENTANGLEMENTS)
@pytest.mark.parametrize("reps", [1, 2, 3])
def test_feature_map_circuit_matches_qiskit(reps, entanglement, dtype, rng):
    fm = FeatureMap(4, reps, entanglement)
    values = rng.uniform(-np.pi, np.pi, size=(5, fm.num_parameters))
    assert_matches_qiskit(fm.circuit, fm.parameters_order, values, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_feature_map_on_three_qubits_circular_matches_qiskit(dtype, rng):
    fm = FeatureMap(3, 2, "circular")  # circular adds CNOT(2, 0) only for n > 2
    values = rng.uniform(-np.pi, np.pi, size=(4, fm.num_parameters))
    assert_matches_qiskit(fm.circuit, fm.parameters_order, values, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("depth", [1, 2])
def test_qlstm_vqc_circuit_matches_qiskit(depth, dtype, rng):
    fm = FeatureMap(4)
    circuit, weights = vqc_circuit(fm, depth)
    assert len(weights) == 3 * 4 * depth
    order = [*fm.parameters_order, *weights]
    values = rng.uniform(-np.pi, np.pi, size=(5, len(order)))
    assert_matches_qiskit(circuit, order, values, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(4))
def test_random_circuits_over_all_supported_gates_match_qiskit(seed, dtype):
    rng = np.random.default_rng(seed)
    circuit, theta = random_circuit(3, 40, rng)
    assert {i.operation.name for i in circuit.data} == set(SUPPORTED_GATES)
    values = rng.uniform(-np.pi, np.pi, size=(6, len(theta)))
    assert_matches_qiskit(circuit, list(theta), values, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(3))
def test_inverse_circuit_with_global_phase_matches_qiskit(seed, dtype):
    rng = np.random.default_rng(100 + seed)
    circuit, theta = random_circuit(3, 30, rng)
    circuit.global_phase = 0.7
    inverse = circuit.inverse()  # rx(θ) → rx(-θ), s → sdg, sx → sxdg, phase → -0.7
    values = rng.uniform(-np.pi, np.pi, size=(4, len(theta)))
    assert_matches_qiskit(inverse, list(theta), values, dtype)
    # U†(θ) U(θ) |0> = |0>: the executor composes both halves exactly
    both = circuit.compose(inverse)
    states = StatevectorExecutor(both, list(theta)).statevectors(torch.tensor(values, dtype=torch.float64))
    expected = torch.zeros(4, 8, dtype=torch.complex128)
    expected[:, 0] = 1
    torch.testing.assert_close(states, expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize("phase", [0.0, 0.3, -2.1, np.pi])
def test_global_phase_multiplies_the_state(phase, rng):
    circuit, theta = random_circuit(2, 25, rng)
    circuit.global_phase = phase
    assert_matches_qiskit(circuit, list(theta), rng.uniform(-3, 3, size=(3, len(theta))), torch.float64)


def test_empty_and_parameter_free_circuits(rng):
    empty = QuantumCircuit(3, global_phase=0.5)
    state = StatevectorExecutor(empty, []).statevectors(torch.zeros(2, 0, dtype=torch.float64))
    np.testing.assert_allclose(state.numpy(), np.array([Statevector(empty).data] * 2), atol=1e-12)
    cx_only = QuantumCircuit(3)
    cx_only.x(0)
    cx_only.cx(0, 2)
    cx_only.swap(1, 2)
    cx_only.cz(0, 1)
    assert_matches_qiskit(cx_only, [], np.zeros((2, 0)), torch.float64)


def test_column_order_follows_the_parameters_argument(rng):
    a, b = Parameter("a"), Parameter("b")
    circuit = QuantumCircuit(2)
    circuit.ry(a, 0)
    circuit.rx(b, 1)
    circuit.cx(0, 1)
    values = rng.uniform(-3, 3, size=(3, 3))  # third column: a parameter the circuit does not use
    extra = Parameter("unused")
    assert_matches_qiskit(circuit, [b, extra, a], values, torch.float64)


def test_final_measurements_and_barriers_are_ignored(rng):
    fm = FeatureMap(3, 2)
    measured = fm.circuit.copy()
    measured.barrier()
    measured.measure_all()
    values = rng.uniform(-3, 3, size=(3, fm.num_parameters))
    assert_matches_qiskit(measured, fm.parameters_order, values, torch.float64)


def test_probabilities_are_born_rule(rng):
    fm = FeatureMap(3, 2, "full")
    values = torch.tensor(rng.uniform(-3, 3, size=(4, fm.num_parameters)))
    executor = StatevectorExecutor(fm.circuit)
    probs = executor.probabilities(values)
    expected = np.abs(reference_states(fm.circuit, executor.parameters, values.numpy())) ** 2
    np.testing.assert_allclose(probs.numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(probs.sum(1).numpy(), 1.0, atol=1e-12)


def test_executor_does_not_modify_the_circuit():
    fm = FeatureMap(3, 2)
    before = fm.circuit.copy()
    StatevectorExecutor(fm.circuit).statevectors(torch.zeros(1, fm.num_parameters))
    assert fm.circuit == before


# --------------------------------------------------------------------------- product structure
def test_is_product_circuit_for_reps_one_only():
    assert StatevectorExecutor(FeatureMap(4, reps=1).circuit).is_product_circuit
    assert not StatevectorExecutor(FeatureMap(4, reps=2).circuit).is_product_circuit
    assert not StatevectorExecutor(FeatureMap(4, reps=3, entanglement="full").circuit).is_product_circuit
    # without an entangler every layer is local: still a product
    assert StatevectorExecutor(FeatureMap(4, reps=2, entanglement="none").circuit).is_product_circuit


@pytest.mark.parametrize("seed", range(3))
def test_product_bloch_vectors_match_qiskit_pauli_expectations(seed):
    """r_q = (<X_q>, <Y_q>, <Z_q>) of the single-qubit part, for every one-qubit gate and a·θ + b angles."""
    rng = np.random.default_rng(200 + seed)
    one_qubit = [g for g in SUPPORTED_GATES if g not in ("cx", "cz", "swap")]
    theta = ParameterVector("t", 3)
    local = QuantumCircuit(3)
    local.h(0)  # constant leading slots are folded at compile time
    local.s(0)
    local.x(2)
    for name in list(one_qubit) * 2 + list(rng.choice(one_qubit, size=10)):
        q = int(rng.integers(3))
        if name in PARAMETERIZED:
            getattr(local, name)(float(rng.uniform(-2, 2)) * theta[int(rng.integers(3))] + float(rng.uniform(-1, 1)), q)
        else:
            getattr(local, name)(q)
    circuit = local.copy()
    circuit.cx(0, 1)  # a constant monomial tail keeps it a product circuit
    circuit.swap(1, 2)
    circuit.cz(0, 2)
    executor = StatevectorExecutor(circuit, list(theta))
    assert executor.is_product_circuit
    values = rng.uniform(-np.pi, np.pi, size=(4, 3))
    bloch = executor.product_bloch(torch.tensor(values)).numpy()  # (n, 3, B)
    assert bloch.shape == (3, 3, 4)
    for b, row in enumerate(values):
        state = Statevector(local.assign_parameters(dict(zip(theta, row))))
        for q in range(3):
            expected = [state.expectation_value(SparsePauliOp.from_sparse_list([(p, [q], 1.0)], 3)).real for p in "XYZ"]
            np.testing.assert_allclose(bloch[q, :, b], expected, atol=1e-12, rtol=0)
    # the product formula Π_q (1 + r_q·r'_q) / 2 is the fidelity of the full states
    states = executor.statevectors(torch.tensor(values)).numpy()
    fidelity = np.abs(states.conj() @ states.T) ** 2
    product = np.prod((1 + np.einsum("qib,qic->qbc", bloch, bloch)) / 2, axis=0)
    np.testing.assert_allclose(product, fidelity, atol=1e-12, rtol=0)


def test_product_bloch_refuses_entangling_circuits():
    executor = StatevectorExecutor(FeatureMap(2, reps=2).circuit)
    with pytest.raises(ValueError, match="expected a product circuit for product_bloch, got entangling stages"):
        executor.product_bloch(torch.zeros(1, 8))


# --------------------------------------------------------------------------- errors
def test_unsupported_gate_raises():
    circuit = QuantumCircuit(3)
    circuit.ccx(0, 1, 2)
    with pytest.raises(ValueError, match=r"StatevectorExecutor: unsupported gate 'ccx' \(supported: cx, cz, h,"):
        StatevectorExecutor(circuit)
    u = QuantumCircuit(1)
    u.u(0.1, 0.2, 0.3, 0)
    with pytest.raises(ValueError, match="unsupported gate 'u'.*decompose the circuit first"):
        StatevectorExecutor(u)


def test_gate_after_measurement_raises():
    circuit = QuantumCircuit(2, 2)
    circuit.h(0)
    circuit.measure(0, 0)
    circuit.x(0)
    with pytest.raises(ValueError, match=r"gate 'x' follows a measurement on qubits \[0\]"):
        StatevectorExecutor(circuit)
    # a gate on another, unmeasured qubit is fine
    other = QuantumCircuit(2, 2)
    other.measure(0, 0)
    other.x(1)
    StatevectorExecutor(other)


def test_non_linear_or_multi_parameter_angles_raise():
    a, b = Parameter("a"), Parameter("b")
    two = QuantumCircuit(1)
    two.rx(a + b, 0)
    with pytest.raises(ValueError, match="expected one parameter in gate 'rx', got a \\+ b"):
        StatevectorExecutor(two)
    square = QuantumCircuit(1)
    square.ry(a * a, 0)
    with pytest.raises(ValueError, match=r"expected an angle a\*θ \+ b in gate 'ry'"):
        StatevectorExecutor(square)
    sine = QuantumCircuit(1)
    sine.rz(a.sin(), 0)
    with pytest.raises(ValueError, match=r"expected an angle a\*θ \+ b in gate 'rz'"):
        StatevectorExecutor(sine)


def test_parameter_global_phase_and_missing_columns_raise():
    a = Parameter("a")
    phased = QuantumCircuit(1, global_phase=a)
    phased.rx(a, 0)
    with pytest.raises(ValueError, match="expected a numeric global phase, got a parameter expression"):
        StatevectorExecutor(phased)
    circuit = QuantumCircuit(1)
    circuit.rx(a, 0)
    circuit.ry(Parameter("b"), 0)
    with pytest.raises(ValueError, match=r"parameters missing from the column order: \['b'\]"):
        StatevectorExecutor(circuit, [a])


def test_wrong_value_shape_or_dtype_raises():
    executor = StatevectorExecutor(FeatureMap(2).circuit)  # 4 parameters
    with pytest.raises(ValueError, match=r"expected values of shape \(B, 4\), got \(2, 3\)"):
        executor.statevectors(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"expected values of shape \(B, 4\), got \(4,\)"):
        executor.statevectors(torch.zeros(4))
    with pytest.raises(ValueError, match=r"expected values of shape \(B, 4\), got \(1, 2, 4\)"):
        executor.statevectors(torch.zeros(1, 2, 4))
    with pytest.raises(TypeError, match="expected float32 or float64 values, got torch.int64"):
        executor.statevectors(torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="expected float32 or float64 values, got torch.complex64"):
        executor.statevectors(torch.zeros(2, 4, dtype=torch.complex64))
