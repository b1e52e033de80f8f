"""The LSTM update around gate pre-activations: one copy, used by the per-step cells and the fused layer."""

from __future__ import annotations

import torch

__all__ = ["lstm_update"]


def lstm_update(
    z: torch.Tensor, c: torch.Tensor, *, candidate_doubled: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``h_t, c_t`` from pre-activations ``z`` ``(N, 4, H)`` (gates i, f, C, o) and ``c_{t-1}`` ``(N, H)``.

    .. math::
        i, f, \\tilde C, o = \\sigma(z_i), \\sigma(z_f), \\tanh(z_C), \\sigma(z_o);\\quad
        c_t = f \\odot c_{t-1} + i \\odot \\tilde C;\\quad h_t = o \\odot \\tanh(c_t)

    One sigmoid for all four gates, with ``tanh z = 2σ(2z) − 1`` for the candidate. Returns ``h_t``,
    ``c_t``, ``tanh c_t`` and the activations ``(N, 4, H)``: ``σ(z_i), σ(z_f), σ(2 z_C), σ(z_o)``
    (what a hand-written backward needs). ``candidate_doubled``: ``z`` already holds ``2 z_C`` (a caller
    that folds the factor into its gate map once saves an operation per step; the same values, exactly).
    """
    if not candidate_doubled:
        z = z * z.new_tensor([1.0, 1.0, 2.0, 1.0]).view(4, 1)
    gates = torch.sigmoid(z)
    i, f, g2, o = gates.unbind(1)
    c = torch.addcmul(f * c - i, i, g2, value=2.0)  # f c + i (2σ(2 z_C) − 1)
    tanh_c = torch.tanh(c)
    return o * tanh_c, c, tanh_c, gates
