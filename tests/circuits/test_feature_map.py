"""FeatureMap: the paper's circuit U(x), its encoding, and its compute-uncompute fidelity circuit."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector
from qiskit.quantum_info import Statevector

from qk_lstm_qiskit.errors import ProductKernelWarning
from qk_lstm_qiskit.circuits.feature_map import ENTANGLEMENTS, FeatureMap, entangling_pairs
from qk_lstm_qiskit.kernels.kernel import QuantumKernel


def instructions(circuit: QuantumCircuit) -> list[tuple[str, tuple[int, ...], tuple[str, ...]]]:
    return [
        (i.operation.name, tuple(circuit.find_bit(q).index for q in i.qubits), tuple(str(p) for p in i.operation.params))
        for i in circuit.data
    ]


def make_kernel(*args, **kwargs) -> QuantumKernel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ProductKernelWarning)
        return QuantumKernel(FeatureMap(*args, dtype=torch.float64, **kwargs))


def single_qubit_state(a: float, b: float, reps: int) -> np.ndarray:
    """(RZ(b) RY(a) H)^reps |0> in numpy: one qubit of the feature map without its entangler."""
    h = np.array([[1, 1], [1, -1]]) / math.sqrt(2)
    ry = np.array([[math.cos(a / 2), -math.sin(a / 2)], [math.sin(a / 2), math.cos(a / 2)]])
    rz = np.diag([np.exp(-0.5j * b), np.exp(0.5j * b)])
    state = np.array([1.0, 0.0], dtype=complex)
    for _ in range(reps):
        state = rz @ ry @ h @ state
    return state


def product_kernel(x: np.ndarray, y: np.ndarray, reps: int) -> float:
    """Π_q |<φ_q(y_q)|φ_q(x_q)>|² with the paper's angles (arctan x, arctan x²)."""
    value = 1.0
    for xq, yq in zip(x, y):
        sx = single_qubit_state(math.atan(xq), math.atan(xq * xq), reps)
        sy = single_qubit_state(math.atan(yq), math.atan(yq * yq), reps)
        value *= abs(np.vdot(sy, sx)) ** 2
    return value


# --------------------------------------------------------------------------- circuit
def test_reps_one_circuit_is_the_papers_circuit_in_order():
    n = 4
    theta = ParameterVector("θ", 2 * n)
    hand = QuantumCircuit(n)
    for q in range(n):
        hand.h(q)
    for q in range(n):
        hand.ry(theta[q], q)
        hand.rz(theta[n + q], q)
    for q in range(n - 1):
        hand.cx(q, q + 1)
    fm = FeatureMap(n)
    assert instructions(fm.circuit) == instructions(hand)
    assert [i[0] for i in instructions(fm.circuit)] == ["h"] * 4 + ["ry", "rz"] * 4 + ["cx"] * 3
    assert fm.num_parameters == 8 and len(fm.parameters_order) == 8
    assert [str(p) for p in fm.parameters_order] == [f"θ[{i}]" for i in range(8)]


def test_reps_repeat_the_layer_with_fresh_angles():
    fm = FeatureMap(3, reps=2, entanglement="circular")
    ops = instructions(fm.circuit)
    layer = ["h"] * 3 + ["ry", "rz"] * 3 + ["cx"] * 3
    assert [o[0] for o in ops] == layer * 2
    assert [o[1] for o in ops if o[0] == "cx"] == [(0, 1), (1, 2), (2, 0)] * 2
    second_ry = [o[2][0] for o in ops[len(layer):] if o[0] == "ry"]
    assert second_ry == ["θ[6]", "θ[7]", "θ[8]"]
    assert fm.num_parameters == 12


@pytest.mark.parametrize(
    "n, entanglement, pairs",
    [
        (4, "linear", [(0, 1), (1, 2), (2, 3)]),
        (4, "circular", [(0, 1), (1, 2), (2, 3), (3, 0)]),
        (2, "circular", [(0, 1)]),
        (3, "full", [(0, 1), (0, 2), (1, 2)]),
        (4, "none", []),
        (1, "linear", []),
    ],
)
def test_entangling_pairs(n, entanglement, pairs):
    assert entangling_pairs(n, entanglement) == pairs
    cx = [i[1] for i in instructions(FeatureMap(n, entanglement=entanglement).circuit) if i[0] == "cx"]
    assert cx == pairs


# --------------------------------------------------------------------------- encoding
def test_angles_are_arctan_x_and_arctan_x_squared(rng):
    x = torch.tensor(rng.normal(size=(5, 4)) * 2, dtype=torch.float64)
    angles = FeatureMap(4, dtype=torch.float64).angles(x)
    assert angles.shape == (5, 8)
    expected = np.concatenate([np.arctan(x.numpy()), np.arctan(x.numpy() ** 2)], axis=1)
    np.testing.assert_allclose(angles.numpy(), expected, rtol=0, atol=1e-15)


def test_angles_with_scaling_and_reps_and_leading_dims(rng):
    x = torch.tensor(rng.normal(size=(2, 3, 2)), dtype=torch.float64)
    fm = FeatureMap(2, reps=3, input_scaling=0.5, dtype=torch.float64)
    angles = fm(x)
    assert angles.shape == (2, 3, 12)
    sx = 0.5 * x.numpy()
    layer = np.concatenate([np.arctan(sx), np.arctan(sx**2)], axis=-1)
    np.testing.assert_allclose(angles.numpy(), np.concatenate([layer] * 3, axis=-1), rtol=0, atol=1e-15)


def test_trainable_scaling_is_a_parameter_else_a_buffer():
    fixed = FeatureMap(3, input_scaling=2.0)
    assert list(fixed.parameters()) == [] and "scaling" in dict(fixed.named_buffers())
    learned = FeatureMap(3, input_scaling=2.0, trainable_scaling=True)
    assert [name for name, _ in learned.named_parameters()] == ["scaling"]
    torch.testing.assert_close(learned.scaling.detach(), torch.full((3,), 2.0))
    assert "trainable_scaling=True" in repr(learned) and "reps=1" in repr(learned)


# --------------------------------------------------------------------------- fidelity circuit
@pytest.mark.parametrize("reps, entanglement", [(1, "linear"), (2, "linear"), (2, "full"), (3, "circular")])
def test_fidelity_circuit_all_zeros_probability_equals_kernel(reps, entanglement, rng):
    kernel = make_kernel(3, reps, entanglement)
    fm = kernel.feature_map
    circuit, xs, ys = fm.fidelity_circuit()
    assert len(xs) == len(ys) == fm.num_parameters
    assert circuit.num_clbits == 3 and circuit.count_ops()["measure"] == 3
    unmeasured = circuit.remove_final_measurements(inplace=False)
    x = torch.tensor(rng.normal(size=(4, 3)), dtype=torch.float64)
    y = torch.tensor(rng.normal(size=(3, 3)), dtype=torch.float64)
    ax, ay = fm.angles(x).numpy(), fm.angles(y).numpy()
    expected = np.empty((4, 3))
    for i in range(4):
        for j in range(3):
            bound = unmeasured.assign_parameters({**dict(zip(xs, ax[i])), **dict(zip(ys, ay[j]))})
            expected[i, j] = Statevector(bound).probabilities()[0]
    np.testing.assert_allclose(kernel(x, y).detach().numpy(), expected, rtol=0, atol=1e-12)


def test_fidelity_circuit_is_new_each_call_and_leaves_feature_map_intact():
    fm = FeatureMap(2)
    before = fm.circuit.copy()
    first, _, _ = fm.fidelity_circuit()
    second, _, _ = fm.fidelity_circuit()
    assert first is not second
    assert fm.circuit == before


# --------------------------------------------------------------------------- product kernel
@pytest.mark.parametrize("entanglement", ENTANGLEMENTS)  # "linear" is the paper's circuit
def test_reps_one_kernel_is_a_product_of_single_qubit_fidelities(entanglement, rng):
    kernel = make_kernel(4, 1, entanglement)
    x, y = rng.normal(size=(6, 4)) * 1.5, rng.normal(size=(5, 4)) * 1.5
    k = kernel(torch.tensor(x), torch.tensor(y)).numpy()
    expected = np.array([[product_kernel(a, b, 1) for b in y] for a in x])
    np.testing.assert_allclose(k, expected, rtol=0, atol=1e-12)
    assert kernel.is_product_kernel


@pytest.mark.parametrize("reps", [2, 3])
def test_entangled_kernel_with_reps_two_or_more_is_not_a_product(reps, rng):
    kernel = make_kernel(4, reps, "linear")
    x, y = rng.normal(size=(6, 4)) * 1.5, rng.normal(size=(5, 4)) * 1.5
    k = kernel(torch.tensor(x), torch.tensor(y)).numpy()
    product = np.array([[product_kernel(a, b, reps) for b in y] for a in x])
    assert np.abs(k - product).max() > 0.05  # NOTES.md: differences up to 0.8
    assert not kernel.is_product_kernel
    # control: the same layers without the entangler are exactly the product
    plain = make_kernel(4, reps, "none")
    np.testing.assert_allclose(plain(torch.tensor(x), torch.tensor(y)).numpy(), product, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"num_qubits": 0}, ValueError, r"FeatureMap: expected num_qubits >= 1, got 0"),
        ({"num_qubits": -2}, ValueError, r"FeatureMap: expected num_qubits >= 1, got -2"),
        ({"num_qubits": 2.0}, TypeError, r"FeatureMap: expected num_qubits to be an int, got float"),
        ({"num_qubits": True}, TypeError, r"FeatureMap: expected num_qubits to be an int, got bool"),
        ({"num_qubits": 2, "reps": 0}, ValueError, r"FeatureMap: expected reps >= 1, got 0"),
        ({"num_qubits": 2, "reps": "2"}, TypeError, r"FeatureMap: expected reps to be an int, got str"),
        ({"num_qubits": 2, "entanglement": "ring"}, ValueError,
         r"FeatureMap: expected entanglement in \('linear', 'circular', 'full', 'none'\), got 'ring'"),
        ({"num_qubits": 2, "input_scaling": 0.0}, ValueError, r"expected a finite input_scaling > 0, got 0.0"),
        ({"num_qubits": 2, "input_scaling": -1}, ValueError, r"expected a finite input_scaling > 0, got -1"),
        ({"num_qubits": 2, "input_scaling": float("nan")}, ValueError, r"expected a finite input_scaling > 0, got nan"),
        ({"num_qubits": 2, "input_scaling": float("inf")}, ValueError, r"expected a finite input_scaling > 0, got inf"),
    ],
)
def test_bad_constructor_arguments_raise(kwargs, error, match):
    with pytest.raises(error, match=match):
        FeatureMap(**kwargs)


def test_wrong_x_size_raises():
    fm = FeatureMap(4)
    with pytest.raises(ValueError, match=r"FeatureMap: expected x.size\(-1\) == 4, got 3"):
        fm.angles(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"FeatureMap: expected x.size\(-1\) == 4, got 5"):
        fm(torch.zeros(5))


def test_all_entanglements_are_accepted():
    for entanglement in ENTANGLEMENTS:
        assert FeatureMap(3, entanglement=entanglement).entanglement == entanglement


def test_feature_map_is_an_abstract_base_with_two_siblings():
    """``FeatureMap(n, …)`` builds the paper's map; the circuit map is its sibling, not its subclass."""
    from qk_lstm_qiskit.circuits.feature_map import CircuitFeatureMap, PaperFeatureMap

    assert type(FeatureMap(2)) is PaperFeatureMap
    assert issubclass(CircuitFeatureMap, FeatureMap) and not issubclass(CircuitFeatureMap, PaperFeatureMap)

    class Incomplete(FeatureMap):
        pass

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()
