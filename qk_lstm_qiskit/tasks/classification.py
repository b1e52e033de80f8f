"""Sequence classification: one label per multichannel sequence of any length; cross-entropy, accuracy, macro-F1.

Data: ``data.source`` an archive shipped inside aeon (``basic_motions``, ``japanese_vowels``,
``gunpoint``), a ``.ts``, ``.npz`` or ``.csv`` training file, and the ``classify`` section
(:func:`~qk_lstm_qiskit.data.sequences.prepare_sequences`: a stratified validation split carved
from the training split, per-channel standardisation fitted on what remains). Model:
:class:`~qk_lstm_qiskit.nn.classifier.SequenceClassifier` (``classify.pooling``: ``last`` or
``mean``). Checkpoints keep the class names, the scaler and the channel count.

``model.pt`` keeps the best validation accuracy. The test split (the archive's own, the
``*_TEST`` sibling of a ``*_TRAIN`` file, or ``classify.test_source``) is never read during
training or model selection: the run's report scores ``model.pt`` on it once, exactly as
``qk-lstm evaluate`` does, and draws ``confusion.png``.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ..checkpoint import MODEL_FILE, checkpoint_task, load_checkpoint, restoring
from ..config import load_config
from ..data.scaling import ChannelScaler
from ..data.sequences import (
    SEQUENCE_ARCHIVES, LabelledSequences, SequenceBatch, default_test_source, make_sequence_batches,
    prepare_sequences, test_sequences,
)
from ..evaluation.classification import classification_metrics, classify, plot_class_confusion
from ..evaluation.backend import default_eval_dir, estimate_on_backend, evaluate_on_backend
from ..evaluation.work import BackendWork, interval_metrics
from ..evaluation.sampling import proportion_interval
from ..evaluation.options import Budget, EvaluationRequest, Sampling
from ..hardware.cost import CostEstimate
from ..nn.classifier import build_classifier
from ..rundir import check_out_dir, make_out_dir, write_json_atomic
from ..validation import check_int
from .base import Step, Task, TaskData, backend_report

__all__ = ["ClassificationTask", "classification_work", "evaluate_classification", "evaluate_classification_on_backend",
           "classification_backend_work",            "estimate_classification"]

log = logging.getLogger(__name__)
SEQUENCE_SUFFIXES = (".ts", ".npz", ".csv")


class ClassificationTask(Task):
    """Mean cross-entropy over sequences; metric: accuracy (higher is better)."""

    name, metric, higher_is_better = "classification", "accuracy", True
    sections = Task.sections + ("classify",)
    checkpoint_keys = ("classes", "scaler", "num_channels")

    classes: tuple[str, ...]
    scaler: ChannelScaler
    num_channels: int
    test: LabelledSequences | None = None

    def check(self, config) -> None:
        source = config.data.source
        if source not in SEQUENCE_ARCHIVES and not source.lower().endswith(SEQUENCE_SUFFIXES):
            raise ValueError(f"config: expected data.source in {tuple(SEQUENCE_ARCHIVES)} or a .ts, .npz or .csv file "
                             f"for task 'classification', got {source!r}")

    def _columns(self) -> list[str] | None:
        columns = self.config.classify.columns
        return [c.strip() for c in columns.split(",")] if columns else None

    # ------------------------------------------------------------------ data and model
    def prepare(self) -> TaskData:
        data, options = self.config.data, self.config.classify
        splits = prepare_sequences(data.source, validation_fraction=data.validation_fraction, seed=data.split_seed,
                                   columns=self._columns(), train_fraction=options.train_fraction)
        self.classes, self.scaler, self.num_channels = splits.classes, splits.scaler, splits.train.num_channels
        source = self.test_source()  # read now so that a bad test file stops the run before it starts; scored only
        self.test = None if source is None else self.test_data(source)  # by report() and evaluate, never trained on
        return TaskData(splits.train, splits.validation)

    def metadata(self) -> dict[str, Any]:
        return {"classes": list(self.classes), "scaler": self.scaler.to_dict(), "num_channels": self.num_channels}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.classes = tuple(state["classes"])
        self.scaler = ChannelScaler.from_dict(state["scaler"])
        self.num_channels = int(state["num_channels"])

    def build_model(self, *, sampler=None, pass_manager=None, memory_limit: int | None = None) -> nn.Module:
        return build_classifier(self.config.model, self.num_channels, len(self.classes), pooling=self.config.classify.pooling,
                                sampler=sampler, pass_manager=pass_manager, memory_limit=memory_limit)

    def recurrent_inputs(self, model: nn.Module, train: LabelledSequences) -> torch.Tensor:
        shortest = min(len(x) for x in train.sequences[:32])
        return torch.stack([torch.as_tensor(x[:shortest], dtype=torch.float32) for x in train.sequences[:32]])

    # ------------------------------------------------------------------ trainer
    def batches(self, examples: LabelledSequences, generator: torch.Generator | None = None) -> list[SequenceBatch]:
        return make_sequence_batches(examples, self.config.train.batch_size, generator=generator)

    def step(self, model: nn.Module, batch: SequenceBatch, device: torch.device) -> Step:
        logits = model(batch.inputs.to(device), batch.lengths)
        labels = batch.labels.to(device)
        loss = nn.functional.cross_entropy(logits, labels)
        return loss, len(labels), float((logits.argmax(-1) == labels).sum())

    def count(self, batch: SequenceBatch) -> int:
        return len(batch)

    def shard(self, batch: SequenceBatch, rank: int, world_size: int) -> SequenceBatch | None:
        rows = slice(rank, None, world_size)
        if not len(batch.labels[rows]):
            return None
        longest = int(batch.lengths[rows].max())
        return SequenceBatch(batch.inputs[rows, :longest], batch.lengths[rows], batch.labels[rows])

    def summarise(self, loss_sum: float, metric_sum: float, count: int) -> dict[str, float]:
        return {"loss": loss_sum / count, "accuracy": metric_sum / count}

    def evaluate(self, model: nn.Module, batches: Sequence[SequenceBatch]) -> dict[str, float]:
        predictions, gold, loss = classify(model, batches)
        return {"loss": loss, "accuracy": float((predictions == gold).double().mean())}

    def sequence_lengths(self, examples: LabelledSequences) -> list[int]:
        return examples.lengths.tolist()

    # ------------------------------------------------------------------ test split
    def test_source(self) -> str | None:
        """Where the test split is: ``classify.test_source``, else :func:`~qk_lstm_qiskit.data.sequences.default_test_source`."""
        return self.config.classify.test_source or default_test_source(self.config.data.source)

    def test_data(self, source: str | None = None, *, max_sequences: int | None = None) -> LabelledSequences:
        """The test split (or ``source``) with this run's classes and scaler (after :meth:`prepare` or :meth:`restore`).

        Raises:
            ValueError: no test split known; an unreadable file; a class missing from training.
        """
        source = source or self.test_source()
        if source is None:
            raise ValueError(f"evaluate: expected a test split for {self.config.data.source!r} (classify.test_source or "
                             f"--data FILE), got none")
        return test_sequences(source, self.classes, self.scaler, columns=self._columns(), max_sequences=max_sequences)

    def score(self, model: nn.Module, data: LabelledSequences, batch_size: int = 64) -> dict[str, Any]:
        """:func:`~qk_lstm_qiskit.evaluation.classification.classification_metrics` of ``model`` on ``data``, plus ``loss``."""
        predictions, gold, loss = classify(model, make_sequence_batches(data, batch_size))
        return {**classification_metrics(predictions, gold, self.classes), "loss": loss,
                "predictions": predictions.tolist()}

    # ------------------------------------------------------------------ after training
    def report(self, model: nn.Module, data: TaskData, history: list[dict[str, float]],
               out_dir: Path | None) -> dict[str, Any]:
        """Training and validation accuracy; ``test_accuracy``, ``test_macro_f1`` and the confusion matrix of
        ``model.pt`` (best validation accuracy) on the test split, and ``confusion.png``, when a test split is known."""
        if out_dir is not None and (out_dir / MODEL_FILE).is_file():
            best = load_checkpoint(out_dir / MODEL_FILE)
            model.load_state_dict(best["model_state"])
            scored_epoch = best["epoch"]
        else:
            scored_epoch = len(history)
        extra: dict[str, Any] = {
            "data": self.config.data.source, "classes": list(self.classes), "train_sequences": len(data.train),
            "final_loss": history[-1]["loss"], "final_accuracy": history[-1]["accuracy"],
            "seconds_per_epoch": sum(r["seconds"] for r in history) / len(history), "test_epoch": scored_epoch,
        }
        if data.validation is not None:
            extra["best_val_accuracy"] = max(r["val_accuracy"] for r in history)
        source = self.test_source()
        if self.test is None or source is None:
            log.warning("classification: no test split for %s; scored nothing (classify.test_source)", self.config.data.source)
            return extra
        scored = self.score(model, self.test)
        extra.update(test_source=source, test_accuracy=scored["accuracy"], test_macro_f1=scored["macro_f1"],
                     test_sequences=scored["sequences"], test_confusion_matrix=scored["confusion_matrix"],
                     test_per_class=scored["per_class"])
        if out_dir is not None:
            plot_class_confusion(scored, out_dir / "confusion.png",
                                 title=f"{self.config.model.kind} on {source} (test, epoch {scored_epoch}): "
                                       f"accuracy {scored['accuracy']:.3f}")
        log.info("classification: test accuracy %.4f, macro-F1 %.4f on %s", scored["accuracy"], scored["macro_f1"], source)
        return extra

    # ------------------------------------------------------------------ qk-lstm evaluate / estimate
    EXACT_OPTIONS = ("backend", "data", "max_items", "out_dir", "batch_size", "progress")

    def evaluate_checkpoint(self, checkpoint: Path, request: EvaluationRequest) -> dict[str, Any]:
        """Test accuracy, macro-F1 and confusion matrix of the checkpoint's classifier, exact or (qk-lstm) on a
        sampler backend next to the exact model's, with the journal, estimate, budget and mitigation of tagging
        (:func:`evaluate_classification_on_backend`)."""
        checkpoint = checkpoint / MODEL_FILE if checkpoint.is_dir() else checkpoint
        if request.backend != "exact":
            return evaluate_classification_on_backend(checkpoint, request)
        for name in request.changed():  # anything else would be ignored silently
            if name not in self.EXACT_OPTIONS:
                raise ValueError(f"evaluate: expected {request.label(name)} only with a sampler backend, "
                                 f"got {request.label('backend')} exact")
        out = request.out_dir or default_eval_dir(checkpoint, request.backend)
        metrics = evaluate_classification(checkpoint, out, data=request.data, max_sequences=request.max_items,
                                          batch_size=request.batch_size or DEFAULT_BATCH_SIZE)
        return {**metrics, "out_dir": str(out)}

    def evaluation_summary(self, metrics: Mapping[str, Any], request: EvaluationRequest) -> list[str]:
        if metrics.get("dry_run"):
            return backend_report(metrics, [])
        lines = [f"accuracy: {metrics['accuracy']:.4f}  macro-F1: {metrics['macro_f1']:.4f} on "
                 f"{metrics['sequences']} sequences of {metrics['data']}"]
        if request.backend == "exact":
            out = metrics["out_dir"]
            return lines + [f"outputs: {out}/metrics.json, {out}/confusion.png"]
        return backend_report(metrics, [
            f"accuracy on {metrics['backend']} ({metrics['shots']} shots): {metrics['accuracy']:.4f}   "
            f"exact: {metrics['exact_accuracy']:.4f}   agreement: {metrics['agreement']:.4f}", *lines])

    def backend_work(self, checkpoint: Path, request: EvaluationRequest) -> tuple[BackendWork, Any]:
        return classification_backend_work(checkpoint, request)

    def estimate_checkpoint(self, checkpoint: Path, request: EvaluationRequest, *, training: bool = False,
                            epochs: int = 1) -> Any:
        """The QPU cost of classifying the request's data (default: the test split; ``training``: of training on
        the training split) on ``request.backend``."""
        return _estimate(checkpoint, request, training=training, epochs=epochs)

    def summary(self, result: Mapping[str, Any]) -> list[str]:
        lines = [f"final training accuracy: {result['final_accuracy']:.4f}  loss: {result['final_loss']:.4f}"]
        if "best_val_accuracy" in result:
            lines.append(f"best validation accuracy: {result['best_val_accuracy']:.4f}")
        if "test_accuracy" in result:
            lines.append(f"test accuracy: {result['test_accuracy']:.4f}  macro-F1: {result['test_macro_f1']:.4f} "
                         f"on {result['test_sequences']} sequences of {result['test_source']}")
        out = result.get("out_dir")
        files = ("metrics.json", "model.pt") + (("confusion.png",) if "test_accuracy" in result else ())
        return lines + (["outputs: " + ", ".join(f"{out}/{name}" for name in files)] if out else [])


# ---------------------------------------------------------------------- saved checkpoints: evaluate, estimate

OUTPUT_FILES = ("metrics.json", "confusion.png")
DEFAULT_BATCH_SIZE = 64


def _restored(checkpoint: str | os.PathLike) -> tuple[Path, ClassificationTask, dict[str, Any]]:
    path = Path(checkpoint)
    path = path / MODEL_FILE if path.is_dir() else path
    state = load_checkpoint(path, keys=ClassificationTask.checkpoint_keys)
    if checkpoint_task(state) != ClassificationTask.name:
        raise ValueError(f"evaluate: expected a classification checkpoint, got task {checkpoint_task(state)!r} in {str(path)!r}")
    with restoring(path):
        task = ClassificationTask(load_config(overrides=state["config"]))
        task.restore(state)
    return path, task, state


def _qk_lstm(task: ClassificationTask, command: str, backend: str) -> None:
    if task.config.model.kind != "qk-lstm":
        raise ValueError(f"{command}: expected a qk-lstm checkpoint on sampler backend {backend!r} (its kernels use the "
                         f"sampler), got {task.config.model.kind!r}")


def classification_work(task: ClassificationTask, test: LabelledSequences, batch_size: int, source: str,
                        population: int | None = None) -> BackendWork:
    """The :class:`~qk_lstm_qiskit.evaluation.work.BackendWork` of classifying ``test`` in batches of
    ``batch_size`` sequences sorted by length (one job per time step of a batch): accuracy, macro-F1, the
    confusion matrix and ``confusion.png`` on the backend, ``exact_accuracy``, ``exact_macro_f1`` and
    ``agreement`` (fraction of sequences both models put in the same class); predictions in ``test``'s order.
    On a sample of a ``population`` of sequences: the accuracy's 95 % interval
    (:func:`~qk_lstm_qiskit.evaluation.sampling.proportion_interval`) and the exact accuracy on every sequence."""
    order = np.argsort(test.lengths, kind="stable")
    batches = make_sequence_batches(test.subset(order), batch_size)
    unsort = torch.as_tensor(np.argsort(order, kind="stable"))

    def run(model: nn.Module, parts: Sequence[SequenceBatch]) -> tuple[torch.Tensor, torch.Tensor, float]:
        predictions, gold, loss = classify(model, parts)
        return predictions, gold, loss * len(gold)

    def combine(parts: list[tuple[torch.Tensor, torch.Tensor, float]]) -> tuple[torch.Tensor, torch.Tensor, float]:
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]), sum(p[2] for p in parts)

    def score(on_backend, exact, out: Path, title: str, exact_full) -> dict[str, Any]:
        (predictions, gold, loss_sum), exact_predictions = on_backend, exact[0][unsort]
        predictions, gold = predictions[unsort], gold[unsort]
        scored = classification_metrics(predictions, gold, task.classes)
        plot_class_confusion(scored, out / "confusion.png", title=f"{task.config.model.kind} {title}: accuracy "
                                                                  f"{scored['accuracy']:.3f}")
        exact_scored = classification_metrics(exact_predictions, gold, task.classes)
        metrics = {"model": task.config.model.kind, **scored, "loss": loss_sum / len(gold),
                   "predictions": predictions.tolist(), "exact_accuracy": exact_scored["accuracy"],
                   "exact_macro_f1": exact_scored["macro_f1"], "exact_predictions": exact_predictions.tolist(),
                   "agreement": float((predictions == exact_predictions).double().mean())}
        if exact_full is not None:
            interval = proportion_interval((predictions == gold).int().numpy(), population or len(gold))
            metrics.update(interval_metrics(interval, float((exact_full[0] == exact_full[1]).double().mean())))
        return metrics

    def select(indices: Sequence[int]) -> BackendWork:
        return classification_work(task, test.subset(np.asarray(indices, dtype=int)), batch_size, source,
                                   population=len(test))

    return BackendWork(batches=batches, lengths=[int(n) for n in test.lengths], batch_size=batch_size, run=run,
                       combine=combine, score=score, source=source, batch_lengths=lambda batch: batch.lengths,
                       metric=lambda outputs: float((outputs[0] == outputs[1]).double().mean()), metric_name="accuracy",
                       higher_is_better=True, select=select if population is None else None)


def classification_backend_work(checkpoint: str | os.PathLike, request: EvaluationRequest) -> tuple[BackendWork, Any]:
    """``(work, load)`` of a qk-lstm classifier on its test split (or ``request.data``, its first
    ``request.max_items`` sequences; ``request.batch_size`` a batch, default 64) on a sampler backend
    (:func:`classification_work`; ``load(sampler=None, pass_manager=None)`` → the model)."""
    path, task, state = _restored(checkpoint)
    _qk_lstm(task, "evaluate", request.backend)
    test = task.test_data(request.data, max_sequences=request.max_items)
    batch_size = request.batch_size or DEFAULT_BATCH_SIZE
    check_int("evaluate", "batch_size", batch_size, 1)

    def load(sampler=None, pass_manager=None) -> nn.Module:
        return task.load(path, state, sampler=sampler, pass_manager=pass_manager)

    return classification_work(task, test, batch_size, request.data or task.test_source() or ""), load


def evaluate_classification_on_backend(checkpoint: str | os.PathLike, request: EvaluationRequest, *,
                                       resolved=None) -> dict[str, Any]:
    """:func:`~qk_lstm_qiskit.evaluation.backend.evaluate_on_backend` of a qk-lstm classifier
    (:func:`classification_backend_work`): journal, resume, estimate, budget, mitigation and the kernels'
    fidelity as for tagging."""
    work, load = classification_backend_work(checkpoint, request)
    path = Path(checkpoint)
    return evaluate_on_backend(path / MODEL_FILE if path.is_dir() else path, request, work, load=load,
                               outputs=("confusion.png",), resolved=resolved)


def evaluate_classification(
    checkpoint: str | os.PathLike, out_dir: str | os.PathLike, *, backend: str = "exact", shots: int = 4096,
    seed: int | None = 0, optimization_level: int = 2, data: str | None = None, max_sequences: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> dict[str, Any]:
    """Test accuracy, macro-F1 and confusion matrix of the classifier at ``checkpoint``, exact or (``backend`` a
    sampler backend, QK-LSTM only) on the backend next to the exact model's (:func:`evaluate_classification_on_backend`
    with these options).

    The test split is the run's (``classify.test_source``, the archive's, the ``*_TEST`` sibling) or
    ``data``, standardised with the saved training statistics; ``max_sequences`` keeps its first sequences.

    Writes ``out_dir/metrics.json`` and ``out_dir/confusion.png`` (and the job journal on a backend); refuses an
    ``out_dir`` that already holds them.

    Raises:
        ValueError: not a classification checkpoint; no test split; a class missing from training;
            a non-qk-lstm model on a sampler backend; results already in ``out_dir``.
    """
    if backend != "exact":
        request = EvaluationRequest(backend=backend, out_dir=Path(out_dir), data=data, max_items=max_sequences,
                                    batch_size=batch_size, sampling=Sampling(shots, seed, optimization_level))
        return evaluate_classification_on_backend(checkpoint, request)
    start = time.perf_counter()
    path, task, state = _restored(checkpoint)
    out = check_out_dir(out_dir, command="evaluate", outputs=OUTPUT_FILES)
    kind = task.config.model.kind
    test = task.test_data(data, max_sequences=max_sequences)
    exact = task.score(task.load(path, state), test, batch_size)
    metrics: dict[str, Any] = {"checkpoint": str(path), "data": data or task.test_source(), "model": kind,
                               "backend": "exact", **exact, "seconds": time.perf_counter() - start}
    make_out_dir(check_out_dir(out, command="evaluate", outputs=OUTPUT_FILES))  # again: another process may have written
    plot_class_confusion(metrics, out / "confusion.png",
                         title=f"{kind} on {metrics['data']} (exact): accuracy {metrics['accuracy']:.3f}")
    write_json_atomic(metrics, out / "metrics.json")
    log.info("evaluate: accuracy %.4f on %s (exact)", metrics["accuracy"], metrics["data"])
    return metrics


def _estimate(checkpoint: str | os.PathLike, request: EvaluationRequest, *, training: bool = False,
              epochs: int = 1) -> CostEstimate:
    path, task, state = _restored(checkpoint)
    _qk_lstm(task, "estimate", request.backend)
    if training:
        if request.data is not None or request.max_items is not None:
            raise ValueError(f"estimate: expected no {request.label('data')} or {request.label('max_items')} with "
                             "--training (it counts the run's own training split)")
        lengths = task.prepare().train.lengths.tolist()
        size = request.batch_size or task.config.train.batch_size
    else:
        lengths = task.test_data(request.data, max_sequences=request.max_items).lengths.tolist()
        size = request.batch_size or DEFAULT_BATCH_SIZE

    def load(sampler=None, pass_manager=None) -> nn.Module:
        return task.load(path, state, sampler=sampler, pass_manager=pass_manager)

    return estimate_on_backend(path, request, lengths, size, load=load, training=training, epochs=epochs)


def estimate_classification(
    checkpoint: str | os.PathLike, backend: str, *, shots: int = 4096, batch_size: int = DEFAULT_BATCH_SIZE,
    data: str | None = None, max_sequences: int | None = None, optimization_level: int = 2, seed: int | None = 0,
    job_overhead_seconds: float | None = None,
) -> CostEstimate:
    """Circuits, shots, jobs and QPU seconds of classifying the test split (or ``data``) with the QK-LSTM
    classifier at ``checkpoint`` on ``backend``, in batches of ``batch_size`` sequences sorted by length (one job
    per time step of a batch and layer). Nothing is submitted.

    Raises:
        ValueError: not a qk-lstm classification checkpoint; not a sampler backend; no test split.
    """
    request = EvaluationRequest(backend=backend, data=data, max_items=max_sequences, batch_size=batch_size,
                                sampling=Sampling(shots, seed, optimization_level),
                                budget=Budget(job_overhead_seconds=job_overhead_seconds))
    return _estimate(checkpoint, request)
