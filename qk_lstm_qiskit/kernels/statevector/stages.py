"""Compilation of a circuit into the executor's stages (from the gate table in :mod:`qk_lstm_qiskit.circuits.gates`).

* :class:`SingleQubitStage`: every qubit's run of consecutive one-qubit gates, padded to ``S`` slots,
  each slot ``A + cos φ B + sin φ C`` with ``φ`` affine in the values; its unitaries as Fourier modes
  (:class:`~.modes.UnitaryModes`) and, for product circuits, its real Bloch form;
* :class:`MonomialStage`: consecutive CX / CZ / SWAP gates as one permutation of the ``2**n``
  amplitudes and one phase vector, ``ψ'[k] = phase[k] ψ[perm[k]]`` (built on first use).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from qiskit.circuit import Parameter, ParameterExpression, QuantumCircuit

from ...circuits.gates import FIXED_1Q, IDENTITY, MONOMIAL_2Q, PARAMETERIZED_1Q, PAULIS, SUPPORTED_GATES, ZERO
from .modes import UnitaryModes

__all__ = ["SingleQubitStage", "MonomialStage", "compile_stages", "move_stages", "monomial", "complex_dtype"]


def complex_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.complex64 if dtype == torch.float32 else torch.complex128


@dataclass
class _Gate1Q:
    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    column: int  # value column of the angle, -1 for a constant angle
    scale: float  # φ = scale * value + shift
    shift: float
    mult: float = 1.0  # φ = mult · ψ with ψ the gate's own angle


_IDENTITY_GATE = _Gate1Q(IDENTITY, ZERO, ZERO, -1, 0.0, 0.0)


@dataclass
class SingleQubitStage:
    """Each qubit's run of one-qubit gates, padded to S slots; angles are affine in the values.

    Complex form: slot gate = A + cos φ B + sin φ C with φ = values @ angle_map + angle_shift.
    Bloch form (real): constant leading slots are folded into ``bloch_first``, the first
    parameterised slot already applied to it; the rest rotate by ``A + cos ψ B + sin ψ C``.
    """

    a: torch.Tensor  # (S, n, 2, 2) complex
    b: torch.Tensor
    c: torch.Tensor
    angle_map: torch.Tensor  # (P, S·n)
    angle_shift: torch.Tensor  # (S·n,)
    bloch_first: torch.Tensor  # (3, n, 3): A r0, B r0, C r0 of the first parameterised slot
    bloch_abc: torch.Tensor  # (S' - 1, n, 9, 3): rows (A, B, C) × i for the later parameterised slots
    bloch_map: torch.Tensor  # (P, S'·n): ψ = values @ bloch_map + bloch_shift
    bloch_shift: torch.Tensor  # (S'·n,)
    modes: UnitaryModes | None = None  # the unitaries as Fourier modes (None: more than MAX_MODES)


@dataclass
class MonomialStage:
    """CX / CZ / SWAP gates ``(name, qubits)`` in order; their permutation is built on first use."""

    gates: list[tuple[str, tuple[int, ...]]]
    perm: torch.Tensor | None = None  # (2**n,) long
    inverse: torch.Tensor | None = None  # (2**n,) long, perm[inverse] = arange
    phase: torch.Tensor | None = None  # (2**n,) complex, None when all ones


def compile_stages(circuit: QuantumCircuit, parameters: Sequence[Parameter]) -> tuple[list, dict[int, list[float]]]:
    """The stages of ``circuit`` (value columns in ``parameters`` order) and, per column, the
    coefficients ``a`` of its rotations ``R(a·θ + b)``.

    Raises:
        ValueError: an unsupported gate, an angle not ``a·θ + b`` of one parameter, a gate after a measurement.
    """
    n, columns = circuit.num_qubits, {p: i for i, p in enumerate(parameters)}
    rotations: dict[int, list[float]] = {}
    stages: list = []
    pending: list[list[_Gate1Q]] = [[] for _ in range(n)]
    monomials: list[tuple[str, tuple[int, ...]]] = []
    measured: set[int] = set()

    def flush_single() -> None:
        if any(pending):
            stages.append(_single_stage(pending, len(parameters)))
            for gates in pending:
                gates.clear()

    def flush_monomial() -> None:
        if monomials:
            stages.append(MonomialStage(list(monomials)))
            monomials.clear()

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
        if op.name in FIXED_1Q or op.name in PARAMETERIZED_1Q:
            flush_monomial()
            pending[qubits[0]].append(_gate_1q(op, columns, rotations))
        elif op.name in MONOMIAL_2Q:
            flush_single()
            monomials.append((op.name, tuple(qubits)))
        else:
            raise ValueError(
                f"StatevectorExecutor: unsupported gate '{op.name}' (supported: {', '.join(SUPPORTED_GATES)});"
                " decompose the circuit first"
            )
    flush_single()
    flush_monomial()
    return stages, rotations


def _gate_1q(op, columns: dict, rotations: dict[int, list[float]]) -> _Gate1Q:
    zero_column = -1  # constant angle
    if op.name in FIXED_1Q:
        return _Gate1Q(FIXED_1Q[op.name], ZERO, ZERO, zero_column, 0.0, 0.0)
    a, b, c, mult = PARAMETERIZED_1Q[op.name]
    angle = op.params[0]
    if not isinstance(angle, ParameterExpression) or not angle.parameters:
        return _Gate1Q(a, b, c, zero_column, 0.0, mult * float(angle), mult)
    if len(angle.parameters) != 1:
        raise ValueError(f"StatevectorExecutor: expected one parameter in gate '{op.name}', got {angle}")
    (param,) = angle.parameters
    shift = float(angle.bind({param: 0.0}))
    coeff = float(angle.bind({param: 1.0})) - shift
    if not math.isclose(float(angle.bind({param: 2.0})), 2 * coeff + shift, abs_tol=1e-12):
        raise ValueError(f"StatevectorExecutor: expected an angle a*θ + b in gate '{op.name}', got {angle}")
    column = columns[param]
    rotations.setdefault(column, []).append(coeff)
    return _Gate1Q(a, b, c, column, mult * coeff, mult * shift, mult)


def _single_stage(pending: list[list[_Gate1Q]], num_parameters: int) -> SingleQubitStage:
    n, depth = len(pending), max(len(g) for g in pending)
    slots = [[gates[s] if s < len(gates) else _IDENTITY_GATE for gates in pending] for s in range(depth)]

    def stack(field: str) -> torch.Tensor:
        return torch.tensor(np.array([[getattr(g, field) for g in row] for row in slots]), dtype=torch.complex128)

    def affine(rows: list[list[_Gate1Q]], unit: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(P, len(rows)·n) map and shift of the slot angles; unit "phi" or "psi" = φ / mult."""
        matrix = torch.zeros(num_parameters, len(rows) * n, dtype=torch.float64)
        shift = torch.zeros(len(rows) * n, dtype=torch.float64)
        for s, row in enumerate(rows):
            for q, g in enumerate(row):
                div = g.mult if unit == "psi" else 1.0
                if g.column >= 0:
                    matrix[g.column, s * n + q] = g.scale / div
                shift[s * n + q] = g.shift / div
        return matrix, shift

    forms = [[_bloch_form(g) for g in row] for row in slots]  # (S, n) of (3, 3, 3)
    bloch = np.tile(np.array([0.0, 0.0, 1.0]), (n, 1))  # |0> on every qubit
    lead = 0
    while lead < depth and all(g.column < 0 for g in slots[lead]):  # fold constant slots
        rotation = [f[0] + math.cos(g.shift / g.mult) * f[1] + math.sin(g.shift / g.mult) * f[2]
                    for f, g in zip(forms[lead], slots[lead])]
        bloch = np.einsum("nij,nj->ni", np.array(rotation), bloch)
        lead += 1
    rest = list(range(lead, depth))
    if not rest:  # no parameter: the first "slot" is the constant result
        first = np.stack([bloch, np.zeros_like(bloch), np.zeros_like(bloch)])
        later = np.zeros((0, n, 9, 3))
        bloch_map, bloch_shift = affine([[_Gate1Q(IDENTITY, ZERO, ZERO, -1, 0.0, 0.0, 1.0)] * n], "psi")
    else:
        first = np.einsum("nkij,nj->kni", np.array(forms[rest[0]]), bloch)
        later = np.array([[f for f in forms[s]] for s in rest[1:]]).reshape(-1, n, 9, 3)  # (S'-1, n, (k, i), j)
        bloch_map, bloch_shift = affine([slots[s] for s in rest], "psi")
    angle_map, angle_shift = affine(slots, "phi")
    a, b, c = stack("a"), stack("b"), stack("c")
    return SingleQubitStage(
        a=a, b=b, c=c, angle_map=angle_map, angle_shift=angle_shift,
        bloch_first=torch.tensor(first, dtype=torch.float64),
        bloch_abc=torch.tensor(np.ascontiguousarray(later), dtype=torch.float64),
        bloch_map=bloch_map, bloch_shift=bloch_shift, modes=UnitaryModes.of(a, b, c, angle_map, angle_shift),
    )


def _bloch_form(gate: _Gate1Q) -> np.ndarray:
    """``(3, 3, 3)``: A, B, C with Bloch rotation ``R(ψ) = A + cos ψ B + sin ψ C`` of the gate.

    ``R_ij = ½ Tr(σ_i U σ_j U†)``; sampled at ψ = 0, π/2, π and checked at a fourth angle.
    """

    def rotation(psi: float) -> np.ndarray:
        phi = gate.mult * psi
        u = gate.a + math.cos(phi) * gate.b + math.sin(phi) * gate.c
        return np.array([[0.5 * np.trace(si @ u @ sj @ u.conj().T).real for sj in PAULIS] for si in PAULIS])

    r0, r1, r2 = rotation(0.0), rotation(math.pi / 2), rotation(math.pi)
    a, b = (r0 + r2) / 2, (r0 - r2) / 2
    c = r1 - a
    if not np.allclose(rotation(0.7), a + math.cos(0.7) * b + math.sin(0.7) * c, atol=1e-12):
        raise ValueError("StatevectorExecutor: a gate's Bloch rotation is not of the form A + cos ψ B + sin ψ C")
    return np.stack([a, b, c])


def move_stages(stages: list, dtype: torch.dtype, device: torch.device) -> list:
    """Copies of the compiled (float64 / complex128) ``stages`` in ``dtype`` on ``device``; monomial
    stages are fresh (their permutation is built on first use, on that device)."""
    cdtype, moved = complex_dtype(dtype), list[SingleQubitStage | MonomialStage]()
    for s in stages:
        if isinstance(s, SingleQubitStage):
            complex_parts = {name: getattr(s, name).to(device, cdtype) for name in ("a", "b", "c")}
            real_parts = {name: getattr(s, name).to(device, dtype) for name in
                          ("angle_map", "angle_shift", "bloch_first", "bloch_abc", "bloch_map", "bloch_shift")}
            modes = None if s.modes is None else UnitaryModes(*(t.to(device, dtype) for t in s.modes))
            moved.append(SingleQubitStage(**complex_parts, **real_parts, modes=modes))
        else:
            moved.append(MonomialStage(s.gates))
    return moved


def monomial(stage: MonomialStage, n: int, dtype: torch.dtype, device: torch.device) -> MonomialStage:
    """``stage`` with its permutation, inverse and phase (built once: ``ψ'[k] = phase[k] ψ[perm[k]]``)."""
    if stage.perm is None:
        perm, phase = np.arange(2**n), np.ones(2**n, dtype=complex)
        for name, qubits in stage.gates:
            gate_perm, gate_phase = _monomial(name, list(qubits), n)
            perm, phase = perm[gate_perm], gate_phase * phase[gate_perm]
        stage.perm = torch.from_numpy(perm).to(device)
        stage.inverse = torch.from_numpy(np.argsort(perm)).to(device)
        stage.phase = None if np.allclose(phase, 1.0) else torch.from_numpy(phase).to(device, complex_dtype(dtype))
    return stage


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
