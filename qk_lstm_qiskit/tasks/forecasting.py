"""Forecasting: windows of a series → the value ``horizon`` steps ahead; mean squared error on standardised values.

Data: ``data.source`` ``shm`` | ``bessel`` | ``co2`` | a ``.csv`` path and the ``forecast`` section
(:func:`~qk_lstm_qiskit.data.series.prepare_series`); model:
:class:`~qk_lstm_qiskit.nn.forecaster.Forecaster`; checkpoints keep the training span's scaler.
``model.pt`` keeps the lowest validation loss; after training it is scored on the test span
(:func:`~qk_lstm_qiskit.evaluation.forecast.forecast_report`) and ``forecast.png`` is drawn.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from ..checkpoint import MODEL_FILE, load_checkpoint
from ..data.series import Scaler, SeriesWindows, describe_source, is_series_source, prepare_series
from ..evaluation.backend import default_eval_dir
from ..evaluation.forecast import evaluate_forecast, forecast_report, plot_forecast
from ..evaluation.options import EvaluationRequest
from ..nn.forecaster import build_forecaster
from .base import Step, Task, TaskData

__all__ = ["ForecastingTask"]

log = logging.getLogger(__name__)
Windows = tuple[torch.Tensor, torch.Tensor]  # inputs (N, W, F), targets (N,)


class ForecastingTask(Task):
    """Mean squared error of one-value forecasts; metric: the loss itself (lower is better)."""

    name, metric, higher_is_better = "forecasting", "loss", False
    sections = Task.sections + ("forecast",)
    checkpoint_keys = ("scaler", "num_features")

    scaler: Scaler
    windows: SeriesWindows
    num_features = 1

    def check(self, config) -> None:
        if not is_series_source(config.data.source):
            raise ValueError(f"config: expected data.source shm, bessel, co2 or a .csv file for task 'forecasting', "
                             f"got {config.data.source!r}")

    # ------------------------------------------------------------------ data and model
    def prepare(self) -> TaskData:
        self.windows = prepare_series(self.config.data, self.config.forecast)
        self.scaler = self.windows.scaler
        validation = self.windows.validation
        return TaskData(self.windows.train, validation if len(validation[1]) else None)

    def metadata(self) -> dict[str, Any]:
        return {"scaler": self.scaler.to_dict(), "num_features": self.num_features}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.scaler, self.num_features = Scaler(**state["scaler"]), state["num_features"]

    def build_model(self, *, sampler=None, pass_manager=None, memory_limit: int | None = None) -> nn.Module:
        return build_forecaster(self.config.model, self.num_features, sampler=sampler, pass_manager=pass_manager,
                                memory_limit=memory_limit)

    def recurrent_inputs(self, model: nn.Module, train: Windows) -> torch.Tensor:
        return train[0][:32]

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
        report = forecast_report(model, windows)
        extra: dict[str, Any] = {
            "data": describe_source(config.data, config.forecast),
            "final_loss": history[-1]["loss"],
            "test_epoch": scored_epoch,
            **{k: report[k] for k in ("test_rmse", "test_mae", "persistence_rmse", "persistence_mae", "test_windows")},
            "seconds_per_epoch": sum(r["seconds"] for r in history) / len(history),
        }
        if data.validation is not None:
            extra["best_val_loss"] = min(r["val_loss"] for r in history)
        if out_dir is not None:
            plot_forecast(windows, {f"{config.model.kind} (epoch {scored_epoch})": report["test_prediction"],
                                    "persistence": windows.series[windows.test_index - windows.horizon].tolist()},
                          out_dir / "forecast.png",
                          title=f"{extra['data']}: test RMSE {report['test_rmse']:.4g} (persistence {report['persistence_rmse']:.4g})")
        log.info("forecast: test RMSE %.4g, MAE %.4g; persistence RMSE %.4g", report["test_rmse"], report["test_mae"],
                 report["persistence_rmse"])
        return extra

    def summary(self, result: Mapping[str, Any]) -> list[str]:
        lines = [f"test RMSE: {result['test_rmse']:.4g}  MAE: {result['test_mae']:.4g}  (persistence RMSE "
                 f"{result['persistence_rmse']:.4g}, MAE {result['persistence_mae']:.4g}) on {result['data']}"]
        out = result.get("out_dir")
        return lines + ([f"outputs: {out}/metrics.json, {out}/model.pt, {out}/forecast.png"] if out else [])

    # ------------------------------------------------------------------ saved checkpoints
    EVALUATION_OPTIONS = ("backend", "sampling.shots", "sampling.seed", "sampling.optimization_level", "out_dir",
                          "batch_size", "progress")

    def evaluate_checkpoint(self, checkpoint: Path, request: EvaluationRequest) -> dict[str, Any]:
        """Test-span RMSE and MAE of the checkpoint's forecaster, exact and (qk-lstm) on a sampler backend
        (:func:`~qk_lstm_qiskit.evaluation.forecast.evaluate_forecast`; the series comes from its config)."""
        for name, value in request.changed().items():  # no journal, mitigation or cost estimate yet
            if name not in self.EVALUATION_OPTIONS:
                label = request.label(name)
                supported = ", ".join(request.label(n) for n in self.EVALUATION_OPTIONS if n not in ("batch_size", "progress"))
                raise ValueError(f"evaluate: expected no {label} with a forecast checkpoint (supported: {supported}), "
                                 f"got {label} {value}")
        checkpoint = checkpoint / MODEL_FILE if checkpoint.is_dir() else checkpoint
        out = request.out_dir or default_eval_dir(checkpoint, request.backend)
        sampling = request.sampling
        metrics = evaluate_forecast(checkpoint, out, backend=request.backend, shots=sampling.shots, seed=sampling.seed,
                                    optimization_level=sampling.optimization_level)
        return {**metrics, "out_dir": str(out)}

    def evaluation_summary(self, metrics: Mapping[str, Any], request: EvaluationRequest) -> list[str]:
        lines = []
        if request.backend != "exact":
            lines.append(f"on {request.backend} ({request.sampling.shots} shots): test RMSE {metrics['test_rmse']:.4g}  "
                         f"MAE {metrics['test_mae']:.4g}  (exact {metrics['exact_test_rmse']:.4g}; RMSE backend vs "
                         f"exact {metrics['backend_rmse_vs_exact']:.4g})")
        else:
            lines.append(f"exact: test RMSE {metrics['test_rmse']:.4g}  MAE {metrics['test_mae']:.4g}")
        out = metrics["out_dir"]
        return lines + [f"persistence: RMSE {metrics['persistence_rmse']:.4g}  MAE {metrics['persistence_mae']:.4g} "
                        f"on {metrics['test_windows']} test windows of {metrics['data']}",
                        f"outputs: {out}/metrics.json, {out}/forecast.png"]
