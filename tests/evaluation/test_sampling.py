"""Budgeted samples and the accuracy interval: coverage by simulation, monotone samples, edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from qk_lstm_qiskit.evaluation.sampling import accuracy_interval, sample_for_budget


def test_interval_covers_the_population_accuracy_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 40, size=600)
    skill = rng.beta(8, 2, size=600)  # sentences differ: clustered tokens
    correct = rng.binomial(tokens, skill)
    truth = correct.sum() / tokens.sum()
    trials, covered = 1000, 0
    for _ in range(trials):
        idx = rng.choice(600, size=80, replace=False)
        ci = accuracy_interval(correct[idx], tokens[idx], 600)
        covered += ci.low <= truth <= ci.high
    se = np.sqrt(0.95 * 0.05 / trials)
    assert abs(covered / trials - 0.95) < 5 * se


def test_whole_population_has_no_width():
    ci = accuracy_interval([3, 4], [4, 4], 2)
    assert (ci.accuracy, ci.low, ci.high, ci.standard_error) == (0.875, 0.875, 0.875, 0.0)


def test_sample_is_the_largest_prefix_that_fits_and_grows_with_the_budget():
    lengths = np.arange(1, 101)
    cost = lambda idx: float(sum(lengths[i] for i in idx))  # noqa: E731
    small, large = sample_for_budget(100, cost, 500.0, seed=3), sample_for_budget(100, cost, 2000.0, seed=3)
    assert cost(small) <= 500 and set(small) <= set(large)
    order = np.random.default_rng(3).permutation(100)
    assert cost(list(order[: len(small) + 1])) > 500  # one more would not fit
    assert sample_for_budget(100, cost, 1e9) == list(range(100))
    assert sample_for_budget(100, cost, 0.5) == []


def test_rejects_mismatched_counts():
    with pytest.raises(ValueError, match="expected equal, non-empty"):
        accuracy_interval([1, 2], [3], 10)
