"""How a :class:`~qk_lstm_qiskit.evaluation.work.BackendWork` runs on a backend: the journaled sampler, one journal
stream per batch, padded rows skipped, every kernel value compared with the exact kernel, the exact model alongside.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from ..hardware.cost import sampler_kernels
from ..hardware.journal import JOURNAL_NAME, JournaledSampler
from ..hardware.mitigation import MitigatedSampler
from ..hardware.readout import DEFAULT_CALIBRATION_SHOTS
from ..kernels.active_rows import ActiveRowsFidelity
from ..kernels.fidelity import Fidelity, Reference
from ..kernels.kernel import exact_fidelity
from .options import JobPolicy, Mitigation
from .work import BackendWork, Loader

__all__ = ["KernelComparison", "RESULTS_DIR", "circuit_limit", "journaled_samplers", "run_and_score"]

RESULTS_DIR = "results"  #: each finished job's result, replayed on resume (:class:`~qk_lstm_qiskit.hardware.journal.JournaledSampler`)


def circuit_limit(rb, max_circuits_per_job: int | None) -> int | None:
    """``max_circuits_per_job``, else the device's ``max_circuits`` (``None``: no limit)."""
    if max_circuits_per_job is not None:
        return max_circuits_per_job
    limit = getattr(rb.device, "max_circuits", None)
    return limit if isinstance(limit, int) and limit > 0 else None


class KernelComparison:
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


def _run_concurrently(model: nn.Module, work: BackendWork, sampler: JournaledSampler, comparison: KernelComparison, *,
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
        timeout_seconds=jobs.timeout_seconds, max_circuits_per_job=circuit_limit(rb, jobs.max_circuits_per_job),
    )
    if mitigation.method != "none":
        kernel_sampler = MitigatedSampler(
            sampler, mitigation.method, device=rb.device,
            calibration_shots=mitigation.calibration_shots or DEFAULT_CALIBRATION_SHOTS,
            cache_dir=mitigation.calibration_dir, backend_name=rb.device_name, any_date=resume,
        )
    return journal_path, sampler, kernel_sampler


def run_and_score(model: nn.Module, load: Loader, work: BackendWork, full: BackendWork, sampler: JournaledSampler, *,
                  out: Path, title: str, workers: int = 1, progress: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(the task's scores, the kernel differences)`` of running ``work`` with the backend ``model`` (batch ``i``
    as journal stream ``batch-i``, ``workers`` batches at a time, padded rows skipped) and with the exact model
    (``load()``) on the same batches; when ``work`` is a sample of ``full``, the exact model on every example too."""
    exact_model = load()
    exact = work.run(exact_model, work.batches)
    exact_full = None if work is full else full.run(exact_model, full.batches)
    comparison = KernelComparison(sampler_kernels(model))
    try:
        bar = tqdm(total=len(work.batches), desc=f"evaluate {title}", unit="batch", disable=not progress,
                   dynamic_ncols=True)
        on_backend = _run_concurrently(model, work, sampler, comparison, workers=workers, bar=bar)
    finally:
        comparison.remove()
    return work.score(on_backend, exact, out, title, exact_full), comparison.summary()
