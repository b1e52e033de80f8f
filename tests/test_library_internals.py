"""The private APIs of Qiskit and qiskit-machine-learning this package relies on, each used in one place.

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
