"""Multi-layer recurrences over :class:`GatedCell` s with the ``nn.LSTM`` contract; QK-LSTM."""

from __future__ import annotations

from dataclasses import fields
from typing import Callable, cast

import torch
from torch import nn

from ..circuits.library import FeatureMapSpec
from ..kernels.kernel import warn_if_product
from .cell import GatedCell, QKLSTMCell
from ..validation import check_finite, check_int, check_pair, check_tensor

__all__ = ["RecurrentStack", "QKLSTM"]

_MAP_OPTIONS = {f.name for f in fields(FeatureMapSpec)} - {"kind", "num_qubits"}


class RecurrentStack(nn.Module):
    """``num_layers`` gated cells unrolled over time, called like ``nn.LSTM``.

    ``forward(input, hx=None) -> (output, (h_n, c_n))``; each layer is its cell's
    :meth:`~GatedCell.run_sequence` (the unrolled loop, back-propagated by torch autograd, or
    a fused layer with its own backward).

    Shape:
        ``input``: ``(L, N, H_in)`` (``(N, L, H_in)`` if ``batch_first``) or unbatched ``(L, H_in)``;
        ``hx``: ``(h_0, c_0)``, each ``(num_layers, N, H)`` or ``(num_layers, H)`` whatever ``batch_first``.
        ``output``: ``(L, N, H)`` (``(N, L, H)`` if ``batch_first``) or ``(L, H)``.
    """

    def __init__(
        self, make_cell: Callable[[int, int], GatedCell], input_size: int, hidden_size: int,
        num_layers: int, batch_first: bool,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        check_int(owner, "num_layers", num_layers, 1)
        self.input_size, self.hidden_size = input_size, hidden_size
        self.num_layers, self.batch_first = num_layers, batch_first
        self.cells = nn.ModuleList(make_cell(input_size if layer == 0 else hidden_size, layer) for layer in range(num_layers))

    def _layers(self) -> list[GatedCell]:
        """The cells, first layer first (``self.cells`` as the type checker sees it)."""
        return [cast(GatedCell, cell) for cell in self.cells]

    def forward(
        self, input: torch.Tensor, hx: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        owner = type(self).__name__
        check_tensor(owner, "input", input, dtypes=(self._layers()[0].dtype,), finite=False)
        if input.dim() not in (2, 3):
            raise ValueError(f"{owner}: expected input of 2 (unbatched) or 3 dimensions, got {input.dim()}")
        if input.size(-1) != self.input_size:
            raise ValueError(f"{owner}: expected input.size(-1) == {self.input_size}, got {input.size(-1)}")
        unbatched = input.dim() == 2
        x = input.unsqueeze(1) if unbatched else (input.transpose(0, 1) if self.batch_first else input)  # (L, N, in)
        if x.size(0) == 0:
            raise ValueError(f"{owner}: expected a non-empty sequence, got length 0")
        check_finite(owner, "input", x)
        state_shape = (self.num_layers, x.size(1), self.hidden_size)
        if hx is None:
            h0 = c0 = x.new_zeros(state_shape)
        else:
            h0, c0 = check_pair(owner, "hx", hx)
            for name, t in (("h_0", h0), ("c_0", c0)):
                check_tensor(owner, name, t, dtypes=(input.dtype,))
            h0, c0 = (t.unsqueeze(1) if unbatched else t for t in (h0, c0))
            for name, t in (("h_0", h0), ("c_0", c0)):
                if t.shape != state_shape:
                    expected = (self.num_layers, self.hidden_size) if unbatched else state_shape
                    actual = tuple(t.squeeze(1).shape) if unbatched else tuple(t.shape)  # the caller's shape
                    raise ValueError(f"{owner}: expected {name} of shape {expected}, got {actual}")
        if x.size(1) == 0:  # an empty batch, as nn.LSTM: empty outputs and states
            output = x.new_zeros(x.size(0), 0, self.hidden_size)
            empty = x.new_zeros(state_shape)
            return (output.transpose(0, 1) if self.batch_first else output), (empty, empty.clone())
        hs, cs = [], []
        for layer, cell in enumerate(self._layers()):
            x, h, c = cell.run_sequence(x, h0[layer], c0[layer])  # x: (L, N, H)
            hs.append(h)
            cs.append(c)
        h_n, c_n = torch.stack(hs), torch.stack(cs)  # (num_layers, N, H)
        if unbatched:
            return x.squeeze(1), (h_n.squeeze(1), c_n.squeeze(1))
        return (x.transpose(0, 1) if self.batch_first else x), (h_n, c_n)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, batch_first={self.batch_first}"


class QKLSTM(RecurrentStack):
    """Quantum-kernel LSTM: :class:`QKLSTMCell` layers with the ``nn.LSTM`` call contract.

    Args:
        input_size, hidden_size, num_layers, batch_first: as ``nn.LSTM``.
        num_qubits, num_references: per cell (defaults 4 and 4, the paper's).
        feature_map: the map's kind (``"paper"`` default, ``"zz"``, ``"z"``, ``"pauli"``) with its options
            among ``**options`` (``reps``, ``entanglement``, ``paulis``, ``trainable_layers``, ``input_scaling``,
            ``trainable_scaling``), or a whole :class:`~qk_lstm_qiskit.circuits.library.FeatureMapSpec`.
        **options: the map's options and the rest of :class:`QKLSTMCell`'s (``weighting``, ``references``,
            ``fidelity``, ``sampler``, ``pass_manager``, ``memory_limit``, ``device``, ``dtype``).

    Shape: see :class:`RecurrentStack`.

    Example:
        >>> model = QKLSTM(8, 6, batch_first=True)
        >>> out, (h, c) = model(torch.randn(2, 5, 8))
        >>> out.shape, h.shape
        (torch.Size([2, 5, 6]), torch.Size([1, 2, 6]))
    """

    def __init__(
        self, input_size: int, hidden_size: int, *, num_layers: int = 1, batch_first: bool = False,
        num_qubits: int = 4, num_references: int = 4, feature_map: str | FeatureMapSpec = "paper", **options,
    ) -> None:
        if isinstance(feature_map, FeatureMapSpec):
            spec = feature_map
        else:
            spec = FeatureMapSpec(feature_map, num_qubits, **{k: options.pop(k) for k in list(options) if k in _MAP_OPTIONS})

        def make_cell(size: int, layer: int) -> QKLSTMCell:
            return QKLSTMCell(size, hidden_size, feature_map=spec, num_references=num_references, warn=False, **options)

        super().__init__(make_cell, input_size, hidden_size, num_layers, batch_first)
        warn_if_product(type(self).__name__, [cast(QKLSTMCell, cell).kernel for cell in self.cells])  # once per model

    @torch.no_grad()
    def init_references_from_data(self, input: torch.Tensor, *, generator: torch.Generator | None = None) -> None:
        """Set every layer's references to projected inputs ``u_t`` sampled from ``input``.

        Runs the model on ``input`` (shape as :meth:`RecurrentStack.forward`) and draws ``4·R`` of its
        time-step vectors per layer without replacement (with replacement if too few).
        """
        owner = f"{type(self).__name__}.init_references_from_data"
        if input.dim() not in (2, 3) or input.size(-1) != self.input_size or input.numel() == 0:
            raise ValueError(
                f"{owner}: expected a non-empty input of 2 or 3 dimensions with size(-1) == {self.input_size}, "
                f"got shape {tuple(input.shape)}"
            )
        check_finite(owner, "input", input)
        x = input.unsqueeze(1) if input.dim() == 2 else (input.transpose(0, 1) if self.batch_first else input)
        for cell in [cast(QKLSTMCell, layer) for layer in self.cells]:
            h = c = x.new_zeros(x.size(1), self.hidden_size)
            projected, outputs = [], []
            for t in range(x.size(0)):
                projected.append(cell.projection(torch.cat([h, x[t]], dim=-1)))
                h, c = cell.step(x[t], h, c)
                outputs.append(h)
            pool = torch.cat(projected)  # (L·N, q)
            needed = cell.references.numel() // cell.num_qubits
            replace = pool.size(0) < needed
            index = (
                torch.randint(pool.size(0), (needed,), generator=generator)
                if replace
                else torch.randperm(pool.size(0), generator=generator)[:needed]
            )
            cell.set_references(pool[index])
            x = torch.stack(outputs)
