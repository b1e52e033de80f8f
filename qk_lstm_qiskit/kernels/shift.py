"""The parameter-shift reference: exact fidelities whose backward is the shift rule on exact states."""

from __future__ import annotations

import torch

from .exact import ExecutorFidelity
from .fidelity import Reference, register_fidelity
from .statevector import StatevectorExecutor

__all__ = ["ParameterShiftFidelity"]


def _fidelities(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    """``|<ψ_y|ψ_x>|²`` for states ``(..., D)`` and ``(M, D)`` → ``(..., M)``."""
    overlap = sx @ sy.conj().transpose(0, 1)
    return overlap.real.square() + overlap.imag.square()


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


@register_fidelity("parameter-shift")
class ParameterShiftFidelity(ExecutorFidelity):
    """Exact fidelities whose backward is the two-term shift rule on ``2P(N + M)`` exactly simulated
    states: the reference for the sampler path's gradient. A parameter outside a single rotation
    (no shift rule) falls back to autograd through the states (adjoint).

    Args: as :class:`~.exact.ExecutorFidelity`.
    """

    def evaluate(self, ax: torch.Tensor, reference: Reference) -> torch.Tensor:
        ay, scales = reference.angles.to(ax.dtype), self.executor.shift_scales
        if scales is None:  # a parameter outside a single rotation: autograd (adjoint) through the states
            return _fidelities(self.executor.statevectors(ax), self.executor.statevectors(ay))
        return _ShiftRuleFidelity.apply(ax, ay, self.executor, ax.new_tensor(scales))

    def extra_repr(self) -> str:
        return "exact statevectors, parameter-shift gradient"
