"""What a task sends to a sampler backend: :class:`BackendWork`, and the budget's sample of it.

A task describes its evaluation on a backend once (``Task.backend_work``): the examples' lengths, their
batches, how a model runs a batch, how outputs are scored. The engines
(:func:`~qk_lstm_qiskit.evaluation.backend.evaluate_on_backend`, the kernel-estimator run
:func:`~qk_lstm_qiskit.evaluation.estimated.evaluate_estimated`) and the shot planner run it;
:func:`fit_budget` shrinks it to the largest seeded random sample a QPU budget pays for, and
:func:`interval_metrics` is what such a sample's score adds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from .options import Budget
from .sampling import MetricInterval, sample_for_budget

__all__ = ["BackendWork", "Loader", "fit_budget", "interval_metrics"]

logger = logging.getLogger(__name__)

Loader = Callable[..., nn.Module]  #: ``load(sampler=None, pass_manager=None) → model`` of a checkpoint, in eval mode


@dataclass(frozen=True)
class BackendWork:
    """What a task sends to a sampler backend and how it scores what comes back.

    Attributes:
        batches: the examples in batches (sorted by length, so they pad little); batch ``i`` is journal stream
            ``batch-i`` and one job per time step.
        lengths: time steps of every example, in the task's order of examples (the estimate sorts them and
            batches them ``batch_size`` at a time, as :attr:`batches` holds them).
        batch_size: examples per batch.
        run: ``(model, batches) → outputs`` of a model over some batches (eval mode, no gradient).
        combine: the outputs of consecutive batches → one (``TaggedTokens.concatenate``, ``torch.cat``).
        score: ``(backend outputs, exact outputs, out_dir, title, exact_full) → metrics`` of the task (it may
            draw into ``out_dir``); for a sample (:attr:`select`) ``exact_full`` is the exact model's outputs on
            every example (``None`` otherwise) and the metrics add the sample's 95 % interval.
        source: what is evaluated (``metrics.json``'s ``data``).
        batch_lengths: a batch → its examples' time steps ``(N_b,)`` (padded steps send no circuit when the
            kernels skip them: :class:`~qk_lstm_qiskit.kernels.active_rows.ActiveRowsFidelity`).
        metric: the task's headline metric of a run's outputs (``run``'s return value): tagging token accuracy,
            classification sequence accuracy, forecasting test RMSE (series units; for several targets the mean over
            targets of RMSE / persistence RMSE). The shot planner scores estimators with it.
        metric_name: what :attr:`metric` is (``"accuracy"``, ``"test RMSE"``, ``"relative test RMSE"``).
        higher_is_better: ``True`` for accuracies, ``False`` for errors.
        select: sorted indices into :attr:`lengths` → the work on that sample of the examples (``None``: the
            task cannot sample; a budget too small for everything is then refused).
    """

    batches: Sequence[Any]
    lengths: Sequence[int]
    batch_size: int
    run: Callable[[nn.Module, Sequence[Any]], Any]
    combine: Callable[[list[Any]], Any]
    score: Callable[[Any, Any, Path, str, Any], dict[str, Any]]
    source: str
    batch_lengths: Callable[[Any], torch.Tensor]
    metric: Callable[[Any], float]
    metric_name: str
    higher_is_better: bool
    select: Callable[[Sequence[int]], "BackendWork"] | None = None

    @property
    def population(self) -> int:
        """The number of examples."""
        return len(self.lengths)


def fit_budget(work: BackendWork, estimate, cost: Callable[[Sequence[int]], Any],
               budget: Budget) -> tuple[BackendWork, Any, list[int] | None]:
    """``(work, its estimate, None)`` when the ``estimate`` (anything with ``qpu_seconds``) fits
    ``budget.max_qpu_seconds`` (or there is no budget, or no QPU time to count); else, if the task can sample,
    the largest seeded random sample of its examples that fits (:func:`~qk_lstm_qiskit.evaluation.sampling.sample_for_budget`,
    seed ``budget.sample_seed``), its estimate and the chosen indices. When not even one example fits, ``work``
    is returned unchanged for the caller to refuse. ``cost``: example lengths → estimate."""
    limit = budget.max_qpu_seconds
    if limit is None or estimate.qpu_seconds is None or estimate.qpu_seconds <= limit or work.select is None:
        return work, estimate, None
    lengths = work.lengths
    chosen = sample_for_budget(work.population, lambda idx: cost([lengths[i] for i in idx]).qpu_seconds or 0.0, limit,
                               seed=budget.sample_seed)
    if not chosen:
        return work, estimate, None
    sample = work.select(chosen)
    logger.info("evaluate: %d of %d examples fit max_qpu_seconds=%g (sample seed %d)", sample.population,
                work.population, limit, budget.sample_seed)
    return sample, cost(sample.lengths), chosen


def interval_metrics(interval: MetricInterval, exact_full: float) -> dict[str, Any]:
    """What a sampled evaluation adds to its metric: the 95 % interval, its standard error and the exact model's
    value on every example (``exact_full``), inside the interval or not."""
    return {"interval_95": [interval.low, interval.high], "standard_error": interval.standard_error,
            "exact_full": exact_full, "exact_full_inside_interval": interval.covers(exact_full)}
