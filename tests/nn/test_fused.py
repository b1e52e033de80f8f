"""The fused QK-LSTM layer (product and statevector routes) equals the per-step loop: values and all gradients;
both run the one LSTM update (nn/update.py)."""

from __future__ import annotations

import itertools

import pytest
import torch

from qk_lstm_qiskit.circuits.library import FeatureMapSpec
from qk_lstm_qiskit.nn.cell import REFERENCE_MODES, WEIGHTINGS, QKLSTMCell
from qk_lstm_qiskit.circuits.feature_map import FeatureMap, PaperFeatureMap
from qk_lstm_qiskit.kernels.kernel import QuantumKernel
from qk_lstm_qiskit.kernels.routes import MAX_STATEVECTOR_QUBITS, ProductRoute, StatevectorRoute, _exclusive_prod
from qk_lstm_qiskit.kernels.shift import ParameterShiftFidelity
from qk_lstm_qiskit.kernels.statevector import FourierBloch
from qk_lstm_qiskit.nn import update
from qk_lstm_qiskit.nn.fused import FusedQKLSTMLayer, fused_layer
from qk_lstm_qiskit.nn.lstm import QKLSTM

F64 = torch.float64


def route_of(kernel: QuantumKernel):
    """The route the kernel's fidelity provides against two references (``None``: the per-step loop)."""
    return kernel.route(kernel.prepare(torch.zeros(2, kernel.num_features, dtype=F64)))


def expansion(kernel: QuantumKernel) -> FourierBloch:
    return FourierBloch.of(kernel.fidelity.executor.product_form(F64))


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


def assert_fused_equals_loop(model: QKLSTM, x: torch.Tensor, hx: tuple[torch.Tensor, torch.Tensor], atol: float) -> dict:
    """The model runs the fused layer, and its outputs and gradients equal the per-step loop's; returns the gradients."""
    assert uses_fused(model, x)
    values, grads = outputs_and_grads(model, x, hx, fused=True)
    loop_values, loop_grads = outputs_and_grads(model, x, hx, fused=False)
    assert_same(values, loop_values, atol)
    assert_same(grads, loop_grads, atol)
    return grads


@pytest.mark.parametrize("weighting, references", list(itertools.product(WEIGHTINGS, REFERENCE_MODES)))
def test_fused_equals_loop_float64(weighting, references, gen):
    model = QKLSTM(3, 5, num_layers=2, batch_first=True, num_qubits=3, num_references=2,
                   weighting=weighting, references=references, dtype=F64)
    x = torch.randn(4, 6, 3, dtype=F64, generator=gen)  # (N, L, in)
    if references == "data":
        model.init_references_from_data(x, generator=gen)
    hx = tuple(torch.randn(2, 4, 5, dtype=F64, generator=gen) for _ in range(2))
    grads = assert_fused_equals_loop(model, x, hx, 1e-10)
    if references == "learned":
        assert grads["cells.0.references"].abs().max() > 0 and grads["cells.1.references"].abs().max() > 0


@pytest.mark.parametrize("weighting", WEIGHTINGS)
def test_fused_equals_loop_unbatched_and_sequence_first(weighting, gen):
    model = QKLSTM(2, 3, num_layers=2, num_qubits=2, num_references=3, weighting=weighting,
                   references="learned", input_scaling=0.7, dtype=F64)
    for x, state in ((torch.randn(5, 2, dtype=F64, generator=gen), (2, 3)),  # unbatched (L, in)
                     (torch.randn(5, 3, 2, dtype=F64, generator=gen), (2, 3, 3))):  # (L, N, in)
        hx = tuple(torch.randn(state, dtype=F64, generator=gen) for _ in range(2))
        assert_fused_equals_loop(model, x, hx, 1e-10)


@pytest.mark.parametrize("reps", [2])
def test_fused_equals_loop_product_kernel_with_repetitions(reps, gen):
    model = QKLSTM(3, 4, batch_first=True, num_qubits=2, num_references=2, reps=reps, entanglement="none",
                   weighting="per_gate", references="learned", dtype=F64)
    x = torch.randn(3, 4, 3, dtype=F64, generator=gen)
    hx = tuple(torch.randn(1, 3, 4, dtype=F64, generator=gen) for _ in range(2))
    assert_fused_equals_loop(model, x, hx, 1e-10)


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
    cell = QKLSTMCell(2, 3, feature_map=FeatureMapSpec(num_qubits=2, input_scaling=0.8), num_references=2, weighting=weighting, dtype=F64)
    by = cell.prepare().prepared.detach()
    bloch = expansion(cell.kernel)

    def layer(xp, h0, c0, w_h, alpha, beta, by):
        return FusedQKLSTMLayer.apply(xp, h0, c0, w_h, alpha, beta, ProductRoute(cell.kernel.feature_map, bloch, by), by)

    inputs = (
        torch.randn(4, 2, 2, dtype=F64, generator=gen), torch.randn(2, 3, dtype=F64, generator=gen),
        torch.randn(2, 3, dtype=F64, generator=gen), cell.projection.weight[:, :3].detach(),
        cell.weight.detach(), cell.bias.detach(), by,
    )
    inputs = tuple(t.clone().requires_grad_() for t in inputs)
    assert torch.autograd.gradcheck(layer, inputs, atol=1e-8, rtol=1e-6)


@pytest.mark.parametrize("reps, entanglement, layers", [
    (2, "linear", 0), (3, "linear", 0), (2, "circular", 0), (2, "full", 0), (3, "full", 0), (1, "linear", 1),
])
def test_statevector_route_gradcheck(reps, entanglement, layers, gen):
    """gradcheck of the fused layer on the statevector route: inputs, references' states, circuit weights."""
    cell = QKLSTMCell(2, 3, feature_map=FeatureMapSpec(num_qubits=3, reps=reps, entanglement=entanglement, trainable_layers=layers), num_references=2, weighting="per_gate", dtype=F64, warn=False)
    kernel = cell.kernel
    assert isinstance(route_of(kernel), StatevectorRoute)
    executor = kernel.fidelity.executor
    states = executor.statevectors(cell.prepare().angles.detach(), drop_constant_tail=True)
    weights = tuple(p for p in kernel.feature_map.parameters() if p.requires_grad)
    assert len(weights) == (1 if layers else 0)
    if weights:
        with torch.no_grad():
            weights[0].normal_(generator=gen)

    def layer(xp, h0, c0, w_h, alpha, beta, states, *weights):
        route = StatevectorRoute(executor, kernel.feature_map, states)
        return FusedQKLSTMLayer.apply(xp, h0, c0, w_h, alpha, beta, route, states, *weights)

    inputs = (
        torch.randn(3, 2, 3, dtype=F64, generator=gen), torch.randn(2, 3, dtype=F64, generator=gen),
        torch.randn(2, 3, dtype=F64, generator=gen), cell.projection.weight[:, :3].detach(),
        cell.weight.detach(), cell.bias.detach(), states,
    )
    inputs = tuple(t.clone().requires_grad_() for t in inputs) + weights
    assert torch.autograd.gradcheck(layer, inputs, atol=1e-8, rtol=1e-6)


STATEVECTOR_MODELS = {
    "paper reps 2": {"reps": 2},
    "paper reps 3 circular": {"reps": 3, "entanglement": "circular"},
    "zz reps 2 full": {"feature_map": "zz", "reps": 2, "entanglement": "full", "input_scaling": 0.3},
    "trainable layer and bandwidths": {"trainable_layers": 1, "trainable_scaling": True, "reps": 2},
    "paper, trainable bandwidth (a product kernel)": {"trainable_scaling": True},
}


@pytest.mark.parametrize("options", STATEVECTOR_MODELS.values(), ids=STATEVECTOR_MODELS.keys())
@pytest.mark.parametrize("weighting, references", [("paper", "learned"), ("per_gate", "data"), ("per_gate", "fixed")])
def test_statevector_route_equals_loop_float64(options, weighting, references, gen):
    model = QKLSTM(3, 4, num_layers=2, batch_first=True, num_qubits=3, num_references=2, weighting=weighting,
                   references=references, dtype=F64, **options)
    with torch.no_grad():  # trainable circuit weights start at 0: move every parameter off its initial value
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, dtype=F64, generator=gen))
    x = torch.randn(3, 5, 3, dtype=F64, generator=gen)
    if references == "data":
        model.init_references_from_data(x, generator=gen)
    hx = tuple(torch.randn(2, 3, 4, dtype=F64, generator=gen) for _ in range(2))
    assert all(isinstance(route_of(cell.kernel), StatevectorRoute) for cell in model.cells)
    grads = assert_fused_equals_loop(model, x, hx, 1e-10)
    trainable = [name for name in grads if "feature_map" in name or "references" in name]
    assert all(grads[name].abs().max() > 0 for name in trainable)


def test_statevector_route_float32_and_chunked_jacobian(gen):
    """float32 (complex64 states) against float64; a memory limit that forces one row per Jacobian chunk."""
    model = QKLSTM(4, 6, batch_first=True, num_qubits=4, num_references=3, reps=2, references="learned")
    x = torch.randn(5, 7, 4, generator=gen)
    hx = tuple(torch.randn(1, 5, 6, generator=gen) for _ in range(2))
    values, grads = outputs_and_grads(model, x, hx, fused=True)
    wide = QKLSTM(4, 6, batch_first=True, num_qubits=4, num_references=3, reps=2, references="learned",
                  dtype=F64)
    wide.load_state_dict({k: v.double() for k, v in model.state_dict().items()})
    for cell in wide.cells:
        executor = cell.kernel.fidelity.executor
        executor.memory_limit = executor.state_bytes(8 * 4, F64)  # one row × q directions
    wide_values, wide_grads = outputs_and_grads(wide, x.double(), tuple(t.double() for t in hx), fused=True)
    assert values["out"].dtype == torch.float32
    assert_same({k: v.double() for k, v in values.items()}, wide_values, 1e-5)
    assert_same({k: v.double() for k, v in grads.items()}, wide_grads, 1e-4)


@pytest.mark.parametrize("reps, entanglement", [(1, "linear"), (1, "full"), (2, "none"), (3, "none")])
def test_fourier_expansion_reproduces_product_bloch(reps, entanglement):
    kernel = QuantumKernel(FeatureMap(3, reps, entanglement, dtype=F64))
    values = kernel.feature_map.angles(torch.randn(7, 3, dtype=F64) * 2)  # (B, P)
    bloch = expansion(kernel)
    modes = torch.cos(values @ bloch.arg_map + bloch.arg_shift)
    expected = kernel.fidelity.executor.product_bloch(values).permute(2, 0, 1).reshape(7, -1)  # (B, (n, 3))
    torch.testing.assert_close(modes @ bloch.to_bloch, expected, rtol=0, atol=1e-12)


def test_exclusive_product_with_zero_factors():
    factors = torch.rand(5, 4, 3, dtype=F64)
    factors[0, 1] = 0.0
    factors[1, 2:] = 0.0
    expected = torch.stack([torch.cat([factors[:, :q], factors[:, q + 1 :]], 1).prod(1) for q in range(4)], 1)
    torch.testing.assert_close(_exclusive_prod(factors), expected, rtol=0, atol=1e-15)


def test_unsupported_kernels_run_the_loop(gen):
    """The sampler path, the parameter-shift reference and large entangling kernels keep the per-step loop."""
    from qiskit_machine_learning.primitives import QMLSampler

    sampled = QKLSTM(3, 4, batch_first=True, num_qubits=2, num_references=2, sampler=QMLSampler(shots=None), dtype=F64)
    large = QKLSTM(3, 4, batch_first=True, num_qubits=MAX_STATEVECTOR_QUBITS + 1, num_references=1, reps=2, dtype=F64)
    shift = QKLSTM(3, 4, batch_first=True, num_qubits=2, num_references=2, reps=2, dtype=F64)
    shift.cells[0].kernel.fidelity = ParameterShiftFidelity(shift.cells[0].kernel.feature_map)
    for model in (sampled, large, shift):
        assert route_of(model.cells[0].kernel) is None
        assert not uses_fused(model, torch.randn(2, 3, 3, dtype=F64, generator=gen))


def test_routes_of_product_kernels():
    """A product kernel takes the Fourier route unless the map has trainable weights or too many slot angles."""
    assert isinstance(route_of(QuantumKernel(FeatureMap(3, dtype=F64), warn=False)), ProductRoute)
    trainable = QuantumKernel(FeatureMap(3, trainable_scaling=True, dtype=F64), warn=False)
    assert isinstance(route_of(trainable), StatevectorRoute)
    many_slots = QuantumKernel(FeatureMap(2, reps=3, entanglement="none", dtype=F64), warn=False)
    assert isinstance(route_of(many_slots), StatevectorRoute)


def test_fused_layer_returns_all_hidden_states_and_last_cell_state(gen):
    cell = QKLSTMCell(2, 3, feature_map=FeatureMapSpec(num_qubits=2), num_references=2, dtype=F64)
    x = torch.randn(4, 5, 2, dtype=F64, generator=gen)
    h0, c0 = torch.zeros(5, 3, dtype=F64), torch.zeros(5, 3, dtype=F64)
    weight = cell.projection.weight
    xp = torch.nn.functional.linear(x, weight[:, 3:], cell.projection.bias)
    hs, c = fused_layer(cell.kernel.route(cell.prepare()), xp, h0, c0, weight[:, :3], cell.weight, cell.bias)
    h, c_loop = h0, c0
    for t in range(4):
        h, c_loop = cell.step(x[t], h, c_loop, cell.prepare())
        torch.testing.assert_close(hs[t], h, rtol=0, atol=1e-12)
    torch.testing.assert_close(c, c_loop, rtol=0, atol=1e-12)


class _ShiftedEncoding(PaperFeatureMap):
    """A feature map whose encoding differs from the paper's (still one feature per qubit)."""

    def angles(self, x: torch.Tensor) -> torch.Tensor:
        return super().angles(x) * 0.7 + torch.sin(x).repeat(*([1] * (x.dim() - 1)), 2 * self.reps)


def test_fused_layer_uses_the_feature_maps_encoding(gen):
    """The fused layer has no encoding of its own: change FeatureMap.angles and it follows (values and gradients)."""
    model = QKLSTM(3, 4, batch_first=True, num_qubits=3, num_references=2, references="learned", dtype=F64)
    cell = model.cells[0]
    cell.kernel.feature_map = _ShiftedEncoding(3, dtype=F64)
    assert route_of(cell.kernel) is not None
    x = torch.randn(2, 5, 3, dtype=F64, generator=gen)
    hx = tuple(torch.randn(1, 2, 4, dtype=F64, generator=gen) for _ in range(2))
    assert_fused_equals_loop(model, x, hx, 1e-10)
    paper = QKLSTM(3, 4, batch_first=True, num_qubits=3, num_references=2, references="learned", dtype=F64)
    paper.load_state_dict(model.state_dict())
    assert (paper(x, hx)[0] - model(x, hx)[0]).abs().max() > 1e-3  # the encodings really differ


class _Mixing(PaperFeatureMap):
    """A product circuit whose angles mix features: not qubit-local, so no Fourier route."""

    def angles(self, x):
        return super().angles(x + x.roll(1, -1))


def test_feature_map_mixing_features_takes_the_statevector_route(gen):
    kernel = QuantumKernel(_Mixing(3, dtype=F64))
    assert kernel.is_product_kernel and isinstance(route_of(kernel), StatevectorRoute)
    model = QKLSTM(3, 4, batch_first=True, num_qubits=3, num_references=2, references="learned", dtype=F64)
    model.cells[0].kernel.feature_map = _Mixing(3, dtype=F64)
    x = torch.randn(2, 5, 3, dtype=F64, generator=gen)
    hx = tuple(torch.randn(1, 2, 4, dtype=F64, generator=gen) for _ in range(2))
    assert_fused_equals_loop(model, x, hx, 1e-10)


def test_routes_are_immutable_once_built():
    route = route_of(QuantumKernel(FeatureMap(2, dtype=F64), warn=False))
    with pytest.raises(AttributeError, match="ProductRoute: a route is immutable once built"):
        route.by = torch.zeros(2, 3, 2, dtype=F64)


def test_the_fused_layer_and_the_cells_share_one_lstm_update(gen, monkeypatch):
    """Both paths run nn.update.lstm_update: replace it by another update and both follow it, still equal (a copy
    of the update in either path would keep the old values there and fail)."""
    model = QKLSTM(3, 4, batch_first=True, num_qubits=3, num_references=2, references="learned", dtype=F64)
    x = torch.randn(2, 5, 3, dtype=F64, generator=gen)
    hx = tuple(torch.randn(1, 2, 4, dtype=F64, generator=gen) for _ in range(2))
    assert uses_fused(model, x)
    before = model(x, hx)[0]
    original = update.lstm_update

    def variant(z, c, **options):  # another recurrence: half the forget pre-activation, a leaky cell state
        return original(z * z.new_tensor([1.0, 0.5, 1.0, 1.0]).view(4, 1), 0.9 * c, **options)

    monkeypatch.setattr(update, "lstm_update", variant)
    fused, _ = outputs_and_grads_forward(model, x, hx, fused=True)
    loop, _ = outputs_and_grads_forward(model, x, hx, fused=False)
    assert_same(fused, loop, 1e-12)
    assert (fused["out"] - before).abs().max() > 1e-3  # the replacement really ran


def outputs_and_grads_forward(model: QKLSTM, x: torch.Tensor, hx, fused: bool):
    set_fused(model, fused)
    with torch.no_grad():
        out, (h, c) = model(x, hx)
    return {"out": out, "h": h, "c": c}, None
