"""Kernel diagnostics: concentration, geometric difference, model complexity, effective dimension."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch

from _assertions import raises_one_line
from qk_lstm_qiskit.circuits.feature_map import FeatureMap
from qk_lstm_qiskit.circuits.library import build_feature_map
from qk_lstm_qiskit.errors import ProductKernelWarning
from qk_lstm_qiskit.kernels.diagnostics import (
    concentration, diagnose, effective_dimension, geometric_difference, model_complexity, offdiagonal_stats,
    plot_diagnostics, rbf_gram,
)
from qk_lstm_qiskit.kernels.kernel import QuantumKernel


def kernel_of(feature_map) -> QuantumKernel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ProductKernelWarning)
        return QuantumKernel(feature_map)


def test_statistics_against_direct_formulas(rng):
    x = rng.normal(size=(6, 3))
    gram = rbf_gram(x)
    gamma = 1 / (3 * x.var())
    assert gram[1, 4] == pytest.approx(math.exp(-gamma * np.sum((x[1] - x[4]) ** 2)))
    mean, var = offdiagonal_stats(gram)
    off = [gram[i, j] for i in range(6) for j in range(6) if i != j]
    assert (mean, var) == pytest.approx((np.mean(off), np.var(off)))
    assert effective_dimension(np.eye(7)) == pytest.approx(7.0)
    assert effective_dimension(np.ones((7, 7))) == pytest.approx(1.0)
    labels = np.array([0, 1, 1, 0, 1, 0])
    y = np.where(labels == 0, 1.0, -1.0)
    scaled = gram * 6 / np.trace(gram)
    assert model_complexity(gram, labels, 1e-3) == pytest.approx(y @ np.linalg.solve(scaled + 1e-3 * np.eye(6), y))
    # a kernel against itself: g = sqrt(||K^½ (K + λ)^-1 K^½||) → 1 as λ → 0
    assert geometric_difference(gram, gram, 1e-9) == pytest.approx(1.0, abs=1e-5)
    assert geometric_difference(gram, np.eye(6), 1e-9) > 1.0


def test_concentration_decays_with_qubits_and_bandwidth_undoes_it():
    rows = concentration(lambda n: FeatureMap(n), qubits=(2, 4, 6), bandwidths=(1.0, 0.1), num_samples=12)
    by = {(r["num_qubits"], r["bandwidth"]): r for r in rows}
    assert by[2, 1.0]["mean"] > by[4, 1.0]["mean"] > by[6, 1.0]["mean"]
    assert all(by[n, 0.1]["mean"] > 0.8 for n in (2, 4, 6))  # small bandwidth: k ≈ 1
    assert all(r["product_kernel"] for r in rows)  # the paper's reps = 1 map


def test_diagnose_report_and_plot(tmp_path, rng):
    kernel = kernel_of(build_feature_map("zz", 3, reps=2, input_scaling=0.5))
    x = torch.tensor(rng.normal(size=(10, 3)), dtype=torch.float32)
    labels = [0, 1] * 5
    report = diagnose(kernel, x, labels, make_map=lambda n: build_feature_map("zz", n), qubits=(2, 3))
    assert report["product_kernel"] is False
    gram = kernel(x.double(), x.double()).detach().numpy()
    assert report["sample"]["offdiagonal_mean"] == pytest.approx(offdiagonal_stats(gram)[0], abs=1e-6)
    assert report["sample"]["geometric_difference_rbf"] == pytest.approx(
        geometric_difference(gram, rbf_gram(x.double().numpy())), rel=1e-5)
    assert {"model_complexity", "model_complexity_rbf"} <= set(report["sample"])
    assert [(r["num_qubits"], r["bandwidth"]) for r in report["concentration"]] == [(2, 1.0), (2, 0.1), (3, 1.0), (3, 0.1)]
    json.dumps(report)  # JSON-ready
    plot_diagnostics(report, tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 1000
    with raises_one_line(ValueError, r"expected x of shape \(N >= 2, 3\), got \(1, 3\)"):
        diagnose(kernel, x[:1])
    with raises_one_line(TypeError, "expected kernel to be a QuantumKernel, got PaperFeatureMap"):
        diagnose(FeatureMap(3), x)
    with raises_one_line(ValueError, r"expected a square \(N, N\) matrix with N >= 2"):
        offdiagonal_stats(np.ones((2, 3)))
