"""The VQC-QLSTM baseline: gates against Qiskit Statevector expectations, nn.LSTM contract, gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from qiskit.quantum_info import SparsePauliOp, Statevector
from torch import nn
from torch.func import functional_call

from qk_lstm_qiskit.circuits.feature_map import FeatureMap
from qk_lstm_qiskit.circuits.vqc import vqc_circuit
from qk_lstm_qiskit.nn.qlstm import QLSTM, QLSTMCell

F64 = torch.float64


def reference_gates(cell: QLSTMCell, v: torch.Tensor, depth: int) -> torch.Tensor:
    """z[n, g] = W_out (<Z_q> of VQC_g bound to (arctan u, arctan u², w_g)) + b_out via Qiskit."""
    n = cell.feature_map.num_qubits
    circuit, weights = vqc_circuit(FeatureMap(n), depth)
    fm_params = FeatureMap(n).parameters_order  # same names θ[i]; bind by the circuit's own objects
    theta = [p for p in circuit.parameters if p.name.startswith("θ")]
    assert [p.name for p in theta] == [p.name for p in fm_params]
    observables = [SparsePauliOp.from_sparse_list([("Z", [q], 1.0)], num_qubits=n) for q in range(n)]
    u = (v @ cell.projection.weight.t() + cell.projection.bias).detach().numpy()
    out = np.empty((v.size(0), 4, cell.hidden_size))
    for row, u_row in enumerate(u):
        angles = np.concatenate([np.arctan(u_row), np.arctan(u_row**2)])
        for g in range(4):
            values = {**dict(zip(theta, angles)), **dict(zip(weights, cell.vqc_weights[g].detach().numpy()))}
            state = Statevector(circuit.assign_parameters(values))
            expectations = np.array([state.expectation_value(o).real for o in observables])
            out[row, g] = cell.output.weight.detach().numpy() @ expectations + cell.output.bias.detach().numpy()
    return torch.tensor(out)


@pytest.mark.parametrize("depth", [1, 2])
def test_gates_equal_qiskit_pauli_z_expectations(depth, gen):
    cell = QLSTMCell(5, 3, num_qubits=3, depth=depth, dtype=F64)
    v = torch.randn(2, 8, dtype=F64, generator=gen)  # [h; x]
    torch.testing.assert_close(cell.gates(v), reference_gates(cell, v, depth), atol=1e-12, rtol=0)


def test_parameter_count_and_names():
    cell = QLSTMCell(8, 6)  # projection 14→4 (60) + 4 VQCs × 12 rotations (48) + output 4→6 (30)
    assert sum(p.numel() for p in cell.parameters()) == 138
    assert set(dict(cell.named_parameters())) == {
        "projection.weight", "projection.bias", "vqc_weights", "output.weight", "output.bias"}
    assert "z_signs" not in cell.state_dict()  # derived, non-persistent
    assert QLSTMCell(8, 6, depth=2).vqc_weights.shape == (4, 24)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("batched", [True, False])
def test_shapes_and_conventions_match_nn_lstm(batch_first, batched, gen):
    ref = nn.LSTM(8, 6, num_layers=2, batch_first=batch_first)
    model = QLSTM(8, 6, num_layers=2, batch_first=batch_first)
    shape = ((3, 4) if batch_first else (4, 3)) if batched else (4,)
    x = torch.randn(*shape, 8, generator=gen)
    for hx in (None, tuple(torch.randn(2, *((3,) if batched else ()), 6, generator=gen) for _ in range(2))):
        out, (h, c) = model(x, hx)
        ref_out, (ref_h, ref_c) = ref(x, hx)
        assert (out.shape, h.shape, c.shape) == (ref_out.shape, ref_h.shape, ref_c.shape)
    cell_ref, cell = nn.LSTMCell(8, 6), QLSTMCell(8, 6)
    assert [t.shape for t in cell(x[0])] == [t.shape for t in cell_ref(x[0])]


def test_float64_and_state_dict_round_trip(gen):
    torch.manual_seed(3)
    model = QLSTM(4, 3, num_layers=2, num_qubits=2, batch_first=True, dtype=F64)
    assert {t.dtype for t in model.state_dict().values()} == {F64}
    torch.manual_seed(4)
    fresh = QLSTM(4, 3, num_layers=2, num_qubits=2, batch_first=True, dtype=F64)
    x = torch.randn(2, 5, 4, dtype=F64, generator=gen)
    assert not torch.equal(model(x)[0], fresh(x)[0])
    fresh.load_state_dict(model.state_dict())
    out, (h, c) = model(x)
    assert out.dtype == F64
    out_f, (h_f, c_f) = fresh(x)
    assert torch.equal(out, out_f) and torch.equal(h, h_f) and torch.equal(c, c_f)


def test_gradcheck_qlstm_cell(gen):
    cell = QLSTMCell(3, 2, num_qubits=2, dtype=F64)
    names = [n for n, _ in cell.named_parameters()]
    params = [p.detach().clone().requires_grad_(True) for p in cell.parameters()]
    x, h, c = (torch.randn(2, size, dtype=F64, generator=gen, requires_grad=True) for size in (3, 2, 2))

    def f(x, h, c, *params):
        return functional_call(cell, dict(zip(names, params)), (x, (h, c)))

    assert torch.autograd.gradcheck(f, (x, h, c, *params))


def test_gradcheck_qlstm(gen):
    model = QLSTM(2, 2, num_layers=2, num_qubits=2, batch_first=True, dtype=F64)
    names = [n for n, _ in model.named_parameters()]
    params = [p.detach().clone().requires_grad_(True) for p in model.parameters()]
    x = torch.randn(1, 3, 2, dtype=F64, generator=gen, requires_grad=True)  # (N, L, in)
    h0, c0 = (torch.randn(2, 1, 2, dtype=F64, generator=gen, requires_grad=True) for _ in range(2))

    def f(x, h0, c0, *params):
        out, (h, c) = functional_call(model, dict(zip(names, params)), (x, (h0, c0)))
        return out, h, c

    # fast mode: random-direction Jacobian-vector checks (the cell above gets the full Jacobian)
    assert torch.autograd.gradcheck(f, (x, h0, c0, *params), fast_mode=True)


def test_gradients_reach_the_first_time_step(gen):
    model = QLSTM(3, 2, num_qubits=2, dtype=F64)
    x = torch.randn(6, 1, 3, dtype=F64, generator=gen, requires_grad=True)
    out, _ = model(x)
    out[-1].sum().backward()
    assert x.grad[0].abs().max() > 1e-8


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match=r"QLSTMCell: expected depth >= 1, got 0"):
        QLSTMCell(8, 6, depth=0)
    with pytest.raises(ValueError, match=r"FeatureMap: expected num_qubits >= 1, got 0"):
        QLSTMCell(8, 6, num_qubits=0)
    with pytest.raises(ValueError, match=r"QLSTM: expected num_layers >= 1, got 0"):
        QLSTM(8, 6, num_layers=0)
    model = QLSTM(8, 6)
    with pytest.raises(ValueError, match=r"QLSTM: expected input.size\(-1\) == 8, got 5"):
        model(torch.zeros(3, 2, 5))
    with pytest.raises(ValueError, match=r"QLSTM: expected finite values in input, got nan"):
        model(torch.full((3, 2, 8), float("nan")))
    with pytest.raises(ValueError, match=r"QLSTMCell: expected input.size\(-1\) == 8, got 7"):
        QLSTMCell(8, 6)(torch.zeros(7))
