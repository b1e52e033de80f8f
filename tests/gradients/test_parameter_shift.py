"""The batched parameter-shift gradient equals qiskit-machine-learning's on exact probabilities (qk_lstm_qiskit.gradients)."""

from __future__ import annotations

import numpy as np
from qiskit.circuit import Parameter, QuantumCircuit
from qiskit.primitives import BitArray, DataBin, SamplerPubResult
from qiskit_machine_learning.gradients import ParamShiftSamplerGradient
from qiskit_machine_learning.primitives import QMLSampler

from qk_lstm_qiskit.gradients.parameter_shift import BatchedParamShiftSamplerGradient, probabilities

from _samplers import CountingSampler


def exact_sampler() -> QMLSampler:
    return QMLSampler(shots=None)


def test_batched_gradient_equals_stock_param_shift_on_shared_and_scaled_angles():
    a, b = Parameter("a"), Parameter("b")
    circuit = QuantumCircuit(2)
    circuit.h([0, 1])
    circuit.rx(2 * a, 0)  # scaled angle
    circuit.ry(a + b, 1)  # two parameters in one gate
    circuit.cx(0, 1)
    circuit.rz(b - 0.3, 1)  # shifted angle, b used twice
    circuit.ry(a, 0)
    circuit.measure_all()
    values = np.random.default_rng(0).uniform(-2, 2, (3, 2))
    counting = CountingSampler(exact_sampler())
    got = BatchedParamShiftSamplerGradient(counting).run([circuit] * 3, values).result().gradients
    want = ParamShiftSamplerGradient(exact_sampler()).run([circuit] * 3, values).result().gradients
    assert [len(c) for c in counting.calls] == [1]  # one job, one PUB: 3 samples × ± × 4 gate angles
    assert counting.calls[0][0][1] == (3 * 2 * 4, 4)
    for sample_got, sample_want in zip(got, want):
        for dist_got, dist_want in zip(sample_got, sample_want):
            dense = np.zeros((2, 4))
            for row, dist in enumerate((dist_got, dist_want)):
                for key, value in dist.items():
                    dense[row, key] += value
            assert np.abs(dense[0] - dense[1]).max() < 1e-9
            assert np.abs(dense[1]).max() > 1e-3


def test_probabilities_from_multibyte_bit_arrays_match_qiskit_counts():
    rng = np.random.default_rng(1)
    rows, shots, num_bits = 3, 50, 11  # two bytes per shot
    outcomes = rng.integers(0, 2**num_bits, (rows, shots))
    packed = np.stack([outcomes >> 8, outcomes & 0xFF], axis=-1).astype(np.uint8)  # big-endian bytes
    bits = BitArray(packed, num_bits)
    probs = probabilities(SamplerPubResult(DataBin(meas=bits, shape=(rows,))), rows)
    for row in range(rows):
        counts = bits[row].get_int_counts()
        expected = np.zeros(2**num_bits)
        expected[list(counts)] = np.array(list(counts.values())) / shots
        assert np.array_equal(probs[row], expected)
