"""RecurrentStack / QKLSTM: the nn.LSTM contract, equivalence with nn.LSTM, BPTT gradients, errors."""

from __future__ import annotations

import copy
import re

import pytest
import torch
from torch import nn
from torch.func import functional_call

from qk_lstm_qiskit.nn.cell import REFERENCE_MODES, WEIGHTINGS, GatedCell
from qk_lstm_qiskit.nn.lstm import QKLSTM, RecurrentStack

from _assertions import raises_one_line

F64 = torch.float64




class LinearGatedCell(GatedCell):
    """Classical gates W [h; x] + b: a RecurrentStack of these must be exactly nn.LSTM."""

    def __init__(self, input_size: int, hidden_size: int, weights: tuple[torch.Tensor, ...]) -> None:
        super().__init__(input_size, hidden_size)
        w_ih, w_hh, b_ih, b_hh = weights
        self.linear = nn.Linear(hidden_size + input_size, 4 * hidden_size, dtype=w_ih.dtype)
        with torch.no_grad():
            self.linear.weight.copy_(torch.cat([w_hh, w_ih], dim=1))  # v = [h; x]
            self.linear.bias.copy_(b_ih + b_hh)

    def gates(self, v: torch.Tensor, prepared=None) -> torch.Tensor:
        return self.linear(v).reshape(-1, 4, self.hidden_size)


def stack_like(lstm: nn.LSTM) -> RecurrentStack:
    def make_cell(size: int, layer: int) -> GatedCell:
        weights = tuple(getattr(lstm, f"{n}_l{layer}") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
        return LinearGatedCell(size, lstm.hidden_size, weights)

    return RecurrentStack(make_cell, lstm.input_size, lstm.hidden_size, lstm.num_layers, lstm.batch_first)


def small_qklstm(**kwargs) -> QKLSTM:
    options = {"num_qubits": 2, "num_references": 2, "dtype": F64, **kwargs}
    input_size, hidden_size = options.pop("input_size", 3), options.pop("hidden_size", 2)
    return QKLSTM(input_size, hidden_size, **options)


# --------------------------------------------------------------------------- equivalence with nn.LSTM
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_recurrent_stack_of_linear_cells_is_exactly_nn_lstm(batch_first, num_layers, gen):
    lstm = nn.LSTM(4, 3, num_layers=num_layers, batch_first=batch_first, dtype=F64)
    stack = stack_like(lstm)
    x = torch.randn(2, 5, 4, dtype=F64, generator=gen)  # (N, L) or (L, N) by interpretation
    hx = (torch.randn(num_layers, 5 if not batch_first else 2, 3, dtype=F64, generator=gen),) * 2
    hx = (hx[0], torch.randn_like(hx[0]))
    unbatched_hx = (hx[0][:, 0], hx[1][:, 0])
    cases = [(x,), (x, hx), (x[0],), (x[0], unbatched_hx)] if batch_first else [(x,), (x, hx), (x[:, 0],)]
    for args in cases:
        (out, (h, c)), (ref_out, (ref_h, ref_c)) = stack(*args), lstm(*args)
        for ours, theirs in ((out, ref_out), (h, ref_h), (c, ref_c)):
            assert ours.shape == theirs.shape
            torch.testing.assert_close(ours, theirs, atol=1e-12, rtol=0)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("with_hx", [True, False])
def test_shapes_and_conventions_match_nn_lstm(batch_first, num_layers, batched, with_hx, gen):
    ref = nn.LSTM(8, 6, num_layers=num_layers, batch_first=batch_first)
    model = QKLSTM(8, 6, num_layers=num_layers, batch_first=batch_first)
    n, length = 3, 4
    shape = ((n, length) if batch_first else (length, n)) if batched else (length,)
    x = torch.randn(*shape, 8, generator=gen)
    hx = None
    if with_hx:
        state = (num_layers, n, 6) if batched else (num_layers, 6)  # whatever batch_first is
        hx = (torch.randn(*state, generator=gen), torch.randn(*state, generator=gen))
    out, (h, c) = model(x, hx)
    ref_out, (ref_h, ref_c) = ref(x, hx)
    assert out.shape == ref_out.shape and h.shape == ref_h.shape and c.shape == ref_c.shape
    assert out.dtype == h.dtype == c.dtype == torch.float32
    # the last output step is the top layer's h_n
    last = out[..., -1, :] if (batch_first or not batched) else out[-1]
    torch.testing.assert_close(last, h[-1], atol=0, rtol=0)


def test_empty_batch_like_nn_lstm():
    model, ref = QKLSTM(8, 6, num_layers=2), nn.LSTM(8, 6, num_layers=2)
    x = torch.zeros(3, 0, 8)  # L = 3, N = 0
    out, (h, c) = model(x)
    ref_out, (ref_h, ref_c) = ref(x)
    assert (out.shape, h.shape, c.shape) == (ref_out.shape, ref_h.shape, ref_c.shape) == ((3, 0, 6), (2, 0, 6), (2, 0, 6))


def test_batch_first_and_unbatched_are_the_same_computation(gen):
    model = small_qklstm(num_layers=2)
    batch_first = small_qklstm(num_layers=2, batch_first=True)
    batch_first.load_state_dict(model.state_dict())
    x = torch.randn(4, 3, 3, dtype=F64, generator=gen)  # (L, N, in)
    out, (h, c) = model(x)
    out_bf, (h_bf, c_bf) = batch_first(x.transpose(0, 1))
    torch.testing.assert_close(out_bf.transpose(0, 1), out, atol=0, rtol=0)
    torch.testing.assert_close((h_bf, c_bf), (h, c), atol=0, rtol=0)
    out_1, (h_1, c_1) = model(x[:, 1])
    torch.testing.assert_close(out_1, out[:, 1], atol=1e-14, rtol=0)
    torch.testing.assert_close((h_1, c_1), (h[:, 1], c[:, 1]), atol=1e-14, rtol=0)


def test_two_layers_equal_the_cells_unrolled_by_hand(gen):
    model = small_qklstm(num_layers=2)
    x = torch.randn(5, 2, 3, dtype=F64, generator=gen)
    h0, c0 = torch.randn(2, 2, 2, dtype=F64, generator=gen), torch.randn(2, 2, 2, dtype=F64, generator=gen)
    out, (h_n, c_n) = model(x, (h0, c0))
    layer_input = x
    for layer, cell in enumerate(model.cells):
        h, c, outputs = h0[layer], c0[layer], []
        for t in range(x.size(0)):
            h, c = cell(layer_input[t], (h, c))  # the public nn.LSTMCell-style call
            outputs.append(h)
        layer_input = torch.stack(outputs)
        torch.testing.assert_close((h_n[layer], c_n[layer]), (h, c), atol=0, rtol=0)
    torch.testing.assert_close(out, layer_input, atol=0, rtol=0)


def test_zero_initial_states_on_input_dtype(gen):
    model = small_qklstm(num_layers=2)
    x = torch.randn(3, 2, 3, dtype=F64, generator=gen)
    out, (h, c) = model(x)
    assert out.dtype == h.dtype == c.dtype == F64
    zeros = torch.zeros(2, 2, 2, dtype=F64)
    out_z, (h_z, c_z) = model(x, (zeros, zeros))
    torch.testing.assert_close((out, h, c), (out_z, h_z, c_z), atol=0, rtol=0)


def test_float64_model_has_only_float64_tensors():
    model = QKLSTM(8, 6, num_layers=2, dtype=F64, trainable_scaling=True, references="learned")
    assert {t.dtype for t in model.state_dict().values()} == {F64}


@pytest.mark.parametrize("weighting", WEIGHTINGS)
@pytest.mark.parametrize("references", REFERENCE_MODES)
def test_state_dict_round_trip_gives_identical_outputs(weighting, references, gen):
    kwargs = dict(num_layers=2, batch_first=True, weighting=weighting, references=references, trainable_scaling=True)
    torch.manual_seed(1)
    model = QKLSTM(8, 6, **kwargs)
    with torch.no_grad():
        model.cells[0].kernel.feature_map.scaling.mul_(0.7)  # not the default: must travel too
    x = torch.randn(2, 5, 8, generator=gen)
    if references == "data":
        model.init_references_from_data(x, generator=gen)
    torch.manual_seed(2)
    fresh = QKLSTM(8, 6, **kwargs)
    assert not torch.equal(fresh(x)[0], model(x)[0])
    fresh.load_state_dict(model.state_dict())
    out, (h, c) = model(x)
    out_f, (h_f, c_f) = fresh(x)
    assert torch.equal(out, out_f) and torch.equal(h, h_f) and torch.equal(c, c_f)
    assert "num_layers=2, batch_first=True" in repr(model)


# --------------------------------------------------------------------------- gradients
def gradcheck_model(model: nn.Module, x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, fast: bool = False) -> bool:
    names = [n for n, _ in model.named_parameters()]
    params = [p.detach().clone().requires_grad_(True) for _, p in model.named_parameters()]

    def f(x, h0, c0, *params):
        out, (h, c) = functional_call(model, dict(zip(names, params)), (x, (h0, c0)))
        return out, h, c

    inputs = [t.detach().clone().requires_grad_(True) for t in (x, h0, c0)]
    return torch.autograd.gradcheck(f, (*inputs, *params), fast_mode=fast)


@pytest.mark.parametrize("weighting", WEIGHTINGS)
@pytest.mark.parametrize("references", REFERENCE_MODES)
def test_gradcheck_qklstm(weighting, references, gen):
    model = small_qklstm(weighting=weighting, references=references, num_references=1)
    x = torch.randn(3, 2, 3, dtype=F64, generator=gen)
    if references == "data":
        model.init_references_from_data(x, generator=gen)
    h0, c0 = torch.randn(1, 2, 2, dtype=F64, generator=gen), torch.randn(1, 2, 2, dtype=F64, generator=gen)
    assert gradcheck_model(model, x, h0, c0)


def test_gradcheck_two_layer_batch_first_entangled_qklstm(gen):
    model = small_qklstm(num_layers=2, batch_first=True, reps=2, num_references=1, trainable_scaling=True)
    x = torch.randn(2, 3, 3, dtype=F64, generator=gen)  # (N, L, in)
    h0, c0 = torch.randn(2, 2, 2, dtype=F64, generator=gen), torch.randn(2, 2, 2, dtype=F64, generator=gen)
    assert gradcheck_model(model, x, h0, c0, fast=True)  # random-direction checks; one layer gets the full Jacobian above


@pytest.mark.parametrize("num_layers", [1, 2])
def test_gradients_reach_the_first_time_step_and_the_initial_state(num_layers, gen):
    model = QKLSTM(4, 3, num_layers=num_layers, num_qubits=3, dtype=F64)
    x = torch.randn(6, 2, 4, dtype=F64, generator=gen, requires_grad=True)
    h0 = torch.randn(num_layers, 2, 3, dtype=F64, generator=gen, requires_grad=True)
    c0 = torch.randn(num_layers, 2, 3, dtype=F64, generator=gen, requires_grad=True)
    out, _ = model(x, (h0, c0))
    out[-1].sum().backward()
    assert x.grad[0].abs().min() > 0, "d out[-1] / d input[0] vanished"
    assert x.grad[0].abs().max() > 1e-8
    for layer in range(num_layers):
        assert h0.grad[layer].abs().max() > 1e-8 and c0.grad[layer].abs().max() > 1e-8
    # sanity: the gradient at step 0 is the finite difference of out[-1]
    eps, delta = 1e-6, torch.zeros_like(x)
    delta[0, 1, 2] = eps
    with torch.no_grad():
        fd = (model(x + delta, (h0, c0))[0][-1].sum() - model(x - delta, (h0, c0))[0][-1].sum()) / (2 * eps)
    torch.testing.assert_close(x.grad[0, 1, 2], fd, atol=1e-8, rtol=1e-6)


# --------------------------------------------------------------------------- references from data
@pytest.mark.parametrize("length, batch", [(6, 3), (2, 1)])  # enough time steps / too few (with replacement)
def test_init_references_from_data_uses_projected_inputs(length, batch, gen):
    """The references are u_t = P [h_{t-1}; x_t] + p of a run of the model as it was before the call."""
    model = QKLSTM(3, 2, num_layers=2, num_qubits=2, num_references=2, references="data", dtype=F64)
    before = copy.deepcopy(model)
    x = torch.randn(length, batch, 3, dtype=F64, generator=gen)
    model.init_references_from_data(x, generator=gen)
    assert not torch.equal(before.cells[0].references, model.cells[0].references)
    layer_input = x
    for cell, new in zip(before.cells, model.cells):
        h = c = torch.zeros(batch, 2, dtype=F64)
        pool, outputs = [], []
        with torch.no_grad():
            for t in range(length):
                pool.append(cell.projection(torch.cat([h, layer_input[t]], dim=-1)))
                h, c = cell(layer_input[t], (h, c))
                outputs.append(h)
        pool = torch.cat(pool)
        refs = new.references.reshape(-1, 2)
        distance = torch.cdist(refs, pool).min(dim=1).values
        assert distance.max() < 1e-12
        if len(pool) >= len(refs):
            assert len({tuple(r.tolist()) for r in refs}) == len(refs)  # drawn without replacement
        layer_input = torch.stack(outputs)


def test_init_references_from_data_checks_its_input():
    model = QKLSTM(8, 6, references="data")
    expected = r"QKLSTM.init_references_from_data: expected a non-empty input of 2 or 3 dimensions with size\(-1\) == 8"
    for bad in (torch.zeros(3, 2, 5), torch.zeros(0, 2, 8), torch.zeros(8), torch.zeros(1, 3, 2, 8)):
        with raises_one_line(ValueError, rf"{expected}, got shape {re.escape(str(tuple(bad.shape)))}"):
            model.init_references_from_data(bad)
    with raises_one_line(ValueError, r"QKLSTM.init_references_from_data: expected finite values in input, got nan"):
        model.init_references_from_data(torch.full((3, 2, 8), float("nan")))


# --------------------------------------------------------------------------- errors
def test_bad_input_raises_one_line_errors():
    model = QKLSTM(8, 6, num_layers=2)
    with raises_one_line(ValueError, r"QKLSTM: expected input.size\(-1\) == 8, got 5"):
        model(torch.zeros(4, 2, 5))
    with raises_one_line(ValueError, r"QKLSTM: expected input of 2 \(unbatched\) or 3 dimensions, got 4"):
        model(torch.zeros(1, 4, 2, 8))
    with raises_one_line(ValueError, r"QKLSTM: expected input of 2 \(unbatched\) or 3 dimensions, got 1"):
        model(torch.zeros(8))
    for bad, shown in ((float("nan"), "nan"), (float("inf"), "inf"), (float("-inf"), "-inf")):
        x = torch.zeros(4, 2, 8)
        x[3, 1, 0] = bad
        with raises_one_line(ValueError, rf"QKLSTM: expected finite values in input, got {shown}"):
            model(x)


@pytest.mark.parametrize("batch_first", [False, True])
def test_empty_sequence_raises(batch_first):
    model = QKLSTM(8, 6, batch_first=batch_first)
    empty = torch.zeros(2, 0, 8) if batch_first else torch.zeros(0, 2, 8)
    with raises_one_line(ValueError, r"QKLSTM: expected a non-empty sequence, got length 0"):
        model(empty)
    with raises_one_line(ValueError, r"QKLSTM: expected a non-empty sequence, got length 0"):
        model(torch.zeros(0, 8))


def test_wrong_state_shapes_raise_with_expected_and_actual():
    model = QKLSTM(8, 6, num_layers=2, batch_first=True)
    x = torch.zeros(3, 4, 8)  # N = 3
    good = torch.zeros(2, 3, 6)
    with raises_one_line(ValueError, r"QKLSTM: expected h_0 of shape \(2, 3, 6\), got \(1, 3, 6\)"):
        model(x, (torch.zeros(1, 3, 6), good))
    # h and c stay (num_layers, N, H) with batch_first: (N, num_layers, H) is refused
    with raises_one_line(ValueError, r"QKLSTM: expected h_0 of shape \(2, 3, 6\), got \(3, 2, 6\)"):
        model(x, (torch.zeros(3, 2, 6), good))
    with raises_one_line(ValueError, r"QKLSTM: expected c_0 of shape \(2, 3, 6\), got \(2, 3, 5\)"):
        model(x, (good, torch.zeros(2, 3, 5)))
    # unbatched: the message shows the caller's shapes
    with raises_one_line(ValueError, r"QKLSTM: expected h_0 of shape \(2, 6\), got \(6,\)"):
        model(torch.zeros(4, 8), (torch.zeros(6), torch.zeros(2, 6)))
    with raises_one_line(ValueError, r"QKLSTM: expected c_0 of shape \(2, 6\), got \(1, 6\)"):
        model(torch.zeros(4, 8), (torch.zeros(2, 6), torch.zeros(1, 6)))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"num_layers": 0}, ValueError, r"QKLSTM: expected num_layers >= 1, got 0"),
        ({"num_layers": 1.0}, TypeError, r"QKLSTM: expected num_layers to be an int, got float"),
        ({"num_qubits": 0}, ValueError, r"FeatureMap: expected num_qubits >= 1, got 0"),
        ({"num_references": 0}, ValueError, r"QKLSTMCell: expected num_references >= 1, got 0"),
        ({"weighting": "global"}, ValueError, r"QKLSTMCell: expected weighting in \('paper', 'per_gate'\), got 'global'"),
        ({"references": "kmeans"}, ValueError,
         r"QKLSTMCell: expected references in \('fixed', 'learned', 'data'\), got 'kmeans'"),
        ({"hidden_size": 0}, ValueError, r"QKLSTMCell: expected hidden_size >= 1, got 0"),
    ],
)
def test_bad_constructor_arguments_raise(kwargs, error, match):
    args = {"input_size": 8, "hidden_size": 6, **kwargs}
    with raises_one_line(error, match):
        QKLSTM(args.pop("input_size"), args.pop("hidden_size"), **args)
