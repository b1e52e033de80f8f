"""The fidelity seam: a fidelity defined in this test module alone runs through every consumer of kernels.

``EinsumFidelity`` computes the exact kernel another way than the package's fidelities: statevectors by
the executor's plain torch stages (torch autograd instead of the adjoint sweep), overlaps by ``einsum``.
It is registered under a new name and used by :class:`QuantumKernel`, :class:`QKLSTM` (the fused layer,
through the route it provides, and the per-step loop), the cost estimate and the backend evaluation's
comparison with the exact kernel, without any edit to the package.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from qiskit.circuit import QuantumCircuit

from qk_lstm_qiskit.circuits.feature_map import FeatureMap
from qk_lstm_qiskit.evaluation.runner import KernelComparison
from qk_lstm_qiskit.hardware.cost import estimate_model_cost, isa_circuit, kernel_load, sampler_kernels
from qk_lstm_qiskit.kernels import fidelity as fidelity_module
from qk_lstm_qiskit.kernels.fidelity import Fidelity, FidelityCost, Reference, register_fidelity
from qk_lstm_qiskit.kernels.kernel import QuantumKernel
from qk_lstm_qiskit.kernels.routes import KernelRoute, StatevectorRoute
from qk_lstm_qiskit.kernels.statevector import StatevectorExecutor
from qk_lstm_qiskit.nn.lstm import QKLSTM

F64 = torch.float64


class EinsumFidelity(Fidelity):
    """``k = |Σ_d ψ̄_y[d] ψ_x[d]|²`` from the executor's plain torch stages, differentiated by torch autograd.

    It claims to run its compute-uncompute circuit on a device at one circuit per value, and a backward of
    two shifted circuits per angle of each differentiated side (a made-up price the estimate must use).
    """

    def __init__(self, feature_map: FeatureMap) -> None:
        super().__init__(feature_map)
        self.executor = StatevectorExecutor(feature_map.circuit, feature_map.parameters_order)
        self.circuit: QuantumCircuit = feature_map.fidelity_circuit()[0]

    @property
    def is_product(self) -> bool:
        return self.executor.is_product_circuit

    def _states(self, angles: torch.Tensor) -> torch.Tensor:
        return self.executor.apply_stages(angles, drop_constant_tail=True)  # (B, D)

    def _prepare(self, ay: torch.Tensor) -> torch.Tensor:
        return self._states(ay)

    def reference_states(self, reference: Reference, dtype: torch.dtype) -> torch.Tensor:
        states = reference.prepared
        return states if states.real.dtype == dtype else self._states(reference.angles.to(dtype))

    def evaluate(self, ax: torch.Tensor, reference: Reference) -> torch.Tensor:
        overlap = torch.einsum("nd,md->nm", self._states(ax), self.reference_states(reference, ax.dtype).conj())
        return overlap.real.square() + overlap.imag.square()

    def circuits(self) -> tuple[QuantumCircuit, ...]:
        return (self.circuit,)

    def cost(self, *, differentiate_y: bool = False) -> FidelityCost:
        shifted = self.num_parameters * (2 if differentiate_y else 1)
        return FidelityCost(forward=1, backward=2 * shifted, shifted_parameters=shifted)

    def route(self, feature_map: FeatureMap, reference: Reference) -> KernelRoute | None:
        states = self.reference_states(reference, reference.angles.dtype)
        return StatevectorRoute(self.executor, feature_map, states)


@pytest.fixture
def einsum(monkeypatch) -> str:
    """``EinsumFidelity`` registered as ``"einsum"`` for this test only."""
    monkeypatch.setattr(fidelity_module, "FIDELITIES", dict(fidelity_module.FIDELITIES))
    register_fidelity("einsum")(EinsumFidelity)
    return "einsum"


@pytest.mark.parametrize("options", [{"reps": 2}, {"reps": 2, "entanglement": "full", "input_scaling": 0.6}, {}])
def test_quantum_kernel_runs_the_new_fidelity(einsum, options, gen):
    """By name, by class and by instance: the same values and gradients as the package's exact kernel."""
    fm = FeatureMap(3, dtype=F64, **options)
    reference = QuantumKernel(fm, warn=False)
    x = torch.randn(5, 3, dtype=F64, generator=gen, requires_grad=True)
    y = torch.randn(4, 3, dtype=F64, generator=gen, requires_grad=True)
    expected = reference(x, y)
    (gx, gy) = torch.autograd.grad(expected.sin().sum(), (x, y))
    for choice in (einsum, EinsumFidelity, EinsumFidelity(fm)):
        kernel = QuantumKernel(fm, choice, warn=False)
        assert isinstance(kernel.fidelity, EinsumFidelity)
        assert kernel.is_product_kernel == reference.is_product_kernel
        values = kernel(x, y)
        torch.testing.assert_close(values, expected, rtol=0, atol=1e-12)
        grads = torch.autograd.grad(values.sin().sum(), (x, y))
        torch.testing.assert_close(grads, (gx, gy), rtol=0, atol=1e-12)
    assert torch.autograd.gradcheck(lambda a, b: QuantumKernel(fm, einsum, warn=False)(a, b), (x, y))


def _outputs_and_grads(model: QKLSTM, x: torch.Tensor, fused: bool) -> list[torch.Tensor]:
    for cell in model.cells:
        cell.fused = fused
    model.zero_grad()
    x = x.detach().clone().requires_grad_()
    out, (h, c) = model(x)
    (out.sin().sum() + (h * c).sum()).backward()
    return [out, h, c, x.grad, *(p.grad for p in model.parameters())]


def _graph_has(output: torch.Tensor, name: str) -> bool:
    seen, stack = set(), [output.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        if type(fn).__name__ == name:
            return True
        stack.extend(next_fn for next_fn, _ in fn.next_functions)
    return False


@pytest.mark.parametrize("references", ["fixed", "learned"])
def test_qklstm_runs_the_new_fidelity_fused_and_in_the_loop(einsum, references, gen):
    """The fused layer takes the new fidelity's route, the loop its evaluate: equal values and every gradient,
    and both equal the package's own exact kernel on the same parameters."""
    options = dict(num_layers=2, batch_first=True, num_qubits=3, num_references=2, reps=2, references=references,
                   dtype=F64)
    model, package = QKLSTM(3, 4, fidelity=einsum, **options), QKLSTM(3, 4, **options)
    package.load_state_dict(model.state_dict())  # the fidelity holds no state: the same keys
    assert all(isinstance(cell.kernel.fidelity, EinsumFidelity) for cell in model.cells)
    x = torch.randn(2, 5, 3, dtype=F64, generator=gen)
    assert _graph_has(model(x)[0], "FusedQKLSTMLayerBackward")
    fused, loop, own = (_outputs_and_grads(m, x, f) for m, f in ((model, True), (model, False), (package, True)))
    for a, b, c in zip(fused, loop, own):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)
        torch.testing.assert_close(a, c, rtol=0, atol=1e-10)


def test_the_cost_estimate_asks_the_new_fidelity(einsum):
    """The estimate takes circuits per value from the fidelity and the reference side's gradients from the model."""
    fixed = QKLSTM(3, 2, num_layers=2, num_qubits=2, num_references=3, reps=2, fidelity=einsum)
    learned = QKLSTM(3, 2, num_layers=2, num_qubits=2, num_references=3, reps=2, fidelity=einsum, references="learned")
    p = fixed.cells[0].kernel.feature_map.num_parameters
    assert sampler_kernels(fixed) == [cell.kernel for cell in fixed.cells]
    assert isa_circuit(fixed) is fixed.cells[0].kernel.fidelity.circuit
    resolved = SimpleNamespace(device=None, name="einsum-test", kind="aer", shots=10)
    batches = [(2, 3), (1, 4)]  # (N_b, L_b)
    values = 2 * (2 * 3 + 1 * 4) * 4 * 3  # K·Σ_b N_b·L_b·G·R kernel values
    for model, shifted in ((fixed, p), (learned, 2 * p)):
        load = kernel_load(model, training=True)
        assert (load.num_layers, load.num_references, load.shift_parameters) == (2, 3, shifted)
        est = estimate_model_cost(model, batches, resolved, training=True, epochs=2)
        assert est.forward_circuits == 2 * values and est.backward_circuits == 2 * values * 2 * shifted
        inference = estimate_model_cost(model, batches, resolved, training=False)
        assert (inference.forward_circuits, inference.backward_circuits) == (values, 0)


def test_the_backend_evaluation_compares_the_new_fidelity_with_the_exact_kernel(einsum, gen):
    """The evaluation's comparison hook sits on any device fidelity and checks every value it computes
    against the map's exact kernel: an exact new fidelity differs by rounding only, a biased one by its bias."""
    model = QKLSTM(3, 4, num_qubits=3, num_references=2, reps=2, fidelity=einsum, dtype=F64)
    x = torch.randn(6, 2, 3, dtype=F64, generator=gen)  # (L, N, in)
    comparison = KernelComparison(sampler_kernels(model))
    try:
        with torch.no_grad(), comparison.batch(0):
            model.cells[0].fused = False  # the hook sees each step's kernel call
            model(x)
    finally:
        comparison.remove()
    summary = comparison.summary()
    assert summary["kernel_values"] == 6 * 2 * 4 * 2  # L·N·G·R
    assert summary["kernel_max_abs_diff"] < 1e-12

    class Biased(EinsumFidelity):
        def evaluate(self, ax, reference):
            return super().evaluate(ax, reference) * 0.9

    biased = QKLSTM(3, 4, num_qubits=3, num_references=2, reps=2, fidelity=Biased, dtype=F64)
    biased.load_state_dict(model.state_dict())
    comparison = KernelComparison(sampler_kernels(biased))
    try:
        with torch.no_grad(), comparison.batch(0):
            biased.cells[0].fused = False
            biased(x)
    finally:
        comparison.remove()
    assert comparison.summary()["kernel_mean_diff"] < -1e-3  # k·0.9 − k < 0 on average


def test_a_fidelity_name_must_be_registered():
    with pytest.raises(ValueError, match=r"make_fidelity: expected a fidelity in \(.*'statevector'.*\), got 'nope'"):
        QuantumKernel(FeatureMap(2), "nope")
    with pytest.raises(ValueError, match="QuantumKernel: expected either fidelity or sampler, got both"):
        QuantumKernel(FeatureMap(2), "statevector", sampler=object())


class ZerosFrequencyFidelity(Fidelity):
    """Compute-uncompute on a sampler written here, without qiskit-machine-learning: one PUB of every pair's
    angles ``[x, y]`` against ``U(x)U†(y)``, ``k`` the frequency of the all-zeros outcome (inference only)."""

    calls = 0

    def __init__(self, feature_map: FeatureMap, sampler, *, pass_manager=None) -> None:
        super().__init__(feature_map)
        circuit = feature_map.fidelity_circuit()[0]
        self.sampler, self.circuit = sampler, circuit if pass_manager is None else pass_manager.run(circuit)

    @property
    def is_product(self) -> bool:
        return False

    def evaluate(self, ax: torch.Tensor, reference: Reference) -> torch.Tensor:
        type(self).calls += 1
        ay = reference.angles.to(ax.dtype)
        n, m = ax.size(0), ay.size(0)
        values = torch.cat([ax[:, None, :].expand(n, m, -1), ay[None, :, :].expand(n, m, -1)], dim=-1)  # x[·], y[·]
        bits = self.sampler.run([(self.circuit, values.detach().double().numpy())]).result()[0].data.meas
        zeros = (bits.array == 0).all(axis=-1).mean(axis=-1)  # (N, M): P̂(0…0)
        return torch.as_tensor(zeros, dtype=ax.dtype)

    def circuits(self) -> tuple[QuantumCircuit, ...]:
        return (self.circuit,)

    def cost(self, *, differentiate_y: bool = False) -> FidelityCost:
        return FidelityCost(forward=1)


class BiasedZerosFidelity(ZerosFrequencyFidelity):
    def evaluate(self, ax: torch.Tensor, reference: Reference) -> torch.Tensor:
        return super().evaluate(ax, reference) * 0.9


@pytest.mark.shots
def test_a_whole_backend_evaluation_runs_on_the_new_fidelity(request, tmp_path):
    """``evaluate_checkpoint(sampling=Sampling(fidelity=name))`` builds the checkpoint's kernels on a fidelity
    registered here: its jobs are journaled and estimated like compute-uncompute's, its kernels are unbiased
    (signed mean within 5 standard errors of the shot noise) and a biased variant is caught."""
    from qk_lstm_qiskit.config import load_config
    from qk_lstm_qiskit.evaluation.backend import evaluate_checkpoint
    from qk_lstm_qiskit.evaluation.options import Sampling
    from qk_lstm_qiskit.training.experiment import run_training

    for name, cls in (("zeros-frequency", ZerosFrequencyFidelity), ("biased-zeros", BiasedZerosFidelity)):
        register_fidelity(name)(cls)
        request.addfinalizer(lambda name=name: fidelity_module.FIDELITIES.pop(name))  # registered for this test only
    run_training(load_config(overrides={"train": {"epochs": 4}}), tmp_path / "run", progress=False)
    shots = 256
    bound = 5 * 0.5 / (shots * 160) ** 0.5  # 5 standard errors of the mean of 160 values, var <= 1/(4 shots)

    ZerosFrequencyFidelity.calls = 0
    metrics = evaluate_checkpoint(tmp_path / "run" / "model.pt", "aer", out_dir=tmp_path / "eval",
                                  sampling=Sampling(shots, seed=1, fidelity="zeros-frequency"))
    assert ZerosFrequencyFidelity.calls > 0
    assert metrics["kernel_values"] == metrics["estimate"]["circuits"] == 144  # 9 tokens x 16 (no padded step)
    assert metrics["jobs_submitted"] == metrics["estimate"]["jobs"] == 5
    assert abs(metrics["kernel_mean_diff"]) < bound < metrics["kernel_mean_abs_diff"]
    assert (tmp_path / "eval" / "jobs.jsonl").is_file()

    biased = evaluate_checkpoint(tmp_path / "run" / "model.pt", "aer", out_dir=tmp_path / "biased",
                                 sampling=Sampling(shots, seed=1, fidelity="biased-zeros"))
    assert biased["kernel_mean_diff"] < -bound

    with pytest.raises(ValueError, match=r"sampling.fidelity .*got 'nope'"):
        evaluate_checkpoint(tmp_path / "run" / "model.pt", "aer", out_dir=tmp_path / "no",
                            sampling=Sampling(shots, fidelity="nope"))
    assert not (tmp_path / "no").exists()
