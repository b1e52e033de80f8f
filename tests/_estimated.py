"""The kernel-estimator run as ``qk-lstm evaluate --estimator`` makes it."""

from __future__ import annotations

from pathlib import Path

from qk_lstm_qiskit.cli.estimators import estimator_work
from qk_lstm_qiskit.evaluation.estimated import evaluate_estimated
from qk_lstm_qiskit.evaluation.options import Budget, EvaluationRequest, Mitigation, Sampling


def estimated(checkpoint, backend: str = "fake:manila", *, estimator: str = "tomography", shots: int = 256,
              out_dir=None, batch_size=None, max_qpu_seconds=None, dry_run=False, resume=False, calibration_shots=None,
              seed=0, job_overhead_seconds=None, resolved=None):
    """:func:`evaluate_estimated` of the checkpoint's task (``batch_size`` ``None``: every example in one batch)."""
    request = EvaluationRequest(
        backend=backend, out_dir=None if out_dir is None else Path(out_dir), batch_size=batch_size, resume=resume,
        sampling=Sampling(shots=shots, seed=seed), mitigation=Mitigation(calibration_shots=calibration_shots),
        budget=Budget(dry_run=dry_run, max_qpu_seconds=max_qpu_seconds, job_overhead_seconds=job_overhead_seconds))
    work, load = estimator_work(checkpoint, request)
    return evaluate_estimated(checkpoint, request, work, load=load, estimator=estimator, resolved=resolved)
