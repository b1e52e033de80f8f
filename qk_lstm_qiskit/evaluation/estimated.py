"""Run any task's checkpoint on a backend with a chosen kernel estimator, inside a QPU budget.

The kernels of every QK-LSTM cell run through one estimator — ``compute-uncompute`` (the sampler
fidelity), ``tomography`` (product maps, 3 circuits per input) or ``shadows`` — behind an
:class:`~qk_lstm_qiskit.kernels.active_rows.ActiveRowsFidelity`, so padded time steps send nothing.
What runs and how it is scored is the task's :class:`~qk_lstm_qiskit.evaluation.work.BackendWork`
(``Task.backend_work``): batch ``i`` of the work is journal stream ``batch-i``, one job per time step
and layer. The measured-state estimators correct readout with a calibration of their measured qubits
(run first through the journaled sampler, or reused from ``calibration_dir`` if measured today).

The cost is :func:`~qk_lstm_qiskit.hardware.step_cost.step_cost` over the work's example lengths,
``work.batch_size`` at a time. With ``budget.max_qpu_seconds`` the run either fits every example or
evaluates the largest seeded random sample of examples whose estimate fits
(:func:`~qk_lstm_qiskit.evaluation.sampling.sample_for_budget`); the task's score then adds its
metric's 95 % interval and the exact model's value on every example.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Sequence

from ..hardware.backends import ResolvedBackend, resolve_backend
from ..hardware.cost import DEFAULT_JOB_OVERHEAD_S
from ..hardware.journal import JOURNAL_NAME
from ..hardware.readout import (
    DEFAULT_CALIBRATION_SHOTS, ReadoutCalibration, calibration_circuits, calibration_counts, find_calibration,
    measured_qubits, run_calibration,
)
from ..hardware.step_cost import StepCost, step_cost
from ..hardware.timing import circuit_duration, rep_delay
from ..kernels.active_rows import ActiveRowsFidelity
from ..kernels.fidelity import Fidelity
from ..kernels.measured import Readout
from ..kernels.sampler import SamplerFidelity
from ..kernels.shadows import ShadowFidelity
from ..kernels.tomography import TomographyFidelity
from ..nn.cell import QKLSTMCell
from ..rundir import check_out_dir, claim_out_dir, write_json_atomic
from ..validation import check_choice, check_int
from .backend import default_eval_dir
from .runner import journaled_samplers, run_and_score
from .work import BackendWork, Loader, fit_budget
from .options import EvaluationRequest, Mitigation
from .planner import ESTIMATORS, SHADOW_SHOTS_PER_SETTING

__all__ = ["evaluate_estimated"]

logger = logging.getLogger(__name__)


def _fidelity(estimator: str, cell: QKLSTMCell, sampler, pass_manager, shots: int, seed: int,
              readout: Readout | None = None) -> Fidelity:
    """The ``estimator``'s fidelity for ``cell``'s map on ``sampler`` (``readout``: the measured-state estimators'
    assignment matrices of the measured physical qubits)."""
    fm = cell.kernel.feature_map
    if estimator == "compute-uncompute":
        return SamplerFidelity(fm, sampler, pass_manager=pass_manager)
    if estimator == "tomography":
        return TomographyFidelity(fm, shots=shots, sampler=sampler, pass_manager=pass_manager, readout=readout)
    references = cell.references.numel() // cell.num_qubits
    return ShadowFidelity(fm, shots=SHADOW_SHOTS_PER_SETTING, settings=max(1, references * shots // SHADOW_SHOTS_PER_SETTING),
                          sampler=sampler, pass_manager=pass_manager, seed=seed, readout=readout)


def _isa(fidelity) -> Any:
    return fidelity.circuit if isinstance(fidelity, SamplerFidelity) else fidelity.estimator.source.circuit


def _per_input(estimator: str, fidelity, cell: QKLSTMCell, shots: int) -> tuple[int, int]:
    """``(circuits per input row, shots per circuit)``."""
    if estimator == "compute-uncompute":
        return cell.references.numel() // cell.num_qubits, shots
    if estimator == "tomography":
        return 3, fidelity.shots
    return fidelity.circuits_per_input, SHADOW_SHOTS_PER_SETTING


def _check_request(request: EvaluationRequest, estimator: str) -> None:
    """One line for an option the estimator run cannot take."""
    check_choice("evaluate", "estimator", estimator, ESTIMATORS)
    check_int("evaluate", request.label("sampling.shots"), request.sampling.shots, 1)
    unsupported = {"mitigation.method": "none", "mitigation.depolarizing": "none", "mitigation.echoes": None,
                   "sampling.target_error": None, "sampling.fidelity": None, "jobs.parallel_batches": 1}
    for name, default in unsupported.items():
        group, _, field = name.partition(".")
        value = getattr(getattr(request, group), field)
        if value != default:
            raise ValueError(f"evaluate: expected no {request.label(name)} with --estimator (the estimator sets how "
                             f"kernels are measured and corrected), got {value!r}")


def evaluate_estimated(checkpoint: str | Path, request: EvaluationRequest, work: BackendWork, *, load: Loader,
                       estimator: str = "tomography", outputs: Sequence[str] = (),
                       resolved: ResolvedBackend | None = None) -> dict[str, Any]:
    """Run ``work`` with the checkpoint's model on ``request.backend``, every kernel through ``estimator``.

    Args:
        checkpoint: the ``model.pt`` (named in messages and ``metrics.json``).
        request: backend, output folder (default ``<checkpoint folder>/eval-estimated-<backend>``), resume
            (finished jobs replayed from ``out/results``, IBM jobs fetched by id) and the option groups:
            ``sampling.shots`` (per circuit for compute–uncompute, per setting for tomography; shadows spend
            ``G·R·shots`` per input), ``sampling.seed``/``optimization_level``, ``budget`` (``dry_run``,
            ``max_qpu_seconds``, ``sample_seed``, ``job_overhead_seconds``), ``mitigation.calibration_shots``/
            ``calibration_dir`` (the measured-state estimators' readout calibration), ``jobs`` (retries, time-out,
            circuits per job), ``runtime``. Readout mitigation, a target error, a registered fidelity and
            parallel batches are refused (the estimator decides how kernels are measured).
        work: the task's batches, runner and scorer (``Task.backend_work``).
        load: ``load(sampler=None, pass_manager=None)`` → the checkpoint's model (exact without a sampler).
        estimator: ``compute-uncompute``, ``tomography`` or ``shadows``.
        outputs: the files the task's scorer writes besides ``metrics.json`` and the journal (refused if present).
        resolved: a ready :class:`~qk_lstm_qiskit.hardware.backends.ResolvedBackend` (tests, notebooks).

    Returns:
        The task's metrics (backend and exact; with a sample, the 95 % interval and ``exact_full``), ``estimator``,
        ``shots``, ``examples``/``population``/``sample`` (its ``indices`` into the work's examples, sorted),
        ``rows_sent``, ``rows_skipped_padding``, job counts,
        ``journal``, ``calibration``, ``estimate`` (:class:`~qk_lstm_qiskit.hardware.step_cost.StepCost` as a dict),
        ``seconds`` (written to ``metrics.json``) and ``out_dir``. With ``budget.dry_run``: the plan only.

    Raises:
        ValueError: bad options, a model without QK-LSTM cells, a map the estimator cannot measure, a budget too
            small for one example, an output folder with results.
        QKLSTMError: backend or job failures.
    """
    _check_request(request, estimator)
    sampling = request.sampling
    calibration_shots = DEFAULT_CALIBRATION_SHOTS if request.mitigation.calibration_shots is None else \
        request.mitigation.calibration_shots
    check_int("evaluate", request.label("mitigation.calibration_shots"), calibration_shots, 1)
    start = time.perf_counter()
    rb = resolved or resolve_backend(request.backend, shots=sampling.shots, seed=sampling.seed,
                                     optimization_level=sampling.optimization_level, **request.runtime.backend_options())
    if rb.sampler is None or rb.device is None and rb.kind != "aer":
        raise ValueError(f"evaluate: expected a sampler backend (aer, aer-noisy:, fake:, ibm:), got {rb.name!r}")
    with rb:
        return _run(checkpoint, request, work, load, estimator, outputs, rb, calibration_shots, start)


def _run(checkpoint: str | Path, request: EvaluationRequest, work: BackendWork, load: Loader, estimator: str,
         outputs: Sequence[str], rb: ResolvedBackend, calibration_shots: int, start: float) -> dict[str, Any]:
    """:func:`evaluate_estimated` on the open backend ``rb``."""
    sampling, budget, jobs = request.sampling, request.budget, request.jobs
    shots, seed = sampling.shots, sampling.seed
    timing = rb if rb.device is not None else resolve_backend("fake:torino", shots=1, seed=seed)  # aer: torino's durations
    out = request.out_dir if request.out_dir is not None else default_eval_dir(checkpoint, "estimated-" + rb.name)
    model = load()
    cells = [m for m in model.modules() if isinstance(m, QKLSTMCell)]
    if not cells:
        raise ValueError(f"evaluate: expected a qk-lstm checkpoint (its kernels run on the estimator), got a model "
                         f"without QK-LSTM cells in {str(checkpoint)!r}")
    probe = _fidelity(estimator, cells[0], rb.sampler, rb.pass_manager, shots, 0)  # refuses a map it cannot measure
    isa = _isa(probe)
    per_input, per_circuit = _per_input(estimator, probe, cells[0], shots)
    mapping = measured_qubits(isa)
    qubits = tuple(mapping[c] for c in sorted(mapping))
    measured_state = estimator != "compute-uncompute" and rb.device is not None
    cache = Path(request.mitigation.calibration_dir) if request.mitigation.calibration_dir is not None else out
    calibration: ReadoutCalibration | None = None
    if measured_state:
        calibration = find_calibration(cache, str(rb.device_name), qubits, any_date=request.resume)
    cal_circuits = cal_shots = 0
    cal_seconds = 0.0
    if measured_state and calibration is None:
        cal_circuits, cal_shots = calibration_counts(len(qubits), calibration_shots)
        cal_seconds = circuit_duration(calibration_circuits(qubits, rb.device.num_qubits)[-1], rb.device.target) or 0.0
    timed = isa if timing is rb else _isa(_fidelity(estimator, cells[0], timing.sampler, timing.pass_manager, shots, 0))
    t_circ = circuit_duration(timed, timing.device.target) or 0.0
    limit = jobs.max_circuits_per_job or getattr(rb.device, "max_circuits", None)
    limit = limit if isinstance(limit, int) and limit > 0 else None

    def cost(lengths: Sequence[int]) -> StepCost:
        return step_cost(list(lengths) or [1], circuits_per_input=per_input, shots=per_circuit, circuit_seconds=t_circ,
                         rep_delay_seconds=rep_delay(timing.device),
                         job_overhead_seconds=(DEFAULT_JOB_OVERHEAD_S if budget.job_overhead_seconds is None
                                               else budget.job_overhead_seconds),
                         layers=len(cells), batch_size=work.batch_size, max_circuits_per_job=limit,
                         calibration_circuits=cal_circuits, calibration_shots=cal_shots,
                         calibration_circuit_seconds=cal_seconds)

    full, lengths = work, work.lengths
    work, estimate, chosen = fit_budget(full, cost(lengths), cost, budget)
    if budget.max_qpu_seconds is not None and estimate.qpu_seconds > budget.max_qpu_seconds:
        if full.select is None:
            raise ValueError(f"evaluate: expected max_qpu_seconds to fit every example (this task cannot sample), "
                             f"got {budget.max_qpu_seconds:g} (all need ≈ {estimate.qpu_seconds:,.1f} s)")
        needs = min(cost([n]).qpu_seconds for n in set(lengths))
        raise ValueError(f"evaluate: expected max_qpu_seconds to fit at least one example, got "
                         f"{budget.max_qpu_seconds:g} (one example needs ≈ {needs:,.1f} s)")
    sample = None if work is full else {"examples": work.population, "population": full.population,
                                        "seed": budget.sample_seed, "indices": chosen}
    logger.info("evaluate: %s on %s, %d of %d examples, ≈ %.1f QPU s", estimator, rb.name, work.population,
                full.population, estimate.qpu_seconds)
    plan = {"backend": rb.name, "device": rb.device_name, "estimator": estimator, "shots": shots,
            "examples": work.population, "population": full.population, "sample": sample,
            "max_qpu_seconds": budget.max_qpu_seconds, "sample_seed": budget.sample_seed,
            "batch_size": work.batch_size, "batches": len(work.batches), "estimate": estimate.to_dict()}
    if budget.dry_run:
        return {**plan, "dry_run": True}

    files = (JOURNAL_NAME, "metrics.json", *outputs)
    check_out_dir(out, command="evaluate", outputs=files, resume=request.resume, resume_from=JOURNAL_NAME)
    if measured_state and request.mitigation.calibration_dir is not None:
        check_out_dir(cache, command="evaluate", outputs=(), flag="--calibration-dir")
    with claim_out_dir(out, command="evaluate", outputs=files, resume=request.resume, resume_from=JOURNAL_NAME):
        journal, sampler, _ = journaled_samplers(rb, out, mitigation=Mitigation(), jobs=jobs, resume=request.resume)
        sampler.shots = shots
        paid = calibration is None and measured_state
        if paid:
            with sampler.stream("calibration"):
                calibration = run_calibration(sampler, qubits, rb.device, shots=calibration_shots,
                                              backend_name=rb.device_name)
            calibration.save(cache)
        wrappers = []
        for i, cell in enumerate(cells):
            fidelity = _fidelity(estimator, cell, sampler, rb.pass_manager, shots, (seed or 0) + i,
                                 readout=None if calibration is None else calibration.assignment)
            wrapper = ActiveRowsFidelity(fidelity, cell.kernel.feature_map)
            cell.kernel.fidelity = wrapper
            wrappers.append(wrapper)
        scored, kernel_differences = run_and_score(model, load, work, full, sampler, out=out,
                                                   title=f"on {rb.name} ({estimator}, {shots} shots)",
                                                   progress=request.progress)
        metrics = {
            **scored, **plan, **kernel_differences,
            "rows_sent": sum(w.rows_sent for w in wrappers), "rows_skipped_padding": sum(w.rows_skipped for w in wrappers),
            "jobs_submitted": sampler.submitted, "jobs_resumed": sampler.fetched, "journal": str(journal),
            "calibration": None if calibration is None else {**calibration.to_dict(), "paid": paid},
            "seed": seed, "checkpoint": str(checkpoint), "data": work.source, "seconds": time.perf_counter() - start,
        }
        write_json_atomic(metrics, out / "metrics.json")
    return {**metrics, "out_dir": str(out)}
