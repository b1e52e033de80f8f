"""Budgeted evaluation: a seeded random sample of sentences sized to a QPU budget, accuracy with a 95 % interval.

Token accuracy over a sample of ``n`` of ``N`` sentences (sentence ``i``: ``c_i`` correct of ``t_i``
tokens) is a ratio estimator, ``â = Σc_i / Σt_i``; sentences are the sampling units, so its standard
error is the linearised one with the finite-population correction,

.. math:: \\mathrm{SE}(\\hat a) = \\frac{1}{\\bar t}\\sqrt{\\Big(1 - \\frac nN\\Big)\\frac{1}{n(n-1)}\\sum_i (c_i - \\hat a\\, t_i)^2},

and the interval is ``â ± 1.96 SE`` (0 width when the whole set is evaluated).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..validation import check_int

__all__ = ["AccuracyInterval", "accuracy_interval", "sample_for_budget"]

Z95 = 1.959963984540054


@dataclass(frozen=True)
class AccuracyInterval:
    """``accuracy`` of ``sentences`` (of ``population``) with its standard error and 95 % interval ``[low, high]``."""

    accuracy: float
    standard_error: float
    low: float
    high: float
    sentences: int
    population: int
    tokens: int


def accuracy_interval(correct: Sequence[int], tokens: Sequence[int], population: int) -> AccuracyInterval:
    """:class:`AccuracyInterval` of per-sentence ``correct`` and ``tokens`` counts sampled from ``population`` sentences.

    Raises:
        ValueError: mismatched lengths, no token, or more sentences than the population.
    """
    c, t = np.asarray(correct, dtype=float), np.asarray(tokens, dtype=float)
    n = c.size
    if c.shape != t.shape or n == 0 or t.sum() <= 0:
        raise ValueError(f"accuracy_interval: expected equal, non-empty correct and tokens, got {c.shape} and {t.shape}")
    if n > population:
        raise ValueError(f"accuracy_interval: expected at most population={population} sentences, got {n}")
    accuracy = float(c.sum() / t.sum())
    if n == population or n == 1:
        se = 0.0 if n == population else math.nan
    else:
        residual = c - accuracy * t
        se = float(math.sqrt((1 - n / population) * np.sum(residual**2) / (n * (n - 1))) / t.mean())
    half = Z95 * se
    return AccuracyInterval(accuracy, se, max(0.0, accuracy - half), min(1.0, accuracy + half), n, population,
                            int(t.sum()))


def sample_for_budget(count: int, cost: Callable[[Sequence[int]], float], budget: float, *, seed: int = 0) -> list[int]:
    """The largest seeded random sample of ``range(count)`` whose ``cost(indices)`` fits ``budget``
    (all of them in order when they fit; ``[]`` when not even one does).

    ``cost`` must not decrease as sentences are added (true of QPU time); found by bisection over the
    prefixes of one seeded permutation, so a larger budget's sample contains a smaller one's.
    """
    check_int("sample_for_budget", "count", count, 0)
    everything = list(range(count))
    if cost(everything) <= budget:
        return everything
    order = [int(i) for i in np.random.default_rng(seed).permutation(count)]
    low, high = 0, count  # cost(order[:low]) fits, cost(order[:high]) does not
    while high - low > 1:
        mid = (low + high) // 2
        if cost(order[:mid]) <= budget:
            low = mid
        else:
            high = mid
    return sorted(order[:low])
