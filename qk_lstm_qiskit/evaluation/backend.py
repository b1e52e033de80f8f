"""Train in simulation, infer on hardware: tag data with a trained checkpoint on any backend.

:func:`evaluate_checkpoint` loads ``model.pt`` twice, once on the exact executor and once with
its kernels on a backend (:func:`~qk_lstm_qiskit.hardware.backends.resolve_backend`) behind a
:class:`~qk_lstm_qiskit.hardware.journal.JournaledSampler`, estimates the cost first
(:mod:`~qk_lstm_qiskit.hardware.cost`), refuses a run over the QPU budget, then reports

* ``accuracy`` on the backend next to ``exact_accuracy`` of the same checkpoint, and
  ``agreement`` (share of tokens tagged the same by both);
* ``kernel_mean_abs_diff`` = mean ``|k_backend − k_exact|`` over every kernel value the backend
  computed (the exact value is taken on the same inputs, i.e. along the backend's own hidden
  state trajectory), and its maximum.

Sentences are sorted by length before batching (stable), so a batch pads little: padding
positions still cost circuits on the device. Each time step of a batch is one job (or several,
above the device's circuits-per-job limit); ``parallel_batches`` batches run concurrently
(threads; the journal numbers each batch's calls on its own, so resume is order-free).
Options come in groups (:mod:`~qk_lstm_qiskit.evaluation.options`): ``Mitigation`` (``none``,
``m3``, ``marginal``: :mod:`~qk_lstm_qiskit.hardware.mitigation`) corrects readout with a
calibration measured first (or reused from ``calibration_dir``); ``Sampling.target_error`` picks the
shots per circuit; ``JobPolicy``, ``RuntimeOptions`` and ``Budget`` say how jobs run and what they may cost.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Sequence

import torch

from tqdm.auto import tqdm

from ..checkpoint import load_tagger
from ..data.tasks import evaluation_data, evaluation_sentences
from ..hardware.backends import resolve_backend
from ..hardware.cost import (
    CalibrationCost, DryRunSampler, JobLimits, batch_shapes, check_budget, estimate_model_cost, isa_circuit,
    sampler_kernels,
)
from ..hardware.journal import JOURNAL_NAME, JournaledSampler
from ..hardware.mitigation import MITIGATIONS, MitigatedSampler, plan_mitigation, shots_for_target_error
from ..hardware.readout import DEFAULT_CALIBRATION_SHOTS
from ..kernels.fidelity import FIDELITIES, Fidelity, Reference
from ..kernels.kernel import exact_fidelity
from ..rundir import check_out_dir, claim_out_dir, write_json_atomic
from ..validation import check_choice, check_int
from .loop import TaggedTokens, evaluate_tagger, sorted_batches, tag_batches
from .options import Budget, JobPolicy, Mitigation, RuntimeOptions, Sampling
from .metrics import write_confusion_png

__all__ = ["estimate_checkpoint", "evaluate_checkpoint", "default_eval_dir"]

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 32
OUTPUT_FILES = ("metrics.json", "confusion.png")


def default_eval_dir(checkpoint: str | Path, backend: str) -> Path:
    """``<checkpoint folder>/eval-<backend>`` with ``:`` replaced (``runs/paper/eval-fake-manila``)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in backend)
    checkpoint = Path(checkpoint)
    return (checkpoint if checkpoint.is_dir() else checkpoint.resolve().parent) / f"eval-{safe}"


def _check_fidelity(command: str, fidelity: str | None) -> None:
    if fidelity is not None:
        check_choice(command, "sampling.fidelity", fidelity, tuple(FIDELITIES))


def _load_qk_tagger(checkpoint: str | Path, sampler=None, pass_manager=None, fidelity: str | None = None):
    model, words, tags, config = load_tagger(checkpoint, sampler=sampler, pass_manager=pass_manager, fidelity=fidelity)
    if config.model.kind != "qk-lstm":
        raise ValueError(f"evaluate: expected a qk-lstm checkpoint, got model kind {config.model.kind!r} in {checkpoint}")
    return model, words, tags, config


def _plan(model, rb, mitigation: str, *, shots: int | None, target_error: float | None, calibration_shots: int,
          cache_dir, any_date: bool):
    """The mitigation plan on the kernels' ISA circuit and the shots per circuit (from ``target_error``)."""
    plan = plan_mitigation(mitigation, isa_circuit(model), rb.device, calibration_shots=calibration_shots,
                           cache_dir=cache_dir, backend_name=rb.device_name, any_date=any_date)
    if target_error is not None:
        shots = shots_for_target_error(target_error, plan.variance_factor)
    return plan, shots


def _circuit_limit(rb, max_circuits_per_job: int | None) -> int | None:
    """``max_circuits_per_job``, else the device's ``max_circuits`` (``None``: no limit)."""
    if max_circuits_per_job is not None:
        return max_circuits_per_job
    limit = getattr(rb.device, "max_circuits", None)
    return limit if isinstance(limit, int) and limit > 0 else None


def _estimate(model, config, resolved, lengths: Sequence[int], batch_size: int, *, training: bool, epochs: int,
              shots: int, plan, sampling: Sampling, jobs: JobPolicy, budget: Budget):
    """The cost of ``model`` over sentences of ``lengths`` batched as the evaluation batches them (by length),
    at ``shots`` per circuit with the mitigation ``plan``."""
    calibration = CalibrationCost() if plan is None else CalibrationCost(
        plan.method, plan.calibration_circuits, plan.calibration_shots, plan.calibration_circuit, plan.variance_factor)
    return estimate_model_cost(
        model, batch_shapes(sorted(lengths), batch_size), resolved, training=training, epochs=epochs,
        job_overhead_seconds=budget.job_overhead_seconds, shots=shots, target_error=sampling.target_error,
        jobs=JobLimits(_circuit_limit(resolved, jobs.max_circuits_per_job), jobs.parallel_batches),
        calibration=calibration,
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
):
    """:class:`~qk_lstm_qiskit.hardware.cost.CostEstimate` of tagging (or training on) ``data`` with a checkpoint's model.

    Only sentence lengths are read from ``data`` (default as :func:`evaluate_checkpoint`), so any
    CoNLL-U file works with any checkpoint. Nothing is submitted: the model is built on a
    :class:`~qk_lstm_qiskit.hardware.cost.DryRunSampler` with the backend's pass manager. The
    option groups are those of :func:`evaluate_checkpoint` (``budget``: its ``job_overhead_seconds``;
    ``None``: the defaults).
    """
    check_int("estimate", "batch_size", batch_size, 1)
    sampling, mitigation, jobs, budget = sampling or Sampling(), mitigation or Mitigation(), jobs or JobPolicy(), budget or Budget()
    _check_fidelity("estimate", sampling.fidelity)
    rb = resolved or resolve_backend(backend, shots=sampling.shots, seed=sampling.seed,
                                     optimization_level=sampling.optimization_level)
    if rb.sampler is None:
        raise ValueError(f"estimate: expected a sampler backend (aer, aer-noisy:, fake:, ibm:), got {rb.name!r}")
    model, _, _, config = _load_qk_tagger(checkpoint, DryRunSampler(), rb.pass_manager, sampling.fidelity)
    sentences, _ = evaluation_sentences(data, config.data, max_sentences=max_sentences)
    plan, shots = _plan(model, rb, mitigation.method, shots=rb.shots, target_error=sampling.target_error,
                        calibration_shots=mitigation.calibration_shots or DEFAULT_CALIBRATION_SHOTS,
                        cache_dir=mitigation.calibration_dir, any_date=False)
    return _estimate(model, config, rb, [len(ws) for ws, _ in sentences], batch_size, training=training,
                     epochs=epochs, shots=shots, plan=plan, sampling=sampling, jobs=jobs, budget=budget)


class _KernelComparison:
    """Forward hooks on each device kernel's fidelity that compare its values with the exact kernel.

    The hook sits on the kernel's :class:`~qk_lstm_qiskit.kernels.fidelity.Fidelity`, whose inputs are
    the angles ``ax`` ``(N, P)`` and the prepared reference side: the exact value
    ``|<ψ(ay_m)|ψ(ax_n)>|²`` comes from the map's exact fidelity on the same angles.
    """

    def __init__(self, kernels: list) -> None:
        self._by_batch: dict[int, list[torch.Tensor]] = {}  # batch index → diffs in call order
        self._local = threading.local()
        self.handles = [k.fidelity.register_forward_hook(self._hook(exact_fidelity(k.feature_map))) for k in kernels]

    @contextmanager
    def batch(self, index: int):
        """Attribute this thread's kernel values to batch ``index`` (batches may run concurrently)."""
        self._local.batch = index
        try:
            yield
        finally:
            self._local.batch = None

    @property
    def diffs(self) -> list[torch.Tensor]:
        return [d for i in sorted(self._by_batch) for d in self._by_batch[i]]

    def _hook(self, exact: Fidelity):
        def hook(module, inputs, output):
            ax, reference = inputs
            with torch.no_grad():
                angles = reference.angles if isinstance(reference, Reference) else reference
                exact_values = exact(ax.detach(), angles.detach().to(ax.dtype))  # (N, M)
                diff = (output.detach().double() - exact_values.double()).flatten()  # signed
            self._by_batch.setdefault(getattr(self._local, "batch", None) or 0, []).append(diff)

        return hook

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()

    def summary(self) -> dict[str, float | int]:
        diffs = self.diffs
        values = torch.cat(diffs) if diffs else torch.zeros(1, dtype=torch.float64)
        return {
            "kernel_mean_abs_diff": float(values.abs().mean()),  # mean |k_backend − k_exact|
            "kernel_max_abs_diff": float(values.abs().max()),
            "kernel_mean_diff": float(values.mean()),  # signed: noise bias (device noise pulls k towards 2**-n)
            "kernel_values": sum(int(d.numel()) for d in diffs),
        }


def _tag_concurrently(model, batches, sampler: JournaledSampler, comparison: _KernelComparison, *, workers: int,
                      bar) -> TaggedTokens:
    """:func:`tag_batches` per batch, ``workers`` at a time in threads; batch ``i`` is journal stream ``batch-i``.

    On an interrupt or failure the journaled sampler is stopped (no thread submits another job),
    running batches finish their current wait, and the exception is re-raised.
    """

    def one(i: int) -> TaggedTokens:
        with sampler.stream(f"batch-{i}"), comparison.batch(i):
            tagged = tag_batches(model, [batches[i]])
        bar.update(1)
        return tagged

    model.eval()  # tag_batches restores the mode it finds: keep it eval in every thread
    if workers == 1:
        parts = [one(i) for i in range(len(batches))]
    else:
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="qk-batch")
        futures = [pool.submit(one, i) for i in range(len(batches))]
        try:
            parts = [f.result() for f in futures]
        except BaseException:
            sampler.stop()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
    bar.close()
    return TaggedTokens.concatenate(parts)


def _prepare_out_dir(out_dir: Path, *, resume: bool, local_jobs: bool) -> Path:
    """The journal path in the claimed ``out_dir``; with ``resume`` on a local backend the old
    journal is set aside (local jobs cannot be fetched by id)."""
    journal = out_dir / JOURNAL_NAME
    if resume and local_jobs:
        kept = journal.with_name(f"jobs.{time.strftime('%Y%m%d-%H%M%S')}.jsonl")
        shutil.move(journal, kept)
        logger.warning("evaluate: local and simulator jobs cannot be fetched again; rerunning them (old journal: %s)", kept)
    return journal


def _journaled_samplers(rb, out: Path, *, mitigation: Mitigation, jobs: JobPolicy, resume: bool):
    """``(journal path, journaled sampler, the kernels' sampler)`` of an evaluation writing to ``out``: every
    job recorded in the journal (fetched again by id on ``resume``), readout-mitigated unless ``mitigation.method``
    is ``none`` (``mitigation``'s calibration shots and folder given)."""
    local_jobs = rb.service is None
    journal_path = _prepare_out_dir(out, resume=resume, local_jobs=local_jobs)
    sampler = kernel_sampler = JournaledSampler(
        rb.sampler, journal_path, service=rb.service, resume=resume and not local_jobs,
        backend_name=rb.device_name or rb.name, max_retries=jobs.max_retries, backoff_seconds=jobs.backoff_seconds,
        timeout_seconds=jobs.timeout_seconds, max_circuits_per_job=_circuit_limit(rb, jobs.max_circuits_per_job),
    )
    if mitigation.method != "none":
        kernel_sampler = MitigatedSampler(
            sampler, mitigation.method, device=rb.device,
            calibration_shots=mitigation.calibration_shots or DEFAULT_CALIBRATION_SHOTS,
            cache_dir=mitigation.calibration_dir, backend_name=rb.device_name, any_date=resume,
        )
    return journal_path, sampler, kernel_sampler


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
    """Tag ``data`` with ``checkpoint`` on ``backend``; compare with the exact executor.

    Args:
        checkpoint: a ``model.pt`` written by ``qk-lstm train`` (a qk-lstm tagger).
        backend: ``aer``, ``aer-noisy:<fake>``, ``fake:<fake>``, ``ibm:<device>`` or ``ibm:least_busy``.
        data: ``"paper"``, a CoNLL-U path, or ``None`` (default): the checkpoint's validation
            split, else its training source (as the exact evaluation).
        out_dir: where ``metrics.json`` and the job journal ``jobs.jsonl`` go (default
            :func:`default_eval_dir`).
        batch_size: sentences per batch, i.e. per job (default 32).
        max_sentences: tag only the first sentences of ``data`` (default all).
        sampling: shots per circuit (or ``target_error``), seed, optimization level (:class:`Sampling`;
            this and every option group: ``None`` for its defaults).
        mitigation: readout mitigation and its calibration (:class:`Mitigation`).
        jobs: retries, time-outs, job splitting, parallel batches (:class:`JobPolicy`).
        runtime: execution mode, dynamical decoupling, twirling, … for
            :func:`~qk_lstm_qiskit.hardware.backends.resolve_backend` (:class:`RuntimeOptions`).
        budget: dry run (the estimate only; nothing submitted or written), the QPU-second limit
            and the estimate's per-job overhead (:class:`Budget`).
        resume: fetch the jobs recorded in ``out_dir/jobs.jsonl`` by id instead of resubmitting.
        progress: show a progress bar over batches.
        resolved: a ready :class:`~qk_lstm_qiskit.hardware.backends.ResolvedBackend` (tests,
            notebooks); overrides ``backend``, ``sampling.seed``/``optimization_level`` and ``runtime``.

    Returns:
        The metrics (also written to ``out_dir/metrics.json`` unless ``budget.dry_run``): ``accuracy``,
        ``exact_accuracy``, ``agreement``, ``backend``, ``device``, ``shots``, kernel differences,
        job counts, the ``estimate`` and ``seconds``; plus ``out_dir`` and ``estimate_summary``
        (the printable estimate with its formula).

    Raises:
        ValueError: bad arguments, a non-qk-lstm checkpoint, data the vocabulary cannot encode.
        QKLSTMError: over budget, backend or job failures, an output folder with an old journal.
    """
    sampling, mitigation, jobs = sampling or Sampling(), mitigation or Mitigation(), jobs or JobPolicy()
    runtime, budget = runtime or RuntimeOptions(), budget or Budget()
    shots, seed, target_error = sampling.shots, sampling.seed, sampling.target_error
    calibration_dir, parallel_batches, dry_run = mitigation.calibration_dir, jobs.parallel_batches, budget.dry_run
    check_int("evaluate", "batch_size", batch_size, 1)
    check_int("evaluate", "parallel_batches", parallel_batches, 1)
    calibration_shots = mitigation.calibration_shots
    calibration_shots = DEFAULT_CALIBRATION_SHOTS if calibration_shots is None else calibration_shots
    check_int("evaluate", "calibration_shots", calibration_shots, 1)
    start = time.perf_counter()
    rb = resolved or resolve_backend(
        backend, shots=shots, seed=seed, optimization_level=sampling.optimization_level, **runtime.backend_options()
    )
    if rb.sampler is None:
        raise ValueError(f"evaluate: expected a sampler backend (aer, aer-noisy:, fake:, ibm:), got {rb.name!r}")
    method = mitigation.method
    check_choice("evaluate", "mitigation", method, MITIGATIONS)
    _check_fidelity("evaluate", sampling.fidelity)
    if method != "none" and rb.device is None:
        raise ValueError(f"evaluate: expected a device backend (aer-noisy:, fake:, ibm:) for mitigation "
                         f"{method!r}, got {rb.name!r}")
    if parallel_batches > 1 and rb.kind == "ibm" and rb.mode == "job":
        logger.warning("evaluate: %d parallel batches in job mode; --mode batch groups their jobs in a Runtime batch",
                       parallel_batches)
    out = Path(out_dir) if out_dir is not None else default_eval_dir(checkpoint, rb.name)
    cache_dir = Path(calibration_dir) if calibration_dir is not None else out
    outputs = (JOURNAL_NAME, *OUTPUT_FILES)
    with ExitStack() as stack:
        stack.enter_context(rb)
        if not dry_run:  # every refusal before a folder is made or a job (calibration included) submitted
            check_out_dir(out, command="evaluate", outputs=outputs, resume=resume, resume_from=JOURNAL_NAME)
            if method != "none" and calibration_dir is not None:
                check_out_dir(cache_dir, command="evaluate", outputs=(), flag="--calibration-dir")
            stack.enter_context(claim_out_dir(out, command="evaluate", outputs=outputs, resume=resume,
                                              resume_from=JOURNAL_NAME))
        exact_model, words, tags, config = _load_qk_tagger(checkpoint)
        eval_data = evaluation_data(data, config.data, words, tags, max_sentences=max_sentences)
        batches = sorted_batches(eval_data, batch_size, words.pad_index or 0)
        journal_path, sampler, kernel_sampler = (None, rb.sampler, rb.sampler) if dry_run else _journaled_samplers(
            rb, out, mitigation=Mitigation(method, calibration_shots, cache_dir), jobs=jobs, resume=resume)
        model, _, _, _ = _load_qk_tagger(checkpoint, kernel_sampler, rb.pass_manager, sampling.fidelity)
        plan, shots = _plan(model, rb, method, shots=rb.shots, target_error=target_error,
                            calibration_shots=calibration_shots, cache_dir=cache_dir, any_date=resume)
        if not dry_run:
            sampler.shots = shots
        estimate = _estimate(model, config, rb, eval_data.lengths, batch_size, training=False, epochs=1,
                             shots=shots, plan=plan, sampling=sampling, jobs=jobs, budget=budget)
        logger.info("evaluate: estimate\n%s", estimate.summary())
        if dry_run:
            return {"backend": rb.name, "device": rb.device_name, "shots": shots, "dry_run": True,
                    "mitigation": method, "estimate": estimate.to_dict(), "estimate_summary": estimate.summary()}
        check_budget(estimate, budget.max_qpu_seconds)

        calibration = None
        if plan.method != "none":
            with sampler.stream("calibration"):
                calibration = kernel_sampler.calibrate(plan.qubits)
        exact = tag_batches(exact_model, batches)
        comparison = _KernelComparison(sampler_kernels(model))
        try:
            bar = tqdm(total=len(batches), desc=f"evaluate on {rb.name}", unit="batch", disable=not progress,
                       dynamic_ncols=True)
            tag = lambda model, batches: _tag_concurrently(  # noqa: E731
                model, batches, sampler, comparison, workers=parallel_batches, bar=bar)
            result, tagged = evaluate_tagger(model, eval_data, words, tags, batches=batches, tag=tag)
        finally:
            comparison.remove()
        metrics = {
            **result.metrics,  # accuracy, loss, macro_f1, per_tag, labels, confusion_matrix, tokens, …
            "exact_accuracy": exact.accuracy,
            "agreement": float((tagged.predictions == exact.predictions).double().mean()),
            **comparison.summary(),
            **rb.info(),
            "shots": shots,
            "target_error": target_error,
            "kernel_standard_error": estimate.kernel_standard_error,
            "mitigation": method,
            "calibration": None if calibration is None else {
                **calibration.to_dict(), "paid": kernel_sampler.calibrations_run > 0,
            },
            "parallel_batches": parallel_batches,
            "seed": seed,
            "checkpoint": str(checkpoint),
            "data": eval_data.source,
            "batch_size": batch_size,
            "batches": len(batches),
            "jobs_submitted": sampler.submitted,
            "jobs_resumed": sampler.fetched,
            "journal": str(journal_path),
            "estimate": estimate.to_dict(),
            "seconds": time.perf_counter() - start,
        }
        write_confusion_png(result, out, f"{config.model.kind} on {rb.name} ({shots} shots)")
        write_json_atomic(metrics, out / "metrics.json")
        logger.info("evaluate: accuracy %.4f on %s, exact %.4f; mean |k - k_exact| %.4f over %d kernel values",
                    metrics["accuracy"], rb.name, metrics["exact_accuracy"], metrics["kernel_mean_abs_diff"],
                    metrics["kernel_values"])
    return {**metrics, "out_dir": str(out), "estimate_summary": estimate.summary()}
