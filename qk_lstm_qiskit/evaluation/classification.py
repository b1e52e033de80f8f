"""Sequence-classification metrics: accuracy, macro-F1, per-class F1, the confusion matrix and its PNG.

:func:`classify` runs a classifier over batches in eval mode; :func:`classification_metrics`
scores its predictions (macro-F1 over the classes that occur in the gold labels or the
predictions, as scikit-learn's ``f1_score(average="macro")``).
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import torch
from torch import nn

from ..data.sequences import SequenceBatch
from .metrics import confusion_matrix, per_tag_metrics, plot_confusion

__all__ = ["classify", "classification_metrics", "plot_class_confusion"]


@torch.no_grad()
def classify(model: nn.Module, batches: Sequence[SequenceBatch]) -> tuple[torch.Tensor, torch.Tensor, float]:
    """``(predictions (N,), gold (N,), mean cross-entropy)`` of ``model`` over ``batches`` in eval mode."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    predictions, gold, loss_sum = [], [], 0.0
    for batch in batches:
        logits = model(batch.inputs.to(device), batch.lengths)
        loss_sum += float(nn.functional.cross_entropy(logits, batch.labels.to(device), reduction="sum"))
        predictions.append(logits.argmax(-1).cpu())
        gold.append(batch.labels)
    model.train(was_training)
    count = sum(len(g) for g in gold)
    return torch.cat(predictions), torch.cat(gold), loss_sum / max(count, 1)


def classification_metrics(predictions: torch.Tensor, targets: torch.Tensor, classes: Sequence[str]) -> dict[str, Any]:
    """``accuracy``, ``macro_f1``, ``per_class`` (precision, recall, F1, support), ``confusion_matrix``
    (row = gold class, column = predicted) of class indices ``predictions``, ``targets`` ``(N,)``.

    Raises:
        ValueError: different shapes, no examples, or an index outside ``[0, len(classes))``.
    """
    if predictions.shape != targets.shape or predictions.dim() != 1 or predictions.numel() == 0:
        raise ValueError(f"classification_metrics: expected two equal non-empty shapes (N,), got "
                         f"{tuple(predictions.shape)} and {tuple(targets.shape)}")
    confusion = confusion_matrix(predictions.long(), targets.long(), len(classes))
    per_class = per_tag_metrics(confusion, list(classes))
    occurring = [c for i, c in enumerate(classes) if confusion[i].sum() > 0 or confusion[:, i].sum() > 0]
    return {
        "accuracy": float((predictions == targets).double().mean()),
        "correct": int((predictions == targets).sum()),
        "sequences": int(targets.numel()),
        "macro_f1": sum(per_class[c]["f1"] for c in occurring) / len(occurring),
        "per_class": per_class,
        "classes": list(classes),
        "confusion_matrix": confusion.tolist(),
    }


def plot_class_confusion(metrics: dict[str, Any], path: str | os.PathLike, *, title: str = "") -> None:
    """The confusion matrix of :func:`classification_metrics` ``metrics`` as a row-normalised PNG at ``path``."""
    plot_confusion(torch.tensor(metrics["confusion_matrix"]), metrics["classes"], path, title=title, kind="class")
