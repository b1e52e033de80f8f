"""``U(x)`` measured in per-qubit Pauli bases: the circuit of the tomography and shadow estimators.

:func:`without_constant_tail` drops the gates after which no parameterized gate acts (e.g. the
paper map's final CNOT chain): ``U = V·U'`` with a constant ``V``, so every fidelity
``|⟨ψ(y)|ψ(x)⟩|²`` is the same for ``U'``, which is shallower and, for the paper's ``reps=1``, a
product of one-qubit unitaries. :func:`basis_measurement_circuit` appends ``R_z(α_q)`` then
``R_y(β_q)`` to every qubit and measures all qubits, so one parameterized circuit covers every
setting: its parameters are the map's angles ``θ`` and ``[α, β]``
(:func:`~qk_lstm_qiskit.estimators.bases.basis_angles`).
"""

from __future__ import annotations

from typing import Sequence

from qiskit.circuit import Parameter, ParameterVector, QuantumCircuit

__all__ = ["basis_measurement_circuit", "is_product_circuit", "without_constant_tail"]


def without_constant_tail(circuit: QuantumCircuit) -> QuantumCircuit:
    """A copy of ``circuit`` without its trailing parameter-free gates (those no parameterized gate follows on
    any of their qubits) and without its global phase; barriers and measurements are dropped too."""
    blocked: set[int] = set()
    kept = []
    for instruction in reversed(circuit.data):
        op = instruction.operation
        if op.name in ("barrier", "measure"):
            continue
        qubits = {circuit.find_bit(q).index for q in instruction.qubits}
        if not op.is_parameterized() and not (qubits & blocked):
            continue  # part of the constant tail V
        blocked |= qubits
        kept.append(instruction)
    out = QuantumCircuit(circuit.num_qubits, name=f"{circuit.name} (no constant tail)")
    for instruction in reversed(kept):
        out.append(instruction.operation, [circuit.find_bit(q).index for q in instruction.qubits])
    return out


def is_product_circuit(circuit: QuantumCircuit) -> bool:
    """True when no gate (barriers aside) acts on two or more qubits: ``U(x)|0⟩`` is a product state."""
    return all(len(i.qubits) < 2 or i.operation.name == "barrier" for i in circuit.data)


def basis_measurement_circuit(circuit: QuantumCircuit, parameters: Sequence[Parameter]
                              ) -> tuple[QuantumCircuit, ParameterVector, ParameterVector]:
    """``(measured, θ, basis)``: ``circuit`` with ``parameters`` renamed ``θ``, then ``R_y(basis[n + q]) R_z(basis[q])``
    on qubit q, then ``measure_all``. A new circuit each call (transpile it for hardware)."""
    n = circuit.num_qubits
    theta = ParameterVector("θ", len(parameters))
    basis = ParameterVector("b", 2 * n)
    measured = QuantumCircuit(n, name="U(x) in Pauli bases")
    present = set(circuit.parameters)
    measured.compose(circuit.assign_parameters({p: t for p, t in zip(parameters, theta) if p in present}), inplace=True)
    for q in range(n):
        measured.rz(basis[q], q)
        measured.ry(basis[n + q], q)
    measured.measure_all()
    return measured, theta, basis
