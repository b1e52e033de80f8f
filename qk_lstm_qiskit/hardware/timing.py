"""Device timing: how long a circuit runs on a device's target, and the device's repetition delay."""

from __future__ import annotations

import math

__all__ = ["DEFAULT_REP_DELAY_S", "circuit_duration", "rep_delay"]

DEFAULT_REP_DELAY_S = 250e-6  #: a device's repetition delay when it does not say
_SECONDS_PER_UNIT = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9, "ps": 1e-12}


def circuit_duration(circuit, target) -> float | None:
    """Critical-path duration in seconds of an ISA ``circuit`` on ``target`` (ASAP schedule).

    Every instruction starts when all its qubits are free and lasts
    ``target[name][physical qubits].duration``; barriers align their qubits; ``delay`` lasts its
    own duration. Returns ``None`` when some instruction has no duration in ``target``.
    """
    free = [0.0] * circuit.num_qubits  # time each qubit becomes free
    for instruction in circuit.data:
        op = instruction.operation
        qubits = tuple(circuit.find_bit(q).index for q in instruction.qubits)
        if not qubits:
            continue
        start = max(free[q] for q in qubits)
        duration: float | None
        if op.name == "barrier":
            duration = 0.0
        elif op.name == "delay":
            scale = target.dt if op.unit == "dt" else _SECONDS_PER_UNIT.get(op.unit)
            duration = None if scale is None else float(op.duration) * scale
        else:
            try:
                props = target[op.name][qubits]
            except KeyError:
                return None
            duration = None if props is None else props.duration
        if duration is None:
            return None
        for q in qubits:
            free[q] = start + duration
    return max(free, default=0.0)


def rep_delay(device) -> float:
    """The device's default repetition delay in seconds (``DEFAULT_REP_DELAY_S`` if unknown)."""
    for getter in (lambda: device.default_rep_delay, lambda: device.configuration().default_rep_delay):
        try:
            value = getter()
        except Exception:
            continue
        if value is not None and math.isfinite(float(value)) and float(value) >= 0:
            return float(value)
    return DEFAULT_REP_DELAY_S
