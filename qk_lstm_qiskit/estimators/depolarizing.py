"""Global-depolarising correction of kernel values (Hubregtsen et al., arXiv 2105.02276, Sec. V).

Under a global depolarising channel of rate ``λ`` on ``d = 2**n`` levels a measured kernel is

.. math:: \\tilde k = (1 - \\lambda) k + \\lambda / d .

``E`` echo circuits ``U(x_e)U^\\dagger(x_e)`` (ideal kernel 1), ``S`` shots each, give
``λ̂ = mean_e (1 − ẽ_e)·d/(d − 1)`` (PennyLane's ``mitigate_depolarizing_noise`` method
``"average"``; ``"single"`` is ``E = 1``) and the corrected kernel

.. math:: \\hat k = \\frac{\\tilde k - \\hat\\lambda/d}{1 - \\hat\\lambda},\\qquad
    \\mathrm{Var}\\,\\hat k \\approx \\frac{\\mathrm{Var}\\,\\tilde k}{(1-\\lambda)^2}
    + \\frac{(\\tilde k - 1/d)^2}{(1-\\lambda)^4}\\mathrm{Var}\\,\\hat\\lambda,\\quad
    \\mathrm{Var}\\,\\hat\\lambda = \\Big(\\frac{d}{d-1}\\Big)^2 \\frac{1}{E^2}\\sum_e \\frac{\\tilde e_e(1-\\tilde e_e)}{S}

(delta method; ``λ̂`` and ``k̃`` come from different circuits, so they are independent). An echo
runs the map twice: an estimator that runs ``U(x)`` once (tomography, shadows) sees about
``λ_1 = 1 − √(1 − λ)`` (:func:`single_pass_rate`, PennyLane's ``"split_channel"`` split).
"""

from __future__ import annotations

import numpy as np

__all__ = ["depolarizing_rate", "rate_variance", "correct_depolarizing", "corrected_variance", "single_pass_rate"]


def _levels(num_qubits: int) -> float:
    if num_qubits < 1:
        raise ValueError(f"depolarizing: expected num_qubits >= 1, got {num_qubits}")
    return float(2**num_qubits)


def depolarizing_rate(echo: np.ndarray, num_qubits: int) -> float:
    """``λ̂`` from the measured echo kernels ``ẽ`` ``(E,)`` (ideal value 1).

    Raises:
        ValueError: no echo, or their mean at or below ``1/d`` (the noise has erased the signal).
    """
    echo = np.asarray(echo, dtype=float).ravel()
    d = _levels(num_qubits)
    if echo.size == 0 or not echo.mean() > 1.0 / d:
        raise ValueError(f"depolarizing_rate: expected echo kernels with a mean above 1/2**n = {1 / d:g}, "
                         f"got {echo.mean() if echo.size else 'none'}")
    return float(np.mean((1.0 - echo) * d / (d - 1.0)))


def rate_variance(echo: np.ndarray, shots: int, num_qubits: int) -> float:
    """``Var λ̂`` of :func:`depolarizing_rate` for true echo probabilities ``(E,)`` measured with ``shots`` each."""
    echo = np.asarray(echo, dtype=float).ravel()
    d = _levels(num_qubits)
    return float((d / (d - 1.0)) ** 2 * np.sum(echo * (1.0 - echo) / shots) / echo.size**2)


def correct_depolarizing(kernel: np.ndarray, rate: float, num_qubits: int) -> np.ndarray:
    """``(k̃ − λ/d)/(1 − λ)`` for measured kernels of any shape."""
    d = _levels(num_qubits)
    if not rate < 1.0:
        raise ValueError(f"correct_depolarizing: expected rate < 1, got {rate!r}")
    return (np.asarray(kernel, dtype=float) - rate / d) / (1.0 - rate)


def corrected_variance(noisy_kernel: np.ndarray, kernel_variance: np.ndarray, rate: float, rate_var: float,
                       num_qubits: int) -> np.ndarray:
    """Delta-method ``Var k̂`` of the corrected kernel (true noisy kernel ``k̃`` and its variance, ``λ``, ``Var λ̂``)."""
    d = _levels(num_qubits)
    noisy_kernel = np.asarray(noisy_kernel, dtype=float)
    return kernel_variance / (1.0 - rate) ** 2 + (noisy_kernel - 1.0 / d) ** 2 / (1.0 - rate) ** 4 * rate_var


def single_pass_rate(echo_rate: float) -> float:
    """The rate of one pass of ``U`` when the echo ``U U†`` shows ``echo_rate``: ``1 − √(1 − λ)``."""
    return 1.0 - float(np.sqrt(1.0 - echo_rate))
