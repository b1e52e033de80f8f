"""Train in simulation, infer on hardware: score a trained checkpoint on any sampler backend, for any task.

:func:`evaluate_on_backend` is the one path every task's checkpoint takes to a backend
(:func:`~qk_lstm_qiskit.hardware.backends.resolve_backend`). A task describes its
:class:`BackendWork` (the examples' lengths, their batches, how a model runs a batch, how the
outputs are scored) and how its model is loaded; the path then

* estimates the cost first (:mod:`~qk_lstm_qiskit.hardware.cost`, batches as the work holds them)
  and refuses a run over ``Budget.max_qpu_seconds`` before any job or folder;
* runs every batch on the backend behind a :class:`~qk_lstm_qiskit.hardware.journal.JournaledSampler`
  (each time step of a batch is one job, or several above the device's circuits-per-job limit;
  batch ``i`` is journal stream ``batch-i`` and ``JobPolicy.parallel_batches`` run concurrently, so
  resume is order-free), readout-corrected by ``Mitigation`` (``m3``, ``marginal``:
  :mod:`~qk_lstm_qiskit.hardware.mitigation`, with a calibration measured first or reused) and with
  the kernels' fidelity ``Sampling.fidelity`` (default compute–uncompute), corrected for global depolarising
  noise by echo circuits in each job when ``Mitigation.depolarizing`` asks
  (:class:`~qk_lstm_qiskit.kernels.depolarizing.DepolarizingCorrectedFidelity`);
* runs the same batches on the exact executor and reports, next to the task's metrics of both,
  ``kernel_mean_abs_diff`` = mean ``|k_backend − k_exact|`` over every kernel value the backend
  computed (the exact value on the same inputs, i.e. along the backend's own hidden-state trajectory).

:func:`estimate_on_backend` is the estimate alone (nothing submitted). :func:`evaluate_checkpoint`
and :func:`estimate_checkpoint` are the tagging task's entries (sentences sorted by length before
batching, so a batch pads little: padded positions still cost circuits on the device).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from ..checkpoint import load_tagger
from ..data.tasks import EvaluationData, evaluation_data, evaluation_sentences
from ..hardware.backends import resolve_backend
from ..hardware.cost import (
    CalibrationCost, CostEstimate, DryRunSampler, JobLimits, active_rows, batch_shapes, check_budget,
    estimate_model_cost, isa_circuit, sampler_kernels,
)
from ..hardware.journal import JOURNAL_NAME, JournaledSampler
from ..hardware.mitigation import MITIGATIONS, MitigatedSampler, plan_mitigation, shots_for_target_error
from ..hardware.readout import DEFAULT_CALIBRATION_SHOTS
from ..kernels.active_rows import ActiveRowsFidelity
from ..kernels.depolarizing import DEFAULT_ECHOES, DEPOLARIZING_METHODS, DepolarizingCorrectedFidelity
from ..kernels.fidelity import FIDELITIES, Fidelity, Reference, make_fidelity
from ..kernels.kernel import QuantumKernel, exact_fidelity
from ..rundir import check_out_dir, claim_out_dir, write_json_atomic
from ..validation import check_choice, check_int
from .loop import TaggedTokens, sorted_batches, tag_batches, tagged_metrics
from .metrics import write_confusion_png
from .options import Budget, EvaluationRequest, JobPolicy, Mitigation, RuntimeOptions, Sampling
from .sampling import MetricInterval, accuracy_interval, sample_for_budget

__all__ = ["BackendWork", "default_eval_dir", "estimate_checkpoint", "estimate_on_backend", "evaluate_checkpoint",
           "evaluate_on_backend", "fit_budget", "interval_metrics", "journaled_samplers", "run_and_score",
           "tagging_backend_work"]

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 32
RESULTS_DIR = "results"  #: each finished job's result, replayed on resume (:class:`~qk_lstm_qiskit.hardware.journal.JournaledSampler`)
Loader = Callable[..., nn.Module]  #: ``load(sampler=None, pass_manager=None) → model`` of a checkpoint, in eval mode


@dataclass(frozen=True)
class BackendWork:
    """What a task sends to a sampler backend and how it scores what comes back.

    Attributes:
        batches: the examples in batches (sorted by length, so they pad little); batch ``i`` is journal stream
            ``batch-i`` and one job per time step.
        lengths: time steps of every example, in the task's order of examples (the estimate sorts them and
            batches them ``batch_size`` at a time, as :attr:`batches` holds them).
        batch_size: examples per batch.
        run: ``(model, batches) → outputs`` of a model over some batches (eval mode, no gradient).
        combine: the outputs of consecutive batches → one (``TaggedTokens.concatenate``, ``torch.cat``).
        score: ``(backend outputs, exact outputs, out_dir, title, exact_full) → metrics`` of the task (it may
            draw into ``out_dir``); for a sample (:attr:`select`) ``exact_full`` is the exact model's outputs on
            every example (``None`` otherwise) and the metrics add the sample's 95 % interval.
        source: what is evaluated (``metrics.json``'s ``data``).
        batch_lengths: a batch → its examples' time steps ``(N_b,)`` (padded steps send no circuit when the
            kernels skip them: :class:`~qk_lstm_qiskit.kernels.active_rows.ActiveRowsFidelity`).
        metric: the task's headline metric of a run's outputs (``run``'s return value): tagging token accuracy,
            classification sequence accuracy, forecasting test RMSE (series units; for several targets the mean over
            targets of RMSE / persistence RMSE). The shot planner scores estimators with it.
        metric_name: what :attr:`metric` is (``"accuracy"``, ``"test RMSE"``, ``"relative test RMSE"``).
        higher_is_better: ``True`` for accuracies, ``False`` for errors.
        select: sorted indices into :attr:`lengths` → the work on that sample of the examples (``None``: the
            task cannot sample; a budget too small for everything is then refused).
    """

    batches: Sequence[Any]
    lengths: Sequence[int]
    batch_size: int
    run: Callable[[nn.Module, Sequence[Any]], Any]
    combine: Callable[[list[Any]], Any]
    score: Callable[[Any, Any, Path, str, Any], dict[str, Any]]
    source: str
    batch_lengths: Callable[[Any], torch.Tensor]
    metric: Callable[[Any], float]
    metric_name: str
    higher_is_better: bool
    select: Callable[[Sequence[int]], "BackendWork"] | None = None

    @property
    def population(self) -> int:
        """The number of examples."""
        return len(self.lengths)


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


def _circuit_limit(rb, max_circuits_per_job: int | None) -> int | None:
    """``max_circuits_per_job``, else the device's ``max_circuits`` (``None``: no limit)."""
    if max_circuits_per_job is not None:
        return max_circuits_per_job
    limit = getattr(rb.device, "max_circuits", None)
    return limit if isinstance(limit, int) and limit > 0 else None


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
        jobs=JobLimits(_circuit_limit(resolved, request.jobs.max_circuits_per_job), request.jobs.parallel_batches),
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


class _KernelComparison:
    """Forward hooks on each device kernel's fidelity that compare its values with the exact kernel.

    The hook sits on the kernel's :class:`~qk_lstm_qiskit.kernels.fidelity.Fidelity` (inside an
    :class:`~qk_lstm_qiskit.kernels.active_rows.ActiveRowsFidelity`: on the one it wraps, so only the rows
    sent count), whose inputs are the angles ``ax`` ``(N, P)`` and the prepared reference side: the exact
    value ``|<ψ(ay_m)|ψ(ax_n)>|²`` comes from the map's exact fidelity on the same angles.
    """

    def __init__(self, kernels: list) -> None:
        self._by_batch: dict[int, list[torch.Tensor]] = {}  # batch index → diffs in call order
        self._local = threading.local()
        sent = [k.fidelity.inner if isinstance(k.fidelity, ActiveRowsFidelity) else k.fidelity for k in kernels]
        self.handles = [f.register_forward_hook(self._hook(exact_fidelity(k.feature_map))) for f, k in zip(sent, kernels)]

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


def _run_concurrently(model: nn.Module, work: BackendWork, sampler: JournaledSampler, comparison: _KernelComparison, *,
                      workers: int, bar) -> Any:
    """``work.run`` per batch, ``workers`` at a time in threads; batch ``i`` is journal stream ``batch-i``.

    On an interrupt or failure the journaled sampler is stopped (no thread submits another job),
    running batches finish their current wait, and the exception is re-raised.
    """
    batches = work.batches
    skipping = [m for m in model.modules() if isinstance(m, ActiveRowsFidelity)]

    def one(i: int) -> Any:
        with ExitStack() as rows, sampler.stream(f"batch-{i}"), comparison.batch(i):
            for fidelity in skipping:  # each kernel sends, at step t, only the examples still running
                rows.enter_context(fidelity.schedule(work.batch_lengths(batches[i])))
            out = work.run(model, [batches[i]])
        bar.update(1)
        return out

    model.eval()  # the runs restore the mode they find: keep it eval in every thread
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
    return work.combine(parts)


def journaled_samplers(rb, out: Path, *, mitigation: Mitigation, jobs: JobPolicy, resume: bool):
    """``(journal path, journaled sampler, the kernels' sampler)`` of an evaluation writing to ``out``: every
    job recorded in the journal and its result kept in ``out/results`` (on ``resume`` a finished job is replayed
    from there, an unfinished one fetched again by id from IBM, or rerun on a local backend whose jobs died with
    their process), readout-mitigated unless ``mitigation.method`` is ``none``."""
    journal_path = out / JOURNAL_NAME
    sampler = kernel_sampler = JournaledSampler(
        rb.sampler, journal_path, service=rb.service, resume=resume, results_dir=out / RESULTS_DIR,
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


def fit_budget(work: BackendWork, estimate, cost: Callable[[Sequence[int]], Any],
               budget: Budget) -> tuple[BackendWork, Any, list[int] | None]:
    """``(work, its estimate, None)`` when the ``estimate`` (anything with ``qpu_seconds``) fits
    ``budget.max_qpu_seconds`` (or there is no budget, or no QPU time to count); else, if the task can sample,
    the largest seeded random sample of its examples that fits (:func:`~qk_lstm_qiskit.evaluation.sampling.sample_for_budget`,
    seed ``budget.sample_seed``), its estimate and the chosen indices. When not even one example fits, ``work``
    is returned unchanged for the caller to refuse. ``cost``: example lengths → estimate."""
    limit = budget.max_qpu_seconds
    if limit is None or estimate.qpu_seconds is None or estimate.qpu_seconds <= limit or work.select is None:
        return work, estimate, None
    lengths = work.lengths
    chosen = sample_for_budget(work.population, lambda idx: cost([lengths[i] for i in idx]).qpu_seconds or 0.0, limit,
                               seed=budget.sample_seed)
    if not chosen:
        return work, estimate, None
    sample = work.select(chosen)
    logger.info("evaluate: %d of %d examples fit max_qpu_seconds=%g (sample seed %d)", sample.population,
                work.population, limit, budget.sample_seed)
    return sample, cost(sample.lengths), chosen


def run_and_score(model: nn.Module, load: Loader, work: BackendWork, full: BackendWork, sampler: JournaledSampler, *,
                  out: Path, title: str, workers: int = 1, progress: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(the task's scores, the kernel differences)`` of running ``work`` with the backend ``model`` (batch ``i``
    as journal stream ``batch-i``, ``workers`` batches at a time, padded rows skipped) and with the exact model
    (``load()``) on the same batches; when ``work`` is a sample of ``full``, the exact model on every example too."""
    exact_model = load()
    exact = work.run(exact_model, work.batches)
    exact_full = None if work is full else full.run(exact_model, full.batches)
    comparison = _KernelComparison(sampler_kernels(model))
    try:
        bar = tqdm(total=len(work.batches), desc=f"evaluate {title}", unit="batch", disable=not progress,
                   dynamic_ncols=True)
        on_backend = _run_concurrently(model, work, sampler, comparison, workers=workers, bar=bar)
    finally:
        comparison.remove()
    return work.score(on_backend, exact, out, title, exact_full), comparison.summary()


def interval_metrics(interval: MetricInterval, exact_full: float) -> dict[str, Any]:
    """What a sampled evaluation adds to its metric: the 95 % interval, its standard error and the exact model's
    value on every example (``exact_full``), inside the interval or not."""
    return {"interval_95": [interval.low, interval.high], "standard_error": interval.standard_error,
            "exact_full": exact_full, "exact_full_inside_interval": interval.covers(exact_full)}


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
