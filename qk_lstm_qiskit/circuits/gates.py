"""The gate table of the exact executor: one list, read by ``compile`` (what to keep) and by the
executor (how to run it).

One-qubit gates are ``A + cos(m θ) B + sin(m θ) C`` (``A`` alone for a fixed gate); two-qubit
gates are monomial (a permutation of the basis states times phases): CX, CZ, SWAP.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["FIXED_1Q", "PARAMETERIZED_1Q", "MONOMIAL_2Q", "SUPPORTED_GATES", "IDENTITY", "ZERO", "PAULIS"]

IDENTITY = np.eye(2, dtype=complex)  #: the 2×2 identity
ZERO = np.zeros((2, 2), dtype=complex)  #: the 2×2 zero matrix
_X = np.array([[0, 1], [1, 0]], dtype=complex)
_Y = np.array([[0, -1j], [1j, 0]], dtype=complex)
_Z = np.diag([1.0, -1.0]).astype(complex)
PAULIS = (_X, _Y, _Z)  #: the Pauli matrices X, Y, Z

#: fixed one-qubit gates: name → 2×2 matrix
FIXED_1Q: dict[str, np.ndarray] = {
    "id": IDENTITY,
    "h": np.array([[1, 1], [1, -1]], dtype=complex) / math.sqrt(2),
    "x": _X,
    "y": _Y,
    "z": _Z,
    "s": np.diag([1, 1j]),
    "sdg": np.diag([1, -1j]),
    "t": np.diag([1, np.exp(1j * math.pi / 4)]),
    "tdg": np.diag([1, np.exp(-1j * math.pi / 4)]),
    "sx": np.array([[1 + 1j, 1 - 1j], [1 - 1j, 1 + 1j]]) / 2,
    "sxdg": np.array([[1 - 1j, 1 + 1j], [1 + 1j, 1 - 1j]]) / 2,
}
#: one-qubit rotations: name → ``(A, B, C, m)`` with ``U(θ) = A + cos(mθ) B + sin(mθ) C``
PARAMETERIZED_1Q: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, float]] = {
    "rx": (ZERO, IDENTITY, -1j * _X, 0.5),
    "ry": (ZERO, IDENTITY, -1j * _Y, 0.5),
    "rz": (ZERO, IDENTITY, -1j * _Z, 0.5),
    "p": (np.diag([1, 0]).astype(complex), np.diag([0, 1]).astype(complex), np.diag([0, 1j]), 1.0),
}
MONOMIAL_2Q = ("cx", "cz", "swap")  #: two-qubit gates that permute amplitudes (and multiply phases)
SUPPORTED_GATES = tuple(sorted((*FIXED_1Q, *PARAMETERIZED_1Q, *MONOMIAL_2Q)))  #: every gate the exact executor runs
