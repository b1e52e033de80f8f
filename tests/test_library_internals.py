"""The private APIs of Qiskit, Qiskit Aer and qiskit-machine-learning this package relies on, each used in one place.

Each test fails when the library changes the piece the package uses (name, signature or result
shape), so an upgrade breaks here, with the place named, rather than deep inside a training run.
"""

from __future__ import annotations

import inspect

import torch
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter, ParameterVector
from qiskit.primitives import PrimitiveResult
from qiskit.primitives.primitive_job import PrimitiveJob
from qiskit_machine_learning.neural_networks import SamplerQNN
from qiskit_machine_learning.primitives import QMLSampler

from qk_lstm_qiskit.circuits.feature_map import FeatureMap
from qk_lstm_qiskit.kernels import sampler as sampler_module
from qk_lstm_qiskit.kernels.sampler import SamplerFidelity


def test_samplerqnn_private_hooks_keep_their_signatures():
    """kernels/sampler.py `_KernelQNN` overrides these three."""
    assert list(inspect.signature(SamplerQNN._forward).parameters) == ["self", "input_data", "weights"]
    assert list(inspect.signature(SamplerQNN._backward).parameters) == ["self", "input_data", "weights"]
    assert list(inspect.signature(SamplerQNN._postprocess).parameters) == ["self", "num_samples", "result"]


def test_the_kernel_qnn_overrides_are_the_ones_that_run(monkeypatch):
    calls = {"postprocess": 0}
    original = sampler_module._KernelQNN._postprocess

    def counting(self, num_samples, result):
        calls["postprocess"] += 1
        return original(self, num_samples, result)

    monkeypatch.setattr(sampler_module._KernelQNN, "_postprocess", counting)
    fm = FeatureMap(2)
    fidelity = SamplerFidelity(fm, QMLSampler(shots=None))
    k = fidelity(fm.angles(torch.zeros(3, 2, dtype=torch.float64)), fm.angles(torch.zeros(2, 2, dtype=torch.float64)))
    assert calls["postprocess"] == 1
    assert torch.allclose(k, torch.ones(3, 2, dtype=k.dtype))


def test_assign_unique_parameters_gives_one_parameter_per_gate_angle():
    """gradients/parameter_shift.py builds its shift plan on it."""
    from qiskit_machine_learning.gradients.utils import _assign_unique_parameters

    theta = Parameter("θ")
    circuit = QuantumCircuit(1)
    circuit.rx(2 * theta, 0)
    circuit.ry(theta, 0)
    unique = _assign_unique_parameters(circuit)
    g_params = list(unique.gradient_circuit.parameters)
    assert len(g_params) == 2
    assert sorted(str(unique.gradient_parameter_map[g]) for g in g_params) == ["2*θ", "θ"]


def test_statevector_sampler_preprocess_circuit_contract():
    """hardware/aer_sampler.py reads (unmeasured circuit, measured qubits, per-register bit maps)."""
    from qiskit.primitives.statevector_sampler import _preprocess_circuit

    x = ParameterVector("x", 1)
    circuit = QuantumCircuit(3, 2)
    circuit.rx(x[0], 0)
    circuit.measure(2, 0)
    circuit.measure(0, 1)
    unmeasured, qargs, meas_info = _preprocess_circuit(circuit)
    assert unmeasured.count_ops().get("measure", 0) == 0 and unmeasured.num_qubits == 3
    assert sorted(qargs) == [0, 2]
    (item,) = meas_info
    assert item.creg_name == "c" and item.num_bits == 2
    assert [qargs[i] for i in item.qreg_indices] == [2, 0]  # clbit j holds qubit qargs[qreg_indices[j]]


def test_primitive_job_submit_runs_the_function():
    """hardware/aer_sampler.py `submitted_job` starts a PrimitiveJob with its private `_submit`."""
    from qk_lstm_qiskit.hardware.aer_sampler import submitted_job

    result = PrimitiveResult([], metadata={"value": 42})
    job = submitted_job(lambda: result)
    assert isinstance(job, PrimitiveJob) and job.result() is result


def test_aer_sampler_state_the_content_seeded_sampler_writes():
    """hardware/backends.py `_ContentSeededSampler` sets Aer SamplerV2's `_backend` and `_seed`, reads `_default_shots`."""
    from qiskit_aer import AerSimulator
    from qiskit_aer.primitives import SamplerV2 as AerSampler

    from qk_lstm_qiskit.hardware.backends import _seeded_aer_sampler

    assert {"_backend", "_seed", "_default_shots"} <= set(vars(AerSampler(default_shots=8)))
    simulator = AerSimulator()
    sampler = _seeded_aer_sampler(simulator, shots=256, seed=5)
    assert sampler._backend is simulator
    circuit = QuantumCircuit(3)
    circuit.h(range(3))
    circuit.measure_all()
    first = sampler.run([circuit]).result()[0].data.meas.get_counts()
    again = sampler.run([circuit]).result()[0].data.meas.get_counts()
    assert sum(first.values()) == 256  # the default shots it read
    assert first == again  # the seed it wrote into `_seed` decides the shots (8 outcomes: equal by chance ~never)


def test_primitive_job_id_is_the_attribute_a_resubmitted_journaled_job_rewrites():
    """hardware/journal.py `_JournaledJob` writes BasePrimitiveJob's `_job_id` when it resubmits a failed job."""
    job = PrimitiveJob(lambda: None)
    job._job_id = "resubmitted"
    assert job.job_id() == "resubmitted"


def test_sampler_gradient_private_hook_and_sampler():
    """gradients/parameter_shift.py overrides BaseSamplerGradient's `_run` and submits to its `_sampler`."""
    from qiskit.primitives import StatevectorSampler
    from qiskit_machine_learning.gradients.base.base_sampler_gradient import BaseSamplerGradient

    from qk_lstm_qiskit.gradients.parameter_shift import BatchedParamShiftSamplerGradient

    assert list(inspect.signature(BaseSamplerGradient._run).parameters) == [
        "self", "circuits", "parameter_values", "parameters", "options"]
    sampler = StatevectorSampler()
    assert BatchedParamShiftSamplerGradient(sampler)._sampler is sampler
