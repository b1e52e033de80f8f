"""Kernel routes: the kernel ``u ↦ k(angles(u), y)`` of a fused recurrent layer, with its Jacobian.

A fidelity provides its route (:meth:`~.fidelity.Fidelity.route`), built once per forward for one
prepared reference side and immutable afterwards. The fused layer
(:mod:`qk_lstm_qiskit.nn.fused`) calls :meth:`KernelRoute.evaluate` per time step under no-grad,
then in its backward :meth:`KernelRoute.linearize` for all ``L·N`` steps at once and
:meth:`KernelRoute.input_grads` for the gradients of the route's :attr:`KernelRoute.inputs`.

* :class:`ProductRoute`: the exact product kernel ``k_m(u) = Π_q (1 + r_q(u)·y_qm) / 2`` from the
  Fourier modes of the Bloch vectors (:class:`~.statevector.FourierBloch`), ~5 operations per step;
* :class:`StatevectorRoute`: any exact kernel ``|⟨φ_m|ψ(u)⟩|²`` on a few qubits, the Jacobian by
  forward mode (:meth:`~.statevector.StatevectorExecutor.jvp`).

The encoding is always the feature map's own ``angles`` (forward), its derivative forward-mode
autograd through that same method (backward): there is no second copy of the encoding.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch
from torch.autograd import forward_ad

from ..circuits.feature_map import FeatureMap
from .statevector import MAX_MODES, FourierBloch, ProductForm, StatevectorExecutor

__all__ = ["KernelRoute", "ProductRoute", "StatevectorRoute", "MAX_STATEVECTOR_QUBITS", "forward_ad_works",
           "is_qubit_local"]

# The statevector route's Jacobian costs ~q forward passes over all L·N rows at once, the loop's backward
# ~3 per step plus a few operations: the route wins while states are small (one thread, B=32, T=25, reps 2,
# compiled loops, fused vs loop, best of 8: 4 qubits 20.6 vs 35.7 ms, 5 qubits 20.5 vs 25.8, 6 qubits 32.4 vs 27.4).
MAX_STATEVECTOR_QUBITS = 5  #: the most qubits a fused layer takes the statevector route for (see above)


class KernelRoute(ABC):
    """``k`` ``(N, M)`` of projected inputs ``u`` ``(N, q)`` against one reference side, with its Jacobian.

    :attr:`inputs` are the tensors the kernel depends on besides ``u`` (the reference side, trainable
    weights of the map), as given: a fused layer passes them to autograd and receives their gradients
    from :meth:`input_grads`, in order. Attributes are fixed once built.
    """

    inputs: tuple[torch.Tensor, ...]

    def __setattr__(self, name: str, value: Any) -> None:
        if getattr(self, "_built", False):
            raise AttributeError(f"{type(self).__name__}: a route is immutable once built (set {name!r})")
        super().__setattr__(name, value)

    def _done(self) -> None:
        self._built = True

    @abstractmethod
    def evaluate(self, u: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """``k`` ``(N, M)`` of ``u`` ``(N, q)`` (no autograd), and the tensors :meth:`linearize` needs."""

    @abstractmethod
    def linearize(self, u: torch.Tensor, saved: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, Any]:
        """``∂k/∂u`` ``(B, M, q)`` for the rows ``u`` ``(B, q)`` of all steps (``saved`` stacked), and a context."""

    @abstractmethod
    def input_grads(self, context: Any, dk: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        """Gradients of :attr:`inputs` from ``dk = ∂L/∂k`` ``(B, M)`` of all steps."""


def map_tensors(feature_map: FeatureMap) -> dict[str, torch.Tensor]:
    """The map's parameters and buffers by name, as :func:`torch.func.functional_call` takes them."""
    return {**dict(feature_map.named_parameters()), **dict(feature_map.named_buffers())}


def forward_ad_works(feature_map: FeatureMap) -> bool:
    """True when ``feature_map.angles`` propagates forward-mode tangents."""
    probe = torch.zeros(1, feature_map.num_features, dtype=torch.float64)
    try:
        with torch.no_grad(), forward_ad.dual_level():
            tangent = forward_ad.unpack_dual(feature_map.angles(forward_ad.make_dual(probe, torch.ones_like(probe)))).tangent
        return tangent is not None
    except (RuntimeError, NotImplementedError, TypeError):
        return False


def is_qubit_local(feature_map: FeatureMap, form: ProductForm | None) -> bool:
    """True when the slot angles of qubit ``q`` read only angle columns that depend on feature ``q`` alone
    (as in :class:`~qk_lstm_qiskit.circuits.feature_map.FeatureMap`; read off the Jacobian of
    ``feature_map.angles`` at random points), and the product form has at most ``MAX_MODES`` modes per qubit."""
    n = feature_map.num_qubits
    if form is None or feature_map.num_features != n or 3**form.slots > MAX_MODES:
        return False
    probe = torch.randn(2, n, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    jacobian = torch.stack([torch.autograd.functional.jacobian(feature_map.angles, row) for row in probe])
    reads = (jacobian != 0).any(0)  # (P, n): angle column c depends on feature q
    uses = form.angle_map != 0  # (P, S'·n): slot (j, q) reads angle column c
    qubit = torch.arange(uses.size(1)) % n
    return bool((reads.sum(1) <= 1).all()) and not bool(
        (uses[:, :, None] & reads[:, None, :] & (qubit[None, :, None] != torch.arange(n))).any())


def _angles_and_slopes(
    feature_map: FeatureMap, tensors: dict[str, torch.Tensor], u: torch.Tensor, tangent: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The map's angles of ``u`` and their derivative along ``tangent`` (forward mode, the map's own
    ``angles``). The map's floating tensors enter as duals with zero tangent: torch's forward mode of an
    operation between a dual and a plain tensor takes a slow path (~200 µs each, 3x the whole encoding)."""
    with forward_ad.dual_level():
        duals = {name: forward_ad.make_dual(t.detach(), torch.zeros_like(t)) if t.is_floating_point() else t
                 for name, t in tensors.items()}
        angles = torch.func.functional_call(feature_map, duals, (forward_ad.make_dual(u, tangent),))
        primal, slopes = forward_ad.unpack_dual(angles)
    return primal, slopes


def _exclusive_prod(factors: torch.Tensor) -> torch.Tensor:
    """``Π_{j≠q} factors[:, j]`` for every ``q`` of ``factors`` ``(B, n, M)``, without division."""
    parts = factors.unbind(1)
    before, after = [torch.ones_like(parts[0])], [torch.ones_like(parts[0])]
    for part in parts[:-1]:
        before.append(before[-1] * part)
    for part in parts[:0:-1]:
        after.append(after[-1] * part)
    return torch.stack(before, 1) * torch.stack(after[::-1], 1)


def _kernel_map(by: torch.Tensor) -> torch.Tensor:
    """``(3n, n·M)`` block diagonal of ``by / 2``: ``(1 + r_q·y_qm) / 2 = 1/2 + (r @ this)[q·M + m]``."""
    return torch.block_diag(*(by * 0.5).unbind(0))


class ProductRoute(KernelRoute):
    """The exact product kernel ``k_m(u) = Π_q (1 + r_q(u)·y_qm) / 2``; inputs: the references' Bloch
    vectors ``by`` ``(n, 3, M)``.

    Per step ``~5`` operations on the Fourier modes of the Bloch vectors (:class:`FourierBloch`, in the
    layer's dtype and device); the Jacobian ``∂k/∂u`` of all steps at once from the modes' derivative,
    whose angle slopes come from forward-mode autograd through the feature map's own ``angles``.
    """

    def __init__(self, feature_map: FeatureMap, bloch: FourierBloch, by: torch.Tensor) -> None:
        self.feature_map, self.tensors, self.bloch, self.inputs = feature_map, map_tensors(feature_map), bloch, (by,)
        self.by = by.detach()
        self.factor_map, self.half = self.bloch.to_bloch @ _kernel_map(self.by), self.by.new_tensor(0.5)  # (n·G, n·M)
        self._done()

    def evaluate(self, u: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        modes = torch.cos(torch.addmm(self.bloch.arg_shift, self.feature_map.angles(u), self.bloch.arg_map))  # (N, n·G)
        factors = torch.addmm(self.half, modes, self.factor_map)  # (N, n·M)
        n, m = self.by.size(0), self.by.size(2)
        return factors.view(-1, n, m).prod(1), (modes, factors)

    def linearize(self, u: torch.Tensor, saved: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, tuple]:
        modes, factors = saved
        n, m, rows = self.by.size(0), self.by.size(2), u.size(0)
        # each angle column (and so each qubit's modes) depends on one feature only: the derivative
        # along u + ε·1 is ∂/∂u_q, by forward-mode autograd through the feature map's encoding
        slopes = _angles_and_slopes(self.feature_map, self.tensors, u, torch.ones_like(u))[1]  # (B, P)
        dmodes = (modes @ self.bloch.turn) * (slopes @ self.bloch.arg_map)
        others = _exclusive_prod(factors.view(rows, n, m))  # the other qubits' factors
        dk_du = others * (dmodes @ (self.bloch.to_bloch @ _kernel_map(self.by))).view(rows, n, m)  # ∂k_m / ∂u_q
        return dk_du.transpose(1, 2), (modes, others)

    def input_grads(self, context: tuple, dk: torch.Tensor) -> tuple[torch.Tensor]:
        """``∂L/∂by`` from ``dk = ∂L/∂k`` ``(B, M)`` of all steps."""
        modes, others = context
        n = self.by.size(0)
        r = (modes @ self.bloch.to_bloch).view(-1, n, 3)  # (B, n, 3)
        return (torch.einsum("bni,bnm->nim", r, others * dk[:, None]) * 0.5,)


class StatevectorRoute(KernelRoute):
    """Any exact fidelity kernel ``k_m(u) = |⟨φ_m|ψ(u)⟩|²``; inputs: ``φ`` ``(M, D)`` (up to the constant
    tail) and the map's trainable weights.

    Per step: the states ``ψ`` of the batch (the executor's stages, no autograd) and their overlaps
    ``O = ψ φ^†``. The Jacobian ``∂k/∂u = 2 Re(Ō ⊙ ∂O/∂u)`` of all steps at once in forward mode:
    the angles' slopes by forward-mode autograd through the map's ``angles``, the states' by
    :meth:`~.statevector.StatevectorExecutor.jvp` (``q`` directions; row chunks within the
    executor's memory limit). With ``W = 2 (∂L/∂k) ⊙ O``: ``∂L/∂φ = W^† ψ`` and, for
    trainable weights, one adjoint sweep of ``λ = W φ`` over all rows gives ``∂L/∂angles``.
    """

    def __init__(self, executor: StatevectorExecutor, feature_map: FeatureMap, states: torch.Tensor) -> None:
        self.feature_map, self.executor = feature_map, executor
        # the map's tensors as they are now (functional_call may swap them back before the backward runs)
        self.tensors = map_tensors(feature_map)
        self.params = tuple(p for p in self.tensors.values() if p.requires_grad)
        self.inputs = (states, *self.params)
        self.states = states.detach()
        self.states_h = self.states.mH  # (D, M)
        self._done()

    def _states(self, angles: torch.Tensor) -> torch.Tensor:
        return self.executor.simulate(angles, drop_constant_tail=True)

    def _angles(self, u: torch.Tensor, *, detach: bool = True) -> torch.Tensor:
        """The map's angles of ``u`` with the tensors the forward used."""
        tensors = {name: t.detach() for name, t in self.tensors.items()} if detach else self.tensors
        return torch.func.functional_call(self.feature_map, tensors, (u,))

    def evaluate(self, u: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        overlap = self._states(self.feature_map.angles(u)) @ self.states_h
        return overlap.real.square() + overlap.imag.square(), (overlap,)

    def linearize(self, u: torch.Tensor, saved: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, tuple]:
        (overlap,) = saved
        rows, q = u.shape
        eye = torch.eye(q, dtype=u.dtype, device=u.device).repeat_interleave(rows, 0)  # rows j·B … carry e_j
        angles, slopes = _angles_and_slopes(self.feature_map, self.tensors, u.repeat(q, 1), eye)
        angles, slopes = angles[:rows], slopes.view(q, rows, -1)  # (B, P), (q, B, P)
        jacobian, states = u.new_empty(rows, overlap.size(1), q), overlap.new_empty(rows, self.states.size(1))
        # a row's state and its q tangents, each with a working copy
        chunk = max(1, self.executor.chunk_rows(rows * (q + 1), u.dtype, u.device, copies=4, what="kernel Jacobian") // (q + 1))
        for start in range(0, rows, chunk):
            part = slice(start, start + chunk)
            states[part], tangents = self.executor.jvp(angles[part], slopes[:, part], drop_constant_tail=True)
            d_overlap = tangents @ self.states_h  # (q, b, M)
            jacobian[part] = 2 * (overlap[part].conj() * d_overlap).real.permute(1, 2, 0)
        return jacobian, (u, states, overlap)

    def input_grads(self, context: tuple, dk: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        """``∂L/∂φ`` ``(M, D)`` and the gradients of the map's trainable weights, from ``dk`` ``(B, M)``."""
        u, states, overlap = context
        weights = 2 * dk.to(overlap.dtype) * overlap  # (B, M): W
        grads: tuple = (weights.mH @ states,)
        if self.params:
            grad_angles = self.executor.adjoint(self._angles(u), states, weights @ self.states, drop_constant_tail=True)
            with torch.enable_grad():
                angles = self._angles(u.detach(), detach=False)
                grads += torch.autograd.grad(angles, self.params, grad_angles, allow_unused=True)
        return grads
