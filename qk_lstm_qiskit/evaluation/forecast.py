"""Forecast metrics on the test span: RMSE, MAE, the persistence baseline, a prediction-vs-truth PNG.

:func:`forecast_report` scores a forecaster on the test windows in the series' own units
(:func:`table_forecast_report` and :func:`plot_table_forecast`: several target columns, per target);
:func:`evaluate_forecast` does it for a saved ``model.pt`` on the exact executor and, given a
sampler backend, on that backend too (``qk-lstm evaluate --checkpoint`` of a forecasting run).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from ..data.scaling import ChannelScaler
from ..data.series import Scaler, SeriesWindows, TableWindows
from ..rundir import atomic_write, claim_out_dir, write_json_atomic

__all__ = ["regression_metrics", "predict", "forecast_report", "plot_forecast", "evaluate_forecast",
           "table_forecast_report", "plot_table_forecast"]

log = logging.getLogger(__name__)
OUTPUT_FILES = ("metrics.json", "forecast.png")


def regression_metrics(prediction: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """``rmse`` = ``sqrt(mean (ŷ − y)²)`` and ``mae`` = ``mean |ŷ − y|``."""
    prediction, truth = np.asarray(prediction, dtype=float), np.asarray(truth, dtype=float)
    if prediction.shape != truth.shape or prediction.size == 0:
        raise ValueError(f"regression_metrics: expected two equal non-empty shapes, got {prediction.shape} and {truth.shape}")
    error = prediction - truth
    return {"rmse": float(np.sqrt(np.mean(error**2))), "mae": float(np.mean(np.abs(error)))}


@torch.no_grad()
def predict(model: nn.Module, inputs: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
    """``model(inputs)`` in eval mode, ``batch_size`` windows at a time (default all). Shape: ``(N,)``."""
    was_training = model.training
    model.eval()
    step = batch_size or max(len(inputs), 1)
    out = torch.cat([model(inputs[i:i + step]) for i in range(0, len(inputs), step)]) if len(inputs) else inputs.new_zeros(0)
    model.train(was_training)
    return out


def forecast_report(model: nn.Module, windows: SeriesWindows, *, batch_size: int | None = None) -> dict[str, Any]:
    """Test-span metrics in the series' units: ``test_rmse``, ``test_mae``, ``persistence_rmse``/``_mae``
    (the last value of each window as its forecast), with ``test_prediction``/``test_truth`` lists."""
    inputs, _ = windows.test
    prediction = windows.to_series_units(predict(model, inputs, batch_size).double().numpy(), windows.test_index)
    truth = windows.series[windows.test_index]
    persistence = windows.series[windows.test_index - windows.horizon]
    ours, naive = regression_metrics(prediction, truth), regression_metrics(persistence, truth)
    return {
        "test_rmse": ours["rmse"], "test_mae": ours["mae"],
        "persistence_rmse": naive["rmse"], "persistence_mae": naive["mae"],
        "test_windows": len(truth), "test_prediction": prediction.tolist(), "test_truth": truth.tolist(),
    }


def plot_forecast(windows: SeriesWindows, predictions: dict[str, list[float]], path: str | os.PathLike, *,
                  title: str = "") -> Path:
    """The series up to the test span's end, and each named prediction over the test span, as a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 3.5))
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    ax.plot(np.arange(len(windows.series)), windows.series, color="0.6", lw=1, label="series")
    ax.plot(windows.test_index, windows.series[windows.test_index], color="black", lw=1.5, label="truth (test)")
    for label, values in predictions.items():
        ax.plot(windows.test_index, values, lw=1.2, ls="--", label=label)
    ax.axvline(windows.test_index[0], color="0.3", lw=0.8, ls=":")
    ax.set_xlabel("time step")
    ax.set_ylabel("value")
    ax.legend(fontsize=8, loc="best")
    if title:
        ax.set_title(title, fontsize=10)
    figure.tight_layout()
    with atomic_write(path) as tmp:
        figure.savefig(tmp, dpi=120)
    return Path(path)


def table_forecast_report(model: nn.Module, windows: TableWindows, *, batch_size: int | None = None) -> dict[str, Any]:
    """Test-span metrics per target column, in the columns' own units: ``targets`` (names),
    ``test_rmse``/``test_mae``/``persistence_rmse``/``persistence_mae`` as ``{target: value}``
    (persistence: each window's last value of the target), ``test_prediction``/``test_truth``
    as ``{target: list}``."""
    inputs, _ = windows.test
    prediction = windows.to_series_units(predict(model, inputs, batch_size).double().reshape(len(inputs), -1).numpy(),
                                         windows.test_index)  # (n, T)
    truth = windows.table[np.ix_(windows.test_index, np.asarray(windows.targets))]
    persistence = windows.persistence(windows.test_index)
    report: dict[str, Any] = {"targets": list(windows.target_names), "test_windows": len(truth)}
    for key in ("test_rmse", "test_mae", "persistence_rmse", "persistence_mae", "test_prediction", "test_truth"):
        report[key] = {}
    for j, name in enumerate(windows.target_names):
        ours, naive = regression_metrics(prediction[:, j], truth[:, j]), regression_metrics(persistence[:, j], truth[:, j])
        report["test_rmse"][name], report["test_mae"][name] = ours["rmse"], ours["mae"]
        report["persistence_rmse"][name], report["persistence_mae"][name] = naive["rmse"], naive["mae"]
        report["test_prediction"][name], report["test_truth"][name] = prediction[:, j].tolist(), truth[:, j].tolist()
    return report


def plot_table_forecast(windows: TableWindows, predictions: dict[str, dict[str, list[float]]], path: str | os.PathLike, *,
                        title: str = "") -> Path:
    """One panel per target column: the column, the test truth and each named prediction ``{label: {target: values}}``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = windows.target_names
    figure = Figure(figsize=(8, 2.6 * len(names)))
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(names), 1, squeeze=False)[:, 0]
    rows = np.arange(len(windows.table))
    for ax, name, column in zip(axes, names, windows.targets):
        ax.plot(rows, windows.table[:, column], color="0.6", lw=1, label=name)
        ax.plot(windows.test_index, windows.table[windows.test_index, column], color="black", lw=1.5, label="truth (test)")
        for label, values in predictions.items():
            ax.plot(windows.test_index, values[name], lw=1.2, ls="--", label=label)
        ax.axvline(windows.test_index[0], color="0.3", lw=0.8, ls=":")
        ax.set_ylabel(name)
        ax.legend(fontsize=7, loc="best")
    axes[-1].set_xlabel("row")
    if title:
        axes[0].set_title(title, fontsize=10)
    figure.tight_layout()
    with atomic_write(path) as tmp:
        figure.savefig(tmp, dpi=120)
    return Path(path)


def evaluate_forecast(
    checkpoint: str | os.PathLike, out_dir: str | os.PathLike, *, backend: str = "exact", shots: int = 4096,
    seed: int | None = 0, optimization_level: int = 2, batch_size: int | None = None,
) -> dict[str, Any]:
    """Test-span metrics of the forecaster at ``checkpoint``, exact and (unless ``backend="exact"``) on ``backend``.

    The series is rebuilt from the checkpoint's config (generated series with their seed, the same
    CSV file, statsmodels' data) and standardised with the saved training statistics. On a
    sampler backend (qk-lstm only) every time step of a batch of ``batch_size`` windows
    (default: all test windows) is one job; ``backend_rmse_vs_exact`` compares the two forecasts.

    Writes ``out_dir/metrics.json`` and ``out_dir/forecast.png``; refuses an ``out_dir`` that
    already holds them.

    Raises:
        ValueError: a tagger checkpoint, a non-qk-lstm model on a sampler backend, results already in ``out_dir``.
    """
    start = time.perf_counter()
    checkpoint = Path(checkpoint)
    if checkpoint.is_dir():
        checkpoint = checkpoint / "model.pt"
    with claim_out_dir(out_dir, command="evaluate", outputs=OUTPUT_FILES) as out:
        return _evaluate_forecast(checkpoint, out, backend=backend, shots=shots, seed=seed,
                                  optimization_level=optimization_level, batch_size=batch_size, start=start)


def _evaluate_forecast(checkpoint: Path, out_dir: Path, *, backend, shots, seed, optimization_level, batch_size,
                       start: float) -> dict[str, Any]:
    from ..checkpoint import load_forecaster
    from ..data.series import describe_source, is_table_config, prepare_series, prepare_table

    model, scaler, config = load_forecaster(checkpoint)
    if is_table_config(config.data, config.forecast):  # several columns: per-target metrics
        table = prepare_table(config.data, config.forecast, scaler=cast(ChannelScaler, scaler))
        return _evaluate_table(checkpoint, out_dir, table, model, config, describe_source(config.data, config.forecast),
                               backend=backend, shots=shots, seed=seed, optimization_level=optimization_level,
                               batch_size=batch_size, start=start)
    windows = prepare_series(config.data, config.forecast, scaler=cast(Scaler, scaler))  # the saved training statistics
    exact = forecast_report(model, windows, batch_size=batch_size)
    metrics: dict[str, Any] = {"checkpoint": str(checkpoint), "data": describe_source(config.data, config.forecast),
                               "model": config.model.kind, "backend": "exact", **exact}
    predictions = {f"{config.model.kind} (exact)": exact["test_prediction"]}
    if backend != "exact":
        from ..hardware.backends import resolve_backend

        if config.model.kind != "qk-lstm":
            raise ValueError(f"evaluate: expected a qk-lstm checkpoint on sampler backend {backend!r}, got {config.model.kind!r}")
        with resolve_backend(backend, shots=shots, seed=seed, optimization_level=optimization_level) as rb:
            sampled, _, _ = load_forecaster(checkpoint, sampler=rb.sampler, pass_manager=rb.pass_manager)
            on_backend = forecast_report(sampled, windows, batch_size=batch_size)
            metrics.update({
                **{k: v for k, v in on_backend.items() if k not in ("test_truth", "persistence_rmse", "persistence_mae")},
                **{f"exact_{k}": exact[k] for k in ("test_rmse", "test_mae", "test_prediction")},
                "backend_rmse_vs_exact": regression_metrics(on_backend["test_prediction"], exact["test_prediction"])["rmse"],
                **rb.info(), "seed": seed,
            })
            predictions[f"{config.model.kind} on {backend} ({shots} shots)"] = on_backend["test_prediction"]
    metrics["seconds"] = time.perf_counter() - start
    plot_forecast(windows, predictions, out_dir / "forecast.png",
                  title=f"{metrics['data']}: test RMSE {metrics['test_rmse']:.4g} (persistence {metrics['persistence_rmse']:.4g})")
    write_json_atomic(metrics, out_dir / "metrics.json")
    log.info("evaluate: test RMSE %.4g on %s (exact %.4g)", metrics["test_rmse"], backend, exact["test_rmse"])
    return metrics



def _evaluate_table(
    checkpoint: Path, out_dir: Path, windows: TableWindows, model: nn.Module, config, data: str, *, backend: str,
    shots: int, seed: int | None, optimization_level: int, batch_size: int | None, start: float,
) -> dict[str, Any]:
    """:func:`evaluate_forecast` of a forecaster of several target columns: every metric per target."""
    from ..checkpoint import load_forecaster

    exact = table_forecast_report(model, windows, batch_size=batch_size)
    metrics: dict[str, Any] = {"checkpoint": str(checkpoint), "data": data, "model": config.model.kind, "backend": "exact",
                               **exact}
    predictions = {f"{config.model.kind} (exact)": exact["test_prediction"]}
    if backend != "exact":
        from ..hardware.backends import resolve_backend

        if config.model.kind != "qk-lstm":
            raise ValueError(f"evaluate: expected a qk-lstm checkpoint on sampler backend {backend!r}, got {config.model.kind!r}")
        with resolve_backend(backend, shots=shots, seed=seed, optimization_level=optimization_level) as rb:
            sampled, _, _ = load_forecaster(checkpoint, sampler=rb.sampler, pass_manager=rb.pass_manager)
            on_backend = table_forecast_report(sampled, windows, batch_size=batch_size)
        metrics.update({
            **{k: v for k, v in on_backend.items() if k not in ("test_truth", "persistence_rmse", "persistence_mae")},
            **{f"exact_{k}": exact[k] for k in ("test_rmse", "test_mae", "test_prediction")},
            "backend_rmse_vs_exact": {name: regression_metrics(on_backend["test_prediction"][name],
                                                               exact["test_prediction"][name])["rmse"]
                                      for name in exact["targets"]},
            **rb.info(), "seed": seed,
        })
        predictions[f"{config.model.kind} on {backend} ({shots} shots)"] = on_backend["test_prediction"]
    persistence = windows.persistence(windows.test_index)
    predictions["persistence"] = {name: persistence[:, j].tolist() for j, name in enumerate(windows.target_names)}
    metrics["seconds"] = time.perf_counter() - start
    plot_table_forecast(windows, predictions, out_dir / "forecast.png", title=f"{data}: test span")
    write_json_atomic(metrics, out_dir / "metrics.json")
    return metrics
