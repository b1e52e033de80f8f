"""Classical shadows of ``U(x)|0⟩`` in random Pauli bases, evaluated against known reference states.

Each of ``K`` settings ``b ∈ {X, Y, Z}^n`` (drawn uniformly, shared by the inputs of a call) is
measured with ``m`` shots. A shot ``s`` gives the snapshot ``ρ̂ = ⊗_q (3 V_{b_q}^† |s_q⟩⟨s_q| V_{b_q} − I)``,
an unbiased estimate of ``ρ = U(x)|0⟩⟨0|U†(x)`` over settings and shots, so against an exactly known
reference ``|φ⟩``

.. math::
    \\hat k = \\frac{1}{K m}\\sum_{b,\\,shots} w_b(s),\\qquad
    w_b(s) = \\langle\\varphi|\\hat\\rho|\\varphi\\rangle = \\big[(M^{\\otimes n}) p^b_\\varphi\\big](s),\\
    M = \\begin{pmatrix} 2 & -1 \\\\ -1 & 2 \\end{pmatrix},

with ``p^b_φ`` the exact outcome distribution of ``φ`` in setting ``b``: every reference from the same
shots. Readout with assignment matrices ``A_q`` is undone in the weights, ``w' = (⊗_q A_q^{-T}) w``
(then ``E_{observed}[w'] = E_{true}[w]``). With ``Z_b`` the mean of setting ``b``'s ``m`` shots,

.. math::
    \\mathrm{Var}\\,\\hat k = \\frac1K\\Big(\\mathrm{Var}_b\\,E[w_b] + \\frac1m E_b\\,\\mathrm{Var}(w_b)\\Big)

over random settings (:func:`shadow_variance`, exact by enumerating the ``3^n`` settings), or
``(1/K²) Σ_b Var(w_b)/m`` given the settings. Randomized measurements against a known reference
(Haug, Self & Kim, arXiv 2108.01039, without the purity normalisation) are the same estimator with
Haar-random local unitaries: single-qubit Cliffords form a 3-design, so the averaged variance is
the same, with 3 discrete bases per qubit instead of continuous angles.
"""

from __future__ import annotations

import numpy as np

from .bases import all_settings, apply_per_qubit, measured_distributions

__all__ = ["SNAPSHOT_MATRIX", "shadow_weights", "shadow_kernel", "shadow_variance", "observed_distributions",
           "simulate_counts"]

SNAPSHOT_MATRIX = np.array([[2.0, -1.0], [-1.0, 2.0]])  #: ``⟨s'|(3|s⟩⟨s| − I)|s'⟩`` per qubit


def _inverse_transposed(assignment: np.ndarray) -> np.ndarray:
    return np.linalg.inv(np.asarray(assignment, dtype=float)).transpose(0, 2, 1)


def shadow_weights(reference_states: np.ndarray, settings: np.ndarray, assignment: np.ndarray | None = None) -> np.ndarray:
    """``w_b(o; φ_m)`` ``(K, M, 2**n)`` for reference states ``(M, 2**n)`` and settings ``(K, n)``."""
    p = measured_distributions(reference_states, settings)  # (M, K, D)
    w = apply_per_qubit(SNAPSHOT_MATRIX, p)
    if assignment is not None:
        w = apply_per_qubit(_inverse_transposed(assignment), w)
    return w.transpose(1, 0, 2)


def shadow_kernel(counts: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``k̂`` ``(N, M)`` from counts ``(N, K, 2**n)`` of each input in each setting and weights ``(K, M, 2**n)``."""
    frequencies = counts / counts.sum(axis=-1, keepdims=True)
    return np.einsum("nkd,kmd->nm", frequencies, weights) / counts.shape[1]


def observed_distributions(states: np.ndarray, settings: np.ndarray, assignment: np.ndarray | None = None) -> np.ndarray:
    """Exact distributions of the *read* outcomes ``(N, K, 2**n)``: ``(⊗_q A_q) p`` of states measured in settings."""
    p = measured_distributions(states, settings)
    return p if assignment is None else apply_per_qubit(np.asarray(assignment, dtype=float), p)


def shadow_variance(states: np.ndarray, reference_states: np.ndarray, shots_per_setting: int, *,
                    settings: np.ndarray | None = None, num_settings: int | None = None,
                    assignment: np.ndarray | None = None) -> np.ndarray:
    """``Var k̂`` ``(N, M)`` for true states ``(N, 2**n)``: given ``settings`` ``(K, n)``, or over ``num_settings``
    uniformly random ones (enumerating all ``3**n``)."""
    if (settings is None) == (num_settings is None):
        raise ValueError("shadow_variance: expected exactly one of settings and num_settings")
    n = int(round(np.log2(np.shape(states)[-1])))
    grid = all_settings(n) if settings is None else np.asarray(settings)
    p = observed_distributions(states, grid, assignment)  # (N, K, D)
    w = shadow_weights(reference_states, grid, assignment)  # (K, M, D)
    first = np.einsum("nkd,kmd->nkm", p, w)  # E[w_b]
    second = np.einsum("nkd,kmd->nkm", p, w**2)
    within = (second - first**2) / shots_per_setting  # Var(Z_b | b)
    if settings is not None:
        return within.sum(axis=1) / grid.shape[0] ** 2
    return (first.var(axis=1) + within.mean(axis=1)) / num_settings


def simulate_counts(states: np.ndarray, settings: np.ndarray, shots_per_setting: int, rng: np.random.Generator,
                    assignment: np.ndarray | None = None) -> np.ndarray:
    """Exact multinomial counts ``(N, K, 2**n)`` of states ``(N, 2**n)`` in settings ``(K, n)`` (with readout)."""
    p = np.clip(observed_distributions(states, settings, assignment), 0.0, None)
    return rng.multinomial(shots_per_setting, p / p.sum(axis=-1, keepdims=True))
