"""Option groups of an evaluation on a backend: small frozen dataclasses instead of two dozen keywords.

:func:`~qk_lstm_qiskit.evaluation.backend.evaluate_checkpoint` and
:func:`~qk_lstm_qiskit.evaluation.backend.estimate_checkpoint` take

* :class:`Sampling`: shots per circuit (or the kernel standard error to reach), seed, transpilation;
* :class:`Mitigation`: readout mitigation and its calibration, the depolarising correction;
* :class:`JobPolicy`: retries, time-outs, job splitting, batches in flight;
* :class:`RuntimeOptions`: what IBM Runtime applies (execution mode, dynamical decoupling, twirling);
* :class:`Budget`: dry run, QPU-second limit and the estimate's per-job overhead;

and :class:`EvaluationRequest` gathers them with the data and output folder for a task's
:meth:`~qk_lstm_qiskit.tasks.Task.evaluate_checkpoint` (``qk-lstm evaluate``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, cast

from ..hardware.backends import DEFAULT_SHOTS

__all__ = ["Budget", "EvaluationRequest", "JobPolicy", "Mitigation", "RuntimeOptions", "Sampling"]


@dataclass(frozen=True)
class Sampling:
    """Shots per circuit on a sampler backend.

    Attributes:
        shots: per circuit (default 4096).
        seed: simulator and transpiler seed (default 0).
        optimization_level: preset pass-manager level 0–3 (default 2).
        target_error: kernel standard error to reach; overrides ``shots`` with ``⌈γ/(4E²)⌉``
            (``γ``: the estimator's variance factor, see :class:`Mitigation`).
        fidelity: the registered fidelity (:func:`~qk_lstm_qiskit.kernels.fidelity.register_fidelity`) the
            kernels run on the backend's sampler, built as ``make_fidelity(fidelity, feature_map, sampler=…,
            pass_manager=…)``; ``None`` (default): compute-uncompute.
    """

    shots: int = DEFAULT_SHOTS
    seed: int | None = 0
    optimization_level: int = 2
    target_error: float | None = None
    fidelity: str | None = None


@dataclass(frozen=True)
class Mitigation:
    """Readout mitigation (:mod:`qk_lstm_qiskit.hardware.mitigation`) and the global-depolarising correction
    (:class:`~qk_lstm_qiskit.kernels.depolarizing.DepolarizingCorrectedFidelity`); they compose: the corrected
    fidelity runs on the readout-mitigated sampler.

    Attributes:
        method: ``"none"`` (default), ``"m3"`` or ``"marginal"`` (product kernels only):
            readout calibration of the measured physical qubits first, then corrected kernels.
        calibration_shots: preparations of each state per qubit (default 10,000).
        calibration_dir: where calibrations are cached (default: the output folder); a calibration
            of the same backend and qubits from today (any day, when resuming) is reused.
        depolarizing: ``"none"`` (default), ``"single"`` or ``"average"``: each job also runs ``echoes`` echo
            circuits ``U†(x)U(x)`` (ideal kernel 1) and its kernels are corrected for the depolarising rate
            they show, ``k̂ = (k̃ − λ̂/2ⁿ)/(1 − λ̂)`` (compute–uncompute fidelities only).
        echoes: echo circuits per job (default 1 for ``"single"``, which takes exactly 1; 4 for ``"average"``).
    """

    method: str = "none"
    calibration_shots: int | None = None
    calibration_dir: str | Path | None = None
    depolarizing: str = "none"
    echoes: int | None = None


@dataclass(frozen=True)
class JobPolicy:
    """How jobs are submitted and waited for (:class:`~qk_lstm_qiskit.hardware.journal.JournaledSampler`).

    Attributes:
        max_retries: resubmissions of a failed job (default 2).
        backoff_seconds: wait before a resubmission (default 30 s).
        timeout_seconds: wait for a job before retrying it (default: no limit).
        max_circuits_per_job: split larger jobs (default: the device's ``max_circuits``).
        parallel_batches: batches in flight at once (default 1; use ``RuntimeOptions(mode="batch")``
            on IBM devices so their jobs share a Runtime batch).
    """

    max_retries: int = 2
    backoff_seconds: float = 30.0
    timeout_seconds: float | None = None
    max_circuits_per_job: int | None = None
    parallel_batches: int = 1


@dataclass(frozen=True)
class RuntimeOptions:
    """Options of :func:`~qk_lstm_qiskit.hardware.backends.resolve_backend` beyond shots and seed.

    Attributes:
        mode: Runtime execution mode, ``"job"`` (default), ``"batch"`` or ``"session"``.
        dynamical_decoupling: ``None`` (off) or a sequence (``XX``, ``XpXm``, ``XY4``).
        twirl_gates, twirl_measure: Pauli twirling of 2-qubit gates / measurements.
        max_execution_time: QPU seconds after which a job is cancelled.
        initial_layout: physical qubits for the circuit's qubits (default: the transpiler's choice).
    """

    mode: str = "job"
    dynamical_decoupling: str | None = None
    twirl_gates: bool = False
    twirl_measure: bool = False
    max_execution_time: int | None = None
    initial_layout: tuple[int, ...] | None = None

    def backend_options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`~qk_lstm_qiskit.hardware.backends.resolve_backend`."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Budget:
    """What an evaluation may spend.

    Attributes:
        dry_run: estimate only; nothing is submitted or written.
        max_qpu_seconds: evaluate the whole set if its estimate fits, else the largest seeded random sample
            of examples that fits (its metric with a 95 % interval); refuse a run where not even one example
            fits (default no limit).
        job_overhead_seconds: ``t_job`` of the estimate (default 3 s).
        sample_seed: when the whole evaluation set does not fit ``max_qpu_seconds``, the seed of the random
            sample of examples sized to it (default 0).
    """

    dry_run: bool = False
    max_qpu_seconds: float | None = None
    job_overhead_seconds: float | None = None
    sample_seed: int = 0


@dataclass(frozen=True)
class EvaluationRequest:
    """Everything ``qk-lstm evaluate`` asks of a checkpoint's task.

    Attributes:
        backend: ``exact`` or a sampler backend name (``aer``, ``aer-noisy:<fake>``, ``fake:<fake>``, ``ibm:<device>``).
        data: what to evaluate on (the task's meaning; default: the checkpoint's own held-out data).
        out_dir: the output folder (default: ``<checkpoint folder>/eval-<backend>``).
        batch_size: examples per batch, i.e. per job on a device.
        max_items: evaluate only the first examples of ``data``.
        resume: fetch the jobs recorded in ``out_dir`` by id instead of resubmitting.
        progress: show a progress bar.
        labels: how errors name an option (``{"sampling.shots": "--shots"}``; default its dotted name).
    """

    backend: str = "exact"
    data: str | None = None
    out_dir: Path | None = None
    batch_size: int | None = None
    max_items: int | None = None
    sampling: Sampling = field(default_factory=Sampling)
    mitigation: Mitigation = field(default_factory=Mitigation)
    jobs: JobPolicy = field(default_factory=JobPolicy)
    runtime: RuntimeOptions = field(default_factory=RuntimeOptions)
    budget: Budget = field(default_factory=Budget)
    resume: bool = False
    progress: bool = False
    labels: Mapping[str, str] = field(default_factory=dict, compare=False)

    def label(self, name: str) -> str:
        """How errors name the option ``name`` (dotted, as :meth:`changed` names it)."""
        return self.labels.get(name, name)

    def changed(self) -> dict[str, Any]:
        """``{dotted name: value}`` of every option that differs from its default (``"sampling.shots"``, ``"data"``)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name == "labels":
                continue
            value = getattr(self, f.name)
            if dataclasses.is_dataclass(value):
                default = cast(Any, type(value))()
                out.update({f"{f.name}.{g.name}": getattr(value, g.name) for g in dataclasses.fields(value)
                            if getattr(value, g.name) != getattr(default, g.name)})
            elif value != f.default:
                out[f.name] = value
        return out
