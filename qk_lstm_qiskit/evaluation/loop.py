"""The one evaluation loop: a tagger run over batches, for the trainer's validation, the exact
evaluation of a checkpoint and its evaluation on a sampler backend alike."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import torch
from torch import nn

from ..data.corpus import Batch, Vocabulary, make_batches
from ..data.tasks import EvaluationData
from ..validation import check_int
from .metrics import EvaluationResult, tagging_metrics

__all__ = ["TaggedTokens", "evaluate_tagger", "sorted_batches", "tag_batches", "tagged_metrics"]


@dataclass
class TaggedTokens:
    """Every real token of the batches, in order: ``(K,)`` tensors and the summed loss.

    ``targets`` keep unseen gold tags as ``UNSEEN_TAG`` (always wrong); the loss ``loss_sum`` is
    the NLL summed over the ``loss_tokens`` tokens whose gold tag the model can output.
    """

    predictions: torch.Tensor
    targets: torch.Tensor
    words: torch.Tensor
    loss_sum: float
    loss_tokens: int

    @property
    def accuracy(self) -> float:
        return float((self.predictions == self.targets).double().mean()) if self.targets.numel() else 0.0

    @property
    def loss(self) -> float | None:
        return self.loss_sum / self.loss_tokens if self.loss_tokens else None

    @classmethod
    def concatenate(cls, parts: Sequence["TaggedTokens"]) -> "TaggedTokens":
        """The tokens of ``parts`` in order (batches tagged separately, e.g. concurrently)."""
        empty = torch.zeros(0, dtype=torch.long)
        cat = lambda name: torch.cat([getattr(p, name) for p in parts]) if parts else empty  # noqa: E731
        return cls(cat("predictions"), cat("targets"), cat("words"), sum(p.loss_sum for p in parts),
                   sum(p.loss_tokens for p in parts))


@torch.no_grad()
def tag_batches(model: nn.Module, batches: Iterable[Batch]) -> TaggedTokens:
    """Run ``model`` (words ``(N, L)`` → log-probabilities ``(N, L, T)``) in eval mode over ``batches``."""
    was_training = model.training
    model.eval()
    predictions, targets, words = [], [], []
    loss_sum, loss_tokens = 0.0, 0
    device = next(model.parameters(), torch.empty(0)).device  # executor.device (cpu for a parameter-free model)
    try:
        for batch in batches:
            log_probs = model(batch.words.to(device)).cpu()  # (N, L, T)
            mask = batch.mask
            known = mask & (batch.tags >= 0)  # unseen gold tags: no loss
            if known.any():
                loss_sum += float(-log_probs[known].gather(1, batch.tags[known][:, None]).sum())
                loss_tokens += int(known.sum())
            predictions.append(log_probs.argmax(-1)[mask])
            targets.append(batch.tags[mask])
            words.append(batch.words[mask])
    finally:
        model.train(was_training)
    empty = torch.zeros(0, dtype=torch.long)
    cat = lambda parts: torch.cat(parts) if parts else empty  # noqa: E731
    return TaggedTokens(cat(predictions), cat(targets), cat(words), loss_sum, loss_tokens)


def sorted_batches(data: EvaluationData, batch_size: int, pad_index: int) -> list[Batch]:
    """``data.encoded`` in batches of sentences sorted by length (stable): little padding, which on a
    device would cost circuits too."""
    check_int("sorted_batches", "batch_size", batch_size, 1)
    order = sorted(range(len(data.encoded)), key=lambda i: len(data.encoded[i][0]))
    return make_batches([data.encoded[i] for i in order], batch_size, pad_index=pad_index)


def evaluate_tagger(
    model: nn.Module, data: EvaluationData, words: Vocabulary, tags: Vocabulary, *, batch_size: int = 32,
    batches: Iterable[Batch] | None = None,
    tag: Callable[[nn.Module, Iterable[Batch]], TaggedTokens] | None = None,
) -> tuple[EvaluationResult, TaggedTokens]:
    """Tagging metrics of ``model`` on ``data`` (batches from :func:`sorted_batches` unless given,
    e.g. wrapped in a progress bar; ``tag`` runs them, default :func:`tag_batches`).

    Returns the :class:`EvaluationResult` — accuracy, loss, macro-F1, per-tag metrics, confusion,
    known/unknown-word accuracies, ``unseen_tags``, ``sentences``, ``seconds`` — and the tagged tokens.
    """
    start = time.perf_counter()
    if batches is None:
        batches = sorted_batches(data, batch_size, words.pad_index or 0)
    tagged = (tag or tag_batches)(model, batches)
    return tagged_metrics(tagged, data, words, tags, seconds=time.perf_counter() - start), tagged


def tagged_metrics(tagged: TaggedTokens, data: EvaluationData, words: Vocabulary, tags: Vocabulary, *,
                   seconds: float = 0.0) -> EvaluationResult:
    """The :class:`EvaluationResult` of tokens ``tagged`` from ``data`` (see :func:`evaluate_tagger`)."""
    unknown = None if words.unk is None else tagged.words == words.stoi[words.unk]
    result = tagging_metrics(tagged.predictions, tagged.targets, tags.itos, unknown=unknown)
    result.metrics.update(sentences=len(data.sentences), loss=tagged.loss, unseen_tags=data.unseen_tags, seconds=seconds)
    return result
