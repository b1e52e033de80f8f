"""Cost estimate: counts against a hand count, durations against the target, the budget check."""

from __future__ import annotations

import pytest
from qiskit import QuantumCircuit

from qk_lstm_qiskit.hardware.backends import fake_backend, resolve_backend
from qk_lstm_qiskit.errors import QKLSTMError
from qk_lstm_qiskit.hardware.cost import (
    DEFAULT_JOB_OVERHEAD_S,
    CalibrationCost,
    DeviceTiming,
    JobLimits,
    KernelLoad,
    batch_shapes,
    check_budget,
    estimate_cost,
    kernel_load,
)
from qk_lstm_qiskit.hardware.timing import DEFAULT_REP_DELAY_S, circuit_duration, rep_delay
from qk_lstm_qiskit.circuits.feature_map import FeatureMap


def test_counts_match_a_hand_count_for_inference():
    # Batch 1: 2 sentences padded to 3 steps; batch 2: 1 sentence of 2 steps. R = 2, G = 4, K = 1.
    # Step jobs: 3 + 2 = 5. Bindings: 3 steps·2 sentences·4 gates·2 refs = 48, plus 2·1·4·2 = 16.
    est = estimate_cost([(2, 3), (1, 2)], KernelLoad(num_references=2), shots=100)
    assert (est.forward_circuits, est.backward_circuits, est.circuits) == (64, 0, 64)
    assert est.jobs == 5 and est.rounds == 5
    assert est.total_shots == 6400
    assert est.qpu_seconds == 0.0  # no device: simulator


def test_counts_match_a_hand_count_for_training():
    # Same data, 2 epochs, 2 layers, parameter shift over 3 parameters: 2·3 = 6 shifted circuits
    # per forward binding. Forward per epoch 2 layers·64 = 128, so 256 over 2 epochs; backward 6·256.
    load = KernelLoad(num_references=2, num_layers=2, backward_circuits_per_value=6, shift_parameters=3)
    est = estimate_cost([(2, 3), (1, 2)], load, shots=10, training=True, epochs=2)
    assert est.forward_circuits == 256
    assert est.backward_circuits == 1536
    assert est.circuits == 1792
    assert est.jobs == 2 * 2 * 5 * 2  # epochs · layers · steps · (forward + backward)
    assert est.total_shots == 17920


def test_circuit_duration_is_the_critical_path_of_target_durations():
    device = fake_backend("manila")
    target = device.target
    circuit = QuantumCircuit(5, 1)
    circuit.sx(0)
    circuit.sx(2)  # in parallel with sx(0)
    circuit.cx(0, 1)
    circuit.rz(0.3, 1)  # virtual: 0 s
    circuit.measure(1, 0)
    expected = target["sx"][(0,)].duration + target["cx"][(0, 1)].duration + target["measure"][(1,)].duration
    assert circuit_duration(circuit, target) == pytest.approx(expected, rel=1e-12)
    circuit.barrier()
    circuit.sx(3)  # after the barrier: starts when qubit 1 is measured
    assert circuit_duration(circuit, target) == pytest.approx(expected + target["sx"][(3,)].duration, rel=1e-12)


def test_circuit_duration_is_none_for_an_unsupported_gate():
    circuit = QuantumCircuit(2)
    circuit.h(0)  # not in manila's basis
    assert circuit_duration(circuit, fake_backend("manila").target) is None


@pytest.mark.fake_backend
def test_qpu_seconds_follow_the_stated_formula():
    rb = resolve_backend("fake:manila", shots=1000, seed=1)
    circuit, _, _ = FeatureMap(4, reps=2).fidelity_circuit()
    isa = rb.pass_manager.run(circuit)
    est = estimate_cost([(2, 3)], KernelLoad(num_references=4), shots=1000,
                        timing=DeviceTiming(device=rb.device, isa_circuit=isa, backend=rb.name))
    t_circ = circuit_duration(isa, rb.device.target)
    assert t_circ > 0 and est.circuit_seconds == t_circ
    assert est.rep_delay_seconds == rep_delay(rb.device) == 250e-6  # manila's default_rep_delay
    circuits = 3 * 2 * 4 * 4
    expected = 3 * DEFAULT_JOB_OVERHEAD_S + 1000 * circuits * (t_circ + 250e-6)
    assert est.qpu_seconds == pytest.approx(expected, rel=1e-12)
    text = est.summary()
    assert "T_QPU ≈ J·t_job + S·(C_fwd + C_bwd)·(t_circ + t_rep)" in text
    assert f"circuits (bindings): {circuits}" in text
    assert est.to_dict()["formula"] == est.formula


def test_rep_delay_falls_back_without_a_configuration():
    assert rep_delay(object()) == DEFAULT_REP_DELAY_S


def test_budget_refuses_a_run_over_it():
    device = fake_backend("manila")
    circuit = QuantumCircuit(1, 1)
    circuit.measure(0, 0)
    est = estimate_cost([(4, 10)], KernelLoad(num_references=4), shots=4096,
                        timing=DeviceTiming(device=device, isa_circuit=circuit, backend="fake:manila"))
    check_budget(est, est.qpu_seconds + 1)
    check_budget(est, None)
    with pytest.raises(QKLSTMError, match=r"needs ≈ [\d,.]+ QPU seconds on fake:manila \(10 jobs, 640 circuits × 4,096 shots\), over max_qpu_seconds=60") as info:
        check_budget(est, 60)
    assert "\n" not in str(info.value)


def test_budget_needs_durations():
    est = estimate_cost([(1, 1)], KernelLoad(num_references=1), shots=1,
                        timing=DeviceTiming(device=fake_backend("manila"), backend="fake:manila"))
    assert est.qpu_seconds is None
    with pytest.raises(QKLSTMError, match="cannot check max_qpu_seconds=5 on fake:manila"):
        check_budget(est, 5)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [({"load": KernelLoad(num_references=0)}, ValueError, "expected num_references >= 1, got 0"),
     ({"shots": 1.5}, TypeError, "expected shots to be an int, got float 1.5"),
     ({"load": KernelLoad(4, backward_circuits_per_value=-2)}, ValueError,
      "expected backward_circuits_per_value >= 0, got -2"),
     ({"jobs": JobLimits(max_circuits_per_job=0)}, ValueError, "expected max_circuits_per_job >= 1, got 0")],
)
def test_bad_counts_are_rejected(kwargs, error, message):
    args = {"load": KernelLoad(num_references=4), "shots": 100, **kwargs}
    with pytest.raises(error, match=message):
        estimate_cost([(1, 2)], **args)


def test_bad_batch_is_rejected():
    with pytest.raises(ValueError, match=r"expected batch 1 of >= 1 sentences of length >= 1, got \(2, 0\)"):
        estimate_cost([(1, 2), (2, 0)], KernelLoad(num_references=1), shots=1)


def test_batch_shapes():
    assert batch_shapes([5, 4, 7, 1, 2], 2) == [(2, 5), (2, 7), (1, 2)]


@pytest.mark.parametrize("training", [False, True])
def test_formula_matches_what_the_model_submits(training):
    """Count the sampler calls and bindings of a real 2-layer QK-LSTM tagger (dry-run sampler)."""
    import torch

    from qk_lstm_qiskit.config import ModelConfig
    from qk_lstm_qiskit.data.corpus import make_batches
    from qk_lstm_qiskit.hardware.cost import DryRunSampler
    from qk_lstm_qiskit.nn.tagger import build_tagger

    dry = DryRunSampler()
    config = ModelConfig(num_layers=2, num_qubits=2, num_references=3, hidden_dim=3, embedding_dim=4)
    model = build_tagger(config, vocab_size=5, num_tags=2, sampler=dry)
    encoded = [([1, 2, 3], [0, 1, 0]), ([4, 1], [1, 0]), ([2, 2, 2, 2], [0, 0, 1, 1])]
    batches = make_batches(encoded, 2)
    shapes = [tuple(b.words.shape) for b in batches]
    assert shapes == [(2, 3), (1, 4)]
    for batch in batches:
        with torch.set_grad_enabled(training):
            log_probs = model(batch.words)
            if training:
                log_probs.sum().backward()
    shift = 2 * config.num_qubits * config.reps  # x angles only: references are fixed
    load = KernelLoad(num_references=3, num_layers=2, backward_circuits_per_value=2 * shift, shift_parameters=shift)
    est = estimate_cost(shapes, load, shots=1, training=training)
    assert kernel_load(model, training=True) == load  # read off the model
    assert len(dry.calls) == est.jobs
    assert dry.bindings == est.circuits
    forward_sizes = {n * 4 * 3 for n, _ in shapes}  # N_b·G·R bindings per forward call
    assert sum(call[0] for call in dry.calls if call[0] in forward_sizes) == est.forward_circuits


def test_job_limit_splits_steps_and_parallel_batches_shorten_the_rounds():
    # Batches (N_b, L_b): (2, 3), (1, 2), (3, 4); R = 2, G = 4: steps carry 16, 8, 24 bindings.
    batches = [(2, 3), (1, 2), (3, 4)]
    load = KernelLoad(num_references=2)
    est = estimate_cost(batches, load, shots=10, jobs=JobLimits(max_circuits_per_job=10))
    assert est.jobs == 3 * 2 + 2 * 1 + 4 * 3  # ⌈16/10⌉ = 2, ⌈8/10⌉ = 1, ⌈24/10⌉ = 3 jobs per step
    assert est.rounds == 3 + 2 + 4  # one worker: every step waits for the previous one
    parallel = estimate_cost(batches, load, shots=10, jobs=JobLimits(parallel_batches=2))
    # list scheduling in batch order: worker A takes 3 steps, B takes 2, then (free first) 4 more
    assert parallel.rounds == 6 and parallel.jobs == 9 and parallel.circuits == est.circuits
    assert estimate_cost(batches, load, shots=10, jobs=JobLimits(parallel_batches=3)).rounds == 4


def test_calibration_is_priced_with_its_own_circuit():
    device = fake_backend("manila")
    calibration = QuantumCircuit(5, 2)
    calibration.x(1)
    calibration.measure([1, 2], [0, 1])
    base = dict(shots=100, timing=DeviceTiming(device=device, job_overhead_seconds=2.0, isa_circuit=calibration))
    plain = estimate_cost([(1, 2)], KernelLoad(num_references=2), **base)
    est = estimate_cost([(1, 2)], KernelLoad(num_references=2), **base,
                        calibration=CalibrationCost("m3", circuits=4, shots=500, circuit=calibration))
    t_cal = device.target["x"][(1,)].duration + max(device.target["measure"][(q,)].duration for q in (1, 2))
    expected = 2.0 + 4 * 500 * (t_cal + rep_delay(device))
    assert est.calibration_jobs == 1 and est.calibration_qpu_seconds == pytest.approx(expected, rel=1e-9)
    assert est.qpu_seconds == pytest.approx(plain.qpu_seconds + expected, rel=1e-12)
    assert "readout mitigation: m3; 4 calibration circuits × 500 shots in 1 job(s)" in est.summary()
    assert est.kernel_standard_error == pytest.approx(0.05)  # √(1 / (4·100))


@pytest.mark.parametrize("options, reference_side", [
    ({}, False), ({"references": "learned"}, True), ({"trainable_scaling": True}, True),
    ({"feature_map": "paper", "trainable_layers": 1, "reps": 2}, True),
])
def test_a_training_estimate_counts_what_the_model_submits(options, reference_side):
    """The training estimate is read off the built model: a ``trainable_layers`` map's weights (like learned
    references or a trainable bandwidth) make the reference side require gradients, so its angles are shifted
    too; the estimate's circuits equal the dry-run sampler's count of a real forward and backward."""
    import torch

    from qk_lstm_qiskit.hardware.cost import DryRunSampler
    from qk_lstm_qiskit.nn.lstm import QKLSTM

    dry = DryRunSampler()
    model = QKLSTM(3, 2, num_layers=2, batch_first=True, num_qubits=2, num_references=1, sampler=dry, **options)
    x = torch.randn(2, 3, 3, generator=torch.Generator().manual_seed(0))  # N = 2 rows, L = 3 steps
    model(x)[0].sum().backward()
    load = kernel_load(model, training=True)
    est = estimate_cost([(2, 3)], load, shots=1, training=True)
    assert dry.bindings == est.circuits and len(dry.calls) == est.jobs
    x_angles = model.cells[0].kernel.feature_map.num_parameters
    assert load.shift_parameters == (2 * x_angles if reference_side else x_angles)


@pytest.mark.parametrize("lengths, batch_size, limit", [([3, 5, 1, 4, 4, 2, 7], 3, None), ([6, 2, 2, 9], 4, 20),
                                                         ([5], 1, None)])
def test_an_evaluation_without_padded_steps_counts_what_step_cost_counts(lengths, batch_size, limit):
    """Active rows: the estimate's circuits, jobs and QPU seconds equal step_cost's independent count (a row per
    sequence still running at each step), and never exceed the padded count."""
    from qk_lstm_qiskit.hardware.cost import active_rows
    from qk_lstm_qiskit.hardware.step_cost import step_cost

    ordered = sorted(lengths)
    load = KernelLoad(num_references=3, num_layers=2)
    timing = DeviceTiming(device=fake_backend("manila"), isa_circuit=QuantumCircuit(1), on_qpu=True)
    jobs = JobLimits(max_circuits_per_job=limit)
    kwargs = dict(shots=100, timing=timing, jobs=jobs)
    skipped = estimate_cost(batch_shapes(ordered, batch_size), load, active_rows=active_rows(ordered, batch_size), **kwargs)
    padded = estimate_cost(batch_shapes(ordered, batch_size), load, **kwargs)
    reference = step_cost(ordered, circuits_per_input=4 * 3, shots=100, circuit_seconds=skipped.circuit_seconds,
                          rep_delay_seconds=skipped.rep_delay_seconds, job_overhead_seconds=skipped.job_overhead_seconds,
                          layers=2, batch_size=batch_size, max_circuits_per_job=limit)
    assert (skipped.circuits, skipped.jobs) == (reference.circuits, reference.jobs)
    assert skipped.qpu_seconds == pytest.approx(reference.qpu_seconds)
    assert skipped.circuits == 2 * 4 * 3 * sum(lengths) <= padded.circuits
    assert active_rows([1, 2, 4], 3) == [(3, 2, 1, 1)]
    with pytest.raises(ValueError, match="expected active_rows of inference"):
        estimate_cost(batch_shapes(ordered, batch_size), load, active_rows=active_rows(ordered, batch_size), training=True,
                      **kwargs)
