"""The variational circuit of the QLSTM baseline (Chen, Yoo, Fang 2020)."""

from __future__ import annotations

from qiskit.circuit import ParameterVector, QuantumCircuit

from .feature_map import FeatureMap, entangling_pairs

__all__ = ["vqc_circuit"]


def vqc_circuit(feature_map: FeatureMap, depth: int) -> tuple[QuantumCircuit, ParameterVector]:
    """Encoding ``U(x)`` followed by ``depth`` × [RX(w) RY(w) RZ(w) on every qubit, CNOT ladder].

    Returns the circuit and its trainable-weight vector ``w`` (``3 · n · depth`` long).
    """
    n = feature_map.num_qubits
    weights = ParameterVector("w", 3 * n * depth)
    circuit = feature_map.circuit.copy(name="VQC")
    for layer in range(depth):
        for i in range(n):
            base = 3 * (layer * n + i)
            circuit.rx(weights[base], i)
            circuit.ry(weights[base + 1], i)
            circuit.rz(weights[base + 2], i)
        for control, target in entangling_pairs(n, "linear"):
            circuit.cx(control, target)
    return circuit, weights
