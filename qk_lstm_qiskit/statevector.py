"""Exact, differentiable statevector simulation of parameterized Qiskit circuits in torch.

The executor walks ``circuit.data`` once and compiles it into alternating *stages*:

* a single-qubit stage: every qubit gets the product of its consecutive one-qubit gates,
  built for the whole batch at once as ``A + cos(φ) B + sin(φ) C`` per gate;
* a monomial stage: consecutive CX / CZ / SWAP gates fused into one permutation of the
  ``2**n`` amplitudes and one phase vector, ``ψ'[k] = phase[k] ψ[perm[k]]``.

Amplitudes follow Qiskit's little-endian convention (qubit ``q`` is bit ``q`` of the
basis index), so results equal ``qiskit.quantum_info.Statevector`` of the bound circuit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from qiskit.circuit import Parameter, ParameterExpression, QuantumCircuit

__all__ = ["StatevectorExecutor", "SUPPORTED_GATES"]

_I = np.eye(2, dtype=complex)
_X = np.array([[0, 1], [1, 0]], dtype=complex)
_Y = np.array([[0, -1j], [1j, 0]], dtype=complex)
_Z = np.diag([1.0, -1.0]).astype(complex)
_ZERO = np.zeros((2, 2), dtype=complex)

# name -> (A, B, C, angle multiplier): matrix = A + cos(m θ) B + sin(m θ) C
_FIXED_1Q = {
    "id": _I,
    "h": np.array([[1, 1], [1, -1]], dtype=complex) / math.sqrt(2),
    "x": _X,
    "y": _Y,
    "z": _Z,
    "s": np.diag([1, 1j]),
    "sdg": np.diag([1, -1j]),
    "t": np.diag([1, np.exp(1j * math.pi / 4)]),
    "tdg": np.diag([1, np.exp(-1j * math.pi / 4)]),
    "sx": np.array([[1 + 1j, 1 - 1j], [1 - 1j, 1 + 1j]]) / 2,
    "sxdg": np.array([[1 - 1j, 1 + 1j], [1 + 1j, 1 - 1j]]) / 2,
}
_PARAM_1Q = {
    "rx": (_ZERO, _I, -1j * _X, 0.5),
    "ry": (_ZERO, _I, -1j * _Y, 0.5),
    "rz": (_ZERO, _I, -1j * _Z, 0.5),
    "p": (np.diag([1, 0]).astype(complex), np.diag([0, 1]).astype(complex), np.diag([0, 1j]), 1.0),
}
_MONOMIAL_2Q = ("cx", "cz", "swap")
SUPPORTED_GATES = tuple(sorted((*_FIXED_1Q, *_PARAM_1Q, *_MONOMIAL_2Q)))


@dataclass
class _Gate1Q:
    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    column: int  # index into the extended value vector (last column is a constant 0)
    scale: float  # φ = scale * value + shift
    shift: float


@dataclass
class _SingleQubitStage:
    a: torch.Tensor  # (S, n, 2, 2) complex128
    b: torch.Tensor
    c: torch.Tensor
    column: torch.Tensor  # (S, n) long
    scale: torch.Tensor  # (S, n) float64
    shift: torch.Tensor


@dataclass
class _MonomialStage:
    perm: torch.Tensor  # (2**n,) long
    phase: torch.Tensor | None  # (2**n,) complex128, None when all ones


class StatevectorExecutor:
    """Batched statevectors of one parameterized circuit, differentiable by autograd.

    .. math:: |\\psi(\\theta_b)\\rangle = U(\\theta_b)\\,|0\\rangle^{\\otimes n}

    Args:
        circuit: the circuit to simulate (not modified). Gates: ``SUPPORTED_GATES``;
            barriers are skipped and final measurements ignored.
        parameters: order of the value columns (default ``circuit.parameters``).

    Shape:
        ``values``: ``(B, P)`` float32 or float64 → states ``(B, 2**n)`` complex64/128.

    Raises:
        ValueError: a gate is not supported, a gate angle is not ``a·θ + b`` for one
            parameter, a gate follows a measurement, or the parameter list does not match.
    """

    def __init__(self, circuit: QuantumCircuit, parameters: Sequence[Parameter] | None = None) -> None:
        self.num_qubits = circuit.num_qubits
        self.parameters = tuple(circuit.parameters if parameters is None else parameters)
        missing = set(circuit.parameters) - set(self.parameters)
        if missing:
            names = sorted(p.name for p in missing)
            raise ValueError(f"StatevectorExecutor: parameters missing from the column order: {names}")
        if isinstance(circuit.global_phase, ParameterExpression):
            raise ValueError("StatevectorExecutor: expected a numeric global phase, got a parameter expression")
        self.global_phase = float(circuit.global_phase)
        self._columns = {p: i for i, p in enumerate(self.parameters)}
        self._stages = self._compile(circuit)
        self._cache: dict[tuple[torch.dtype, torch.device], list] = {}

    @property
    def is_product_circuit(self) -> bool:
        """True when ``U = M · (⊗_q u_q)`` with ``M`` a constant monomial (CX/CZ/SWAP) stage.

        Then ``U†(x')U(x)`` is a tensor product of single-qubit unitaries, so the fidelity
        kernel factorises into single-qubit kernels.
        """
        return all(isinstance(s, _MonomialStage) for s in self._stages[1:])

    # ------------------------------------------------------------------ compilation
    def _compile(self, circuit: QuantumCircuit) -> list:
        n = self.num_qubits
        stages: list = []
        pending: list[list[_Gate1Q]] = [[] for _ in range(n)]
        perm = phase = None
        measured: set[int] = set()

        def flush_single() -> None:
            if any(pending):
                stages.append(self._single_stage(pending))
                for gates in pending:
                    gates.clear()

        def flush_monomial() -> None:
            nonlocal perm, phase
            if perm is not None:
                unit = bool(np.allclose(phase, 1.0))
                stages.append(_MonomialStage(torch.from_numpy(perm), None if unit else torch.from_numpy(phase)))
                perm = phase = None

        for instruction in circuit.data:
            op = instruction.operation
            qubits = [circuit.find_bit(q).index for q in instruction.qubits]
            if op.name == "barrier":
                continue
            if op.name == "measure":
                measured.update(qubits)
                continue
            if measured.intersection(qubits):
                raise ValueError(f"StatevectorExecutor: gate '{op.name}' follows a measurement on qubits {qubits}")
            if op.name in _FIXED_1Q or op.name in _PARAM_1Q:
                flush_monomial()
                pending[qubits[0]].append(self._gate_1q(op))
            elif op.name in _MONOMIAL_2Q:
                flush_single()
                gate_perm, gate_phase = _monomial(op.name, qubits, n)
                if perm is None:
                    perm, phase = np.arange(2**n), np.ones(2**n, dtype=complex)
                perm, phase = perm[gate_perm], gate_phase * phase[gate_perm]
            else:
                raise ValueError(
                    f"StatevectorExecutor: unsupported gate '{op.name}' (supported: {', '.join(SUPPORTED_GATES)});"
                    " decompose the circuit first"
                )
        flush_single()
        flush_monomial()
        return stages

    def _gate_1q(self, op) -> _Gate1Q:
        zero_column = len(self.parameters)
        if op.name in _FIXED_1Q:
            return _Gate1Q(_FIXED_1Q[op.name], _ZERO, _ZERO, zero_column, 0.0, 0.0)
        a, b, c, mult = _PARAM_1Q[op.name]
        angle = op.params[0]
        if not isinstance(angle, ParameterExpression) or not angle.parameters:
            return _Gate1Q(a, b, c, zero_column, 0.0, mult * float(angle))
        if len(angle.parameters) != 1:
            raise ValueError(f"StatevectorExecutor: expected one parameter in gate '{op.name}', got {angle}")
        (param,) = angle.parameters
        shift = float(angle.bind({param: 0.0}))
        coeff = float(angle.bind({param: 1.0})) - shift
        if not math.isclose(float(angle.bind({param: 2.0})), 2 * coeff + shift, abs_tol=1e-12):
            raise ValueError(f"StatevectorExecutor: expected an angle a*θ + b in gate '{op.name}', got {angle}")
        return _Gate1Q(a, b, c, self._columns[param], mult * coeff, mult * shift)

    def _single_stage(self, pending: list[list[_Gate1Q]]) -> _SingleQubitStage:
        n, depth = len(pending), max(len(g) for g in pending)
        identity = _Gate1Q(_I, _ZERO, _ZERO, len(self.parameters), 0.0, 0.0)
        slots = [[gates[s] if s < len(gates) else identity for gates in pending] for s in range(depth)]

        def stack(field: str, dtype) -> torch.Tensor:
            return torch.tensor(np.array([[getattr(g, field) for g in row] for row in slots]), dtype=dtype)

        return _SingleQubitStage(
            a=stack("a", torch.complex128),
            b=stack("b", torch.complex128),
            c=stack("c", torch.complex128),
            column=stack("column", torch.long).reshape(depth, n),
            scale=stack("scale", torch.float64).reshape(depth, n),
            shift=stack("shift", torch.float64).reshape(depth, n),
        )

    def _stages_for(self, dtype: torch.dtype, device: torch.device) -> list:
        key = (dtype, device)
        if key not in self._cache:
            cdtype = torch.complex64 if dtype == torch.float32 else torch.complex128
            moved = []
            for s in self._stages:
                if isinstance(s, _SingleQubitStage):
                    moved.append(
                        _SingleQubitStage(
                            *(t.to(device, cdtype) for t in (s.a, s.b, s.c)),
                            s.column.to(device),
                            s.scale.to(device, dtype),
                            s.shift.to(device, dtype),
                        )
                    )
                else:
                    phase = None if s.phase is None else s.phase.to(device, cdtype)
                    moved.append(_MonomialStage(s.perm.to(device), phase))
            self._cache[key] = moved
        return self._cache[key]

    # ------------------------------------------------------------------ execution
    def statevectors(self, values: torch.Tensor) -> torch.Tensor:
        """States ``(B, 2**n)`` for parameter values ``(B, P)`` (columns in ``self.parameters`` order)."""
        if values.dim() != 2 or values.size(1) != len(self.parameters):
            raise ValueError(
                f"StatevectorExecutor: expected values of shape (B, {len(self.parameters)}), got {tuple(values.shape)}"
            )
        if values.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"StatevectorExecutor: expected float32 or float64 values, got {values.dtype}")
        n, batch = self.num_qubits, values.size(0)
        extended = torch.cat([values, values.new_zeros(batch, 1)], dim=1)  # (B, P + 1)
        state = None  # None stands for |0...0>
        for stage in self._stages_for(values.dtype, values.device):
            if isinstance(stage, _MonomialStage):
                if state is None:
                    state = _zero_state(batch, n, values)
                state = state[:, stage.perm]
                if stage.phase is not None:
                    state = state * stage.phase
                continue
            phi = extended[:, stage.column] * stage.scale + stage.shift  # (B, S, n)
            cos, sin = torch.cos(phi)[..., None, None], torch.sin(phi)[..., None, None]
            mats = stage.a + cos * stage.b + sin * stage.c  # (B, S, n, 2, 2)
            unitary = mats[:, 0]
            for s in range(1, mats.size(1)):
                unitary = mats[:, s] @ unitary  # (B, n, 2, 2)
            state = _product_state(unitary[..., 0]) if state is None else _apply_local(state, unitary)
        if state is None:
            state = _zero_state(batch, n, values)
        if self.global_phase:
            state = state * complex(math.cos(self.global_phase), math.sin(self.global_phase))
        return state

    def probabilities(self, values: torch.Tensor) -> torch.Tensor:
        """Born probabilities ``(B, 2**n)`` of the computational basis states."""
        state = self.statevectors(values)
        return state.real.square() + state.imag.square()

    def __repr__(self) -> str:
        kinds = ["1q" if isinstance(s, _SingleQubitStage) else "perm" for s in self._stages]
        return f"StatevectorExecutor(num_qubits={self.num_qubits}, parameters={len(self.parameters)}, stages={kinds})"


def _zero_state(batch: int, n: int, like: torch.Tensor) -> torch.Tensor:
    cdtype = torch.complex64 if like.dtype == torch.float32 else torch.complex128
    state = torch.zeros(batch, 2**n, dtype=cdtype, device=like.device)
    state[:, 0] = 1.0
    return state


def _product_state(columns: torch.Tensor) -> torch.Tensor:
    """Kronecker product ``v_{n-1} ⊗ … ⊗ v_0`` of per-qubit vectors ``(B, n, 2)`` → ``(B, 2**n)``."""
    batch, n = columns.shape[:2]
    state = columns[:, n - 1]
    for q in range(n - 2, -1, -1):
        state = (state[:, :, None] * columns[:, q, None, :]).reshape(batch, -1)
    return state


def _apply_local(state: torch.Tensor, unitary: torch.Tensor) -> torch.Tensor:
    """Apply ``⊗_q unitary[:, q]`` (``(B, n, 2, 2)``) to states ``(B, 2**n)``."""
    batch, n = unitary.shape[:2]
    for q in range(n):
        view = state.reshape(batch, 2 ** (n - 1 - q), 2, 2**q)
        state = torch.einsum("bij,bajc->baic", unitary[:, q], view).reshape(batch, -1)
    return state


def _monomial(name: str, qubits: list[int], n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(perm, phase)`` with ``ψ'[k] = phase[k] ψ[perm[k]]`` for one CX / CZ / SWAP gate."""
    index = np.arange(2**n)
    first, second = ((index >> q) & 1 for q in qubits)
    phase = np.ones(2**n, dtype=complex)
    if name == "cx":
        perm = index ^ (first << qubits[1])
    elif name == "cz":
        perm = index
        phase = np.where(first & second, -1.0, 1.0).astype(complex)
    else:  # swap
        perm = index ^ ((first ^ second) << qubits[0]) ^ ((first ^ second) << qubits[1])
    return perm, phase
