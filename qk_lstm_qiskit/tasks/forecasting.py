"""Forecasting: windows of a series → the value ``horizon`` steps ahead; mean squared error on standardised values.

Data: ``data.source`` ``shm`` | ``bessel`` | ``co2`` | a ``.csv`` path and the ``forecast`` section
(:func:`~qk_lstm_qiskit.data.series.prepare_series`); or several columns in and one or several out
(``forecast.columns``, ``forecast.target``; ``macrodata`` or a ``.csv`` path:
:func:`~qk_lstm_qiskit.data.series.prepare_table`, scored per target). Model:
:class:`~qk_lstm_qiskit.nn.forecaster.Forecaster`; checkpoints keep the training span's scaler.
``model.pt`` keeps the lowest validation loss; after training it is scored on the test span
(:func:`~qk_lstm_qiskit.evaluation.forecast.forecast_report`) and ``forecast.png`` is drawn.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Sequence, cast

import torch
from torch import nn

from ..checkpoint import MODEL_FILE, load_checkpoint
from ..data.scaling import ChannelScaler
from ..data.series import (
    TABLE_SOURCES, Scaler, SeriesWindows, TableWindows, describe_source, is_series_source, is_table_config,
    prepare_series, prepare_table,
)
from ..evaluation.backend import default_eval_dir
from ..evaluation.forecast import (
    estimate_forecast, evaluate_forecast, evaluate_forecast_on_backend, forecast_backend_work, forecast_report, plot_forecast,
    plot_table_forecast, table_forecast_report,
)
from ..evaluation.options import EvaluationRequest
from ..nn.forecaster import build_forecaster
from .base import Step, Task, TaskData, backend_report

__all__ = ["ForecastingTask"]

log = logging.getLogger(__name__)
Windows = tuple[torch.Tensor, torch.Tensor]  # inputs (N, W, F), targets (N,) or (N, T)


class ForecastingTask(Task):
    """Mean squared error of one-value (or per-target) forecasts; metric: the loss itself (lower is better)."""

    name, metric, higher_is_better = "forecasting", "loss", False
    sections = Task.sections + ("forecast",)
    checkpoint_keys = ("scaler", "num_features")

    scaler: Scaler | ChannelScaler
    windows: SeriesWindows | TableWindows
    num_features = 1
    num_targets: int | None = None  # None: one series, predictions (N,); T: several target columns, (N, T)

    def check(self, config) -> None:
        if not (is_series_source(config.data.source) or config.data.source in TABLE_SOURCES):
            raise ValueError(f"config: expected data.source shm, bessel, co2, {', '.join(TABLE_SOURCES)} or a .csv file "
                             f"for task 'forecasting', got {config.data.source!r}")

    @property
    def multivariate(self) -> bool:
        return is_table_config(self.config.data, self.config.forecast)

    # ------------------------------------------------------------------ data and model
    def prepare(self) -> TaskData:
        if self.multivariate:
            table = prepare_table(self.config.data, self.config.forecast)
            self.windows, self.scaler = table, table.scaler
            self.num_features, self.num_targets = len(table.inputs), len(table.targets)
        else:
            self.windows = prepare_series(self.config.data, self.config.forecast)
            self.scaler = self.windows.scaler
        validation = self.windows.validation
        return TaskData(self.windows.train, validation if len(validation[1]) else None)

    def metadata(self) -> dict[str, Any]:
        extra = {} if self.num_targets is None else {"num_targets": self.num_targets}
        return {"scaler": self.scaler.to_dict(), "num_features": self.num_features, **extra}

    def restore(self, state: Mapping[str, Any]) -> None:
        scaler = state["scaler"]
        self.scaler = ChannelScaler.from_dict(scaler) if isinstance(scaler["mean"], (list, tuple)) else Scaler(**scaler)
        self.num_features, self.num_targets = state["num_features"], state.get("num_targets")

    def build_model(self, *, sampler=None, pass_manager=None, memory_limit: int | None = None) -> nn.Module:
        return build_forecaster(self.config.model, self.num_features, num_targets=self.num_targets, sampler=sampler,
                                pass_manager=pass_manager, memory_limit=memory_limit)

    def recurrent_inputs(self, model: nn.Module, train: Windows) -> torch.Tensor:
        return train[0][:32]

    def sequence_lengths(self, examples: Windows) -> list[int]:
        """Every window is ``forecast.window`` steps long (``train --dry-run`` / ``--max-qpu-seconds``)."""
        return [int(examples[0].size(1))] * len(examples[1])

    # ------------------------------------------------------------------ trainer
    def batches(self, examples: Windows, generator: torch.Generator | None = None) -> list[Windows]:
        """``(inputs, targets)`` chunks of ``train.batch_size`` windows, shuffled with ``generator`` if given."""
        inputs, targets = examples
        order = torch.randperm(len(targets), generator=generator) if generator is not None else torch.arange(len(targets))
        return [(inputs[idx], targets[idx]) for idx in order.split(self.config.train.batch_size)]

    def step(self, model: nn.Module, batch: Windows, device: torch.device) -> Step:
        inputs, targets = (t.to(device) for t in batch)
        loss = nn.functional.mse_loss(model(inputs), targets)
        return loss, len(targets), loss.item() * len(targets)

    def count(self, batch: Windows) -> int:
        return len(batch[1])

    def shard(self, batch: Windows, rank: int, world_size: int) -> Windows | None:
        inputs, targets = batch
        rows = slice(rank, None, world_size)
        return (inputs[rows], targets[rows]) if len(targets[rows]) else None

    def summarise(self, loss_sum: float, metric_sum: float, count: int) -> dict[str, float]:
        return {"loss": loss_sum / count}

    @torch.no_grad()
    def evaluate(self, model: nn.Module, batches: Sequence[Windows]) -> dict[str, float]:
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        sums = [self.step(model, batch, device)[1:] for batch in batches]
        model.train(was_training)
        return self.summarise(sum(s for _, s in sums), 0.0, sum(n for n, _ in sums))

    # ------------------------------------------------------------------ after training
    def report(self, model: nn.Module, data: TaskData, history: list[dict[str, float]],
               out_dir: Path | None) -> dict[str, Any]:
        """``test_rmse``, ``test_mae``, ``persistence_rmse``, ``persistence_mae`` (series units) of
        ``model.pt`` (lowest validation loss; the last epoch without validation or run folder);
        writes ``forecast.png``."""
        config, windows = self.config, self.windows
        if out_dir is not None and (out_dir / MODEL_FILE).is_file():  # score what is shipped: the best epoch
            best = load_checkpoint(out_dir / MODEL_FILE)
            model.load_state_dict(best["model_state"])
            scored_epoch = best["epoch"]
        else:
            scored_epoch = len(history)
        keys = ("test_rmse", "test_mae", "persistence_rmse", "persistence_mae", "test_windows")
        table = isinstance(windows, TableWindows)
        report = (table_forecast_report(model, cast(TableWindows, windows)) if table
                  else forecast_report(model, cast(SeriesWindows, windows)))
        extra: dict[str, Any] = {
            "data": describe_source(config.data, config.forecast),
            "final_loss": history[-1]["loss"],
            "test_epoch": scored_epoch,
            **({"targets": report["targets"]} if table else {}),
            **{k: report[k] for k in keys},
            "seconds_per_epoch": sum(r["seconds"] for r in history) / len(history),
        }
        if data.validation is not None:
            extra["best_val_loss"] = min(r["val_loss"] for r in history)
        label = f"{config.model.kind} (epoch {scored_epoch})"
        if isinstance(windows, TableWindows):
            if out_dir is not None:
                persistence = windows.persistence(windows.test_index)
                plot_table_forecast(windows, {label: report["test_prediction"], "persistence": {
                    name: persistence[:, j].tolist() for j, name in enumerate(windows.target_names)}},
                    out_dir / "forecast.png", title=f"{extra['data']}: test span")
            for name in report["targets"]:
                log.info("forecast %s: test RMSE %.4g; persistence RMSE %.4g", name, report["test_rmse"][name],
                         report["persistence_rmse"][name])
            return extra
        if out_dir is not None:
            plot_forecast(windows, {label: report["test_prediction"],
                                    "persistence": windows.series[windows.test_index - windows.horizon].tolist()},
                          out_dir / "forecast.png",
                          title=f"{extra['data']}: test RMSE {report['test_rmse']:.4g} (persistence {report['persistence_rmse']:.4g})")
        log.info("forecast: test RMSE %.4g, MAE %.4g; persistence RMSE %.4g", report["test_rmse"], report["test_mae"],
                 report["persistence_rmse"])
        return extra

    def summary(self, result: Mapping[str, Any]) -> list[str]:
        if "targets" in result:  # several target columns: one line each
            lines = [f"{name}: test RMSE {result['test_rmse'][name]:.4g}  MAE {result['test_mae'][name]:.4g}  (persistence "
                     f"RMSE {result['persistence_rmse'][name]:.4g}, MAE {result['persistence_mae'][name]:.4g})"
                     for name in result["targets"]] + [f"on {result['test_windows']} test windows of {result['data']}"]
        else:
            lines = [f"test RMSE: {result['test_rmse']:.4g}  MAE: {result['test_mae']:.4g}  (persistence RMSE "
                     f"{result['persistence_rmse']:.4g}, MAE {result['persistence_mae']:.4g}) on {result['data']}"]
        out = result.get("out_dir")
        return lines + ([f"outputs: {out}/metrics.json, {out}/model.pt, {out}/forecast.png"] if out else [])

    # ------------------------------------------------------------------ saved checkpoints
    EXACT_OPTIONS = ("backend", "out_dir", "batch_size", "progress")  # the series and its test span come from the config

    def _check_request(self, request: EvaluationRequest, command: str) -> None:
        """One line for an option a forecast checkpoint does not take (its data is the run's own test span)."""
        for name, value in request.changed().items():
            if name in ("data", "max_items"):
                raise ValueError(f"{command}: expected no {request.label(name)} with a forecast checkpoint (its test "
                                 f"windows come from the run's config), got {request.label(name)} {value}")
            if request.backend == "exact" and name not in self.EXACT_OPTIONS:
                raise ValueError(f"{command}: expected {request.label(name)} only with a sampler backend, "
                                 f"got {request.label('backend')} exact")

    def evaluate_checkpoint(self, checkpoint: Path, request: EvaluationRequest) -> dict[str, Any]:
        """Test-span RMSE and MAE of the checkpoint's forecaster, exact
        (:func:`~qk_lstm_qiskit.evaluation.forecast.evaluate_forecast`) or, qk-lstm, on a sampler backend next to
        the exact model's, with the journal, estimate, budget and mitigation of tagging
        (:func:`~qk_lstm_qiskit.evaluation.forecast.evaluate_forecast_on_backend`)."""
        self._check_request(request, "evaluate")
        checkpoint = checkpoint / MODEL_FILE if checkpoint.is_dir() else checkpoint
        if request.backend != "exact":
            return evaluate_forecast_on_backend(checkpoint, request)
        out = request.out_dir or default_eval_dir(checkpoint, request.backend)
        metrics = evaluate_forecast(checkpoint, out, batch_size=request.batch_size)
        return {**metrics, "out_dir": str(out)}

    def backend_work(self, checkpoint: Path, request: EvaluationRequest) -> tuple[Any, Any]:
        self._check_request(request, "evaluate")
        return forecast_backend_work(checkpoint, request)

    def estimate_checkpoint(self, checkpoint: Path, request: EvaluationRequest, *, training: bool = False,
                            epochs: int = 1) -> Any:
        """The QPU cost of forecasting the test windows (``training``: training on the training windows)."""
        self._check_request(request, "estimate")
        return estimate_forecast(checkpoint, request, training=training, epochs=epochs)

    def evaluation_summary(self, metrics: Mapping[str, Any], request: EvaluationRequest) -> list[str]:
        out = metrics.get("out_dir")
        if metrics.get("dry_run"):
            return backend_report(metrics, [])
        on = request.backend != "exact"
        if "targets" in metrics:  # several target columns: one line each
            lines = []
            for name in metrics["targets"]:
                versus = (f" (exact {metrics['exact_test_rmse'][name]:.4g}; backend vs exact "
                          f"{metrics['backend_rmse_vs_exact'][name]:.4g})" if on else "")
                lines.append(f"{name}: test RMSE {metrics['test_rmse'][name]:.4g}{versus}  persistence RMSE "
                             f"{metrics['persistence_rmse'][name]:.4g}")
            lines.append(f"on {metrics['test_windows']} test windows of {metrics['data']} ({request.backend})")
        elif on:
            lines = [f"on {metrics['backend']} ({metrics['shots']} shots): test RMSE {metrics['test_rmse']:.4g}  "
                     f"MAE {metrics['test_mae']:.4g}  (exact {metrics['exact_test_rmse']:.4g}; RMSE backend vs "
                     f"exact {metrics['backend_rmse_vs_exact']:.4g})"]
        else:
            lines = [f"exact: test RMSE {metrics['test_rmse']:.4g}  MAE {metrics['test_mae']:.4g}"]
        if "targets" not in metrics:
            lines.append(f"persistence: RMSE {metrics['persistence_rmse']:.4g}  MAE {metrics['persistence_mae']:.4g} "
                         f"on {metrics['test_windows']} test windows of {metrics['data']}")
        if on:
            return backend_report(metrics, lines)
        return lines + [f"outputs: {out}/metrics.json, {out}/forecast.png"]
