"""Fidelity quantum kernel k(x, y) = |⟨ψ(y)|ψ(x)⟩|² as a differentiable torch module."""

from __future__ import annotations

import warnings
from typing import NamedTuple

import torch
from torch import nn

from ..errors import ProductKernelWarning
from ..circuits.feature_map import FeatureMap
from .statevector import StatevectorExecutor
from ..validation import check_finite

__all__ = ["QuantumKernel", "PreparedSide", "warn_if_product"]


def _fidelities(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    """``|<ψ_y|ψ_x>|²`` for states ``(..., D)`` and ``(M, D)`` → ``(..., M)``."""
    overlap = sx @ sy.conj().transpose(0, 1)
    return overlap.real.square() + overlap.imag.square()


def warn_if_product(owner: str, kernels: list[QuantumKernel]) -> None:
    """One :class:`ProductKernelWarning` when any of ``kernels`` is a product kernel (``owner`` names the model)."""
    product = [k for k in kernels if k.is_product_kernel]
    if product:
        warnings.warn(
            f"{owner}: the fidelity kernel of {product[0].feature_map.extra_repr()} is a product of single-qubit "
            "kernels (the CNOTs cancel in U†(y)U(x)); use reps >= 2 for an entangling kernel",
            ProductKernelWarning,
            stacklevel=3,
        )


class PreparedSide(NamedTuple):
    """The ``y`` side of a kernel: angles ``(M, P)`` and, for product kernels, Bloch vectors ``(n, 3, M)``."""

    angles: torch.Tensor
    bloch: torch.Tensor | None


class _ShiftRuleFidelity(torch.autograd.Function):
    """Exact fidelity Gram matrix whose backward is the parameter-shift rule, evaluated exactly.

    Forward: ``k[i, m] = |<ψ(ay_m)|ψ(ax_i)>|²`` from ``N + M`` states. Backward: for every
    angle column j with rotation scale a_j, ``∂k/∂ax[i, j] = a_j (k⁺ − k⁻) / 2`` with
    ``ax[i, j] ± π / 2a_j``: all ``2P·N`` shifted states in one executor call (likewise for
    ``ay``), without building an autograd graph over the circuit.
    """

    @staticmethod
    def forward(ctx, ax, ay, executor: StatevectorExecutor, scales: torch.Tensor):
        states = executor.statevectors(torch.cat([ax, ay]))  # (N + M, D): one simulation
        sx, sy = states[: ax.size(0)], states[ax.size(0) :]
        ctx.executor = executor
        ctx.save_for_backward(ax, ay, sx, sy, scales)
        return _fidelities(sx, sy)

    @staticmethod
    def backward(ctx, grad):  # grad (N, M)
        ax, ay, sx, sy, scales = ctx.saved_tensors
        want_x, want_y = ctx.needs_input_grad[:2]
        angles = torch.cat([a for a, want in ((ax, want_x), (ay, want_y)) if want])  # (R, P)
        if angles.size(0) == 0:
            return None, None, None, None
        rows, p = angles.shape
        shifts = torch.diag(torch.pi / (2 * scales))  # (P, P)
        moved = (angles[:, None, :] + torch.cat([shifts, -shifts])).reshape(-1, p)  # (R·2P, P)
        states = ctx.executor.statevectors(moved).reshape(rows, 2, p, -1)  # (R, ±, P, D): one simulation
        grads = []
        if want_x:
            k = _fidelities(states[: ax.size(0)], sy)  # (N, ±, P, M)
            grads.append(torch.einsum("npm,nm->np", k[:, 0] - k[:, 1], grad) * (scales / 2))
        if want_y:
            k = _fidelities(states[rows - ay.size(0) :], sx)  # (M, ±, P, N)
            grads.append(torch.einsum("mpn,nm->mp", k[:, 0] - k[:, 1], grad) * (scales / 2))
        grad_x = grads.pop(0) if want_x else None
        grad_y = grads.pop(0) if want_y else None
        return grad_x, grad_y, None, None


class QuantumKernel(nn.Module):
    """Gram matrix of the fidelity kernel of one :class:`FeatureMap`.

    .. math:: k(x, y) = |\\langle 0| U^\\dagger(y) U(x) |0\\rangle|^2

    Exact path (``sampler=None``): the feature-map circuit is simulated by
    :class:`StatevectorExecutor`; an ``(N, M)`` matrix costs ``N + M`` state preparations,
    and its backward the parameter-shift rule on ``2P(N + M)`` exactly simulated states.
    For a product circuit (``is_product_kernel``, e.g. the paper's ``reps=1``) the constant
    CNOT stage cancels and ``k = Π_q (1 + r_q(x)·r_q(y)) / 2`` from the per-qubit Bloch
    vectors the executor produces: the same number, far fewer operations.
    :meth:`prepare` / :meth:`evaluate` split off the ``y`` side to reuse it over time steps.
    Sampler path: the compute-uncompute circuit ``feature_map.fidelity_circuit()`` runs on a
    Qiskit ``BaseSamplerV2`` and k is the frequency of the all-zeros bit string.

    Args:
        feature_map: the circuit U(x) and its data → angle encoding.
        sampler: a ``BaseSamplerV2`` or ``None`` for the exact executor (default).
        pass_manager: transpiles the composed fidelity circuit once (sampler path only).
        warn: issue :class:`ProductKernelWarning` for a product kernel (default True; models
            that hold several kernels warn once themselves, :func:`warn_if_product`).

    Shape:
        ``x``: ``(N, d)``, ``y``: ``(M, d)`` with ``d = feature_map.num_qubits`` → ``(N, M)``.

    Warns:
        ProductKernelWarning: when U†(y)U(x) factorises over qubits (e.g. ``reps=1``).

    Example:
        >>> k = QuantumKernel(FeatureMap(4, reps=2))
        >>> k(torch.zeros(3, 4), torch.zeros(2, 4))
        tensor([[1., 1.], ...
    """

    def __init__(self, feature_map: FeatureMap, *, sampler=None, pass_manager=None, warn: bool = True) -> None:
        super().__init__()
        if not isinstance(feature_map, FeatureMap):
            raise TypeError(f"QuantumKernel: expected feature_map to be a FeatureMap, got {type(feature_map).__name__}")
        self.feature_map = feature_map
        self.executor = StatevectorExecutor(feature_map.circuit, feature_map.parameters_order)
        if warn:
            warn_if_product(type(self).__name__, [self])
        self.sampler_fidelity = None
        if sampler is not None:
            from .sampler import SamplerFidelity

            self.sampler_fidelity = SamplerFidelity(feature_map, sampler, pass_manager=pass_manager)

    @property
    def is_product_kernel(self) -> bool:
        """True when k(x, y) = Π_q k_q(x_q, y_q): classically trivial to evaluate."""
        return self.executor.is_product_circuit

    @property
    def num_features(self) -> int:
        return self.feature_map.num_features

    def states(self, x: torch.Tensor) -> torch.Tensor:
        """Exact feature states ``(N, 2**n)`` (complex) for data ``(N, d)``."""
        return self.executor.statevectors(self.feature_map.angles(x))

    def _check(self, name: str, t: torch.Tensor) -> None:
        if t.dim() != 2 or t.size(1) != self.num_features:
            raise ValueError(f"QuantumKernel: expected {name} of shape (*, {self.num_features}), got {tuple(t.shape)}")
        check_finite("QuantumKernel", name, t)

    def prepare(self, y: torch.Tensor) -> PreparedSide:
        """Everything of the ``y`` side that does not depend on ``x``: reuse it across time steps."""
        self._check("y", y)
        angles = self.feature_map.angles(y)  # (M, P)
        if self.sampler_fidelity is None and self.is_product_kernel:
            return PreparedSide(angles, self.executor.product_bloch(angles))
        return PreparedSide(angles, None)

    def evaluate(self, x: torch.Tensor, prepared: PreparedSide, *, check: bool = True) -> torch.Tensor:
        """``(N, M)`` kernel of ``x`` ``(N, d)`` against a :meth:`prepare` d side.

        ``check=False`` skips input validation (for callers that validated upstream).
        """
        if check:
            self._check("x", x)
        ax, ay = self.feature_map.angles(x), prepared.angles.to(x.dtype)  # (N, P), (M, P)
        if self.sampler_fidelity is not None:
            return self.sampler_fidelity(ax, ay)
        if prepared.bloch is not None:  # Π_q |<u_q(y)|u_q(x)>|² = Π_q (1 + r_q(x)·r_q(y)) / 2
            cosines = torch.bmm(self.executor.product_bloch(ax).transpose(1, 2), prepared.bloch)  # (n, N, M)
            return torch.prod(cosines + 1.0, dim=0) * 0.5**self.num_features
        scales = self.executor.shift_scales
        if scales is None:  # a parameter outside a single rotation: plain autograd through the simulation
            return _fidelities(self.executor.statevectors(ax), self.executor.statevectors(ay))
        return _ShiftRuleFidelity.apply(ax, ay, self.executor, ax.new_tensor(scales))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.evaluate(x, self.prepare(y.to(x.dtype)))

    def to_qiskit(self, *, enforce_psd: bool = True):
        """This kernel as a qiskit-machine-learning ``BaseKernel`` (for QSVC, QSVR, PegasosQSVC)."""
        from .qiskit_ml import QiskitKernel

        return QiskitKernel(self, enforce_psd=enforce_psd)

    def extra_repr(self) -> str:
        return "executor=exact" if self.sampler_fidelity is None else "executor=sampler"
