"""A fidelity wrapper that corrects kernel values for global depolarising noise with echo circuits in the same job.

Under a global depolarising channel of rate ``λ`` (survival ``1 − λ``) on ``d = 2**n`` levels a
measured kernel is ``k̃ = (1 − λ) k + λ/d`` (Hubregtsen et al., arXiv 2105.02276, Sec. V; PennyLane's
``qml.kernels.mitigate_depolarizing_noise``). An echo ``U†(x)U(x)`` has ideal kernel 1, so ``E`` echoes
measured in the same sampler call as the kernel values give ``λ̂`` and the corrected kernel
(:mod:`~qk_lstm_qiskit.estimators.depolarizing`):

.. math:: \\hat\\lambda = \\frac{d}{d-1}\\,\\frac{1}{E}\\sum_e (1 - \\tilde e_e), \\qquad
    \\hat k = \\frac{\\tilde k - \\hat\\lambda/d}{1 - \\hat\\lambda}.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import torch

from ..circuits.feature_map import FeatureMap
from ..estimators.depolarizing import correct_depolarizing, depolarizing_rate
from .fidelity import Fidelity, FidelityCost, Reference

if TYPE_CHECKING:
    from .sampler import SamplerFidelity

__all__ = ["DepolarizingCorrectedFidelity", "DEPOLARIZING_METHODS", "DEFAULT_ECHOES"]

#: the corrections: ``"single"`` (one echo, PennyLane's ``single``) and ``"average"`` (the mean over ``E`` echoes)
DEPOLARIZING_METHODS = ("single", "average")
#: echo circuits per call when not given
DEFAULT_ECHOES = {"single": 1, "average": 4}


class DepolarizingCorrectedFidelity(Fidelity):
    """``inner``'s kernel corrected for global depolarising noise, ``λ̂`` from ``E`` echoes in the same job.

    Each :meth:`evaluate` of ``ax`` ``(N, P)`` against ``M`` references sends the ``N·M`` pairs and the
    ``E`` echo pairs ``(x_i, x_i)`` (rows ``i`` evenly spaced over ``0 … N−1``, the first for ``E = 1``;
    a row may repeat when ``E > N``) in ONE call of ``inner.evaluate_pairs`` — one PUB of one job, so the
    echoes see the kernels' own calibration and noise — and returns
    ``(k̃ − λ̂/d)/(1 − λ̂)``. The corrected values are not clipped to ``[0, 1]`` (PennyLane does not clip
    either): clipping would bias the estimate of small and large kernels. Inference only: ``λ̂`` is
    estimated per call and treated as a constant, and the echoes would be shifted in a backward too.
    Each call's ``λ̂`` is appended to :attr:`rates`.

    Args:
        inner: a fidelity that runs compute–uncompute circuits on a sampler and has
            ``evaluate_pairs(ax, ay) → (B,)`` (:class:`~qk_lstm_qiskit.kernels.sampler.SamplerFidelity`).
        feature_map: its map (``n`` qubits, ``P`` angles).
        method: ``"single"`` (default; ``echoes`` must be 1) or ``"average"``.
        echoes: echo circuits per call ``E`` (default :data:`DEFAULT_ECHOES` of ``method``).

    Shape:
        ``ax``: ``(N, P)``, reference angles ``(M, P)`` → ``(N, M)`` in ``ax.dtype``.

    Raises:
        TypeError: ``inner`` has no ``evaluate_pairs`` or runs no circuits.
        ValueError: an unknown ``method``, ``echoes < 1`` (``!= 1`` for ``"single"``); in :meth:`evaluate`, a
            gradient asked for, or echoes whose mean is at or below ``1/d`` (no signal left).
    """

    def __init__(self, inner: Fidelity, feature_map: FeatureMap, *, method: str = "single",
                 echoes: int | None = None) -> None:
        if not (isinstance(inner, Fidelity) and callable(getattr(inner, "evaluate_pairs", None)) and inner.circuits()):
            raise TypeError("DepolarizingCorrectedFidelity: expected inner to run compute-uncompute circuits on a "
                            f"sampler (a fidelity with evaluate_pairs, e.g. SamplerFidelity), got {type(inner).__name__}")
        if method not in DEPOLARIZING_METHODS:
            raise ValueError(f"DepolarizingCorrectedFidelity: expected method in {DEPOLARIZING_METHODS}, got {method!r}")
        echoes = DEFAULT_ECHOES[method] if echoes is None else echoes
        if isinstance(echoes, bool) or not isinstance(echoes, int) or echoes < 1 or (method == "single" and echoes != 1):
            expected = "1" if method == "single" else "an int >= 1"
            raise ValueError(f"DepolarizingCorrectedFidelity: expected echoes {expected} for method {method!r}, "
                             f"got {echoes!r}")
        super().__init__(feature_map)
        self.inner, self.method, self.echoes = inner, method, echoes
        self.rates: list[float] = []  # λ̂ of every call, in call order (appends are atomic across threads)

    @property
    def is_product(self) -> bool:
        return self.inner.is_product

    @property
    def mean_rate(self) -> float | None:
        """The mean ``λ̂`` over the calls so far (``None`` before the first)."""
        return sum(self.rates) / len(self.rates) if self.rates else None

    def _prepare(self, ay: torch.Tensor) -> Reference:
        return self.inner.prepare(ay)

    def echo_rows(self, n: int) -> torch.Tensor:
        """The input rows echoed in a call of ``n`` rows: ``E`` evenly spaced indices ``(E,)``."""
        return torch.linspace(0, n - 1, self.echoes).round().long()

    def evaluate(self, ax: torch.Tensor, reference: Reference) -> torch.Tensor:
        ay = reference.angles.to(ax.dtype)
        n, m = ax.size(0), ay.size(0)
        if n == 0 or m == 0:
            return ax.new_zeros(n, m)
        if torch.is_grad_enabled() and (ax.requires_grad or ay.requires_grad):
            raise ValueError("DepolarizingCorrectedFidelity: expected inference (torch.no_grad()), got angles that "
                             "require gradients")
        echo = ax[self.echo_rows(n)]  # (E, P): U†(x)U(x), ideal kernel 1
        x_side = torch.cat([ax.repeat_interleave(m, dim=0), echo])  # (N·M + E, P), row n·M + m, then the echoes
        y_side = torch.cat([ay.repeat(n, 1), echo])
        values = cast("SamplerFidelity", self.inner).evaluate_pairs(x_side, y_side).double()  # ONE sampler call
        rate = depolarizing_rate(values[n * m:].numpy(), self.num_qubits)
        self.rates.append(rate)
        corrected = correct_depolarizing(values[: n * m].numpy(), rate, self.num_qubits)
        return torch.as_tensor(corrected, dtype=ax.dtype).reshape(n, m)

    def circuits(self):
        return self.inner.circuits()

    def cost(self, *, differentiate_y: bool = False) -> FidelityCost:
        """The inner forward cost per value plus ``E`` echo circuits per call (:attr:`FidelityCost.per_call`);
        no backward (inference only)."""
        inner = self.inner.cost()
        return FidelityCost(inner.forward, per_call=inner.per_call + self.echoes)

    def extra_repr(self) -> str:
        return f"method={self.method!r}, echoes={self.echoes}"
