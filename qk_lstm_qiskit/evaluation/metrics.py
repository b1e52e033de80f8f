"""Tagging metrics: masked token accuracy, per-tag precision/recall/F1, confusion matrix and its PNG.

:func:`evaluate_exact` runs a saved tagger (``model.pt``) on a corpus with the exact executor
and writes ``metrics.json`` and ``confusion.png`` to a fresh folder: ``qk-lstm evaluate`` with
``--backend exact`` (default). On a sampler backend the same command goes through
:func:`qk_lstm_qiskit.evaluate.evaluate_checkpoint` (journal, cost estimate, exact comparison),
which adds these metrics with :func:`tagging_metrics`.

Unknown words go through ``<unk>``. Gold tags that the model never saw in training cannot be
predicted: they are appended to the label list (so the confusion matrix has a row for them and
an empty column), count as errors in the accuracy, get recall 0, and are listed under
``unseen_tags`` in the metrics; they are left out of the loss. Targets already encoded as
:data:`~qk_lstm_qiskit.treebank.UNSEEN_TAG` share one label, ``<unseen>``.

Example:
    >>> confusion = confusion_matrix(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 0]), 2)
    >>> per_tag_metrics(confusion, ["DET", "NOUN"])["DET"]
    {'precision': 1.0, 'recall': 0.5, 'f1': 0.666..., 'support': 2}
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from ..data.corpus import PAD_TAG, TaggedSentence, Vocabulary, make_batches, paper_corpus
from ..validation import check_int

__all__ = [
    "EvaluationResult",
    "confusion_matrix",
    "evaluate_exact",
    "evaluate_tagger",
    "per_tag_metrics",
    "plot_confusion",
    "tagging_metrics",
    "token_accuracy",
    "write_confusion_png",
]

logger = logging.getLogger(__name__)

OUTPUT_FILES = ("metrics.json", "confusion.png")
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


def plot_confusion(confusion: torch.Tensor, labels: Sequence[str], path: str | os.PathLike, *, title: str = "") -> None:
    """Row-normalised confusion matrix (recall per gold tag) with counts, saved as a PNG.

    Uses matplotlib's Agg canvas directly (no global backend change, no display needed); the
    file is written to a temporary name and renamed.
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
    figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of gold tag")
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted tag")
    ax.set_ylabel("gold tag")
    if title:
        ax.set_title(title, fontsize=10)
    if len(labels) <= 25:
        for i in range(len(labels)):
            for j in range(len(labels)):
                if counts[i, j] > 0:
                    color = "white" if rates[i, j] > 0.5 else "black"
                    ax.text(j, i, str(int(counts[i, j])), ha="center", va="center", fontsize=6, color=color)
    figure.tight_layout()
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp.png")
    figure.savefig(tmp, dpi=120)
    os.replace(tmp, path)


@dataclass
class EvaluationResult:
    """Everything :func:`tagging_metrics` / :func:`evaluate_tagger` measured."""

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
            model can predict, or be :data:`~qk_lstm_qiskit.treebank.UNSEEN_TAG` (``-1``): those
            get the extra label ``<unseen>`` and always count as errors.
        labels: names of the tag indices.
        unknown: ``(K,)`` bool, True for words encoded as ``<unk>``: adds the accuracy on known
            and unknown words and the unknown-word rate.
    """
    from ..data.conllu import UNSEEN_TAG

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


@torch.no_grad()
def evaluate_tagger(
    model: nn.Module,
    corpus: Sequence[TaggedSentence],
    words: Vocabulary,
    tags: Vocabulary,
    *,
    batch_size: int = 32,
    lowercase: bool = False,
) -> EvaluationResult:
    """Masked token accuracy, loss, per-tag metrics and confusion of ``model`` on ``corpus``.

    Args:
        model: maps words ``(N, L)`` to log-probabilities ``(N, L, len(tags))``.
        corpus: gold ``(words, tags)`` sentences.
        words, tags: the training vocabularies (``words`` needs an ``<unk>`` unless every word is known).
        batch_size: sentences per forward pass.
        lowercase: lower-case the words first (must match training).

    Raises:
        ValueError: empty corpus or sentence, words/tags length mismatch, an unknown word with a
            vocabulary that has no ``<unk>``.
    """
    if not corpus:
        raise ValueError("evaluate_tagger: expected at least one sentence, got 0")
    check_int("evaluate_tagger", "batch_size", batch_size, 1)
    unseen = Counter(t for _, ts in corpus for t in ts if t not in tags)
    labels = list(tags.itos) + sorted(unseen)
    gold_vocab = Vocabulary(labels, name="tag")
    encoded, unknown_flags = [], []
    for number, (ws, ts) in enumerate(corpus, start=1):
        if not ws or len(ws) != len(ts):
            raise ValueError(
                f"evaluate_tagger: expected a non-empty sentence with one tag per word, got {len(ws)} words "
                f"and {len(ts)} tags in sentence {number}"
            )
        ws = [w.lower() for w in ws] if lowercase else list(ws)
        encoded.append((words.encode(ws), gold_vocab.encode(ts)))
        unknown_flags.append([w not in words or w == words.unk for w in ws])
    was_training = model.training
    model.eval()
    start = time.perf_counter()
    all_predictions, all_targets, all_unknown = [], [], []
    total_loss, loss_tokens = 0.0, 0
    pad_index = words.pad_index or 0
    for first in range(0, len(encoded), batch_size):
        (batch,) = make_batches(encoded[first : first + batch_size], batch_size, pad_index=pad_index)
        log_probs = model(batch.words)  # (N, L, T)
        known = (batch.tags != PAD_TAG) & (batch.tags < len(tags))  # unseen gold tags: no loss
        if known.any():
            total_loss += float(-log_probs[known].gather(1, batch.tags[known][:, None]).sum())
            loss_tokens += int(known.sum())
        flags = torch.zeros_like(batch.tags, dtype=torch.bool)  # (N, L)
        for row, flag in enumerate(unknown_flags[first : first + batch_size]):
            flags[row, : len(flag)] = torch.tensor(flag)
        all_predictions.append(log_probs.argmax(-1)[batch.mask])
        all_targets.append(batch.tags[batch.mask])
        all_unknown.append(flags[batch.mask])
    model.train(was_training)
    result = tagging_metrics(
        torch.cat(all_predictions), torch.cat(all_targets), labels, unknown=torch.cat(all_unknown)
    )
    result.metrics.update(
        sentences=len(corpus),
        loss=total_loss / loss_tokens if loss_tokens else None,
        unseen_tags=dict(sorted(unseen.items())),
        seconds=time.perf_counter() - start,
    )
    return result


def evaluation_corpus(data: str | None, config) -> tuple[list[TaggedSentence], str]:
    """The sentences named by ``--data`` (``paper``, a CoNLL-U path) or, by default, the
    checkpoint's own validation split (its whole training source if it had none), read with
    the checkpoint's tag column, lower-casing and long-sentence policy."""
    from ..data.conllu import load_treebank, read_conllu

    d = config.data
    reading = {"tagset": d.tag_column, "lowercase": d.lowercase, "max_length": d.max_length,
               "long_sentences": d.long_sentences}
    if data is None:
        if d.source == "paper":
            return paper_corpus(), "paper (training sentences)"
        if d.validation_fraction > 0:
            split = load_treebank(d.source, validation_fraction=d.validation_fraction, seed=d.split_seed, **reading)
            return split.validation, f"{d.source} (validation split)"
        return read_conllu(d.source, **reading), f"{d.source} (training source)"
    if data == "paper":
        return paper_corpus(), "paper"
    return read_conllu(data, tagset=d.tag_column, lowercase=d.lowercase), str(data)


def _check_out_dir(out_dir: Path) -> None:
    """Refuse to overwrite earlier results (a training run's ``metrics.json``, an earlier evaluation)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"evaluate: expected --out to be a folder, got the file {out_dir}")
    existing = [name for name in OUTPUT_FILES if (out_dir / name).exists()]
    if existing:
        raise ValueError(
            f"evaluate: expected an --out folder without {', '.join(OUTPUT_FILES)}, got {out_dir} holding "
            f"{', '.join(existing)}; choose another folder (nothing was overwritten)"
        )


def evaluate_exact(
    checkpoint: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    data: str | None = None,
    batch_size: int | None = None,
    max_sentences: int | None = None,
) -> dict[str, Any]:
    """Evaluate the tagger saved at ``checkpoint`` on the exact executor; write ``metrics.json`` and ``confusion.png``.

    Args:
        checkpoint: a ``model.pt`` written by ``qk-lstm train`` (any model kind), or its run folder.
        out_dir: a folder for the results; created; must not already hold them (so a training
            run's ``metrics.json`` or an earlier evaluation is never overwritten).
        data: ``"paper"``, a CoNLL-U path, or ``None`` for the checkpoint's validation split
            (re-drawn with its seed; the whole training source when it had no split).
        batch_size: sentences per batch (default: the training batch size).
        max_sentences: evaluate only the first sentences (default all).

    Returns:
        The metrics (also in ``out_dir/metrics.json``): ``accuracy``, ``loss``, ``macro_f1``,
        ``per_tag`` (precision, recall, f1, support), ``confusion_matrix`` and ``labels``,
        known/unknown-word accuracies, ``unseen_tags``, ``sentences``, ``tokens``, ``seconds``.

    Raises:
        FileNotFoundError: missing checkpoint or data file.
        ValueError: ``out_dir`` already holds results, a foreign checkpoint, bad data (see
            :func:`~qk_lstm_qiskit.treebank.read_conllu`), unknown words without ``<unk>``.
    """
    from ..checkpoint import load_tagger
    from ..rundir import write_json_atomic

    out_dir, checkpoint = Path(out_dir), Path(checkpoint)
    if checkpoint.is_dir():
        checkpoint = checkpoint / "model.pt"
    for name, value in (("batch_size", batch_size), ("max_sentences", max_sentences)):
        check_int("evaluate", name, value, 1, optional=True)
    _check_out_dir(out_dir)
    model, words, tags, config = load_tagger(checkpoint)
    corpus, described = evaluation_corpus(data, config)
    corpus = corpus[:max_sentences]
    result = evaluate_tagger(
        model, corpus, words, tags, batch_size=batch_size or config.train.batch_size, lowercase=config.data.lowercase
    )
    if result.metrics["unseen_tags"]:
        logger.warning("gold tags absent from training count as errors: %s", result.metrics["unseen_tags"])
    metrics = {
        "checkpoint": str(checkpoint),
        "data": described,
        "model": config.model.kind,
        "backend": "exact",
        **result.metrics,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    _check_out_dir(out_dir)  # again: another process may have written meanwhile
    head, sep, tail = described.partition(" (")
    write_confusion_png(result, out_dir, f"{config.model.kind} (exact) on {Path(head).name}{sep}{tail}")
    write_json_atomic(metrics, out_dir / "metrics.json")
    return metrics


def write_confusion_png(result: EvaluationResult, out_dir: str | os.PathLike, what: str) -> Path:
    """``out_dir/confusion.png`` of ``result`` titled with ``what`` and the accuracy; returns its path."""
    path = Path(out_dir) / "confusion.png"
    plot_confusion(result.confusion, result.labels, path, title=f"{what}: accuracy {result.metrics['accuracy']:.3f}")
    return path
