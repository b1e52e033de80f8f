"""``qk-lstm evaluate`` and ``qk-lstm estimate``: infer on hardware, count the cost first.

Registered into the main parser by :func:`add_commands`; the logic lives in
:mod:`qk_lstm_qiskit.evaluation` (exact: `evaluation.exact`, sampler backends: `evaluation.backend`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..hardware.mitigation import MITIGATIONS

__all__ = ["add_commands"]


def _add_backend_args(parser: argparse.ArgumentParser, default_backend: str = "fake:manila") -> None:
    parser.add_argument("--checkpoint", required=True,
                        help="model.pt written by qk-lstm train (a qk-lstm tagger; any model kind with --backend exact)")
    parser.add_argument(
        "--backend", default=default_backend,
        help=("exact (torch statevectors, any model kind), " if default_backend == "exact" else "")
        + "aer, aer-noisy:<fake>, fake:<fake> (local testing mode), ibm:<device> or ibm:least_busy "
        f"(default {default_backend}); IBM credentials from QISKIT_IBM_TOKEN/QISKIT_IBM_INSTANCE or the saved account",
    )
    parser.add_argument("--shots", type=int, default=4096, help="shots per circuit (default 4096)")
    parser.add_argument("--data", help="'paper' or a CoNLL-U file (default: the checkpoint's validation split, "
                        "else its training data)")
    parser.add_argument("--batch-size", type=int, default=32, help="sentences per batch = per job (default 32)")
    parser.add_argument("--max-sentences", type=int, help="only the first N sentences of --data")
    parser.add_argument("--optimization-level", type=int, default=2, choices=(0, 1, 2, 3),
                        help="preset pass manager level (default 2: noise-aware layout; level 1 keeps a fitting trivial layout)")
    parser.add_argument("--seed", type=int, default=0, help="simulator and transpiler seed (default 0)")
    parser.add_argument("--job-overhead", type=float, help="per-job QPU overhead of the estimate, s (default 3)")
    parser.add_argument("--mitigation", default="none", choices=MITIGATIONS,
                        help="readout mitigation: none (P(0…0) frequency, default), m3 (mthree), marginal (product of "
                        "corrected per-qubit marginals; product kernels only); calibration is counted in the estimate")
    parser.add_argument("--calibration-shots", type=int, help="readout calibration: preparations per state and qubit "
                        "(default 10000)")
    parser.add_argument("--calibration-dir", help="reuse/cache readout calibrations here (default: --out)")
    parser.add_argument("--target-error", type=float, help="pick shots per circuit for this kernel standard error "
                        "(binomial bound times the mitigation's variance factor; overrides --shots)")
    parser.add_argument("--parallel-batches", type=int, default=1, help="sentence batches in flight at once "
                        "(default 1; with --mode batch on IBM devices)")
    parser.add_argument("--max-circuits-per-job", type=int, help="split larger jobs (default: the device's limit)")


def _hardware_options(args: argparse.Namespace) -> dict:
    return {"mitigation": args.mitigation, "calibration_shots": args.calibration_shots,
            "calibration_dir": args.calibration_dir, "target_error": args.target_error,
            "parallel_batches": args.parallel_batches, "max_circuits_per_job": args.max_circuits_per_job}


def _cmd_evaluate_exact(args: argparse.Namespace) -> int:
    """``--backend exact``: any model kind, torch executor; metrics.json + confusion.png (evaluation.py)."""
    from ..evaluation.backend import default_eval_dir
    from ..evaluation.exact import evaluate_exact

    for flag, given in (("--dry-run", args.dry_run), ("--resume", args.resume), ("--mitigation", args.mitigation != "none"),
                        ("--target-error", args.target_error is not None)):
        if given:
            raise ValueError(f"evaluate: expected {flag} only with a sampler backend, got --backend exact")
    out = args.out or default_eval_dir(args.checkpoint, "exact")
    metrics = evaluate_exact(
        args.checkpoint, out, data=args.data, batch_size=args.batch_size, max_sentences=args.max_sentences
    )
    print(f"accuracy (exact): {metrics['accuracy']:.4f} on {metrics['tokens']} tokens of {metrics['data']}   "
          f"macro F1: {metrics['macro_f1']:.4f}")
    if metrics.get("accuracy_unknown_words") is not None:
        print(f"unknown words: {metrics['unknown_word_rate']:.2%} of tokens, accuracy {metrics['accuracy_unknown_words']:.4f}")
    print(f"outputs: {out}/metrics.json, {out}/confusion.png")
    return 0


def _cmd_evaluate_forecast(args: argparse.Namespace, checkpoint: Path) -> int:
    """A forecasting run's ``model.pt``: test RMSE/MAE exact and, on a sampler backend, there too."""
    from ..evaluation.backend import default_eval_dir
    from ..evaluation.forecast import evaluate_forecast

    unsupported = (("--data", args.data), ("--max-sentences", args.max_sentences), ("--dry-run", args.dry_run),
                   ("--resume", args.resume), ("--max-qpu-seconds", args.max_qpu_seconds), ("--dd", args.dd),
                   ("--twirl-gates", args.twirl_gates), ("--twirl-measure", args.twirl_measure),
                   ("--max-execution-time", args.max_execution_time), ("--mode", args.mode != "job" and args.mode),
                   ("--mitigation", args.mitigation != "none" and args.mitigation),
                   ("--calibration-shots", args.calibration_shots), ("--calibration-dir", args.calibration_dir),
                   ("--target-error", args.target_error), ("--parallel-batches", args.parallel_batches != 1 and args.parallel_batches),
                   ("--max-circuits-per-job", args.max_circuits_per_job))
    for flag, given in unsupported:  # the series comes from the checkpoint's config; no journal or cost estimate yet
        if given:
            raise ValueError(f"evaluate: expected no {flag} with a forecast checkpoint (supported: --backend, --shots, "
                             f"--seed, --optimization-level, --out), got {flag} {given}")
    out = args.out or default_eval_dir(checkpoint, args.backend)
    metrics = evaluate_forecast(checkpoint, out, backend=args.backend, shots=args.shots, seed=args.seed,
                                optimization_level=args.optimization_level)
    if args.backend != "exact":
        print(f"on {args.backend} ({args.shots} shots): test RMSE {metrics['test_rmse']:.4g}  MAE {metrics['test_mae']:.4g}  "
              f"(exact {metrics['exact_test_rmse']:.4g}; RMSE backend vs exact {metrics['backend_rmse_vs_exact']:.4g})")
    else:
        print(f"exact: test RMSE {metrics['test_rmse']:.4g}  MAE {metrics['test_mae']:.4g}")
    print(f"persistence: RMSE {metrics['persistence_rmse']:.4g}  MAE {metrics['persistence_mae']:.4g} "
          f"on {metrics['test_windows']} test windows of {metrics['data']}")
    print(f"outputs: {out}/metrics.json, {out}/forecast.png")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from ..checkpoint import is_forecast_checkpoint
    from ..evaluation.backend import evaluate_checkpoint

    checkpoint = Path(args.checkpoint)
    checkpoint = checkpoint / "model.pt" if checkpoint.is_dir() else checkpoint
    if is_forecast_checkpoint(checkpoint):
        return _cmd_evaluate_forecast(args, checkpoint)
    if args.backend == "exact":
        return _cmd_evaluate_exact(args)
    options = {
        "dynamical_decoupling": args.dd, "twirl_gates": args.twirl_gates, "twirl_measure": args.twirl_measure,
        "max_execution_time": args.max_execution_time,
    }
    try:
        metrics = evaluate_checkpoint(
            args.checkpoint, args.backend, shots=args.shots, data=args.data, out_dir=args.out,
            batch_size=args.batch_size, max_sentences=args.max_sentences, seed=args.seed,
            optimization_level=args.optimization_level, mode=args.mode, dry_run=args.dry_run,
            max_qpu_seconds=args.max_qpu_seconds, resume=args.resume, max_retries=args.max_retries,
            timeout_seconds=args.timeout, job_overhead_seconds=args.job_overhead, progress=not args.no_progress,
            **_hardware_options(args), **options,
        )
    except KeyboardInterrupt:
        print("qk-lstm evaluate: interrupted; submitted job ids are in the journal jobs.jsonl "
              "(rerun with --resume to fetch them)", file=sys.stderr)
        return 130
    print(metrics["estimate_summary"])
    if args.dry_run:
        print("dry run: nothing submitted")
        return 0
    print(f"accuracy on {metrics['backend']} ({metrics['shots']} shots): {metrics['accuracy']:.4f}   "
          f"exact: {metrics['exact_accuracy']:.4f}   agreement: {metrics['agreement']:.4f}")
    print(f"mean |k_backend - k_exact|: {metrics['kernel_mean_abs_diff']:.4f} (max {metrics['kernel_max_abs_diff']:.4f}, "
          f"signed mean {metrics['kernel_mean_diff']:+.4f}, {metrics['kernel_values']} kernel values; "
          f"mitigation {metrics['mitigation']})")
    if metrics["calibration"]:
        cal = metrics["calibration"]
        print(f"readout calibration of qubits {cal['qubits']} ({cal['date']}): "
              + ("measured now" if cal["paid"] else "reused from the cache"))
    print(f"jobs: {metrics['jobs_submitted']} submitted, {metrics['jobs_resumed']} fetched again; "
          f"outputs: {metrics['out_dir']}/metrics.json, {metrics['journal']}")
    return 0


def _cmd_estimate(args: argparse.Namespace) -> int:
    from ..evaluation.backend import estimate_checkpoint
    from ..rundir import check_out_file, make_out_dir, write_json_atomic

    if args.json:
        check_out_file(args.json, command="estimate", flag="--json")  # before the estimate, not after
    estimate = estimate_checkpoint(
        args.checkpoint, args.backend, data=args.data, shots=args.shots, batch_size=args.batch_size,
        max_sentences=args.max_sentences, training=args.training, epochs=args.epochs,
        optimization_level=args.optimization_level, seed=args.seed, job_overhead_seconds=args.job_overhead,
        **_hardware_options(args),
    )
    print(estimate.summary())
    if args.json:
        make_out_dir(Path(args.json).parent)
        write_json_atomic(estimate.to_dict(), args.json)
        print(f"written: {args.json}")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``evaluate`` and ``estimate`` to the ``qk-lstm`` subcommands."""
    evaluate = sub.add_parser(
        "evaluate", help="accuracy, per-tag F1 and confusion matrix of a checkpoint, exact (default) or on a backend"
    )
    _add_backend_args(evaluate, default_backend="exact")
    evaluate.add_argument("--out", help="folder for metrics.json and jobs.jsonl (default: <checkpoint dir>/eval-<backend>)")
    evaluate.add_argument("--dry-run", action="store_true", help="print the cost estimate and stop")
    evaluate.add_argument("--max-qpu-seconds", type=float, help="refuse a run whose estimate exceeds this")
    evaluate.add_argument("--resume", action="store_true", help="fetch the jobs recorded in --out/jobs.jsonl by id")
    evaluate.add_argument("--mode", default="job", choices=("job", "batch", "session"),
                          help="Runtime execution mode (default job; the open plan refuses session)")
    evaluate.add_argument("--dd", choices=("XX", "XpXm", "XY4"), help="dynamical decoupling sequence (default off)")
    evaluate.add_argument("--twirl-gates", action="store_true", help="Pauli-twirl 2-qubit gates")
    evaluate.add_argument("--twirl-measure", action="store_true", help="twirl measurements")
    evaluate.add_argument("--max-execution-time", type=int, help="QPU seconds after which a job is cancelled")
    evaluate.add_argument("--max-retries", type=int, default=2, help="resubmissions of a failed job (default 2)")
    evaluate.add_argument("--timeout", type=float, help="seconds to wait for a job before retrying (default: no limit)")
    evaluate.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    evaluate.set_defaults(func=_cmd_evaluate)

    estimate = sub.add_parser("estimate", help="circuits, shots, jobs and QPU seconds of a run, before submitting")
    _add_backend_args(estimate)
    estimate.add_argument("--training", action="store_true", help="training with parameter-shift backward (default: inference)")
    estimate.add_argument("--epochs", type=int, default=1, help="epochs, with --training (default 1)")
    estimate.add_argument("--json", help="also write the estimate to this JSON file")
    estimate.set_defaults(func=_cmd_estimate)
