"""AerProbabilitySampler: bit layout against StatevectorSampler, counts against Statevector, seeding, errors."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
from qiskit.circuit import Parameter, ParameterVector
from qiskit.primitives import StatevectorSampler
from qiskit.quantum_info import Statevector

from _assertions import raises_one_line
from qk_lstm_qiskit.hardware.aer_sampler import AerProbabilitySampler
from qk_lstm_qiskit.hardware.backends import resolve_backend


def registers_circuit() -> QuantumCircuit:
    """10 qubits; RX(θ_q) with θ in {0, π} makes every outcome deterministic. Registers:
    ``a`` (2 bits, qubits 7 and 2), ``b`` (11 bits: two bytes, clbits 0, 3, 10 unmeasured),
    ``c`` (1 bit, qubit 0)."""
    q = QuantumRegister(10)
    a, b, c = ClassicalRegister(2, "a"), ClassicalRegister(11, "b"), ClassicalRegister(1, "c")
    circuit = QuantumCircuit(q, a, b, c)
    theta = ParameterVector("t", 10)
    for i in range(10):
        circuit.rx(theta[i], i)
    circuit.measure(7, a[0])
    circuit.measure(2, a[1])
    for clbit, qubit in zip((1, 2, 4, 5, 6, 7, 8, 9), (1, 3, 4, 5, 6, 8, 9, 2)):
        circuit.measure(qubit, b[clbit])
    circuit.measure(0, c[0])
    return circuit


def test_bits_land_in_the_same_registers_and_bytes_as_statevector_sampler(rng):
    circuit = registers_circuit()
    values = np.pi * rng.integers(0, 2, size=(2, 3, 10))  # six bindings of 0/π angles
    got = AerProbabilitySampler(default_shots=7, seed=1).run([(circuit, values)]).result()[0].data
    want = StatevectorSampler(default_shots=7, seed=1).run([(circuit, values)]).result()[0].data
    for name in ("a", "b", "c"):
        assert got[name].shape == want[name].shape == (2, 3)
        assert got[name].num_bits == want[name].num_bits and got[name].num_shots == 7
        np.testing.assert_array_equal(got[name].array, want[name].array, err_msg=name)
    assert len({got["b"].get_counts(i).popitem()[0] for i in np.ndindex(2, 3)}) > 1  # the bindings differ


@pytest.mark.shots
def test_counts_within_five_standard_errors_of_statevector_probabilities(rng):
    shots = 4000
    circuit = QuantumCircuit(3)
    theta = ParameterVector("t", 6)
    for i in range(3):
        circuit.ry(theta[i], i)
    circuit.cx(0, 1)
    circuit.cx(1, 2)
    for i in range(3):
        circuit.rx(theta[3 + i], i)
    partial = circuit.copy()
    partial.add_register(ClassicalRegister(2, "m"))
    partial.measure(2, 0)  # clbit 0 = qubit 2, clbit 1 = qubit 0
    partial.measure(0, 1)
    circuit.measure_all()
    values = rng.uniform(-np.pi, np.pi, size=(2, 2, 6))
    result = AerProbabilitySampler(default_shots=shots, seed=3).run([(circuit, values), (partial, values)]).result()
    for pub, (data, qargs) in enumerate(((result[0].data.meas, None), (result[1].data.m, [2, 0]))):
        for index in np.ndindex(2, 2):
            state = Statevector(circuit.remove_final_measurements(inplace=False).assign_parameters(values[index]))
            p = state.probabilities(qargs)  # index bit i = qargs[i] = clbit i
            counts = np.zeros_like(p)
            for key, count in data.get_counts(index).items():
                counts[int(key, 2)] = count
            sigma = np.sqrt(np.maximum(p * (1 - p), 1 / shots) / shots)
            z = np.abs(counts / shots - p) / sigma
            assert counts.sum() == shots
            assert z.max() < 5, f"pub {pub} binding {index}: {z.max():.1f} standard errors"


def test_shots_are_independent_draws_in_random_order():
    circuit = QuantumCircuit(1)
    circuit.h(0)
    circuit.measure_all()
    shots = 4001
    bits = AerProbabilitySampler(default_shots=shots, seed=5).run([circuit]).result()[0].data.meas.array[:, 0]
    changes = np.count_nonzero(np.diff(bits))  # i.i.d. fair coin: (n−1)/2 ± √(n−1)/2
    assert abs(changes - (shots - 1) / 2) < 5 * np.sqrt(shots - 1) / 2


def test_same_seed_and_content_give_the_same_shots_in_any_call_order():
    circuit = QuantumCircuit(2)
    theta = Parameter("t")
    circuit.ry(theta, 0)
    circuit.cx(0, 1)
    circuit.measure_all()
    first, second = [(circuit, [[0.4], [1.1]])], [(circuit, [[2.0]])]
    sampler = AerProbabilitySampler(default_shots=50, seed=9)
    a1, a2 = (sampler.run(p).result()[0].data.meas.array for p in (first, second))
    b2, b1 = (AerProbabilitySampler(default_shots=50, seed=9).run(p).result()[0].data.meas.array for p in (second, first))
    assert np.array_equal(a1, b1) and np.array_equal(a2, b2)
    other = AerProbabilitySampler(default_shots=50, seed=10).run(first).result()[0].data.meas.array
    assert not np.array_equal(a1, other)


def test_unparameterised_unmeasured_and_empty_pubs_and_per_pub_shots():
    circuit = QuantumCircuit(2)
    circuit.x(1)
    circuit.measure_all()
    result = AerProbabilitySampler(default_shots=10).run([circuit, (circuit, None, 3)]).result()
    assert result[0].data.meas.get_counts() == {"10": 10}
    assert result[1].data.meas.get_counts() == {"10": 3}
    unmeasured = QuantumCircuit(2, 3)
    unmeasured.h(0)
    assert AerProbabilitySampler(default_shots=4).run([unmeasured]).result()[0].data.c.get_counts() == {"000": 4}
    theta = Parameter("t")
    rotated = QuantumCircuit(1)
    rotated.ry(theta, 0)
    rotated.measure_all()
    empty = AerProbabilitySampler(default_shots=4).run([(rotated, np.zeros((0, 1)))]).result()[0].data.meas
    assert empty.shape == (0,) and empty.array.shape == (0, 4, 1)  # no bindings: no Aer run (Aer crashes on one)


def test_aer_backend_uses_it_and_noisy_aer_keeps_aer_trajectories():
    assert isinstance(resolve_backend("aer", shots=10).sampler, AerProbabilitySampler)
    assert not isinstance(resolve_backend("aer-noisy:manila", shots=10).sampler, AerProbabilitySampler)


def test_rejects_mid_circuit_measurements():
    circuit = QuantumCircuit(1, 1)
    circuit.measure(0, 0)
    circuit.h(0)
    with raises_one_line(ValueError, "AerProbabilitySampler: expected measurements only at the end of the circuit"):
        AerProbabilitySampler().run([circuit])


@pytest.mark.parametrize("shots", [0, -3])
def test_rejects_nonpositive_shots(shots):
    circuit = QuantumCircuit(1)
    circuit.measure_all()
    with raises_one_line(ValueError, rf"AerProbabilitySampler: expected shots >= 1, got {shots}"):
        AerProbabilitySampler().run([circuit], shots=shots)
    with raises_one_line(ValueError, rf"AerProbabilitySampler: expected default_shots >= 1, got {shots}"):
        AerProbabilitySampler(default_shots=shots)
