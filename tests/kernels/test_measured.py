"""Tomography and shadow kernels: sampler path against exact probabilities, estimates against the exact kernel."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from qiskit.transpiler import generate_preset_pass_manager
from qiskit_machine_learning.primitives import QMLSampler

from qk_lstm_qiskit.circuits.feature_map import FeatureMap
from qk_lstm_qiskit.estimators.bases import measured_distributions, random_settings
from qk_lstm_qiskit.estimators.shadows import shadow_variance
from qk_lstm_qiskit.estimators.tomography import kernel_variance
from qk_lstm_qiskit.kernels.kernel import QuantumKernel
from qk_lstm_qiskit.kernels.measured import ShadowKernel, TomographyKernel

from _moments import assert_mean, assert_variance

GEN = torch.Generator().manual_seed(0)
X = torch.randn(3, 4, dtype=torch.float64, generator=GEN)
Y = torch.randn(5, 4, dtype=torch.float64, generator=GEN)


def _exact(fm):
    return QuantumKernel(fm, warn=False)(X, Y).numpy()


def test_sampler_frequencies_equal_the_exact_distributions_after_transpiling():
    fm = FeatureMap(4, reps=2)
    kernel = ShadowKernel(fm, shots=10)
    pm = generate_preset_pass_manager(optimization_level=2, basis_gates=["rz", "sx", "x", "cx"], seed_transpiler=0)
    source = kernel.sampler_source(QMLSampler(shots=None), pass_manager=pm)
    settings = random_settings(4, 4, np.random.default_rng(0))
    ax = fm.angles(X).numpy()
    states = kernel.executor.simulate(torch.as_tensor(ax)).numpy()
    np.testing.assert_allclose(source.frequencies(ax, settings, 10), measured_distributions(states, settings), atol=1e-6)


def test_tomography_on_exact_probabilities_is_the_exact_kernel():
    fm = FeatureMap(4, reps=1)
    kernel = TomographyKernel(fm, shots=10)
    kernel.source = kernel.sampler_source(QMLSampler(shots=None))
    got = kernel.evaluate(fm.angles(X), kernel.prepare(fm.angles(Y))).numpy()
    np.testing.assert_allclose(got, _exact(fm), atol=1e-6)


def test_tomography_refuses_an_entangling_map():
    with pytest.raises(ValueError, match="expected a product map"):
        TomographyKernel(FeatureMap(3, reps=2), shots=10)


def test_tomography_with_simulated_shots_and_readout_matches_its_formula():
    fm = FeatureMap(4, reps=1)
    a = np.array([[[0.95, 0.06], [0.05, 0.94]]] * 4)
    kernel = TomographyKernel(fm, shots=50)
    kernel.source = kernel.simulated_source(np.random.default_rng(0), a)
    ax, refs = fm.angles(X[:1]), kernel.prepare(fm.angles(Y))
    k = np.stack([kernel.evaluate(ax, refs).numpy() for _ in range(4000)])
    bloch = kernel.executor.product_bloch(ax.double()).permute(2, 0, 1).numpy()
    assert_mean(k, _exact(fm)[:1])
    assert_variance(k, kernel_variance(bloch, refs, 50, a))


def test_shadows_with_simulated_shots_are_unbiased_with_the_formula_variance():
    fm = FeatureMap(3, reps=2)
    x, y = X[:1, :3], Y[:2, :3]
    kernel = ShadowKernel(fm, shots=4, settings=3, rng=np.random.default_rng(1))
    kernel.source = kernel.simulated_source(np.random.default_rng(2))
    refs = kernel.prepare(fm.angles(y))
    k = np.stack([kernel.evaluate(fm.angles(x), refs).numpy() for _ in range(6000)])
    states = kernel.executor.simulate(fm.angles(x).double()).numpy()
    assert_mean(k, QuantumKernel(fm, warn=False)(x, y).numpy())
    assert_variance(k, shadow_variance(states, refs, 4, num_settings=3))
