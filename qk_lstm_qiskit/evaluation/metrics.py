"""Tagging metrics: masked token accuracy, per-tag precision/recall/F1, confusion matrix and its PNG.

Gold tags that the model never saw in training cannot be predicted: they arrive encoded as
:data:`~qk_lstm_qiskit.data.corpus.UNSEEN_TAG`, share the extra label ``<unseen>`` (a confusion
row and an empty column), count as errors in the accuracy and get recall 0.

Example:
    >>> confusion = confusion_matrix(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 0]), 2)
    >>> per_tag_metrics(confusion, ["DET", "NOUN"])["DET"]
    {'precision': 1.0, 'recall': 0.5, 'f1': 0.666..., 'support': 2}
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from ..data.corpus import PAD_TAG, UNSEEN_TAG
from ..rundir import atomic_write

__all__ = [
    "EvaluationResult",
    "confusion_matrix",
    "per_tag_metrics",
    "plot_confusion",
    "tagging_metrics",
    "token_accuracy",
    "write_confusion_png",
]

UNSEEN_LABEL = "<unseen>"


def _check_pair(owner: str, predictions: torch.Tensor, targets: torch.Tensor) -> None:
    if predictions.shape != targets.shape:
        raise ValueError(
            f"{owner}: expected predictions and targets of the same shape, got {tuple(predictions.shape)} "
            f"and {tuple(targets.shape)}"
        )


def token_accuracy(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of real tokens (``targets != PAD_TAG``) whose prediction equals the target.

    Shape: ``predictions``, ``targets``: any equal shape, e.g. ``(N, L)`` long.

    Raises:
        ValueError: different shapes, or no real token.
    """
    _check_pair("token_accuracy", predictions, targets)
    mask = targets != PAD_TAG
    total = int(mask.sum())
    if total == 0:
        raise ValueError("token_accuracy: expected at least one target != PAD_TAG, got none")
    return int((predictions[mask] == targets[mask]).sum()) / total


def confusion_matrix(predictions: torch.Tensor, targets: torch.Tensor, num_tags: int) -> torch.Tensor:
    """``(num_tags, num_tags)`` counts: row = gold tag, column = predicted tag; padding ignored.

    Raises:
        ValueError: different shapes, or a non-padding index outside ``[0, num_tags)``.
    """
    _check_pair("confusion_matrix", predictions, targets)
    mask = targets != PAD_TAG
    gold, predicted = targets[mask].long(), predictions[mask].long()
    for name, values in (("targets", gold), ("predictions", predicted)):
        if values.numel() and (values.min() < 0 or values.max() >= num_tags):
            raise ValueError(
                f"confusion_matrix: expected {name} in [0, {num_tags}) outside padding, "
                f"got [{values.min().item()}, {values.max().item()}]"
            )
    flat = torch.bincount(gold * num_tags + predicted, minlength=num_tags * num_tags)
    return flat.reshape(num_tags, num_tags)


def per_tag_metrics(confusion: torch.Tensor, labels: Sequence[str]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support of every tag from a confusion matrix (0 where undefined)."""
    if confusion.shape != (len(labels), len(labels)):
        raise ValueError(
            f"per_tag_metrics: expected a ({len(labels)}, {len(labels)}) confusion matrix, got {tuple(confusion.shape)}"
        )
    confusion = confusion.double()
    tp = confusion.diagonal()
    predicted, support = confusion.sum(0), confusion.sum(1)
    out = {}
    for i, label in enumerate(labels):
        precision = float(tp[i] / predicted[i]) if predicted[i] > 0 else 0.0
        recall = float(tp[i] / support[i]) if support[i] > 0 else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
        out[label] = {"precision": precision, "recall": recall, "f1": f1, "support": int(support[i])}
    return out


def plot_confusion(
    confusion: torch.Tensor, labels: Sequence[str], path: str | os.PathLike, *, title: str = "", kind: str = "tag",
) -> None:
    """Row-normalised confusion matrix (recall per gold ``kind``: tag, class) with counts, saved as a PNG.

    Uses matplotlib's Agg canvas directly (no global backend change, no display needed); the
    file is written atomically.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    counts = confusion.double()
    rates = counts / counts.sum(1, keepdim=True).clamp(min=1)
    size = max(4.0, 0.45 * len(labels) + 2)
    figure = Figure(figsize=(size + 1, size))
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    image = ax.imshow(rates.numpy(), cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label=f"fraction of gold {kind}")
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel(f"predicted {kind}")
    ax.set_ylabel(f"gold {kind}")
    if title:
        ax.set_title(title, fontsize=10)
    if len(labels) <= 25:
        for i in range(len(labels)):
            for j in range(len(labels)):
                if counts[i, j] > 0:
                    color = "white" if rates[i, j] > 0.5 else "black"
                    ax.text(j, i, str(int(counts[i, j])), ha="center", va="center", fontsize=6, color=color)
    figure.tight_layout()
    with atomic_write(path) as tmp:
        figure.savefig(tmp, dpi=120)


@dataclass
class EvaluationResult:
    """Everything :func:`tagging_metrics` measured: the metrics dict, the confusion counts and their labels."""

    metrics: dict[str, Any]
    confusion: torch.Tensor  # (T', T') counts, T' = training tags + unseen gold tags
    labels: list[str]


def tagging_metrics(
    predictions: torch.Tensor, targets: torch.Tensor, labels: Sequence[str], *, unknown: torch.Tensor | None = None
) -> EvaluationResult:
    """Accuracy, macro-F1, per-tag metrics and confusion matrix of tagged tokens.

    Args:
        predictions, targets: ``(K,)`` tag indices of real tokens (padding already removed, or
            marked ``PAD_TAG`` in ``targets``). Targets may index ``labels`` beyond the tags the
            model can predict, or be :data:`~qk_lstm_qiskit.data.corpus.UNSEEN_TAG` (``-1``): those
            get the extra label ``<unseen>`` and always count as errors.
        labels: names of the tag indices.
        unknown: ``(K,)`` bool, True for words encoded as ``<unk>``: adds the accuracy on known
            and unknown words and the unknown-word rate.
    """
    _check_pair("tagging_metrics", predictions, targets)
    keep = targets != PAD_TAG
    predictions, targets = predictions[keep].long(), targets[keep].long()
    labels = list(labels)
    if (targets == UNSEEN_TAG).any():
        targets = torch.where(targets == UNSEEN_TAG, len(labels), targets)
        labels.append(UNSEEN_LABEL)
    confusion = confusion_matrix(predictions, targets, len(labels))
    per_tag = per_tag_metrics(confusion, labels)
    correct = predictions == targets
    present = [m for m in per_tag.values() if m["support"] > 0]
    metrics: dict[str, Any] = {
        "accuracy": token_accuracy(predictions, targets),
        "correct": int(correct.sum()),
        "tokens": int(targets.numel()),
        "macro_f1": sum(m["f1"] for m in present) / len(present),
    }
    if unknown is not None:
        unknown = unknown[keep]
        metrics.update(
            unknown_word_rate=float(unknown.double().mean()),
            accuracy_known_words=float(correct[~unknown].double().mean()) if (~unknown).any() else None,
            accuracy_unknown_words=float(correct[unknown].double().mean()) if unknown.any() else None,
        )
    metrics.update(per_tag=per_tag, labels=labels, confusion_matrix=confusion.tolist())
    return EvaluationResult(metrics, confusion, labels)


def write_confusion_png(result: EvaluationResult, out_dir: str | os.PathLike, what: str) -> Path:
    """``out_dir/confusion.png`` of ``result`` titled with ``what`` and the accuracy; returns its path."""
    path = Path(out_dir) / "confusion.png"
    plot_confusion(result.confusion, result.labels, path, title=f"{what}: accuracy {result.metrics['accuracy']:.3f}")
    return path
