"""Sequence classification under the trainer: cross-entropy of the class logits, accuracy as the metric."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..data.sequences import LabelledSequences, SequenceBatch, make_sequence_batches
from ..evaluation.classification import classify

__all__ = ["ClassificationTask"]


class ClassificationTask:
    """Mean cross-entropy over sequences; metric: accuracy (higher is better)."""

    metric, higher_is_better = "accuracy", True

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size

    def batches(self, examples: LabelledSequences, generator: torch.Generator | None = None) -> list[SequenceBatch]:
        return make_sequence_batches(examples, self.batch_size, generator=generator)

    def step(self, model: nn.Module, batch: SequenceBatch, device: torch.device) -> tuple[torch.Tensor, int, float]:
        logits = model(batch.inputs.to(device), batch.lengths)
        labels = batch.labels.to(device)
        loss = nn.functional.cross_entropy(logits, labels)
        return loss, len(labels), float((logits.argmax(-1) == labels).sum())

    def summarise(self, loss_sum: float, metric_sum: float, count: int) -> dict[str, float]:
        return {"loss": loss_sum / count, "accuracy": metric_sum / count}

    def evaluate(self, model: nn.Module, batches: Sequence[SequenceBatch]) -> dict[str, float]:
        predictions, gold, loss = classify(model, batches)
        return {"loss": loss, "accuracy": float((predictions == gold).double().mean())}
