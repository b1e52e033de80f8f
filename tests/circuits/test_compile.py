"""compile_circuit: any circuit in the exact executor's gates, one fresh parameter per gate angle."""

from __future__ import annotations

import numpy as np
import torch
from qiskit.circuit import Parameter, ParameterVector, QuantumCircuit
from qiskit.circuit.library import U2Gate, zz_feature_map

from qk_lstm_qiskit.circuits.compile import compile_circuit
from qk_lstm_qiskit.circuits.feature_map import CircuitFeatureMap, FeatureMap

from _references import kernel_of, qiskit_states


def test_decomposition_rules_and_definitions_equal_statevector(rng):
    x, w = ParameterVector("x", 2), Parameter("w")
    circuit = QuantumCircuit(2)
    circuit.u(x[0], x[1], 0.3, 0)
    circuit.append(U2Gate(x[1], -0.4), [1])
    circuit.rzz(x[0] * x[1], 0, 1)
    circuit.rxx(x[1] + w, 0, 1)
    circuit.ryy(x[0], 1, 0)
    circuit.cp(x[1], 0, 1)
    circuit.crz(x[0], 1, 0)
    circuit.crx(x[1] ** 2, 0, 1)  # no rule: through its definition
    circuit.rzx(x[0].sin(), 0, 1)
    circuit.barrier()
    fm = FeatureMap.from_circuit(circuit, weight_params=[w], initial_weights=[0.7], dtype=torch.float64)
    values = rng.normal(size=(4, 2))
    states = kernel_of(fm).states(torch.tensor(values)).detach().numpy()
    expected = qiskit_states(circuit, np.column_stack([values, np.full(4, 0.7)]), [*x, w])
    assert np.abs(states - expected).max() <= 1e-12
    assert set(fm.circuit.count_ops()) <= {"h", "x", "s", "sdg", "sx", "sxdg", "rx", "ry", "rz", "p", "cx", "t", "tdg"}


def test_compile_gives_one_fresh_angle_per_parameterized_gate():
    compiled = compile_circuit(zz_feature_map(3, reps=2))
    rotations = [i for i in compiled.circuit.data if i.operation.params]
    assert [i.operation.params[0] for i in rotations] == list(compiled.angles)
    assert len(compiled.expressions) == 2 * (3 + 3)  # per rep: P(2x_i) on 3 qubits, 3 ZZ phases (full)
    assert isinstance(FeatureMap.from_circuit(zz_feature_map(3)), CircuitFeatureMap)
