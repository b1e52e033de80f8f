"""The task protocol: what a run learns, everything :func:`~qk_lstm_qiskit.training.experiment.run_training`
and ``qk-lstm evaluate`` ask of it, and nothing about how the trainer loops.

A task is built from a :class:`~qk_lstm_qiskit.config.RunConfig` and owns

* its data: :meth:`Task.prepare` (training and validation examples) and the plain data a
  checkpoint keeps to rebuild the model (:meth:`Task.metadata`, :attr:`Task.checkpoint_keys`,
  :meth:`Task.restore`);
* its head: :meth:`Task.build_model` (the recurrent layer of ``config.model`` and its head);
* its loss and metric, as the trainer uses them: :meth:`Task.batches`, :meth:`Task.step`,
  :meth:`Task.count`, :meth:`Task.shard` (data-parallel ranks), :meth:`Task.summarise`,
  :meth:`Task.evaluate`, with :attr:`Task.metric` and :attr:`Task.higher_is_better`;
* its report after training (:meth:`Task.report`, :meth:`Task.summary`), its saved model
  (:meth:`Task.load`; :func:`~qk_lstm_qiskit.tasks.task_of_checkpoint` finds the task of a file) and
  the evaluation of a checkpoint, exact or on a sampler backend, with its report
  (:meth:`Task.evaluate_checkpoint`, :meth:`Task.evaluation_summary`, :meth:`Task.estimate_checkpoint`).

A new task is one module defining a :class:`Task` subclass plus its name in
:data:`qk_lstm_qiskit.tasks.TASKS`.
"""

from __future__ import annotations

import abc
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import torch
from torch import nn

from ..checkpoint import load_checkpoint, restoring
from ..config import RunConfig
from ..evaluation.options import EvaluationRequest

__all__ = ["Task", "TaskData", "Step", "backend_report"]

Step = tuple[torch.Tensor, int, float]  #: (mean loss of the batch, its count, the metric's numerator summed over it)


@dataclass
class TaskData:
    """A task's prepared examples: ``train`` and ``validation`` (``None`` without validation data),
    in whatever form the task's :meth:`Task.batches` takes."""

    train: Any
    validation: Any | None


class Task(abc.ABC):
    """What a run learns (see the module docstring).

    Attributes:
        name: the config's ``task`` and the checkpoint's ``task`` key.
        metric: the score that picks ``model.pt`` (``val_<metric>`` with validation data);
            :meth:`summarise` and :meth:`evaluate` return it next to ``loss``.
        higher_is_better: which way :attr:`metric` improves.
        sections: the config sections a resumed run must keep (only ``train.epochs`` may grow).
        checkpoint_keys: the keys :meth:`metadata` adds to every checkpoint (required on load).
        private_keys: those of :attr:`checkpoint_keys` left out of ``metrics.json`` (e.g. large vocabularies).
    """

    name: ClassVar[str]
    metric: ClassVar[str]
    higher_is_better: ClassVar[bool]
    sections: ClassVar[tuple[str, ...]] = ("model", "data", "train", "executor")
    checkpoint_keys: ClassVar[tuple[str, ...]] = ()
    private_keys: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.check(config)

    def check(self, config: RunConfig) -> None:
        """Refuse a config this task cannot run, with a one-line ``ValueError`` (default: accept any)."""
        return None

    # ------------------------------------------------------------------ data and model
    @abc.abstractmethod
    def prepare(self) -> TaskData:
        """Read and split the training data of ``self.config``; afterwards :meth:`metadata` is known."""

    @abc.abstractmethod
    def metadata(self) -> dict[str, Any]:
        """The :attr:`checkpoint_keys` of this run as plain data (after :meth:`prepare` or :meth:`restore`)."""

    @abc.abstractmethod
    def restore(self, state: Mapping[str, Any]) -> None:
        """Take :meth:`metadata` back from a checkpoint dictionary."""

    @abc.abstractmethod
    def build_model(self, *, sampler=None, pass_manager=None, memory_limit: int | None = None) -> nn.Module:
        """The model of ``self.config.model`` for this task's data; ``sampler``/``pass_manager``
        reach the QK-LSTM kernels (``None``: the exact executor), ``memory_limit`` its exact
        executors (bytes per call; ``None``: their default)."""

    def recurrent_inputs(self, model: nn.Module, train: Any) -> torch.Tensor:
        """``(N, L, F)`` inputs of the recurrent layer for a few training examples
        (``model.references: data`` draws the kernel references from them)."""
        raise ValueError(f"train: expected model.references 'fixed' or 'learned' for task {self.name!r}, got 'data'")

    # ------------------------------------------------------------------ what the trainer asks
    @abc.abstractmethod
    def batches(self, examples: Any, generator: torch.Generator | None = None) -> Sequence[Any]:
        """The examples in batches, shuffled with ``generator`` when given (else in a fixed order)."""

    @abc.abstractmethod
    def step(self, model: nn.Module, batch: Any, device: torch.device) -> Step:
        """``(mean loss on device, count, metric numerator)`` of ``model`` on ``batch`` (grad enabled);
        the mean is over the ``count`` units the loss averages (tokens, windows, …)."""

    @abc.abstractmethod
    def count(self, batch: Any) -> int:
        """The units :meth:`step` averages over in the whole ``batch``."""

    @abc.abstractmethod
    def shard(self, batch: Any, rank: int, world_size: int) -> Any | None:
        """Rows ``rank::world_size`` of ``batch`` (a data-parallel rank's share); ``None`` when it has none."""

    @abc.abstractmethod
    def summarise(self, loss_sum: float, metric_sum: float, count: int) -> dict[str, float]:
        """``{"loss": …, metric: …}`` of an epoch from the sums of :meth:`step`."""

    @abc.abstractmethod
    def evaluate(self, model: nn.Module, batches: Sequence[Any]) -> dict[str, float]:
        """``{"loss": …, metric: …}`` of ``model`` on ``batches`` in eval mode (validation)."""

    # ------------------------------------------------------------------ after training
    @abc.abstractmethod
    def report(self, model: nn.Module, data: TaskData, history: list[dict[str, float]],
               out_dir: Path | None) -> dict[str, Any]:
        """The run's final metrics (added to ``metrics.json``), scoring what the run ships; may write plots."""

    @abc.abstractmethod
    def summary(self, result: Mapping[str, Any]) -> list[str]:
        """Lines ``qk-lstm train`` prints about ``result`` (what :func:`run_training` returned)."""

    def sequence_lengths(self, examples: Any) -> list[int]:
        """The time steps of every training example (the QPU cost estimate counts circuits per step)."""
        raise ValueError(f"train: expected --dry-run / --max-qpu-seconds with a tagging run (no cost estimate for "
                         f"task {self.name!r} yet), got data.source {self.config.data.source!r}")

    # ------------------------------------------------------------------ saved checkpoints
    def load(self, path: str | os.PathLike, state: Mapping[str, Any] | None = None, *, sampler=None,
             pass_manager=None) -> nn.Module:
        """The model saved at ``path`` (its state dictionary ``state`` if already loaded), in eval mode.

        Raises:
            ValueError: a state that does not fit this task's config (one line naming ``path``).
        """
        if state is None:
            state = load_checkpoint(path, keys=self.checkpoint_keys)
        with restoring(path):
            self.restore(state)
            model = self.build_model(sampler=sampler, pass_manager=pass_manager)
            model.load_state_dict(state["model_state"])
        return model.eval()

    @abc.abstractmethod
    def evaluate_checkpoint(self, checkpoint: Path, request: EvaluationRequest) -> dict[str, Any]:
        """Score the model saved at ``checkpoint`` (a ``model.pt`` this task wrote) as ``request`` asks:
        exact (``request.backend == "exact"``) or on a sampler backend; write the results under
        ``request.out_dir`` (default ``<checkpoint folder>/eval-<backend>``) and return them with
        ``out_dir``. Refuse options the task cannot take with a one-line ``ValueError`` naming
        ``request.label(option)``."""

    @abc.abstractmethod
    def evaluation_summary(self, metrics: Mapping[str, Any], request: EvaluationRequest) -> list[str]:
        """Lines ``qk-lstm evaluate`` prints about ``metrics`` (what :meth:`evaluate_checkpoint` returned)."""

    def backend_work(self, checkpoint: Path, request: EvaluationRequest) -> tuple[Any, Any]:
        """``(work, load)``: the :class:`~qk_lstm_qiskit.evaluation.work.BackendWork` of evaluating the request's
        data with the checkpoint's model on a sampler backend, and ``load(sampler=None, pass_manager=None)`` → that
        model (what :func:`~qk_lstm_qiskit.evaluation.backend.evaluate_on_backend` and the kernel-estimator run
        :func:`~qk_lstm_qiskit.evaluation.estimated.evaluate_estimated` take)."""
        raise ValueError(f"evaluate: expected a task that runs on a sampler backend, got task {self.name!r}")

    def estimate_checkpoint(self, checkpoint: Path, request: EvaluationRequest, *, training: bool = False,
                            epochs: int = 1) -> Any:
        """The :class:`~qk_lstm_qiskit.hardware.cost.CostEstimate` of evaluating (or training on) the request's
        data with the checkpoint's model on ``request.backend``; nothing is submitted."""
        raise ValueError(f"estimate: expected a tagging checkpoint (no cost estimate for task {self.name!r} yet), "
                         f"got {str(checkpoint)!r}")


def backend_report(metrics: Mapping[str, Any], task_lines: Sequence[str]) -> list[str]:
    """What ``qk-lstm evaluate`` prints after a run on a sampler backend
    (:func:`~qk_lstm_qiskit.evaluation.backend.evaluate_on_backend`): the estimate, the task's ``task_lines``,
    the kernel differences, the readout calibration and the jobs (the estimate only after a dry run)."""
    lines = [metrics["estimate_summary"]]
    sample = metrics.get("sample")
    if sample:
        lines.append(f"budget: a random sample of {sample['examples']} of {sample['population']} examples (seed "
                     f"{sample['seed']}) fits max_qpu_seconds")
    if metrics.get("dry_run"):
        return lines + ["dry run: nothing submitted"]
    lines += task_lines
    if sample:
        intervals = metrics["interval_95"] if isinstance(metrics["interval_95"], dict) else {"": metrics["interval_95"]}
        for name, (low, high) in intervals.items():
            exact = metrics["exact_full"][name] if name else metrics["exact_full"]
            inside = metrics["exact_full_inside_interval"][name] if name else metrics["exact_full_inside_interval"]
            lines.append(f"{name + ': ' if name else ''}95% interval of the sample's metric [{low:.4g}, {high:.4g}]; "
                         f"exact model on every example {exact:.4g} ({'inside' if inside else 'outside'})")
    lines += [f"mean |k_backend - k_exact|: {metrics['kernel_mean_abs_diff']:.4f} (max {metrics['kernel_max_abs_diff']:.4f}, "
              f"signed mean {metrics['kernel_mean_diff']:+.4f}, {metrics['kernel_values']} kernel values; "
              f"fidelity {metrics['fidelity']}, mitigation {metrics['mitigation']})"]
    if metrics.get("depolarizing", "none") != "none":
        lines.append(f"depolarising correction {metrics['depolarizing']}: {metrics['echoes']} echo circuit(s) per job, "
                     f"mean rate λ̂ = {metrics['depolarizing_rate']:.4f}")
    if metrics["calibration"]:
        cal = metrics["calibration"]
        lines.append(f"readout calibration of qubits {cal['qubits']} ({cal['date']}): "
                     + ("measured now" if cal["paid"] else "reused from the cache"))
    return lines + [f"jobs: {metrics['jobs_submitted']} submitted, {metrics['jobs_resumed']} fetched again; "
                    f"outputs: {metrics['out_dir']}/metrics.json, {metrics['journal']}"]
