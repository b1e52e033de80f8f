"""Any parameterized Qiskit circuit → the exact executor's gate set, one fresh parameter per angle.

:func:`compile_circuit` walks ``circuit.data``, keeps the gates the executor runs
(``SUPPORTED``), rewrites ``rzz``/``rxx``/``ryy``/``cp``/``crz`` by fixed rules and anything
else through its Qiskit ``definition``, and replaces every parameterized angle
``e_j(x, w)`` (e.g. ``2(π − x_0)(π − x_1)`` in ``zz_feature_map``) by a parameter ``θ_j``
of its own. :class:`AngleExpressions` evaluates the ``e_j`` in torch (differentiable), so
``compiled(θ = e(x, w))`` is the original circuit at ``(x, w)``.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import sympy
import torch
from sympy.printing.pycode import PythonCodePrinter
from qiskit.circuit import Parameter, ParameterExpression, ParameterVector, QuantumCircuit

from .gates import SUPPORTED_GATES

__all__ = ["SUPPORTED", "CompiledCircuit", "AngleExpressions", "compile_circuit"]

SUPPORTED = SUPPORTED_GATES  #: the executor's gates (circuits/gates.py: one table)

_TORCH = {
    "sin": torch.sin, "cos": torch.cos, "tan": torch.tan, "asin": torch.asin, "acos": torch.acos,
    "atan": torch.atan, "sinh": torch.sinh, "cosh": torch.cosh, "tanh": torch.tanh, "exp": torch.exp,
    "log": torch.log, "sqrt": torch.sqrt, "Abs": torch.abs, "sign": torch.sign, "pi": math.pi, "E": math.e,
}


class _FullPrecisionPrinter(PythonCodePrinter):
    """Prints floats with all 17 significant digits (sympy's default keeps 15: π to 3e-15)."""

    def _print_Float(self, expr) -> str:
        return repr(float(expr))


class CompiledCircuit(NamedTuple):
    """``circuit`` in ``SUPPORTED`` gates with angles ``θ``; ``expressions[j]`` is ``θ_j`` as an
    expression of the source circuit's parameters."""

    circuit: QuantumCircuit
    angles: ParameterVector
    expressions: tuple[ParameterExpression, ...]


def _rules(name: str, params: list, circuit: QuantumCircuit, a: int, b: int | None = None) -> bool:
    """Append the exact (phase-free) decomposition of a few common gates; False when there is no rule."""
    if name in ("u", "u3", "u2"):  # U(θ, φ, λ) = P(φ) RY(θ) P(λ)
        theta, phi, lam = (math.pi / 2, *params) if name == "u2" else params
        circuit.p(lam, a), circuit.ry(theta, a), circuit.p(phi, a)
    elif name == "u1":
        circuit.p(params[0], a)
    elif b is None:
        return False
    elif name == "rzz":
        circuit.cx(a, b), circuit.rz(params[0], b), circuit.cx(a, b)
    elif name == "rxx":
        circuit.h([a, b]), circuit.cx(a, b), circuit.rz(params[0], b), circuit.cx(a, b), circuit.h([a, b])
    elif name == "ryy":
        circuit.sxdg([a, b]), circuit.cx(a, b), circuit.rz(params[0], b), circuit.cx(a, b), circuit.sx([a, b])
    elif name == "cp":
        half = params[0] / 2
        circuit.p(half, a), circuit.cx(a, b), circuit.p(-half, b), circuit.cx(a, b), circuit.p(half, b)
    elif name == "crz":
        half = params[0] / 2
        circuit.rz(half, b), circuit.cx(a, b), circuit.rz(-half, b), circuit.cx(a, b)
    else:
        return False
    return True


def _flatten(circuit: QuantumCircuit, out: QuantumCircuit, qubits: Sequence[int], owner: str) -> None:
    """Append ``circuit`` (on ``out``'s ``qubits``) in ``SUPPORTED`` gates to ``out``."""
    if isinstance(circuit.global_phase, ParameterExpression) and circuit.global_phase.parameters:
        pass  # a parameter-dependent global phase cancels in every fidelity |<ψ(y)|ψ(x)>|²
    else:
        out.global_phase += float(circuit.global_phase)
    for instruction in circuit.data:
        op = instruction.operation
        where = [qubits[circuit.find_bit(q).index] for q in instruction.qubits]
        if op.name in ("barrier", "measure") or op.name in SUPPORTED:
            if op.name == "measure":
                raise ValueError(f"{owner}: expected a circuit without measurements, got 'measure' on qubit {where[0]}")
            if op.name != "barrier":
                out.append(op, [out.qubits[q] for q in where])
            continue
        if len(where) <= 2 and _rules(op.name, list(op.params), out, *where):
            continue
        definition = getattr(op, "definition", None)
        if definition is None:
            raise ValueError(
                f"{owner}: unsupported gate '{op.name}' without a definition (supported: {', '.join(SUPPORTED)})"
            )
        _flatten(definition, out, where, owner)


def compile_circuit(circuit: QuantumCircuit, owner: str = "compile_circuit") -> CompiledCircuit:
    """``circuit`` in ``SUPPORTED`` gates, every parameterized angle a fresh ``θ_j``.

    Raises:
        TypeError: ``circuit`` is not a ``QuantumCircuit``.
        ValueError: measurements, classical bits, or a gate with no decomposition.
    """
    if not isinstance(circuit, QuantumCircuit):
        raise TypeError(f"{owner}: expected a qiskit QuantumCircuit, got {type(circuit).__name__}")
    if circuit.num_clbits:
        raise ValueError(f"{owner}: expected a circuit without classical bits, got {circuit.num_clbits}")
    flat = QuantumCircuit(circuit.num_qubits, name=circuit.name)
    _flatten(circuit, flat, range(circuit.num_qubits), owner)
    expressions = []
    for instruction in flat.data:
        angle = instruction.operation.params[0] if instruction.operation.params else None
        if isinstance(angle, ParameterExpression) and angle.parameters:
            expressions.append(angle)
    theta = ParameterVector("θ", len(expressions))
    compiled = QuantumCircuit(circuit.num_qubits, name=circuit.name, global_phase=flat.global_phase)
    j = 0
    for instruction in flat.data:
        op = instruction.operation
        angle = op.params[0] if op.params else None
        if isinstance(angle, ParameterExpression) and angle.parameters:
            op = op.copy()
            op.params = [theta[j]]
            j += 1
        elif isinstance(angle, ParameterExpression):
            op = op.copy()
            op.params = [float(angle)]
        compiled.append(op, instruction.qubits)
    return CompiledCircuit(compiled, theta, tuple(expressions))


class AngleExpressions:
    """``θ_j = e_j(x, w)`` evaluated in torch: ``(B, d)`` data, ``(W,)`` weights → ``(B, P)``.

    The expressions are converted once with ``sympy.lambdify`` onto torch functions, so the
    angles are differentiable in both ``x`` and ``w``.
    """

    def __init__(
        self, expressions: Sequence[ParameterExpression], inputs: Sequence[Parameter], weights: Sequence[Parameter]
    ) -> None:
        self.num_angles = len(expressions)
        symbols = [sympy.Symbol(p.name) for p in (*inputs, *weights)]
        self.num_inputs = len(inputs)
        self._function = sympy.lambdify(
            symbols, [e.sympify() for e in expressions], modules=[_TORCH],
            printer=_FullPrecisionPrinter({"fully_qualified_modules": False, "inline": True,
                                           "allow_unknown_functions": True, "user_functions": {k: k for k in _TORCH}}),
        )

    def __call__(self, x: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """Angles ``(..., P)`` in ``x.dtype``, computed in float64 and reduced to ``[-2π, 2π)``.

        Every executor gate is 4π-periodic in its angle, so the reduction changes no state; it
        keeps float32 angles accurate to ~1e-7 where ``2(π − x_0)(π − x_1)`` reaches ~80.
        """
        wide = x.double()
        columns = [*wide.unbind(-1), *(() if weights is None else weights.double().unbind(0))]
        like = wide[..., 0]
        if not self.num_angles:
            return x.new_zeros(*x.shape[:-1], 0)
        values = self._function(*columns)
        angles = torch.stack([v.expand_as(like) if torch.is_tensor(v) else like.new_full(like.shape, float(v))
                              for v in values], dim=-1)
        return (torch.remainder(angles + 2 * math.pi, 4 * math.pi) - 2 * math.pi).to(x.dtype)
