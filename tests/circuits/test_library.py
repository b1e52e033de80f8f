"""FeatureMap.from_circuit (any Qiskit circuit as the feature map), the named library maps and
their trainable layers: statevectors against Qiskit, gradients against finite differences and
gradcheck, the sampler path against the exact path."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from qiskit.circuit import Gate, Parameter, ParameterVector, QuantumCircuit
from qiskit.circuit.library import pauli_feature_map, z_feature_map, zz_feature_map
from qiskit.quantum_info import Statevector
from qiskit_machine_learning.primitives import QMLSampler
from torch.func import functional_call

from _assertions import raises_one_line
from qk_lstm_qiskit.circuits.feature_map import FeatureMap, PaperFeatureMap
from qk_lstm_qiskit.circuits.library import build_feature_map
from qk_lstm_qiskit.errors import ProductKernelWarning
from qk_lstm_qiskit.kernels.kernel import QuantumKernel

from _references import kernel_of, qiskit_states

LIBRARY = {
    "zz": lambda n, reps: zz_feature_map(n, reps=reps),
    "z": lambda n, reps: z_feature_map(n, reps=reps),
    "pauli": lambda n, reps: pauli_feature_map(n, reps=reps, paulis=["X", "YZ"]),
}


@pytest.mark.parametrize("kind", sorted(LIBRARY))
@pytest.mark.parametrize("num_qubits", [2, 3, 4, 5, 6])
def test_library_maps_equal_statevector_of_the_bound_circuit(kind, num_qubits, rng):
    x = rng.uniform(-math.pi, math.pi, size=(2, num_qubits))
    for reps in (1, 2, 3):
        circuit = LIBRARY[kind](num_qubits, reps)
        kernel = kernel_of(FeatureMap.from_circuit(circuit))  # no weights: the map serves both dtypes
        for dtype, tol in ((torch.float32, 1e-6), (torch.float64, 1e-12)):
            data = torch.tensor(x, dtype=dtype)
            expected = qiskit_states(circuit, data.double().numpy())  # the values the map received
            states = kernel.states(data).numpy()
            assert np.abs(states - expected).max() <= tol, (kind, num_qubits, reps, dtype)


def test_zz_angles_are_the_circuit_expressions():
    fm = FeatureMap.from_circuit(zz_feature_map(2, reps=1))
    x = torch.tensor([[0.3, -1.1]], dtype=torch.float64)
    angles = fm.angles(x)[0]
    expected = [2 * 0.3, 2 * -1.1, 2 * (math.pi - 0.3) * (math.pi + 1.1)]  # P(2x_i), then P(2(π−x0)(π−x1))
    wrapped = torch.remainder(torch.tensor(expected, dtype=torch.float64) + 2 * math.pi, 4 * math.pi) - 2 * math.pi
    assert torch.allclose(angles, wrapped, atol=1e-13)  # reduced to [-2π, 2π): the gates are 4π-periodic
    assert expected[2] > 4 * math.pi and angles.abs().max() < 2 * math.pi


def test_source_circuit_is_not_modified():
    circuit = zz_feature_map(3, reps=2)
    before = [(i.operation.name, [str(p) for p in i.operation.params]) for i in circuit.data]
    FeatureMap.from_circuit(circuit).angles(torch.zeros(1, 3))
    assert [(i.operation.name, [str(p) for p in i.operation.params]) for i in circuit.data] == before


def test_data_gradients_equal_finite_differences(rng):
    kernel = kernel_of(FeatureMap.from_circuit(zz_feature_map(3, reps=2), dtype=torch.float64))
    x = torch.tensor(rng.normal(size=(2, 3)), requires_grad=True)
    y = torch.tensor(rng.normal(size=(3, 3)), requires_grad=True)
    weights = torch.tensor(rng.normal(size=(2, 3)))
    (gx, gy) = torch.autograd.grad((kernel(x, y) * weights).sum(), (x, y))
    eps = 1e-6
    for tensor, grad, other in ((x, gx, "x"), (y, gy, "y")):
        numeric = torch.zeros_like(tensor)
        for index in np.ndindex(*tensor.shape):
            step = torch.zeros_like(tensor)
            step[index] = eps
            plus = (x + step, y) if other == "x" else (x, y + step)
            minus = (x - step, y) if other == "x" else (x, y - step)
            with torch.no_grad():
                numeric[index] = ((kernel(*plus) - kernel(*minus)) * weights).sum() / (2 * eps)
        assert torch.allclose(grad, numeric, atol=1e-7), other


@pytest.mark.parametrize("kind", ["zz", "paper", "pauli"])
def test_gradcheck_with_trainable_layers_and_bandwidths(kind, gen):
    fm = build_feature_map(kind, 2, reps=2, trainable_layers=1, trainable_scaling=True, input_scaling=0.8,
                           paulis=("Y", "XZ"), dtype=torch.float64)
    kernel = kernel_of(fm)
    x = torch.randn(2, 2, dtype=torch.float64, generator=gen, requires_grad=True)
    y = torch.randn(3, 2, dtype=torch.float64, generator=gen, requires_grad=True)
    w = torch.randn(fm.weights.numel(), dtype=torch.float64, generator=gen, requires_grad=True)

    def gram(x, y, w):
        return functional_call(kernel, {"feature_map.weights": w}, (x, y))

    assert torch.autograd.gradcheck(gram, (x, y, w))
    assert fm.weights.numel() == 2 * 2 * 1 * 2 + 2  # RY, RZ per qubit, layer and rep; a bandwidth per rep


def test_named_maps_match_qiskit_and_the_paper_class(rng):
    x = torch.tensor(rng.normal(size=(4, 3)))
    zz = kernel_of(build_feature_map("zz", 3, reps=2, entanglement="full", dtype=torch.float64))
    reference = qiskit_states(zz_feature_map(3, reps=2, entanglement="full"), x.numpy())
    assert np.abs(zz.states(x).numpy() - reference).max() <= 1e-12
    assert type(build_feature_map("paper", 3, reps=2)) is PaperFeatureMap  # no trainable layer: the paper's class
    # the paper map as a circuit with zero-initialised trainable layers gives the paper's kernel
    layered = kernel_of(build_feature_map("paper", 3, reps=2, trainable_layers=2, dtype=torch.float64))
    paper = kernel_of(FeatureMap(3, reps=2, dtype=torch.float64))
    assert torch.allclose(layered(x, x), paper(x, x), atol=1e-12)
    scaled = kernel_of(build_feature_map("z", 3, reps=2, input_scaling=0.25, dtype=torch.float64))
    plain = kernel_of(build_feature_map("z", 3, reps=2, dtype=torch.float64))
    assert torch.allclose(scaled(x, x), plain(0.25 * x, 0.25 * x), atol=1e-12)


def test_product_kernel_is_decided_from_the_circuit():
    assert kernel_of(build_feature_map("z", 4, reps=3)).is_product_kernel  # no entangler at all
    assert kernel_of(build_feature_map("paper", 4, reps=1, trainable_layers=1)).is_product_kernel  # CNOTs cancel
    assert not kernel_of(build_feature_map("zz", 4, reps=1)).is_product_kernel
    assert not kernel_of(build_feature_map("paper", 4, reps=2, trainable_layers=1)).is_product_kernel
    with pytest.warns(ProductKernelWarning):
        QuantumKernel(FeatureMap.from_circuit(z_feature_map(2)))


def test_sampler_path_equals_exact_path_with_trainable_weights(gen):
    fm = build_feature_map("zz", 2, reps=2, trainable_layers=1, trainable_scaling=True, input_scaling=0.5,
                           dtype=torch.float64)
    with torch.no_grad():
        fm.weights.normal_(generator=gen)
    exact, sampled = kernel_of(fm), QuantumKernel(fm, sampler=QMLSampler(shots=None))
    x = torch.randn(3, 2, dtype=torch.float64, generator=gen, requires_grad=True)
    y = torch.randn(2, 2, dtype=torch.float64, generator=gen)
    k_exact, k_sampled = exact(x, y), sampled(x, y)
    g_exact = torch.autograd.grad(k_exact.square().sum(), (x, fm.weights))
    g_sampled = torch.autograd.grad(k_sampled.square().sum(), (x, fm.weights))
    assert (k_exact - k_sampled).abs().max() <= 1e-6
    for a, b in zip(g_exact, g_sampled):
        assert (a - b).abs().max() <= 1e-6
    assert g_exact[1].abs().max() > 1e-2  # the weights do get a gradient


def test_fidelity_circuit_of_a_circuit_map_is_the_kernel(rng):
    fm = FeatureMap.from_circuit(zz_feature_map(2, reps=2), dtype=torch.float64)
    circuit, ax, ay = fm.fidelity_circuit()
    x, y = torch.tensor(rng.normal(size=(1, 2))), torch.tensor(rng.normal(size=(1, 2)))
    bound = circuit.remove_final_measurements(inplace=False).assign_parameters(
        dict(zip([*ax, *ay], [*fm.angles(x)[0].tolist(), *fm.angles(y)[0].tolist()]))
    )
    assert Statevector(bound).probabilities()[0] == pytest.approx(kernel_of(fm)(x, y).item(), abs=1e-12)


def test_errors_are_one_line():
    x = ParameterVector("x", 2)
    bad = QuantumCircuit(2)
    bad.append(Gate("mystery", 1, [x[0]]), [0])
    with raises_one_line(ValueError, "unsupported gate 'mystery' without a definition"):
        FeatureMap.from_circuit(bad)
    measured = zz_feature_map(2).copy()
    measured.measure_all()
    with raises_one_line(ValueError, "without classical bits, got 2"):
        FeatureMap.from_circuit(measured)
    with raises_one_line(TypeError, "expected a qiskit QuantumCircuit, got str"):
        FeatureMap.from_circuit("zz")
    circuit = zz_feature_map(2)
    with raises_one_line(ValueError, r"expected parameters of the circuit, got unknown \['w'\]"):
        FeatureMap.from_circuit(circuit, weight_params=[Parameter("w")])
    with raises_one_line(ValueError, r"got unassigned \['x\[1\]'\]"):
        FeatureMap.from_circuit(circuit, input_params=[circuit.parameters[0]])
    with raises_one_line(ValueError, "expected at least one input parameter"):
        FeatureMap.from_circuit(circuit, weight_params=list(circuit.parameters))
    with raises_one_line(ValueError, r"expected 1 finite initial_weights, got shape \(2,\)"):
        FeatureMap.from_circuit(circuit, input_params=[circuit.parameters[0]],
                                weight_params=[circuit.parameters[1]], initial_weights=[1.0, 2.0])
    with raises_one_line(ValueError, "expected x.size.-1. == 2, got 3"):
        FeatureMap.from_circuit(circuit).angles(torch.zeros(1, 3))
    with raises_one_line(ValueError, "expected kind in"):
        build_feature_map("rbf", 2)
    with raises_one_line(ValueError, "got 'none' .use 'z'."):
        build_feature_map("zz", 2, entanglement="none")
    with raises_one_line(ValueError, "expected paulis as strings over I, X, Y, Z"):
        build_feature_map("pauli", 2, paulis=("ZQ",))
    with raises_one_line(ValueError, "expected trainable_layers >= 0, got -1"):
        build_feature_map("zz", 2, trainable_layers=-1)


def test_config_keys_build_the_map_and_checkpoints_carry_its_weights(tmp_path):
    from qiskit_machine_learning.primitives import QMLSampler as ExactSampler

    from qk_lstm_qiskit.checkpoint import load_tagger
    from qk_lstm_qiskit.config import load_config
    from qk_lstm_qiskit.training.experiment import run_training

    overrides = {"model": {"feature_map": "zz", "reps": 1, "trainable_layers": 1, "input_scaling": 0.1,
                           "trainable_scaling": True}, "train": {"epochs": 1}}
    config = load_config(overrides=overrides)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ProductKernelWarning)
        result = run_training(config, tmp_path / "run", progress=False)
        tagger, words, _, _ = load_tagger(tmp_path / "run" / "model.pt")
        on_sampler, _, _, _ = load_tagger(tmp_path / "run" / "model.pt", sampler=ExactSampler(shots=None))
    assert result["trainable_parameters"] == 183 + 2 * 4 * 1 * 1 + 1  # + RY·RZ weights + a bandwidth per rep
    fm = tagger.recurrent.cells[0].kernel.feature_map
    state = torch.load(tmp_path / "run" / "model.pt", weights_only=True)["model_state"]
    weights = state["recurrent.cells.0.kernel.feature_map.weights"]
    assert torch.equal(fm.weights.detach(), weights) and weights[-1:].ne(math.log(0.1)).all()  # the log-bandwidth was trained
    cell = tagger.recurrent.cells[0]
    assert cell.kernel.route(cell.prepare()) is not None  # the statevector route: trainable weights
    sentence = torch.tensor([words.encode(["The", "dog", "eat"])])
    with torch.no_grad():
        assert (tagger(sentence) - on_sampler(sentence)).abs().max() <= 1e-5


@pytest.mark.parametrize(
    ("overrides", "match"),
    [({"feature_map": "rbf"}, r"expected model.feature_map in \('paper', 'zz', 'z', 'pauli'\), got 'rbf'"),
     ({"trainable_layers": -1}, r"expected model.trainable_layers >= 0, got -1"),
     ({"paulis": 3}, r"expected model.paulis to be str, got 3")],
)
def test_bad_feature_map_config_raises(overrides, match):
    from qk_lstm_qiskit.config import load_config

    with raises_one_line(ValueError, match):
        load_config(overrides={"model": overrides})
