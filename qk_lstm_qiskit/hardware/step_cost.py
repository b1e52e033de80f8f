"""QPU cost of a sequence inference in which each time step is one job holding a row per *active* sequence.

Sequences of lengths ``l_i`` run in batches (sorted by length; one batch of all by default); in a
batch, time step ``t`` of layer ``k`` is one job (the steps are sequential: ``h_t`` needs
``h_{t−1}``) whose PUB has a row for each sequence still running, ``a_t = #{i : l_i > t}`` — padded
steps send nothing. An estimator runs ``c`` circuits per input row (compute–uncompute ``G·R``,
tomography 3, shadows ``K``) plus ``e`` echo circuits per job (depolarising correction), ``S``
shots each:

.. math::
    C = \\sum_{b,k,t} (a_t c + e), \\qquad J = \\sum_{b,k,t} \\lceil (a_t c + e)/J_{max} \\rceil,\\qquad
    T_{QPU} \\approx J\\,t_{job} + S\\,C\\,(t_{circ} + t_{rep}) + T_{cal}

with a readout calibration ``T_cal = J_cal t_job + S_cal C_cal (t_cal + t_rep)`` when one is run.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

from ..validation import check_int

__all__ = ["StepCost", "step_cost"]


@dataclass(frozen=True)
class StepCost:
    """Counts and QPU seconds of :func:`step_cost` (inputs echoed, outputs ``circuits``, ``jobs``, ``qpu_seconds``)."""

    sequences: int
    tokens: int
    circuits_per_input: int
    echo_circuits_per_job: int
    shots: int
    layers: int
    circuit_seconds: float
    rep_delay_seconds: float
    job_overhead_seconds: float
    calibration_circuits: int
    calibration_shots: int
    calibration_seconds: float
    circuits: int
    jobs: int
    total_shots: int
    qpu_seconds: float

    @property
    def seconds_per_token(self) -> float:
        """QPU seconds of the circuits per token step (jobs and calibration excluded)."""
        per_input = self.circuits_per_input * self.shots * (self.circuit_seconds + self.rep_delay_seconds)
        return per_input * self.layers

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "seconds_per_token": self.seconds_per_token}


def step_cost(lengths: Sequence[int], *, circuits_per_input: int, shots: int, circuit_seconds: float,
              rep_delay_seconds: float, job_overhead_seconds: float = 3.0, echo_circuits_per_job: int = 0,
              layers: int = 1, batch_size: int | None = None, max_circuits_per_job: int | None = None,
              calibration_circuits: int = 0, calibration_shots: int = 0,
              calibration_circuit_seconds: float = 0.0) -> StepCost:
    """The cost of running sequences of ``lengths`` (formula in the module docstring).

    Raises:
        ValueError: a length below 1 or a count out of range.
    """
    lengths = sorted(int(n) for n in lengths)
    if any(n < 1 for n in lengths):
        raise ValueError(f"step_cost: expected sequence lengths >= 1, got {min(lengths)}")
    for name, value, minimum in (("circuits_per_input", circuits_per_input, 1), ("shots", shots, 1),
                                 ("echo_circuits_per_job", echo_circuits_per_job, 0), ("layers", layers, 1),
                                 ("calibration_circuits", calibration_circuits, 0),
                                 ("calibration_shots", calibration_shots, 0)):
        check_int("step_cost", name, value, minimum)
    check_int("step_cost", "batch_size", batch_size, 1, optional=True)
    check_int("step_cost", "max_circuits_per_job", max_circuits_per_job, 1, optional=True)
    size = batch_size or max(len(lengths), 1)
    circuits = jobs = 0
    for start in range(0, len(lengths), size):
        batch = lengths[start : start + size]
        for t in range(max(batch)):
            bindings = sum(1 for n in batch if n > t) * circuits_per_input + echo_circuits_per_job
            circuits += layers * bindings
            jobs += layers * (1 if max_circuits_per_job is None else math.ceil(bindings / max_circuits_per_job))
    calibration = 0.0
    if calibration_circuits:
        calibration = job_overhead_seconds + calibration_shots * calibration_circuits * (
            calibration_circuit_seconds + rep_delay_seconds)
    qpu = jobs * job_overhead_seconds + shots * circuits * (circuit_seconds + rep_delay_seconds) + calibration
    return StepCost(
        sequences=len(lengths), tokens=sum(lengths), circuits_per_input=circuits_per_input,
        echo_circuits_per_job=echo_circuits_per_job, shots=shots, layers=layers, circuit_seconds=circuit_seconds,
        rep_delay_seconds=rep_delay_seconds, job_overhead_seconds=job_overhead_seconds,
        calibration_circuits=calibration_circuits, calibration_shots=calibration_shots,
        calibration_seconds=calibration, circuits=circuits, jobs=jobs, total_shots=shots * circuits, qpu_seconds=qpu,
    )
