"""QK-LSTM vs nn.LSTM vs VQC-QLSTM forecasting at matched parameter budgets, over several seeds.

Trains ``configs/forecast_{qklstm,lstm,qlstm}.yaml`` (≈ 118 parameters each) on the damped
pendulum (``shm``), Bessel J₂ (``bessel``) and the Mauna Loa CO₂ series (``co2``, from
statsmodels) for ``--seeds`` training seeds, and writes a markdown table of test RMSE and MAE
(series units, mean ± std over seeds) next to the persistence forecast (last value of the
window), with trainable parameters and seconds per epoch.

Every run is a normal ``qk-lstm train`` run folder under ``--out``; a rerun reuses finished
runs and resumes unfinished ones.

    python benchmarks/compare_forecast.py --out runs/compare_forecast [--seeds 3] [--epochs 50] [--series shm,co2]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from statistics import mean, pstdev
from typing import Any

import torch

from qk_lstm_qiskit.config import RunConfig, load_config
from qk_lstm_qiskit.errors import ProductKernelWarning
from qk_lstm_qiskit.training.experiment import run_training

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
MODELS = {"qk-lstm": "forecast_qklstm.yaml", "lstm": "forecast_lstm.yaml", "qlstm": "forecast_qlstm.yaml"}
SERIES = {"shm": "damped pendulum (240 steps)", "bessel": "Bessel J₂ (240 steps)",
          "co2": "Mauna Loa CO₂, monthly (526 months), `forecast.relative: true`"}
# The CO₂ test span lies above everything seen in training: windows relative to their last value.
SERIES_OVERRIDES: dict[str, dict[str, Any]] = {"co2": {"relative": True}}


def run_config(model: str, series: str, seed: int, epochs: int | None) -> RunConfig:
    train: dict[str, Any] = {"seed": seed} | ({"epochs": epochs} if epochs is not None else {})
    return load_config(CONFIGS / MODELS[model],
                       {"data": {"source": series}, "train": train, "forecast": SERIES_OVERRIDES.get(series, {})})


def train_or_reuse(config: RunConfig, out_dir: Path) -> dict[str, Any]:
    """Metrics of the run in ``out_dir``: reused when finished, resumed when started, else trained."""
    metrics_path = out_dir / "metrics.json"
    if metrics_path.is_file():
        metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
        if "test_rmse" in metrics and metrics.get("config") == config.to_dict():
            return metrics
    return run_training(config, out_dir, resume=(out_dir / "last.pt").is_file(), progress=False)


def spread(values: list[float]) -> str:
    return f"{mean(values):.4f} ± {pstdev(values):.4f}"


def markdown(runs: dict[str, dict[str, list[dict[str, Any]]]], note: str) -> str:
    lines = [
        "Test RMSE and MAE in the series' units, mean ± std over seeds (population std); persistence = last value of the window.",
        "",
        "| Series | Model | Trainable parameters | Seeds × epochs | Test RMSE | Test MAE | s / epoch | × LSTM time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for series, by_model in runs.items():
        per_epoch = {m: mean(e["seconds"] for r in rs for e in r["epochs"]) for m, rs in by_model.items()}
        for model, results in by_model.items():
            ratio = f"{per_epoch[model] / per_epoch['lstm']:.1f}" if "lstm" in per_epoch else "–"
            lines.append(
                f"| {series} | {model} | {results[0]['trainable_parameters']} | {len(results)} × {len(results[0]['epochs'])} | "
                f"{spread([r['test_rmse'] for r in results])} | {spread([r['test_mae'] for r in results])} | "
                f"{per_epoch[model]:.3f} | {ratio} |"
            )
        first = next(iter(by_model.values()))[0]
        lines.append(f"| {series} | persistence | 0 | – | {first['persistence_rmse']:.4f} | {first['persistence_mae']:.4f} | – | – |")
    return "\n".join(lines) + "\n\n" + note + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/compare_forecast", help="folder for the runs and the table")
    parser.add_argument("--seeds", type=int, default=3, help="training seeds 0..N-1 (default 3)")
    parser.add_argument("--epochs", type=int, help="override the configs' epochs (50)")
    parser.add_argument("--series", default=",".join(SERIES), help=f"comma-separated subset of {','.join(SERIES)}")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated subset of {','.join(MODELS)}")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args(argv)
    series_names = [s.strip() for s in args.series.split(",") if s.strip()]
    model_names = [m.strip() for m in args.models.split(",") if m.strip()]
    if not series_names or any(s not in SERIES for s in series_names):
        parser.error(f"--series: expected names from {','.join(SERIES)}, got {args.series!r}")
    if not model_names or any(m not in MODELS for m in model_names):
        parser.error(f"--models: expected names from {','.join(MODELS)}, got {args.models!r}")
    if args.seeds < 1:
        parser.error(f"--seeds: expected >= 1, got {args.seeds}")
    warnings.simplefilter("ignore", ProductKernelWarning)
    torch.set_num_threads(args.threads)
    out, start = Path(args.out), time.perf_counter()
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for series in series_names:
        runs[series] = {}
        for model in model_names:
            runs[series][model] = []
            for seed in range(args.seeds):
                result = train_or_reuse(run_config(model, series, seed, args.epochs), out / series / model / f"seed-{seed}")
                runs[series][model].append(result)
                print(f"{series} {model} seed {seed}: test RMSE {result['test_rmse']:.4f}  MAE {result['test_mae']:.4f}  "
                      f"(persistence {result['persistence_rmse']:.4f})", flush=True)
    note = (f"Series: {'; '.join(f'`{s}` = {SERIES[s]}' for s in series_names)}. Windows of 4 → next value, split 60/20/20 "
            f"in time, standardised on the training span (relative windows: scaled by the training changes' std); Adam lr 0.01, batch 16; model.pt = lowest validation loss. "
            f"s / epoch = training + validation pass, exact executor, {args.threads} torch thread(s), wall clock on a "
            f"shared machine. Total time {time.perf_counter() - start:.0f} s.")
    table = markdown(runs, note)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare_forecast.md").write_text(table, encoding="utf-8")
    summary = {s: {m: [{k: r[k] for k in ("test_rmse", "test_mae", "persistence_rmse", "persistence_mae",
                                          "trainable_parameters", "seconds_per_epoch", "test_epoch")} for r in rs]
                   for m, rs in by_model.items()} for s, by_model in runs.items()}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(table)
    print(f"outputs: {out}/compare_forecast.md, {out}/summary.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
