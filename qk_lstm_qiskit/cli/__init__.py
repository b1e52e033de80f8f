"""``qk-lstm`` command line: train, reproduce the paper, evaluate, estimate hardware cost."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path

from ..config import MODEL_KINDS, OPTIMIZERS
from ..errors import ProductKernelWarning, QKLSTMError, TaskInferredWarning
from .arguments import OneLineParser, number, path

__all__ = ["main"]

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "paper_pos.yaml"


FLAG_KEYS = {  # train flag (argparse dest) -> config key it overrides
    "model": ("model", "kind"),
    "seed": ("train", "seed"),
    "epochs": ("train", "epochs"),
    "lr": ("train", "lr"),
    "optimizer": ("train", "optimizer"),
    "batch_size": ("train", "batch_size"),
    "data": ("data", "source"),
    "backend": ("executor", "backend"),
    "shots": ("executor", "shots"),
    "sampler_seed": ("executor", "seed"),
    "device": ("executor", "device"),
    "column": ("forecast", "column"),
    "columns": ("forecast", "columns"),
    "target": ("forecast", "target"),
}


def _load_config(args: argparse.Namespace):
    """The run config: defaults ← ``--config`` ← the flags the user actually gave (errors name the flag)."""
    from ..config import load_config

    overrides: dict[str, dict] = {}
    for dest, (section, key) in FLAG_KEYS.items():
        value = getattr(args, dest, None)
        if value is not None:
            overrides.setdefault(section, {})[key] = value
    labels = {f"{section}.{key}": "--" + dest.replace("_", "-") for dest, (section, key) in FLAG_KEYS.items()}
    if getattr(args, "task", None) is not None:
        overrides["task"], labels["task"] = args.task, "--task"
    saved = _saved_config(args)
    if saved is not None:  # train --resume DIR without --config: the run's own settings, then the flags
        merged: dict = {k: (dict(v) if isinstance(v, dict) else v) for k, v in saved.items()}
        for section, values in overrides.items():
            if isinstance(values, dict):
                merged.setdefault(section, {}).update(values)
            else:
                merged[section] = values
        return load_config(None, merged, labels=labels)
    return load_config(_config_path(args), overrides, labels=labels)


def _saved_config(args: argparse.Namespace) -> dict | None:
    """The config saved in the run folder that ``train --resume`` names, when no ``--config`` is given."""
    from ..checkpoint import LAST_FILE, load_checkpoint

    if getattr(args, "resume", None) is None or args.config is not None:
        return None
    last = Path(args.resume or args.out or ".") / LAST_FILE
    return load_checkpoint(last, resume=True)["config"] if last.is_file() else None


def _threads() -> int:
    """``QK_LSTM_THREADS`` (default 1), or a one-line ``ValueError``."""
    value = os.environ.get("QK_LSTM_THREADS", "1")
    if not value.strip().isdigit() or int(value) < 1:
        raise ValueError(f"expected the environment variable QK_LSTM_THREADS to be an int >= 1, got {value!r}")
    return int(value)


def _config_path(args: argparse.Namespace) -> Path | None:
    if args.config is not None:
        return Path(args.config)
    return DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None


def _cmd_train(args: argparse.Namespace) -> int:
    from ..tasks import make_task
    from ..training.experiment import default_run_dir, run_training

    config = _load_config(args)
    task = make_task(config)  # an unknown task, or data it cannot take: refused before anything else
    resume = args.resume is not None
    if args.resume and args.out and Path(args.resume) != Path(args.out):
        raise ValueError(f"train: expected --resume DIR to match --out, got {args.resume!r} and {args.out!r}")
    if resume and not (args.resume or args.out):
        raise ValueError("train: expected the run folder to resume, as --resume DIR or --out DIR, got neither")
    target = args.resume or args.out
    out_dir = Path(target) if target else default_run_dir(config)
    if args.dry_run or args.max_qpu_seconds is not None:
        from ..hardware.cost import check_budget
        from ..training.experiment import estimate_training

        estimate = estimate_training(config)
        if args.dry_run:
            print(estimate.summary())
            return 0
        check_budget(estimate, args.max_qpu_seconds)
    result = run_training(config, out_dir, resume=resume, progress=not args.no_progress)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun: rank 0 reports for every rank
        return 0
    print(f"model: {result['model']}  trainable parameters: {result['trainable_parameters']}")
    for line in task.summary(result):
        print(line)
    return 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from ..training.reproduce import reproduce

    table = reproduce(
        Path(args.out), seeds=args.seeds, epochs=args.epochs, config_path=_config_path(args),
        progress=not args.no_progress,
    )
    print(table)
    print(f"outputs: {args.out}/table1.md, {args.out}/fig3.png, {args.out}/summary.json")
    return 0


def _show_model_notes() -> None:
    """Print each :class:`ProductKernelWarning` the models issue and each :class:`TaskInferredWarning`
    of a config once, as a ``note:`` line on stdout (inside ``catch_warnings``)."""
    notes = (ProductKernelWarning, TaskInferredWarning)
    for category in notes:
        warnings.simplefilter("once", category)  # evaluation builds two models: one note
    show = warnings.showwarning

    def note(message, category, *args, **kwargs):
        if issubclass(category, notes):
            print(f"note: {message}")
        else:
            show(message, category, *args, **kwargs)

    warnings.showwarning = note


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="qk-lstm", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log progress details and show the traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a tagger (default: the paper's QK-LSTM)")
    train.add_argument("--config", type=path, help="YAML overriding the defaults (default: configs/paper_pos.yaml)")
    train.add_argument("--task", help="task: what the run learns, tagging, forecasting or classification (default: "
                       "the config's; a config without one: inferred from data.source)")
    train.add_argument("--model", choices=MODEL_KINDS, help="model.kind: the recurrent layer (default qk-lstm)")
    train.add_argument("--seed", type=int, help="train.seed: initialisation and shuffling, 0 <= SEED < 2**32 (default 0)")
    train.add_argument("--epochs", type=int, help="train.epochs, >= 1 (default 100); with --resume, the new total")
    train.add_argument("--lr", type=float, help="train.lr: learning rate, > 0 (default 0.1)")
    train.add_argument("--optimizer", choices=tuple(OPTIMIZERS), help="train.optimizer (default adam)")
    train.add_argument("--batch-size", type=int, help="train.batch_size: sentences per step, >= 1 (default 1)")
    train.add_argument("--data", type=path, help="data.source: 'paper' (default), a CoNLL-U file, a series to forecast: shm, bessel, "
                       "co2, macrodata, FILE.csv, or sequences to classify: basic_motions, japanese_vowels, gunpoint, "
                       "FILE.ts, FILE.npz, FILE.csv")
    train.add_argument("--column", help="forecast.column: the CSV column to forecast (with --data FILE.csv)")
    train.add_argument("--columns", help="forecast.columns: several input columns, A,B,C (with --data macrodata or FILE.csv)")
    train.add_argument("--target", help="forecast.target: the column(s) to forecast from --columns, A or A,B (default: all)")
    train.add_argument("--backend", help="executor.backend: exact (default), aer, aer-noisy:<device>, fake:<device> or ibm:<device>")
    train.add_argument("--shots", type=int, help="executor.shots per circuit on a sampler backend, >= 1 (default: the sampler's)")
    train.add_argument("--sampler-seed", type=int, help="seed of the simulator's shot noise (aer, aer-noisy)")
    train.add_argument("--device", help="exact executor: cpu (default), cuda or cuda:<index>")
    train.add_argument("--out", type=path, help="run folder (default: a new folder under runs/)")
    train.add_argument("--resume", nargs="?", const="", metavar="DIR",
                       help="continue the run in DIR (or --out) from its last epoch's checkpoint")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    train.add_argument("--dry-run", action="store_true",
                       help="print the circuits, shots, jobs and QPU seconds the run would need, then stop")
    train.add_argument("--max-qpu-seconds", type=number(0), help="refuse to start a run estimated above this QPU time")
    train.set_defaults(func=_cmd_train)

    repro = sub.add_parser("reproduce", help="Table I and Fig. 3: QK-LSTM, LSTM and QLSTM over several seeds")
    repro.add_argument("--config", type=path, help="base YAML (default: configs/paper_pos.yaml)")
    repro.add_argument("--out", type=path, default="runs/reproduce",
                       help="folder for table1.md, fig3.png, summary.json and one run folder per model and seed "
                            "(default runs/reproduce; must not hold them already)")
    repro.add_argument("--seeds", type=int, default=3, help="number of seeds per model: seeds 0 .. SEEDS-1 (default 3)")
    repro.add_argument("--epochs", type=int, help="epochs per run, >= 1 (default: the config's, 100)")
    repro.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    repro.set_defaults(func=_cmd_reproduce)

    from .diagnose import add_command as add_diagnose
    from .evaluate import add_commands  # evaluate, estimate

    add_commands(sub)
    add_diagnose(sub)
    for command in sub.choices.values():  # -v after the subcommand too; SUPPRESS keeps one given before it
        command.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                             help="log progress details and show the traceback of an error")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one ``qk-lstm`` command; every expected failure is one ``error:`` line on stderr and exit 2.

    Expected failures: bad arguments, files and configs (``ValueError``, ``TypeError``), missing or
    unwritable files (``OSError``), backend and job failures (``QKLSTMError``) and running out of
    memory. ``-v`` shows their traceback; anything else is a bug and keeps its traceback.
    """
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # a bad flag (one line on stderr, exit 2) or --help (exit 0)
        return exc.code if isinstance(exc.code, int) else 2
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        import torch

        # Tiny models: one intra-op thread is up to 20x faster than two on a busy 2-core machine.
        torch.set_num_threads(_threads())
        with warnings.catch_warnings():
            _show_model_notes()
            return args.func(args)
    except (QKLSTMError, ValueError, TypeError, OSError, MemoryError) as exc:
        if args.verbose:
            raise
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, MemoryError):
            message = f"out of memory ({message})"
        print(f"qk-lstm {args.command}: error: {message}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # torch's allocator: "DefaultCPUAllocator: can't allocate memory: …"
        if args.verbose or "can't allocate memory" not in str(exc) and "out of memory" not in str(exc):
            raise
        message = str(exc).strip().splitlines()[0]
        detail = message[message.index("you tried"):] if "you tried" in message else message
        print(f"qk-lstm {args.command}: error: out of memory ({detail})", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = {"train": "finished epochs are saved (continue with qk-lstm train --resume DIR)",
                "reproduce": "finished runs are kept; rerun into a new --out (reproduce cannot resume)"}
        print(f"qk-lstm {args.command}: interrupted; {hint.get(args.command, 'nothing more was written')}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
