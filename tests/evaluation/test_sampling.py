"""Budgeted samples and the accuracy interval: coverage by simulation, monotone samples, edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from qk_lstm_qiskit.evaluation.sampling import (
    accuracy_interval, proportion_interval, rmse_interval, rmse_intervals_by_target, sample_for_budget,
)


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


# proportion (classification) and RMSE (forecasting) intervals


def test_proportion_is_the_accuracy_interval_with_one_token_per_sequence():
    correct = np.random.default_rng(1).binomial(1, 0.7, size=40)
    ci = proportion_interval(correct, 300)
    assert ci == accuracy_interval(correct, np.ones(40, dtype=int), 300)
    p = correct.mean()
    se = np.sqrt((1 - 40 / 300) * p * (1 - p) / (40 - 1))  # proportion without replacement (Cochran 3.4)
    assert ci.accuracy == pytest.approx(p, abs=1e-15) and ci.standard_error == pytest.approx(se, rel=1e-12)
    assert (ci.low, ci.high) == pytest.approx((p - 1.959964 * se, p + 1.959964 * se), abs=1e-6)
    assert (ci.sentences, ci.tokens, ci.population) == (40, 40, 300)


def test_rmse_estimates_equal_direct_numpy_per_target():
    n, population = 50, 200
    squared = np.random.default_rng(2).standard_normal((n, 3)) ** 2 * np.array([1.0, 4.0, 0.01])
    intervals = rmse_intervals_by_target(squared, population)
    assert len(intervals) == 3
    quantile = stats.t.ppf(0.975, n - 1)
    for target, ci in enumerate(intervals):
        e2 = squared[:, target]
        rmse = np.sqrt(np.mean(e2))
        mse_se = np.sqrt((1 - n / population) * np.var(e2, ddof=1) / n)
        mse_low, mse_high = np.mean(e2) * np.exp(-quantile * mse_se / np.mean(e2)), np.mean(e2) * np.exp(
            quantile * mse_se / np.mean(e2))
        assert ci.estimate == pytest.approx(rmse, rel=1e-12)
        assert ci.standard_error == pytest.approx(mse_se / (2 * rmse), rel=1e-12)
        assert (ci.low, ci.high) == pytest.approx((np.sqrt(mse_low), np.sqrt(mse_high)), rel=1e-10)
        assert (ci.samples, ci.population) == (n, population)
        assert ci == rmse_interval(e2, population)
        assert ci.covers(rmse) and not ci.covers(ci.high * (1 + 1e-9))


def _coverages(interval, population_values, truth, n, narrow, trials=2000):
    """Fractions of ``trials`` seeded samples of size ``n`` whose interval, and its narrowed variant, cover ``truth``."""
    rng = np.random.default_rng(n)
    covered = narrowed = 0
    for _ in range(trials):
        ci = interval(population_values[rng.choice(population_values.size, size=n, replace=False)])
        covered += ci.covers(truth)
        narrowed += narrow(ci, truth)
    return covered / trials, narrowed / trials


@pytest.mark.parametrize("n", [30, 100])
def test_rmse_interval_covers_the_population_rmse_and_a_half_width_one_does_not(n):
    population = 400
    squared = np.random.default_rng(7).standard_normal(population) ** 2  # squared Gaussian errors: skew 2.8
    truth = np.sqrt(squared.mean())

    def half_width(ci, value):  # the same interval with SE x 0.5 (half the log-scale half-width)
        spread = np.log(ci.high / ci.estimate) / 2
        return ci.estimate * np.exp(-spread) <= value <= ci.estimate * np.exp(spread)

    coverage, narrow = _coverages(lambda e2: rmse_interval(e2, population), squared, truth, n, half_width)
    assert 0.90 <= coverage <= 0.99, coverage
    assert narrow < 0.90, narrow


@pytest.mark.parametrize("n", [30, 100])
def test_proportion_interval_covers_the_population_accuracy_and_a_half_width_one_does_not(n):
    population = 300
    correct = np.random.default_rng(8).binomial(1, 0.7, size=population)
    truth = correct.mean()

    def half_width(ci, value):
        return abs(ci.accuracy - value) <= 0.5 * 1.959964 * ci.standard_error

    coverage, narrow = _coverages(lambda c: proportion_interval(c, population), correct, truth, n, half_width)
    assert 0.90 <= coverage <= 0.99, coverage
    assert narrow < 0.90, narrow


def test_whole_population_rmse_and_proportion_have_no_width_and_one_unit_no_standard_error():
    squared = np.random.default_rng(3).exponential(size=(20, 2))
    for ci in [rmse_interval(squared[:, 0], 20), *rmse_intervals_by_target(squared, 20), proportion_interval([1, 0, 1], 3)]:
        assert ci.low == ci.estimate == ci.high and ci.standard_error == 0.0
    single = rmse_interval([4.0], 10)
    assert single.estimate == 2.0 and np.isnan(single.standard_error) and (single.low, single.high) == (0.0, np.inf)
    one = proportion_interval([1], 10)
    assert np.isnan(one.standard_error) and (one.low, one.high) == (0.0, 1.0)


@pytest.mark.parametrize(("call", "message"), [
    (lambda: rmse_interval(np.ones((3, 2)), 10), r"rmse_interval: expected squared_errors of shape \(n,\) with n >= 1, "
                                                 r"got shape \(3, 2\)"),
    (lambda: rmse_interval([], 10), r"expected squared_errors of shape \(n,\) with n >= 1, got shape \(0,\)"),
    (lambda: rmse_interval(np.ones(5), 4), r"expected len\(squared_errors\) <= population=4, got 5"),
    (lambda: rmse_interval([1.0, -0.5], 10), r"expected finite squared_errors >= 0, got -0.5"),
    (lambda: rmse_interval([1.0, np.nan], 10), r"expected finite squared_errors >= 0, got nan"),
    (lambda: rmse_interval([1.0], 0), r"expected population >= 1, got 0"),
    (lambda: rmse_intervals_by_target(np.ones(3), 10), r"rmse_intervals_by_target: expected squared_errors of shape "
                                                       r"\(n, T\) with n >= 1, got shape \(3,\)"),
    (lambda: rmse_intervals_by_target(np.ones((3, 0)), 10), r"got shape \(3, 0\)"),
    (lambda: rmse_intervals_by_target(np.ones((11, 2)), 10), r"expected len\(squared_errors\) <= population=10, got 11"),
    (lambda: proportion_interval([0, 1, 2], 10), r"proportion_interval: expected correct in \{0, 1\}, got 2.0"),
    (lambda: proportion_interval([], 10), r"expected correct of shape \(n,\) with n >= 1, got shape \(0,\)"),
    (lambda: accuracy_interval([1, 2, 3], [3, 3, 3], 2), r"expected len\(correct\) <= population=2, got 3"),
    (lambda: accuracy_interval([0], [0], 5), r"tokens.sum\(\) > 0, got shapes \(1,\) and \(1,\), 0 tokens"),
])
def test_bad_interval_input_is_a_one_line_value_error(call, message):
    with pytest.raises(ValueError, match=message) as info:
        call()
    assert "\n" not in str(info.value)
