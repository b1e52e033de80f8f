"""The exact fidelity on statevectors, differentiated by the executor's adjoint sweep."""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from ..circuits.feature_map import FeatureMap
from .fidelity import Fidelity, Reference, register_fidelity
from .routes import MAX_STATEVECTOR_QUBITS, KernelRoute, StatevectorRoute, forward_ad_works
from .statevector import StatevectorExecutor
from .statevector.stages import complex_dtype

__all__ = ["ExecutorFidelity", "StatevectorFidelity", "exact_executor"]


def exact_executor(feature_map: FeatureMap, memory_limit: int | None = None) -> StatevectorExecutor:
    """The exact executor of ``feature_map``'s circuit (value columns in its angle order)."""
    return StatevectorExecutor(feature_map.circuit, feature_map.parameters_order, memory_limit=memory_limit)


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


class ExecutorFidelity(Fidelity):
    """A fidelity computed on the exact executor of the map's circuit (the base of the exact fidelities).

    Args:
        feature_map: the map.
        memory_limit: bytes the executor may allocate per call (default: a fraction of the available memory).
        executor: an executor of the map's circuit to share (default: a new one).
    """

    def __init__(self, feature_map: FeatureMap, *, memory_limit: int | None = None,
                 executor: StatevectorExecutor | None = None) -> None:
        super().__init__(feature_map)
        self.executor = executor if executor is not None else exact_executor(feature_map, memory_limit)

    @property
    def is_product(self) -> bool:
        return self.executor.is_product_circuit


@register_fidelity("statevector")
class StatevectorFidelity(ExecutorFidelity):
    """Exact ``k = |⟨φ_m|ψ_n⟩|²`` from statevectors: ``N + M`` state preparations per ``(N, M)`` matrix,
    the backward one adjoint sweep per state (about three more). Memory ``O((N + M)·2^n)``, in row
    chunks within the executor's memory limit. The reference side keeps its states (up to the constant tail).

    Args: as :class:`ExecutorFidelity`.
    """

    def __init__(self, feature_map: FeatureMap, *, memory_limit: int | None = None,
                 executor: StatevectorExecutor | None = None) -> None:
        super().__init__(feature_map, memory_limit=memory_limit, executor=executor)
        self._forward_ad: bool | None = None  # the map's angles support forward mode (checked on first route)

    def _prepare(self, ay: torch.Tensor) -> torch.Tensor:
        return self.executor.statevectors(ay, drop_constant_tail=True)  # (M, D)

    def states(self, reference: Reference, dtype: torch.dtype) -> torch.Tensor:
        """The reference's states ``(M, D)`` for angles of ``dtype`` (prepared again in another precision)."""
        states = reference.prepared
        if not isinstance(states, torch.Tensor) or states.dtype != complex_dtype(dtype):
            states = self.executor.statevectors(reference.angles.to(dtype), drop_constant_tail=True)
        return states

    def evaluate(self, ax: torch.Tensor, reference: Reference) -> torch.Tensor:
        return _AdjointFidelity.apply(ax, self.states(reference, ax.dtype), self.executor)

    def route(self, feature_map: FeatureMap, reference: Reference) -> KernelRoute | None:
        """:class:`~.routes.StatevectorRoute` on up to ``MAX_STATEVECTOR_QUBITS`` qubits whose map's
        ``angles`` support forward-mode autograd (checked once), else ``None``."""
        if self.num_qubits > MAX_STATEVECTOR_QUBITS:
            return None
        if self._forward_ad is None:
            self._forward_ad = forward_ad_works(feature_map)
        if not self._forward_ad:
            return None
        return StatevectorRoute(self.executor, feature_map, self.states(reference, reference.angles.dtype))

    def extra_repr(self) -> str:
        return "exact statevectors, adjoint gradient"
