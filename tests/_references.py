"""Independent references shared by the test modules: Qiskit's own statevectors."""

from __future__ import annotations

import warnings

import numpy as np
from qiskit import QuantumCircuit
from qiskit.quantum_info import Statevector

from qk_lstm_qiskit.errors import ProductKernelWarning
from qk_lstm_qiskit.kernels.kernel import QuantumKernel


def kernel_of(feature_map) -> QuantumKernel:
    """The exact kernel of ``feature_map``, without its product-kernel warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ProductKernelWarning)
        return QuantumKernel(feature_map)


def qiskit_states(circuit: QuantumCircuit, x: np.ndarray, params=None) -> np.ndarray:
    """``Statevector`` of ``circuit`` bound to each row of ``x`` (columns in ``params`` order), ``(B, 2**n)``."""
    params = list(circuit.parameters) if params is None else params
    return np.stack([Statevector(circuit.assign_parameters(dict(zip(params, row)))).data for row in x])
