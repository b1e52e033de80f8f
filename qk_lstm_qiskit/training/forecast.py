"""Forecasting runs: windows of a series → the value ``horizon`` steps ahead, MSE, the same trainer.

:class:`ForecastTask` is the trainer's task for forecasting (mean squared error on standardised
values; ``model.pt`` keeps the lowest validation loss). :func:`train_forecaster` is called by
:func:`~qk_lstm_qiskit.training.experiment.run_training` when ``data.source`` names a series;
after training it scores ``model.pt`` on the test span (:func:`~qk_lstm_qiskit.evaluation.forecast.forecast_report`)
and writes ``forecast.png``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..checkpoint import MODEL_FILE, load_checkpoint
from ..config import RunConfig
from ..data.series import describe_source, prepare_series
from ..evaluation.forecast import forecast_report, plot_forecast
from ..nn.forecaster import build_forecaster
from ..nn.tagger import count_parameters
from .trainer import Trainer, seed_everything

__all__ = ["ForecastTask", "train_forecaster"]

log = logging.getLogger(__name__)
Windows = tuple[torch.Tensor, torch.Tensor]  # inputs (N, W, F), targets (N,)


class ForecastTask:
    """Mean squared error of one-value forecasts; metric: the loss itself (lower is better)."""

    metric, higher_is_better = "loss", False

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size

    def batches(self, examples: Windows, generator: torch.Generator | None = None) -> list[Windows]:
        """``(inputs, targets)`` chunks of ``batch_size`` windows, shuffled with ``generator`` if given."""
        inputs, targets = examples
        order = torch.randperm(len(targets), generator=generator) if generator is not None else torch.arange(len(targets))
        return [(inputs[idx], targets[idx]) for idx in order.split(self.batch_size)]

    def step(self, model: nn.Module, batch: Windows, device: torch.device) -> tuple[torch.Tensor, int, float]:
        inputs, targets = (t.to(device) for t in batch)
        loss = nn.functional.mse_loss(model(inputs), targets)
        return loss, len(targets), loss.item() * len(targets)

    def summarise(self, loss_sum: float, metric_sum: float, count: int) -> dict[str, float]:
        return {"loss": loss_sum / count}

    @torch.no_grad()
    def evaluate(self, model: nn.Module, batches: list[Windows]) -> dict[str, float]:
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        sums = [self.step(model, batch, device)[1:] for batch in batches]
        model.train(was_training)
        return self.summarise(sum(s for _, s in sums), 0.0, sum(n for n, _ in sums))


def train_forecaster(
    config: RunConfig, out_dir: Path | None, resume_state: dict | None, *, progress: bool, sampler, pass_manager,
    memory_limit: int | None = None,
) -> dict[str, Any]:
    """Train the forecaster of ``config`` (run folder and executor prepared by ``run_training``).

    Returns the metrics also written to ``out_dir/metrics.json``: the trainer's keys plus
    ``test_rmse``, ``test_mae``, ``persistence_rmse``, ``persistence_mae`` (series units) of
    ``model.pt`` (lowest validation loss; the last epoch without validation or run folder).
    """
    windows = prepare_series(config.data, config.forecast)
    seed_everything(config.train.seed)
    model = build_forecaster(config.model, 1, sampler=sampler, pass_manager=pass_manager,
                             memory_limit=memory_limit)
    if config.model.kind == "qk-lstm" and config.model.references == "data":
        model.recurrent.init_references_from_data(windows.train[0][:32])
    metadata = {
        "task": "forecast",
        "model": config.model.kind,
        "trainable_parameters": count_parameters(model),
        "config": config.to_dict(),
        "scaler": windows.scaler.to_dict(),
        "num_features": 1,
    }
    trainer = Trainer(model, config.train, out_dir=out_dir, metadata=metadata, progress=progress,
                      task=ForecastTask(config.train.batch_size))
    if resume_state is not None:
        trainer.load_state(resume_state)
    validation = windows.validation if len(windows.validation[1]) else None
    history = trainer.fit(windows.train, validation)
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
    if validation is not None:
        extra["best_val_loss"] = min(r["val_loss"] for r in history)
    trainer.write_metrics(**extra)
    if out_dir is not None:
        plot_forecast(windows, {f"{config.model.kind} (epoch {scored_epoch})": report["test_prediction"],
                                "persistence": windows.series[windows.test_index - windows.horizon].tolist()},
                      out_dir / "forecast.png",
                      title=f"{extra['data']}: test RMSE {report['test_rmse']:.4g} (persistence {report['persistence_rmse']:.4g})")
    log.info("forecast: test RMSE %.4g, MAE %.4g; persistence RMSE %.4g", report["test_rmse"], report["test_mae"],
             report["persistence_rmse"])
    return {**{k: v for k, v in metadata.items() if k != "scaler"}, "epochs": history, **extra,
            "out_dir": None if out_dir is None else str(out_dir)}
