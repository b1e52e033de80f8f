"""The shot planner: which kernel estimator and how many shots keep a checkpoint's accuracy, at what QPU cost.

No circuit runs and no QPU time is spent. For each estimator × shot count the model tags the data
``repeats`` times with its kernels replaced by the estimator's *exact shot-noise* fidelity (counts drawn
from the exact outcome distributions: :class:`~qk_lstm_qiskit.kernels.shot_noise.ComputeUncomputeShots`,
:class:`~qk_lstm_qiskit.kernels.tomography.TomographyFidelity`,
:class:`~qk_lstm_qiskit.kernels.shadows.ShadowFidelity`; the measured-state estimators also with the
device's reported readout errors, corrected as on the device). The accuracy loss against the exact
model (mean and spread over the repeats) sits next to the QPU cost on the device
(:func:`~qk_lstm_qiskit.hardware.step_cost.step_cost`: one job per time step holding a row per
active sentence, the estimator's circuits per row, the ISA circuits' durations, a readout calibration
for the measured-state estimators), and ``target_loss`` picks the cheapest entry whose mean loss meets it.

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
from .loop import tag_batches

__all__ = ["ESTIMATORS", "PlanEntry", "ShotPlan", "plan_checkpoint", "plan_estimators", "SHADOW_SHOTS_PER_SETTING"]

logger = logging.getLogger(__name__)

ESTIMATORS = ("compute-uncompute", "tomography", "shadows")  #: the kernel estimators the planner compares
SHADOW_SHOTS_PER_SETTING = 8  #: shots per random Pauli setting of the shadows estimator


@dataclass(frozen=True)
class PlanEntry:
    """One estimator at one shot count: accuracies of the repeats and the cost on the device."""

    estimator: str
    shots: int
    accuracies: tuple[float, ...]
    cost: StepCost

    @property
    def accuracy(self) -> float:
        return statistics.fmean(self.accuracies)

    @property
    def spread(self) -> float:
        """Standard deviation of the accuracy over the repeats (0 for one repeat)."""
        return statistics.stdev(self.accuracies) if len(self.accuracies) > 1 else 0.0

    def to_dict(self, exact_accuracy: float) -> dict[str, Any]:
        return {"estimator": self.estimator, "shots": self.shots, "accuracies": list(self.accuracies),
                "accuracy": self.accuracy, "spread": self.spread, "accuracy_loss": exact_accuracy - self.accuracy,
                "cost": self.cost.to_dict()}


@dataclass(frozen=True)
class ShotPlan:
    """Every :class:`PlanEntry`, the exact accuracy, and the cheapest entry within ``target_loss`` (``choice``)."""

    backend: str
    exact_accuracy: float
    entries: tuple[PlanEntry, ...]
    target_loss: float | None = None
    choice: PlanEntry | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "exact_accuracy": self.exact_accuracy, "target_accuracy_loss": self.target_loss,
                "entries": [e.to_dict(self.exact_accuracy) for e in self.entries],
                "choice": None if self.choice is None else self.choice.to_dict(self.exact_accuracy)}

    def summary(self) -> str:
        lines = [f"shot plan on {self.backend} (exact shot noise, nothing submitted); exact accuracy "
                 f"{self.exact_accuracy:.4f}",
                 f"  {'estimator':<19}{'shots':>6}{'circuits':>10}{'jobs':>6}{'QPU s':>10}{'accuracy':>10}"
                 f"{'± spread':>10}{'loss (pt)':>10}"]
        for e in sorted(self.entries, key=lambda e: e.cost.qpu_seconds):
            mark = "  <- choice" if e is self.choice else ""
            lines.append(f"  {e.estimator:<19}{e.shots:>6}{e.cost.circuits:>10,}{e.cost.jobs:>6}"
                         f"{e.cost.qpu_seconds:>10,.1f}{e.accuracy:>10.4f}{e.spread:>10.4f}"
                         f"{100 * (self.exact_accuracy - e.accuracy):>10.2f}{mark}")
        if self.target_loss is not None:
            lines.append(f"  target: accuracy loss <= {100 * self.target_loss:g} point(s): " + (
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


def plan_estimators(model, batches: Sequence, lengths: Sequence[int], *, device, pass_manager, backend: str,
                    estimators: Sequence[str] = ESTIMATORS, shot_counts: Sequence[int] = (64, 128, 256, 512, 1024),
                    repeats: int = 3, target_loss: float | None = None, seed: int = 0, readout_noise: bool = True,
                    job_overhead_seconds: float = DEFAULT_JOB_OVERHEAD_S, batch_size: int | None = None,
                    calibration_shots: int = DEFAULT_CALIBRATION_SHOTS) -> ShotPlan:
    """The :class:`ShotPlan` of a tagger ``model`` over ``batches`` (sentences of ``lengths``) on ``device``.

    Args:
        model: a QK-LSTM tagger (its cells' fidelities are swapped during the plan and restored).
        batches: the data, batched (padding does not change the simulated accuracy: it is masked).
        lengths: sentence lengths for the cost (sentences sorted, ``batch_size`` per batch, default one batch).
        device, pass_manager, backend: the device whose ISA circuits, durations and readout errors count.
        estimators, shot_counts, repeats: the grid; ``target_loss``: accuracy loss (fraction) to meet.
        readout_noise: simulate the measured-state estimators with the device's reported readout errors
            (and their correction); compute–uncompute always with shot noise alone.
        job_overhead_seconds, calibration_shots: as the cost estimate.

    Raises:
        ValueError: an unknown estimator, no shot count, a non-QK-LSTM model, tomography on an entangling map.
    """
    for name in estimators:
        check_choice("plan_estimators", "estimator", name, ESTIMATORS)
    check_int("plan_estimators", "repeats", repeats, 1)
    if not shot_counts:
        raise ValueError("plan_estimators: expected at least one shot count, got none")
    cells = _cells(model)
    originals = [cell.kernel.fidelity for cell in cells]
    exact = tag_batches(model, batches).accuracy
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
                cost = step_cost(lengths, circuits_per_input=per_input, shots=per_circuit, circuit_seconds=t_circ or 0.0,
                                 rep_delay_seconds=t_rep, job_overhead_seconds=job_overhead_seconds, layers=len(cells),
                                 batch_size=batch_size, calibration_circuits=calibration[0],
                                 calibration_shots=calibration[1], calibration_circuit_seconds=calibration[2])
                accuracies = []
                for r in range(repeats):
                    for i, c in enumerate(cells):
                        c.kernel.fidelity = _simulated(estimator, c, shots, seed + 1000 * r + i, assignment)
                    accuracies.append(tag_batches(model, batches).accuracy)
                entries.append(PlanEntry(estimator, shots, tuple(accuracies), cost))
                logger.info("plan: %s at %d shots: accuracy %.4f (exact %.4f), %.1f QPU s", estimator, shots,
                            entries[-1].accuracy, exact, cost.qpu_seconds)
    finally:
        for c, fidelity in zip(cells, originals):
            c.kernel.fidelity = fidelity
    choice = None
    if target_loss is not None:
        meeting = [e for e in entries if exact - e.accuracy <= target_loss]
        choice = min(meeting, key=lambda e: e.cost.qpu_seconds, default=None)
    return ShotPlan(backend, exact, tuple(entries), target_loss, choice)


def plan_checkpoint(checkpoint, backend: str = "fake:torino", *, data: str | None = None,
                    max_sentences: int | None = None, estimators: Sequence[str] = ESTIMATORS,
                    shot_counts: Sequence[int] = (64, 128, 256, 512, 1024), repeats: int = 3,
                    target_loss: float | None = None, seed: int = 0, optimization_level: int = 2,
                    job_overhead_seconds: float | None = None, batch_size: int | None = None) -> ShotPlan:
    """:func:`plan_estimators` for a tagger checkpoint on ``data`` (default: its validation split) and a device backend.

    Raises:
        ValueError: a backend without a device (``exact``, ``aer``), a non-QK-LSTM checkpoint, bad grid values.
    """
    from ..checkpoint import load_tagger
    from ..data.tasks import evaluation_data
    from ..hardware.backends import resolve_backend
    from .loop import sorted_batches

    if target_loss is not None and not 0 <= target_loss < 1:
        raise ValueError(f"plan: expected a target accuracy loss in [0, 1) (a fraction: 0.01 = 1 point), got {target_loss!r}")
    rb = resolve_backend(backend, shots=1, seed=seed, optimization_level=optimization_level)
    if rb.device is None:
        raise ValueError(f"plan: expected a device backend (aer-noisy:, fake:, ibm:) for its durations, got {rb.name!r}")
    model, words, tags, config = load_tagger(checkpoint)
    if config.model.kind != "qk-lstm":
        raise ValueError(f"plan: expected a qk-lstm checkpoint, got model kind {config.model.kind!r}")
    eval_data = evaluation_data(data, config.data, words, tags, max_sentences=max_sentences)
    return plan_estimators(
        model, sorted_batches(eval_data, 32, words.pad_index or 0), eval_data.lengths, device=rb.device,
        pass_manager=rb.pass_manager, backend=rb.name, estimators=estimators, shot_counts=shot_counts,
        repeats=repeats, target_loss=target_loss, seed=seed, batch_size=batch_size,
        job_overhead_seconds=DEFAULT_JOB_OVERHEAD_S if job_overhead_seconds is None else job_overhead_seconds)
