"""qk_lstm_qiskit: the Quantum-Kernel LSTM on Qiskit circuits, trained in torch."""

from .feature_map import FeatureMap
from .kernel import QuantumKernel

__all__ = ["FeatureMap", "QuantumKernel"]
