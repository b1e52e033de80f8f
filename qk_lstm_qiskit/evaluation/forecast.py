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
from .sampling import rmse_interval, rmse_intervals_by_target
from .work import BackendWork, interval_metrics
from ..rundir import atomic_write, claim_out_dir, write_json_atomic

__all__ = ["regression_metrics", "predict", "forecast_report", "series_scores", "plot_forecast", "evaluate_forecast",
           "evaluate_forecast_on_backend", "estimate_forecast", "forecast_backend_work", "forecast_work", "table_forecast_report", "table_scores",
           "plot_table_forecast"]

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
    return series_scores(windows, predict(model, windows.test[0], batch_size))


def series_scores(windows: SeriesWindows, predicted: torch.Tensor, rows: np.ndarray | None = None) -> dict[str, Any]:
    """:func:`forecast_report` of standardised test-span predictions ``predicted`` ``(N,)`` (of the test windows
    ``rows`` when given, a sample)."""
    index = windows.test_index if rows is None else windows.test_index[rows]
    prediction = windows.to_series_units(predicted.double().numpy(), index)
    truth = windows.series[index]
    persistence = windows.series[index - windows.horizon]
    ours, naive = regression_metrics(prediction, truth), regression_metrics(persistence, truth)
    return {
        "test_rmse": ours["rmse"], "test_mae": ours["mae"],
        "persistence_rmse": naive["rmse"], "persistence_mae": naive["mae"],
        "test_windows": len(truth), "test_prediction": prediction.tolist(), "test_truth": truth.tolist(),
    }


def plot_forecast(windows: SeriesWindows, predictions: dict[str, list[float]], path: str | os.PathLike, *,
                  title: str = "", points: dict[str, tuple[np.ndarray, list[float]]] | None = None) -> Path:
    """The series up to the test span's end, each named prediction over the test span, and each named
    ``points`` ``(positions in the series, values)`` (a sample of windows) as markers, as a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 3.5))
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    ax.plot(np.arange(len(windows.series)), windows.series, color="0.6", lw=1, label="series")
    ax.plot(windows.test_index, windows.series[windows.test_index], color="black", lw=1.5, label="truth (test)")
    for label, values in predictions.items():
        ax.plot(windows.test_index, values, lw=1.2, ls="--", label=label)
    for label, (positions, values) in (points or {}).items():
        ax.plot(positions, values, "o", ms=3.5, label=label)
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
    return table_scores(windows, predict(model, windows.test[0], batch_size))


def table_scores(windows: TableWindows, predicted: torch.Tensor, rows: np.ndarray | None = None) -> dict[str, Any]:
    """:func:`table_forecast_report` of standardised test-span predictions ``predicted`` ``(N, T)`` (of the test
    windows ``rows`` when given, a sample)."""
    index = windows.test_index if rows is None else windows.test_index[rows]
    prediction = windows.to_series_units(predicted.double().reshape(len(predicted), -1).numpy(), index)  # (n, T)
    truth = windows.table[np.ix_(index, np.asarray(windows.targets))]
    persistence = windows.persistence(index)
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
                        title: str = "", points: dict[str, tuple[np.ndarray, dict[str, list[float]]]] | None = None) -> Path:
    """One panel per target column: the column, the test truth, each named prediction ``{label: {target: values}}``
    and each named ``points`` ``(rows, {target: values})`` (a sample of windows) as markers."""
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
        for label, (positions, marked) in (points or {}).items():
            ax.plot(positions, marked[name], "o", ms=3.5, label=label)
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


def _versus_exact(on_backend: dict[str, Any], exact: dict[str, Any]) -> dict[str, Any]:
    """The backend's scores with the exact model's ``exact_test_rmse``/``_mae``/``_prediction`` and ``backend_rmse_vs_exact``
    (per target for a table)."""
    if "targets" in exact:
        versus: Any = {name: regression_metrics(on_backend["test_prediction"][name], exact["test_prediction"][name])["rmse"]
                       for name in exact["targets"]}
    else:
        versus = regression_metrics(on_backend["test_prediction"], exact["test_prediction"])["rmse"]
    return {**{k: v for k, v in on_backend.items() if k not in ("test_truth", "persistence_rmse", "persistence_mae")},
            **{f"exact_{k}": exact[k] for k in ("test_rmse", "test_mae", "test_prediction")},
            "backend_rmse_vs_exact": versus}


def _plot(windows: SeriesWindows | TableWindows, predictions: dict[str, Any], path: Path, data: str,
          scores: dict[str, Any], points: dict[str, Any] | None = None) -> None:
    if isinstance(windows, TableWindows):
        persistence = windows.persistence(windows.test_index)
        predictions = {**predictions, "persistence": {name: persistence[:, j].tolist()
                                                      for j, name in enumerate(windows.target_names)}}
        plot_table_forecast(windows, predictions, path, title=f"{data}: test span", points=points)
    else:
        plot_forecast(windows, predictions, path, points=points,
                      title=f"{data}: test RMSE {scores['test_rmse']:.4g} (persistence {scores['persistence_rmse']:.4g})")


def _restored_windows(checkpoint: Path) -> tuple[nn.Module, SeriesWindows | TableWindows, Any, str]:
    """``(exact forecaster, test windows standardised with the saved training statistics, config, data name)``;
    the series is rebuilt from the checkpoint's config (generated series with their seed, the same CSV file,
    statsmodels' data)."""
    from ..checkpoint import load_forecaster
    from ..data.series import describe_source, is_table_config, prepare_series, prepare_table

    model, scaler, config = load_forecaster(checkpoint)
    windows: SeriesWindows | TableWindows
    if is_table_config(config.data, config.forecast):
        windows = prepare_table(config.data, config.forecast, scaler=cast(ChannelScaler, scaler))
    else:
        windows = prepare_series(config.data, config.forecast, scaler=cast(Scaler, scaler))
    return model, windows, config, describe_source(config.data, config.forecast)


def forecast_work(windows: SeriesWindows | TableWindows, model_kind: str, data: str, batch_size: int | None = None,
                  rows: np.ndarray | None = None):
    """The :class:`~qk_lstm_qiskit.evaluation.work.BackendWork` of forecasting the test windows (``rows`` of
    them when given: a sample), ``batch_size`` at a time (default all in one batch: one job per time step): the
    test RMSE and MAE on the backend (per target for a table), the exact model's, ``backend_rmse_vs_exact``,
    persistence, ``forecast.png``; on a sample, each RMSE's 95 % interval
    (:func:`~qk_lstm_qiskit.evaluation.sampling.rmse_interval`) and the exact RMSE over every test window.
    Headline metric: the test RMSE in the series' units; for a table, the mean over targets of
    ``RMSE / persistence RMSE`` (``"relative test RMSE"``, unit-free)."""
    table = isinstance(windows, TableWindows)
    inputs = windows.test[0] if rows is None else windows.test[0][torch.as_tensor(rows)]
    size = batch_size or max(len(inputs), 1)

    def scores(predicted: torch.Tensor, at: np.ndarray | None = rows) -> dict[str, Any]:
        return (table_scores(windows, predicted, at) if table  # type: ignore[arg-type]
                else series_scores(windows, predicted, at))  # type: ignore[arg-type]

    def run(model: nn.Module, batches) -> torch.Tensor:
        return torch.cat([predict(model, batch) for batch in batches])

    def score(on_backend: torch.Tensor, exact: torch.Tensor, out: Path, title: str, exact_full) -> dict[str, Any]:
        ours, theirs = scores(on_backend), scores(exact)
        kept = {k: theirs[k] for k in ("persistence_rmse", "persistence_mae", "test_truth")}
        metrics = {"model": model_kind, **_versus_exact(ours, theirs), **kept}
        if exact_full is None:
            _plot(windows, {f"{model_kind} (exact)": theirs["test_prediction"],
                            f"{model_kind} {title}": ours["test_prediction"]}, out / "forecast.png", data, ours)
            return metrics
        full = scores(exact_full, None)
        index = windows.test_index[rows]
        _plot(windows, {f"{model_kind} (exact)": full["test_prediction"]}, out / "forecast.png", data, full,
              points={f"{model_kind} {title}, sampled windows": (index, ours["test_prediction"])})
        if table:
            names = cast(TableWindows, windows).target_names
            truth, predicted = (np.asarray([ours[k][n] for n in names]).T for k in ("test_truth", "test_prediction"))
            intervals = rmse_intervals_by_target((predicted - truth) ** 2, len(windows.test_index))
            per_target = {n: interval_metrics(i, full["test_rmse"][n]) for n, i in zip(names, intervals)}
            metrics.update({key: {n: per_target[n][key] for n in per_target} for key in next(iter(per_target.values()))})
        else:
            errors = (np.asarray(ours["test_prediction"]) - np.asarray(ours["test_truth"])) ** 2
            metrics.update(interval_metrics(rmse_interval(errors, len(windows.test_index)), full["test_rmse"]))
        return metrics

    def metric(predicted: torch.Tensor) -> float:
        scored = scores(predicted)
        if not table:
            return scored["test_rmse"]
        return float(np.mean([scored["test_rmse"][n] / scored["persistence_rmse"][n] for n in scored["targets"]]))

    def select(indices) -> Any:
        return forecast_work(windows, model_kind, data, batch_size, rows=np.asarray(indices, dtype=int))

    return BackendWork(batches=list(inputs.split(size)), lengths=[int(inputs.size(1))] * len(inputs), batch_size=size,
                       run=run, combine=torch.cat, score=score, source=data,
                       batch_lengths=lambda batch: torch.full((len(batch),), batch.size(1)), metric=metric,
                       metric_name="relative test RMSE" if table else "test RMSE", higher_is_better=False,
                       select=select if rows is None else None)


def forecast_backend_work(checkpoint: str | os.PathLike, request) -> tuple[Any, Any]:
    """``(work, load)`` of a qk-lstm forecaster's test windows on a sampler backend (:func:`forecast_work`,
    ``request.batch_size`` windows a batch, default all; ``load(sampler=None, pass_manager=None)`` → the model).

    Raises:
        ValueError: not a qk-lstm forecaster.
    """
    from ..checkpoint import load_forecaster

    path = _model_file(checkpoint)
    _, windows, config, data = _restored_windows(path)
    if config.model.kind != "qk-lstm":
        raise ValueError(f"evaluate: expected a qk-lstm checkpoint on sampler backend {request.backend!r}, "
                         f"got {config.model.kind!r}")

    def load(sampler=None, pass_manager=None) -> nn.Module:
        return load_forecaster(path, sampler=sampler, pass_manager=pass_manager)[0]

    return forecast_work(windows, config.model.kind, data, request.batch_size), load


def evaluate_forecast_on_backend(checkpoint: str | os.PathLike, request, *, resolved=None) -> dict[str, Any]:
    """:func:`~qk_lstm_qiskit.evaluation.backend.evaluate_on_backend` of a qk-lstm forecaster's test windows
    (:func:`forecast_backend_work`): journal, resume, estimate, budget, mitigation and the kernels' fidelity as
    for tagging. Writes ``metrics.json``, ``forecast.png``, ``jobs.jsonl`` and ``results/``."""
    from .backend import evaluate_on_backend

    work, load = forecast_backend_work(checkpoint, request)
    return evaluate_on_backend(_model_file(checkpoint), request, work, load=load, outputs=("forecast.png",),
                               resolved=resolved)


def estimate_forecast(checkpoint: str | os.PathLike, request, *, training: bool = False, epochs: int = 1,
                      resolved=None):
    """The :class:`~qk_lstm_qiskit.hardware.cost.CostEstimate` of forecasting the test windows (``training``: of
    training on the training windows) with the checkpoint's qk-lstm on ``request.backend``; nothing submitted."""
    from ..checkpoint import load_forecaster
    from .backend import estimate_on_backend

    path = _model_file(checkpoint)
    _, windows, config, _ = _restored_windows(path)
    if config.model.kind != "qk-lstm":
        raise ValueError(f"estimate: expected a qk-lstm checkpoint (its kernels use the sampler), got {config.model.kind!r}")
    inputs = (windows.train if training else windows.test)[0]
    size = request.batch_size or (config.train.batch_size if training else max(len(inputs), 1))

    def load(sampler=None, pass_manager=None) -> nn.Module:
        return load_forecaster(path, sampler=sampler, pass_manager=pass_manager)[0]

    return estimate_on_backend(path, request, [int(inputs.size(1))] * len(inputs), size, load=load, training=training,
                               epochs=epochs, resolved=resolved)


def _model_file(checkpoint: str | os.PathLike) -> Path:
    path = Path(checkpoint)
    return path / "model.pt" if path.is_dir() else path


def evaluate_forecast(
    checkpoint: str | os.PathLike, out_dir: str | os.PathLike, *, backend: str = "exact", shots: int = 4096,
    seed: int | None = 0, optimization_level: int = 2, batch_size: int | None = None,
) -> dict[str, Any]:
    """Test-span metrics of the forecaster at ``checkpoint``, exact or (``backend`` a sampler backend, qk-lstm
    only) on the backend next to the exact model's (:func:`evaluate_forecast_on_backend` with these options).

    Writes ``out_dir/metrics.json`` and ``out_dir/forecast.png`` (and the job journal on a backend); refuses an
    ``out_dir`` that already holds them.

    Raises:
        ValueError: a tagger checkpoint, a non-qk-lstm model on a sampler backend, results already in ``out_dir``.
    """
    if backend != "exact":
        from .options import EvaluationRequest, Sampling

        request = EvaluationRequest(backend=backend, out_dir=Path(out_dir), batch_size=batch_size,
                                    sampling=Sampling(shots, seed, optimization_level))
        return evaluate_forecast_on_backend(checkpoint, request)
    start = time.perf_counter()
    path = _model_file(checkpoint)
    with claim_out_dir(out_dir, command="evaluate", outputs=OUTPUT_FILES) as out:
        model, windows, config, data = _restored_windows(path)
        scores = (table_forecast_report(model, windows, batch_size=batch_size) if isinstance(windows, TableWindows)
                  else forecast_report(model, windows, batch_size=batch_size))
        metrics: dict[str, Any] = {"checkpoint": str(path), "data": data, "model": config.model.kind, "backend": "exact",
                                   **scores, "seconds": time.perf_counter() - start}
        _plot(windows, {f"{config.model.kind} (exact)": scores["test_prediction"]}, out / "forecast.png", data, scores)
        write_json_atomic(metrics, out / "metrics.json")
    log.info("evaluate: test RMSE of %s on %s (exact)", config.model.kind, data)
    return metrics
