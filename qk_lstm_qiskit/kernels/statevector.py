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
    column: int  # value column of the angle, -1 for a constant angle
    scale: float  # φ = scale * value + shift
    shift: float
    mult: float = 1.0  # φ = mult · ψ with ψ the gate's own angle


@dataclass
class _SingleQubitStage:
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

    def __post_init__(self) -> None:
        self.abc = torch.stack([self.a, self.b, self.c], dim=1)  # (S, 3, n, 2, 2), built once per dtype/device


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
        self._rotations: dict[int, list[float]] = {}  # column -> coefficients a of its Pauli rotations
        self._stages = self._compile(circuit)
        self._cache: dict[tuple[torch.dtype, torch.device], list] = {}

    @property
    def shift_scales(self) -> tuple[float, ...] | None:
        """Per column, the ``a`` of its one gate ``R(a·θ + b)`` (RX/RY/RZ/P), or ``None``.

        When every parameter sits in exactly one such rotation, the two-term shift rule
        ``∂f/∂θ = a [f(θ + π/2a) − f(θ − π/2a)] / 2`` is exact for any expectation or fidelity.
        """
        scales = []
        for column in range(len(self.parameters)):
            coefficients = self._rotations.get(column, [])
            if len(coefficients) != 1 or coefficients[0] == 0.0:
                return None
            scales.append(coefficients[0])
        return tuple(scales)

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
        zero_column = -1  # constant angle
        if op.name in _FIXED_1Q:
            return _Gate1Q(_FIXED_1Q[op.name], _ZERO, _ZERO, zero_column, 0.0, 0.0)
        a, b, c, mult = _PARAM_1Q[op.name]
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
        column = self._columns[param]
        self._rotations.setdefault(column, []).append(coeff)
        return _Gate1Q(a, b, c, column, mult * coeff, mult * shift, mult)

    def _single_stage(self, pending: list[list[_Gate1Q]]) -> _SingleQubitStage:
        n, depth = len(pending), max(len(g) for g in pending)
        identity = _Gate1Q(_I, _ZERO, _ZERO, -1, 0.0, 0.0)
        slots = [[gates[s] if s < len(gates) else identity for gates in pending] for s in range(depth)]

        def stack(field: str) -> torch.Tensor:
            return torch.tensor(np.array([[getattr(g, field) for g in row] for row in slots]), dtype=torch.complex128)

        def affine(rows: list[list[_Gate1Q]], unit: str) -> tuple[torch.Tensor, torch.Tensor]:
            """(P, len(rows)·n) map and shift of the slot angles; unit "phi" or "psi" = φ / mult."""
            matrix = torch.zeros(len(self.parameters), len(rows) * n, dtype=torch.float64)
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
            bloch = np.einsum("nij,nj->ni", np.array([f[0] + math.cos(g.shift / g.mult) * f[1] + math.sin(g.shift / g.mult) * f[2] for f, g in zip(forms[lead], slots[lead])]), bloch)
            lead += 1
        rest = list(range(lead, depth))
        if not rest:  # no parameter: the first "slot" is the constant result
            first = np.stack([bloch, np.zeros_like(bloch), np.zeros_like(bloch)])
            later = np.zeros((0, n, 9, 3))
            bloch_map, bloch_shift = affine([[_Gate1Q(_I, _ZERO, _ZERO, -1, 0.0, 0.0, 1.0)] * n], "psi")
        else:
            first = np.einsum("nkij,nj->kni", np.array(forms[rest[0]]), bloch)
            later = np.array([[f for f in forms[s]] for s in rest[1:]]).reshape(-1, n, 9, 3)  # (S'-1, n, (k, i), j)
            bloch_map, bloch_shift = affine([slots[s] for s in rest], "psi")
        angle_map, angle_shift = affine(slots, "phi")
        return _SingleQubitStage(
            a=stack("a"), b=stack("b"), c=stack("c"), angle_map=angle_map, angle_shift=angle_shift,
            bloch_first=torch.tensor(first, dtype=torch.float64),
            bloch_abc=torch.tensor(np.ascontiguousarray(later), dtype=torch.float64),
            bloch_map=bloch_map, bloch_shift=bloch_shift,
        )

    def _stages_for(self, dtype: torch.dtype, device: torch.device) -> list:
        key = (dtype, device)
        if key not in self._cache:
            cdtype = torch.complex64 if dtype == torch.float32 else torch.complex128
            moved = []
            for s in self._stages:
                if isinstance(s, _SingleQubitStage):
                    complex_parts = (t.to(device, cdtype) for t in (s.a, s.b, s.c))
                    real_parts = (
                        t.to(device, dtype)
                        for t in (s.angle_map, s.angle_shift, s.bloch_first, s.bloch_abc, s.bloch_map, s.bloch_shift)
                    )
                    moved.append(_SingleQubitStage(*complex_parts, *real_parts))
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
        state = None  # None stands for |0...0>
        for stage in self._stages_for(values.dtype, values.device):
            if isinstance(stage, _MonomialStage):
                if state is None:
                    state = _zero_state(batch, n, values)
                state = state[:, stage.perm]
                if stage.phase is not None:
                    state = state * stage.phase
                continue
            if state is None:  # on |0...0> the stage makes a product state
                state = _product_state(_columns(stage, values))
            else:
                state = _apply_local(state, _unitaries(stage, values))
        if state is None:
            state = _zero_state(batch, n, values)
        if self.global_phase:
            state = state * complex(math.cos(self.global_phase), math.sin(self.global_phase))
        return state

    def product_bloch(self, values: torch.Tensor) -> torch.Tensor:
        """Bloch vectors ``(n, 3, B)`` (qubit-major) of the qubits of a product circuit.

        For :attr:`is_product_circuit` circuits ``U(θ)|0⟩ = M ⊗_q u_q(θ)`` with a constant
        unitary ``M`` (CX/CZ/SWAP stages), so ``|⟨ψ(θ')|ψ(θ)⟩|² = Π_q (1 + r_q(θ)·r_q(θ')) / 2``
        with ``r_q`` the Bloch vector of ``u_q``. Each gate acts on ``r`` as the SO(3) rotation
        ``A + cos ψ B + sin ψ C`` derived from its 2×2 matrix at compile time; real arithmetic.
        """
        if not self.is_product_circuit:
            raise ValueError("StatevectorExecutor: expected a product circuit for product_bloch, got entangling stages")
        stages = self._stages_for(values.dtype, values.device)
        n, batch = self.num_qubits, values.size(0)
        if not stages or not isinstance(stages[0], _SingleQubitStage):
            bloch = values.new_zeros(n, 3, batch)
            bloch[:, 2] = 1.0  # |0>
            return bloch
        stage = stages[0]
        psi = torch.addmm(stage.bloch_shift[:, None], stage.bloch_map.t(), values.t())  # (S'·n, B)
        ones = values.new_ones(n, 1, batch)
        bloch = None
        for s, angle in enumerate(psi.view(psi.size(0) // n, n, 1, batch).unbind(0)):  # (n, 1, B) per slot
            coef = torch.cat([ones, torch.cos(angle), torch.sin(angle)], dim=1)  # (n, 3, B): 1, cos ψ, sin ψ
            if bloch is None:  # first slot on the folded constant vector: terms (n, 3 terms, 3)
                terms = stage.bloch_first.permute(1, 0, 2)[..., None]  # (n, 3, 3, 1)
            else:  # (n, 9, 3) @ (n, 3, B): A r, B r, C r for every qubit at once
                terms = torch.bmm(stage.bloch_abc[s - 1], bloch).view(n, 3, 3, batch)
            bloch = (coef[:, :, None, :] * terms).sum(1)  # (n, 3, B)
        return bloch

    def probabilities(self, values: torch.Tensor) -> torch.Tensor:
        """Born probabilities ``(B, 2**n)`` of the computational basis states."""
        state = self.statevectors(values)
        return state.real.square() + state.imag.square()

    def __repr__(self) -> str:
        kinds = ["1q" if isinstance(s, _SingleQubitStage) else "perm" for s in self._stages]
        return f"StatevectorExecutor(num_qubits={self.num_qubits}, parameters={len(self.parameters)}, stages={kinds})"


def _angles(stage: _SingleQubitStage, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    phi = torch.addmm(stage.angle_shift, values, stage.angle_map).view(values.size(0), stage.a.size(0), -1)  # (B, S, n)
    return torch.cos(phi), torch.sin(phi)


def _columns(stage: _SingleQubitStage, values: torch.Tensor) -> torch.Tensor:
    """``(B, n, 2)``: each qubit's gates applied to |0⟩, one column carried through the slots."""
    cos, sin = _angles(stage, values)
    a, b, c = (m[0, :, :, 0] for m in (stage.a, stage.b, stage.c))  # first slot on |0>: (n, 2)
    columns = a + cos[:, 0, :, None] * b + sin[:, 0, :, None] * c
    for s in range(1, cos.size(1)):
        abc = torch.einsum("knij,bnj->kbni", stage.abc[s], columns)  # (3, B, n, 2)
        columns = abc[0] + cos[:, s, :, None] * abc[1] + sin[:, s, :, None] * abc[2]
    return columns


def _unitaries(stage: _SingleQubitStage, values: torch.Tensor) -> torch.Tensor:
    """``(B, n, 2, 2)``: the product of each qubit's gates in the stage."""
    cos, sin = _angles(stage, values)
    mats = stage.a + cos[..., None, None] * stage.b + sin[..., None, None] * stage.c  # (B, S, n, 2, 2)
    unitary = mats[:, 0]
    for s in range(1, mats.size(1)):
        unitary = mats[:, s] @ unitary
    return unitary


_PAULIS = (_X, _Y, _Z)


def _bloch_form(gate: _Gate1Q) -> np.ndarray:
    """``(3, 3, 3)``: A, B, C with Bloch rotation ``R(ψ) = A + cos ψ B + sin ψ C`` of the gate.

    ``R_ij = ½ Tr(σ_i U σ_j U†)``; sampled at ψ = 0, π/2, π and checked at a fourth angle.
    """

    def rotation(psi: float) -> np.ndarray:
        phi = gate.mult * psi
        u = gate.a + math.cos(phi) * gate.b + math.sin(phi) * gate.c
        return np.array([[0.5 * np.trace(si @ u @ sj @ u.conj().T).real for sj in _PAULIS] for si in _PAULIS])

    r0, r1, r2 = rotation(0.0), rotation(math.pi / 2), rotation(math.pi)
    a, b = (r0 + r2) / 2, (r0 - r2) / 2
    c = r1 - a
    if not np.allclose(rotation(0.7), a + math.cos(0.7) * b + math.sin(0.7) * c, atol=1e-12):
        raise ValueError("StatevectorExecutor: a gate's Bloch rotation is not of the form A + cos ψ B + sin ψ C")
    return np.stack([a, b, c])


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
