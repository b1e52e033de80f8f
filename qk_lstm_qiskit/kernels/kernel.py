"""Fidelity quantum kernel ``k(x, y) = |⟨ψ(y)|ψ(x)⟩|²`` as a differentiable torch module."""

from __future__ import annotations

import warnings
from typing import Callable

import torch
from torch import nn

from ..circuits.feature_map import FeatureMap
from ..errors import ProductKernelWarning
from ..validation import check_tensor
from .exact import StatevectorFidelity, exact_executor
from .fidelity import Fidelity, Reference, make_fidelity
from .product import ProductFidelity
from .routes import KernelRoute
from .sampler import SamplerFidelity
from .shift import ParameterShiftFidelity
from .statevector import StatevectorExecutor

__all__ = ["QuantumKernel", "PreparedSide", "warn_if_product", "exact_fidelity", "GRADIENTS"]

GRADIENTS = ("adjoint", "parameter-shift")  #: exact-path backward: one reverse sweep, or 2P shifted states per row
PreparedSide = Reference  # the y side of a kernel, as :meth:`QuantumKernel.prepare` returns it


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


def exact_fidelity(feature_map: FeatureMap, *, gradient: str = "adjoint", memory_limit: int | None = None) -> Fidelity:
    """The exact fidelity of ``feature_map``: :class:`~.product.ProductFidelity` for a product circuit,
    else :class:`~.exact.StatevectorFidelity` (``gradient="adjoint"``) or
    :class:`~.shift.ParameterShiftFidelity` (``"parameter-shift"``)."""
    executor = exact_executor(feature_map, memory_limit)
    if executor.is_product_circuit:
        return ProductFidelity(feature_map, executor=executor)
    if gradient == "parameter-shift":
        return ParameterShiftFidelity(feature_map, executor=executor)
    return StatevectorFidelity(feature_map, executor=executor)


class QuantumKernel(nn.Module):
    """Gram matrix of the fidelity kernel of one :class:`FeatureMap`, computed by a :class:`~.fidelity.Fidelity`.

    .. math:: k(x, y) = |\\langle 0| U^\\dagger(y) U(x) |0\\rangle|^2

    The kernel encodes data to angles (``feature_map.angles``) and hands them to its fidelity, whatever
    its kind. Default (``fidelity=None``) the exact one (:func:`exact_fidelity`): for a product circuit
    (e.g. the paper's ``reps=1``) ``k = Π_q (1 + r_q(x)·r_q(y)) / 2`` from Bloch vectors, else statevectors
    with the adjoint gradient (``N + M`` state preparations, memory ``O((N + M)·2^n)`` in row chunks within
    ``memory_limit``) or, with ``gradient="parameter-shift"``, the shift rule on exact states (the
    reference). With ``sampler=`` the compute-uncompute circuit ``feature_map.fidelity_circuit()`` runs on a
    Qiskit ``BaseSamplerV2`` (:class:`~.sampler.SamplerFidelity`) and k is the frequency of ``0…0``.
    :meth:`prepare` / :meth:`evaluate` split off the ``y`` side to reuse it over time steps.

    Args:
        feature_map: the circuit U(x) and its data → angle encoding.
        fidelity: a :class:`~.fidelity.Fidelity` built for ``feature_map``, a registered name
            (:data:`~.fidelity.FIDELITIES`: ``"statevector"``, ``"product"``, ``"parameter-shift"``,
            ``"compute-uncompute"``, …) or a factory ``feature_map → Fidelity``; ``None``: chosen from
            the conveniences below.
        sampler: a ``BaseSamplerV2``: the compute-uncompute fidelity on it (with ``fidelity=None``).
        pass_manager: transpiles the composed fidelity circuit once (sampler only).
        warn: issue :class:`ProductKernelWarning` for a product kernel (default True; models
            that hold several kernels warn once themselves, :func:`warn_if_product`).
        gradient: exact backward, ``"adjoint"`` (default) or ``"parameter-shift"``.
        memory_limit: bytes the exact executor may allocate per call (default: a fraction of the
            available memory, :func:`~qk_lstm_qiskit.kernels.statevector.default_memory_limit`).

    Shape:
        ``x``: ``(N, d)``, ``y``: ``(M, d)`` with ``d = feature_map.num_features`` → ``(N, M)``.

    Warns:
        ProductKernelWarning: when U†(y)U(x) factorises over qubits (e.g. ``reps=1``).

    Example:
        >>> import torch
        >>> from qk_lstm_qiskit import FeatureMap, QuantumKernel
        >>> k = QuantumKernel(FeatureMap(4, reps=2))  # exact; fidelity="parameter-shift", sampler=... for others
        >>> x = torch.rand(3, 4, requires_grad=True)
        >>> K = k(x, torch.rand(2, 4))
        >>> K.shape, bool(torch.allclose(k(x, x).diagonal(), torch.ones(3)))  # (N, M); k(x, x) = 1
        (torch.Size([3, 2]), True)
        >>> K.sum().backward()  # differentiable in both arguments
    """

    def __init__(
        self, feature_map: FeatureMap, fidelity: Fidelity | str | Callable[[FeatureMap], Fidelity] | None = None, *,
        sampler=None, pass_manager=None, warn: bool = True, gradient: str = "adjoint", memory_limit: int | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(feature_map, FeatureMap):
            raise TypeError(f"QuantumKernel: expected feature_map to be a FeatureMap, got {type(feature_map).__name__}")
        if gradient not in GRADIENTS:
            raise ValueError(f"QuantumKernel: expected gradient in {GRADIENTS}, got {gradient!r}")
        if fidelity is not None and sampler is not None:
            raise ValueError("QuantumKernel: expected either fidelity or sampler, got both")
        self.feature_map, self.memory_limit = feature_map, memory_limit
        if fidelity is None:
            fidelity = (SamplerFidelity(feature_map, sampler, pass_manager=pass_manager) if sampler is not None
                        else exact_fidelity(feature_map, gradient=gradient, memory_limit=memory_limit))
        elif isinstance(fidelity, str):
            fidelity = make_fidelity(fidelity, feature_map)
        elif not isinstance(fidelity, Fidelity):
            fidelity = fidelity(feature_map)
        if not isinstance(fidelity, Fidelity) or fidelity.num_parameters != feature_map.num_parameters:
            got = type(fidelity).__name__ if not isinstance(fidelity, Fidelity) else f"{fidelity.num_parameters} angles"
            raise TypeError(f"QuantumKernel: expected a Fidelity of {feature_map.num_parameters} angles, got {got}")
        self.fidelity = fidelity
        self._states: StatevectorExecutor | None = None  # for states(), built on first use
        if warn:
            warn_if_product(type(self).__name__, [self])

    @property
    def is_product_kernel(self) -> bool:
        """True when k(x, y) = Π_q k_q(x_q, y_q): classically trivial to evaluate."""
        return self.fidelity.is_product

    @property
    def num_features(self) -> int:
        return self.feature_map.num_features

    def states(self, x: torch.Tensor) -> torch.Tensor:
        """Exact feature states ``(N, 2**n)`` (complex) for data ``(N, d)``."""
        if self._states is None:
            self._states = exact_executor(self.feature_map, self.memory_limit)
        return self._states.statevectors(self.feature_map.angles(x))

    def _check(self, name: str, t: torch.Tensor) -> None:
        check_tensor("QuantumKernel", name, t, finite=False)  # float32 or float64: never a complex "fidelity"
        if t.dim() != 2 or t.size(1) != self.num_features:
            raise ValueError(f"QuantumKernel: expected {name} of shape (N, {self.num_features}), got {tuple(t.shape)}")
        check_tensor("QuantumKernel", name, t)

    def _angles(self, name: str, t: torch.Tensor) -> torch.Tensor:
        """The feature map's angles of ``t``, refusing non-finite ones (e.g. ``sqrt`` of a negative feature)."""
        angles = self.feature_map.angles(t)
        if not torch.isfinite(angles).all():
            row = int((~torch.isfinite(angles)).any(-1).nonzero()[0])
            raise ValueError(f"QuantumKernel: expected the feature map's angles of {name} to be finite, got "
                             f"{angles[row].tolist()} for row {row} ({t[row].tolist()}); check its encoding's domain")
        return angles

    def prepare(self, y: torch.Tensor) -> Reference:
        """Everything of the ``y`` side that does not depend on ``x``: reuse it across time steps."""
        self._check("y", y)
        return self.fidelity.prepare(self._angles("y", y))  # angles (M, P)

    def evaluate(self, x: torch.Tensor, prepared: Reference, *, check: bool = True) -> torch.Tensor:
        """``(N, M)`` kernel of ``x`` ``(N, d)`` against a :meth:`prepare` d side.

        ``check=False`` skips input validation (for callers that validated upstream).
        """
        if check:
            self._check("x", x)
        return self.fidelity(self._angles("x", x), prepared)

    def route(self, prepared: Reference) -> KernelRoute | None:
        """The fidelity's route ``u ↦ k(u, y)`` for a fused layer against a :meth:`prepare` d side, or ``None``."""
        return self.fidelity.route(self.feature_map, prepared)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self._check("x", x)
        self._check("y", y)  # before the cast to x's dtype
        return self.evaluate(x, self.prepare(y.to(x.dtype)), check=False)

    def to_qiskit(self, *, enforce_psd: bool = True):
        """This kernel as a qiskit-machine-learning ``BaseKernel`` (for QSVC, QSVR, PegasosQSVC)."""
        from .qiskit_ml import QiskitKernel

        return QiskitKernel(self, enforce_psd=enforce_psd)
