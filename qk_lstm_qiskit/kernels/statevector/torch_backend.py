"""The executor's stages as torch's batched products (any device, any qubit count).

The qubits of a one-qubit stage are applied in groups of ``k`` as one ``2^k × 2^k`` Kronecker
factor per group and row (one gather of the factors and their product), each a single batched
matrix product that also rotates the qubit order by ``k`` (after all groups the order is back),
so no permuted copy of the state is ever made. The reverse sweep un-applies every group to ``ψ``
and ``λ = ∂L/∂ψ``, reduces the cross matrix ``X = λ†ψ`` of the group to each qubit's
``E_q = ∂L/∂U_q`` and reads ``∂L/∂values = Re Σ E_q ∂U_q`` from the modes.
"""

from __future__ import annotations

import functools
from typing import Callable

import torch

from .modes import UnitaryModes
from .stages import MonomialStage, SingleQubitStage, complex_dtype

__all__ = ["TorchBackend", "product_state", "zero_state"]


class TorchBackend:
    """:meth:`simulate`, :meth:`tangents` and :meth:`reverse` of a program of stages by torch operations.

    Args:
        num_qubits, num_parameters: of the circuit.
        monomial: ``(stage, dtype, device) → stage`` with its permutation built (the executor's, memory-checked).
    """

    def __init__(self, num_qubits: int, num_parameters: int, monomial: Callable) -> None:
        self.num_qubits, self.num_parameters, self.monomial = num_qubits, num_parameters, monomial
        self.groups = _qubit_groups(num_qubits)

    def simulate(self, stages: list, values: torch.Tensor) -> torch.Tensor:
        """States ``(B, 2**n)`` of ``stages`` from ``|0…0⟩`` at ``values`` ``(B, P)`` (plain torch operations)."""
        n, batch = self.num_qubits, values.size(0)
        state = None  # None stands for |0...0>
        for stage in stages:
            if isinstance(stage, MonomialStage):
                if state is None:
                    state = zero_state(batch, n, values)
                stage = self.monomial(stage, values.dtype, values.device)
                state = _take(state, stage.perm)
                if stage.phase is not None:
                    state = state * stage.phase
            elif state is None:  # on |0...0> the stage makes a product state
                state = product_state(_stage_unitaries(stage, values)[..., 0])
            else:
                unitary = _stage_unitaries(stage, values)
                for group in self.groups:
                    state = torch.bmm(_kron(unitary, group), state.view(batch, -1, 2 ** len(group)).transpose(1, 2))
                state = state.reshape(batch, -1)
        return zero_state(batch, n, values) if state is None else state

    def tangents(self, stages: list, values: torch.Tensor, tangents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """States ``(B, D)`` and their derivatives ``(K, B, D)`` along ``tangents`` ``(K, B, P)``: with
        ``U̇_q = A_q U_q`` a stage maps ``ψ̇ ← K ψ̇ + (Σ_q A_q) K ψ`` (``ψ`` and all ``ψ̇`` in one product per group)."""
        n, batch, directions = self.num_qubits, values.size(0), tangents.size(0)
        packed = None  # (B, 1 + K, D): ψ, then ψ̇ along each direction; None stands for |0…0⟩
        for stage in stages:
            if isinstance(stage, MonomialStage):
                if packed is None:
                    packed = torch.cat([zero_state(batch, n, values)[:, None],
                                        values.new_zeros(batch, directions, 2**n, dtype=complex_dtype(values.dtype))], 1)
                stage = self.monomial(stage, values.dtype, values.device)
                packed = _take(packed, stage.perm)
                if stage.phase is not None:
                    packed = packed * stage.phase
                continue
            unitary, dunitary = _stage_tangents(stage, values, tangents)  # (B, n, 2, 2), (K, B, n, 2, 2)
            generators = dunitary @ unitary.mH  # U̇ = A U: the stage's K̇ = (Σ_q A_q) K
            if packed is None:  # on |0…0⟩: ψ = v_{n-1} ⊗ … ⊗ v_0, v_q = U_q|0⟩, ψ̇ = Σ_q A_q ψ
                state = product_state(unitary[..., 0])
                packed = torch.cat([state[:, None], _apply_one_local(generators, state)], 1)
                continue
            for group in self.groups:  # ψ and ψ̇ together; the 1 + K axis ends up last
                d = 2 ** len(group)
                packed = torch.bmm(_kron(unitary, group), packed.view(batch, -1, d).transpose(1, 2))
            packed = packed.view(batch, -1, directions + 1).transpose(1, 2)  # (B, 1 + K, D): K ψ, K ψ̇
            state = packed[:, 0]
            packed = torch.cat([state[:, None], packed[:, 1:] + _apply_one_local(generators, state)], 1)
        if packed is None:
            state = zero_state(batch, n, values)
            return state, state.new_zeros(directions, *state.shape)
        return packed[:, 0], packed[:, 1:].transpose(0, 1)

    def reverse(self, stages: list, values: torch.Tensor, psi: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
        """``∂L/∂values`` ``(B, P)`` by one reverse sweep from the final states ``psi`` and ``lam = ∂L/∂ψ``."""
        batch = values.size(0)
        grad = values.new_zeros(batch, self.num_parameters)
        for index in range(len(stages) - 1, -1, -1):
            stage = stages[index]
            need_psi = index > 1 or (index == 1 and not isinstance(stages[0], SingleQubitStage))
            if isinstance(stage, MonomialStage):  # ψ'[k] = phase[k] ψ[perm[k]]  ⇒  ψ = (conj(phase) ψ')[inverse]
                stage = self.monomial(stage, values.dtype, values.device)
                if stage.phase is not None:
                    lam = lam * stage.phase.conj()
                    psi = psi * stage.phase.conj() if need_psi else psi
                lam = _take(lam, stage.inverse)
                psi = _take(psi, stage.inverse) if need_psi else psi
                continue
            args = _mode_args(stage, values)
            unitary = _stage_unitaries(stage, values, args)
            if index == 0:  # on |0…0⟩: ψ = ⊗_q v_q, contract λ with the other qubits' columns
                env = _product_environments(unitary[..., 0], lam)
            else:
                env = unitary.new_empty(batch, self.num_qubits, 2, 2)  # ∂L/∂U_q
                for group in reversed(self.groups):
                    d = 2 ** len(group)
                    kron = _kron(unitary, group)  # (B, d, d)
                    psi_out, lam_out = psi.view(batch, d, -1), lam.view(batch, d, -1)  # this group on top
                    psi = torch.bmm(psi_out.transpose(1, 2), kron.conj())  # (B, rest, d): ψ before the group
                    cross = torch.bmm(psi.transpose(1, 2), lam_out.mH).transpose(1, 2)  # X[i, j] = Σ_r λ̄[i, r] ψ[r, j]
                    env[:, group] = _group_environments(unitary, group, cross)
                    lam = torch.bmm(lam_out.transpose(1, 2), kron.conj())
                    psi, lam = psi.reshape(batch, -1), lam.reshape(batch, -1)
            grad += _stage_gradient(stage, values, env, args)
        return grad


def _qubit_groups(n: int) -> list[list[int]]:
    """Consecutive qubits in groups of ``k`` (3 up to 12 qubits, else 4): one batched product each."""
    k = 3 if n <= 12 else 4
    return [list(range(q, min(q + k, n))) for q in range(0, n, k)]


def _angles(stage: SingleQubitStage, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    phi = torch.addmm(stage.angle_shift, values, stage.angle_map).view(values.size(0), stage.a.size(0), -1)  # (B, S, n)
    return torch.cos(phi), torch.sin(phi)


def _as_unitaries(entries: torch.Tensor, n: int) -> torch.Tensor:
    """``(…, n, 2, 2)`` complex from ``(…, n·8)`` reals (real and imaginary parts interleaved)."""
    return torch.view_as_complex(entries.view(*entries.shape[:-1], n, 2, 2, 2))


def _mode_args(stage: SingleQubitStage, values: torch.Tensor) -> torch.Tensor | None:
    """The arguments ``values W + w_0`` ``(B, n·G)`` of the stage's modes (``None`` without modes)."""
    return None if stage.modes is None else _arguments(stage.modes, values)


def _arguments(modes: UnitaryModes, values: torch.Tensor) -> torch.Tensor:
    return torch.addmm(modes.arg_shift, values, modes.arg_map)


def _stage_unitaries(stage: SingleQubitStage, values: torch.Tensor, args: torch.Tensor | None = None) -> torch.Tensor:
    """``(B, n, 2, 2)``: each qubit's unitary of the stage, from its Fourier modes (or the slot products);
    ``args``: :func:`_mode_args`, when the caller has them."""
    if stage.modes is None:
        return _unitaries(stage, values)
    args = _arguments(stage.modes, values) if args is None else args
    return _as_unitaries(torch.cos(args) @ stage.modes.to_entries, stage.a.size(1))


def _stage_tangents(stage: SingleQubitStage, values: torch.Tensor, tangents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``U`` ``(B, n, 2, 2)`` and its derivatives ``(K, B, n, 2, 2)`` along ``tangents`` ``(K, B, P)``."""
    n = stage.a.size(1)
    if stage.modes is None:
        unitary, derivative = _unitaries_and_derivatives(stage, values)  # (B, n, 2, 2), (B, S, n, 2, 2)
        rates = (tangents @ stage.angle_map).view(tangents.size(0), values.size(0), stage.a.size(0), n)  # φ̇ (K, B, S, n)
        return unitary, torch.einsum("kbsn,bsnij->kbnij", rates.to(derivative.dtype), derivative).contiguous()
    args = _arguments(stage.modes, values)
    rates = -torch.sin(args) * (tangents @ stage.modes.arg_map)  # (K, B, n·G)
    return _as_unitaries(torch.cos(args) @ stage.modes.to_entries, n), _as_unitaries(rates @ stage.modes.to_entries, n)


def _stage_gradient(stage: SingleQubitStage, values: torch.Tensor, env: torch.Tensor, args: torch.Tensor | None) -> torch.Tensor:
    """``∂L/∂values`` ``(B, P)`` of the stage from ``env = ∂L/∂U`` ``(B, n, 2, 2)``: ``Re Σ_ij env_ij ∂U_ij``
    (``args``: :func:`_mode_args`)."""
    batch = values.size(0)
    if stage.modes is None:
        _, derivative = _unitaries_and_derivatives(stage, values)
        return (derivative * env[:, None]).sum((-1, -2)).real.reshape(batch, -1) @ stage.angle_map.t()
    weights = torch.view_as_real(env).reshape(batch, -1) @ stage.modes.to_grads  # Re Σ_e env_e V_{m, e}  (B, n·G)
    args = _arguments(stage.modes, values) if args is None else args
    return (weights * -torch.sin(args)) @ stage.modes.arg_map.t()


def _unitaries(stage: SingleQubitStage, values: torch.Tensor) -> torch.Tensor:
    """``(B, n, 2, 2)``: the product of each qubit's gates in the stage."""
    cos, sin = _angles(stage, values)
    mats = stage.a + cos[..., None, None] * stage.b + sin[..., None, None] * stage.c  # (B, S, n, 2, 2)
    unitary = mats[:, 0]
    for s in range(1, mats.size(1)):
        unitary = mats[:, s] @ unitary
    return unitary


def _unitaries_and_derivatives(stage: SingleQubitStage, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``U`` ``(B, n, 2, 2)`` and ``∂U/∂φ_s`` ``(B, S, n, 2, 2)`` for every slot ``s`` of the stage."""
    cos, sin = _angles(stage, values)
    c, s_ = cos[..., None, None], sin[..., None, None]
    mats = stage.a + c * stage.b + s_ * stage.c  # (B, S, n, 2, 2)
    dmats = c * stage.c - s_ * stage.b
    slots = mats.size(1)
    prefix = [torch.eye(2, dtype=mats.dtype, device=mats.device).expand_as(mats[:, 0])]  # G_{s-1} … G_0
    for s in range(slots - 1):
        prefix.append(mats[:, s] @ prefix[-1])
    unitary = mats[:, slots - 1] @ prefix[-1]
    suffix = [torch.eye(2, dtype=mats.dtype, device=mats.device).expand_as(mats[:, 0])]  # G_{S-1} … G_{s+1}
    for s in range(slots - 1, 0, -1):
        suffix.append(suffix[-1] @ mats[:, s])
    suffix = suffix[::-1]
    derivative = torch.stack([suffix[s] @ dmats[:, s] @ prefix[s] for s in range(slots)], 1)
    return unitary, derivative


def _product_environments(columns: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """``∂L/∂U_q`` ``(B, n, 2, 2)`` for ``ψ = v_{n-1} ⊗ … ⊗ v_0``, ``v_q = U_q|0⟩`` (``columns`` ``(B, n, 2)``).

    ``Re⟨λ|∂ψ⟩ = Re Σ_i ∂v_q[i] E_q[i]`` with ``E_q`` the contraction of ``λ̄`` with every other qubit's
    ``v``: the qubits above ``q`` are contracted one by one from the top, those below in one
    product with their precomputed Kronecker product (about four reads of ``λ`` in all).
    """
    batch, n = columns.shape[:2]
    conj = columns.conj().contiguous()
    lows, low = [], columns.new_ones(batch, 1)  # lows[q] = v̄_{q-1} ⊗ … ⊗ v̄_0  (B, 2**q)
    for q in range(n):
        lows.append(low)
        if q < n - 1:
            low = (conj[:, q, :, None] * low[:, None, :]).reshape(batch, -1)
    env = columns.new_empty(batch, n, 2)  # conj(E_q)
    top = lam  # (B, 2**(q+1)): qubits above q contracted, q the top bit
    for q in range(n - 1, -1, -1):
        view = top.reshape(batch, 2, 2**q)
        env[:, q] = torch.bmm(view, lows[q][:, :, None])[..., 0]
        if q:
            top = torch.bmm(conj[:, q, None, :], view)[:, 0]
    return torch.stack([env.conj(), torch.zeros_like(env)], -1)  # U_q's second column does not act on |0⟩


@functools.lru_cache(maxsize=None)
def _kron_index(group: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """``(k·d·d,)``: entry ``(p, i, j)`` reads ``U_{group[p]}[bit_p(i), bit_p(j)]`` from unitaries ``(B, n·4)``."""
    d = 2 ** len(group)
    i, j = torch.arange(d)[:, None], torch.arange(d)[None, :]
    return torch.stack([q * 4 + 2 * ((i >> p) & 1) + ((j >> p) & 1) for p, q in enumerate(group)]).reshape(-1).to(device)


def _kron(unitary: torch.Tensor, group: list[int]) -> torch.Tensor:
    """``(B, d, d)``: ``U_{q_last} ⊗ … ⊗ U_{q_0}`` of the group's qubits (lowest qubit = lowest bit),
    as one gather of the factors and their product."""
    if len(group) == 1:
        return unitary[:, group[0]]
    batch, d = unitary.size(0), 2 ** len(group)
    factors = _take(unitary.reshape(batch, -1), _kron_index(tuple(group), unitary.device))
    return factors.view(batch, len(group), d, d).prod(1)


def _apply_one_local(operators: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
    """``(Σ_q A_q) ψ`` ``(B, K, 2**n)`` for one-qubit operators ``A`` ``(K, B, n, 2, 2)`` (qubit ``q``'s on
    bit ``q``) and states ``ψ`` ``(B, 2**n)``: per qubit one product for the directions whose ``A_q`` is not
    zero (a map whose features each drive one qubit has one per qubit)."""
    directions, batch, n = operators.shape[:3]
    active = (operators != 0).flatten(3).any(-1).any(1).cpu()  # (K, n)
    total = state.new_zeros(batch, directions, state.size(-1))
    for q in range(n):
        rows = active[:, q].nonzero()[:, 0].to(state.device)
        if not len(rows):
            continue
        high, low = 2 ** (n - 1 - q), 2**q
        moved = state.view(batch, high, 2, low).transpose(1, 2).reshape(batch, 2, -1)  # bit q first
        acting = operators[rows, :, q].permute(1, 0, 2, 3).reshape(batch, 2 * len(rows), 2)  # rows (k, out bit)
        acted = torch.bmm(acting, moved).view(batch, len(rows), 2, high, low).transpose(2, 3)
        target = total.view(batch, directions, high, 2, low)
        if len(rows) == directions:
            target.add_(acted)
        else:
            target.index_add_(1, rows, acted)
    return total


@functools.lru_cache(maxsize=None)
def _environment_index(group: tuple[int, ...], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat indices for :func:`_group_environments`: into ``cross`` ``(B, d·d)`` the ``(p, a, b, r, r')``
    entry ``[(r with bit p = a), (r' with bit p = b)]``; into unitaries ``(B, n·4)`` the other qubits'
    factors ``(p, p', r, r')`` of ``(⊗_{p'≠p} U)[r, r']``, ``r, r'`` the ``d/2`` settings of the other bits."""
    k, d = len(group), 2 ** len(group)
    cross_index, factor_index = [], []
    for p in range(k):
        full = torch.tensor([(r >> p << (p + 1)) | (r & ((1 << p) - 1)) for r in range(d // 2)])  # bit p = 0
        rows, cols = full[:, None], full[None, :]
        for a in (0, 1):
            for b in (0, 1):
                cross_index.append(((rows | a << p) * d + (cols | b << p)).reshape(-1))
        for other in (o for o in range(k) if o != p):
            factor_index.append((group[other] * 4 + 2 * ((rows >> other) & 1) + ((cols >> other) & 1)).reshape(-1))
    return torch.cat(cross_index).to(device), torch.cat(factor_index).to(device)


def _group_environments(unitary: torch.Tensor, group: list[int], cross: torch.Tensor) -> torch.Tensor:
    """``∂L/∂U_q`` ``(B, k, 2, 2)`` of the group's qubits from ``∂L/∂K = cross`` ``(B, d, d)``, ``K = ⊗ U``.

    ``cross`` is indexed by the group's bits (lowest qubit = lowest bit); qubit ``q``'s block is
    ``Σ_{r, r'} cross[(r, a), (r', b)] (⊗_{p≠q} U_p)[r, r']``: one gather of ``cross``, one of the other
    qubits' factors and their product, one batched product for all qubits of the group.
    """
    batch, k = cross.size(0), len(group)
    if k == 1:
        return cross[:, None]
    cross_index, factor_index = _environment_index(tuple(group), cross.device)
    blocks = _take(cross.reshape(batch, -1), cross_index).view(batch * k, 4, -1)
    others = _take(unitary.reshape(batch, -1), factor_index).view(batch, k, k - 1, -1).prod(2)
    return torch.bmm(blocks, others.view(batch * k, -1, 1)).view(batch, k, 2, 2)


def _take(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``values[..., index]`` as a ``gather``: 3-4x faster than indexing or ``index_select`` on the CPU."""
    return torch.gather(values, -1, index.expand(*values.shape[:-1], -1))


def zero_state(batch: int, n: int, like: torch.Tensor) -> torch.Tensor:
    state = torch.zeros(batch, 2**n, dtype=complex_dtype(like.dtype), device=like.device)
    state[:, 0] = 1.0
    return state


def product_state(columns: torch.Tensor) -> torch.Tensor:
    """Kronecker product ``v_{n-1} ⊗ … ⊗ v_0`` of per-qubit vectors ``(B, n, 2)`` → ``(B, 2**n)``."""
    batch, n = columns.shape[:2]
    columns = columns.contiguous()  # a batch-minor layout would carry over to every state built from it
    state = columns[:, n - 1]
    for q in range(n - 2, -1, -1):
        state = (state[:, :, None] * columns[:, q, None, :]).reshape(batch, -1)
    return state


