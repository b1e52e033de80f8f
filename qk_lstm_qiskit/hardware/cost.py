"""What a QK-LSTM run costs on a QPU, counted before anything is submitted.

A QK-LSTM cell evaluates, at every time step, the kernels of its ``G = 4`` gates between the
``N`` projected inputs of the batch and the ``R`` reference vectors of each gate, in ONE
sampler call (one job, one PUB of ``N·G·R·f`` bindings). The time steps are sequential
(``h_t`` needs ``h_{t-1}``), and so are the ``K`` stacked layers, so each batch costs
``K·L`` job rounds for the forward pass. Training adds ``b`` backward circuits per kernel value,
sent as one backward job per forward job. ``f`` and ``b`` are the kernel fidelity's own count
(:meth:`~qk_lstm_qiskit.kernels.fidelity.Fidelity.cost`): compute-uncompute runs ``f = 1`` circuit per
value and shifts each of the ``P_s`` gate angles of the differentiated sides, ``b = 2 P_s``. Which sides
are differentiated is read off the built model (:func:`estimate_model_cost`): the reference side when
the references, the bandwidth or the map's trainable layers require gradients.

Counts, for batches ``b`` of ``N_b`` sentences padded to length ``L_b`` (padding is computed
too, except in an evaluation whose kernels skip padded rows: ``N_b L_b`` becomes ``Σ_t a_{b,t}``, the rows
still running at each step, :func:`active_rows`), ``E`` epochs (1 for inference) and ``S`` shots per circuit:

.. math::
    C_{fwd} = E \\sum_b K L_b N_b G R f, \\qquad C_{bwd} = E \\sum_b K L_b N_b G R b\\ (training),\\ 0\\ (inference)

    J = E \\sum_b K L_b \\cdot (1 + [training]), \\qquad \\text{shots} = S (C_{fwd} + C_{bwd})

    T_{QPU} \\approx J\\, t_{job} + S (C_{fwd} + C_{bwd}) (t_{circ} + t_{rep})

A fidelity may add ``e`` circuits to every forward call whatever its size (the echo circuits of a
depolarising correction, :class:`~qk_lstm_qiskit.kernels.depolarizing.DepolarizingCorrectedFidelity`):
``C_fwd = E Σ_b K L_b (N_b G R f + e)``, in the same jobs.

With a job limit ``M`` (``max_circuits_per_job``) a step of ``B`` bindings takes ``⌈B/M⌉`` jobs
(submitted together). With readout mitigation the calibration adds ``C_cal`` circuits of
``S_cal`` shots in ``J_cal`` jobs (0 when a cached calibration is reused):
``T_QPU += J_cal t_job + S_cal C_cal (t_cal + t_rep)``. With ``W`` parallel batches the job
*rounds* (sequential waits) are the makespan of the batches' steps on ``W`` workers in batch
order; QPU time is the same.

``t_circ`` is the critical path of the ISA fidelity circuit from the device target's gate
and readout durations (``target[op][qargs].duration``), ``t_rep`` the device's default
repetition delay (``backend.default_rep_delay``, 250 µs if unknown) and ``t_job`` a per-job
overhead (default 3 s, an assumption: IBM's workload-usage guide shows a one-circuit 4096-shot
job using ≈ 4 s). In session mode IBM bills wall-clock time instead, which this cannot know.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from qiskit.primitives import BaseSamplerV2, BitArray, DataBin, PrimitiveResult, SamplerPubResult
from qiskit.primitives.containers.sampler_pub import SamplerPub
from qiskit.primitives.primitive_job import PrimitiveJob

from ..errors import QKLSTMError
from .aer_sampler import submitted_job
from .timing import DEFAULT_REP_DELAY_S, circuit_duration, rep_delay
from ..kernels.fidelity import FidelityCost
from ..kernels.kernel import QuantumKernel
from ..nn.cell import NUM_GATES, QKLSTMCell
from ..validation import check_int

__all__ = [
    "CalibrationCost",
    "CostEstimate",
    "DeviceTiming",
    "DryRunSampler",
    "JobLimits",
    "KernelLoad",
    "DEFAULT_JOB_OVERHEAD_S",
    "OPEN_PLAN_SECONDS",
    "active_rows",
    "batch_shapes",
    "check_budget",
    "estimate_cost",
    "estimate_model_cost",
    "isa_circuit",
    "kernel_load",
    "sampler_kernels",
]

logger = logging.getLogger(__name__)

DEFAULT_JOB_OVERHEAD_S = 3.0  #: seconds of QPU time a job costs beyond its shots (when not given)
OPEN_PLAN_SECONDS = 600.0  #: 10 QPU minutes per month
FORMULA = (
    "C_fwd = E·Σ_b K·L_b·N_b·G·R·f; C_bwd = E·Σ_b K·L_b·N_b·G·R·b if training else 0 (f, b: the fidelity's "
    "circuits per kernel value; compute-uncompute f = 1, b = 2·P_s); "
    "J = E·Σ_b K·L_b·(2 if training else 1); shots = S·(C_fwd + C_bwd); "
    "T_QPU ≈ J·t_job + S·(C_fwd + C_bwd)·(t_circ + t_rep)"
)
CALIBRATION_FORMULA = " + J_cal·t_job + S_cal·C_cal·(t_cal + t_rep)"
PER_CALL_FORMULA = "; with e circuits per forward call (job): C_fwd = E·Σ_b K·L_b·(N_b·G·R·f + e)"
ACTIVE_ROWS_FORMULA = ("; padded steps not sent: N_b·L_b → Σ_t a_b,t (a_b,t = rows of batch b still running at step t), "
                       "one job per step")


@dataclass(frozen=True)
class CostEstimate:
    """Counts and QPU time of a run; :meth:`summary` prints them with the formula.

    Attributes (inputs):
        backend, device: backend name and device name (``None`` off-device).
        shots: ``S``; ``training``: forward + parameter-shift backward, else forward only.
        num_layers, num_gates, num_references: ``K``, ``G``, ``R``.
        shift_parameters: ``P_s``; circuits_per_value, backward_circuits_per_value: ``f``, ``b``;
        circuits_per_call: ``e`` (echo circuits per forward job); ``epochs``: ``E``; ``batches``: ``((N_b, L_b), …)``.
        active_rows: per batch, the rows still running at each step ``(a_b,0, …, a_b,L_b−1)`` (padded steps
        not sent, inference); ``None``: every row of every step (padding computed too).
        circuit_seconds, rep_delay_seconds, job_overhead_seconds: ``t_circ``, ``t_rep``, ``t_job``.
        max_circuits_per_job: ``M`` (``None``: no limit); parallel_batches: ``W``.
        mitigation: ``none``, ``m3`` or ``marginal``; calibration_circuits, calibration_shots,
        calibration_circuit_seconds: ``C_cal``, ``S_cal`` per circuit, ``t_cal`` (0 circuits: cached).
        target_error, variance_factor: ``E`` (``None``: shots given) and ``γ`` of the estimator.
    Attributes (outputs):
        forward_circuits, backward_circuits, circuits (= bindings), total_shots, jobs,
        rounds (sequential job rounds), qpu_seconds (``None`` without durations; 0 off-QPU),
        calibration_jobs, calibration_qpu_seconds (included in qpu_seconds),
        kernel_standard_error (``√(γ/4S)``, a bound for every kernel value).
    """

    backend: str
    device: str | None
    shots: int
    training: bool
    num_layers: int
    num_gates: int
    num_references: int
    shift_parameters: int
    epochs: int
    batches: tuple[tuple[int, int], ...]
    circuit_seconds: float | None
    rep_delay_seconds: float
    job_overhead_seconds: float
    on_qpu: bool
    max_circuits_per_job: int | None = None
    parallel_batches: int = 1
    circuits_per_value: int = 1
    backward_circuits_per_value: int = 0
    circuits_per_call: int = 0
    mitigation: str = "none"
    calibration_circuits: int = 0
    calibration_shots: int = 0
    calibration_circuit_seconds: float | None = None
    target_error: float | None = None
    variance_factor: float = 1.0
    active_rows: tuple[tuple[int, ...], ...] | None = None
    forward_circuits: int = field(init=False)
    backward_circuits: int = field(init=False)
    circuits: int = field(init=False)
    total_shots: int = field(init=False)
    jobs: int = field(init=False)
    rounds: int = field(init=False)
    qpu_seconds: float | None = field(init=False)
    calibration_jobs: int = field(init=False)
    calibration_qpu_seconds: float | None = field(init=False)
    kernel_standard_error: float = field(init=False)

    def _jobs(self, bindings: int) -> int:
        limit = self.max_circuits_per_job
        return 0 if bindings == 0 else 1 if limit is None else -(-bindings // limit)

    def steps(self) -> list[list[int]]:
        """Per batch, the input rows sent at each of its time steps (``N_b`` each, or the active rows)."""
        if self.active_rows is not None:
            return [list(rows) for rows in self.active_rows]
        return [[size] * length for size, length in self.batches]

    def __post_init__(self) -> None:
        per_step = self.num_gates * self.num_references  # kernel values per input row and step
        steps = self.steps()
        kernel_values = self.epochs * sum(self.num_layers * sum(rows) * per_step for rows in steps)
        backward_per_value = self.backward_circuits_per_value if self.training else 0
        calls = self.epochs * sum(self.num_layers * length for _, length in self.batches)  # forward calls
        forward = kernel_values * self.circuits_per_value + calls * self.circuits_per_call
        backward = kernel_values * backward_per_value
        jobs = self.epochs * sum(
            self.num_layers * (self._jobs(a * per_step * self.circuits_per_value + self.circuits_per_call)
                               + self._jobs(a * per_step * backward_per_value))
            for rows in steps for a in rows
        )
        passes = (self.circuits_per_value + self.circuits_per_call > 0) + (backward_per_value > 0)  # rounds per step
        workers = [0] * self.parallel_batches  # list scheduling of each batch's sequential rounds
        for _, length in self.batches:
            workers[workers.index(min(workers))] += self.num_layers * length * passes
        rounds = self.epochs * max(workers, default=0)
        circuits = forward + backward
        cal_jobs = self._jobs(self.calibration_circuits) if self.calibration_circuits else 0
        cal_qpu: float | None = 0.0
        if not self.on_qpu:
            qpu = 0.0
        elif self.circuit_seconds is None:
            qpu = None
        else:
            qpu = jobs * self.job_overhead_seconds + self.shots * circuits * (self.circuit_seconds + self.rep_delay_seconds)
        if self.on_qpu and cal_jobs:
            t_cal = self.calibration_circuit_seconds
            cal_qpu = None if t_cal is None else (
                cal_jobs * self.job_overhead_seconds
                + self.calibration_shots * self.calibration_circuits * (t_cal + self.rep_delay_seconds))
            qpu = None if qpu is None or cal_qpu is None else qpu + cal_qpu
        values = {
            "forward_circuits": forward, "backward_circuits": backward, "circuits": circuits,
            "total_shots": self.shots * circuits, "jobs": jobs, "rounds": rounds, "qpu_seconds": qpu,
            "calibration_jobs": cal_jobs, "calibration_qpu_seconds": cal_qpu,
            "kernel_standard_error": math.sqrt(self.variance_factor / (4.0 * self.shots)),
        }
        for key, value in values.items():
            object.__setattr__(self, key, value)

    @property
    def formula(self) -> str:
        return (FORMULA + (PER_CALL_FORMULA if self.circuits_per_call else "")
                + (ACTIVE_ROWS_FORMULA if self.active_rows is not None else "")
                + (CALIBRATION_FORMULA if self.calibration_circuits else ""))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["batches"] = [list(b) for b in self.batches]
        out["active_rows"] = None if self.active_rows is None else [list(rows) for rows in self.active_rows]
        out["formula"] = self.formula
        out["open_plan_months"] = None if self.qpu_seconds is None else self.qpu_seconds / OPEN_PLAN_SECONDS
        return out

    def summary(self) -> str:
        """Multi-line human-readable report: inputs, counts, QPU time and the formula."""
        sizes = [n for n, _ in self.batches]
        lengths = [length for _, length in self.batches]
        lines = [
            f"cost estimate for {self.backend}" + (f" ({self.device})" if self.device else ""),
            f"  mode: {'training (forward + parameter-shift backward)' if self.training else 'inference (forward only)'}",
            f"  model: K={self.num_layers} layer(s), G={self.num_gates} gates, R={self.num_references} references/gate, "
            f"P_s={self.shift_parameters} shifted parameters/binding, f={self.circuits_per_value} forward and "
            f"b={self.backward_circuits_per_value} backward circuits per kernel value"
            + (f", e={self.circuits_per_call} echo circuits per forward job" if self.circuits_per_call else ""),
            f"  data: {len(self.batches)} batch(es) × E={self.epochs} epoch(s); N_b in [{min(sizes, default=0)}, "
            f"{max(sizes, default=0)}], L_b in [{min(lengths, default=0)}, {max(lengths, default=0)}]"
            + ("" if self.active_rows is None else
               f"; padded steps not sent ({sum(map(sum, self.active_rows)):,} of {sum(n * n_l for n, n_l in self.batches):,} "
               "input rows)"),
            f"  circuits (bindings): {self.circuits:,} = {self.forward_circuits:,} forward + {self.backward_circuits:,} backward",
            f"  shots: {self.total_shots:,} (S={self.shots:,} per circuit"
            + (f", chosen for a kernel standard error ≤ {self.target_error:g}" if self.target_error is not None else "")
            + f"; standard error ≤ {self.kernel_standard_error:.4f} with γ = {self.variance_factor:.3f})",
            f"  jobs: {self.jobs:,} in {self.rounds:,} sequential rounds (one per time step and layer"
            + (", forward and backward" if self.training else "")
            + (f"; ≤ {self.max_circuits_per_job:,} circuits per job" if self.max_circuits_per_job else "")
            + (f"; {self.parallel_batches} batches in parallel" if self.parallel_batches > 1 else "") + ")",
        ]
        if self.mitigation != "none":
            if self.calibration_circuits:
                cal = (f"{self.calibration_circuits} calibration circuits × {self.calibration_shots:,} shots in "
                       f"{self.calibration_jobs} job(s)")
                if self.on_qpu and self.calibration_qpu_seconds is not None:
                    cal += f", ≈ {self.calibration_qpu_seconds:,.1f} QPU s (included below)"
            else:
                cal = "cached calibration reused: nothing to run"
            lines.append(f"  readout mitigation: {self.mitigation}; {cal}")
        if not self.on_qpu:
            lines.append("  QPU seconds: 0 (simulator)")
        elif self.qpu_seconds is None:
            lines.append("  QPU seconds: unknown (the device target has no gate durations)")
        else:
            t_circ = (self.circuit_seconds or 0.0) * 1e6  # known whenever qpu_seconds is
            lines.append(
                f"  QPU seconds: ≈ {self.qpu_seconds:,.1f} (= {self.qpu_seconds / OPEN_PLAN_SECONDS:.2f} × the open "
                f"plan's 600 s/month) with t_circ = {t_circ:.2f} µs, t_rep = {self.rep_delay_seconds * 1e6:.0f} µs, "
                f"t_job = {self.job_overhead_seconds:g} s"
            )
        lines.append(f"  formula: {self.formula}")
        return "\n".join(lines)


@dataclass(frozen=True)
class KernelLoad:
    """What a model asks of the device per input row, time step and layer.

    Attributes:
        num_references: ``R`` reference vectors per gate; num_layers: ``K``; num_gates: ``G`` (default 4).
        circuits_per_value, backward_circuits_per_value: ``f`` and ``b``, the fidelity's circuits per kernel
            value forward and (training) backward (:class:`~qk_lstm_qiskit.kernels.fidelity.FidelityCost`).
        shift_parameters: ``P_s``, gate angles shifted per value in the backward (reported).
        circuits_per_call: ``e``, circuits each forward call (job) adds (default 0).
    """

    num_references: int
    num_layers: int = 1
    num_gates: int = NUM_GATES
    circuits_per_value: int = 1
    backward_circuits_per_value: int = 0
    shift_parameters: int = 0
    circuits_per_call: int = 0

    @classmethod
    def of(cls, cost: FidelityCost, *, num_references: int, num_layers: int = 1, num_gates: int = NUM_GATES) -> KernelLoad:
        """The load of ``num_layers`` cells of ``G·R`` kernel values each, at the fidelity's ``cost`` per value."""
        return cls(num_references, num_layers, num_gates, cost.forward, cost.backward, cost.shifted_parameters,
                   cost.per_call)


@dataclass(frozen=True)
class DeviceTiming:
    """Where the circuits run and what a job costs in time.

    Attributes:
        device: the ``BackendV2`` (target durations, rep delay), or ``None`` off-device.
        isa_circuit: the transpiled fidelity circuit, for ``t_circ`` (with ``device``).
        backend: backend name for the report.
        on_qpu: whether QPU time is spent (default ``None``: ``device`` is given).
        job_overhead_seconds: ``t_job`` (default 3 s).
    """

    device: Any = None
    isa_circuit: Any = None
    backend: str = ""
    on_qpu: bool | None = None
    job_overhead_seconds: float = DEFAULT_JOB_OVERHEAD_S


@dataclass(frozen=True)
class JobLimits:
    """``max_circuits_per_job``: ``M``, larger steps are split (``None``: no limit); ``parallel_batches``: ``W``."""

    max_circuits_per_job: int | None = None
    parallel_batches: int = 1


@dataclass(frozen=True)
class CalibrationCost:
    """The readout calibration a mitigation runs first: ``method`` (``none``, ``m3``, ``marginal``),
    ``circuits`` ``C_cal`` of ``shots`` ``S_cal`` each (0 circuits: cached), one ISA ``circuit`` for
    ``t_cal``, and the estimator's variance factor ``γ`` (default 1)."""

    method: str = "none"
    circuits: int = 0
    shots: int = 0
    circuit: Any = None
    variance_factor: float = 1.0


def estimate_cost(
    batches: Iterable[tuple[int, int]],
    load: KernelLoad,
    *,
    shots: int,
    training: bool = False,
    epochs: int = 1,
    timing: DeviceTiming = DeviceTiming(),
    jobs: JobLimits = JobLimits(),
    calibration: CalibrationCost = CalibrationCost(),
    target_error: float | None = None,
    active_rows: Iterable[Sequence[int]] | None = None,
) -> CostEstimate:
    """Count circuits, shots, jobs and QPU seconds of a run (formula in the module docstring).

    Args:
        batches: ``(N_b, L_b)`` per batch: sentences and padded length.
        load: the model's :class:`KernelLoad` (``R``, ``K``, ``G``, circuits per kernel value).
        shots: ``S`` per circuit.
        training: add the backward circuits (default False: inference).
        epochs: ``E`` (default 1).
        timing: the device and job overhead (:class:`DeviceTiming`; default off-device).
        jobs: the :class:`JobLimits` (default no job limit, one batch at a time).
        calibration: the readout calibration to run (:class:`CalibrationCost`; default none).
        target_error: the kernel standard error the shots were chosen for (recorded).
        active_rows: per batch, the rows sent at each step (:func:`active_rows`; inference without padded steps);
            ``None``: ``N_b`` rows at every step.

    Raises:
        ValueError: a count or batch shape that is not a positive int; active rows that do not fit the batches.

    Example:
        >>> est = estimate_cost([(2, 5)], KernelLoad(num_references=4), shots=1000)
        >>> est.circuits, est.jobs, est.total_shots
        (160, 5, 160000)
    """
    batches = tuple((int(n), int(length)) for n, length in batches)
    for index, (size, length) in enumerate(batches):
        if size < 1 or length < 1:
            raise ValueError(f"estimate_cost: expected batch {index} of >= 1 sentences of length >= 1, got {(size, length)}")
    active = None if active_rows is None else tuple(tuple(int(a) for a in rows) for rows in active_rows)
    if active is not None and (training or len(active) != len(batches) or any(
            len(rows) != length or not all(0 < a <= size for a in rows) for rows, (size, length) in zip(active, batches))):
        raise ValueError(f"estimate_cost: expected active_rows of inference, 1..N_b rows at each of the L_b steps of "
                         f"batches {batches}, got {active} (training: {training})")
    for name, value, minimum in (
        ("num_references", load.num_references, 1), ("shots", shots, 1), ("num_layers", load.num_layers, 1),
        ("num_gates", load.num_gates, 1), ("circuits_per_value", load.circuits_per_value, 0),
        ("backward_circuits_per_value", load.backward_circuits_per_value, 0),
        ("shift_parameters", load.shift_parameters, 0), ("circuits_per_call", load.circuits_per_call, 0),
        ("epochs", epochs, 1),
        ("parallel_batches", jobs.parallel_batches, 1), ("calibration_circuits", calibration.circuits, 0),
        ("calibration_shots", calibration.shots, 0),
    ):
        check_int("estimate_cost", name, value, minimum)
    overhead = timing.job_overhead_seconds
    if not (math.isfinite(overhead) and overhead >= 0):
        raise ValueError(f"estimate_cost: expected job_overhead_seconds >= 0, got {overhead!r}")
    if jobs.max_circuits_per_job is not None:
        check_int("estimate_cost", "max_circuits_per_job", jobs.max_circuits_per_job, 1)
    device = timing.device
    on_qpu = device is not None if timing.on_qpu is None else timing.on_qpu
    t_circ = t_cal = None
    if device is not None and timing.isa_circuit is not None:
        t_circ = circuit_duration(timing.isa_circuit, device.target)
    if device is not None and calibration.circuit is not None:
        t_cal = circuit_duration(calibration.circuit, device.target)
    return CostEstimate(
        backend=timing.backend, device=None if device is None else str(device.name), shots=shots, training=training,
        num_layers=load.num_layers, num_gates=load.num_gates, num_references=load.num_references,
        shift_parameters=load.shift_parameters if training else 0, epochs=epochs, batches=batches,
        circuit_seconds=t_circ, rep_delay_seconds=rep_delay(device) if device is not None else DEFAULT_REP_DELAY_S,
        job_overhead_seconds=overhead, on_qpu=on_qpu, max_circuits_per_job=jobs.max_circuits_per_job,
        parallel_batches=jobs.parallel_batches, circuits_per_value=load.circuits_per_value,
        backward_circuits_per_value=load.backward_circuits_per_value, circuits_per_call=load.circuits_per_call,
        mitigation=calibration.method,
        calibration_circuits=calibration.circuits, calibration_shots=calibration.shots,
        calibration_circuit_seconds=t_cal, target_error=target_error, variance_factor=calibration.variance_factor,
        active_rows=active,
    )


def check_budget(estimate: CostEstimate, max_qpu_seconds: float | None) -> None:
    """Refuse a run whose estimated QPU time exceeds ``max_qpu_seconds`` (``None``: no budget).

    Raises:
        QKLSTMError: over budget, or a budget was set but QPU time cannot be estimated.
    """
    if max_qpu_seconds is None:
        return
    if not (isinstance(max_qpu_seconds, (int, float)) and math.isfinite(max_qpu_seconds) and max_qpu_seconds >= 0):
        raise ValueError(f"check_budget: expected max_qpu_seconds >= 0, got {max_qpu_seconds!r}")
    if estimate.qpu_seconds is None:
        raise QKLSTMError(
            f"check_budget: cannot check max_qpu_seconds={max_qpu_seconds:g} on {estimate.backend}: its target has "
            "no gate durations"
        )
    if estimate.qpu_seconds > max_qpu_seconds:
        raise QKLSTMError(
            f"check_budget: the run needs ≈ {estimate.qpu_seconds:,.1f} QPU seconds on {estimate.backend} "
            f"({estimate.jobs:,} jobs, {estimate.circuits:,} circuits × {estimate.shots:,} shots), over "
            f"max_qpu_seconds={max_qpu_seconds:g}; use fewer shots, sentences or a smaller batch"
        )
    logger.info("budget: ≈ %.1f of %g QPU seconds", estimate.qpu_seconds, max_qpu_seconds)


def active_rows(lengths: Sequence[int], batch_size: int) -> list[tuple[int, ...]]:
    """Per consecutive batch of ``batch_size`` sequences of ``lengths``, the rows still running at each step:
    ``a_t = #{i : l_i > t}`` for ``t < L_b`` (what a kernel that skips padded rows sends)."""
    if batch_size < 1:
        raise ValueError(f"active_rows: expected batch_size >= 1, got {batch_size}")
    out = []
    for i in range(0, len(lengths), batch_size):
        batch = lengths[i : i + batch_size]
        out.append(tuple(sum(1 for n in batch if n > t) for t in range(max(batch))))
    return out


def batch_shapes(lengths: Sequence[int], batch_size: int) -> list[tuple[int, int]]:
    """``(N_b, L_b)`` of consecutive batches of sentences with ``lengths`` (unshuffled order)."""
    if batch_size < 1:
        raise ValueError(f"batch_shapes: expected batch_size >= 1, got {batch_size}")
    return [
        (len(lengths[i : i + batch_size]), max(lengths[i : i + batch_size]))
        for i in range(0, len(lengths), batch_size)
    ]


class DryRunSampler(BaseSamplerV2):
    """A ``BaseSamplerV2`` that runs nothing: it records each call and returns all-zero outcomes.

    Use it to count what a model would submit (``calls``: one ``(bindings per PUB, …)`` tuple
    per ``run``) on circuits of any size; every outcome is ``0…0`` with one shot per binding.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[int, ...]] = []

    @property
    def bindings(self) -> int:
        """Bindings (circuits) over all calls."""
        return sum(sum(call) for call in self.calls)

    def run(self, pubs, *, shots: int | None = None) -> PrimitiveJob:
        coerced = [SamplerPub.coerce(pub, shots) for pub in pubs]
        self.calls.append(tuple(int(pub.parameter_values.size) for pub in coerced))
        return submitted_job(self._results, coerced)

    @staticmethod
    def _results(pubs: list[SamplerPub]) -> PrimitiveResult:
        results = []
        for pub in pubs:
            shape = pub.parameter_values.shape
            data = {
                creg.name: BitArray(np.zeros((*shape, 1, max(1, (creg.size + 7) // 8)), dtype=np.uint8), creg.size)
                for creg in pub.circuit.cregs
            }
            results.append(SamplerPubResult(DataBin(shape=shape, **data), metadata={"shots": 1}))
        return PrimitiveResult(results, metadata={"dry_run": True})


def sampler_kernels(model: torch.nn.Module) -> list[QuantumKernel]:
    """The kernels of ``model`` whose fidelity runs circuits on a device (``[]`` on the exact executor)."""
    return [m for m in model.modules() if isinstance(m, QuantumKernel) and m.fidelity.circuits()]


def isa_circuit(model: torch.nn.Module) -> Any:
    """The circuit the first device kernel of ``model`` submits (``None`` when none runs circuits)."""
    kernels = sampler_kernels(model)
    return kernels[0].fidelity.circuits()[0] if kernels else None


def kernel_load(model: torch.nn.Module, *, training: bool) -> KernelLoad:
    """The :class:`KernelLoad` of the built ``model``: its QK-LSTM cells (``K``, ``R``) and their kernel
    fidelity's cost per value, with the reference side differentiated when training and any of its tensors
    requires gradients (learned references, a trainable bandwidth, the map's trainable layers).

    Raises:
        ValueError: ``model`` has no QK-LSTM cell.
    """
    cells = [m for m in model.modules() if isinstance(m, QKLSTMCell)]
    if not cells:
        raise ValueError(f"estimate: expected a model with QK-LSTM cells, got {type(model).__name__}")
    cell = cells[0]
    reference_side = [cell.references, *cell.kernel.feature_map.parameters()]
    differentiate_y = training and any(t.requires_grad for t in reference_side)
    return KernelLoad.of(cell.kernel.fidelity.cost(differentiate_y=differentiate_y),
                         num_references=cell.num_references, num_layers=len(cells))


def estimate_model_cost(
    model: torch.nn.Module, batches: Iterable[tuple[int, int]], resolved, *, training: bool, epochs: int = 1,
    job_overhead_seconds: float | None = None, shots: int | None = None, target_error: float | None = None,
    jobs: JobLimits = JobLimits(), calibration: CalibrationCost = CalibrationCost(),
    active_rows: Iterable[Sequence[int]] | None = None,
) -> CostEstimate:
    """:func:`estimate_cost` of running the built ``model`` (on ``resolved``'s pass manager) over ``batches``
    (``active_rows``: padded steps not sent).

    The load comes from the model itself (:func:`kernel_load`), the ISA circuit from its first device
    kernel. ``shots`` overrides ``resolved.shots``.
    """
    timing = DeviceTiming(
        device=resolved.device, isa_circuit=isa_circuit(model), backend=resolved.name,
        on_qpu=resolved.kind in ("fake", "ibm"),
        job_overhead_seconds=DEFAULT_JOB_OVERHEAD_S if job_overhead_seconds is None else job_overhead_seconds,
    )
    return estimate_cost(
        batches, kernel_load(model, training=training), shots=shots or resolved.shots or 1, training=training,
        epochs=epochs, timing=timing, jobs=jobs, calibration=calibration, target_error=target_error,
        active_rows=active_rows,
    )
