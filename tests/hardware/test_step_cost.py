"""The per-step cost: rows only for active sequences, echoes per job, job splitting, calibration."""

from __future__ import annotations

import pytest

from qk_lstm_qiskit.hardware.step_cost import step_cost


def test_counts_rows_of_active_sequences_only():
    est = step_cost([3, 1, 2], circuits_per_input=3, shots=100, circuit_seconds=1e-6, rep_delay_seconds=2.5e-4,
                    job_overhead_seconds=2.0)
    # steps: t=0: 3 active, t=1: 2, t=2: 1 → 6 rows (= tokens) × 3 circuits; 3 jobs
    assert (est.tokens, est.circuits, est.jobs) == (6, 18, 3)
    assert est.qpu_seconds == pytest.approx(3 * 2.0 + 100 * 18 * (1e-6 + 2.5e-4))
    assert est.seconds_per_token == pytest.approx(3 * 100 * (1e-6 + 2.5e-4))


def test_batches_echoes_layers_and_job_limit():
    est = step_cost([2, 2, 1, 1], circuits_per_input=2, shots=10, circuit_seconds=0.0, rep_delay_seconds=1.0,
                    job_overhead_seconds=1.0, echo_circuits_per_job=1, layers=2, batch_size=2, max_circuits_per_job=3)
    # batch [1, 1]: t=0 → 2·2 + 1 = 5 bindings (2 jobs); batch [2, 2]: t=0, 1 → 5 each (2 jobs each); ×2 layers
    assert est.circuits == 2 * (5 + 5 + 5)
    assert est.jobs == 2 * (2 + 2 + 2)


def test_calibration_is_added_once():
    base = dict(circuits_per_input=1, shots=1, circuit_seconds=0.0, rep_delay_seconds=1e-3, job_overhead_seconds=3.0)
    plain, cal = step_cost([1], **base), step_cost([1], calibration_circuits=8, calibration_shots=100,
                                                      calibration_circuit_seconds=1e-3, **base)
    assert cal.qpu_seconds - plain.qpu_seconds == pytest.approx(3.0 + 8 * 100 * 2e-3)


def test_rejects_empty_sequences():
    with pytest.raises(ValueError, match="expected sequence lengths >= 1"):
        step_cost([2, 0], circuits_per_input=1, shots=1, circuit_seconds=0.0, rep_delay_seconds=0.0)
