"""QuantumKernel.to_qiskit(): a qiskit-machine-learning BaseKernel for QSVC, QSVR, PegasosQSVC, sklearn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from qiskit.circuit.library import zz_feature_map
from qiskit_machine_learning.algorithms import QSVC, QSVR, PegasosQSVC
from qiskit_machine_learning.datasets import ad_hoc_data
from qiskit_machine_learning.kernels import BaseKernel, FidelityStatevectorKernel
from qiskit_machine_learning.primitives import QMLSampler
from sklearn.svm import SVC

from _assertions import raises_one_line
from qk_lstm_qiskit.circuits.feature_map import FeatureMap
from qk_lstm_qiskit.circuits.library import build_feature_map
from qk_lstm_qiskit.kernels.kernel import QuantumKernel
from qk_lstm_qiskit.kernels.qiskit_ml import QiskitKernel, nearest_psd


@pytest.fixture(scope="module")
def ad_hoc():
    """qiskit-ml's ad_hoc_data: 20 training and 10 test points per class, 2 features."""
    from qiskit_machine_learning.utils import algorithm_globals

    algorithm_globals.random_seed = 12345
    return ad_hoc_data(training_size=20, test_size=10, n=2, gap=0.3, one_hot=False)


def test_gram_matrices_and_qsvc_accuracy_equal_fidelity_statevector_kernel(ad_hoc):
    x_train, y_train, x_test, y_test = ad_hoc
    circuit = zz_feature_map(2, reps=2)
    reference = FidelityStatevectorKernel(feature_map=circuit)
    ours = QuantumKernel(FeatureMap.from_circuit(circuit)).to_qiskit()
    assert isinstance(ours, BaseKernel) and ours.num_features == 2
    assert np.abs(ours.evaluate(x_train) - reference.evaluate(x_train)).max() <= 1e-6
    assert np.abs(ours.evaluate(x_test, x_train) - reference.evaluate(x_test, x_train)).max() <= 1e-6
    accuracies = [QSVC(quantum_kernel=k).fit(x_train, y_train).score(x_test, y_test) for k in (reference, ours)]
    assert accuracies[0] == accuracies[1] and accuracies[0] >= 0.9  # ZZ separates ad_hoc_data


def test_sklearn_precomputed_qsvr_and_pegasos_run_on_the_adapter(ad_hoc):
    x_train, y_train, x_test, y_test = ad_hoc
    kernel = QuantumKernel(FeatureMap.from_circuit(zz_feature_map(2, reps=2))).to_qiskit()
    svc = SVC(kernel="precomputed").fit(kernel.evaluate(x_train), y_train)
    qsvc = QSVC(quantum_kernel=kernel).fit(x_train, y_train)
    assert (svc.predict(kernel.evaluate(x_test, x_train)) == qsvc.predict(x_test)).all()
    qsvr = QSVR(quantum_kernel=kernel).fit(x_train, y_train.astype(float))
    assert qsvr.predict(x_test).shape == (len(x_test),)
    pegasos = PegasosQSVC(quantum_kernel=kernel, C=1000, num_steps=50, seed=0).fit(x_train, y_train)
    assert pegasos.score(x_train, y_train) > 0.6  # better than chance on its training set


def test_psd_projection_and_symmetry():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 5))
    sym = (a + a.T) / 2
    projected = nearest_psd(sym)
    assert np.linalg.eigvalsh(projected).min() >= -1e-12
    w, v = np.linalg.eigh(sym)
    assert np.allclose(projected, v @ np.diag(np.maximum(w, 0)) @ v.T)
    kernel = QuantumKernel(FeatureMap.from_circuit(zz_feature_map(2, reps=2))).to_qiskit()
    gram = kernel.evaluate(rng.normal(size=(6, 2)))
    assert np.allclose(gram, gram.T) and np.allclose(np.diag(gram), 1.0)


def test_adapter_uses_the_kernels_sampler_and_current_weights():
    fm = build_feature_map("zz", 2, reps=2, trainable_layers=1, dtype=torch.float64)
    with torch.no_grad():
        fm.weights.uniform_(-1, 1)
    x = np.random.default_rng(1).normal(size=(3, 2))
    exact = QuantumKernel(fm).to_qiskit(enforce_psd=False)
    sampled = QuantumKernel(fm, sampler=QMLSampler(shots=None)).to_qiskit(enforce_psd=False)
    assert np.abs(exact.evaluate(x) - sampled.evaluate(x)).max() <= 1e-6
    reference = FidelityStatevectorKernel(feature_map=exact.feature_map)  # the source with the weights bound
    assert exact.feature_map.num_parameters == 2
    assert np.abs(exact.evaluate(x) - reference.evaluate(x)).max() <= 1e-6


def test_bad_input_raises_one_line():
    kernel = QuantumKernel(FeatureMap.from_circuit(zz_feature_map(2, reps=2))).to_qiskit()
    with raises_one_line(ValueError, r"expected x_vec of shape \(N, 2\) or \(2,\), got \(4, 3\)"):
        kernel.evaluate(np.zeros((4, 3)))
    with raises_one_line(ValueError, "expected finite values in y_vec, got nan"):
        kernel.evaluate(np.zeros((1, 2)), np.array([[0.0, np.nan]]))
    with raises_one_line(TypeError, "expected kernel to be a QuantumKernel, got str"):
        QiskitKernel("zz")
    assert kernel.evaluate(np.zeros(2), np.zeros((3, 2))).shape == (1, 3)  # 1-D input is one point
