"""The kernel-estimator options of ``qk-lstm estimate`` (the shot planner) and ``qk-lstm evaluate`` (budgeted runs).

``estimate --target-loss X`` runs :func:`~qk_lstm_qiskit.evaluation.planner.plan_checkpoint` on the
checkpoint's task's work (tagging, forecasting, classification; exact shot noise, nothing submitted) and prints
its table and choice; ``evaluate --estimator NAME`` runs
:func:`~qk_lstm_qiskit.evaluation.estimated.evaluate_estimated` on the same work, where ``--max-qpu-seconds``
sizes a seeded random sample of examples to the budget instead of refusing the run.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any, Mapping

__all__ = ["add_estimate_options", "add_evaluate_options", "estimator_work", "run_plan", "run_estimated"]


def _shots(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated shot counts, got {text!r}") from exc
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected shot counts >= 1, got {text!r}")
    return values


def add_estimate_options(parser: argparse.ArgumentParser) -> None:
    from ..evaluation.planner import ESTIMATORS

    group = parser.add_argument_group("shot planner (exact shot noise; nothing is submitted)")
    target = group.add_mutually_exclusive_group()
    target.add_argument("--target-loss", type=float,
                        help="plan estimators x shot counts and pick the cheapest whose mean loss against exact is at most "
                        "this: for an accuracy (tagging, classification) the fraction of points lost (0.01 = 1 point), "
                        "for a test RMSE (forecasting) its relative increase (0.2 = 20%%)")
    target.add_argument("--target-accuracy-loss", type=float,
                        help="for an accuracy, the same as --target-loss: at most this fraction of accuracy lost (0.01 = 1 point)")
    group.add_argument("--estimators", default=",".join(ESTIMATORS),
                       help=f"comma-separated, from {', '.join(ESTIMATORS)} (default all)")
    group.add_argument("--plan-shots", type=_shots, default=(64, 128, 256, 512, 1024),
                       help="comma-separated shot counts to try (default 64,128,256,512,1024)")
    group.add_argument("--plan-repeats", type=int, default=3, help="noisy taggings per entry (default 3)")


def add_evaluate_options(parser: argparse.ArgumentParser) -> None:
    from ..evaluation.planner import ESTIMATORS

    group = parser.add_argument_group("kernel estimator (one job per time step, no padded row)")
    group.add_argument("--estimator", choices=ESTIMATORS,
                       help="run the kernels with this estimator; --max-qpu-seconds then evaluates a seeded random "
                       "sample of examples sized to the budget, with a 95%% interval")
    group.add_argument("--sample-seed", type=int, default=0, help="seed of the budget-sized sample (default 0)")


def run_plan(args: argparse.Namespace, request) -> int:
    """``qk-lstm estimate --target-loss X``: the shot plan of the checkpoint's task's work (:func:`estimator_work`;
    one batch of every example unless ``--batch-size``), its table, choice and ``--json``."""
    from ..evaluation.planner import plan_checkpoint
    from ..rundir import make_out_dir, write_json_atomic

    estimators = tuple(e for e in args.estimators.split(",") if e)
    work, load = estimator_work(args.checkpoint, request)
    if args.target_accuracy_loss is not None and work.metric_name != "accuracy":
        raise ValueError(f"estimate: expected --target-loss for this checkpoint (its metric is {work.metric_name}, "
                         f"the loss its relative increase), got --target-accuracy-loss {args.target_accuracy_loss}")
    target = args.target_loss if args.target_loss is not None else args.target_accuracy_loss
    plan = plan_checkpoint(
        args.checkpoint, args.backend, work=work, load=load, estimators=estimators, shot_counts=args.plan_shots,
        repeats=args.plan_repeats, target_loss=target, seed=args.seed, optimization_level=args.optimization_level,
        job_overhead_seconds=args.job_overhead)
    print(plan.summary())
    if args.json:
        make_out_dir(Path(args.json).parent)
        write_json_atomic(plan.to_dict(), args.json)
        print(f"written: {args.json}")
    return 0


def estimator_work(checkpoint: str | Path, request) -> tuple[Any, Any]:
    """``(work, load)`` of the checkpoint's task for :func:`~qk_lstm_qiskit.evaluation.estimated.evaluate_estimated`
    (``Task.backend_work``); without ``request.batch_size`` every example goes in one batch (one job per time step
    and layer, the fewest jobs).

    Raises:
        ValueError: a task or model that cannot run on a sampler backend.
    """
    from ..tasks import task_of_checkpoint

    task, _ = task_of_checkpoint(checkpoint)
    work, load = task.backend_work(Path(checkpoint), request)
    if request.batch_size is None and work.batch_size < work.population:
        work, load = task.backend_work(Path(checkpoint), dataclasses.replace(request, batch_size=work.population))
    return work, load


def _metric_lines(m: Mapping[str, Any]) -> list[str]:
    """The task's metric on the backend, the exact model's on the same examples and, for a sample, the 95 %
    interval and the exact model's value on every example (``accuracy`` or ``test_rmse``, per target for tables);
    for forecasts, the RMSE between the backend's and the exact forecasts."""
    sampled = m["sample"] is not None
    if "accuracy" in m:
        label, fmt = "accuracy", ".4f"
        values, exact = {"": m["accuracy"]}, {"": m["exact_accuracy"]}
    else:
        label, fmt = "test RMSE", ".4g"
        table = isinstance(m["test_rmse"], dict)
        values = m["test_rmse"] if table else {"": m["test_rmse"]}
        exact = m["exact_test_rmse"] if table else {"": m["exact_test_rmse"]}
    lines = []
    for name, value in values.items():
        head = f"{name}: " if name else ""
        if not sampled:
            lines.append(f"{head}{label} {value:{fmt}} on all {m['population']} examples; exact {exact[name]:{fmt}}")
            continue
        low, high = m["interval_95"][name] if name else m["interval_95"]
        full = m["exact_full"][name] if name else m["exact_full"]
        inside = m["exact_full_inside_interval"][name] if name else m["exact_full_inside_interval"]
        lines.append(f"{head}{label} {value:{fmt}} (95% interval [{low:{fmt}}, {high:{fmt}}]) on {m['examples']} "
                     f"examples; exact on the same sample {exact[name]:{fmt}}, on all {m['population']} examples "
                     f"{full:{fmt}} ({'inside' if inside else 'outside'} the interval)")
    versus = m.get("backend_rmse_vs_exact")
    if versus is not None:
        lines.append("RMSE between the backend's and the exact forecasts: " + (
            ", ".join(f"{k} {v:.4g}" for k, v in versus.items()) if isinstance(versus, dict) else f"{versus:.4g}"))
    return lines


def run_estimated(args: argparse.Namespace, request) -> int:
    """``qk-lstm evaluate --estimator NAME``: the checkpoint's task's work (:func:`estimator_work`) through
    :func:`~qk_lstm_qiskit.evaluation.estimated.evaluate_estimated`; prints the plan, the metric lines and the jobs."""
    from ..evaluation.estimated import evaluate_estimated

    work, load = estimator_work(args.checkpoint, request)
    try:
        m = evaluate_estimated(args.checkpoint, request, work, load=load, estimator=args.estimator)
    except KeyboardInterrupt:
        print("qk-lstm evaluate: interrupted; finished jobs' results are kept and submitted job ids are in the journal "
              "jobs.jsonl; rerun with --resume to pay for none of them again", file=sys.stderr)
        return 130
    est = m["estimate"]
    print(f"{m['estimator']} on {m['backend']}: {m['examples']} of {m['population']} examples in {m['batches']} "
          f"batch{'' if m['batches'] == 1 else 'es'}, ≈ {est['qpu_seconds']:,.1f} QPU s ({est['jobs']} jobs, {est['circuits']:,} circuits x "
          f"{est['shots']} shots)")
    if m.get("dry_run"):
        print("dry run: nothing submitted")
        return 0
    for line in _metric_lines(m):
        print(line)
    print(f"mean |k_backend - k_exact|: {m['kernel_mean_abs_diff']:.4f} (max {m['kernel_max_abs_diff']:.4f}, signed mean "
          f"{m['kernel_mean_diff']:+.4f}, {m['kernel_values']:,} kernel values)")
    print(f"rows sent {m['rows_sent']:,}, padded rows skipped {m['rows_skipped_padding']:,}; jobs: {m['jobs_submitted']} "
          f"submitted, {m['jobs_resumed']} fetched again; outputs: {m['out_dir']}/metrics.json")
    return 0
