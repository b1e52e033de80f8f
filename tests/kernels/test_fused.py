"""The fused QK-LSTM layer (exact product kernel) equals the per-step loop: values and all gradients."""

from __future__ import annotations

import itertools

import pytest
import torch

from qk_lstm_qiskit.nn.cell import REFERENCE_MODES, WEIGHTINGS, QKLSTMCell
from qk_lstm_qiskit.circuits.feature_map import FeatureMap
from qk_lstm_qiskit.kernels.fused import (
    FusedQKLSTMLayer,
    _exclusive_prod,
    _expansion,
    fused_layer,
    supports_fused,
)
from qk_lstm_qiskit.kernels.kernel import QuantumKernel
from qk_lstm_qiskit.nn.lstm import QKLSTM

F64 = torch.float64


def set_fused(model: QKLSTM, fused: bool) -> None:
    for cell in model.cells:
        cell.fused = fused


def outputs_and_grads(model: QKLSTM, x: torch.Tensor, hx: tuple[torch.Tensor, torch.Tensor], fused: bool):
    """Outputs, final states and the gradients of a mixed loss w.r.t. x, h_0, c_0 and every parameter."""
    set_fused(model, fused)
    model.zero_grad()
    x, h0, c0 = (t.detach().clone().requires_grad_() for t in (x, *hx))
    out, (h, c) = model(x, (h0, c0))
    loss = out.sin().sum() + (h * h).sum() + (1.3 * c).cos().sum()
    loss.backward()
    grads = {"x": x.grad, "h0": h0.grad, "c0": c0.grad}
    grads.update({name: p.grad for name, p in model.named_parameters()})
    return {"out": out, "h": h, "c": c}, grads


def uses_fused(model: QKLSTM, x: torch.Tensor) -> bool:
    """True when the autograd graph of the output contains the fused layer."""
    set_fused(model, True)
    seen, stack = set(), [model(x.detach().requires_grad_())[0].grad_fn]
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        if type(fn).__name__ == "FusedQKLSTMLayerBackward":
            return True
        stack.extend(next_fn for next_fn, _ in fn.next_functions)
    return False


def assert_same(fused: dict, loop: dict, atol: float) -> None:
    assert fused.keys() == loop.keys()
    for name, expected in loop.items():
        assert expected is not None and fused[name] is not None, name
        torch.testing.assert_close(fused[name], expected, rtol=0, atol=atol, msg=f"{name} differs")


@pytest.mark.parametrize("weighting, references", list(itertools.product(WEIGHTINGS, REFERENCE_MODES)))
def test_fused_equals_loop_float64(weighting, references, gen):
    model = QKLSTM(3, 5, num_layers=2, batch_first=True, num_qubits=3, num_references=2,
                   weighting=weighting, references=references, dtype=F64)
    x = torch.randn(4, 6, 3, dtype=F64, generator=gen)  # (N, L, in)
    if references == "data":
        model.init_references_from_data(x, generator=gen)
    hx = tuple(torch.randn(2, 4, 5, dtype=F64, generator=gen) for _ in range(2))
    assert uses_fused(model, x)
    values, grads = outputs_and_grads(model, x, hx, fused=True)
    loop_values, loop_grads = outputs_and_grads(model, x, hx, fused=False)
    assert_same(values, loop_values, 1e-10)
    assert_same(grads, loop_grads, 1e-10)
    if references == "learned":
        assert grads["cells.0.references"].abs().max() > 0 and grads["cells.1.references"].abs().max() > 0


@pytest.mark.parametrize("weighting", WEIGHTINGS)
def test_fused_equals_loop_unbatched_and_sequence_first(weighting, gen):
    model = QKLSTM(2, 3, num_layers=2, num_qubits=2, num_references=3, weighting=weighting,
                   references="learned", input_scaling=0.7, dtype=F64)
    for x, state in ((torch.randn(5, 2, dtype=F64, generator=gen), (2, 3)),  # unbatched (L, in)
                     (torch.randn(5, 3, 2, dtype=F64, generator=gen), (2, 3, 3))):  # (L, N, in)
        hx = tuple(torch.randn(state, dtype=F64, generator=gen) for _ in range(2))
        assert uses_fused(model, x)
        values, grads = outputs_and_grads(model, x, hx, fused=True)
        loop_values, loop_grads = outputs_and_grads(model, x, hx, fused=False)
        assert_same(values, loop_values, 1e-10)
        assert_same(grads, loop_grads, 1e-10)


@pytest.mark.parametrize("reps", [2])
def test_fused_equals_loop_product_kernel_with_repetitions(reps, gen):
    model = QKLSTM(3, 4, batch_first=True, num_qubits=2, num_references=2, reps=reps, entanglement="none",
                   weighting="per_gate", references="learned", dtype=F64)
    x = torch.randn(3, 4, 3, dtype=F64, generator=gen)
    hx = tuple(torch.randn(1, 3, 4, dtype=F64, generator=gen) for _ in range(2))
    assert uses_fused(model, x)
    values, grads = outputs_and_grads(model, x, hx, fused=True)
    loop_values, loop_grads = outputs_and_grads(model, x, hx, fused=False)
    assert_same(values, loop_values, 1e-10)
    assert_same(grads, loop_grads, 1e-10)


@pytest.mark.parametrize("weighting", WEIGHTINGS)
def test_fused_equals_loop_float32(weighting, gen):
    model = QKLSTM(8, 17, batch_first=True, weighting=weighting, references="learned", dtype=torch.float32)
    x = torch.randn(6, 9, 8, generator=gen)
    hx = tuple(torch.randn(1, 6, 17, generator=gen) for _ in range(2))
    values, grads = outputs_and_grads(model, x, hx, fused=True)
    loop_values, loop_grads = outputs_and_grads(model, x, hx, fused=False)
    assert_same(values, loop_values, 1e-5)
    assert_same(grads, loop_grads, 1e-5)


@pytest.mark.parametrize("weighting", WEIGHTINGS)
def test_fused_layer_gradcheck(weighting, gen):
    cell = QKLSTMCell(2, 3, num_qubits=2, num_references=2, weighting=weighting, input_scaling=0.8, dtype=F64)
    by = cell.prepare().bloch.detach()
    bloch = _expansion(cell.kernel, F64, by.device)
    scaling = cell.kernel.feature_map.scaling

    def layer(xp, h0, c0, w_h, alpha, beta, by):
        return FusedQKLSTMLayer.apply(xp, h0, c0, w_h, alpha, beta, by, scaling, bloch)

    inputs = (
        torch.randn(4, 2, 2, dtype=F64, generator=gen), torch.randn(2, 3, dtype=F64, generator=gen),
        torch.randn(2, 3, dtype=F64, generator=gen), cell.projection.weight[:, :3].detach(),
        cell.weight.detach(), cell.bias.detach(), by,
    )
    inputs = tuple(t.clone().requires_grad_() for t in inputs)
    assert torch.autograd.gradcheck(layer, inputs, atol=1e-8, rtol=1e-6)


@pytest.mark.parametrize("reps, entanglement", [(1, "linear"), (1, "full"), (2, "none"), (3, "none")])
def test_fourier_expansion_reproduces_product_bloch(reps, entanglement):
    kernel = QuantumKernel(FeatureMap(3, reps, entanglement, dtype=F64))
    values = kernel.feature_map.angles(torch.randn(7, 3, dtype=F64) * 2)  # (B, P)
    bloch = _expansion(kernel)
    modes = torch.cos(values[:, : bloch.arg_map.size(0)] @ bloch.arg_map + bloch.arg_shift)
    expected = kernel.executor.product_bloch(values).permute(2, 0, 1).reshape(7, -1)  # (B, (n, 3))
    torch.testing.assert_close(modes @ bloch.to_bloch, expected, rtol=0, atol=1e-12)


def test_exclusive_product_with_zero_factors():
    factors = torch.rand(5, 4, 3, dtype=F64)
    factors[0, 1] = 0.0
    factors[1, 2:] = 0.0
    expected = torch.stack([torch.cat([factors[:, :q], factors[:, q + 1 :]], 1).prod(1) for q in range(4)], 1)
    torch.testing.assert_close(_exclusive_prod(factors), expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize("options", [
    {"trainable_scaling": True},  # a learned bandwidth: not a constant
    {"reps": 2},  # linear entanglement, two layers: an entangling kernel
    {"reps": 3, "entanglement": "none"},  # a product kernel, but 3^8 Fourier modes per qubit
])
def test_unsupported_kernels_run_the_loop(options, gen):
    model = QKLSTM(3, 4, batch_first=True, num_qubits=2, num_references=2, dtype=F64, **options)
    assert not supports_fused(model.cells[0].kernel)
    assert not uses_fused(model, torch.randn(2, 3, 3, dtype=F64, generator=gen))


def test_fused_layer_returns_all_hidden_states_and_last_cell_state(gen):
    cell = QKLSTMCell(2, 3, num_qubits=2, num_references=2, dtype=F64)
    x = torch.randn(4, 5, 2, dtype=F64, generator=gen)
    h0, c0 = torch.zeros(5, 3, dtype=F64), torch.zeros(5, 3, dtype=F64)
    weight = cell.projection.weight
    xp = torch.nn.functional.linear(x, weight[:, 3:], cell.projection.bias)
    hs, c = fused_layer(cell.kernel, xp, h0, c0, weight[:, :3], cell.weight, cell.bias, cell.prepare().bloch)
    h, c_loop = h0, c0
    for t in range(4):
        h, c_loop = cell.step(x[t], h, c_loop, cell.prepare())
        torch.testing.assert_close(hs[t], h, rtol=0, atol=1e-12)
    torch.testing.assert_close(c, c_loop, rtol=0, atol=1e-12)
