"""StatevectorExecutor against qiskit.quantum_info.Statevector of the bound circuit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter, ParameterVector
from qiskit.circuit.library import get_standard_gate_name_mapping
from qiskit.quantum_info import SparsePauliOp, Statevector

from _assertions import raises_one_line
from qk_lstm_qiskit.circuits.feature_map import ENTANGLEMENTS, FeatureMap
from qk_lstm_qiskit.circuits.library import build_feature_map
from qk_lstm_qiskit.circuits.vqc import vqc_circuit
from qk_lstm_qiskit.kernels.statevector import SUPPORTED_GATES, StatevectorExecutor, numba_backend
from qk_lstm_qiskit.kernels.statevector import modes as fourier

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


@pytest.fixture(params=["native", "torch"])
def path(request, monkeypatch):
    """Run the test on the compiled CPU loops (``native``) and on torch's batched products (``torch``)."""
    if request.param == "torch":
        monkeypatch.setattr(numba_backend, "MAX_QUBITS", 0)
    return request.param


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
@pytest.mark.usefixtures("path")
def test_random_circuits_over_all_supported_gates_match_qiskit(seed, dtype):
    rng = np.random.default_rng(seed)
    circuit, theta = random_circuit(3, 40, rng)
    assert {i.operation.name for i in circuit.data} == set(SUPPORTED_GATES)
    values = rng.uniform(-np.pi, np.pi, size=(6, len(theta)))
    assert_matches_qiskit(circuit, list(theta), values, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.usefixtures("path")
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


# --------------------------------------------------------------------------- adjoint gradients
@pytest.mark.parametrize("num_qubits, seed", [(2, 0), (3, 1), (5, 2), (7, 3)])
@pytest.mark.usefixtures("path")
def test_adjoint_gradients_of_states_and_probabilities_gradcheck(num_qubits, seed):
    """Random circuits over every gate, repeated parameters, a global phase; 7 qubits span three groups."""
    rng = np.random.default_rng(seed)
    circuit, theta = random_circuit(num_qubits, 30, rng)
    circuit.global_phase = 0.4
    executor = StatevectorExecutor(circuit, list(theta))
    values = torch.tensor(rng.uniform(-3, 3, size=(2, len(theta))), requires_grad=True)
    weights = torch.randn(2, 2**num_qubits, dtype=torch.complex128)
    # a real loss of the complex states, and the probabilities: both through the adjoint backward
    assert torch.autograd.gradcheck(lambda v: (executor.statevectors(v) * weights).real.sum(-1), (values,))
    assert torch.autograd.gradcheck(lambda v: executor.probabilities(v)[:, :5], (values,))


@pytest.mark.parametrize("max_modes", ["default", 1])
@pytest.mark.parametrize("num_qubits, seed", [(3, 4), (4, 5)])
@pytest.mark.usefixtures("path")
def test_fourier_modes_and_slot_products_give_the_same_states_gradients_and_tangents(num_qubits, seed, max_modes, monkeypatch):
    """A stage's unitaries come from their Fourier modes (``UnitaryModes``) or, past ``MAX_MODES``,
    from the product of its slot matrices: states against Statevector, adjoint gradients by gradcheck,
    ``jvp`` against central differences, for both."""
    if max_modes != "default":
        monkeypatch.setattr(fourier, "MAX_MODES", max_modes)
    rng = np.random.default_rng(seed)
    circuit, theta = random_circuit(num_qubits, 24, rng)
    executor = StatevectorExecutor(circuit, list(theta))
    modes = [s.modes for s in executor._stages if hasattr(s, "modes")]
    assert modes and all((m is None) == (max_modes == 1) for m in modes)
    values = rng.uniform(-3, 3, size=(3, len(theta)))
    assert_matches_qiskit(circuit, theta, values, torch.float64)
    values = torch.tensor(values, requires_grad=True)
    weights = torch.randn(3, 2**num_qubits, dtype=torch.complex128, generator=torch.Generator().manual_seed(seed))
    assert torch.autograd.gradcheck(lambda v: (executor.statevectors(v) * weights).real.sum(-1), (values,))
    tangents = torch.randn(2, *values.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    _, derivatives = executor.jvp(values.detach(), tangents)
    step = 1e-6
    central = torch.stack([(executor.apply_stages(values.detach() + step * t) - executor.apply_stages(values.detach() - step * t))
                           / (2 * step) for t in tangents])
    torch.testing.assert_close(derivatives, central, rtol=0, atol=1e-8)


def test_statevectors_grad_fn_is_the_adjoint_sweep():
    executor = StatevectorExecutor(FeatureMap(3, reps=2).circuit)
    states = executor.statevectors(torch.zeros(2, 12, dtype=torch.float64, requires_grad=True))
    assert type(states.grad_fn).__name__ == "_StatevectorsBackward"
    assert executor.statevectors(torch.zeros(2, 12)).grad_fn is None  # no graph without requires_grad


def test_dropping_the_constant_tail_changes_no_overlap(rng):
    executor = StatevectorExecutor(FeatureMap(4, reps=2, entanglement="full").circuit)
    values = torch.tensor(rng.uniform(-3, 3, size=(5, 16)))
    full, trimmed = executor.statevectors(values), executor.statevectors(values, drop_constant_tail=True)
    assert (full - trimmed).abs().max() > 0.1  # the trailing CNOTs are really left out
    torch.testing.assert_close(full @ full.mH, trimmed @ trimmed.mH, atol=1e-12, rtol=0)


# --------------------------------------------------------------------------- memory and devices
@pytest.mark.usefixtures("path")
def test_rows_are_chunked_to_fit_the_memory_limit(rng):
    circuit = FeatureMap(6, reps=2).circuit
    state = 2**6 * 16  # bytes of one complex128 state
    small = StatevectorExecutor(circuit, memory_limit=16 * state)  # the 9 outputs, then 2-row chunks
    assert small.chunk_rows(9, torch.float64, "cpu", held=9 * state) == 2
    values = torch.tensor(rng.uniform(-3, 3, size=(9, 24)), requires_grad=True)
    big = StatevectorExecutor(circuit)
    grad_out = torch.randn(9, 64, dtype=torch.complex128)
    for executor in (small, big):
        states = executor.statevectors(values)
        (grad,) = torch.autograd.grad((states * grad_out).real.sum(), values)
        if executor is small:
            expected_states, expected_grad = states, grad
    torch.testing.assert_close(states, expected_states, atol=1e-13, rtol=0)
    torch.testing.assert_close(grad, expected_grad, atol=1e-12, rtol=0)


def test_a_call_that_cannot_fit_is_refused_before_allocating():
    executor = StatevectorExecutor(FeatureMap(30, reps=2).circuit)  # compiles: no 2**30 permutation yet
    with pytest.raises(MemoryError, match=r"states of 30 qubits for 3 rows need at least 48 GiB .*8 GiB .* per state.*memory limit of"):
        executor.statevectors(torch.zeros(3, 120))
    limited = StatevectorExecutor(FeatureMap(10, reps=2).circuit, memory_limit=2**20)
    with pytest.raises(MemoryError, match=r"states of 10 qubits for 200 rows need at least .* over the memory limit of 0.000977 GiB"):
        limited.statevectors(torch.zeros(200, 40))


def test_memory_limit_arguments_are_checked():
    with pytest.raises(ValueError, match="expected memory_limit to be a positive int .bytes. or None, got -1"):
        StatevectorExecutor(FeatureMap(2).circuit, memory_limit=-1)
    with pytest.raises(ValueError, match="expected memory_limit to be a positive int .bytes. or None, got 1.5"):
        StatevectorExecutor(FeatureMap(2).circuit, memory_limit=1.5)


def test_the_memory_limit_is_each_executors_own():
    """The limit is an option of one executor (no process-wide state): another executor keeps the default."""
    limited, free = (StatevectorExecutor(FeatureMap(10, reps=2).circuit, memory_limit=m) for m in (2**20, None))
    assert limited.limit() == 2**20 and free.limit() > 2**20
    with pytest.raises(MemoryError, match="memory limit of 0.000977 GiB"):
        limited.statevectors(torch.zeros(200, 40))
    assert free.statevectors(torch.zeros(200, 40)).shape == (200, 2**10)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", DTYPES)
def test_runs_on_cuda_where_the_values_are(dtype, rng):
    executor = StatevectorExecutor(FeatureMap(5, reps=2).circuit)
    values = torch.tensor(rng.uniform(-3, 3, size=(4, 20)), dtype=dtype)
    on_cpu = executor.statevectors(values)
    on_gpu = executor.statevectors(values.cuda().requires_grad_())
    assert on_gpu.device.type == "cuda" and on_gpu.dtype == on_cpu.dtype
    torch.testing.assert_close(on_gpu.detach().cpu(), on_cpu, atol=TOLERANCE[dtype], rtol=0)
    on_gpu.abs().sum().backward()


@pytest.mark.parametrize("kind, options", [
    ("paper", {"reps": 2}), ("paper", {"reps": 3, "entanglement": "full"}), ("zz", {"reps": 2, "entanglement": "circular"}),
    ("paper", {"trainable_layers": 1}), ("paper", {}),
])
@pytest.mark.parametrize("drop_constant_tail", [False, True])
@pytest.mark.usefixtures("path")
def test_jvp_equals_qiskit_states_and_their_central_differences(kind, options, drop_constant_tail):
    """``jvp``: the states (up to the global phase) and directional derivatives, against Statevector and
    central differences of ``apply_stages`` (float64, step 1e-6: error ~1e-10)."""
    fm = build_feature_map(kind, 4, dtype=torch.float64, **options)
    executor = StatevectorExecutor(fm.circuit, fm.parameters_order)
    gen = torch.Generator().manual_seed(3)
    values = torch.randn(5, fm.num_parameters, dtype=torch.float64, generator=gen)
    tangents = torch.randn(3, 5, fm.num_parameters, dtype=torch.float64, generator=gen)
    states, derivatives = executor.jvp(values, tangents, drop_constant_tail=drop_constant_tail)
    stages = executor.apply_stages(values, drop_constant_tail=drop_constant_tail)
    torch.testing.assert_close(states, stages, rtol=0, atol=1e-14)
    if not drop_constant_tail:  # the circuit's own states, up to the global phase
        expected = reference_states(fm.circuit, fm.parameters_order, values.numpy())
        phase = np.exp(1j * executor.global_phase)
        np.testing.assert_allclose(states.numpy() * phase, expected, atol=1e-12)
    step = 1e-6
    central = torch.stack([
        (executor.apply_stages(values + step * t, drop_constant_tail=drop_constant_tail)
         - executor.apply_stages(values - step * t, drop_constant_tail=drop_constant_tail)) / (2 * step)
        for t in tangents
    ])
    torch.testing.assert_close(derivatives, central, rtol=0, atol=1e-8)


@pytest.mark.parametrize("kind, options", [("paper", {"reps": 2}), ("zz", {"reps": 2}), ("paper", {"trainable_layers": 1})])
def test_apply_stages_carries_forward_mode_tangents_equal_to_jvp(kind, options):
    """``apply_stages`` is plain torch operations: dual tensors go through it and come out as ``jvp``'s tangents."""
    from torch.autograd import forward_ad

    fm = build_feature_map(kind, 4, dtype=torch.float64, **options)
    executor = StatevectorExecutor(fm.circuit, fm.parameters_order)
    gen = torch.Generator().manual_seed(5)
    values = torch.randn(3, fm.num_parameters, dtype=torch.float64, generator=gen)
    tangent = torch.randn(3, fm.num_parameters, dtype=torch.float64, generator=gen)
    with forward_ad.dual_level():
        states, tangents = forward_ad.unpack_dual(executor.apply_stages(forward_ad.make_dual(values, tangent)))
    expected_states, expected = executor.jvp(values, tangent[None])
    torch.testing.assert_close(states, expected_states, rtol=0, atol=1e-14)
    torch.testing.assert_close(tangents, expected[0], rtol=0, atol=1e-12)


def test_jvp_refuses_tangents_of_the_wrong_shape_in_one_line():
    executor = StatevectorExecutor(FeatureMap(2, reps=2).circuit)
    values = torch.zeros(3, len(executor.parameters))
    with raises_one_line(ValueError, r"expected tangents of shape \(K, 3, 8\) and dtype torch.float32, got \(3, 8\)"):
        executor.jvp(values, torch.zeros(3, 8))
    with raises_one_line(ValueError, r"expected values of shape \(B, 8\), got \(3, 7\)"):
        executor.jvp(torch.zeros(3, 7), torch.zeros(1, 3, 7))


@pytest.mark.parametrize("num_qubits, seed", [(4, 0), (7, 1)])
def test_native_loops_equal_torch_products_and_run_up_to_their_qubit_limit(num_qubits, seed, monkeypatch):
    """The compiled loops and torch's Kronecker-group products give the same states, adjoint gradients and
    tangents (float64, random circuits over every gate); the loops run on the CPU up to ``numba_backend.MAX_QUBITS``."""
    from qk_lstm_qiskit.kernels.statevector import native

    rng = np.random.default_rng(seed)
    circuit, theta = random_circuit(num_qubits, 30, rng)
    executor = StatevectorExecutor(circuit, list(theta))
    gen = torch.Generator().manual_seed(seed)
    values = torch.tensor(rng.uniform(-3, 3, size=(5, len(theta))))
    weights = torch.randn(5, 2**num_qubits, dtype=torch.complex128, generator=gen)
    tangents = torch.randn(3, *values.shape, dtype=torch.float64, generator=gen)
    calls = []
    for name in ("simulate", "reverse", "tangents"):
        original = getattr(native, name)
        monkeypatch.setattr(native, name, lambda *args, _f=original, _n=name: (calls.append(_n), _f(*args))[1])

    def run():
        states = executor.statevectors(values)
        return states, executor.adjoint(values, states, weights), *executor.jvp(values, tangents)

    compiled = run()
    assert sorted(set(calls)) == ["reverse", "simulate", "tangents"]
    calls.clear()
    monkeypatch.setattr(numba_backend, "MAX_QUBITS", num_qubits - 1)
    products = run()
    assert not calls
    for got, expected in zip(compiled, products):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)
