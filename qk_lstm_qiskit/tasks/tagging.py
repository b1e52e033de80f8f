"""Part-of-speech tagging: a tag per token; mean NLL over real tokens, token accuracy (the paper's task).

Data: ``data.source`` ``paper`` (the paper's two sentences) or a CoNLL-U file
(:func:`~qk_lstm_qiskit.data.tasks.prepare_data`); model: :class:`~qk_lstm_qiskit.nn.tagger.Tagger`;
checkpoints keep the word and tag vocabularies. A checkpoint is evaluated exactly
(:func:`~qk_lstm_qiskit.evaluation.exact.evaluate_exact`) or on a sampler backend
(:func:`~qk_lstm_qiskit.evaluation.backend.evaluate_checkpoint`: journal, estimate, budget, mitigation).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from ..data.corpus import PAD_TAG, Batch, Vocabulary, make_batches
from ..data.series import is_series_source
from ..data.tasks import prepare_data
from ..evaluation.backend import (
    DEFAULT_BATCH_SIZE, default_eval_dir, estimate_checkpoint, evaluate_checkpoint, tagging_backend_work,
)
from ..evaluation.exact import evaluate_exact
from ..evaluation.loop import tag_batches
from ..evaluation.options import EvaluationRequest
from ..nn.tagger import build_tagger
from .base import Step, Task, TaskData, backend_report

__all__ = ["TaggingTask", "batch_stats", "evaluate"]

Encoded = Sequence[tuple[list[int], list[int]]]


def batch_stats(log_probs: torch.Tensor, batch: Batch) -> tuple[torch.Tensor, int, int]:
    """``(mean NLL over real tokens, correct, real tokens)`` of log-probabilities ``(N, L, T)`` on ``batch``."""
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


class TaggingTask(Task):
    """Mean NLL over real tokens; metric: token accuracy. Batches of ``train.batch_size`` sentences
    (length-bucketed with ``train.bucket_batches``); ``model.pt`` keeps the best validation accuracy."""

    name, metric, higher_is_better = "tagging", "accuracy", True
    checkpoint_keys = private_keys = ("words", "tags")

    def __init__(self, config, *, words: Vocabulary | None = None, tags: Vocabulary | None = None) -> None:
        """``words``/``tags``: vocabularies of data prepared elsewhere (else from :meth:`prepare` or :meth:`restore`)."""
        super().__init__(config)
        if words is not None and tags is not None:
            self.words, self.tags = words, tags

    def check(self, config) -> None:
        if is_series_source(config.data.source):
            raise ValueError(f"config: expected data.source 'paper' or a CoNLL-U file for task 'tagging', got "
                             f"{config.data.source!r} (a series: task 'forecasting')")

    @property
    def pad_index(self) -> int:
        return self.words.pad_index or 0

    # ------------------------------------------------------------------ data and model
    def prepare(self) -> TaskData:
        data = prepare_data(self.config.data)
        self.words, self.tags = data.words, data.tags
        return TaskData(data.train, data.validation or None)

    def metadata(self) -> dict[str, Any]:
        return {"words": self.words.to_dict(), "tags": self.tags.to_dict()}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.words, self.tags = Vocabulary.from_dict(state["words"]), Vocabulary.from_dict(state["tags"])

    def build_model(self, *, sampler=None, pass_manager=None, memory_limit: int | None = None) -> nn.Module:
        return build_tagger(self.config.model, len(self.words), len(self.tags), sampler=sampler, pass_manager=pass_manager,
                            memory_limit=memory_limit)

    def recurrent_inputs(self, model: nn.Module, train: Encoded) -> torch.Tensor:
        sample = make_batches(train[:32], 32, pad_index=self.pad_index)[0]
        return model.get_submodule("embedding")(sample.words).detach()

    # ------------------------------------------------------------------ trainer
    def batches(self, examples: Encoded, generator: torch.Generator | None = None) -> list[Batch]:
        train = self.config.train
        return make_batches(examples, train.batch_size, pad_index=self.pad_index, generator=generator,
                            bucket_batches=train.bucket_batches)

    def step(self, model: nn.Module, batch: Batch, device: torch.device) -> Step:
        loss, correct, total = batch_stats(model(batch.words.to(device)), batch)
        return loss, total, correct

    def count(self, batch: Batch) -> int:
        return int((batch.tags != PAD_TAG).sum())

    def shard(self, batch: Batch, rank: int, world_size: int) -> Batch | None:
        rows = slice(rank, None, world_size)
        share = Batch(batch.words[rows], batch.tags[rows])
        return share if share.words.size(0) else None

    def summarise(self, loss_sum: float, metric_sum: float, count: int) -> dict[str, float]:
        return {"loss": loss_sum / count, "accuracy": metric_sum / count}

    def evaluate(self, model: nn.Module, batches: Sequence[Batch]) -> dict[str, float]:
        return evaluate(model, batches)

    # ------------------------------------------------------------------ after training
    def report(self, model: nn.Module, data: TaskData, history: list[dict[str, float]],
               out_dir: Path | None) -> dict[str, Any]:
        """``final_accuracy`` and ``final_loss`` of the last epoch's model on the training sentences
        (and ``best_val_accuracy`` with validation data)."""
        final = evaluate(model, self.batches(data.train))
        extra: dict[str, Any] = {"final_accuracy": final["accuracy"], "final_loss": final["loss"]}
        if data.validation:
            extra["best_val_accuracy"] = max(r["val_accuracy"] for r in history)
        return extra

    def summary(self, result: Mapping[str, Any]) -> list[str]:
        lines = [f"final training accuracy: {result['final_accuracy']:.4f}  loss: {result['final_loss']:.4f}"]
        if "best_val_accuracy" in result:
            lines.append(f"best validation accuracy: {result['best_val_accuracy']:.4f}")
        out = result.get("out_dir")
        return lines + ([f"outputs: {out}/metrics.json, {out}/model.pt"] if out else [])

    def sequence_lengths(self, examples: Encoded) -> list[int]:
        return [len(ws) for ws, _ in examples]

    # ------------------------------------------------------------------ saved checkpoints
    EXACT_OPTIONS = ("backend", "data", "out_dir", "batch_size", "max_items", "progress")  # what the exact path uses

    def evaluate_checkpoint(self, checkpoint: Path, request: EvaluationRequest) -> dict[str, Any]:
        """Exact: any model kind (``metrics.json``, ``confusion.png``); on a sampler backend: a qk-lstm
        tagger next to its exact self (kernel differences, agreement, job journal, cost estimate)."""
        if request.backend == "exact":
            for name in request.changed():  # anything else would be ignored silently
                if name not in self.EXACT_OPTIONS:
                    raise ValueError(f"evaluate: expected {request.label(name)} only with a sampler backend, "
                                     f"got {request.label('backend')} exact")
            out = request.out_dir or default_eval_dir(checkpoint, "exact")
            metrics = evaluate_exact(checkpoint, out, data=request.data, batch_size=request.batch_size,
                                     max_sentences=request.max_items)
            return {**metrics, "out_dir": str(out)}
        return evaluate_checkpoint(
            checkpoint, request.backend, data=request.data, out_dir=request.out_dir,
            batch_size=request.batch_size or DEFAULT_BATCH_SIZE, max_sentences=request.max_items,
            sampling=request.sampling, mitigation=request.mitigation, jobs=request.jobs, runtime=request.runtime,
            budget=request.budget, resume=request.resume, progress=request.progress,
        )

    def evaluation_summary(self, metrics: Mapping[str, Any], request: EvaluationRequest) -> list[str]:
        out = metrics.get("out_dir")
        if request.backend == "exact":
            lines = [f"accuracy (exact): {metrics['accuracy']:.4f} on {metrics['tokens']} tokens of {metrics['data']}   "
                     f"macro F1: {metrics['macro_f1']:.4f}"]
            if metrics.get("accuracy_unknown_words") is not None:
                lines.append(f"unknown words: {metrics['unknown_word_rate']:.2%} of tokens, accuracy "
                             f"{metrics['accuracy_unknown_words']:.4f}")
            return lines + [f"outputs: {out}/metrics.json, {out}/confusion.png"]
        if metrics.get("dry_run"):
            return backend_report(metrics, [])
        return backend_report(metrics, [
            f"accuracy on {metrics['backend']} ({metrics['shots']} shots): {metrics['accuracy']:.4f}   "
            f"exact: {metrics['exact_accuracy']:.4f}   agreement: {metrics['agreement']:.4f}"])

    def backend_work(self, checkpoint: Path, request: EvaluationRequest) -> tuple[Any, Any]:
        return tagging_backend_work(checkpoint, request)

    def estimate_checkpoint(self, checkpoint: Path, request: EvaluationRequest, *, training: bool = False,
                            epochs: int = 1) -> Any:
        return estimate_checkpoint(
            checkpoint, request.backend, data=request.data, batch_size=request.batch_size or DEFAULT_BATCH_SIZE,
            max_sentences=request.max_items, training=training, epochs=epochs, sampling=request.sampling,
            mitigation=request.mitigation, jobs=request.jobs, budget=request.budget,
        )
