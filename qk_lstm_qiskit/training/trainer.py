"""A readable training loop: loss and metrics of a task, checkpoints, resume.

The trainer knows nothing of the model's insides nor of the data: its *task*
(:class:`~qk_lstm_qiskit.tasks.Task`, e.g. tagging or forecasting) batches the examples and gives
each batch's loss and metric. Per epoch it shuffles with its own seeded generator, steps the
optimizer per batch, records the task's example-weighted loss and metric (and validation
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
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..config import OPTIMIZERS, TrainConfig
from ..checkpoint import LAST_FILE, MODEL_FILE, save_checkpoint
from ..rundir import make_out_dir, write_csv_atomic, write_json_atomic

if TYPE_CHECKING:
    from ..tasks import Task

__all__ = ["Trainer", "seed_everything"]

log = logging.getLogger(__name__)
DIVERGENCE_FACTOR = 1e6  #: a batch loss this many times the first batch's (at least 1) stops training as diverged


def _plain_numpy_state(state: tuple) -> tuple:
    """``np.random.get_state()`` as plain Python values (``weights_only`` checkpoints hold no arrays)."""
    name, keys, pos, has_gauss, cached = state
    return name, keys.tolist(), int(pos), int(has_gauss), float(cached)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Trainer:
    """Train ``model`` on ``task`` with ``config``; write outputs under ``out_dir`` (if given).

    Args:
        model: the task's model (:meth:`Task.build_model <qk_lstm_qiskit.tasks.Task.build_model>`).
        config: optimizer, learning rate, clipping, epochs, seed (the task batches).
        task: batches, loss and metric (:class:`~qk_lstm_qiskit.tasks.Task`).
        out_dir: run folder for metrics and checkpoints, or ``None`` to keep all in memory.
        metadata: stored in every checkpoint (with ``task``: the task's name) and, but for
            ``task.private_keys``, in ``metrics.json``.
        progress: show a tqdm bar with loss and the task's metric.
    """

    def __init__(
        self, model: nn.Module, config: TrainConfig, task: Task, *, out_dir: Path | None = None,
        metadata: dict[str, Any] | None = None, progress: bool = True,
    ) -> None:
        self.model, self.config, self.task, self.out_dir = model, config, task, out_dir
        self.metadata = {"task": task.name, **(metadata or {})}
        self.progress = progress
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = getattr(torch.optim, OPTIMIZERS[config.optimizer])
        self.optimizer = optimizer(params, lr=config.lr)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.history: list[dict[str, float]] = []
        self._first_loss: float | None = None  # the first batch's mean loss of this process (divergence check)
        self.best_score = -math.inf  # the monitored metric, negated when lower is better

    # ------------------------------------------------------------------ state
    def state(self) -> dict[str, Any]:
        return {
            "model_state": self.model.state_dict(),
            "optimizer_state": self.optimizer.state_dict(),
            "generator_state": self.generator.get_state(),
            "torch_rng_state": torch.get_rng_state(),
            "numpy_rng_state": _plain_numpy_state(cast(tuple, np.random.get_state(legacy=True))),
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
    def fit(self, train: Any, validation: Any | None = None) -> list[dict[str, float]]:
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
            total_loss, metric, total = 0.0, 0.0, 0
            for batch in task.batches(train, self.generator):
                loss_sum, m, n = self.train_batch(batch, device)
                self.check_finite(epoch + 1, loss_sum / max(n, 1))
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

    def check_finite(self, epoch: int, loss: float) -> None:
        """Stop a diverged run before anything of it is saved: a batch's mean ``loss`` that is NaN/inf or
        ``DIVERGENCE_FACTOR`` times the first batch's of this fit (at least 1), or parameters a step made NaN/inf.

        Raises:
            ValueError: one line naming the epoch and ``train.lr``; the previous epoch's files stay.
        """
        if self._first_loss is None:
            self._first_loss = max(loss, 1.0) if math.isfinite(loss) else 1.0
        what = None
        if not math.isfinite(loss):
            what = f"the loss became {loss}"
        elif loss > DIVERGENCE_FACTOR * self._first_loss:
            what = f"the loss grew to {loss:.3g} from {self._first_loss:.3g} in the first batch"
        elif not all(bool(torch.isfinite(p).all()) for p in self.model.parameters()):
            what = "a step made the parameters non-finite"
        if what is not None:
            kept = f"the files of epoch {epoch - 1} are kept" if epoch > 1 and self.out_dir is not None else "nothing was saved"
            raise ValueError(f"train: diverged in epoch {epoch}: {what} with train.lr {self.config.lr:g}; lower --lr "
                             f"(train.lr) or set train.clip_grad_norm ({kept})")

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
        meta = {k: v for k, v in self.metadata.items() if k not in self.task.private_keys}
        write_json_atomic({**meta, "epochs": self.history, **extra}, self.out_dir / "metrics.json")
        write_csv_atomic(self.history, self.out_dir / "metrics.csv")
