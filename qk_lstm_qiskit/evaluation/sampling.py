"""Budgeted evaluation: a seeded random sample sized to a QPU budget, each task's metric with a 95 % interval.

The sampled units (sentences, sequences, forecast windows) are a simple random sample of ``n`` of the
evaluation set's ``N``, so every standard error carries the finite-population correction ``1 - n/N``
(zero width when the whole set is evaluated; for ``n = 1`` of ``N > 1``, where no spread can be estimated,
a ``nan`` standard error and the uninformative interval: ``[0, 1]`` for accuracy, ``[0, ∞)`` for RMSE).

**Token accuracy** (tagging) over sentences (sentence ``i``: ``c_i`` correct of ``t_i`` tokens) is a
ratio estimator, ``â = Σc_i / Σt_i``; sentences are the sampling units, so its standard error is the
linearised one,

.. math:: \\mathrm{SE}(\\hat a) = \\frac{1}{\\bar t}\\sqrt{\\Big(1 - \\frac nN\\Big)\\frac{1}{n(n-1)}\\sum_i (c_i - \\hat a\\, t_i)^2},

and the interval is ``â ± 1.96 SE``, clipped to ``[0, 1]``.

**Sequence accuracy** (classification, ``c_i ∈ {0, 1}``) is the case ``t_i = 1``: then ``t̄ = 1`` and
``Σ(c_i - p̂)² = n p̂(1 - p̂)``, so the formula above is the textbook proportion under sampling
without replacement (:func:`proportion_interval`),

.. math:: \\mathrm{SE}(\\hat p) = \\sqrt{\\Big(1 - \\frac nN\\Big)\\frac{\\hat p(1 - \\hat p)}{n - 1}}.

**RMSE** (forecasting) over windows with squared errors ``e_i²`` (a window's mean over its horizon
steps): the mean squared error ``m̂ = (1/n) Σ e_i²`` and the RMSE ``r̂ = √m̂`` have

.. math:: \\mathrm{SE}(\\hat m) = \\sqrt{\\Big(1 - \\frac nN\\Big)\\frac{s^2}{n}}, \\quad
   s^2 = \\frac{1}{n-1}\\sum_i (e_i^2 - \\hat m)^2, \\qquad
   \\mathrm{SE}(\\hat r) = \\frac{\\mathrm{SE}(\\hat m)}{2\\hat r} \\ \\text{(delta method)}.

Squared errors are right-skewed, and a sample that misses the large ones has both a small ``m̂`` and
a small ``SE``, so the symmetric ``[max(0, m̂ - 1.96 SE), m̂ + 1.96 SE]`` undercovers at small ``n``
(0.875–0.907 at ``n = 30`` of ``N = 400`` squared Gaussian errors). The MSE interval is therefore
symmetric on the log scale, with Student's quantile ``t = t_{n-1, 0.975}``,
``m̂ · exp(± t SE(m̂)/m̂)``, and the RMSE interval takes the square roots of its ends,

.. math:: \\hat r \\exp\\big(\\pm t\\, \\mathrm{SE}(\\hat r)/\\hat r\\big).

As ``√`` is increasing, the RMSE interval covers the population's RMSE exactly when the MSE interval
covers its MSE (0.91–0.96 at ``n ∈ {30, 100}`` for squared Gaussian errors; a population dominated
by a few outliers still undercovers when the sample misses them). Several targets: one interval per
target (:func:`rmse_intervals_by_target`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import numpy.typing as npt
from scipy.special import stdtrit

from ..validation import check_int

__all__ = [
    "AccuracyInterval", "MetricInterval", "accuracy_interval", "proportion_interval", "rmse_interval",
    "rmse_intervals_by_target", "sample_for_budget",
]

Z95 = 1.959963984540054


@dataclass(frozen=True)
class MetricInterval:
    """A metric's ``estimate`` over ``samples`` sampled units (of ``population``), its standard error
    and 95 % interval ``[low, high]``."""

    estimate: float
    standard_error: float
    low: float
    high: float
    samples: int
    population: int

    def covers(self, value: float) -> bool:
        """Whether ``value`` (e.g. the exact model's metric) lies in ``[low, high]``."""
        return self.low <= value <= self.high


@dataclass(frozen=True)
class AccuracyInterval(MetricInterval):
    """A :class:`MetricInterval` of an accuracy over ``tokens`` tokens of ``samples`` sentences."""

    tokens: int

    @property
    def accuracy(self) -> float:
        """The estimate: correct tokens over all sampled tokens."""
        return self.estimate

    @property
    def sentences(self) -> int:
        """The number of sampled sentences (``samples``)."""
        return self.samples


def _units(owner: str, name: str, values: npt.ArrayLike, ndim: int, population: int) -> np.ndarray:
    """``values`` as a finite, non-negative float array of ``ndim`` dims, 1 to ``population`` rows."""
    check_int(owner, "population", population, 1)
    array = np.asarray(values, dtype=float)
    shape = "(n,)" if ndim == 1 else "(n, T)"
    if array.ndim != ndim or array.size == 0:
        raise ValueError(f"{owner}: expected {name} of shape {shape} with n >= 1, got shape {array.shape}")
    if array.shape[0] > population:
        raise ValueError(f"{owner}: expected len({name}) <= population={population}, got {array.shape[0]}")
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        bad = float(array[~(np.isfinite(array) & (array >= 0))].flat[0])
        raise ValueError(f"{owner}: expected finite {name} >= 0, got {bad!r}")
    return array


def _correction(n: int, population: int) -> float:
    """The finite-population factor ``1 - n/N``, or ``nan`` for ``n = 1`` (no spread to estimate)."""
    return math.nan if n == 1 and population > 1 else 1 - n / population


def accuracy_interval(correct: npt.ArrayLike, tokens: npt.ArrayLike, population: int) -> AccuracyInterval:
    """:class:`AccuracyInterval` of per-sentence ``correct`` and ``tokens`` counts, both of shape ``(n,)``,
    sampled from ``population`` sentences (the ratio estimator of the module docstring).

    Raises:
        ValueError: mismatched shapes, no sentence or no token, negative counts, more sentences than the population.
    """
    c = _units("accuracy_interval", "correct", correct, 1, population)
    t = _units("accuracy_interval", "tokens", tokens, 1, population)
    if c.shape != t.shape or t.sum() <= 0:
        raise ValueError(f"accuracy_interval: expected equal, non-empty correct and tokens with tokens.sum() > 0, "
                         f"got shapes {c.shape} and {t.shape}, {t.sum():g} tokens")
    n, accuracy = c.size, float(c.sum() / t.sum())
    residual = c - accuracy * t
    spread = float(np.sum(residual**2) / (n * (n - 1))) if n > 1 else 0.0
    se = math.sqrt(_correction(n, population) * spread) / float(t.mean())
    low, high = (0.0, 1.0) if math.isnan(se) else (max(0.0, accuracy - Z95 * se), min(1.0, accuracy + Z95 * se))
    return AccuracyInterval(accuracy, se, low, high, n, population, int(t.sum()))


def proportion_interval(correct: npt.ArrayLike, population: int) -> AccuracyInterval:
    """Accuracy over sampled sequences, ``correct`` of shape ``(n,)`` with 0/1 entries, sampled from
    ``population`` sequences: :func:`accuracy_interval` with one token per sequence, i.e. the proportion
    ``p̂ ± 1.96 √((1 - n/N) p̂(1 - p̂)/(n - 1))``.

    Raises:
        ValueError: an entry other than 0 or 1, no sequence, more sequences than the population.
    """
    c = _units("proportion_interval", "correct", correct, 1, population)
    if np.any((c != 0) & (c != 1)):
        raise ValueError(f"proportion_interval: expected correct in {{0, 1}}, got {float(c[(c != 0) & (c != 1)][0])!r}")
    return accuracy_interval(c, np.ones_like(c), population)


def rmse_interval(squared_errors: npt.ArrayLike, population: int) -> MetricInterval:
    """RMSE over sampled windows, ``squared_errors`` of shape ``(n,)`` (one per window, sampled from
    ``population`` windows), with the square roots of the (log-scale) MSE interval's ends as its 95 %
    interval (a monotone transform: the coverage is the MSE interval's; maths in the module docstring).

    Raises:
        ValueError: not of shape ``(n,)``, empty, negative or non-finite entries, more windows than the population.
    """
    errors = _units("rmse_interval", "squared_errors", squared_errors, 1, population)
    return _rmse(errors, population)


def rmse_intervals_by_target(squared_errors: npt.ArrayLike, population: int) -> list[MetricInterval]:
    """One :func:`rmse_interval` per target: ``squared_errors`` of shape ``(n, T)`` gives ``T`` intervals,
    in the targets' order (for one interval over all targets pass ``squared_errors.mean(axis=1)``
    to :func:`rmse_interval`).

    Raises:
        ValueError: not of shape ``(n, T)``, empty, negative or non-finite entries, more windows than the population.
    """
    errors = _units("rmse_intervals_by_target", "squared_errors", squared_errors, 2, population)
    return [_rmse(errors[:, target], population) for target in range(errors.shape[1])]


def _rmse(errors: np.ndarray, population: int) -> MetricInterval:
    """The RMSE interval of checked squared errors ``(n,)``."""
    n, mse = errors.size, float(errors.mean())
    variance = float(errors.var(ddof=1)) if n > 1 else 0.0
    mse_se = math.sqrt(_correction(n, population) * variance / n)
    rmse = math.sqrt(mse)
    if math.isnan(mse_se):  # n = 1: nothing known about the spread
        return MetricInterval(rmse, math.nan, 0.0, math.inf, n, population)
    if mse_se == 0:  # the whole population, or every error equal
        return MetricInterval(rmse, 0.0, rmse, rmse, n, population)
    se = mse_se / (2 * rmse)
    spread = float(stdtrit(n - 1, 0.975)) * se / rmse  # half-width of log RMSE
    return MetricInterval(rmse, se, rmse * math.exp(-spread), rmse * math.exp(spread), n, population)


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
