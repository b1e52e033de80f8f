"""Exact, differentiable statevector simulation of parameterized Qiskit circuits in torch.

The executor (:class:`StatevectorExecutor`, :mod:`.executor`) compiles ``circuit.data`` once into
alternating *stages* (:mod:`.stages`, from the gate table :mod:`qk_lstm_qiskit.circuits.gates`):

* a single-qubit stage: every qubit gets the product of its consecutive one-qubit gates
  ``A + cos(φ) B + sin(φ) C``, multi-affine in the cosines and sines of its slot angles and so,
  compiled once, a sum of ``3^S'`` Fourier modes of the values (:mod:`.modes`);
* a monomial stage: consecutive CX / CZ / SWAP gates fused into one permutation of the
  ``2**n`` amplitudes and one phase vector, ``ψ'[k] = phase[k] ψ[perm[k]]``.

Each call runs on one backend, chosen once per call: the compiled numba loops of :mod:`.native`
(:mod:`.numba_backend`, CPU, up to ``numba_backend.MAX_QUBITS`` qubits) or torch's batched products
(:mod:`.torch_backend`). Gradients are *adjoint*: one reverse sweep, about three forward passes,
memory ``O(B·2^n)``; directional derivatives by forward mode (:meth:`StatevectorExecutor.jvp`). Rows
are processed in chunks within the executor's own memory limit (:mod:`.memory`); a call that cannot fit
is refused before allocating. Everything runs on the device and precision of the values.

Amplitudes follow Qiskit's little-endian convention (qubit ``q`` is bit ``q`` of the
basis index), so results equal ``qiskit.quantum_info.Statevector`` of the bound circuit.
"""

from __future__ import annotations

from ...circuits.gates import SUPPORTED_GATES
from .executor import StatevectorExecutor
from .memory import MEMORY_FRACTION, MemoryPolicy, default_memory_limit
from .modes import MAX_MODES, FourierBloch, FourierModes, ProductForm, UnitaryModes

__all__ = [
    "StatevectorExecutor", "SUPPORTED_GATES", "ProductForm", "FourierModes", "FourierBloch", "UnitaryModes",
    "MAX_MODES", "MEMORY_FRACTION", "MemoryPolicy", "default_memory_limit",
]
