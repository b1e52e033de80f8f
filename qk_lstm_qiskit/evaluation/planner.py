"""The shot planner: which kernel estimator and how many shots keep a checkpoint's metric, at what QPU cost.

Any task: the planner runs a task's :class:`~qk_lstm_qiskit.evaluation.work.BackendWork` (tagging,
classification, forecasting) and scores it with the work's headline metric (``work.metric``). No circuit runs
and no QPU time is spent. For each estimator × shot count the model runs the work ``repeats`` times with its
kernels replaced by the estimator's *exact shot-noise* fidelity (counts drawn from the exact outcome
distributions: :class:`~qk_lstm_qiskit.kernels.shot_noise.ComputeUncomputeShots`,
:class:`~qk_lstm_qiskit.kernels.tomography.TomographyFidelity`,
:class:`~qk_lstm_qiskit.kernels.shadows.ShadowFidelity`; the measured-state estimators also with the
device's reported readout errors, corrected as on the device). The loss against the exact model sits next to
the QPU cost on the device (:func:`~qk_lstm_qiskit.hardware.step_cost.step_cost`: one job per time step holding
a row per active example, the estimator's circuits per row, the ISA circuits' durations, a readout calibration
for the measured-state estimators), and ``target_loss`` picks the cheapest entry whose mean loss meets it.

The loss (:func:`metric_loss`): for a metric where higher is better (accuracy) the points lost,
``exact − value`` (a fraction: 0.01 = 1 point); for an error (test RMSE) its relative increase,
``(value − exact) / exact`` (0.2 = 20 % worse).

Shot counts mean: shots per circuit (compute–uncompute), per setting (tomography, 3 settings), and for
shadows the per-input shots of compute–uncompute at that count, ``G·R·S``, spent as ``G·R·S/8``
random settings of 8 shots.
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..hardware.cost import DEFAULT_JOB_OVERHEAD_S, DryRunSampler
from ..hardware.timing import circuit_duration, rep_delay
from ..hardware.readout import DEFAULT_CALIBRATION_SHOTS, calibration_circuits, calibration_counts, measured_qubits
from ..hardware.readout import reported_assignment_matrices
from ..hardware.step_cost import StepCost, step_cost
from ..kernels.measured import SamplerMeasurements
from ..kernels.sampler import SamplerFidelity
from ..kernels.shadows import ShadowFidelity
from ..kernels.shot_noise import ComputeUncomputeShots
from ..kernels.tomography import TomographyFidelity
from ..nn.cell import QKLSTMCell
from ..validation import check_choice, check_int
from .work import BackendWork

__all__ = ["ESTIMATORS", "PlanEntry", "ShotPlan", "metric_loss", "plan_checkpoint", "plan_estimators",
           "SHADOW_SHOTS_PER_SETTING"]

logger = logging.getLogger(__name__)

ESTIMATORS = ("compute-uncompute", "tomography", "shadows")  #: the kernel estimators the planner compares
SHADOW_SHOTS_PER_SETTING = 8  #: shots per random Pauli setting of the shadows estimator


def metric_loss(value: float, exact: float, higher_is_better: bool) -> float:
    """The loss of ``value`` against the exact model's ``exact``: ``exact − value`` for a metric where higher is
    better (accuracy, a fraction), else the relative increase ``(value − exact) / exact`` (an error such as RMSE).

    >>> round(metric_loss(0.9, 0.95, True), 6), round(metric_loss(1.2, 1.0, False), 6)
    (0.05, 0.2)
    """
    return exact - value if higher_is_better else (value - exact) / exact


def _check_target_loss(target_loss: float | None, metric_name: str, higher_is_better: bool) -> None:
    """One line for a target loss out of range: ``[0, 1)`` for an accuracy, ``>= 0`` for a relative error increase."""
    if target_loss is None:
        return
    if higher_is_better and not 0 <= target_loss < 1:
        raise ValueError(f"plan: expected a target loss in [0, 1) for {metric_name} (a fraction: 0.01 = 1 point), "
                         f"got {target_loss!r}")
    if not higher_is_better and not 0 <= target_loss < float("inf"):
        raise ValueError(f"plan: expected a target loss >= 0 for {metric_name} (a relative increase: 0.2 = 20 %), "
                         f"got {target_loss!r}")


@dataclass(frozen=True)
class PlanEntry:
    """One estimator at one shot count: the metric's values over the repeats, their mean loss, the cost on the device."""

    estimator: str
    shots: int
    values: tuple[float, ...]
    loss: float
    cost: StepCost

    @property
    def value(self) -> float:
        """The metric's mean over the repeats."""
        return statistics.fmean(self.values)

    @property
    def spread(self) -> float:
        """Standard deviation of the metric over the repeats (0 for one repeat)."""
        return statistics.stdev(self.values) if len(self.values) > 1 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"estimator": self.estimator, "shots": self.shots, "values": list(self.values), "value": self.value,
                "spread": self.spread, "loss": self.loss, "cost": self.cost.to_dict()}


@dataclass(frozen=True)
class ShotPlan:
    """Every :class:`PlanEntry`, the exact model's metric, and the cheapest entry within ``target_loss`` (``choice``).

    ``metric`` names the task's headline metric (``"accuracy"``, ``"test RMSE"``, ``"relative test RMSE"``);
    losses are :func:`metric_loss` (accuracy points as a fraction, or an error's relative increase).
    """

    backend: str
    metric: str
    higher_is_better: bool
    exact: float
    entries: tuple[PlanEntry, ...]
    target_loss: float | None = None
    choice: PlanEntry | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "metric": self.metric, "higher_is_better": self.higher_is_better,
                "loss": "exact - value" if self.higher_is_better else "(value - exact) / exact",
                "exact": self.exact, "target_loss": self.target_loss, "entries": [e.to_dict() for e in self.entries],
                "choice": None if self.choice is None else self.choice.to_dict()}

    def summary(self) -> str:
        """The entries by QPU seconds: circuits, jobs, QPU s, the metric (± spread over repeats) and the loss
        (accuracy points, or % increase of an error), and the choice."""
        fmt, unit = (".4f", "pt") if self.higher_is_better else (".4g", "%")
        width = max(10, len(self.metric) + 2)
        lines = [f"shot plan on {self.backend} (exact shot noise, nothing submitted); exact {self.metric} "
                 f"{self.exact:{fmt}}",
                 f"  {'estimator':<19}{'shots':>6}{'circuits':>12}{'jobs':>6}{'QPU s':>10}{self.metric:>{width}}"
                 f"{'± spread':>10}{f'loss ({unit})':>10}"]
        for e in sorted(self.entries, key=lambda e: e.cost.qpu_seconds):
            mark = "  <- choice" if e is self.choice else ""
            lines.append(f"  {e.estimator:<19}{e.shots:>6}{e.cost.circuits:>12,}{e.cost.jobs:>6}"
                         f"{e.cost.qpu_seconds:>10,.1f}{e.value:>{width}{fmt}}{e.spread:>10{fmt}}"
                         f"{100 * e.loss:>10.2f}{mark}")
        if self.target_loss is not None:
            target = (f"{self.metric} loss <= {100 * self.target_loss:g} point(s)" if self.higher_is_better
                      else f"{self.metric} increase <= {100 * self.target_loss:g} %")
            lines.append(f"  target: {target}: " + (
                f"{self.choice.estimator} at {self.choice.shots} shots, ≈ {self.choice.cost.qpu_seconds:,.1f} QPU s"
                if self.choice is not None else "no entry meets it (more shots, or another estimator)"))
        return "\n".join(lines)


def _cells(model) -> list[QKLSTMCell]:
    cells = [m for m in model.modules() if isinstance(m, QKLSTMCell)]
    if not cells:
        raise ValueError("plan_estimators: expected a model with QK-LSTM cells, got none")
    return cells


def _simulated(estimator: str, cell: QKLSTMCell, shots: int, seed: int, assignment: np.ndarray | None):
    fm = cell.kernel.feature_map
    if estimator == "compute-uncompute":
        return ComputeUncomputeShots(fm, shots=shots, seed=seed)
    if estimator == "tomography":
        return TomographyFidelity(fm, shots=shots, seed=seed, assignment=assignment)
    references = cell.references.numel() // cell.num_qubits
    return ShadowFidelity(fm, shots=SHADOW_SHOTS_PER_SETTING, settings=max(1, references * shots // SHADOW_SHOTS_PER_SETTING),
                          seed=seed, assignment=assignment)


def _design(estimator: str, cell: QKLSTMCell, shots: int, pass_manager) -> tuple[int, int, Any]:
    """``(circuits per input row, shots per circuit, ISA circuit)`` of ``estimator`` for ``cell``."""
    fm = cell.kernel.feature_map
    references = cell.references.numel() // cell.num_qubits
    if estimator == "compute-uncompute":
        return references, shots, SamplerFidelity(fm, DryRunSampler(), pass_manager=pass_manager).circuit
    measured = ShadowFidelity(fm, shots=1, settings=1).estimator
    circuit = SamplerMeasurements(measured.circuit, measured.parameters, DryRunSampler(), pass_manager=pass_manager).circuit
    if estimator == "tomography":
        return 3, shots, circuit
    return max(1, references * shots // SHADOW_SHOTS_PER_SETTING), SHADOW_SHOTS_PER_SETTING, circuit


def plan_estimators(model, work: BackendWork, *, device, pass_manager, backend: str,
                    estimators: Sequence[str] = ESTIMATORS, shot_counts: Sequence[int] = (64, 128, 256, 512, 1024),
                    repeats: int = 3, target_loss: float | None = None, seed: int = 0, readout_noise: bool = True,
                    job_overhead_seconds: float = DEFAULT_JOB_OVERHEAD_S,
                    calibration_shots: int = DEFAULT_CALIBRATION_SHOTS) -> ShotPlan:
    """The :class:`ShotPlan` of ``model`` on a task's ``work`` on ``device``.

    The exact value is ``work.metric(work.run(model, work.batches))`` with the model's own (exact) kernels; repeat
    ``r`` of an estimator at a shot count swaps layer ``i``'s fidelity for the estimator's simulated one seeded
    ``seed + 1000·r + i``. Costs: :func:`~qk_lstm_qiskit.hardware.step_cost.step_cost` over ``work.lengths``,
    ``work.batch_size`` examples a batch.

    Args:
        model: a QK-LSTM model of the work's task (its cells' fidelities are swapped during the plan and restored).
        work: the task's examples, runner and headline metric
            (:class:`~qk_lstm_qiskit.evaluation.work.BackendWork`).
        device, pass_manager, backend: the device whose ISA circuits, durations and readout errors count.
        estimators, shot_counts, repeats: the grid; ``target_loss``: the mean loss to meet (:func:`metric_loss`:
            accuracy points as a fraction in ``[0, 1)``, or an error's relative increase ``>= 0``).
        readout_noise: simulate the measured-state estimators with the device's reported readout errors
            (and their correction); compute–uncompute always with shot noise alone.
        job_overhead_seconds, calibration_shots: as the cost estimate.

    Raises:
        ValueError: an unknown estimator, no shot count, a target loss out of range, a non-QK-LSTM model,
            tomography on an entangling map.
    """
    for name in estimators:
        check_choice("plan_estimators", "estimator", name, ESTIMATORS)
    check_int("plan_estimators", "repeats", repeats, 1)
    if not shot_counts:
        raise ValueError("plan_estimators: expected at least one shot count, got none")
    _check_target_loss(target_loss, work.metric_name, work.higher_is_better)
    cells = _cells(model)
    originals = [cell.kernel.fidelity for cell in cells]
    exact = work.metric(work.run(model, work.batches))
    t_rep = rep_delay(device)
    entries = []
    try:
        for estimator in estimators:
            cell = cells[0]
            isa = _design(estimator, cell, 1, pass_manager)[2]
            qubits = tuple(measured_qubits(isa)[c] for c in sorted(measured_qubits(isa)))
            assignment = reported_assignment_matrices(device, qubits) if readout_noise and estimator != "compute-uncompute" else None
            calibration = (0, 0, 0.0)
            if estimator != "compute-uncompute":
                count, per_circuit = calibration_counts(len(qubits), calibration_shots)
                calibration = (count, per_circuit,
                               circuit_duration(calibration_circuits(qubits, device.num_qubits)[-1], device.target) or 0.0)
            t_circ = circuit_duration(isa, device.target)
            for shots in shot_counts:
                per_input, per_circuit, _ = _design(estimator, cell, shots, pass_manager)
                cost = step_cost(work.lengths, circuits_per_input=per_input, shots=per_circuit,
                                 circuit_seconds=t_circ or 0.0, rep_delay_seconds=t_rep,
                                 job_overhead_seconds=job_overhead_seconds, layers=len(cells),
                                 batch_size=work.batch_size, calibration_circuits=calibration[0],
                                 calibration_shots=calibration[1], calibration_circuit_seconds=calibration[2])
                values = []
                for r in range(repeats):
                    for i, c in enumerate(cells):
                        c.kernel.fidelity = _simulated(estimator, c, shots, seed + 1000 * r + i, assignment)
                    values.append(work.metric(work.run(model, work.batches)))
                loss = metric_loss(statistics.fmean(values), exact, work.higher_is_better)
                entries.append(PlanEntry(estimator, shots, tuple(values), loss, cost))
                logger.info("plan: %s at %d shots: %s %.4g (exact %.4g), %.1f QPU s", estimator, shots,
                            work.metric_name, entries[-1].value, exact, cost.qpu_seconds)
    finally:
        for c, fidelity in zip(cells, originals):
            c.kernel.fidelity = fidelity
    choice = None
    if target_loss is not None:
        meeting = [e for e in entries if e.loss <= target_loss]
        choice = min(meeting, key=lambda e: e.cost.qpu_seconds, default=None)
    return ShotPlan(backend, work.metric_name, work.higher_is_better, exact, tuple(entries), target_loss, choice)


def plan_checkpoint(checkpoint, backend: str = "fake:torino", *, work: BackendWork | None = None, load=None,
                    data: str | None = None, max_sentences: int | None = None, batch_size: int | None = None,
                    estimators: Sequence[str] = ESTIMATORS, shot_counts: Sequence[int] = (64, 128, 256, 512, 1024),
                    repeats: int = 3, target_loss: float | None = None, seed: int = 0, optimization_level: int = 2,
                    job_overhead_seconds: float | None = None) -> ShotPlan:
    """:func:`plan_estimators` for a checkpoint's model on a device ``backend``.

    Any task: pass its ``(work, load)`` (``Task.backend_work``; ``load()`` → the exact model), as
    ``qk-lstm estimate --target-loss`` does. Without them, a tagger's: ``data`` (default its validation split),
    its first ``max_sentences``, ``batch_size`` sentences a batch (default all in one batch: one job per time step).

    Raises:
        ValueError: a backend without a device (``exact``, ``aer``), a non-QK-LSTM checkpoint, bad grid values,
            ``work`` without ``load`` (or the reverse), ``data``/``max_sentences``/``batch_size`` with ``work``.
    """
    from dataclasses import replace

    from ..hardware.backends import resolve_backend
    from .backend import tagging_backend_work
    from .options import EvaluationRequest

    if (work is None) != (load is None):
        raise ValueError("plan: expected both work and load (a task's backend_work) or neither, got one")
    if work is not None and (data, max_sentences, batch_size) != (None, None, None):
        raise ValueError("plan: expected no data/max_sentences/batch_size with work (it holds its examples), "
                         f"got {data!r}, {max_sentences!r}, {batch_size!r}")
    rb = resolve_backend(backend, shots=1, seed=seed, optimization_level=optimization_level)
    if rb.device is None:
        raise ValueError(f"plan: expected a device backend (aer-noisy:, fake:, ibm:) for its durations, got {rb.name!r}")
    if work is None:
        request = EvaluationRequest(backend=backend, data=data, max_items=max_sentences, batch_size=batch_size)
        work, load = tagging_backend_work(checkpoint, request)
        if batch_size is None and work.batch_size < work.population:
            work, load = tagging_backend_work(checkpoint, replace(request, batch_size=work.population))
    _check_target_loss(target_loss, work.metric_name, work.higher_is_better)
    return plan_estimators(
        load(), work, device=rb.device, pass_manager=rb.pass_manager, backend=rb.name, estimators=estimators,
        shot_counts=shot_counts, repeats=repeats, target_loss=target_loss, seed=seed,
        job_overhead_seconds=DEFAULT_JOB_OVERHEAD_S if job_overhead_seconds is None else job_overhead_seconds)
