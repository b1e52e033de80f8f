"""The VQC-based QLSTM baseline (Chen, Yoo, Fang 2020), run by the same exact executor."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .cell import NUM_GATES, GatedCell
from ..circuits.feature_map import PaperFeatureMap
from ..circuits.vqc import vqc_circuit
from .lstm import RecurrentStack
from ..kernels.statevector import StatevectorExecutor
from ..validation import check_dtype, check_int

__all__ = ["QLSTMCell", "QLSTM"]


class QLSTMCell(GatedCell):
    """QLSTM cell: one variational circuit per gate between two classical layers.

    .. math::
        u_t = P [h_{t-1}; x_t] + p, \\qquad
        z^{g}_t = W_{out} \\big(\\langle Z_q \\rangle_{VQC_g(u_t)}\\big)_{q=1..n} + b_{out}

    ``VQC_g`` = the paper's angle embedding (H, RY(arctan u), RZ(arctan u²), CNOTs) then
    :func:`vqc_circuit`'s trainable rotations, with its own weights per gate; Pauli-Z
    expectations are read from exact probabilities. The output layer is shared by the gates.

    Args:
        input_size, hidden_size: as ``nn.LSTMCell``.
        num_qubits: qubits per VQC (default 4). depth: variational layers (default 1).

    Shape: as :class:`GatedCell`.
    """

    z_signs: torch.Tensor  # (2^n, n) buffer: <Z_q> of each basis state

    def __init__(
        self, input_size: int, hidden_size: int, *, num_qubits: int = 4, depth: int = 1, memory_limit: int | None = None,
        device: torch.device | str | None = None, dtype: torch.dtype | None = None,
    ) -> None:
        check_dtype("QLSTMCell", dtype)
        super().__init__(input_size, hidden_size)
        check_int("QLSTMCell", "depth", depth, 1)
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        self.feature_map = PaperFeatureMap(num_qubits, **factory)
        circuit, weights = vqc_circuit(self.feature_map, depth)
        self.executor = StatevectorExecutor(circuit, [*self.feature_map.parameters_order, *weights],
                                           memory_limit=memory_limit)
        self.projection = nn.Linear(input_size + hidden_size, num_qubits, **factory)
        self.vqc_weights = nn.Parameter(torch.empty(NUM_GATES, len(weights), **factory))  # (4, 3·n·depth)
        self.output = nn.Linear(num_qubits, hidden_size, **factory)
        index = torch.arange(2**num_qubits)
        z_signs = 1.0 - 2.0 * ((index[:, None] >> torch.arange(num_qubits)) & 1)  # (2^n, n): <Z_q> per basis state
        self.register_buffer("z_signs", z_signs.to(**factory), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Rotations ~ U(0, 2π); classical layers as ``nn.Linear``."""
        self.projection.reset_parameters()
        self.output.reset_parameters()
        nn.init.uniform_(self.vqc_weights, 0.0, 2 * math.pi)

    def gates(self, v: torch.Tensor, prepared: None = None) -> torch.Tensor:
        angles = self.feature_map.angles(self.projection(v))  # (N, 2n)
        batch = angles.size(0)
        values = torch.cat(
            [
                angles.unsqueeze(0).expand(NUM_GATES, -1, -1),
                self.vqc_weights.unsqueeze(1).expand(-1, batch, -1),
            ],
            dim=-1,
        ).reshape(NUM_GATES * batch, -1)  # (4N, 2n + 3n·depth): all four VQCs in one call
        expectations = self.executor.probabilities(values) @ self.z_signs  # (4N, n)
        z = self.output(expectations.reshape(NUM_GATES, batch, -1))  # (4, N, H)
        return z.transpose(0, 1)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, num_qubits={self.feature_map.num_qubits}"


class QLSTM(RecurrentStack):
    """VQC-QLSTM baseline with the ``nn.LSTM`` contract (see :class:`RecurrentStack`)."""

    def __init__(
        self, input_size: int, hidden_size: int, *, num_layers: int = 1, batch_first: bool = False,
        num_qubits: int = 4, depth: int = 1, **factory,
    ) -> None:
        def make_cell(size: int, layer: int) -> QLSTMCell:
            return QLSTMCell(size, hidden_size, num_qubits=num_qubits, depth=depth, **factory)

        super().__init__(make_cell, input_size, hidden_size, num_layers, batch_first)
