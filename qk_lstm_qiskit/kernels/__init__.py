"""Fidelity kernels k(x, y) = |<0|U†(y)U(x)|0>|² and the executors that evaluate them.

``statevector``: the exact torch executor of a Qiskit circuit; ``kernel``: :class:`QuantumKernel`
(exact path, or a sampler); ``sampler``: the SamplerQNN + TorchConnector fidelity; ``fused``: the
one-node QK-LSTM layer for product kernels; ``diagnostics``: concentration, geometric difference,
effective dimension; ``alignment``: kernel-target alignment training; ``qiskit_ml``: the
qiskit-machine-learning ``BaseKernel`` adapter.
"""
