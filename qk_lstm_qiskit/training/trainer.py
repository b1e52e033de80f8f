"""A readable training loop: loss and metrics of a task, checkpoints, resume.

The trainer knows nothing of the model's insides; a *task* (:class:`TaggingTask` by default,
:class:`~qk_lstm_qiskit.training.forecast.ForecastTask` for forecasting) batches the examples and
gives each batch's loss and metric. Per epoch it shuffles with its own seeded generator, steps
the optimizer per batch, records example-weighted loss and the task's metric (and validation
metrics), then writes ``metrics.json``/``metrics.csv``, ``last.pt`` (everything needed to resume
bit-identically) and ``model.pt`` (best validation score, or the latest epoch without
validation data). Every file is replaced atomically.
"""

from __future__ import annotations

import logging
import math
import random
import time
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..config import OPTIMIZERS, TrainConfig
from ..data.corpus import PAD_TAG, Batch, make_batches
from ..checkpoint import LAST_FILE, MODEL_FILE, save_checkpoint
from ..evaluation.loop import tag_batches
from ..rundir import make_out_dir, write_csv_atomic, write_json_atomic

__all__ = ["Task", "TaggingTask", "Trainer", "evaluate", "seed_everything"]

log = logging.getLogger(__name__)
Encoded = Sequence[tuple[list[int], list[int]]]


def _plain_numpy_state(state: tuple) -> tuple:
    """``np.random.get_state()`` as plain Python values (``weights_only`` checkpoints hold no arrays)."""
    name, keys, pos, has_gauss, cached = state
    return name, keys.tolist(), int(pos), int(has_gauss), float(cached)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _batch_stats(log_probs: torch.Tensor, batch: Batch) -> tuple[torch.Tensor, int, int]:
    """(mean NLL over real tokens, correct, total)."""
    flat = log_probs.reshape(-1, log_probs.size(-1))
    targets = batch.tags.reshape(-1).to(flat.device)
    loss = nn.functional.nll_loss(flat, targets, ignore_index=PAD_TAG)
    mask = targets != PAD_TAG
    correct = int((flat.argmax(-1)[mask] == targets[mask]).sum())
    return loss, correct, int(mask.sum())


def evaluate(model: nn.Module, batches: Sequence[Batch]) -> dict[str, float]:
    """Token-weighted ``loss`` and ``accuracy`` of ``model`` on ``batches`` (eval mode, :func:`tag_batches`)."""
    tagged = tag_batches(model, batches)
    return {"loss": tagged.loss or 0.0, "accuracy": tagged.accuracy}


class Task(Protocol):
    """What the trainer needs of a task: batches, each batch's loss, an evaluation.

    ``metric`` names the score that picks ``model.pt`` (``val_<metric>`` with validation data);
    ``higher_is_better`` says which way.
    """

    metric: str
    higher_is_better: bool

    def batches(self, examples: Any, generator: torch.Generator | None = None) -> Sequence[Any]:
        """The examples in batches, shuffled with ``generator`` when given."""

    def step(self, model: nn.Module, batch: Any, device: torch.device) -> tuple[torch.Tensor, int, float]:
        """(mean loss of the batch on ``device``, examples in it, the metric's numerator summed over them)."""

    def summarise(self, loss_sum: float, metric_sum: float, count: int) -> dict[str, float]:
        """``{"loss": …, metric: …}`` of an epoch from the sums of :meth:`step`."""

    def evaluate(self, model: nn.Module, batches: Sequence[Any]) -> dict[str, float]:
        """``{"loss": …, metric: …}`` of ``model`` on ``batches`` in eval mode."""


class TaggingTask:
    """Mean NLL over real tokens; metric: token accuracy."""

    metric, higher_is_better = "accuracy", True

    def __init__(self, batch_size: int, *, pad_index: int = 0, bucket_batches: int = 0) -> None:
        self.batch_size, self.pad_index, self.bucket_batches = batch_size, pad_index, bucket_batches

    def batches(self, examples: Encoded, generator: torch.Generator | None = None) -> list[Batch]:
        return make_batches(
            examples, self.batch_size, pad_index=self.pad_index, generator=generator, bucket_batches=self.bucket_batches
        )

    def step(self, model: nn.Module, batch: Batch, device: torch.device) -> tuple[torch.Tensor, int, float]:
        loss, correct, total = _batch_stats(model(batch.words.to(device)), batch)
        return loss, total, correct

    def summarise(self, loss_sum: float, metric_sum: float, count: int) -> dict[str, float]:
        return {"loss": loss_sum / count, "accuracy": metric_sum / count}

    def evaluate(self, model: nn.Module, batches: Sequence[Batch]) -> dict[str, float]:
        return evaluate(model, batches)


class Trainer:
    """Train ``model`` with ``config``; write outputs under ``out_dir`` (if given).

    Args:
        model: maps ``words (N, L)`` to log-probabilities ``(N, L, T)``.
        config: optimizer, learning rate, batch size, clipping, epochs, seed.
        out_dir: run folder for metrics and checkpoints, or ``None`` to keep all in memory.
        metadata: stored in every checkpoint and in ``metrics.json`` (config, vocabularies, …).
        pad_index: word index used for padding (tagging).
        progress: show a tqdm bar with loss and the task's metric.
        task: batches, loss and metric (default: :class:`TaggingTask` with ``config``'s batching).
    """

    def __init__(
        self, model: nn.Module, config: TrainConfig, *, out_dir: Path | None = None,
        metadata: dict[str, Any] | None = None, pad_index: int = 0, progress: bool = True, task: Task | None = None,
    ) -> None:
        self.model, self.config, self.out_dir = model, config, out_dir
        self.metadata = dict(metadata or {})
        self.pad_index, self.progress = pad_index, progress
        self.task = task or TaggingTask(config.batch_size, pad_index=pad_index, bucket_batches=config.bucket_batches)
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = getattr(torch.optim, OPTIMIZERS[config.optimizer])
        self.optimizer = optimizer(params, lr=config.lr)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.history: list[dict[str, float]] = []
        self.best_score = -math.inf  # the monitored metric, negated when lower is better

    # ------------------------------------------------------------------ state
    def state(self) -> dict[str, Any]:
        return {
            "model_state": self.model.state_dict(),
            "optimizer_state": self.optimizer.state_dict(),
            "generator_state": self.generator.get_state(),
            "torch_rng_state": torch.get_rng_state(),
            "numpy_rng_state": _plain_numpy_state(np.random.get_state()),
            "python_rng_state": random.getstate(),
            "epoch": len(self.history),
            "history": self.history,
            "best_score": self.best_score,
            **self.metadata,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model_state"])
        self.optimizer.load_state_dict(state["optimizer_state"])
        self.generator.set_state(state["generator_state"])
        torch.set_rng_state(state["torch_rng_state"])
        np.random.set_state(state["numpy_rng_state"])
        random.setstate(state["python_rng_state"])
        self.history = list(state["history"])
        self.best_score = state["best_score"] if "best_score" in state else state["best_accuracy"]

    # ------------------------------------------------------------------ loop
    def fit(self, train: Encoded, validation: Encoded | None = None) -> list[dict[str, float]]:
        """Train from the current epoch up to ``config.epochs``; return the per-epoch history."""
        cfg, task = self.config, self.task
        if self.out_dir is not None:
            make_out_dir(self.out_dir)  # only now: every check before training has passed
        val_batches = task.batches(validation) if validation is not None else None
        bar = tqdm(
            range(len(self.history), cfg.epochs), initial=len(self.history), total=cfg.epochs,
            desc="train", unit="epoch", disable=not self.progress, dynamic_ncols=True,
        )
        for epoch in bar:
            start = time.perf_counter()
            self.model.train()
            device = next(self.model.parameters()).device  # executor.device: the model was moved there
            total_loss = metric = total = 0
            for batch in task.batches(train, self.generator):
                loss_sum, m, n = self.train_batch(batch, device)
                total_loss, metric, total = total_loss + loss_sum, metric + m, total + n
            total_loss, metric, total = self.reduce_epoch(total_loss, metric, total)
            record = {"epoch": epoch + 1, **task.summarise(total_loss, metric, total)}
            if val_batches:
                record.update({f"val_{k}": v for k, v in task.evaluate(self.model, val_batches).items()})
            record["seconds"] = time.perf_counter() - start
            self.history.append(record)
            bar.set_postfix({name[:4]: f"{record[name]:.3f}" for name in dict.fromkeys(("loss", task.metric))})
            self._save_epoch(record)
        return self.history

    def train_batch(self, batch: Any, device: torch.device) -> tuple[float, float, int]:
        """One optimizer step on ``batch``: (summed loss, summed metric numerator, examples)."""
        loss, n, m = self.task.step(self.model, batch, device)
        self.optimizer.zero_grad()
        loss.backward()
        self.clip_and_step()
        return loss.item() * n, m, n

    def clip_and_step(self) -> None:
        if self.config.clip_grad_norm is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip_grad_norm)
        self.optimizer.step()

    def reduce_epoch(self, loss: float, metric: float, count: int) -> tuple[float, float, int]:
        """Epoch totals over every process that trained (one process: unchanged)."""
        return loss, metric, count

    def update_best(self, record: dict[str, float]) -> bool:
        """Track the best monitored score; True when ``record`` improves it (always without validation)."""
        monitored = f"val_{self.task.metric}"
        score = record.get(monitored, record[self.task.metric]) * (1 if self.task.higher_is_better else -1)
        improved = monitored not in record or score > self.best_score
        self.best_score = max(self.best_score, score)
        return improved

    def _save_epoch(self, record: dict[str, float]) -> None:
        if self.out_dir is None:
            return
        improved = self.update_best(record)
        state = self.state()
        save_checkpoint(state, self.out_dir / LAST_FILE)
        if improved:
            keep = ("model_state", "epoch", *self.metadata)
            save_checkpoint({k: state[k] for k in keep}, self.out_dir / MODEL_FILE)
        self.write_metrics()
        log.info("epoch %d: %s", record["epoch"], record)

    def write_metrics(self, **extra: Any) -> None:
        """``metrics.json`` (metadata + epochs + ``extra``) and ``metrics.csv`` (one row per epoch)."""
        if self.out_dir is None:
            return
        meta = {k: v for k, v in self.metadata.items() if k not in ("words", "tags")}
        write_json_atomic({**meta, "epochs": self.history, **extra}, self.out_dir / "metrics.json")
        write_csv_atomic(self.history, self.out_dir / "metrics.csv")
