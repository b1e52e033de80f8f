"""Kernel-target alignment and its training over a kernel's circuit weights."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from _assertions import raises_one_line
from qk_lstm_qiskit.circuits.feature_map import FeatureMap
from qk_lstm_qiskit.circuits.library import build_feature_map
from qk_lstm_qiskit.errors import ProductKernelWarning
from qk_lstm_qiskit.kernels.alignment import kernel_target_alignment, target_matrix, train_alignment
from qk_lstm_qiskit.kernels.kernel import QuantumKernel


def kernel_of(feature_map) -> QuantumKernel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ProductKernelWarning)
        return QuantumKernel(feature_map)

def test_alignment_formula_and_training_raises_it():
    labels = torch.tensor([0, 1, 1, 0])
    target = target_matrix(labels)
    assert target.tolist() == [[1, -1, -1, 1], [-1, 1, 1, -1], [-1, 1, 1, -1], [1, -1, -1, 1]]
    assert kernel_target_alignment(target, labels).item() == pytest.approx(1.0)
    gram = torch.eye(4, dtype=torch.float64)
    assert kernel_target_alignment(gram, labels).item() == pytest.approx(4 / (2 * 4))
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(8, 2, dtype=torch.float64, generator=gen) * 2 * math.pi
    y = torch.tensor([0, 1] * 4)
    kernel = kernel_of(build_feature_map("zz", 2, reps=2, trainable_layers=1, dtype=torch.float64))
    history = train_alignment(kernel, x, y, steps=15, lr=0.1)
    assert len(history) == 16 and history[-1] > history[0] + 0.02
    assert history[-1] == pytest.approx(kernel_target_alignment(kernel(x, x), y).item())
    with raises_one_line(ValueError, "expected a kernel with trainable weights"):
        train_alignment(kernel_of(FeatureMap(2)), x, y)
    with raises_one_line(ValueError, r"expected x of shape \(8, d\), got \(7, 2\)"):
        train_alignment(kernel, x[:7], y)
