"""Classification metrics against a hand computation and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qk_lstm_qiskit.evaluation.classification import classification_metrics


def test_macro_f1_by_hand():
    gold = torch.tensor([0, 0, 1, 1, 2])
    predicted = torch.tensor([0, 1, 1, 1, 0])
    metrics = classification_metrics(predicted, gold, ["a", "b", "c"])
    # a: P 1/2 R 1/2 F1 1/2; b: P 2/3 R 1 F1 4/5; c: P 0 R 0 F1 0
    assert metrics["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert metrics["accuracy"] == pytest.approx(3 / 5)
    assert metrics["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]


def test_macro_f1_against_scikit_learn():
    metrics_module = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    for _ in range(20):
        gold, predicted = rng.integers(0, 5, 30), rng.integers(0, 4, 30)  # class 4 never predicted
        ours = classification_metrics(torch.as_tensor(predicted), torch.as_tensor(gold), list("abcdefg"))
        assert ours["macro_f1"] == pytest.approx(metrics_module.f1_score(gold, predicted, average="macro", zero_division=0))
        assert ours["accuracy"] == pytest.approx(metrics_module.accuracy_score(gold, predicted))


def test_bad_inputs_one_line_each():
    with pytest.raises(ValueError, match=r"expected two equal non-empty shapes \(N,\), got \(2,\) and \(3,\)"):
        classification_metrics(torch.tensor([0, 1]), torch.tensor([0, 1, 1]), ["a", "b"])
    with pytest.raises(ValueError, match=r"expected predictions in \[0, 2\)"):
        classification_metrics(torch.tensor([0, 2]), torch.tensor([0, 1]), ["a", "b"])
