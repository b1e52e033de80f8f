"""A whole QK-LSTM layer over a sequence as one autograd node, for kernels with a route.

The per-step autograd graph of :class:`~qk_lstm_qiskit.nn.cell.QKLSTMCell` has ~150 tiny
operations. :class:`FusedQKLSTMLayer` runs the layer in a plain no-grad loop (the LSTM update is
:func:`~qk_lstm_qiskit.nn.update.lstm_update`, the cells' own) and back-propagates through time by
hand: everything in the backward pass that does not depend on the recurrent gradient (the kernel's
Jacobian ``∂k/∂u``, gate derivatives, parameter gradients) is computed for all ``L·N`` steps at once,
leaving 7 operations per step in the reverse loop. The kernel ``u ↦ k`` is the route its fidelity
provides (:class:`~qk_lstm_qiskit.kernels.routes.KernelRoute`); a fidelity without one runs the loop.

Per step, with ``v_t = [h_{t-1}; x_t]`` and ``P = [W_h | W_x]``:

.. math::
    u_t = x_t W_x^\\top + p + h_{t-1} W_h^\\top,\\quad
    k_t = \\mathrm{route}(u_t),\\quad
    z_t = k_t A + b,\\quad
    c_t = \\sigma(z^f) c_{t-1} + \\sigma(z^i) \\tanh(z^C),\\quad h_t = \\sigma(z^o) \\tanh(c_t)

``A`` ``(4R, 4H)`` is block-diagonal with the gates' ``α^T`` (the same block four times for weighting ``"paper"``).
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from ..kernels.routes import KernelRoute
from . import update

__all__ = ["FusedQKLSTMLayer", "fused_layer"]


def _gate_map(alpha: torch.Tensor, beta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``A`` ``(4R, 4H)`` and ``b`` ``(4H,)`` with all gates' pre-activations ``z = k A + b``."""
    if alpha.dim() == 2:  # "paper": (H, R), (H,)
        return torch.block_diag(*[alpha.t()] * 4), beta.repeat(4)
    return torch.block_diag(*alpha.transpose(1, 2).unbind(0)), beta.reshape(-1)


class FusedQKLSTMLayer(torch.autograd.Function):
    """One QK-LSTM layer over a sequence: forward loop under no-grad, hand-written BPTT backward.

    Inputs (``L`` steps, batch ``N``, hidden ``H``, ``q`` features, ``M = 4R`` references):

    * ``xp`` ``(L, N, q)``: the input half of the projection, ``x_t W_x^T + p``;
    * ``h0``, ``c0`` ``(N, H)``; ``w_h`` ``(q, H)``: the hidden half of the projection;
    * ``alpha``, ``beta``: ``(H, R)``, ``(H,)`` (weighting ``"paper"``) or ``(4, H, R)``, ``(4, H)``;
    * ``route``: the kernel ``u ↦ k`` ``(N, M)``, a :class:`~qk_lstm_qiskit.kernels.routes.KernelRoute`;
    * ``*inputs``: the route's :attr:`~qk_lstm_qiskit.kernels.routes.KernelRoute.inputs` (their gradients flow back).

    Returns ``h`` ``(L, N, H)`` (all steps; ``h_n = h[-1]``) and ``c_n`` ``(N, H)``. The forward
    keeps, per step, ``h``, ``c``, ``tanh c``, ``u``, the gate activations and what the route
    needs; ``backward`` takes the Jacobian ``∂k/∂u`` of all ``L·N`` rows at once from the route,
    derives the gates' local Jacobians from the activations, runs the reverse recurrence of
    ``(dh, dc)`` (7 operations per step) and returns gradients for every tensor input.
    """

    @staticmethod
    def forward(ctx, xp, h0, c0, w_h, alpha, beta, route, *inputs):
        batch, hidden = h0.shape
        w_h_t = w_h.t()  # (H, q)
        gate_map, gate_bias = _gate_map(alpha, beta)
        doubled = torch.ones_like(gate_bias).index_fill_(0, torch.arange(2 * hidden, 3 * hidden, device=xp.device), 2.0)
        gate_map, gate_bias = gate_map * doubled, gate_bias * doubled  # 2 z_C folded in once (exact: a power of 2)
        h, c, history, kernel_history = h0, c0, [], []
        for x_t in xp.unbind(0):
            u = torch.addmm(x_t, h, w_h_t)  # (N, q)
            k, saved = route.evaluate(u)  # (N, M)
            z = torch.addmm(gate_bias, k, gate_map).view(batch, 4, hidden)
            h, c, tanh_c, gates = update.lstm_update(z, c, candidate_doubled=True)
            history.append((h, c, tanh_c, u, gates, k))
            kernel_history.append(saved)
        hs, cs, tanh_cs, us, gates, ks = (torch.stack(values) for values in zip(*history))
        kernel_saved = [torch.stack(values).flatten(0, 1) for values in zip(*kernel_history)]  # (L·N, …)
        ctx.route, ctx.num_kernel_saved = route, len(kernel_saved)
        ctx.save_for_backward(h0, c0, w_h, alpha, beta, hs, cs, tanh_cs, us, gates, ks, *kernel_saved)
        return hs, c

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_hs, grad_c):
        h0, c0, w_h, alpha, beta, hs, cs, tanh_c, us, gates, ks, *kernel_saved = ctx.saved_tensors
        steps, batch, hidden = hs.shape
        rows, m = steps * batch, ks.size(-1)
        gate_map = _gate_map(alpha, beta)[0]  # (M, 4H)

        # ---- everything local to a step, for all B = L·N steps at once
        u = us.flatten(0, 1)  # (B, q)
        dk_du, context = ctx.route.linearize(u, tuple(kernel_saved))  # (B, M, q)
        i, f, g2, o = gates.view(rows, 4, hidden).unbind(1)
        g, tanh_c = 2 * g2 - 1, tanh_c.view(rows, hidden)  # tanh z_C = 2σ(2 z_C) − 1
        c_prev = torch.cat([c0[None], cs[:-1]]).view(rows, hidden)
        # dz = local ⊙ (dc̃, dc̃, dc̃, dh), dc̃ = dc + dh ⊙ o (1 − tanh² c) the total gradient of c_t
        local = torch.cat([g * i * (1 - i), c_prev * f * (1 - f), i * (1 - g * g), tanh_c * o * (1 - o)], 1)
        local = local.view(steps, batch, 1, 4 * hidden).unbind(0)
        through_c = (o * (1 - tanh_c * tanh_c)).view(steps, batch, 1, hidden).unbind(0)
        forget = f.view(steps, batch, 1, hidden).unbind(0)
        to_u = dk_du.view(steps, batch, m, -1).unbind(0)  # L × (N, M, q)

        # ---- the recurrence, in reverse: 7 operations per step on (N, 1, ·) rows
        gate_map_t = gate_map.t().expand(batch, -1, -1)  # (N, 4H, M)
        w_hb = w_h.expand(batch, -1, -1)  # (N, q, H)
        grad_prev = torch.cat([torch.zeros_like(grad_hs[:1]), grad_hs[:-1]]).unsqueeze(2).unbind(0)  # L × (N, 1, H)
        dh, dc = grad_hs[-1].unsqueeze(1), grad_c.unsqueeze(1)
        dzs, dks, dus = [], [], []
        for t in range(steps - 1, -1, -1):
            dc = torch.addcmul(dc, dh, through_c[t])
            dz = torch.cat([dc, dc, dc, dh], 2) * local[t]  # (N, 1, 4H)
            dk = torch.bmm(dz, gate_map_t)  # (N, 1, M)
            du = torch.bmm(dk, to_u[t])  # (N, 1, q)
            dh = torch.baddbmm(grad_prev[t], du, w_hb)
            dc = dc * forget[t]
            dzs.append(dz)
            dks.append(dk)
            dus.append(du)

        # ---- parameter gradients, all steps at once
        dz, dk = torch.cat(dzs[::-1]).view(rows, 4 * hidden), torch.cat(dks[::-1]).view(rows, m)
        du = torch.cat(dus[::-1]).view(rows, -1)  # (B, q)
        h_prev = torch.cat([h0[None], hs[:-1]]).view(rows, hidden)
        blocks = (ks.view(rows, m).t() @ dz).view(4, -1, 4, hidden).diagonal(dim1=0, dim2=2)  # (R, H, 4): gate g's α block
        grad_alpha, grad_beta = blocks.permute(2, 1, 0), dz.sum(0).view(4, hidden)  # (4, H, R), (4, H)
        if alpha.dim() == 2:  # "paper": one α, b shared by the four gates
            grad_alpha, grad_beta = grad_alpha.sum(0), grad_beta.sum(0)
        return (
            du.view(steps, batch, -1), dh.squeeze(1), dc.squeeze(1), du.t() @ h_prev,
            grad_alpha, grad_beta, None, *ctx.route.input_grads(context, dk),
        )


def fused_layer(
    route: KernelRoute, xp: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, w_h: torch.Tensor,
    alpha: torch.Tensor, beta: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:class:`FusedQKLSTMLayer` over the kernel ``route`` (see there for shapes): ``(h (L, N, H), c_n (N, H))``."""
    return FusedQKLSTMLayer.apply(xp, h0, c0, w_h, alpha, beta, route, *route.inputs)
