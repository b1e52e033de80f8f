"""The estimator fidelities: registered, exact on exact probabilities, padded rows never sent."""

from __future__ import annotations

import numpy as np
import torch
from qiskit_machine_learning.primitives import QMLSampler

from qk_lstm_qiskit.circuits.feature_map import FeatureMap
from qk_lstm_qiskit.kernels.active_rows import ActiveRowsFidelity
from qk_lstm_qiskit.kernels.fidelity import make_fidelity
from qk_lstm_qiskit.kernels.shadows import ShadowFidelity
from qk_lstm_qiskit.kernels.tomography import TomographyFidelity

from _samplers import CountingSampler

GEN = torch.Generator().manual_seed(3)
X = torch.randn(4, 4, dtype=torch.float64, generator=GEN)
Y = torch.randn(6, 4, dtype=torch.float64, generator=GEN)


def _exact(fm):
    states = lambda v: TomographyFidelity(fm).estimator.executor.simulate(fm.angles(v)).numpy()  # noqa: E731
    return np.abs(states(X).conj() @ states(Y).T) ** 2


def test_registered_names_build_the_estimators():
    fm = FeatureMap(4)
    assert isinstance(make_fidelity("tomography", fm, shots=8), TomographyFidelity)
    assert isinstance(make_fidelity("shadows", fm, shots=8, settings=2), ShadowFidelity)


def test_tomography_fidelity_on_exact_probabilities_is_the_exact_kernel():
    fm = FeatureMap(4)
    fidelity = TomographyFidelity(fm, shots=10, sampler=QMLSampler(shots=None))
    np.testing.assert_allclose(fidelity(fm.angles(X), fm.angles(Y)).numpy(), _exact(fm), atol=1e-6)
    assert fidelity.is_product and len(fidelity.circuits()) == 1


def test_active_rows_send_only_running_sequences_and_zero_the_rest():
    fm = FeatureMap(4)
    counting = CountingSampler(QMLSampler(shots=None))
    wrapper = ActiveRowsFidelity(TomographyFidelity(fm, shots=10, sampler=counting), fm)
    reference = wrapper.prepare(fm.angles(Y))
    lengths = torch.tensor([2, 1, 3, 1])
    outputs = []
    with wrapper.schedule(lengths):
        for _ in range(3):  # three time steps
            outputs.append(wrapper.evaluate(fm.angles(X), reference).numpy())
    assert [call[0][1][0] for call in counting.calls] == [4 * 3, 2 * 3, 1 * 3]  # rows × 3 settings per step
    exact = _exact(fm)
    for t, out in enumerate(outputs):
        active = (lengths > t).numpy()
        np.testing.assert_allclose(out[active], exact[active], atol=1e-6)
        assert np.all(out[~active] == 0)
    assert (wrapper.rows_sent, wrapper.rows_skipped) == (7, 5)
