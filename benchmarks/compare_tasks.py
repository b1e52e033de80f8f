"""QK-LSTM vs nn.LSTM vs VQC-QLSTM on the two follow-up tasks: sequence classification at two matched
parameter budgets with learning curves, and multivariate forecasting.

Classification: for each archive that ships inside aeon (BasicMotions, JapaneseVowels, GunPoint) and
each model, the hidden size is picked whose trainable-parameter count is closest to each of two
budgets (the same budget for the three models); every (model, budget) trains for ``--epochs`` on
the official training split (standardised on it; no validation split: the last epoch is scored;
masked-mean pooling, Adam lr 0.05, batches of 8) for ``--seeds`` seeds and is scored once on the
official test split. The learning curve trains the small budget on a stratified 10 / 25 / 50 / 100 %
of the training split (``classify.train_fraction``, seeded).

Forecasting: ``configs/macro_{qklstm,lstm,qlstm}.yaml`` (statsmodels' macrodata, 4 columns in,
real GDP and unemployment out) for ``--seeds`` seeds: test RMSE per target against persistence.

Every run goes through :func:`~qk_lstm_qiskit.training.experiment.run_training` (in memory). Each
finished run is one JSON line in ``--out/runs.jsonl`` (a rerun skips those already there);
``--out/results.md`` holds the tables (mean ± std over seeds, parameters, seconds per epoch).

    python benchmarks/compare_tasks.py --out runs/compare_tasks [--seeds 3] [--epochs 60] [--datasets basic_motions]
                                       [--parts classify|forecast] [--first-seed 2]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from statistics import mean, pstdev
from typing import Any

import torch

from qk_lstm_qiskit.config import ModelConfig, RunConfig, load_config
from qk_lstm_qiskit.errors import ProductKernelWarning
from qk_lstm_qiskit.nn.classifier import build_classifier
from qk_lstm_qiskit.nn.tagger import MODEL_KINDS, count_parameters
from qk_lstm_qiskit.training.experiment import run_training

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
MACRO = {"qk-lstm": "macro_qklstm.yaml", "lstm": "macro_lstm.yaml", "qlstm": "macro_qlstm.yaml"}

DATASETS = {  # name -> (description, (small, large) parameter budgets)
    "basic_motions": ("BasicMotions: 6 channels × 100 steps, 4 classes, 40 train / 40 test", (100, 230)),
    "japanese_vowels": ("JapaneseVowels: 12 channels × 7–29 steps, 9 classes, 270 train / 370 test", (150, 340)),
    "gunpoint": ("GunPoint: 1 channel × 150 steps, 2 classes, 50 train / 150 test", (80, 185)),
}
HIDDEN_SIZES = range(2, 25)
FRACTIONS = (0.1, 0.25, 0.5, 1.0)
POOLING = "mean"  # masked mean over steps (the last state alone fails on GunPoint's 150 steps)
TRAIN = {"optimizer": "adam", "lr": 0.05, "batch_size": 8}


def matched_hidden(kind: str, budget: int, channels: int, classes: int) -> tuple[int, int]:
    """``(hidden size, parameters)`` of the ``kind`` classifier closest to ``budget`` parameters."""
    counts = [(abs(count_parameters(build_classifier(ModelConfig(kind=kind, hidden_dim=h), channels, classes)) - budget), h)
              for h in HIDDEN_SIZES]
    h = min(counts)[1]
    return h, count_parameters(build_classifier(ModelConfig(kind=kind, hidden_dim=h), channels, classes))


def classification_config(dataset: str, kind: str, hidden: int, seed: int, epochs: int, fraction: float) -> RunConfig:
    return load_config(overrides={
        "task": "classification", "model": {"kind": kind, "hidden_dim": hidden},
        "data": {"source": dataset, "validation_fraction": 0.0, "split_seed": seed},
        "classify": {"pooling": POOLING, "train_fraction": fraction},
        "train": {"epochs": epochs, "seed": seed, **TRAIN},
    })


def run_one(dataset: str, kind: str, hidden: int, seed: int, epochs: int, fraction: float) -> dict[str, Any]:
    """Train one classifier (in memory) and score its last epoch on the test split."""
    result = run_training(classification_config(dataset, kind, hidden, seed, epochs, fraction), None, progress=False)
    history = result["epochs"]
    return {
        "dataset": dataset, "model": kind, "hidden_dim": hidden, "seed": seed, "epochs": epochs, "fraction": fraction,
        "train_sequences": result["train_sequences"],
        "parameters": result["trainable_parameters"], "train_accuracy": history[-1]["accuracy"],
        "test_accuracy": result["test_accuracy"], "test_macro_f1": result["test_macro_f1"],
        "seconds_per_epoch": result["seconds_per_epoch"],
    }


def spread(values: list[float]) -> str:
    return f"{mean(values):.3f} ± {pstdev(values):.3f}"


def markdown(rows: list[dict[str, Any]], seeds: int) -> str:
    lines = ["| data set | budget | model | hidden | params | test accuracy | test macro-F1 | s/epoch | seeds |",
             "|---|---|---|---|---|---|---|---|---|"]
    for dataset, (_, budgets) in DATASETS.items():
        for label, budget in zip(("small", "large"), budgets):
            for kind in MODEL_KINDS:
                runs = [r for r in rows if r["dataset"] == dataset and r["model"] == kind and r["fraction"] == 1.0
                        and r["budget"] == budget]
                if runs:
                    lines.append(
                        f"| {dataset} | {label} (~{budget}) | {kind} | {runs[0]['hidden_dim']} | {runs[0]['parameters']} | "
                        f"{spread([r['test_accuracy'] for r in runs])} | {spread([r['test_macro_f1'] for r in runs])} | "
                        f"{mean(r['seconds_per_epoch'] for r in runs):.2f} | {len(runs)} |")
    lines += ["", "Learning curve (small budget; test accuracy, mean ± std over seeds, by fraction of the training split):", "",
              "| data set | model | " + " | ".join(f"{int(f * 100)} %" for f in FRACTIONS) + " |",
              "|---|---|" + "---|" * len(FRACTIONS)]
    for dataset, (_, budgets) in DATASETS.items():
        for kind in MODEL_KINDS:
            cells = []
            for fraction in FRACTIONS:
                runs = [r for r in rows if r["dataset"] == dataset and r["model"] == kind and r["fraction"] == fraction
                        and r["budget"] == budgets[0]]
                cells.append(spread([r["test_accuracy"] for r in runs]) + (f" (n={runs[0]['train_sequences']})" if runs else "")
                             if runs else "–")
            if any(c != "–" for c in cells):
                lines.append(f"| {dataset} | {kind} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run_forecast(kind: str, seed: int, epochs: int | None) -> dict[str, Any]:
    """One multivariate forecaster of ``configs/macro_*.yaml`` (in memory): test RMSE per target, persistence."""
    train: dict[str, Any] = {"seed": seed} | ({"epochs": epochs} if epochs is not None else {})
    result = run_training(load_config(CONFIGS / MACRO[kind], {"train": train}), None, progress=False)
    return {"model": kind, "seed": seed, "parameters": result["trainable_parameters"], "targets": result["targets"],
            "test_rmse": result["test_rmse"], "persistence_rmse": result["persistence_rmse"],
            "test_epoch": result["test_epoch"], "seconds_per_epoch": result["seconds_per_epoch"]}


def forecast_markdown(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    targets = rows[0]["targets"]
    lines = ["| model | params | " + " | ".join(f"test RMSE {t}" for t in targets) + " | s/epoch | seeds |",
             "|---|---|" + "---|" * len(targets) + "---|---|"]
    for kind in MODEL_KINDS:
        runs = [r for r in rows if r["model"] == kind]
        if runs:
            cells = [f"{mean(r['test_rmse'][t] for r in runs):.4g} ± {pstdev([r['test_rmse'][t] for r in runs]):.2g}"
                     for t in targets]
            lines.append(f"| {kind} | {runs[0]['parameters']} | " + " | ".join(cells)
                         + f" | {mean(r['seconds_per_epoch'] for r in runs):.2f} | {len(runs)} |")
    lines.append("| persistence | 0 | " + " | ".join(f"{rows[0]['persistence_rmse'][t]:.4g}" for t in targets) + " | | |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/compare_tasks")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds FIRST .. SEEDS-1 (split a run over processes)")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--no-curve", action="store_true", help="skip the learning curves")
    parser.add_argument("--forecast-epochs", type=int, help="epochs of the forecasting runs (default: the configs' 60)")
    parser.add_argument("--parts", default="classify,forecast", help="classify, forecast or both (default)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore", ProductKernelWarning)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "runs.jsonl"
    rows = [json.loads(line) for line in log_path.read_text().splitlines()] if log_path.is_file() else []
    done = {(r["dataset"], r["model"], r["budget"], r["seed"], r["fraction"]) for r in rows}
    if "forecast" in args.parts.split(","):
        forecast_log = out / "forecast.jsonl"
        done_fc = ([json.loads(line) for line in forecast_log.read_text().splitlines()] if forecast_log.is_file() else [])
        for seed in range(args.seeds):
            for kind in MODEL_KINDS:
                if any(r["model"] == kind and r["seed"] == seed for r in done_fc):
                    continue
                row = run_forecast(kind, seed, args.forecast_epochs)
                done_fc.append(row)
                with forecast_log.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                print(f"macrodata {kind} seed {seed}: test RMSE {row['test_rmse']} (persistence {row['persistence_rmse']})",
                      flush=True)
                (out / "forecast.md").write_text(forecast_markdown(done_fc))
        print(forecast_markdown(done_fc))
    if "classify" not in args.parts.split(","):
        return
    plan = []
    for dataset in args.datasets.split(","):
        budgets = DATASETS[dataset][1]
        for seed in range(args.first_seed, args.seeds):  # seeds outermost: a shortened run still covers every cell
            for budget in budgets:
                plan += [(dataset, kind, budget, seed, 1.0) for kind in MODEL_KINDS]
            if not args.no_curve:
                plan += [(dataset, kind, budgets[0], seed, f) for f in FRACTIONS[:-1] for kind in MODEL_KINDS]
    shapes = {"basic_motions": (6, 4), "japanese_vowels": (12, 9), "gunpoint": (1, 2)}
    start = time.perf_counter()
    for dataset, kind, budget, seed, fraction in plan:
        if (dataset, kind, budget, seed, fraction) in done:
            continue
        hidden, _ = matched_hidden(kind, budget, *shapes[dataset])
        row = {**run_one(dataset, kind, hidden, seed, args.epochs, fraction), "budget": budget}
        rows.append(row)
        with log_path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"[{time.perf_counter() - start:7.0f} s] {dataset} {kind} h={hidden} ({row['parameters']} params) seed {seed} "
              f"fraction {fraction}: test accuracy {row['test_accuracy']:.3f} ({row['seconds_per_epoch']:.2f} s/epoch)", flush=True)
        (out / "results.md").write_text(markdown(rows, args.seeds))
    print(markdown(rows, args.seeds))


if __name__ == "__main__":
    main()
