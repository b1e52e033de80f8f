"""``qk-lstm evaluate`` and ``qk-lstm estimate``: infer on hardware, count the cost first.

Registered into the main parser by :func:`add_commands`; the logic lives in
:mod:`qk_lstm_qiskit.evaluation` (exact: `evaluation.exact`, sampler backends: `evaluation.backend`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..hardware.backends import MAX_SHOTS
from ..hardware.mitigation import MITIGATIONS
from ..kernels.depolarizing import DEPOLARIZING_METHODS
from .estimators import add_estimate_options, add_evaluate_options, run_estimated, run_plan
from .arguments import SEED, integer, number, path

__all__ = ["add_commands"]


def _add_backend_args(parser: argparse.ArgumentParser, default_backend: str = "fake:manila") -> None:
    parser.add_argument("--checkpoint", required=True, type=path,
                        help="model.pt written by qk-lstm train (a qk-lstm model"
                        + ("; any model kind with --backend exact)" if default_backend == "exact" else ")"))
    parser.add_argument(
        "--backend", default=default_backend,
        help=("exact (torch statevectors, any model kind), " if default_backend == "exact" else "")
        + "aer, aer-noisy:<fake>, fake:<fake> (local testing mode), ibm:<device> or ibm:least_busy "
        f"(default {default_backend}); IBM credentials from QISKIT_IBM_TOKEN/QISKIT_IBM_INSTANCE or the saved account",
    )
    parser.add_argument("--shots", type=integer(1, MAX_SHOTS), default=4096, help="shots per circuit (default 4096)")
    parser.add_argument("--data", type=path, help="tagging: 'paper' or a CoNLL-U file (default: the checkpoint's "
                        "validation split, else its training data); classification: a test file (default: the run's "
                        "test split); forecasting: none (the run's test windows)")
    parser.add_argument("--batch-size", type=integer(1), help="examples (sentences, sequences, windows) per batch; on a "
                        "device each time step of a batch is one job (default: 32 sentences, 64 sequences, all windows; with "
                        "--estimator all examples in one batch)")
    parser.add_argument("--max-sentences", "--max-examples", dest="max_sentences", type=integer(1),
                        help="only the first N sentences (or test sequences) of --data")
    parser.add_argument("--optimization-level", type=int, default=2, choices=(0, 1, 2, 3),
                        help="preset pass manager level (default 2: noise-aware layout; level 1 keeps a fitting trivial layout)")
    parser.add_argument("--seed", type=SEED, default=0, help="simulator and transpiler seed (default 0)")
    parser.add_argument("--job-overhead", type=number(0), help="per-job QPU overhead of the estimate, s (default 3)")
    parser.add_argument("--mitigation", default="none", choices=MITIGATIONS,
                        help="readout mitigation: none (P(0…0) frequency, default), m3 (mthree), marginal (product of "
                        "corrected per-qubit marginals; product kernels only); calibration is counted in the estimate")
    parser.add_argument("--depolarizing", default="none", choices=("none", *DEPOLARIZING_METHODS),
                        help="global-depolarising correction of kernel values: none (default), single (one echo "
                        "circuit U†(x)U(x) per job), average (the mean over --echoes); the echoes share the kernels' "
                        "job and are counted in the estimate")
    parser.add_argument("--echoes", type=integer(1), help="echo circuits per job for --depolarizing (default 1 for "
                        "single, 4 for average)")
    parser.add_argument("--calibration-shots", type=integer(1), help="readout calibration: preparations per state and qubit "
                        "(default 10000)")
    parser.add_argument("--calibration-dir", type=path, help="reuse/cache readout calibrations here (default: --out)")
    parser.add_argument("--target-error", type=number(0, 0.5, strict=True), help="pick shots per circuit for this kernel standard error "
                        "(binomial bound times the mitigation's variance factor; overrides --shots)")
    parser.add_argument("--parallel-batches", type=integer(1), default=1, help="sentence batches in flight at once "
                        "(default 1; with --mode batch on IBM devices)")
    parser.add_argument("--max-circuits-per-job", type=integer(1), help="split larger jobs (default: the device's limit)")


# evaluate/estimate flag (argparse dest) -> EvaluationRequest option it sets (dotted: group.field)
OPTION_FLAGS = {
    "backend": "backend", "data": "data", "out": "out_dir", "batch_size": "batch_size", "max_sentences": "max_items",
    "shots": "sampling.shots", "seed": "sampling.seed", "optimization_level": "sampling.optimization_level",
    "target_error": "sampling.target_error", "mitigation": "mitigation.method",
    "calibration_shots": "mitigation.calibration_shots", "calibration_dir": "mitigation.calibration_dir",
    "depolarizing": "mitigation.depolarizing", "echoes": "mitigation.echoes",
    "max_retries": "jobs.max_retries", "timeout": "jobs.timeout_seconds",
    "max_circuits_per_job": "jobs.max_circuits_per_job", "parallel_batches": "jobs.parallel_batches",
    "mode": "runtime.mode", "dd": "runtime.dynamical_decoupling", "twirl_gates": "runtime.twirl_gates",
    "twirl_measure": "runtime.twirl_measure", "max_execution_time": "runtime.max_execution_time",
    "dry_run": "budget.dry_run", "max_qpu_seconds": "budget.max_qpu_seconds",
    "job_overhead": "budget.job_overhead_seconds", "sample_seed": "budget.sample_seed", "resume": "resume",
}


def _request(args: argparse.Namespace):
    """The :class:`~qk_lstm_qiskit.evaluation.options.EvaluationRequest` of the flags (errors name the flags)."""
    from ..evaluation.options import Budget, EvaluationRequest, JobPolicy, Mitigation, RuntimeOptions, Sampling

    groups: dict[str, dict] = {"": {}}
    for dest, option in OPTION_FLAGS.items():
        if hasattr(args, dest):  # estimate has no --out, --mode, …
            group, _, name = option.rpartition(".")
            value = getattr(args, dest)
            groups.setdefault(group, {})[name] = Path(value) if dest == "out" and value is not None else value
    labels = {option: "--" + dest.replace("_", "-") for dest, option in OPTION_FLAGS.items()}
    labels.update({"runtime.dynamical_decoupling": "--dd", "jobs.timeout_seconds": "--timeout",
                   "max_items": "--max-sentences/--max-examples"})
    return EvaluationRequest(
        **groups[""], sampling=Sampling(**groups.get("sampling", {})), mitigation=Mitigation(**groups.get("mitigation", {})),
        jobs=JobPolicy(**groups.get("jobs", {})), runtime=RuntimeOptions(**groups.get("runtime", {})),
        budget=Budget(**groups.get("budget", {})), progress=not getattr(args, "no_progress", True), labels=labels,
    )


def _cmd_evaluate(args: argparse.Namespace) -> int:
    """Any checkpoint: its task evaluates it (exact or on a sampler backend) and says what it found."""
    from ..evaluation.backend import default_eval_dir
    from ..hardware.journal import JOURNAL_NAME
    from ..tasks import task_of_checkpoint

    if args.estimator is not None:  # the kernel-estimator run: budget-sized sample
        if args.depolarizing != "none" or args.echoes is not None:
            raise ValueError(f"evaluate: expected no --depolarizing/--echoes with --estimator (its circuits have no "
                             f"compute-uncompute echo), got --depolarizing {args.depolarizing}")
        return run_estimated(args, _request(args))
    task, _ = task_of_checkpoint(args.checkpoint)
    request = _request(args)
    try:
        metrics = task.evaluate_checkpoint(Path(args.checkpoint), request)
    except KeyboardInterrupt:
        journal = (request.out_dir or default_eval_dir(args.checkpoint, args.backend)) / JOURNAL_NAME
        if not journal.is_file():
            raise
        hint = (f"finished jobs' results are kept and submitted job ids are in the journal {JOURNAL_NAME}; rerun with "
                "--resume to pay for none of them again" + ("" if args.backend.startswith("ibm:") else
                                                           " (a local job cut off mid-run is run again)"))
        print(f"qk-lstm evaluate: interrupted; {hint}", file=sys.stderr)
        return 130
    for line in task.evaluation_summary(metrics, request):
        print(line)
    return 0


def _cmd_estimate(args: argparse.Namespace) -> int:
    from ..rundir import check_out_file, make_out_dir, write_json_atomic
    from ..tasks import task_of_checkpoint

    if args.json:
        check_out_file(args.json, command="estimate", flag="--json")  # before the estimate, not after
    task, _ = task_of_checkpoint(args.checkpoint)
    estimate = task.estimate_checkpoint(Path(args.checkpoint), _request(args), training=args.training,
                                        epochs=args.epochs)
    print(estimate.summary())
    if args.target_loss is not None or args.target_accuracy_loss is not None:
        return run_plan(args, _request(args))  # the plan's table, its choice (and its JSON)
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
    evaluate.add_argument("--out", type=path, help="folder for metrics.json and jobs.jsonl (default: <checkpoint dir>/eval-<backend>)")
    evaluate.add_argument("--dry-run", action="store_true", help="print the cost estimate and stop")
    evaluate.add_argument("--max-qpu-seconds", type=number(0), help="refuse a run whose estimate exceeds this")
    evaluate.add_argument("--resume", action="store_true", help="fetch the jobs recorded in --out/jobs.jsonl by id")
    evaluate.add_argument("--mode", default="job", choices=("job", "batch", "session"),
                          help="Runtime execution mode (default job; the open plan refuses session)")
    evaluate.add_argument("--dd", choices=("XX", "XpXm", "XY4"), help="dynamical decoupling sequence (default off)")
    evaluate.add_argument("--twirl-gates", action="store_true", help="Pauli-twirl 2-qubit gates")
    evaluate.add_argument("--twirl-measure", action="store_true", help="twirl measurements")
    evaluate.add_argument("--max-execution-time", type=integer(1), help="QPU seconds after which a job is cancelled")
    evaluate.add_argument("--max-retries", type=integer(0), default=2, help="resubmissions of a failed job (default 2)")
    evaluate.add_argument("--timeout", type=number(0, strict=True), help="seconds to wait for a job before retrying (default: no limit)")
    evaluate.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_evaluate_options(evaluate)
    evaluate.set_defaults(func=_cmd_evaluate)

    estimate = sub.add_parser("estimate", help="circuits, shots, jobs and QPU seconds of a run, before submitting")
    _add_backend_args(estimate)
    estimate.add_argument("--training", action="store_true", help="training with parameter-shift backward (default: inference)")
    estimate.add_argument("--epochs", type=integer(1), default=1, help="epochs, with --training (default 1)")
    estimate.add_argument("--json", type=path, help="also write the estimate to this JSON file")
    add_estimate_options(estimate)
    estimate.set_defaults(func=_cmd_estimate)
