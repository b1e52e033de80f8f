"""GatedCell / QKLSTMCell: the nn.LSTMCell contract, a torch-only reference step, gradients, errors."""

from __future__ import annotations


import pytest
import torch
from torch import nn
from torch.func import functional_call

from qk_lstm_qiskit.circuits.library import FeatureMapSpec
from qk_lstm_qiskit.nn.cell import NUM_GATES, REFERENCE_MODES, WEIGHTINGS, GatedCell, QKLSTMCell

from _assertions import raises_one_line

F64 = torch.float64




class LinearGatedCell(GatedCell):
    """GatedCell with classical gates W [h; x] + b: must be exactly nn.LSTMCell."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size)
        self.linear = nn.Linear(hidden_size + input_size, 4 * hidden_size, dtype=F64)

    def gates(self, v: torch.Tensor, prepared=None) -> torch.Tensor:
        return self.linear(v).reshape(-1, 4, self.hidden_size)

    @classmethod
    def from_lstm_cell(cls, ref: nn.LSTMCell) -> "LinearGatedCell":
        cell = cls(ref.input_size, ref.hidden_size)
        with torch.no_grad():
            cell.linear.weight.copy_(torch.cat([ref.weight_hh, ref.weight_ih], dim=1))  # v = [h; x]
            cell.linear.bias.copy_(ref.bias_ih + ref.bias_hh)
        return cell


# --------------------------------------------------------------------------- torch-only reference
def one_qubit_states(u: torch.Tensor) -> torch.Tensor:
    """RZ(arctan u²) RY(arctan u) H|0> for every entry of ``u`` → ``(..., 2)`` complex128."""
    a, b = torch.atan(u).double(), torch.atan(u * u).double()
    s = 2**-0.5
    c0 = s * (torch.cos(a / 2) - torch.sin(a / 2))  # RY(a) H|0>, amplitude of |0>
    c1 = s * (torch.sin(a / 2) + torch.cos(a / 2))
    phase = torch.polar(torch.ones_like(b), b / 2)
    return torch.stack([c0 * phase.conj(), c1 * phase], dim=-1)


def product_kernel(u: torch.Tensor, refs: torch.Tensor) -> torch.Tensor:
    """k(u_n, r_m) = Π_q |<φ(r_mq)|φ(u_nq)>|²: ``(N, q)``, ``(M, q)`` → ``(N, M)``."""
    su, sr = one_qubit_states(u), one_qubit_states(refs)  # (N, q, 2), (M, q, 2)
    overlap = torch.einsum("mqa,nqa->nmq", sr.conj(), su)
    return overlap.abs().square().prod(-1)


def reference_step(cell: QKLSTMCell, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
    """Eq. 3 written out: project, kernel per gate, weights, then the LSTM update (torch order i, f, g, o)."""
    u = torch.cat([h, x], dim=-1) @ cell.projection.weight.t() + cell.projection.bias
    z = []
    for g in range(NUM_GATES):
        k = product_kernel(u, cell.references[g])  # (N, R)
        weight = cell.weight if cell.weighting == "paper" else cell.weight[g]
        bias = cell.bias if cell.weighting == "paper" else cell.bias[g]
        z.append(k @ weight.t() + bias)
    i, f, gg, o = z
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(gg)
    return torch.sigmoid(o) * torch.tanh(c_new), c_new


@pytest.mark.parametrize("weighting", WEIGHTINGS)
@pytest.mark.parametrize("references", REFERENCE_MODES)
def test_cell_equals_torch_only_reference_step(weighting, references, gen):
    cell = QKLSTMCell(5, 3, feature_map=FeatureMapSpec(num_qubits=4), num_references=3, weighting=weighting, references=references, dtype=F64)
    x = torch.randn(4, 5, dtype=F64, generator=gen)
    h, c = torch.randn(4, 3, dtype=F64, generator=gen), torch.randn(4, 3, dtype=F64, generator=gen)
    h1, c1 = cell(x, (h, c))
    rh, rc = reference_step(cell, x, h, c)
    torch.testing.assert_close(h1, rh, atol=1e-12, rtol=0)
    torch.testing.assert_close(c1, rc, atol=1e-12, rtol=0)
    assert (h1 - cell(x, (h, c.flip(0)))[0]).abs().max() > 1e-3  # the state matters


def test_gate_order_is_torch_i_f_g_o(gen):
    """Only the forget gate multiplies c: with i → 0 (z_i = -inf) c_1 = σ(z_f) c_0 exactly."""
    cell = QKLSTMCell(2, 2, feature_map=FeatureMapSpec(num_qubits=2), num_references=1, weighting="per_gate", dtype=F64)
    with torch.no_grad():
        cell.weight.zero_()
        cell.bias.copy_(torch.tensor([[-1e4, -1e4], [0.3, -0.2], [0.0, 0.0], [0.0, 0.0]], dtype=F64))
    c0 = torch.tensor([[1.5, -2.0]], dtype=F64)
    _, c1 = cell(torch.zeros(1, 2, dtype=F64), (torch.zeros(1, 2, dtype=F64), c0))
    torch.testing.assert_close(c1, torch.sigmoid(torch.tensor([[0.3, -0.2]], dtype=F64)) * c0, atol=1e-12, rtol=0)


# --------------------------------------------------------------------------- the nn.LSTMCell contract
def test_gated_cell_update_is_exactly_nn_lstm_cell(gen):
    ref = nn.LSTMCell(5, 3, dtype=F64)
    cell = LinearGatedCell.from_lstm_cell(ref)
    x = torch.randn(4, 5, dtype=F64, generator=gen)
    hx = (torch.randn(4, 3, dtype=F64, generator=gen), torch.randn(4, 3, dtype=F64, generator=gen))
    for args in ((x,), (x, hx), (x[0],), (x[0], (hx[0][0], hx[1][0]))):
        for ours, theirs in zip(cell(*args), ref(*args)):
            assert ours.shape == theirs.shape
            torch.testing.assert_close(ours, theirs, atol=1e-12, rtol=0)


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("with_hx", [True, False])
def test_shapes_match_nn_lstm_cell(batched, with_hx, gen):
    ref, cell = nn.LSTMCell(8, 6), QKLSTMCell(8, 6)
    x = torch.randn(*((3,) if batched else ()), 8, generator=gen)
    hx = None
    if with_hx:
        hx = (torch.randn(*x.shape[:-1], 6, generator=gen), torch.randn(*x.shape[:-1], 6, generator=gen))
    ours, theirs = cell(x, hx), ref(x, hx)
    assert isinstance(ours, tuple) and len(ours) == 2
    assert [t.shape for t in ours] == [t.shape for t in theirs]
    assert all(t.dtype == torch.float32 for t in ours)


def test_default_state_is_zeros_on_input_dtype(gen):
    cell = QKLSTMCell(4, 3, feature_map=FeatureMapSpec(num_qubits=2), dtype=F64)
    x = torch.randn(2, 4, dtype=F64, generator=gen)
    zeros = torch.zeros(2, 3, dtype=F64)
    h1, c1 = cell(x)
    assert h1.dtype == c1.dtype == F64
    torch.testing.assert_close(h1, cell(x, (zeros, zeros))[0], atol=0, rtol=0)
    torch.testing.assert_close(c1, cell(x, (zeros, zeros))[1], atol=0, rtol=0)
    # unbatched equals row 0 of the batch
    torch.testing.assert_close(cell(x[0])[0], h1[0], atol=1e-15, rtol=0)


def test_float64_cell_has_float64_parameters_and_buffers():
    cell = QKLSTMCell(4, 3, feature_map=FeatureMapSpec(trainable_scaling=True), dtype=F64)
    assert {t.dtype for t in cell.state_dict().values()} == {F64}
    assert cell.kernel.feature_map.scaling.dtype == F64


@pytest.mark.parametrize("weighting", WEIGHTINGS)
@pytest.mark.parametrize("references", REFERENCE_MODES)
def test_parameters_registered_by_name(weighting, references):
    cell = QKLSTMCell(8, 6, weighting=weighting, references=references)
    names = dict(cell.named_parameters())
    expected = {"projection.weight", "projection.bias", "weight", "bias"} | ({"references"} if references == "learned" else set())
    assert set(names) == expected
    assert cell.weight.shape == ((6, 4) if weighting == "paper" else (4, 6, 4))
    assert "references" in cell.state_dict()
    # paper weighting: Linear(14 → 4) + Linear(4 → 6) = 60 + 30 (Table I, NOTES.md)
    if weighting == "paper" and references != "learned":
        assert sum(p.numel() for p in cell.parameters()) == 90


def test_reset_parameters_redraws_within_linear_bounds():
    cell = QKLSTMCell(8, 6, num_references=4)
    before = {k: v.clone() for k, v in cell.state_dict().items()}
    cell.reset_parameters()
    after = cell.state_dict()
    redrawn = {k for k in before if not torch.equal(before[k], after[k])}
    assert redrawn == set(before) - {"kernel.feature_map.scaling"}  # the fixed bandwidth stays 1
    assert cell.weight.abs().max() <= 0.5 and cell.bias.abs().max() <= 0.5  # U(-1/√R, 1/√R)
    assert "num_qubits=4" in repr(cell) and "weighting='paper'" in repr(cell)


def test_set_references_accepts_both_shapes(gen):
    cell = QKLSTMCell(3, 2, feature_map=FeatureMapSpec(num_qubits=2), num_references=3, references="data", dtype=F64)
    flat = torch.randn(12, 2, dtype=F64, generator=gen)
    cell.set_references(flat)
    torch.testing.assert_close(cell.references, flat.reshape(4, 3, 2), atol=0, rtol=0)
    cell.set_references(flat.reshape(4, 3, 2) * 2)
    torch.testing.assert_close(cell.references, 2 * flat.reshape(4, 3, 2), atol=0, rtol=0)


# --------------------------------------------------------------------------- gradients
def gradcheck_cell(cell: GatedCell, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> bool:
    """gradcheck w.r.t. input, h, c and every parameter of the cell (functional call)."""
    names = [n for n, _ in cell.named_parameters()]
    params = [p.detach().clone().requires_grad_(True) for _, p in cell.named_parameters()]

    def f(x, h, c, *params):
        return functional_call(cell, dict(zip(names, params)), (x, (h, c)))

    inputs = [t.detach().clone().requires_grad_(True) for t in (x, h, c)]
    return torch.autograd.gradcheck(f, (*inputs, *params))


@pytest.mark.parametrize("weighting", WEIGHTINGS)
@pytest.mark.parametrize("references", REFERENCE_MODES)
def test_gradcheck_qklstm_cell(weighting, references, gen):
    cell = QKLSTMCell(3, 2, feature_map=FeatureMapSpec(num_qubits=2), num_references=2, weighting=weighting, references=references, dtype=F64)
    if references == "data":
        cell.set_references(torch.randn(8, 2, dtype=F64, generator=gen))
    x = torch.randn(2, 3, dtype=F64, generator=gen)
    h, c = torch.randn(2, 2, dtype=F64, generator=gen), torch.randn(2, 2, dtype=F64, generator=gen)
    assert gradcheck_cell(cell, x, h, c)


def test_gradcheck_qklstm_cell_entangled_with_trainable_scaling(gen):
    cell = QKLSTMCell(3, 2, feature_map=FeatureMapSpec(num_qubits=3, reps=2, entanglement="circular", trainable_scaling=True), num_references=1, references="learned", dtype=F64)
    assert "kernel.feature_map.scaling" in dict(cell.named_parameters())
    x = torch.randn(2, 3, dtype=F64, generator=gen)
    h, c = torch.randn(2, 2, dtype=F64, generator=gen), torch.randn(2, 2, dtype=F64, generator=gen)
    assert gradcheck_cell(cell, x, h, c)


# --------------------------------------------------------------------------- errors
def test_bad_input_raises_one_line_errors():
    cell = QKLSTMCell(8, 6)
    with raises_one_line(ValueError, r"QKLSTMCell: expected input.size\(-1\) == 8, got 5"):
        cell(torch.zeros(2, 5))
    with raises_one_line(ValueError, r"QKLSTMCell: expected input.size\(-1\) == 8, got 5"):
        cell(torch.zeros(5))
    with raises_one_line(ValueError, r"QKLSTMCell: expected input of 1 or 2 dimensions, got 3"):
        cell(torch.zeros(1, 2, 8))
    for bad, shown in ((float("nan"), "nan"), (float("inf"), "inf"), (float("-inf"), "-inf")):
        x = torch.zeros(2, 8)
        x[1, 3] = bad
        with raises_one_line(ValueError, rf"QKLSTMCell: expected finite values in input, got {shown}"):
            cell(x)


def test_wrong_hx_shapes_raise_with_expected_and_actual():
    cell = QKLSTMCell(8, 6)
    x, good = torch.zeros(2, 8), torch.zeros(2, 6)
    with raises_one_line(ValueError, r"QKLSTMCell: expected hx\[0\] of shape \(2, 6\), got \(3, 6\)"):
        cell(x, (torch.zeros(3, 6), good))
    with raises_one_line(ValueError, r"QKLSTMCell: expected hx\[1\] of shape \(2, 6\), got \(2, 5\)"):
        cell(x, (good, torch.zeros(2, 5)))
    with raises_one_line(ValueError, r"QKLSTMCell: expected hx\[0\] of shape \(2, 6\), got \(6,\)"):
        cell(x, (torch.zeros(6), good))
    # unbatched input: the message shows the caller's shapes, not internal ones
    with raises_one_line(ValueError, r"QKLSTMCell: expected hx\[0\] of shape \(6,\), got \(5,\)"):
        cell(torch.zeros(8), (torch.zeros(5), torch.zeros(6)))
    with raises_one_line(ValueError, r"QKLSTMCell: expected hx\[1\] of shape \(6,\), got \(1, 6\)"):
        cell(torch.zeros(8), (torch.zeros(6), torch.zeros(1, 6)))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"num_qubits": 0}, ValueError, r"FeatureMap: expected num_qubits >= 1, got 0"),
        ({"num_references": 0}, ValueError, r"QKLSTMCell: expected num_references >= 1, got 0"),
        ({"num_references": 2.0}, TypeError, r"QKLSTMCell: expected num_references to be an int, got float"),
        ({"weighting": "shared"}, ValueError, r"QKLSTMCell: expected weighting in \('paper', 'per_gate'\), got 'shared'"),
        ({"references": "random"}, ValueError,
         r"QKLSTMCell: expected references in \('fixed', 'learned', 'data'\), got 'random'"),
        ({"reps": 0}, ValueError, r"FeatureMap: expected reps >= 1, got 0"),
        ({"entanglement": "ring"}, ValueError, r"FeatureMap: expected entanglement in .*got 'ring'"),
        ({"input_size": 0}, ValueError, r"QKLSTMCell: expected input_size >= 1, got 0"),
        ({"hidden_size": 1.5}, TypeError, r"QKLSTMCell: expected hidden_size to be an int, got float"),
    ],
)
def test_bad_constructor_arguments_raise(kwargs, error, match):
    args = {"input_size": 8, "hidden_size": 6, **kwargs}
    map_options = {k: args.pop(k) for k in ("num_qubits", "reps", "entanglement") if k in args}
    with raises_one_line(error, match):
        QKLSTMCell(args.pop("input_size"), args.pop("hidden_size"), feature_map=FeatureMapSpec(**map_options), **args)


def test_a_feature_map_that_is_neither_spec_nor_map_is_refused():
    with raises_one_line(TypeError, "QKLSTMCell: expected feature_map to be a FeatureMapSpec or a FeatureMap, got str"):
        QKLSTMCell(8, 6, feature_map="zz")


def test_bad_references_raise():
    cell = QKLSTMCell(8, 6, num_references=2, references="data")
    with raises_one_line(ValueError, r"QKLSTMCell: expected references of shape \(4, 2, 4\), got \(3, 4\)"):
        cell.set_references(torch.zeros(3, 4))
    with raises_one_line(ValueError, r"QKLSTMCell: expected references of shape \(4, 2, 4\), got \(4, 8\)"):
        cell.set_references(torch.zeros(4, 8))
    bad = torch.zeros(8, 4)
    bad[0, 0] = float("nan")
    with raises_one_line(ValueError, r"QKLSTMCell: expected finite values in references, got nan"):
        cell.set_references(bad)
