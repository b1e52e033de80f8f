"""The kernel-estimator options of ``qk-lstm estimate`` (the shot planner) and ``qk-lstm evaluate`` (budgeted runs).

``estimate --target-accuracy-loss X`` runs :func:`~qk_lstm_qiskit.evaluation.planner.plan_checkpoint`
(exact shot noise, nothing submitted) and prints its table and choice; ``evaluate --estimator NAME``
runs :func:`~qk_lstm_qiskit.evaluation.estimated.evaluate_estimated`, where ``--max-qpu-seconds``
sizes a seeded random sample of sentences to the budget instead of refusing the run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_estimate_options", "add_evaluate_options", "run_plan", "run_estimated"]


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
    group.add_argument("--target-accuracy-loss", type=float,
                       help="plan estimators x shot counts and pick the cheapest whose mean accuracy loss against exact "
                       "is at most this fraction (0.01 = 1 point)")
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
                       "sample of sentences sized to the budget, with a 95%% interval")
    group.add_argument("--sample-seed", type=int, default=0, help="seed of the budget-sized sample (default 0)")


def run_plan(args: argparse.Namespace) -> int:
    from ..evaluation.planner import plan_checkpoint
    from ..rundir import make_out_dir, write_json_atomic

    estimators = tuple(e for e in args.estimators.split(",") if e)
    plan = plan_checkpoint(
        args.checkpoint, args.backend, data=args.data, max_sentences=args.max_sentences, estimators=estimators,
        shot_counts=args.plan_shots, repeats=args.plan_repeats, target_loss=args.target_accuracy_loss,
        seed=args.seed, optimization_level=args.optimization_level, job_overhead_seconds=args.job_overhead)
    print(plan.summary())
    if args.json:
        make_out_dir(Path(args.json).parent)
        write_json_atomic(plan.to_dict(), args.json)
        print(f"written: {args.json}")
    return 0


def run_estimated(args: argparse.Namespace) -> int:
    from ..evaluation.estimated import evaluate_estimated

    try:
        m = evaluate_estimated(
            args.checkpoint, args.backend, estimator=args.estimator, shots=args.shots, data=args.data,
            max_qpu_seconds=args.max_qpu_seconds, sample_seed=args.sample_seed, seed=args.seed, out_dir=args.out,
            resume=args.resume, optimization_level=args.optimization_level, dry_run=args.dry_run,
            calibration_shots=args.calibration_shots or 10_000, calibration_dir=args.calibration_dir,
            job_overhead_seconds=args.job_overhead)
    except KeyboardInterrupt:
        print("qk-lstm evaluate: interrupted; submitted job ids are in the journal jobs.jsonl", file=sys.stderr)
        return 130
    est = m["estimate"]
    print(f"{m['estimator']} on {m['backend']}: {m['sentences']} of {m['population']} sentences, ≈ {est['qpu_seconds']:,.1f} "
          f"QPU s ({est['jobs']} jobs, {est['circuits']:,} circuits x {est['shots']} shots)")
    if m.get("dry_run"):
        print("dry run: nothing submitted")
        return 0
    low, high = m["interval_95"]
    if m["sentences"] == m["population"]:
        print(f"accuracy {m['accuracy']:.4f} on all {m['tokens']} tokens (the whole set: no sampling interval); "
              f"exact {m['exact_accuracy_full']:.4f}")
    else:
        print(f"accuracy {m['accuracy']:.4f} (95% interval [{low:.4f}, {high:.4f}]) on {m['tokens']} tokens; exact on the "
              f"same sample {m['exact_accuracy_sample']:.4f}, on all {m['population']} sentences "
              f"{m['exact_accuracy_full']:.4f} ({'inside' if m['exact_full_inside_interval'] else 'outside'} the interval)")
    print(f"rows sent {m['rows_sent']:,}, padded rows skipped {m['rows_skipped_padding']:,}; jobs: {m['jobs_submitted']} "
          f"submitted, {m['jobs_resumed']} fetched again; outputs: {m['out_dir']}/metrics.json")
    return 0
