"""Product-kernel tomography: per-qubit Bloch vectors of ``U(x)|0⟩`` from 3 circuits per input.

For a product map ``U(x) = ⊗_q u_q(x)`` the state is ``⊗_q ρ_q``, ``ρ_q = (I + r_q·σ)/2``, and the
fidelity kernel against a reference with Bloch vectors ``s_q`` is

.. math:: k(x, y) = \\prod_q \\frac{1 + r_q(x)\\cdot s_q(y)}{2}.

``U(x)`` runs alone (half the compute-uncompute depth) in 3 settings, every qubit measured in X,
then in Y, then in Z, ``S`` shots each. From the marginal ``\\hat p^{obs}_{qa}`` of reading 0 on
qubit q in basis a and the qubit's readout assignment matrix ``A_q`` (columns = true outcome),

.. math::
    \\hat r_{qa} = 2\\,\\frac{\\hat p^{obs}_{qa} - A_q[0,1]}{\\det A_q} - 1,\\qquad
    \\mathrm{Var}\\,\\hat r_{qa} = \\frac{4\\,p^{obs}_{qa}(1 - p^{obs}_{qa})}{S \\det^2 A_q}

(unclipped: unbiased). The references' ``s_q`` are exact (known classically), so the factors
``\\hat f_q = (1 + \\hat r_q\\cdot s_q)/2`` are unbiased and independent across qubits (a product
state, tensored readout): ``E\\hat k = k`` and, exactly,

.. math::
    \\mathrm{Var}\\,\\hat k = \\prod_q (\\mu_q^2 + \\sigma_q^2) - \\prod_q \\mu_q^2,\\quad
    \\mu_q = \\tfrac{1 + r_q\\cdot s_q}{2},\\ \\sigma_q^2 = \\tfrac14 \\sum_a s_{qa}^2 \\mathrm{Var}\\,\\hat r_{qa};

two references ``s, t`` against the same input share the shots:
``Cov = Π_q (μ^s_q μ^t_q + ¼Σ_a s_{qa} t_{qa} Var r̂_{qa}) − Π_q μ^s_q μ^t_q``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "tomography_settings",
    "bloch_from_marginals",
    "observed_zero_probability",
    "product_kernel",
    "bloch_variance",
    "kernel_variance",
    "kernel_covariance",
    "simulate_marginals",
]


def tomography_settings(num_qubits: int) -> np.ndarray:
    """``(3, n)`` the settings all-X, all-Y, all-Z (:mod:`~qk_lstm_qiskit.estimators.bases` codes)."""
    return np.repeat(np.arange(3)[:, None], num_qubits, axis=1)


def _readout(assignment: np.ndarray | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(P(0|1), det)`` per qubit ``(n,)``; ideal readout without ``assignment``."""
    if assignment is None:
        return np.zeros(n), np.ones(n)
    a = np.asarray(assignment, dtype=float)
    if a.shape != (n, 2, 2):
        raise ValueError(f"tomography: expected assignment of shape ({n}, 2, 2), got {a.shape}")
    return a[:, 0, 1], a[:, 0, 0] + a[:, 1, 1] - 1.0


def observed_zero_probability(bloch: np.ndarray, assignment: np.ndarray | None = None) -> np.ndarray:
    """``P(read 0)`` ``(…, n, 3)`` of Bloch vectors ``(…, n, 3)`` per basis: ``A00 p + A01 (1 − p)``, ``p = (1 + r)/2``."""
    bloch = np.asarray(bloch, dtype=float)
    p01, det = _readout(assignment, bloch.shape[-2])
    p = (1.0 + bloch) / 2.0
    return p01[:, None] + det[:, None] * p  # A00 p + A01 (1 − p) = A01 + (A00 − A01) p, A00 − A01 = det


def bloch_from_marginals(observed_p0: np.ndarray, assignment: np.ndarray | None = None) -> np.ndarray:
    """Readout-corrected Bloch vectors ``(…, n, 3)`` from observed ``P(read 0)`` ``(…, n, 3)`` (unclipped)."""
    observed_p0 = np.asarray(observed_p0, dtype=float)
    p01, det = _readout(assignment, observed_p0.shape[-2])
    return 2.0 * (observed_p0 - p01[:, None]) / det[:, None] - 1.0


def product_kernel(bloch_x: np.ndarray, bloch_y: np.ndarray) -> np.ndarray:
    """``k[i, m] = Π_q (1 + r_q(x_i)·s_q(y_m))/2`` for ``(N, n, 3)`` and ``(M, n, 3)`` → ``(N, M)``."""
    cosines = np.einsum("iqa,mqa->imq", bloch_x, bloch_y)
    return np.prod((1.0 + cosines) / 2.0, axis=-1)


def bloch_variance(bloch: np.ndarray, shots: int, assignment: np.ndarray | None = None) -> np.ndarray:
    """``Var r̂`` ``(…, n, 3)`` of the estimate from ``shots`` per setting, for true Bloch vectors ``(…, n, 3)``."""
    p_obs = observed_zero_probability(bloch, assignment)
    _, det = _readout(assignment, np.shape(bloch)[-2])
    return 4.0 * p_obs * (1.0 - p_obs) / (shots * det[:, None] ** 2)


def kernel_variance(bloch_x: np.ndarray, bloch_y: np.ndarray, shots: int,
                    assignment: np.ndarray | None = None) -> np.ndarray:
    """Exact ``Var k̂`` ``(N, M)`` of the estimate (true ``bloch_x`` ``(N, n, 3)``, exact ``bloch_y`` ``(M, n, 3)``)."""
    var_r = bloch_variance(bloch_x, shots, assignment)  # (N, n, 3)
    mu = (1.0 + np.einsum("iqa,mqa->imq", bloch_x, bloch_y)) / 2.0  # (N, M, n)
    sigma2 = np.einsum("iqa,mqa->imq", var_r, np.square(bloch_y)) / 4.0
    return np.prod(mu**2 + sigma2, axis=-1) - np.prod(mu**2, axis=-1)


def kernel_covariance(bloch_x: np.ndarray, bloch_y: np.ndarray, shots: int,
                      assignment: np.ndarray | None = None) -> np.ndarray:
    """Exact ``Cov(k̂_m, k̂_l)`` ``(M, M)`` of one input's kernels (``bloch_x`` ``(n, 3)``) against ``(M, n, 3)``."""
    var_r = bloch_variance(bloch_x[None], shots, assignment)[0]  # (n, 3)
    mu = (1.0 + np.einsum("qa,mqa->mq", bloch_x, bloch_y)) / 2.0  # (M, n)
    shared = np.einsum("mqa,lqa,qa->mlq", bloch_y, bloch_y, var_r) / 4.0  # (M, M, n)
    means = mu[:, None, :] * mu[None, :, :]
    return np.prod(means + shared, axis=-1) - np.prod(means, axis=-1)


def simulate_marginals(bloch: np.ndarray, shots: int, rng: np.random.Generator,
                       assignment: np.ndarray | None = None) -> np.ndarray:
    """Observed ``P̂(read 0)`` ``(…, n, 3)``: exact binomial draws of ``shots`` per setting.

    The qubits of a product state are independent, so each qubit's marginal in each setting is
    a binomial of its exact ``P(read 0)`` (with the readout of ``assignment``, if given).
    """
    return rng.binomial(shots, np.clip(observed_zero_probability(bloch, assignment), 0.0, 1.0)) / shots
