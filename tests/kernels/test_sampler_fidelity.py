"""The sampler path (issue #3): SamplerQNN + TorchConnector kernels equal the exact executor.

References: the exact torch executor (``QuantumKernel(fm)``) and Qiskit's ``Statevector``;
``QMLSampler(shots=None)`` gives exact probabilities, Aer gives counts checked against
binomial standard errors.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from qiskit.primitives import BaseSamplerV2, PrimitiveJob
from qiskit.quantum_info import Statevector
from qiskit_machine_learning.primitives import QMLSampler

from qk_lstm_qiskit import FeatureMap, QuantumKernel
from qk_lstm_qiskit.hardware.backends import make_sampler
from qk_lstm_qiskit.errors import QKLSTMError
from qk_lstm_qiskit.kernels.sampler import SamplerFidelity

from _samplers import CountingSampler

DTYPE = torch.float64


class FailingSampler(BaseSamplerV2):
    """Runs ``inner`` except on call number ``fail_on`` (1-based), whose job raises."""

    def __init__(self, inner: BaseSamplerV2, fail_on: int, *, at_submit: bool = False) -> None:
        self.inner, self.fail_on, self.at_submit = inner, fail_on, at_submit
        self.jobs: list = []

    def run(self, pubs, *, shots=None):
        if len(self.jobs) + 1 == self.fail_on:
            if self.at_submit:
                raise ConnectionError("queue unreachable")

            def boom():
                raise RuntimeError("device on fire")

            job = PrimitiveJob(boom)
            job._submit()
        else:
            job = self.inner.run(pubs)
        self.jobs.append(job)
        return job


def exact_sampler() -> QMLSampler:
    return QMLSampler(shots=None)


def aer_sampler_v2(shots: int, seed: int):
    from qiskit_aer.primitives import SamplerV2

    return SamplerV2(default_shots=shots, seed=seed, options={"backend_options": {"max_parallel_threads": 1}})


def aer_probability_sampler(shots: int, seed: int):
    from qk_lstm_qiskit.hardware.aer_sampler import AerProbabilitySampler

    return AerProbabilitySampler(default_shots=shots, seed=seed)


AER_SAMPLERS = pytest.mark.parametrize(
    "aer_sampler", [aer_sampler_v2, aer_probability_sampler], ids=["aer-samplerv2", "aer-probability"]
)


def kernel_and_grads(kernel: QuantumKernel, x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor):
    """K and the gradients of sum(weights * K) w.r.t. x, y and the feature-map scaling."""
    x, y = x.clone().requires_grad_(True), y.clone().requires_grad_(True)
    scaling = kernel.feature_map.scaling
    scaling.grad = None
    k = kernel(x, y)
    (k * weights).sum().backward()
    return k.detach(), x.grad, y.grad, scaling.grad.clone()


def statevector_kernel(fm: FeatureMap, ax: np.ndarray, ay: np.ndarray) -> float:
    """P(0…0) of the unmeasured fidelity circuit, by ``Statevector``."""
    circuit, xp, yp = fm.fidelity_circuit()
    circuit = circuit.remove_final_measurements(inplace=False)
    bound = circuit.assign_parameters({**dict(zip(xp, ax)), **dict(zip(yp, ay))})
    return float(Statevector(bound).probabilities()[0])


# --------------------------------------------------------------------------- exact sampler
def test_exact_sampler_matches_exact_executor_values_and_gradients():
    torch.manual_seed(0)
    fm = FeatureMap(3, reps=2, entanglement="circular", trainable_scaling=True, input_scaling=0.7, dtype=DTYPE)
    x, y = torch.randn(4, 3, dtype=DTYPE), torch.randn(3, 3, dtype=DTYPE)
    weights = torch.randn(4, 3, dtype=DTYPE)
    got = kernel_and_grads(QuantumKernel(fm, sampler=exact_sampler()), x, y, weights)
    want = kernel_and_grads(QuantumKernel(fm), x, y, weights)
    assert got[0].dtype == DTYPE and got[0].shape == (4, 3)
    assert want[0].std() > 0.05  # a non-degenerate kernel matrix
    for name, g, w in zip(("K", "dx", "dy", "dscaling"), got, want):
        assert torch.allclose(g, w, atol=1e-6, rtol=0), f"{name}: max error {(g - w).abs().max():.2e}"
    ax, ay = fm.angles(x[1]).detach().numpy(), fm.angles(y[2]).detach().numpy()
    assert got[0][1, 2].item() == pytest.approx(statevector_kernel(fm, ax, ay), abs=1e-6)


def test_fixed_references_skip_their_shifts_and_keep_input_gradients():
    torch.manual_seed(1)
    fm = FeatureMap(2, reps=2, dtype=DTYPE)
    counting = CountingSampler(exact_sampler())
    sampled, exact = QuantumKernel(fm, sampler=counting), QuantumKernel(fm)
    x, y = torch.randn(3, 2, dtype=DTYPE), torch.randn(2, 2, dtype=DTYPE)  # y: no grad (fixed references)
    weights = torch.randn(3, 2, dtype=DTYPE)
    grads = []
    for kernel in (sampled, exact):
        xg = x.clone().requires_grad_(True)
        (kernel(xg, y) * weights).sum().backward()
        grads.append(xg.grad)
    assert torch.allclose(grads[0], grads[1], atol=1e-6, rtol=0)
    p = fm.num_parameters
    assert counting.calls == [[(2, (3 * 2, 2 * p))], [(2, (3 * 2 * 2 * p, 2 * p))]]  # ±shift of the p x-angles only


def test_forward_is_one_call_with_one_pub_and_backward_one_job():
    torch.manual_seed(2)
    fm = FeatureMap(2, reps=2, trainable_scaling=True, dtype=DTYPE)
    counting = CountingSampler(exact_sampler())
    kernel = QuantumKernel(fm, sampler=counting)
    x = torch.randn(5, 2, dtype=DTYPE, requires_grad=True)
    y = torch.randn(3, 2, dtype=DTYPE, requires_grad=True)
    k = kernel(x, y)
    p = fm.num_parameters
    assert counting.calls == [[(2, (15, 2 * p))]]  # one run, one PUB: a 2-D array of N·M bindings
    k.sum().backward()
    assert len(counting.calls) == 2
    assert counting.calls[1] == [(2, (15 * 2 * 2 * p, 2 * p))]  # one run, one PUB: N·M·(±)·2P rows
    with torch.no_grad():
        kernel(x, y)
    assert len(counting.calls) == 3


def test_pass_manager_with_nontrivial_layout_keeps_logical_outcomes():
    from qiskit.providers.fake_provider import GenericBackendV2
    from qiskit.transpiler import generate_preset_pass_manager

    torch.manual_seed(3)
    fm = FeatureMap(4, reps=2, trainable_scaling=True, dtype=DTYPE)
    pm = generate_preset_pass_manager(
        optimization_level=1, backend=GenericBackendV2(5, seed=7), initial_layout=[3, 1, 4, 0]
    )
    counting = CountingSampler(exact_sampler())
    sampled = QuantumKernel(fm, sampler=counting, pass_manager=pm)
    (circuit,) = sampled.fidelity.circuits()
    measured = [
        (circuit.find_bit(i.qubits[0]).index, circuit.find_bit(i.clbits[0]).index)
        for i in circuit.data
        if i.operation.name == "measure"
    ]
    assert measured == [(3, 0), (1, 1), (4, 2), (0, 3)]  # clbit q reads logical qubit q on a moved wire
    assert set(circuit.count_ops()) <= {"rz", "sx", "x", "cx", "measure", "barrier"}  # ISA for the target
    x, y = torch.randn(2, 4, dtype=DTYPE), torch.randn(2, 4, dtype=DTYPE)
    weights = torch.randn(2, 2, dtype=DTYPE)
    got = kernel_and_grads(sampled, x, y, weights)
    want = kernel_and_grads(QuantumKernel(fm), x, y, weights)
    for name, g, w in zip(("K", "dx", "dy", "dscaling"), got, want):
        assert torch.allclose(g, w, atol=1e-6, rtol=0), f"{name}: max error {(g - w).abs().max():.2e}"
    assert [c[0][0] for c in counting.calls] == [5, 5]  # the 5-qubit ISA circuit was run, transpiled once


# --------------------------------------------------------------------------- shots (Aer)
@pytest.mark.shots
@AER_SAMPLERS
def test_aer_kernel_values_within_binomial_errors(aer_sampler):
    shots = 4000
    torch.manual_seed(4)
    fm = FeatureMap(3, reps=2, dtype=DTYPE)
    x, y = torch.randn(5, 3, dtype=DTYPE), torch.randn(4, 3, dtype=DTYPE)
    x[0] = y[0]  # k = 1 exactly: the floor of the error bar matters
    got = QuantumKernel(fm, sampler=aer_sampler(shots, seed=11))(x, y)
    want = QuantumKernel(fm)(x, y)
    k = want.clamp(1.0 / shots, 1.0 - 1.0 / shots)
    sigma = torch.sqrt(k * (1 - k) / shots)
    assert got[0, 0].item() == 1.0
    z = (got - want).abs() / sigma
    assert z.max() < 5, f"max deviation {z.max():.1f} standard errors"
    assert (got - want).abs().max() > 0  # these are counts, not exact probabilities
    assert torch.all((got * shots - (got * shots).round()).abs() < 1e-3)  # multiples of 1/shots


@pytest.mark.shots
@AER_SAMPLERS
def test_aer_parameter_shift_gradient_within_binomial_errors(aer_sampler):
    shots = 4000
    torch.manual_seed(5)
    fm = FeatureMap(3, reps=2, dtype=DTYPE)
    ax = fm.angles(torch.randn(1, 3, dtype=DTYPE)).requires_grad_(True)
    ay = fm.angles(torch.randn(1, 3, dtype=DTYPE))
    SamplerFidelity(fm, aer_sampler(shots, seed=12))(ax, ay).sum().backward()
    a, b = ax.detach().numpy()[0], ay.numpy()[0]
    for p in range(fm.num_parameters):
        shift = np.zeros_like(a)
        shift[p] = math.pi / 2
        plus, minus = statevector_kernel(fm, a + shift, b), statevector_kernel(fm, a - shift, b)
        sigma = math.sqrt(max(plus * (1 - plus), 1 / shots) + max(minus * (1 - minus), 1 / shots)) / (2 * math.sqrt(shots))
        assert abs(ax.grad[0, p].item() - (plus - minus) / 2) < 5 * sigma, f"angle {p}"


# --------------------------------------------------------------------------- errors
def test_rejects_a_sampler_that_is_not_a_v2_sampler():
    with pytest.raises(TypeError, match=r"SamplerFidelity: expected sampler to be a qiskit.primitives.BaseSamplerV2, got dict"):
        QuantumKernel(FeatureMap(2), sampler={"shots": 10})


def test_rejects_a_pass_manager_without_run():
    with pytest.raises(TypeError, match=r"SamplerFidelity: expected pass_manager to have a run\(circuit\) method, got str"):
        SamplerFidelity(FeatureMap(2), exact_sampler(), pass_manager="level1")


@pytest.mark.parametrize(
    ("ax_shape", "ay_shape", "message"),
    [
        ((3, 5), (2, 8), r"SamplerFidelity: expected ax of shape \(N, 8\), got \(3, 5\)"),
        ((3, 8), (2, 7), r"SamplerFidelity: expected ay of shape \(M, 8\), got \(2, 7\)"),
        ((8,), (2, 8), r"SamplerFidelity: expected ax of shape \(N, 8\), got \(8,\)"),
    ],
)
def test_rejects_angle_tensors_of_the_wrong_shape(ax_shape, ay_shape, message):
    fidelity = SamplerFidelity(FeatureMap(4), exact_sampler())
    with pytest.raises(ValueError, match=message):
        fidelity(torch.zeros(ax_shape), torch.zeros(ay_shape))


@pytest.mark.parametrize("shots", [0, -5])
def test_rejects_nonpositive_shots(shots):
    with pytest.raises(ValueError, match=rf"expected shots >= 1, got {shots}"):
        make_sampler("aer", shots=shots)


def test_failed_forward_job_raises_qklstm_error_naming_the_job():
    failing = FailingSampler(exact_sampler(), fail_on=1)
    kernel = QuantumKernel(FeatureMap(2, dtype=DTYPE), sampler=failing)
    with pytest.raises(QKLSTMError, match=r"SamplerFidelity: sampler job '[^']+' failed in the forward pass") as info:
        kernel(torch.zeros(2, 2, dtype=DTYPE), torch.ones(1, 2, dtype=DTYPE))
    assert failing.jobs[0].job_id() in str(info.value)
    assert "RuntimeError: device on fire" in str(info.value)
    assert isinstance(info.value.__cause__, RuntimeError)


def test_failed_backward_job_raises_qklstm_error_naming_the_job():
    failing = FailingSampler(exact_sampler(), fail_on=2)
    kernel = QuantumKernel(FeatureMap(2, dtype=DTYPE), sampler=failing)
    x = torch.zeros(2, 2, dtype=DTYPE, requires_grad=True)
    k = kernel(x, torch.ones(1, 2, dtype=DTYPE))
    with pytest.raises(QKLSTMError, match=r"sampler job '[^']+' failed: RuntimeError: device on fire") as info:
        k.sum().backward()
    assert failing.jobs[1].job_id() in str(info.value)
    assert isinstance(info.value.__cause__, RuntimeError)


def test_failed_submission_raises_qklstm_error():
    failing = FailingSampler(exact_sampler(), fail_on=1, at_submit=True)
    kernel = QuantumKernel(FeatureMap(2, dtype=DTYPE), sampler=failing)
    with pytest.raises(QKLSTMError, match=r"SamplerFidelity: FailingSampler.run failed to submit a job: ConnectionError: queue unreachable"):
        kernel(torch.zeros(1, 2, dtype=DTYPE), torch.ones(1, 2, dtype=DTYPE))


# --------------------------------------------------------------------------- the whole model
def _qklstm(sampler=None, **kwargs):
    from qk_lstm_qiskit.nn.lstm import QKLSTM

    options = dict(num_qubits=2, num_references=2, reps=2, trainable_scaling=True, references="learned", dtype=DTYPE)
    options.update(kwargs)
    return QKLSTM(3, 2, batch_first=True, sampler=sampler, **options)


def _run(model, inputs: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.zero_grad()
    out, (h, c) = model(inputs)
    (out.square().sum() + c.sum()).backward()
    return out.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


def test_qklstm_on_exact_sampler_equals_exact_executor():
    torch.manual_seed(6)
    exact = _qklstm(num_layers=2)
    sampled = _qklstm(exact_sampler(), num_layers=2)
    sampled.load_state_dict(exact.state_dict())
    inputs = torch.randn(2, 2, 3, dtype=DTYPE)  # (N, L, H_in)
    out_s, grads_s = _run(sampled, inputs)
    out_e, grads_e = _run(exact, inputs)
    assert torch.allclose(out_s, out_e, atol=1e-5, rtol=0)
    assert grads_s.keys() == grads_e.keys() and any("scaling" in n for n in grads_e) and any("references" in n for n in grads_e)
    for name in grads_e:
        assert grads_e[name].abs().max() > 0, name
        assert torch.allclose(grads_s[name], grads_e[name], atol=1e-5, rtol=0), (
            f"{name}: max error {(grads_s[name] - grads_e[name]).abs().max():.2e}"
        )


@pytest.mark.parametrize("references", ["fixed", "learned"])
def test_qklstm_makes_one_sampler_call_per_time_step(references):
    torch.manual_seed(7)
    counting = CountingSampler(exact_sampler())
    model = _qklstm(counting, references=references, trainable_scaling=False)
    steps, batch = 3, 1
    out, _ = model(torch.randn(batch, steps, 3, dtype=DTYPE))
    pairs, p = batch * 4 * model.cells[0].num_references, model.cells[0].kernel.feature_map.num_parameters
    assert counting.calls == [[(2, (pairs, 2 * p))]] * steps  # T calls, one PUB each
    out.sum().backward()
    backward = counting.calls[steps:]
    assert 1 <= len(backward) <= steps and all(len(call) == 1 for call in backward)
    shifted = 2 * p if references == "fixed" else 4 * p  # fixed references are constants: no y shifts
    assert backward == [[(2, (pairs * shifted, 2 * p))]] * steps


def test_state_dict_moves_between_executors(tmp_path):
    torch.manual_seed(8)
    inputs = torch.randn(2, 3, 3, dtype=DTYPE)
    exact = _qklstm(references="fixed")
    optimizer = torch.optim.Adam(exact.parameters(), lr=0.1)
    for _ in range(2):  # train a little on the exact executor
        optimizer.zero_grad()
        exact(inputs)[0].square().sum().backward()
        optimizer.step()
    torch.save(exact.state_dict(), tmp_path / "exact.pt")
    sampled = _qklstm(exact_sampler(), references="fixed")
    assert sampled.state_dict().keys() == exact.state_dict().keys()  # the sampler adds no state
    sampled.load_state_dict(torch.load(tmp_path / "exact.pt", weights_only=True))
    with torch.no_grad():
        assert torch.allclose(sampled(inputs)[0], exact(inputs)[0], atol=1e-5, rtol=0)
        for p in sampled.parameters():
            p.add_(0.01)  # "trained" on the sampler path
        torch.save(sampled.state_dict(), tmp_path / "sampled.pt")
        fresh = _qklstm(references="fixed")
        fresh.load_state_dict(torch.load(tmp_path / "sampled.pt", weights_only=True))
        assert torch.allclose(fresh(inputs)[0], sampled(inputs)[0], atol=1e-5, rtol=0)
