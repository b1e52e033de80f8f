"""Fidelity quantum kernel k(x, y) = |⟨ψ(y)|ψ(x)⟩|² as a differentiable torch module."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from .errors import ProductKernelWarning
from .feature_map import FeatureMap
from .statevector import StatevectorExecutor
from .validation import check_finite

__all__ = ["QuantumKernel"]


class QuantumKernel(nn.Module):
    """Gram matrix of the fidelity kernel of one :class:`FeatureMap`.

    .. math:: k(x, y) = |\\langle 0| U^\\dagger(y) U(x) |0\\rangle|^2

    Exact path (``sampler=None``): the feature-map circuit is simulated by
    :class:`StatevectorExecutor`; an ``(N, M)`` matrix costs ``N + M`` state preparations.
    Sampler path: the compute-uncompute circuit ``feature_map.fidelity_circuit()`` runs on a
    Qiskit ``BaseSamplerV2`` and k is the frequency of the all-zeros bit string.

    Args:
        feature_map: the circuit U(x) and its data → angle encoding.
        sampler: a ``BaseSamplerV2`` or ``None`` for the exact executor (default).
        pass_manager: transpiles the composed fidelity circuit once (sampler path only).

    Shape:
        ``x``: ``(N, d)``, ``y``: ``(M, d)`` with ``d = feature_map.num_qubits`` → ``(N, M)``.

    Warns:
        ProductKernelWarning: when U†(y)U(x) factorises over qubits (e.g. ``reps=1``).

    Example:
        >>> k = QuantumKernel(FeatureMap(4, reps=2))
        >>> k(torch.zeros(3, 4), torch.zeros(2, 4))
        tensor([[1., 1.], ...
    """

    def __init__(self, feature_map: FeatureMap, *, sampler=None, pass_manager=None) -> None:
        super().__init__()
        if not isinstance(feature_map, FeatureMap):
            raise TypeError(f"QuantumKernel: expected feature_map to be a FeatureMap, got {type(feature_map).__name__}")
        self.feature_map = feature_map
        self.executor = StatevectorExecutor(feature_map.circuit, feature_map.parameters_order)
        if self.is_product_kernel:
            warnings.warn(
                f"QuantumKernel: the fidelity kernel of {feature_map.extra_repr()} is a product of "
                "single-qubit kernels (the CNOTs cancel in U†(y)U(x)); use reps >= 2 for an entangling kernel",
                ProductKernelWarning,
                stacklevel=2,
            )
        self.sampler_fidelity = None
        if sampler is not None:
            from .sampler_kernel import SamplerFidelity

            self.sampler_fidelity = SamplerFidelity(feature_map, sampler, pass_manager=pass_manager)

    @property
    def is_product_kernel(self) -> bool:
        """True when k(x, y) = Π_q k_q(x_q, y_q): classically trivial to evaluate."""
        return self.executor.is_product_circuit

    @property
    def num_features(self) -> int:
        return self.feature_map.num_qubits

    def states(self, x: torch.Tensor) -> torch.Tensor:
        """Exact feature states ``(N, 2**n)`` (complex) for data ``(N, d)``."""
        return self.executor.statevectors(self.feature_map.angles(x))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        for name, t in (("x", x), ("y", y)):
            if t.dim() != 2 or t.size(1) != self.num_features:
                raise ValueError(
                    f"QuantumKernel: expected {name} of shape (*, {self.num_features}), got {tuple(t.shape)}"
                )
            check_finite("QuantumKernel", name, t)
        if self.sampler_fidelity is not None:
            return self.sampler_fidelity(self.feature_map.angles(x), self.feature_map.angles(y))
        states = self.states(torch.cat([x, y.to(x.dtype)], dim=0))  # (N + M, 2**n)
        sx, sy = states[: x.size(0)], states[x.size(0) :]
        overlap = sx @ sy.conj().transpose(0, 1)  # (N, M) = <ψ(y)|ψ(x)>*
        return overlap.real.square() + overlap.imag.square()

    def extra_repr(self) -> str:
        return "executor=exact" if self.sampler_fidelity is None else "executor=sampler"
