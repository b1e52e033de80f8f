"""The paper's quantum feature map U(x), defined once as a parameterized Qiskit circuit."""

from __future__ import annotations

import torch
from qiskit.circuit import ParameterVector, QuantumCircuit
from torch import nn

from ..validation import check_choice, check_int, check_number

__all__ = ["FeatureMap", "ENTANGLEMENTS", "entangling_pairs"]

ENTANGLEMENTS = ("linear", "circular", "full", "none")


def entangling_pairs(num_qubits: int, entanglement: str) -> list[tuple[int, int]]:
    if entanglement == "linear":
        return [(i, i + 1) for i in range(num_qubits - 1)]
    if entanglement == "circular":
        pairs = [(i, i + 1) for i in range(num_qubits - 1)]
        return pairs + [(num_qubits - 1, 0)] if num_qubits > 2 else pairs
    if entanglement == "full":
        return [(i, j) for i in range(num_qubits) for j in range(i + 1, num_qubits)]
    return []


class FeatureMap(nn.Module):
    """Hadamard → RY(φ1(x_i)) RZ(φ2(x_i)) on qubit i → CNOT entangler, repeated ``reps`` times.

    .. math::
        U(x) = \\prod_{l=1}^{reps} \\Big[E \\bigotimes_i R_z(\\varphi_2(x_i)) R_y(\\varphi_1(x_i)) H\\Big],
        \\quad \\varphi_1(x) = \\arctan(s x),\\ \\varphi_2(x) = \\arctan((s x)^2)

    ``reps=1`` with linear entanglement is exactly the paper's circuit (NOTES.md, eq. 4–7).
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
        layer = torch.cat([torch.atan(scaled), torch.atan(scaled * scaled)], dim=-1)
        return layer if self.reps == 1 else layer.repeat(*([1] * (x.dim() - 1)), self.reps)

    forward = angles

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

    def extra_repr(self) -> str:
        trainable = isinstance(self.scaling, nn.Parameter)
        return (
            f"num_qubits={self.num_qubits}, reps={self.reps}, entanglement={self.entanglement!r}, "
            f"trainable_scaling={trainable}"
        )
