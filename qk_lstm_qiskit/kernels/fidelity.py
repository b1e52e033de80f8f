"""The fidelity protocol: how a kernel ``k(x, y) = |⟨ψ(y)|ψ(x)⟩|²`` is computed from feature-map angles.

A :class:`Fidelity` is built for one feature map (its circuit and angle count) and evaluates
``k[n, m]`` for angles ``ax`` ``(N, P)`` against a reference side prepared once (:meth:`Fidelity.prepare`,
reused over the time steps of a sequence). It says whether the kernel is a product of one-qubit
kernels, which circuits it runs on a device, what one kernel value costs in circuits (forward, and
backward for the sides that need gradients), and which route a fused layer may take through it.
:class:`~qk_lstm_qiskit.kernels.kernel.QuantumKernel` holds one and never asks which kind it is
(the model: qiskit-machine-learning's ``FidelityQuantumKernel(fidelity=…)`` over ``BaseStateFidelity``).

A new way to compute kernels is one subclass plus one :func:`register_fidelity` line.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

import torch
from torch import nn

if TYPE_CHECKING:
    from qiskit.circuit import QuantumCircuit

    from ..circuits.feature_map import FeatureMap
    from .routes import KernelRoute

__all__ = ["Fidelity", "FidelityCost", "Reference", "FIDELITIES", "register_fidelity", "make_fidelity"]


class Reference(NamedTuple):
    """The prepared ``y`` side: its angles ``(M, P)`` and what the fidelity made of them (``None``: nothing)."""

    angles: torch.Tensor
    prepared: Any = None


@dataclass(frozen=True)
class FidelityCost:
    """Circuits one kernel value ``k(x_n, y_m)`` costs on a device (0 for a simulator's exact value).

    Attributes:
        forward: circuits of the forward pass per value.
        backward: circuits of the backward pass per value (for the sides that need gradients).
        shifted_parameters: circuit parameters shifted per value in the backward (``P_s``; 0 if none).
        per_call: circuits each forward :meth:`Fidelity.evaluate` call (one job) adds whatever its size
            (``e``: the echo circuits of a depolarising correction; default 0).
    """

    forward: int
    backward: int = 0
    shifted_parameters: int = 0
    per_call: int = 0


class Fidelity(nn.Module, ABC):
    """``k[n, m] = |⟨ψ(ay_m)|ψ(ax_n)⟩|²`` for the angles of one feature map, differentiable in both sides.

    Subclasses implement :meth:`evaluate` and :attr:`is_product`; they may override ``_prepare``
    (what the ``y`` side precomputes), :meth:`circuits`, :meth:`cost` and :meth:`route`. The module
    holds no parameters or buffers of its own (a model's ``state_dict`` does not depend on its fidelity).

    Args:
        feature_map: the map whose angles are evaluated (only its sizes and circuits are kept).

    Shape:
        ``ax``: ``(N, P)``; ``y``: a :class:`Reference` or angles ``(M, P)`` → ``(N, M)`` in ``ax.dtype``.
    """

    def __init__(self, feature_map: FeatureMap) -> None:
        super().__init__()
        self.num_qubits, self.num_parameters = feature_map.num_qubits, feature_map.num_parameters

    @property
    @abstractmethod
    def is_product(self) -> bool:
        """True when ``k(x, y) = Π_q k_q(x, y)`` (``U†(y)U(x)`` factorises over qubits: classically trivial)."""

    def prepare(self, ay: torch.Tensor) -> Reference:
        """The ``y`` side of angles ``ay`` ``(M, P)``, prepared once for many :meth:`evaluate` calls."""
        return Reference(ay, self._prepare(ay))

    def _prepare(self, ay: torch.Tensor) -> Any:
        return None

    @abstractmethod
    def evaluate(self, ax: torch.Tensor, reference: Reference) -> torch.Tensor:
        """``(N, M)`` kernel of angles ``ax`` ``(N, P)`` against a prepared reference (unchecked)."""

    def forward(self, ax: torch.Tensor, y: Reference | torch.Tensor) -> torch.Tensor:
        ay = y.angles if isinstance(y, Reference) else y
        for name, rows, t in (("ax", "N", ax), ("ay", "M", ay)):
            if not isinstance(t, torch.Tensor) or t.dim() != 2 or t.size(1) != self.num_parameters:
                shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                raise ValueError(f"{type(self).__name__}: expected {name} of shape ({rows}, {self.num_parameters}), got {shape}")
            if not t.is_floating_point():
                raise TypeError(f"{type(self).__name__}: expected {name} to be a floating-point tensor, got {t.dtype}")
        return self.evaluate(ax, y if isinstance(y, Reference) else self.prepare(ay))

    def circuits(self) -> tuple[QuantumCircuit, ...]:
        """The circuits this fidelity submits to a device, as submitted (``()``: it runs none)."""
        return ()

    def cost(self, *, differentiate_y: bool = False) -> FidelityCost:
        """Circuits per kernel value, forward and backward (``differentiate_y``: the reference side needs
        gradients too). Default: no circuits (an exact simulation)."""
        return FidelityCost(forward=0)

    def route(self, feature_map: FeatureMap, reference: Reference) -> KernelRoute | None:
        """The kernel ``u ↦ k(angles(u), reference)`` as a fused layer's route, or ``None`` (the per-step loop)."""
        return None


FIDELITIES: dict[str, Callable[..., Fidelity]] = {}  #: name → factory: ``factory(feature_map, **options)``


def register_fidelity(name: str) -> Callable[[type[Fidelity]], type[Fidelity]]:
    """Class decorator: make ``cls`` available as ``make_fidelity(name, feature_map, **options)``."""

    def register(cls: type[Fidelity]) -> type[Fidelity]:
        if name in FIDELITIES and FIDELITIES[name] is not cls:
            raise ValueError(f"register_fidelity: expected a new name, got {name!r} (registered: {FIDELITIES[name]})")
        FIDELITIES[name] = cls
        return cls

    return register


def make_fidelity(name: str, feature_map: FeatureMap, **options: Any) -> Fidelity:
    """The registered fidelity ``name`` for ``feature_map`` (``options`` go to its constructor)."""
    if name not in FIDELITIES:
        raise ValueError(f"make_fidelity: expected a fidelity in {tuple(sorted(FIDELITIES))}, got {name!r}")
    return FIDELITIES[name](feature_map, **options)
