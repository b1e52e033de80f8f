"""The Pauli-basis measurement circuit and the constant tail: against Qiskit's Statevector."""

from __future__ import annotations

import numpy as np
import torch
from qiskit.quantum_info import Statevector

from qk_lstm_qiskit.circuits.feature_map import FeatureMap
from qk_lstm_qiskit.circuits.measurement import basis_measurement_circuit, is_product_circuit, without_constant_tail
from qk_lstm_qiskit.estimators.bases import basis_angles, measured_distributions, random_settings


def _state(circuit, parameters, values):
    return Statevector(circuit.assign_parameters(dict(zip(parameters, values)))).data


def test_dropping_the_constant_tail_keeps_every_fidelity():
    for reps, product in ((1, True), (2, False)):
        fm = FeatureMap(4, reps=reps)
        stripped = without_constant_tail(fm.circuit)
        assert is_product_circuit(stripped) is product
        assert not is_product_circuit(fm.circuit)
        assert stripped.count_ops().get("cx", 0) == 3 * (reps - 1)
        a, b = (fm.angles(torch.randn(1, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(s)))[0].numpy()
                for s in (0, 1))
        full = abs(np.vdot(_state(fm.circuit, fm.parameters_order, a), _state(fm.circuit, fm.parameters_order, b))) ** 2
        short = abs(np.vdot(_state(stripped, fm.parameters_order, a), _state(stripped, fm.parameters_order, b))) ** 2
        assert np.isclose(full, short, atol=1e-12)


def test_bound_circuit_measures_the_feature_state_in_the_chosen_bases():
    fm = FeatureMap(3, reps=2)
    circuit, theta, basis = basis_measurement_circuit(fm.circuit, fm.parameters_order)
    assert circuit.num_parameters == fm.num_parameters + 6
    angles = fm.angles(torch.tensor([[0.3, -1.2, 0.8]], dtype=torch.float64))[0].numpy()
    settings = random_settings(5, 3, np.random.default_rng(0))
    expected = measured_distributions(_state(fm.circuit, fm.parameters_order, angles)[None], settings)[0]  # (5, 8)
    unmeasured = circuit.remove_final_measurements(inplace=False)
    for k, row in enumerate(basis_angles(settings)):
        bound = unmeasured.assign_parameters({**dict(zip(theta, angles)), **dict(zip(basis, row))})
        np.testing.assert_allclose(Statevector(bound).probabilities(), expected[k], atol=1e-12)
