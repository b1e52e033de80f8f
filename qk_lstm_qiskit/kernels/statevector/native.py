"""Compiled CPU loops (numba) for the exact executor's stages on a few qubits.

On small states torch's cost is the count of operations (~3–80 µs each, whatever their size), not
arithmetic: the executor's stages for 32 rows of 4 qubits are ~20 operations. Here one call runs a
whole *program* of stages over all rows, qubit by qubit in place (``|ψ⟩ ← U_q|ψ⟩`` on the amplitude
pairs ``(i, i + 2^q)``). The program is the executor's compiled circuit:

* ``program`` ``(S, 2)`` int64: ``(0, j)`` the one-qubit stage ``j``, ``(1, j)`` the monomial stage ``j``:
  ``ψ'[k] = phases[j, k] ψ[perms[j, k]]``;
* one-qubit stage ``j``'s unitaries are Fourier modes of the values (``UnitaryModes``):
  ``U_q = Σ_g modes[j, q, g] coef[j, q, g]`` with ``modes = cos(values W + w_0)`` ``(B, S₁, n, G)`` (``G``
  padded with zero coefficients; the trigonometry is torch's, vectorised) and ``coef`` ``(S₁, n, G, 4)``
  complex (the entries ``00, 01, 10, 11``).

:func:`simulate` gives the states, :func:`tangents` their directional derivatives (forward mode,
``U̇ = Σ_g ṁodes coef`` and the product rule ``ψ̇ ← U_q ψ̇ + U̇_q ψ`` per qubit), :func:`reverse` the
adjoint sweep: un-applying each ``U_q`` to ``ψ`` and ``λ = ∂L/∂ψ``, collecting ``env_q[a, b] = Σ_r λ̄[a, r]
φ[b, r]`` (``φ`` the state before ``U_q``, so ``dL = Re Σ env ⊙ dU``) and returning ``∂L/∂modes =
Re Σ_e env_e coef_e``. All run in the state's precision.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["reverse", "simulate", "tangents"]

_ONE_QUBIT, _MONOMIAL = 0, 1


@njit(cache=True, nogil=True)
def _unitaries(modes, coef, u) -> None:
    """``u`` ``(n, 2, 2)`` ← ``Σ_g modes[q, g] coef[q, g]`` of one row and stage."""
    u[:] = 0
    for q in range(coef.shape[0]):
        for g in range(coef.shape[1]):
            weight = modes[q, g]
            u[q, 0, 0] += weight * coef[q, g, 0]
            u[q, 0, 1] += weight * coef[q, g, 1]
            u[q, 1, 0] += weight * coef[q, g, 2]
            u[q, 1, 1] += weight * coef[q, g, 3]


@njit(cache=True, nogil=True)
def _product_state(psi, u) -> None:
    """``ψ`` ``(D,)`` ← ``⊗_q U_q|0⟩`` (a first stage on ``|0…0⟩``: one pass, no gate loop)."""
    psi[0], psi[1], size = u[0, 0, 0], u[0, 1, 0], 2
    for q in range(1, u.shape[0]):
        for k in range(size):
            psi[k + size] = psi[k] * u[q, 1, 0]
            psi[k] = psi[k] * u[q, 0, 0]
        size *= 2


@njit(cache=True, nogil=True)
def _apply(psi, u) -> None:
    """``ψ`` ``(D,)`` ← ``(⊗_q U_q) ψ`` in place, one qubit at a time on the pairs ``(i, i + 2^q)``."""
    dim = psi.shape[0]
    for q in range(u.shape[0]):
        step = 1 << q
        u00, u01, u10, u11 = u[q, 0, 0], u[q, 0, 1], u[q, 1, 0], u[q, 1, 1]
        for high in range(0, dim, 2 * step):
            for i in range(high, high + step):
                a0, a1 = psi[i], psi[i + step]
                psi[i] = u00 * a0 + u01 * a1
                psi[i + step] = u10 * a0 + u11 * a1


@njit(cache=True, nogil=True)
def _permute(psi, scratch, perm, phase) -> None:
    """``ψ[k] ← phase[k] ψ[perm[k]]`` in place (``scratch`` a buffer of ``ψ``'s size)."""
    for k in range(psi.shape[0]):
        scratch[k] = phase[k] * psi[perm[k]]
    psi[:] = scratch


@njit(cache=True, nogil=True)
def simulate(program, modes, coef, perms, phases, out) -> None:
    """``out`` ``(B, D)`` ← the states of the program from ``|0…0⟩``."""
    rows, dim = out.shape
    scratch, u = np.empty(dim, out.dtype), np.empty((coef.shape[1], 2, 2), out.dtype)
    for b in range(rows):
        psi = out[b]
        psi[:] = 0
        psi[0] = 1
        for s in range(program.shape[0]):
            index = program[s, 1]
            if program[s, 0] == _ONE_QUBIT:
                _unitaries(modes[b, index], coef[index], u)
                if s == 0:
                    _product_state(psi, u)
                else:
                    _apply(psi, u)
            else:
                _permute(psi, scratch, perms[index], phases[index])


@njit(cache=True, nogil=True)
def tangents(program, modes, rates, coef, perms, phases, out) -> None:
    """``out`` ``(B, 1 + K, D)`` ← ``ψ`` and its derivatives along ``K`` directions, ``rates`` ``(K, B, S₁, n, G)``
    the derivatives of ``modes`` along them. A direction's term at a qubit whose ``U̇`` is zero is left out,
    and so is its tangent until it first moves (a map whose features each drive one qubit moves one each)."""
    rows, packed, dim = out.shape
    directions, qubits, width = packed - 1, coef.shape[1], coef.shape[2]
    scratch, u = np.empty(dim, out.dtype), np.empty((qubits, 2, 2), out.dtype)
    du = np.empty((directions, qubits, 2, 2), out.dtype)
    moves = np.empty((directions, qubits), np.bool_)
    still = np.empty(directions, np.bool_)  # tangent k is still zero
    for b in range(rows):
        block = out[b]
        block[:] = 0
        block[0, 0] = 1
        still[:] = True
        for s in range(program.shape[0]):
            index = program[s, 1]
            if program[s, 0] == _MONOMIAL:
                for k in range(packed):
                    if k == 0 or not still[k - 1]:
                        _permute(block[k], scratch, perms[index], phases[index])
                continue
            _unitaries(modes[b, index], coef[index], u)
            du[:] = 0
            moves[:] = False
            for q in range(qubits):
                for g in range(width):
                    for k in range(directions):
                        rate = rates[k, b, index, q, g]
                        if rate != 0:
                            moves[k, q] = True
                            for e in range(4):
                                du[k, q, e // 2, e % 2] += rate * coef[index, q, g, e]
            for q in range(qubits):
                step = 1 << q
                u00, u01, u10, u11 = u[q, 0, 0], u[q, 0, 1], u[q, 1, 0], u[q, 1, 1]
                for high in range(0, dim, 2 * step):
                    for i in range(high, high + step):
                        a0, a1 = block[0, i], block[0, i + step]
                        for k in range(directions):
                            t0, t1 = block[k + 1, i], block[k + 1, i + step]
                            if moves[k, q]:
                                block[k + 1, i] = u00 * t0 + u01 * t1 + du[k, q, 0, 0] * a0 + du[k, q, 0, 1] * a1
                                block[k + 1, i + step] = u10 * t0 + u11 * t1 + du[k, q, 1, 0] * a0 + du[k, q, 1, 1] * a1
                            elif not still[k]:
                                block[k + 1, i] = u00 * t0 + u01 * t1
                                block[k + 1, i + step] = u10 * t0 + u11 * t1
                        block[0, i] = u00 * a0 + u01 * a1
                        block[0, i + step] = u10 * a0 + u11 * a1
                for k in range(directions):
                    if moves[k, q]:
                        still[k] = False


@njit(cache=True, nogil=True)
def _product_environments(grad, u, e, lows, top) -> None:
    """``e`` ``(n, 2, 2)`` of a first stage on ``|0…0⟩``, ``ψ = ⊗_q v_q`` (``v_q = U_q|0⟩``): ``e[q, a, 0] =
    Σ λ̄[a, j] Π_{p≠q} v_p``, ``e[q, a, 1] = 0``. The qubits above ``q`` are contracted into ``top`` one by one,
    those below are ``lows[2^q − 1 :]`` ``= ⊗_{p<q} v_p`` (about two passes over ``λ`` in all)."""
    n = u.shape[0]
    lows[0] = 1
    for q in range(n - 1):
        start, size = (1 << q) - 1, 1 << q
        for j in range(size):
            lows[start + size + j] = lows[start + j] * u[q, 0, 0]
            lows[start + 2 * size + j] = lows[start + j] * u[q, 1, 0]
    for k in range(grad.shape[0]):
        top[k] = grad[k].conjugate()
    for q in range(n - 1, -1, -1):
        start, size = (1 << q) - 1, 1 << q
        s0 = s1 = top[0] * 0
        for j in range(size):
            s0 += top[j] * lows[start + j]
            s1 += top[size + j] * lows[start + j]
        e[q, 0, 0], e[q, 1, 0], e[q, 0, 1], e[q, 1, 1] = s0, s1, s0 * 0, s0 * 0
        for j in range(size):
            top[j] = top[j] * u[q, 0, 0] + top[size + j] * u[q, 1, 0]


@njit(cache=True, nogil=True)
def _unapply(state, grad, u, e) -> None:
    """``ψ ← U_q† ψ`` and ``λ ← U_q† λ`` for every qubit of a one-qubit stage, ``e[q]`` ← ``Σ_r λ̄[a, r] φ[b, r]``."""
    dim = state.shape[0]
    for q in range(u.shape[0]):
        step = 1 << q
        c00, c01 = u[q, 0, 0].conjugate(), u[q, 0, 1].conjugate()
        c10, c11 = u[q, 1, 0].conjugate(), u[q, 1, 1].conjugate()
        e00 = e01 = e10 = e11 = state[0] * 0
        for high in range(0, dim, 2 * step):
            for i in range(high, high + step):
                p0, p1 = state[i], state[i + step]
                f0, f1 = c00 * p0 + c10 * p1, c01 * p0 + c11 * p1  # φ = U† ψ
                l0, l1 = grad[i], grad[i + step]
                g0, g1 = l0.conjugate(), l1.conjugate()
                e00 += g0 * f0
                e01 += g0 * f1
                e10 += g1 * f0
                e11 += g1 * f1
                state[i], state[i + step] = f0, f1
                grad[i], grad[i + step] = c00 * l0 + c10 * l1, c01 * l0 + c11 * l1
        e[q, 0, 0], e[q, 0, 1], e[q, 1, 0], e[q, 1, 1] = e00, e01, e10, e11


@njit(cache=True, nogil=True)
def reverse(program, modes, coef, perms, phases, psi, lam, grad_modes) -> None:
    """The adjoint sweep, in place: ``psi``, ``lam`` ``(B, D)`` the output states and ``∂L/∂ψ`` on entry;
    ``grad_modes`` ``(B, S₁, n, G)`` ← ``∂L/∂modes``. A first one-qubit stage acts on ``|0…0⟩``
    (``_product_environments``); there ``psi`` and ``lam`` are left as they are."""
    rows, dim = psi.shape
    qubits, width = coef.shape[1], coef.shape[2]
    scratch, lows, top = np.empty(dim, psi.dtype), np.empty(dim, psi.dtype), np.empty(dim, psi.dtype)
    u, e = np.empty((qubits, 2, 2), psi.dtype), np.empty((qubits, 2, 2), psi.dtype)
    for b in range(rows):
        state, grad = psi[b], lam[b]
        for s in range(program.shape[0] - 1, -1, -1):
            index = program[s, 1]
            if program[s, 0] == _ONE_QUBIT:
                _unitaries(modes[b, index], coef[index], u)
                if s == 0:
                    _product_environments(grad, u, e, lows, top)
                else:
                    _unapply(state, grad, u, e)
                for q in range(qubits):
                    for g in range(width):
                        grad_modes[b, index, q, g] = (
                            e[q, 0, 0] * coef[index, q, g, 0] + e[q, 0, 1] * coef[index, q, g, 1]
                            + e[q, 1, 0] * coef[index, q, g, 2] + e[q, 1, 1] * coef[index, q, g, 3]).real
                continue
            perm, phase = perms[index], phases[index]  # ψ'[k] = p[k] ψ[perm[k]]  ⇒  ψ[perm[k]] = p̄[k] ψ'[k]
            for vector in (state, grad):
                for k in range(dim):
                    scratch[perm[k]] = phase[k].conjugate() * vector[k]
                vector[:] = scratch
