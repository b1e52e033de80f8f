"""LSTM cells whose gate pre-activations come from quantum circuits (QK-LSTM, eq. 3)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..circuits.feature_map import FeatureMap
from ..circuits.library import FeatureMapSpec
from ..kernels.kernel import PreparedSide, QuantumKernel, warn_if_product
from ..validation import check_choice, check_dtype, check_finite, check_int, check_pair, check_tensor
from . import update
from .fused import fused_layer

__all__ = ["GatedCell", "QKLSTMCell", "WEIGHTINGS", "REFERENCE_MODES"]

WEIGHTINGS = ("paper", "per_gate")  #: one Linear(R → H) shared by the gates, or one per gate
REFERENCE_MODES = ("fixed", "learned", "data")  #: how the reference vectors are set (see QKLSTMCell)
NUM_GATES = 4  # input, forget, cell candidate, output (torch's i, f, g, o order)
PAPER_MAP = FeatureMapSpec()  # the paper's feature map on 4 qubits: the default of QKLSTMCell


class GatedCell(nn.Module):
    """The LSTM update around gate pre-activations ``z = gates(v)``, ``v = [h_{t-1}; x_t]``.

    .. math::
        i, f, \\tilde C, o = \\sigma(z_i), \\sigma(z_f), \\tanh(z_g), \\sigma(z_o);\\quad
        c_t = f \\odot c_{t-1} + i \\odot \\tilde C;\\quad h_t = o \\odot \\tanh(c_t)

    Subclasses implement :meth:`gates` ``(N, H + input_size) → (N, 4, H)``.
    ``forward(input, hx=None) -> (h_1, c_1)`` follows ``nn.LSTMCell``; it is :meth:`run_sequence`
    of one step, so a stack of cells computes exactly its cells called step by step.

    Shape:
        ``input``: ``(N, input_size)`` or ``(input_size,)``; ``hx``: two ``(N, H)`` or ``(H,)``.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        owner = type(self).__name__
        check_int(owner, "input_size", input_size, 1)
        check_int(owner, "hidden_size", hidden_size, 1)
        self.input_size, self.hidden_size = input_size, hidden_size

    @property
    def dtype(self) -> torch.dtype:
        """The parameters' dtype: inputs and states must have it, as in ``nn.LSTMCell``."""
        return next(self.parameters()).dtype

    def prepare(self) -> Any:
        """Per-sequence constants handed to every :meth:`gates` call (default ``None``)."""
        return None

    def gates(self, v: torch.Tensor, prepared: Any = None) -> torch.Tensor:
        raise NotImplementedError

    def forward(
        self, input: torch.Tensor, hx: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        owner = type(self).__name__
        check_tensor(owner, "input", input, dtypes=(self.dtype,), finite=False)
        if input.dim() not in (1, 2):
            raise ValueError(f"{owner}: expected input of 1 or 2 dimensions, got {input.dim()}")
        if input.size(-1) != self.input_size:
            raise ValueError(f"{owner}: expected input.size(-1) == {self.input_size}, got {input.size(-1)}")
        check_finite(owner, "input", input)
        unbatched = input.dim() == 1
        x = input.unsqueeze(0) if unbatched else input
        if hx is None:
            zeros = x.new_zeros(x.size(0), self.hidden_size)
            h, c = zeros, zeros
        else:
            h, c = check_pair(owner, "hx", hx, ("h_0", "c_0"))
            for name, t in (("hx[0]", h), ("hx[1]", c)):
                check_tensor(owner, name, t, dtypes=(input.dtype,))
            h, c = (t.unsqueeze(0) if unbatched else t for t in (h, c))
            for name, t in (("hx[0]", h), ("hx[1]", c)):
                if t.shape != (x.size(0), self.hidden_size):
                    expected = (self.hidden_size,) if unbatched else (x.size(0), self.hidden_size)
                    actual = tuple(t.squeeze(0).shape) if unbatched else tuple(t.shape)  # the caller's shape
                    raise ValueError(f"{owner}: expected {name} of shape {expected}, got {actual}")
        _, h, c = self.run_sequence(x[None], h, c)  # one step: a sequence of length 1
        return (h.squeeze(0), c.squeeze(0)) if unbatched else (h, c)

    def run_sequence(
        self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Unchecked loop of :meth:`step` over ``x`` ``(L, N, in)`` from ``h, c`` ``(N, H)``.

        Returns the hidden states of all steps ``(L, N, H)`` and the last ``h, c`` ``(N, H)``.
        """
        return self._loop(x, h, c, self.prepare())

    def _loop(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor, prepared: Any
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        outputs = []
        for x_t in x:
            h, c = self.step(x_t, h, c, prepared)
            outputs.append(h)
        return torch.stack(outputs), h, c

    def step(
        self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor, prepared: Any = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One unchecked update on batched tensors: ``x`` ``(N, in)``, ``h, c`` ``(N, H)``."""
        h, c, _, _ = update.lstm_update(self.gates(torch.cat([h, x], dim=-1), prepared), c)  # gates (N, 4, H)
        return h, c


class QKLSTMCell(GatedCell):
    """QK-LSTM cell: each gate is a weighted sum of quantum kernels against reference vectors.

    .. math::
        u_t = P [h_{t-1}; x_t] + p, \\qquad
        z^{g}_t = \\sum_{j=1}^{R} \\alpha^{g}_{j}\\, k(u_t, x^{g}_j) + b^{g},
        \\quad g \\in \\{i, f, C, o\\}

    ``P`` projects ``v_t`` to the ``num_qubits`` features of the feature map; every gate has
    its own ``R`` reference vectors ``x^g_j``. Weighting ``"paper"`` shares one
    ``Linear(R → H)`` (α, b) among the four gates, which gives Table I's 183 parameters;
    ``"per_gate"`` gives each gate its own α and b (eq. 3 literally). All ``4R`` kernels of a
    step are one :class:`QuantumKernel` call.

    Args:
        input_size, hidden_size: as ``nn.LSTMCell``.
        feature_map: a :class:`~qk_lstm_qiskit.circuits.library.FeatureMapSpec` (default: the paper's map on 4
            qubits) or a built :class:`~qk_lstm_qiskit.circuits.feature_map.FeatureMap`.
        num_references: reference vectors per gate, R (default 4).
        weighting: ``"paper"`` (default) or ``"per_gate"``.
        references: ``"fixed"`` (random N(0, 1) buffer, default), ``"learned"`` (parameter), or
            ``"data"`` (buffer set from projected training inputs, see :meth:`set_references`).
        fidelity: how kernels are computed: a registered name or a factory ``feature_map → Fidelity``
            (:class:`~qk_lstm_qiskit.kernels.kernel.QuantumKernel`; default: exact, or the sampler's).
        sampler, pass_manager: evaluate kernels on a Qiskit ``BaseSamplerV2`` (default exact).
        memory_limit: bytes the exact executor may allocate per call (default: a fraction of the available memory).
        warn: warn once when the kernel is a product kernel (default True).

    Over a sequence (:meth:`run_sequence`), when the kernel's fidelity provides a route (the exact
    product kernel, or any exact map on up to
    :data:`~qk_lstm_qiskit.kernels.routes.MAX_STATEVECTOR_QUBITS` qubits), the layer runs as one fused
    autograd node (:mod:`qk_lstm_qiskit.nn.fused`), same values and gradients; set ``fused = False`` to
    force the per-step loop.

    Shape:
        ``input``: ``(N, input_size)`` or ``(input_size,)`` → ``h_1, c_1``: ``(N, H)`` or ``(H,)``.

    Example:
        >>> cell = QKLSTMCell(8, 6)
        >>> h, c = cell(torch.randn(2, 8))
        >>> h.shape
        torch.Size([2, 6])
    """

    fused = True  # run_sequence uses FusedQKLSTMLayer when the kernel provides a route

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        feature_map: FeatureMapSpec | FeatureMap = PAPER_MAP,
        num_references: int = 4,
        weighting: str = "paper",
        references: str = "fixed",
        fidelity=None,
        sampler=None,
        pass_manager=None,
        memory_limit: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        warn: bool = True,
    ) -> None:
        check_dtype("QKLSTMCell", dtype)
        super().__init__(input_size, hidden_size)
        check_int("QKLSTMCell", "num_references", num_references, 1)
        check_choice("QKLSTMCell", "weighting", weighting, WEIGHTINGS)
        check_choice("QKLSTMCell", "references", references, REFERENCE_MODES)
        if not isinstance(feature_map, (FeatureMapSpec, FeatureMap)):
            raise TypeError(f"QKLSTMCell: expected feature_map to be a FeatureMapSpec or a FeatureMap, "
                            f"got {type(feature_map).__name__}")
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        self.num_references, self.weighting, self.reference_mode = num_references, weighting, references
        built = feature_map.build(dtype=dtype) if isinstance(feature_map, FeatureMapSpec) else feature_map
        self.kernel = QuantumKernel(
            built.to(device), fidelity, sampler=sampler, pass_manager=pass_manager, warn=False, memory_limit=memory_limit
        )
        if warn:
            warn_if_product(type(self).__name__, [self.kernel])
        num_qubits = self.kernel.num_features
        self.projection = nn.Linear(input_size + hidden_size, num_qubits, **factory)
        refs = torch.empty(NUM_GATES, num_references, num_qubits, **factory)  # (4, R, q)
        if references == "learned":
            self.references = nn.Parameter(refs)
        else:
            self.register_buffer("references", refs)
        shape = (hidden_size, num_references) if weighting == "paper" else (NUM_GATES, hidden_size, num_references)
        self.weight = nn.Parameter(torch.empty(shape, **factory))  # α
        self.bias = nn.Parameter(torch.empty(shape[:-1], **factory))  # b
        self.reset_parameters()

    @property
    def num_qubits(self) -> int:
        return self.kernel.feature_map.num_qubits

    def reset_parameters(self) -> None:
        """α, b ~ U(-1/√R, 1/√R) like ``nn.Linear(R, H)``; references ~ N(0, 1); projection reset."""
        self.projection.reset_parameters()
        bound = 1.0 / math.sqrt(self.num_references)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)
        with torch.no_grad():
            self.references.normal_()

    @torch.no_grad()
    def set_references(self, references: torch.Tensor) -> None:
        """Overwrite the reference vectors with ``(4, R, q)`` or ``(4·R, q)`` values."""
        expected = (NUM_GATES, self.num_references, self.num_qubits)
        if references.numel() != math.prod(expected) or references.size(-1) != self.num_qubits:
            raise ValueError(f"QKLSTMCell: expected references of shape {expected}, got {tuple(references.shape)}")
        check_finite("QKLSTMCell", "references", references)
        self.references.copy_(references.reshape(expected))

    def prepare(self) -> PreparedSide:
        """The references' side of the kernel, shared by all time steps of a sequence."""
        return self.kernel.prepare(self.references.reshape(-1, self.num_qubits))  # 4R references

    def gates(self, v: torch.Tensor, prepared: PreparedSide | None = None) -> torch.Tensor:
        u = self.projection(v)  # (N, q)
        prepared = self.prepare() if prepared is None else prepared
        k = self.kernel.evaluate(u, prepared, check=False)  # (N, 4R): one kernel call; inputs checked upstream
        if self.weighting == "paper":  # one Linear(R -> H) for all gates
            return torch.addmm(self.bias, k.view(-1, self.num_references), self.weight.t()).view(-1, NUM_GATES, self.hidden_size)
        return torch.einsum("ngr,ghr->ngh", k.view(-1, NUM_GATES, self.num_references), self.weight) + self.bias

    def run_sequence(
        self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`GatedCell.run_sequence`, fused into one autograd node when the kernel allows it.

        ``u_t = P [h_{t-1}; x_t] + p = (x_t W_x^T + p) + h_{t-1} W_h^T`` with ``P = [W_h | W_x]``:
        the input half is one matrix product for all steps.
        """
        prepared = self.prepare()
        route = self.kernel.route(prepared) if self.fused else None
        if route is None:
            return self._loop(x, h, c, prepared)
        weight = self.projection.weight  # (q, H + input_size)
        xp = nn.functional.linear(x, weight[:, self.hidden_size :], self.projection.bias)  # (L, N, q)
        hs, c = fused_layer(route, xp, h, c, weight[:, : self.hidden_size], self.weight, self.bias)
        return hs, hs[-1], c

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, {self.hidden_size}, num_qubits={self.num_qubits}, "
            f"num_references={self.num_references}, weighting={self.weighting!r}, references={self.reference_mode!r}"
        )
