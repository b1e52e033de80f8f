"""Readout calibration: matrices recovered within binomial errors, circuits, cache keyed by backend/qubits/date."""

from __future__ import annotations

import math

import numpy as np
import pytest

from _assertions import raises_one_line
from _samplers import ReadoutNoiseSampler, assignment
from qk_lstm_qiskit.errors import QKLSTMError
from qk_lstm_qiskit.hardware.backends import fake_backend
from qk_lstm_qiskit.hardware.readout import (
    ReadoutCalibration,
    calibration_circuits,
    calibration_counts,
    calibration_path,
    find_calibration,
    measured_qubits,
    reported_assignment_matrices,
    run_calibration,
)


@pytest.fixture(scope="module")
def manila():
    return fake_backend("manila")


def test_balanced_circuits_prepare_each_state_half_of_the_time(manila):
    circuits = calibration_circuits([4, 1, 3], manila.num_qubits)
    assert len(circuits) == calibration_counts(3, 100)[0]
    prepared = np.array([[c.name[::-1][i] == "1" for i in range(3)] for c in circuits])
    assert (prepared.sum(axis=0) == len(circuits) // 2).all()
    for circuit, row in zip(circuits, prepared):
        assert measured_qubits(circuit) == {0: 4, 1: 1, 2: 3}
        flipped = {circuit.find_bit(i.qubits[0]).index for i in circuit.data if i.operation.name == "x"}
        assert flipped == {q for q, bit in zip([4, 1, 3], row) if bit}


def test_calibration_recovers_the_assignment_matrices(manila):
    truth = {0: assignment(0.08, 0.02), 2: assignment(0.01, 0.05), 3: assignment(0.04, 0.04)}
    sampler = ReadoutNoiseSampler(truth, seed=1)
    shots = 4000
    cal = run_calibration(sampler, [0, 2, 3], manila, shots=shots)
    assert sampler.runs == 1 and cal.shots == shots and cal.backend == "fake_manila"
    assert cal.circuits * cal.shots_per_circuit >= 2 * shots
    for q, a in truth.items():
        for prepared in (0, 1):
            p = a[1 - prepared, prepared]  # the error probability of that preparation
            assert abs(cal.matrices[q][1 - prepared, prepared] - p) < 5 * math.sqrt(p * (1 - p) / shots)
        assert np.allclose(cal.matrices[q].sum(axis=0), 1.0)


def test_calibration_refuses_bad_qubits_and_unreadable_qubits(manila):
    sampler = ReadoutNoiseSampler({})
    with raises_one_line(ValueError, r"expected distinct qubits in \[0, 5\), got \[1, 1\]"):
        run_calibration(sampler, [1, 1], manila)
    with raises_one_line(ValueError, "expected shots >= 1, got 0"):
        run_calibration(sampler, [1], manila, shots=0)
    broken = ReadoutNoiseSampler({1: assignment(0.6, 0.5)})
    with raises_one_line(QKLSTMError, "qubit 1 of fake_manila reads 0 as often from |1> as from |0>"):
        run_calibration(broken, [1], manila, shots=500)


def _cal(backend="fake_manila", qubits=(0, 1), date="2026-12-01", time="2026-12-01T10:00:00+00:00"):
    return ReadoutCalibration(backend=backend, matrices={q: assignment(0.01 * (q + 1), 0.02) for q in qubits},
                              shots=100, date=date, time=time)


def test_cache_is_keyed_by_backend_qubits_and_date(tmp_path):
    path = _cal().save(tmp_path)
    assert path == calibration_path(tmp_path, "fake_manila", [1, 0], "2026-12-01")
    assert path.name == "fake_manila_q0-1_2026-12-01.json"
    found = find_calibration(tmp_path, "fake_manila", [1], date="2026-12-01")
    assert found is not None and np.array_equal(found.matrices[1], _cal().matrices[1])
    assert find_calibration(tmp_path, "fake_manila", [1], date="2026-12-02") is None  # another day
    assert find_calibration(tmp_path, "fake_manila", [1, 2], date="2026-12-01") is None  # qubit 2 missing
    assert find_calibration(tmp_path, "fake_lima", [1], date="2026-12-01") is None
    _cal(date="2026-12-03", time="2026-12-03T01:00:00+00:00").save(tmp_path)
    assert find_calibration(tmp_path, "fake_manila", [0], any_date=True).date == "2026-12-03"  # the newest


def test_a_corrupt_cache_file_is_reported(tmp_path):
    bad = calibration_path(tmp_path, "fake_manila", [0], "2026-12-01")
    bad.parent.mkdir(parents=True)
    bad.write_text("{not json")
    with raises_one_line(QKLSTMError, "expected a readout calibration in .*fake_manila_q0_2026-12-01.json"):
        find_calibration(tmp_path, "fake_manila", [0])


def test_assignment_order_and_missing_qubits():
    cal = _cal(qubits=(0, 1, 4))
    assert np.array_equal(cal.assignment([4, 0]), np.stack([cal.matrices[4], cal.matrices[0]]))
    with raises_one_line(ValueError, r"expected calibrations of qubits \[0, 2\], got none for \[2\]"):
        cal.assignment([0, 2])


def test_reported_matrices_come_from_the_target(manila):
    a = reported_assignment_matrices(manila, [0, 3])
    assert a[0, 1, 0] == pytest.approx(manila.target["measure"][(0,)].error)
    assert np.allclose(a.sum(axis=1), 1.0)
