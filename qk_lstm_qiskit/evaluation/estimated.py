"""Tag a checkpoint's data on a backend with a chosen kernel estimator, inside a QPU budget.

The kernels of every QK-LSTM cell run through one estimator — ``compute-uncompute`` (the sampler
fidelity), ``tomography`` (product maps, 3 circuits per input) or ``shadows`` — behind an
:class:`~qk_lstm_qiskit.kernels.active_rows.ActiveRowsFidelity`, so padded time steps send nothing.
Sentences run in batches sorted by length (default one batch: one job per time step). The
measured-state estimators correct readout with a calibration of their measured qubits (run first
through the journaled sampler, or reused from ``calibration_dir`` if measured today).

With ``max_qpu_seconds`` the run either fits the whole set or evaluates the largest seeded random
sample of sentences whose estimated cost fits (:func:`~qk_lstm_qiskit.evaluation.sampling.sample_for_budget`),
and reports the token accuracy with its 95 % interval
(:func:`~qk_lstm_qiskit.evaluation.sampling.accuracy_interval`), next to the exact model's accuracy
on the same sample and on the whole set.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Any, Sequence

import torch

from ..checkpoint import load_tagger
from ..data.corpus import make_batches
from ..data.tasks import evaluation_data
from ..errors import QKLSTMError
from ..hardware.backends import resolve_backend
from ..hardware.cost import DEFAULT_JOB_OVERHEAD_S
from ..hardware.timing import circuit_duration, rep_delay
from ..hardware.journal import JOURNAL_NAME, JournaledSampler
from ..hardware.readout import (
    DEFAULT_CALIBRATION_SHOTS, calibration_circuits, calibration_counts, find_calibration, measured_qubits,
    run_calibration,
)
from ..hardware.step_cost import StepCost, step_cost
from ..kernels.active_rows import ActiveRowsFidelity
from ..kernels.sampler import SamplerFidelity
from ..kernels.shadows import ShadowFidelity
from ..kernels.tomography import TomographyFidelity
from ..nn.cell import QKLSTMCell
from ..rundir import check_out_dir, make_out_dir, write_json_atomic
from ..validation import check_choice, check_int
from .planner import ESTIMATORS, SHADOW_SHOTS_PER_SETTING
from .sampling import accuracy_interval, sample_for_budget

__all__ = ["evaluate_estimated"]

logger = logging.getLogger(__name__)


def _fidelity(estimator: str, cell: QKLSTMCell, sampler, pass_manager, shots: int, seed: int):
    fm = cell.kernel.feature_map
    if estimator == "compute-uncompute":
        return SamplerFidelity(fm, sampler, pass_manager=pass_manager)
    if estimator == "tomography":
        return TomographyFidelity(fm, shots=shots, sampler=sampler, pass_manager=pass_manager)
    references = cell.references.numel() // cell.num_qubits
    return ShadowFidelity(fm, shots=SHADOW_SHOTS_PER_SETTING, settings=max(1, references * shots // SHADOW_SHOTS_PER_SETTING),
                          sampler=sampler, pass_manager=pass_manager, seed=seed)


def _isa(fidelity) -> Any:
    return fidelity.circuit if isinstance(fidelity, SamplerFidelity) else fidelity.estimator.source.circuit


def _per_input(estimator: str, fidelity, cell: QKLSTMCell) -> tuple[int, int]:
    """``(circuits per input row, shots per circuit)``."""
    if estimator == "compute-uncompute":
        return cell.references.numel() // cell.num_qubits, -1
    if estimator == "tomography":
        return 3, fidelity.shots
    return fidelity.circuits_per_input, SHADOW_SHOTS_PER_SETTING


@torch.no_grad()
def _tag(model, batches, wrappers: Sequence[ActiveRowsFidelity]) -> tuple[list[int], list[int]]:
    """Per-sentence ``(correct, tokens)`` in batch order; the wrappers skip padded rows."""
    correct, tokens = [], []
    model.eval()
    for batch in batches:
        lengths = batch.mask.sum(1)
        with contextlib.ExitStack() as stack:
            for w in wrappers:
                stack.enter_context(w.schedule(lengths))
            predictions = model(batch.words).argmax(-1)
        hits = (predictions == batch.tags) & batch.mask
        correct += hits.sum(1).tolist()
        tokens += lengths.tolist()
    return correct, tokens


def _exact_counts(model, encoded, pad_index: int) -> tuple[list[int], list[int]]:
    return _tag(model, make_batches(encoded, 64, pad_index=pad_index), [])


def evaluate_estimated(
    checkpoint: str | Path, backend: str = "fake:torino", *, estimator: str = "tomography", shots: int = 256,
    data: str | None = None, max_qpu_seconds: float | None = None, sample_seed: int = 0, seed: int | None = 0,
    out_dir: str | Path | None = None, resume: bool = False, batch_size: int | None = None,
    optimization_level: int = 2, calibration_shots: int = DEFAULT_CALIBRATION_SHOTS,
    calibration_dir: str | Path | None = None, job_overhead_seconds: float | None = None, dry_run: bool = False,
    resolved=None,
) -> dict[str, Any]:
    """Tag ``data`` (default: the checkpoint's validation split) with ``estimator`` on ``backend``.

    Args:
        checkpoint: a qk-lstm tagger's ``model.pt``.
        backend: ``aer``, ``aer-noisy:<fake>``, ``fake:<fake>`` or ``ibm:<device>``.
        estimator: ``compute-uncompute``, ``tomography`` or ``shadows``.
        shots: per circuit (compute–uncompute), per setting (tomography); shadows spend ``G·R·shots`` per input.
        max_qpu_seconds: evaluate the whole set if its estimate fits, else the largest seeded
            (``sample_seed``) random sample of sentences that fits; ``None``: everything.
        out_dir: ``metrics.json`` and the job journal (default ``<checkpoint folder>/eval-estimated-<backend>``).
        resume: fetch the journal's jobs by id (IBM; local jobs are rerun).
        batch_size: sentences per batch (default all in one: one job per time step).
        calibration_shots, calibration_dir: the readout calibration of the measured-state estimators.
        dry_run: return the plan (sample size, estimate) without submitting or writing anything.

    Raises:
        ValueError: bad arguments, a non-QK-LSTM checkpoint, a budget too small for one sentence.
        QKLSTMError: backend or job failures.
    """
    check_choice("evaluate", "estimator", estimator, ESTIMATORS)
    check_int("evaluate", "shots", shots, 1)
    check_int("evaluate", "batch_size", batch_size, 1, optional=True)
    start = time.perf_counter()
    rb = resolved or resolve_backend(backend, shots=shots, seed=seed, optimization_level=optimization_level)
    if rb.sampler is None or rb.device is None and rb.kind != "aer":
        raise ValueError(f"evaluate: expected a sampler backend (aer, aer-noisy:, fake:, ibm:), got {rb.name!r}")
    timing = rb if rb.device is not None else resolve_backend("fake:torino", shots=1, seed=seed)  # aer: torino's durations
    exact_model, words, tags, config = load_tagger(checkpoint)
    if config.model.kind != "qk-lstm":
        raise ValueError(f"evaluate: expected a qk-lstm checkpoint, got model kind {config.model.kind!r}")
    eval_data = evaluation_data(data, config.data, words, tags)
    pad = words.pad_index or 0
    out = Path(out_dir) if out_dir is not None else Path(checkpoint).resolve().parent / (
        "eval-estimated-" + "".join(c if c.isalnum() else "-" for c in rb.name))

    model, _, _, _ = load_tagger(checkpoint)
    cells = [m for m in model.modules() if isinstance(m, QKLSTMCell)]
    inner = [_fidelity(estimator, c, rb.sampler, rb.pass_manager, shots, (seed or 0) + i) for i, c in enumerate(cells)]
    isa = _isa(inner[0])
    per_input, per_circuit = _per_input(estimator, inner[0], cells[0])
    per_circuit = shots if per_circuit < 0 else per_circuit
    qubits = tuple(measured_qubits(isa)[c] for c in sorted(measured_qubits(isa)))
    cache = Path(calibration_dir) if calibration_dir is not None else out
    calibration = None
    if estimator != "compute-uncompute" and rb.device is not None:
        calibration = find_calibration(cache, str(rb.device_name), qubits, any_date=resume)
    cal_circuits = cal_shots = 0
    cal_seconds = 0.0
    if estimator != "compute-uncompute" and rb.device is not None and calibration is None:
        cal_circuits, cal_shots = calibration_counts(len(qubits), calibration_shots)
        cal_seconds = circuit_duration(calibration_circuits(qubits, rb.device.num_qubits)[-1], rb.device.target) or 0.0
    timed = isa if timing is rb else _isa(_fidelity(estimator, cells[0], timing.sampler, timing.pass_manager, shots, 0))
    t_circ = circuit_duration(timed, timing.device.target) or 0.0
    lengths = eval_data.lengths

    def cost(indices: Sequence[int]) -> StepCost:
        return step_cost([lengths[i] for i in indices] or [1], circuits_per_input=per_input, shots=per_circuit,
                         circuit_seconds=t_circ, rep_delay_seconds=rep_delay(timing.device),
                         job_overhead_seconds=DEFAULT_JOB_OVERHEAD_S if job_overhead_seconds is None else job_overhead_seconds,
                         layers=len(cells), batch_size=batch_size, calibration_circuits=cal_circuits,
                         calibration_shots=cal_shots, calibration_circuit_seconds=cal_seconds)

    population = len(lengths)
    chosen = list(range(population)) if max_qpu_seconds is None else sample_for_budget(
        population, lambda idx: cost(idx).qpu_seconds, max_qpu_seconds, seed=sample_seed)
    if not chosen:
        raise ValueError(f"evaluate: expected max_qpu_seconds to fit at least one sentence, got {max_qpu_seconds:g} "
                         f"(one sentence needs ≈ {min(cost([i]).qpu_seconds for i in range(population)):,.1f} s)")
    estimate = cost(chosen)
    logger.info("evaluate: %s on %s, %d of %d sentences, ≈ %.1f QPU s", estimator, rb.name, len(chosen), population,
                estimate.qpu_seconds)
    plan = {"backend": rb.name, "device": rb.device_name, "estimator": estimator, "shots": shots,
            "sentences": len(chosen), "population": population, "max_qpu_seconds": max_qpu_seconds,
            "sample_seed": sample_seed, "estimate": estimate.to_dict()}
    if dry_run:
        return {**plan, "dry_run": True}

    check_out_dir(out, command="evaluate", outputs=(JOURNAL_NAME, "metrics.json"), resume=resume,
                  resume_from=JOURNAL_NAME)
    journal = make_out_dir(out) / JOURNAL_NAME
    sampler = JournaledSampler(rb.sampler, journal, service=rb.service, resume=resume and rb.service is not None,
                               backend_name=rb.device_name or rb.name, shots=shots)
    inner = [_fidelity(estimator, c, sampler, rb.pass_manager, shots, (seed or 0) + i) for i, c in enumerate(cells)]
    if calibration is None and estimator != "compute-uncompute" and rb.device is not None:
        with sampler.stream("calibration"):
            calibration = run_calibration(sampler, qubits, rb.device, shots=calibration_shots,
                                          backend_name=rb.device_name)
        calibration.save(cache)
    wrappers = []
    for cell, fidelity in zip(cells, inner):
        if calibration is not None:
            fidelity.estimator.source.readout = calibration.assignment
        wrapper = ActiveRowsFidelity(fidelity, cell.kernel.feature_map)
        cell.kernel.fidelity = wrapper
        wrappers.append(wrapper)
    order = sorted(chosen, key=lambda i: lengths[i])
    sample = [eval_data.encoded[i] for i in order]
    batches = make_batches(sample, batch_size or len(sample), pad_index=pad)
    try:
        with sampler.stream("tagging"):
            correct, tokens = _tag(model, batches, wrappers)
    except QKLSTMError:
        raise
    interval = accuracy_interval(correct, tokens, population)
    exact_sample = accuracy_interval(*_exact_counts(exact_model, sample, pad), population)
    exact_full = accuracy_interval(*_exact_counts(exact_model, eval_data.encoded, pad), population)
    metrics = {
        **plan, "accuracy": interval.accuracy, "standard_error": interval.standard_error,
        "interval_95": [interval.low, interval.high], "tokens": interval.tokens,
        "exact_accuracy_sample": exact_sample.accuracy, "exact_accuracy_full": exact_full.accuracy,
        "exact_full_inside_interval": interval.low <= exact_full.accuracy <= interval.high,
        "rows_sent": sum(w.rows_sent for w in wrappers), "rows_skipped_padding": sum(w.rows_skipped for w in wrappers),
        "jobs_submitted": sampler.submitted, "jobs_resumed": sampler.fetched, "journal": str(journal),
        "calibration": None if calibration is None else calibration.to_dict(), "checkpoint": str(checkpoint),
        "data": eval_data.source, "seconds": time.perf_counter() - start,
    }
    write_json_atomic(metrics, out / "metrics.json")
    return {**metrics, "out_dir": str(out)}
