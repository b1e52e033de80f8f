"""Pauli measurement settings and per-qubit linear maps on outcome distributions.

Outcome index ``j`` of ``n`` bits has bit q of ``j`` as qubit (clbit) q: Qiskit's little-endian
order, so a distribution ``(…, 2**n)`` reshapes to ``(…, 2, …, 2)`` with qubit q on axis ``-1 - q``.

A setting assigns each qubit a basis ``0 = X, 1 = Y, 2 = Z``. Measuring basis ``a`` is the rotation
``R_y(β_a) R_z(α_a)`` (RZ first) followed by a Z measurement, with ``(α, β)``: X ``(0, −π/2)``,
Y ``(−π/2, −π/2)``, Z ``(0, 0)``; outcome 0 is the ``+1`` eigenvalue of the Pauli.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "PAULI_BASES",
    "BASIS_ANGLES",
    "apply_per_qubit",
    "basis_angles",
    "basis_unitaries",
    "measured_distributions",
    "all_settings",
    "random_settings",
]

PAULI_BASES = ("X", "Y", "Z")  #: the measurement bases, in the order of :data:`BASIS_ANGLES`
BASIS_ANGLES = np.array([[0.0, -np.pi / 2], [-np.pi / 2, -np.pi / 2], [0.0, 0.0]])  #: (3, 2): (α, β) per basis


def _rz(angle: float) -> np.ndarray:
    return np.diag([np.exp(-0.5j * angle), np.exp(0.5j * angle)])


def _ry(angle: float) -> np.ndarray:
    c, s = np.cos(angle / 2), np.sin(angle / 2)
    return np.array([[c, -s], [s, c]], dtype=complex)


def basis_unitaries() -> np.ndarray:
    """``(3, 2, 2)`` the basis changes ``V_a = R_y(β_a) R_z(α_a)`` of X, Y, Z."""
    return np.stack([_ry(beta) @ _rz(alpha) for alpha, beta in BASIS_ANGLES])


def basis_angles(settings: np.ndarray) -> np.ndarray:
    """``(K, 2n)`` angles ``[α_0 … α_{n-1}, β_0 … β_{n-1}]`` of settings ``(K, n)`` (values 0, 1, 2)."""
    settings = np.asarray(settings)
    return np.concatenate([BASIS_ANGLES[settings, 0], BASIS_ANGLES[settings, 1]], axis=-1)


def apply_per_qubit(matrices: np.ndarray, tensor: np.ndarray) -> np.ndarray:
    """``(⊗_q A_q) t`` for per-qubit matrices ``(…, n, 2, 2)`` (or one ``(2, 2)`` for all qubits) and ``t`` ``(…, 2**n)``.

    Leading axes of both broadcast against each other.
    """
    tensor = np.asarray(tensor)
    n = int(round(np.log2(tensor.shape[-1])))
    if n < 1 or 2**n != tensor.shape[-1]:
        raise ValueError(f"apply_per_qubit: expected a last axis of 2**n entries, got {tensor.shape[-1]}")
    matrices = np.asarray(matrices)
    if matrices.ndim == 2:
        matrices = np.broadcast_to(matrices, (n, 2, 2))
    if matrices.shape[-3:] != (n, 2, 2):
        raise ValueError(f"apply_per_qubit: expected matrices of shape (…, {n}, 2, 2), got {matrices.shape}")
    batch = np.broadcast_shapes(tensor.shape[:-1], matrices.shape[:-3])
    out = np.broadcast_to(tensor, (*batch, 2**n)).reshape(*batch, *([2] * n))
    mats = np.broadcast_to(matrices, (*batch, n, 2, 2))
    for q in range(n):
        axis = len(batch) + n - 1 - q  # qubit q: the (q+1)-th axis from the end
        m = mats[..., q, :, :].reshape(*batch, *([1] * (n - 1)), 2, 2)
        moved = np.moveaxis(out, axis, -1)  # (…, other qubits, 2)
        out = np.moveaxis((m @ moved[..., None])[..., 0], -1, axis)
    return out.reshape(*batch, 2**n)


def measured_distributions(states: np.ndarray, settings: np.ndarray) -> np.ndarray:
    """Exact outcome distributions ``(N, K, 2**n)`` of states ``(N, 2**n)`` measured in settings ``(K, n)``."""
    states = np.asarray(states)
    settings = np.asarray(settings)
    rotated = apply_per_qubit(basis_unitaries()[settings][None], states[:, None, :])  # (N, K, 2**n)
    return np.abs(rotated) ** 2


def all_settings(num_qubits: int) -> np.ndarray:
    """All ``3**n`` settings ``(3**n, n)``."""
    grids = np.meshgrid(*[np.arange(3)] * num_qubits, indexing="ij")
    return np.stack([g.ravel() for g in grids], axis=-1)


def random_settings(num_settings: int, num_qubits: int, rng: np.random.Generator) -> np.ndarray:
    """``(K, n)`` settings drawn uniformly and independently (the classical-shadow ensemble)."""
    return rng.integers(0, 3, size=(num_settings, num_qubits))
