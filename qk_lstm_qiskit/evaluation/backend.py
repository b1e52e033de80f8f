"""Train in simulation, infer on hardware: score a trained checkpoint on any sampler backend, for any task.

:func:`evaluate_on_backend` is the one path every task's checkpoint takes to a backend
(:func:`~qk_lstm_qiskit.hardware.backends.resolve_backend`). A task describes its
:class:`~qk_lstm_qiskit.evaluation.work.BackendWork` (the examples' lengths, their batches, how a model runs
a batch, how the outputs are scored) and how its model is loaded; the path then

* estimates the cost first (:mod:`~qk_lstm_qiskit.hardware.cost`, batches as the work holds them, no padded
  step sent); when it is over ``Budget.max_qpu_seconds``, evaluates the largest seeded random sample of
  examples that fits (:func:`~qk_lstm_qiskit.evaluation.work.fit_budget`), and refuses, before any job or
  folder, only when not one example fits;
* runs every batch on the backend (:mod:`~qk_lstm_qiskit.evaluation.runner`: a journaled sampler whose
  finished jobs are kept for ``--resume``, one journal stream per batch, ``JobPolicy.parallel_batches`` at
  once), readout-corrected by ``Mitigation`` (``m3``, ``marginal``: :mod:`~qk_lstm_qiskit.hardware.mitigation`,
  with a calibration measured first or reused), with the kernels' fidelity ``Sampling.fidelity`` (default
  compute–uncompute), corrected for global depolarising noise by echo circuits in each job when
  ``Mitigation.depolarizing`` asks (:class:`~qk_lstm_qiskit.kernels.depolarizing.DepolarizingCorrectedFidelity`);
* runs the same batches on the exact executor and reports, next to the task's metrics of both,
  ``kernel_mean_abs_diff`` = mean ``|k_backend − k_exact|`` over every kernel value the backend
  computed (the exact value on the same inputs, i.e. along the backend's own hidden-state trajectory).

:func:`estimate_on_backend` is the estimate alone (nothing submitted). :func:`evaluate_checkpoint`
and :func:`estimate_checkpoint` are the tagging task's entries (sentences sorted by length before
batching, so a batch pads little).
"""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Sequence

from torch import nn

from ..checkpoint import load_tagger
from ..data.tasks import EvaluationData, evaluation_data, evaluation_sentences
from ..hardware.backends import resolve_backend
from ..hardware.cost import (
    CalibrationCost, CostEstimate, DryRunSampler, JobLimits, active_rows, batch_shapes, check_budget,
    estimate_model_cost, isa_circuit,
)
from ..hardware.journal import JOURNAL_NAME
from ..hardware.mitigation import MITIGATIONS, plan_mitigation, shots_for_target_error
from ..hardware.readout import DEFAULT_CALIBRATION_SHOTS
from ..kernels.active_rows import ActiveRowsFidelity
from ..kernels.depolarizing import DEFAULT_ECHOES, DEPOLARIZING_METHODS, DepolarizingCorrectedFidelity
from ..kernels.fidelity import FIDELITIES, make_fidelity
from ..kernels.kernel import QuantumKernel
from ..kernels.measured_fidelity import MeasuredStateFidelity
from ..rundir import check_out_dir, claim_out_dir, write_json_atomic
from ..validation import check_choice, check_int
from .loop import TaggedTokens, sorted_batches, tag_batches, tagged_metrics
from .metrics import write_confusion_png
from .options import Budget, EvaluationRequest, JobPolicy, Mitigation, RuntimeOptions, Sampling
from .runner import circuit_limit, journaled_samplers, run_and_score
from .sampling import accuracy_interval
from .work import BackendWork, Loader, fit_budget, interval_metrics

__all__ = ["default_eval_dir", "estimate_checkpoint", "estimate_on_backend", "evaluate_checkpoint", "evaluate_on_backend",
           "tagging_backend_work"]

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 32

def default_eval_dir(checkpoint: str | Path, backend: str) -> Path:
    """``<checkpoint folder>/eval-<backend>`` with ``:`` replaced (``runs/paper/eval-fake-manila``)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in backend)
    checkpoint = Path(checkpoint)
    return (checkpoint if checkpoint.is_dir() else checkpoint.resolve().parent) / f"eval-{safe}"


def _check_options(command: str, request: EvaluationRequest, rb) -> int:
    """One line for a bad option or a backend that cannot run it; the calibration shots."""
    sampling, mitigation, jobs = request.sampling, request.mitigation, request.jobs
    check_int(command, "parallel_batches", jobs.parallel_batches, 1)
    calibration_shots = DEFAULT_CALIBRATION_SHOTS if mitigation.calibration_shots is None else mitigation.calibration_shots
    check_int(command, "calibration_shots", calibration_shots, 1)
    if rb.sampler is None:
        raise ValueError(f"{command}: expected a sampler backend (aer, aer-noisy:, fake:, ibm:), got {rb.name!r}")
    check_choice(command, "mitigation", mitigation.method, MITIGATIONS)
    if sampling.fidelity is not None:
        check_choice(command, "sampling.fidelity", sampling.fidelity, tuple(FIDELITIES))
        factory = FIDELITIES[sampling.fidelity]
        if isinstance(factory, type) and issubclass(factory, MeasuredStateFidelity):  # priced per row, calibrated first
            raise ValueError(f"{command}: expected a fidelity priced per kernel value for sampling.fidelity (e.g. "
                             f"compute-uncompute; measured-state estimators run with --estimator "
                             f"{sampling.fidelity}), got {sampling.fidelity!r}")
    check_choice(command, "depolarizing", mitigation.depolarizing, ("none", *DEPOLARIZING_METHODS))
    if mitigation.depolarizing != "none":
        fidelity = sampling.fidelity or "compute-uncompute"
        if not callable(getattr(FIDELITIES[fidelity], "evaluate_pairs", None)):
            raise ValueError(f"{command}: expected a compute-uncompute fidelity for depolarizing "
                             f"{mitigation.depolarizing!r} (its echo circuits join the kernel circuits' job), "
                             f"got fidelity {fidelity!r}")
        echoes = DEFAULT_ECHOES[mitigation.depolarizing] if mitigation.echoes is None else mitigation.echoes
        check_int(command, "echoes", echoes, 1)
        if mitigation.depolarizing == "single" and echoes != 1:
            raise ValueError(f"{command}: expected echoes 1 for depolarizing 'single' (use 'average' for more), "
                             f"got {echoes}")
    elif mitigation.echoes is not None:
        raise ValueError(f"{command}: expected echoes only with depolarizing single or average, got {mitigation.echoes}")
    if mitigation.method != "none" and rb.device is None:
        raise ValueError(f"{command}: expected a device backend (aer-noisy:, fake:, ibm:) for mitigation "
                         f"{mitigation.method!r}, got {rb.name!r}")
    return calibration_shots


def _backend_model(load: Loader, checkpoint, sampler, pass_manager, fidelity: str | None,
                   mitigation: Mitigation) -> nn.Module:
    """The checkpoint's model with its kernels on ``sampler`` (through the registered ``fidelity`` when named),
    depolarising-corrected when ``mitigation.depolarizing`` asks (options checked by ``_check_options``), each
    behind an :class:`~qk_lstm_qiskit.kernels.active_rows.ActiveRowsFidelity`: padded time steps send nothing.

    Raises:
        ValueError: the model has no quantum kernel (only a qk-lstm runs on a sampler).
    """
    model = load(sampler=sampler, pass_manager=pass_manager)
    kernels = [m for m in model.modules() if isinstance(m, QuantumKernel)]
    if not kernels:
        raise ValueError(f"evaluate: expected a qk-lstm checkpoint (its kernels run on the sampler), got a model "
                         f"without quantum kernels in {str(checkpoint)!r}")
    if fidelity is not None:
        for kernel in kernels:
            kernel.fidelity = make_fidelity(fidelity, kernel.feature_map, sampler=sampler, pass_manager=pass_manager)
    if mitigation.depolarizing != "none":
        for kernel in kernels:
            kernel.fidelity = DepolarizingCorrectedFidelity(kernel.fidelity, kernel.feature_map,
                                                            method=mitigation.depolarizing, echoes=mitigation.echoes)
    for kernel in kernels:
        kernel.fidelity = ActiveRowsFidelity(kernel.fidelity, kernel.feature_map)
    return model


def _depolarizing_metrics(model: nn.Module, mitigation: Mitigation) -> dict[str, Any]:
    """``depolarizing``, ``echoes`` per job and the mean estimated rate ``λ̂`` over every job of the run."""
    wrappers = [m for m in model.modules() if isinstance(m, DepolarizingCorrectedFidelity)]
    rates = [rate for w in wrappers for rate in w.rates]
    return {"depolarizing": mitigation.depolarizing, "echoes": wrappers[0].echoes if wrappers else 0,
            "depolarizing_rate": sum(rates) / len(rates) if rates else None}


def _plan(model, rb, mitigation: str, *, shots: int | None, target_error: float | None, calibration_shots: int,
          cache_dir, any_date: bool):
    """The mitigation plan on the kernels' ISA circuit and the shots per circuit (from ``target_error``)."""
    plan = plan_mitigation(mitigation, isa_circuit(model), rb.device, calibration_shots=calibration_shots,
                           cache_dir=cache_dir, backend_name=rb.device_name, any_date=any_date)
    if target_error is not None:
        shots = shots_for_target_error(target_error, plan.variance_factor)
    return plan, shots


def _estimate(model, resolved, lengths: Sequence[int], batch_size: int, *, training: bool, epochs: int, shots: int,
              plan, request: EvaluationRequest) -> CostEstimate:
    """The cost of ``model`` over examples of ``lengths`` batched ``batch_size`` at a time in length order,
    at ``shots`` per circuit with the mitigation ``plan``; an evaluation sends no padded step (active rows),
    training sends every row of every step."""
    calibration = CalibrationCost() if plan is None else CalibrationCost(
        plan.method, plan.calibration_circuits, plan.calibration_shots, plan.calibration_circuit, plan.variance_factor)
    ordered = sorted(lengths)
    return estimate_model_cost(
        model, batch_shapes(ordered, batch_size), resolved, training=training, epochs=epochs,
        job_overhead_seconds=request.budget.job_overhead_seconds, shots=shots, target_error=request.sampling.target_error,
        jobs=JobLimits(circuit_limit(resolved, request.jobs.max_circuits_per_job), request.jobs.parallel_batches),
        calibration=calibration, active_rows=None if training else active_rows(ordered, batch_size),
    )


def estimate_on_backend(checkpoint: str | Path, request: EvaluationRequest, lengths: Sequence[int], batch_size: int, *,
                        load: Loader, training: bool = False, epochs: int = 1, resolved=None) -> CostEstimate:
    """:class:`~qk_lstm_qiskit.hardware.cost.CostEstimate` of running (or training) the checkpoint's model on examples
    of ``lengths`` on ``request.backend``, ``batch_size`` at a time. Nothing is submitted: the model is built on a
    :class:`~qk_lstm_qiskit.hardware.cost.DryRunSampler` with the backend's pass manager."""
    check_int("estimate", "batch_size", batch_size, 1)
    sampling, mitigation = request.sampling, request.mitigation
    rb = resolved or resolve_backend(request.backend, shots=sampling.shots, seed=sampling.seed,
                                     optimization_level=sampling.optimization_level)
    calibration_shots = _check_options("estimate", request, rb)
    if training and mitigation.depolarizing != "none":
        raise ValueError("estimate: expected depolarizing none when training (the correction is inference-only), "
                         f"got {mitigation.depolarizing!r}")
    model = _backend_model(load, checkpoint, DryRunSampler(), rb.pass_manager, sampling.fidelity, mitigation)
    plan, shots = _plan(model, rb, mitigation.method, shots=rb.shots, target_error=sampling.target_error,
                        calibration_shots=calibration_shots, cache_dir=mitigation.calibration_dir, any_date=False)
    return _estimate(model, rb, lengths, batch_size, training=training, epochs=epochs, shots=shots, plan=plan,
                     request=request)


def evaluate_on_backend(checkpoint: str | Path, request: EvaluationRequest, work: BackendWork, *, load: Loader,
                        outputs: Sequence[str], resolved=None) -> dict[str, Any]:
    """Run ``work`` with the checkpoint's model on ``request.backend`` and on the exact executor; score both.

    Args:
        checkpoint: the ``model.pt`` (named in messages and ``metrics.json``).
        request: backend, output folder, resume, progress and the option groups (:class:`EvaluationRequest`).
        work: the task's batches, runner and scorer (:class:`BackendWork`).
        load: ``load(sampler=None, pass_manager=None)`` → the checkpoint's model (exact without a sampler).
        outputs: the files the task's scorer writes besides ``metrics.json`` and the journal (refused if present).
        resolved: a ready :class:`~qk_lstm_qiskit.hardware.backends.ResolvedBackend` (tests, notebooks);
            overrides ``request.backend``, ``sampling.seed``/``optimization_level`` and ``runtime``.

    Returns:
        The task's metrics on the backend, its ``exact_…`` values, ``agreement`` where the task has it, kernel
        differences, backend, shots, mitigation, calibration, job counts, the ``estimate`` and ``seconds``
        (written to ``out_dir/metrics.json``), plus ``out_dir`` and ``estimate_summary``. With ``budget.dry_run``:
        the estimate only, nothing submitted or written.

    Raises:
        ValueError: bad options, a model without quantum kernels, an output folder with results or an old journal.
        QKLSTMError: over budget, backend or job failures.
    """
    sampling, mitigation, jobs, budget = request.sampling, request.mitigation, request.jobs, request.budget
    start = time.perf_counter()
    rb = resolved or resolve_backend(request.backend, shots=sampling.shots, seed=sampling.seed,
                                     optimization_level=sampling.optimization_level, **request.runtime.backend_options())
    calibration_shots = _check_options("evaluate", request, rb)
    method = mitigation.method
    if jobs.parallel_batches > 1 and rb.kind == "ibm" and rb.mode == "job":
        logger.warning("evaluate: %d parallel batches in job mode; --mode batch groups their jobs in a Runtime batch",
                       jobs.parallel_batches)
    out = request.out_dir if request.out_dir is not None else default_eval_dir(checkpoint, rb.name)
    cache_dir = Path(mitigation.calibration_dir) if mitigation.calibration_dir is not None else out
    files = (JOURNAL_NAME, "metrics.json", *outputs)
    with ExitStack() as stack:
        stack.enter_context(rb)
        if not budget.dry_run:  # every refusal before a folder is made or a job (calibration included) submitted
            check_out_dir(out, command="evaluate", outputs=files, resume=request.resume, resume_from=JOURNAL_NAME)
            if method != "none" and mitigation.calibration_dir is not None:
                check_out_dir(cache_dir, command="evaluate", outputs=(), flag="--calibration-dir")
            stack.enter_context(claim_out_dir(out, command="evaluate", outputs=files, resume=request.resume,
                                              resume_from=JOURNAL_NAME))
        journal_path, sampler, kernel_sampler = (None, rb.sampler, rb.sampler) if budget.dry_run else journaled_samplers(
            rb, out, mitigation=Mitigation(method, calibration_shots, cache_dir), jobs=jobs, resume=request.resume)
        model = _backend_model(load, checkpoint, kernel_sampler, rb.pass_manager, sampling.fidelity, mitigation)
        plan, shots = _plan(model, rb, method, shots=rb.shots, target_error=sampling.target_error,
                            calibration_shots=calibration_shots, cache_dir=cache_dir, any_date=request.resume)
        if not budget.dry_run:
            sampler.shots = shots
        def cost(lengths: Sequence[int]) -> CostEstimate:
            return _estimate(model, rb, lengths, work.batch_size, training=False, epochs=1, shots=shots, plan=plan,
                             request=request)

        full = work
        work, estimate, _ = fit_budget(work, cost(work.lengths), cost, budget)
        sample = None if work is full else {"examples": work.population, "population": full.population,
                                            "seed": budget.sample_seed}
        logger.info("evaluate: estimate\n%s", estimate.summary())
        if budget.dry_run:
            return {"backend": rb.name, "device": rb.device_name, "shots": shots, "dry_run": True, "mitigation": method,
                    "sample": sample, "estimate": estimate.to_dict(), "estimate_summary": estimate.summary()}
        check_budget(estimate, budget.max_qpu_seconds)

        calibration = None
        if plan.method != "none":
            with sampler.stream("calibration"):
                calibration = kernel_sampler.calibrate(plan.qubits)
        scored, kernel_differences = run_and_score(model, load, work, full, sampler, out=out,
                                                   title=f"on {rb.name} ({shots} shots)",
                                                   workers=jobs.parallel_batches, progress=request.progress)
        metrics = {
            **scored,
            "sample": sample,
            **kernel_differences,
            **rb.info(),
            "shots": shots,
            "target_error": sampling.target_error,
            "kernel_standard_error": estimate.kernel_standard_error,
            "fidelity": sampling.fidelity or "compute-uncompute",
            "mitigation": method,
            **_depolarizing_metrics(model, mitigation),
            "calibration": None if calibration is None else {
                **calibration.to_dict(), "paid": kernel_sampler.calibrations_run > 0,
            },
            "parallel_batches": jobs.parallel_batches,
            "seed": sampling.seed,
            "checkpoint": str(checkpoint),
            "data": work.source,
            "batch_size": work.batch_size,
            "batches": len(work.batches),
            "jobs_submitted": sampler.submitted,
            "jobs_resumed": sampler.fetched,
            "journal": str(journal_path),
            "estimate": estimate.to_dict(),
            "seconds": time.perf_counter() - start,
        }
        write_json_atomic(metrics, out / "metrics.json")
    return {**metrics, "out_dir": str(out), "estimate_summary": estimate.summary()}


# ---------------------------------------------------------------------- the tagging task's entries


def tagging_backend_work(checkpoint: str | Path, request: EvaluationRequest) -> tuple[BackendWork, Loader]:
    """``(work, load)`` of a qk-lstm tagger on ``request.data`` (default: its validation split, else its training
    data; the first ``request.max_items`` sentences; ``request.batch_size`` a batch, default 32) on a sampler
    backend (``load(sampler=None, pass_manager=None)`` → the tagger).

    Raises:
        ValueError: not a qk-lstm tagger; data the vocabulary cannot encode.
    """
    batch_size = request.batch_size or DEFAULT_BATCH_SIZE
    check_int("evaluate", "batch_size", batch_size, 1)
    _, words, tags, config = load_tagger(checkpoint)
    if config.model.kind != "qk-lstm":
        raise ValueError(f"evaluate: expected a qk-lstm checkpoint, got model kind {config.model.kind!r} in {checkpoint}")

    def load(sampler=None, pass_manager=None) -> nn.Module:
        return load_tagger(checkpoint, sampler=sampler, pass_manager=pass_manager)[0]

    eval_data = evaluation_data(request.data, config.data, words, tags, max_sentences=request.max_items)
    return _tagging_work(eval_data, words, tags, batch_size, config), load


def _request(backend: str, **groups: Any) -> EvaluationRequest:
    return EvaluationRequest(backend=backend, **{k: v for k, v in groups.items() if v is not None})


def _tagging_work(data: EvaluationData, words, tags, batch_size: int, config, population: int | None = None) -> BackendWork:
    """The :class:`BackendWork` of tagging ``data``: token accuracy, per-tag F1 and the confusion PNG on the backend,
    ``exact_accuracy`` and ``agreement``; on a sample of a ``population`` of sentences, the accuracy's 95 % interval
    (sentences are the sampling units: :func:`~qk_lstm_qiskit.evaluation.sampling.accuracy_interval`)."""
    batches = sorted_batches(data, batch_size, words.pad_index or 0)

    def score(tagged: TaggedTokens, exact: TaggedTokens, out: Path, title: str, exact_full) -> dict[str, Any]:
        result = tagged_metrics(tagged, data, words, tags)
        write_confusion_png(result, out, f"{config.model.kind} {title}")
        metrics = {**result.metrics, "exact_accuracy": exact.accuracy,
                   "agreement": float((tagged.predictions == exact.predictions).double().mean())}
        if exact_full is not None:
            tokens = [int(n) for batch in batches for n in batch.mask.sum(1)]  # per sentence, in batch order
            correct = [int(hits.sum()) for hits in (tagged.predictions == tagged.targets).split(tokens)]
            interval = accuracy_interval(correct, tokens, population or len(tokens))
            metrics.update(interval_metrics(interval, exact_full.accuracy))
        return metrics

    def select(indices: Sequence[int]) -> BackendWork:
        subset = EvaluationData(data.source, [data.sentences[i] for i in indices], [data.encoded[i] for i in indices],
                                data.unseen_tags)
        return _tagging_work(subset, words, tags, batch_size, config, population=len(data.sentences))

    return BackendWork(
        batches=batches, lengths=data.lengths, batch_size=batch_size, run=tag_batches, combine=TaggedTokens.concatenate,
        score=score, source=data.source, batch_lengths=lambda batch: batch.mask.sum(1),
        metric=lambda tagged: tagged.accuracy, metric_name="accuracy", higher_is_better=True, select=select if population is None else None,
    )


def estimate_checkpoint(
    checkpoint: str | Path,
    backend: str = "fake:manila",
    *,
    data: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_sentences: int | None = None,
    training: bool = False,
    epochs: int = 1,
    sampling: Sampling | None = None,
    mitigation: Mitigation | None = None,
    jobs: JobPolicy | None = None,
    budget: Budget | None = None,
    resolved=None,
) -> CostEstimate:
    """:class:`~qk_lstm_qiskit.hardware.cost.CostEstimate` of tagging (or training on) ``data`` with a checkpoint's model.

    Only sentence lengths are read from ``data`` (default as :func:`evaluate_checkpoint`), so any
    CoNLL-U file works with any checkpoint. Nothing is submitted (:func:`estimate_on_backend`); the
    option groups are those of :func:`evaluate_checkpoint` (``None``: the defaults).
    """
    _, _, _, config = load_tagger(checkpoint)
    sentences, _ = evaluation_sentences(data, config.data, max_sentences=max_sentences)
    request = _request(backend, sampling=sampling, mitigation=mitigation, jobs=jobs, budget=budget)

    def load(sampler=None, pass_manager=None) -> nn.Module:
        return load_tagger(checkpoint, sampler=sampler, pass_manager=pass_manager)[0]

    return estimate_on_backend(checkpoint, request, [len(ws) for ws, _ in sentences], batch_size, load=load,
                               training=training, epochs=epochs, resolved=resolved)


def evaluate_checkpoint(
    checkpoint: str | Path,
    backend: str = "fake:manila",
    *,
    data: str | None = None,
    out_dir: str | Path | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_sentences: int | None = None,
    sampling: Sampling | None = None,
    mitigation: Mitigation | None = None,
    jobs: JobPolicy | None = None,
    runtime: RuntimeOptions | None = None,
    budget: Budget | None = None,
    resume: bool = False,
    progress: bool = False,
    resolved=None,
) -> dict[str, Any]:
    """Tag ``data`` with a qk-lstm tagger ``checkpoint`` on ``backend``; compare with the exact executor
    (:func:`evaluate_on_backend`).

    Args:
        checkpoint: a ``model.pt`` written by ``qk-lstm train`` (a qk-lstm tagger).
        backend: ``aer``, ``aer-noisy:<fake>``, ``fake:<fake>``, ``ibm:<device>`` or ``ibm:least_busy``.
        data: ``"paper"``, a CoNLL-U path, or ``None`` (default): the checkpoint's validation
            split, else its training source (as the exact evaluation).
        out_dir: where ``metrics.json``, ``confusion.png`` and the job journal ``jobs.jsonl`` go (default
            :func:`default_eval_dir`).
        batch_size: sentences per batch, i.e. per job (default 32).
        max_sentences: tag only the first sentences of ``data`` (default all).
        sampling, mitigation, jobs, runtime, budget: the option groups (:mod:`~qk_lstm_qiskit.evaluation.options`;
            ``None`` for their defaults).
        resume: fetch the jobs recorded in ``out_dir/jobs.jsonl`` by id instead of resubmitting.
        progress: show a progress bar over batches.
        resolved: a ready :class:`~qk_lstm_qiskit.hardware.backends.ResolvedBackend` (tests, notebooks).

    Returns:
        What :func:`evaluate_on_backend` returns, with the tagging metrics (``accuracy``, ``exact_accuracy``,
        ``agreement``, ``macro_f1``, ``per_tag``, ``tokens``, …).

    Raises:
        ValueError: bad arguments, a non-qk-lstm checkpoint, data the vocabulary cannot encode.
        QKLSTMError: over budget, backend or job failures, an output folder with an old journal.
    """
    request = _request(backend, out_dir=None if out_dir is None else Path(out_dir), batch_size=batch_size,
                       max_items=max_sentences, data=data, sampling=sampling, mitigation=mitigation, jobs=jobs,
                       runtime=runtime, budget=budget, resume=resume, progress=progress)
    work, load = tagging_backend_work(checkpoint, request)
    return evaluate_on_backend(checkpoint, request, work, load=load, outputs=("confusion.png",), resolved=resolved)
