"""Quantum feature maps U(x) as parameterized Qiskit circuits: the paper's, or any circuit.

:class:`FeatureMap` is the abstract base every kernel and executor consumes: ``circuit`` (angles
``θ`` as parameters), ``parameters_order``, ``angles(x)``, ``num_parameters``, ``num_qubits``,
``num_features``, ``fidelity_circuit()`` and ``bound_circuit()``. Its two implementations are siblings:
:class:`PaperFeatureMap`, the paper's circuit (what ``FeatureMap(num_qubits, …)`` builds), and
:class:`CircuitFeatureMap` (:meth:`FeatureMap.from_circuit`), any parameterized Qiskit circuit (e.g.
``zz_feature_map``) with optional trainable weight parameters.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

import torch

from qiskit.circuit import Parameter, ParameterVector, QuantumCircuit
from torch import nn

from ..validation import check_choice, check_int, check_number
from .compile import AngleExpressions, compile_circuit

__all__ = ["FeatureMap", "PaperFeatureMap", "CircuitFeatureMap", "ENTANGLEMENTS", "entangling_pairs"]

ENTANGLEMENTS = ("linear", "circular", "full", "none")  #: CNOT patterns of the entangling layer
MAX_QUBITS = 1024  # circuits are built gate by gate in Python; far beyond any device, and still quick to build


def entangling_pairs(num_qubits: int, entanglement: str) -> list[tuple[int, int]]:
    if entanglement == "linear":
        return [(i, i + 1) for i in range(num_qubits - 1)]
    if entanglement == "circular":
        pairs = [(i, i + 1) for i in range(num_qubits - 1)]
        return pairs + [(num_qubits - 1, 0)] if num_qubits > 2 else pairs
    if entanglement == "full":
        return [(i, j) for i in range(num_qubits) for j in range(i + 1, num_qubits)]
    return []


class FeatureMap(nn.Module, ABC):
    """A feature map ``U(x)``: a parameterized circuit whose angles ``θ = angles(x)`` are computed in torch.

    Subclasses set :attr:`num_qubits`, :attr:`circuit` (in the executor's gates, one angle per
    parameterized gate) and :attr:`parameters_order` (the column order of :meth:`angles`), and implement
    :meth:`angles` and :attr:`num_features`. ``FeatureMap(num_qubits, …)`` itself builds the paper's map
    (:class:`PaperFeatureMap`), as ``pathlib.Path`` builds the path of the system.

    Shape:
        :meth:`angles`: ``(..., num_features)`` → ``(..., num_parameters)``.
    """

    num_qubits: int
    circuit: QuantumCircuit
    parameters_order: tuple[Parameter, ...]

    def __new__(cls, *args, **kwargs):
        return super().__new__(PaperFeatureMap if cls is FeatureMap else cls)

    @classmethod
    def from_circuit(
        cls,
        circuit: QuantumCircuit,
        *,
        input_params: Sequence[Parameter] | None = None,
        weight_params: Sequence[Parameter] = (),
        initial_weights: Sequence[float] | torch.Tensor | None = None,
        dtype: torch.dtype | None = None,
    ) -> CircuitFeatureMap:
        """Any parameterized Qiskit circuit as the feature map (see :class:`CircuitFeatureMap`).

        Example:
            >>> from qiskit.circuit.library import zz_feature_map
            >>> fm = FeatureMap.from_circuit(zz_feature_map(3, reps=2))
            >>> fm.angles(torch.zeros(5, 3)).shape
            torch.Size([5, 12])
        """
        return CircuitFeatureMap(
            circuit, input_params=input_params, weight_params=weight_params, initial_weights=initial_weights, dtype=dtype
        )

    @property
    def num_parameters(self) -> int:
        """Circuit parameters (angles) per input."""
        return len(self.parameters_order)

    @property
    @abstractmethod
    def num_features(self) -> int:
        """Data features per input, ``d`` of ``angles(x)``'s ``(B, d)``."""

    @abstractmethod
    def angles(self, x: torch.Tensor) -> torch.Tensor:
        """Rotation angles ``(..., num_parameters)`` for data ``x`` ``(..., num_features)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.angles(x)  # a subclass's angles, also under torch.func.functional_call

    def bound_circuit(self) -> QuantumCircuit:
        """``U(x)`` with ``x`` as parameters and any trainable weights bound to their current values."""
        return self.circuit

    def fidelity_circuit(self) -> tuple[QuantumCircuit, ParameterVector, ParameterVector]:
        """Compute-uncompute circuit ``U(x) U†(y)`` with ``measure_all``; P(0…0) = k(x, y).

        Returns:
            ``(circuit, x, y)``: the circuit and its two angle vectors (each ``num_parameters``
            long, in :meth:`angles` order). A new circuit each call; transpile it for hardware.
        """
        x = ParameterVector("x", self.num_parameters)
        y = ParameterVector("y", self.num_parameters)
        circuit = QuantumCircuit(self.num_qubits, name="k(x,y)")
        circuit.compose(self.circuit.assign_parameters(dict(zip(self.parameters_order, x))), inplace=True)
        circuit.compose(self.circuit.assign_parameters(dict(zip(self.parameters_order, y))).inverse(), inplace=True)
        circuit.measure_all()
        return circuit, x, y


class PaperFeatureMap(FeatureMap):
    """The paper's map: Hadamard → RY(φ1(x_i)) RZ(φ2(x_i)) on qubit i → CNOT entangler, repeated ``reps`` times.

    .. math::
        U(x) = \\prod_{l=1}^{reps} \\Big[E \\bigotimes_i R_z(\\varphi_2(x_i)) R_y(\\varphi_1(x_i)) H\\Big],
        \\quad \\varphi_1(x) = \\arctan(s x),\\ \\varphi_2(x) = \\arctan((s x)^2)

    ``reps=1`` with linear entanglement is exactly the paper's circuit (its eq. 4–7; docs/guide/concepts.md).
    The circuit's parameters are rotation *angles*, one per gate (``θ[l·2n + i]`` for RY on
    qubit i in layer l, ``θ[l·2n + n + i]`` for RZ), so the two-term parameter-shift rule is
    exact; the encoding x → angles runs in torch (:meth:`angles`), with an optional learnable
    per-qubit bandwidth ``s`` (``trainable_scaling``).

    Args:
        num_qubits: qubits = input features, ``>= 1``.
        reps: re-uploading layers, ``>= 1`` (default 1, the paper's circuit).
        entanglement: ``"linear"`` (CNOT(i, i+1), default), ``"circular"``, ``"full"`` or ``"none"``.
        input_scaling: initial bandwidth ``s > 0`` (default 1.0).
        trainable_scaling: learn ``s`` per qubit (default False).

    Shape:
        :meth:`angles`: ``(..., num_qubits)`` → ``(..., num_parameters)``.

    Example:
        >>> fm = FeatureMap(4)
        >>> fm.angles(torch.zeros(2, 4)).shape
        torch.Size([2, 8])
    """

    def __init__(
        self,
        num_qubits: int,
        reps: int = 1,
        entanglement: str = "linear",
        *,
        input_scaling: float = 1.0,
        trainable_scaling: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_int("FeatureMap", "num_qubits", num_qubits, 1)
        check_int("FeatureMap", "reps", reps, 1)
        check_choice("FeatureMap", "entanglement", entanglement, ENTANGLEMENTS)
        check_number("FeatureMap", "input_scaling", input_scaling, minimum=0, strict=True)
        self.num_qubits = num_qubits
        self.reps = reps
        self.entanglement = entanglement
        scaling = torch.full((num_qubits,), float(input_scaling), device=device, dtype=dtype)
        if trainable_scaling:
            self.scaling = nn.Parameter(scaling)
        else:
            self.register_buffer("scaling", scaling)
        self.circuit = self._build_circuit()
        self.parameters_order = tuple(self.circuit.parameters)  # θ[0] … θ[P-1]

    @property
    def num_parameters(self) -> int:
        """Circuit parameters (angles) per input: ``2 · num_qubits · reps``."""
        return 2 * self.num_qubits * self.reps

    @property
    def num_features(self) -> int:
        """Data features per input, ``d`` of ``angles(x)``'s ``(B, d)``."""
        return self.num_qubits

    def _build_circuit(self) -> QuantumCircuit:
        n = self.num_qubits
        theta = ParameterVector("θ", 2 * n * self.reps)
        circuit = QuantumCircuit(n, name="U(x)")
        for layer in range(self.reps):
            offset = 2 * n * layer
            circuit.h(range(n))
            for i in range(n):
                circuit.ry(theta[offset + i], i)
                circuit.rz(theta[offset + n + i], i)
            for control, target in entangling_pairs(n, self.entanglement):
                circuit.cx(control, target)
        return circuit

    def angles(self, x: torch.Tensor) -> torch.Tensor:
        """Rotation angles ``(..., num_parameters)`` for data ``x`` ``(..., num_qubits)``."""
        if x.size(-1) != self.num_qubits:
            raise ValueError(f"FeatureMap: expected x.size(-1) == {self.num_qubits}, got {x.size(-1)}")
        scaled = x * self.scaling
        layer = torch.atan(torch.cat([scaled, scaled * scaled], dim=-1))  # φ1, φ2 of every qubit
        return layer if self.reps == 1 else torch.cat([layer] * self.reps, dim=-1)  # cat: a fifth of repeat's cost

    def extra_repr(self) -> str:
        trainable = isinstance(self.scaling, nn.Parameter)
        return (
            f"num_qubits={self.num_qubits}, reps={self.reps}, entanglement={self.entanglement!r}, "
            f"trainable_scaling={trainable}"
        )


class CircuitFeatureMap(FeatureMap):
    """A parameterized Qiskit circuit ``U(x; w)`` as the feature map, run exactly by the executor.

    The circuit's parameters are data features ``x`` (``input_params``, default: all but the
    weights, in ``circuit.parameters`` order) and trainable weights ``w`` (``weight_params``, an
    ``nn.Parameter`` ``weights``). :func:`~qk_lstm_qiskit.circuits.compile.compile_circuit`
    rewrites it in the executor's gates with one angle ``θ_j`` per parameterized gate;
    :meth:`angles` evaluates ``θ_j = e_j(x, w)`` in torch, e.g. ``2(π − x_0)(π − x_1)`` in
    ``zz_feature_map``, so gradients reach ``x`` and ``w`` by autograd through the angles.
    States equal Qiskit's ``Statevector`` of the bound circuit, up to a parameter-dependent
    global phase when a gate definition carries one (it cancels in every fidelity).

    Args:
        circuit: the source circuit (not modified; kept as ``source``). No measurements.
        input_params: the data parameters, in feature order.
        weight_params: trainable parameters (default none).
        initial_weights: their initial values (default zeros).

    Shape:
        :meth:`angles`: ``(..., num_features)`` → ``(..., num_parameters)``.

    Raises:
        TypeError: ``circuit`` is not a ``QuantumCircuit``.
        ValueError: unknown or overlapping parameters, no input parameter, measurements, a gate
            without a decomposition into the executor's gates, bad ``initial_weights``.
    """

    def __init__(
        self,
        circuit: QuantumCircuit,
        *,
        input_params: Sequence[Parameter] | None = None,
        weight_params: Sequence[Parameter] = (),
        initial_weights: Sequence[float] | torch.Tensor | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        owner = "FeatureMap.from_circuit"
        compiled = compile_circuit(circuit, owner)
        weight_params = tuple(weight_params)
        if input_params is None:
            input_params = [p for p in circuit.parameters if p not in set(weight_params)]
        input_params = tuple(input_params)
        unknown = sorted(p.name for p in (*input_params, *weight_params) if p not in set(circuit.parameters))
        if unknown:
            raise ValueError(f"{owner}: expected parameters of the circuit, got unknown {unknown}")
        unassigned = sorted(p.name for p in set(circuit.parameters) - set(input_params) - set(weight_params))
        if unassigned or set(input_params) & set(weight_params):
            raise ValueError(
                f"{owner}: expected every circuit parameter in exactly one of input_params and weight_params, "
                f"got unassigned {unassigned}, both {sorted(p.name for p in set(input_params) & set(weight_params))}"
            )
        if not input_params:
            raise ValueError(f"{owner}: expected at least one input parameter, got none")
        self.source = circuit
        self.input_params, self.weight_params = input_params, weight_params
        self.num_qubits = circuit.num_qubits
        self.circuit = compiled.circuit
        self.parameters_order = tuple(compiled.angles)
        self.expressions = compiled.expressions
        self._angles = AngleExpressions(compiled.expressions, input_params, weight_params)
        if initial_weights is None:
            initial_weights = torch.zeros(len(weight_params), dtype=torch.float64)
        initial = torch.as_tensor(initial_weights, dtype=dtype or torch.get_default_dtype()).detach().clone()
        if initial.shape != (len(weight_params),) or not torch.isfinite(initial).all():
            raise ValueError(
                f"{owner}: expected {len(weight_params)} finite initial_weights, got shape {tuple(initial.shape)}"
            )
        self.weights = nn.Parameter(initial) if weight_params else None

    @property
    def num_features(self) -> int:
        return len(self.input_params)

    def bound_circuit(self) -> QuantumCircuit:
        """The source circuit with its weights bound to their current values."""
        if self.weights is None:
            return self.source
        values = self.weights.detach().cpu().tolist()
        return self.source.assign_parameters(dict(zip(self.weight_params, values)))

    def angles(self, x: torch.Tensor) -> torch.Tensor:
        """Gate angles ``(..., num_parameters)`` for data ``x`` ``(..., num_features)``."""
        if x.size(-1) != self.num_features:
            raise ValueError(f"FeatureMap: expected x.size(-1) == {self.num_features}, got {x.size(-1)}")
        return self._angles(x, self.weights)

    def extra_repr(self) -> str:
        return (
            f"circuit={self.source.name!r}, num_qubits={self.num_qubits}, num_features={self.num_features}, "
            f"num_weights={len(self.weight_params)}, num_parameters={self.num_parameters}"
        )
