"""Fidelity quantum kernel k(x, y) = |⟨ψ(y)|ψ(x)⟩|² as a differentiable torch module."""

from __future__ import annotations

import warnings
from typing import NamedTuple

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from ..errors import ProductKernelWarning
from ..circuits.feature_map import FeatureMap
from .statevector import StatevectorExecutor
from ..validation import check_tensor

__all__ = ["QuantumKernel", "PreparedSide", "warn_if_product", "GRADIENTS"]

GRADIENTS = ("adjoint", "parameter-shift")  # exact-path backward: one reverse sweep, or 2P shifted states per row


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
            "kernels (U†(y)U(x) factorises over qubits: classically trivial); use a map whose entangling "
            "gates survive, e.g. reps >= 2 with entanglement",
            ProductKernelWarning,
            stacklevel=3,
        )


class PreparedSide(NamedTuple):
    """The ``y`` side of a kernel: angles ``(M, P)``; Bloch vectors ``(n, 3, M)`` (product kernels) or,
    for entangling kernels on the exact path, states ``(M, 2**n)`` (up to the constant tail)."""

    angles: torch.Tensor
    bloch: torch.Tensor | None
    states: torch.Tensor | None = None


class _AdjointFidelity(torch.autograd.Function):
    """Exact fidelity Gram matrix ``k[n, m] = |⟨φ_m|ψ_n⟩|²`` with an adjoint backward.

    Forward: ``ψ_n`` from ``ax`` (in row chunks that fit the executor's memory limit; kept for
    the backward when they take at most a quarter of it), ``φ_m = sy`` given. Backward with
    ``G = ∂L/∂k`` and ``W = G ⊙ ⟨φ|ψ⟩``: ``∂L/∂ψ = 2 W φ`` goes through one adjoint sweep of
    the executor (:meth:`StatevectorExecutor.adjoint`) to ``∂L/∂ax``; ``∂L/∂φ = 2 W^† ψ`` is
    returned for ``sy`` (whose own adjoint sweep runs once, however many steps share it).
    """

    @staticmethod
    def forward(ctx, ax, sy, executor):
        rows, dtype, device = ax.size(0), ax.dtype, ax.device
        keep = executor.chunk_rows(rows, dtype, device, copies=4, what="kernel states") == rows  # fits: keep them
        if keep:
            sx = executor.simulate(ax, drop_constant_tail=True)  # (N, D)
            overlap = sx @ sy.mH  # (N, M): ⟨φ_m|ψ_n⟩
        else:
            sx, overlap = None, sy.new_empty(rows, sy.size(0))
            chunk = executor.chunk_rows(rows, dtype, device, held=0, copies=4, what="kernel states")
            for start in range(0, rows, chunk):
                overlap[start : start + chunk] = executor.simulate(ax[start : start + chunk], drop_constant_tail=True) @ sy.mH
        ctx.executor = executor
        ctx.save_for_backward(ax, sy, overlap, sx)
        return overlap.real.square() + overlap.imag.square()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):  # grad (N, M)
        ax, sy, overlap, sx = ctx.saved_tensors
        executor, (want_x, want_y) = ctx.executor, ctx.needs_input_grad[:2]
        weights = 2 * grad.to(overlap.dtype) * overlap  # (N, M): 2 W
        grad_ax = torch.zeros_like(ax) if want_x else None
        grad_sy = torch.zeros_like(sy) if want_y else None
        rows = ax.size(0)
        chunk = rows if sx is not None else executor.chunk_rows(
            rows, ax.dtype, ax.device, held=executor.state_bytes(sy.size(0), ax.dtype), copies=2, what="kernel gradient"
        )
        for start in range(0, rows, chunk):
            part = slice(start, start + chunk)
            states = sx[part] if sx is not None else executor.simulate(ax[part], drop_constant_tail=True)
            if want_x:
                grad_ax[part] = executor.adjoint(ax[part], states, weights[part] @ sy, drop_constant_tail=True)
            if want_y:
                grad_sy += weights[part].mH @ states
        return grad_ax, grad_sy, None


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
    and its backward one adjoint sweep per state (about three more; ``gradient="parameter-shift"``:
    the shift rule on ``2P(N + M)`` exactly simulated states, the reference). Memory stays
    ``O((N + M)·2^n)``, in row chunks within the executor's memory limit.
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
        gradient: exact-path backward, ``"adjoint"`` (default) or ``"parameter-shift"``.
        memory_limit: bytes the exact executor may allocate per call (default: a fraction of the
            available memory, :func:`~qk_lstm_qiskit.kernels.statevector.default_memory_limit`).

    Shape:
        ``x``: ``(N, d)``, ``y``: ``(M, d)`` with ``d = feature_map.num_qubits`` → ``(N, M)``.

    Warns:
        ProductKernelWarning: when U†(y)U(x) factorises over qubits (e.g. ``reps=1``).

    Example:
        >>> k = QuantumKernel(FeatureMap(4, reps=2))
        >>> k(torch.zeros(3, 4), torch.zeros(2, 4))
        tensor([[1., 1.], ...
    """

    def __init__(
        self, feature_map: FeatureMap, *, sampler=None, pass_manager=None, warn: bool = True,
        gradient: str = "adjoint", memory_limit: int | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(feature_map, FeatureMap):
            raise TypeError(f"QuantumKernel: expected feature_map to be a FeatureMap, got {type(feature_map).__name__}")
        if gradient not in GRADIENTS:
            raise ValueError(f"QuantumKernel: expected gradient in {GRADIENTS}, got {gradient!r}")
        self.feature_map, self.gradient = feature_map, gradient
        self.executor = StatevectorExecutor(feature_map.circuit, feature_map.parameters_order, memory_limit=memory_limit)
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
        check_tensor("QuantumKernel", name, t, finite=False)  # float32 or float64: never a complex "fidelity"
        if t.dim() != 2 or t.size(1) != self.num_features:
            raise ValueError(f"QuantumKernel: expected {name} of shape (*, {self.num_features}), got {tuple(t.shape)}")
        check_tensor("QuantumKernel", name, t)

    def prepare(self, y: torch.Tensor) -> PreparedSide:
        """Everything of the ``y`` side that does not depend on ``x``: reuse it across time steps."""
        self._check("y", y)
        angles = self.feature_map.angles(y)  # (M, P)
        if self.sampler_fidelity is not None:
            return PreparedSide(angles, None)
        if self.is_product_kernel:
            return PreparedSide(angles, self.executor.product_bloch(angles))
        if self.gradient == "adjoint":
            return PreparedSide(angles, None, self.executor.statevectors(angles, drop_constant_tail=True))
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
        if self.gradient == "adjoint":
            states = prepared.states
            if states is None or states.dtype != (torch.complex64 if x.dtype == torch.float32 else torch.complex128):
                states = self.executor.statevectors(ay, drop_constant_tail=True)  # (M, D)
            return _AdjointFidelity.apply(ax, states, self.executor)
        scales = self.executor.shift_scales
        if scales is None:  # a parameter outside a single rotation: autograd (adjoint) through the states
            return _fidelities(self.executor.statevectors(ax), self.executor.statevectors(ay))
        return _ShiftRuleFidelity.apply(ax, ay, self.executor, ax.new_tensor(scales))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self._check("x", x)
        self._check("y", y)  # before the cast to x's dtype
        return self.evaluate(x, self.prepare(y.to(x.dtype)), check=False)

    def to_qiskit(self, *, enforce_psd: bool = True):
        """This kernel as a qiskit-machine-learning ``BaseKernel`` (for QSVC, QSVR, PegasosQSVC)."""
        from .qiskit_ml import QiskitKernel

        return QiskitKernel(self, enforce_psd=enforce_psd)

    def extra_repr(self) -> str:
        return f"executor=exact, gradient={self.gradient!r}" if self.sampler_fidelity is None else "executor=sampler"
