"""A whole QK-LSTM layer over a sequence as one autograd node, for exact kernels.

The per-step autograd graph of :class:`~qk_lstm_qiskit.nn.cell.QKLSTMCell` has ~150 tiny
operations. :class:`FusedQKLSTMLayer` runs the layer in a plain no-grad loop and back-propagates
through time by hand: everything in the backward pass that does not depend on the recurrent
gradient (the kernel's Jacobian ``∂k/∂u``, gate derivatives, parameter gradients) is computed for
all ``L·N`` steps at once, leaving 7 operations per step in the reverse loop. The kernel ``u ↦ k``
is a *route* (:func:`fused_route`):

* :class:`ProductRoute`, the exact product kernel ``k(u, y) = Π_q (1 + r_q(u)·r_q(y)) / 2`` of a map
  without trainable weights whose qubits each read one feature (true of :class:`FeatureMap`): the slot
  recurrence of the Bloch vectors is expanded once into Fourier modes (:class:`FourierBloch`), ~17
  operations per step in all;
* :class:`StatevectorRoute`, any other exact kernel on a few qubits (entangling maps, trainable
  circuit weights, maps that mix features): the executor's stages per step, the Jacobian of all
  steps by forward mode (:meth:`~.statevector.StatevectorExecutor.jvp`).

The encoding is always the feature map's own ``angles`` (forward), its derivative forward-mode
autograd through that same method (backward): there is no second copy of the encoding.

The product route per step, with ``v_t = [h_{t-1}; x_t]`` and ``P = [W_h | W_x]``:

.. math::
    u_t = x_t W_x^\\top + p + h_{t-1} W_h^\\top,\\quad
    a_t = \\mathrm{angles}(u_t),\\quad
    \\psi_t = a_t M + m,\\\\
    r_{q,1} = \\sum_k c_k(\\psi_{1q}) F_{kq},\\quad
    r_{q,j} = \\sum_k c_k(\\psi_{jq}) T_{jkq}\\, r_{q,j-1},\\quad c(\\psi) = (1, \\cos\\psi, \\sin\\psi),\\\\
    k_{tm} = \\prod_q \\tfrac12 (1 + r_q \\cdot y_{qm}),\\quad
    z_t = k_t A + b,\\quad
    c_t = \\sigma(z^f) c_{t-1} + \\sigma(z^i) \\tanh(z^C),\\quad h_t = \\sigma(z^o) \\tanh(c_t)

``M``, ``m``, ``F`` and ``T`` are the executor's :class:`~.statevector.ProductForm`
(``angle_map``, ``angle_shift``, ``first``, ``rotations``); ``y`` are the references' Bloch vectors; ``A`` ``(4R, 4H)`` is
block-diagonal with the gates' ``α^T`` (the same block four times for weighting ``"paper"``).
"""

from __future__ import annotations

import weakref
from typing import NamedTuple

import torch
from torch.autograd import forward_ad
from torch.autograd.function import once_differentiable

from .kernel import PreparedSide, QuantumKernel
from .statevector import MAX_MODES, FourierBloch

__all__ = [
    "FusedQKLSTMLayer", "ProductRoute", "StatevectorRoute", "fused_layer", "fused_route",
    "supports_fused",
]


_EXPANSIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # executor → {(dtype, device) | None: …}


def _expansion(kernel: QuantumKernel, dtype: torch.dtype | None = None, device=None) -> FourierBloch | None:
    """The cached :class:`FourierBloch` of ``kernel`` (float64 for ``dtype=None``), or ``None``
    when the circuit is not qubit-local: the slot angles of qubit ``q`` must read only angle
    columns that depend on feature ``q`` alone (as in :class:`FeatureMap`; read off the
    Jacobian of ``feature_map.angles`` at random points)."""
    entries = _EXPANSIONS.setdefault(kernel.executor, {})
    key = None if dtype is None else (dtype, torch.device(device))
    if key not in entries:
        if key is not None:
            entries[key] = FourierBloch(*(t.to(device, dtype) for t in _expansion(kernel)))
        else:
            form, n = kernel.executor.product_form(torch.float64), kernel.executor.num_qubits
            local = form is not None and kernel.num_features == n  # feature q drives qubit q
            if local:
                probe = torch.randn(2, n, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
                jacobian = torch.stack([torch.autograd.functional.jacobian(kernel.feature_map.angles, row) for row in probe])
                reads = (jacobian != 0).any(0)  # (P, n): angle column c depends on feature q
                uses = form.angle_map != 0  # (P, S'·n): slot (j, q) reads angle column c
                qubit = torch.arange(uses.size(1)) % n
                local = bool((reads.sum(1) <= 1).all()) and not bool((uses[:, :, None] & reads[:, None, :]
                                                                      & (qubit[None, :, None] != torch.arange(n))).any())
            entries[key] = FourierBloch.of(form) if local else None
    return entries[key]


# The statevector route's Jacobian costs ~q forward passes over all L·N rows at once, the loop's backward
# ~3 per step plus a few operations: the route wins while states are small (one thread, B=32, T=25, reps 2,
# compiled loops, fused vs loop, best of 8: 4 qubits 20.6 vs 35.7 ms, 5 qubits 20.5 vs 25.8, 6 qubits 32.4 vs 27.4).
MAX_STATEVECTOR_QUBITS = 5

_FORWARD_AD: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # feature map → angles support forward AD


def _forward_ad_works(kernel: QuantumKernel) -> bool:
    """True when ``feature_map.angles`` propagates forward-mode tangents (checked once per map)."""
    fm = kernel.feature_map
    if fm not in _FORWARD_AD:
        probe = torch.zeros(1, kernel.num_features, dtype=torch.float64)
        try:
            with torch.no_grad(), forward_ad.dual_level():
                tangent = forward_ad.unpack_dual(fm.angles(forward_ad.make_dual(probe, torch.ones_like(probe)))).tangent
            _FORWARD_AD[fm] = tangent is not None
        except (RuntimeError, NotImplementedError, TypeError):
            _FORWARD_AD[fm] = False
    return _FORWARD_AD[fm]


def fused_route(kernel: QuantumKernel) -> str | None:
    """How :class:`FusedQKLSTMLayer` evaluates ``kernel``, or ``None`` when the per-step loop must.

    ``"product"``: the exact product kernel from the Fourier expansion of its Bloch vectors (a
    feature map without trainable weights, a qubit-local single-qubit stage of at most
    ``log3(MAX_MODES)`` parameterised slots). ``"statevector"``: any other exact kernel with
    the adjoint gradient on at most ``MAX_STATEVECTOR_QUBITS`` qubits whose encoding supports
    forward-mode autograd (entangling maps, trainable circuits). Sampler kernels and the
    parameter-shift reference run the loop.
    """
    if kernel.sampler_fidelity is not None:
        return None
    if kernel.is_product_kernel and not any(p.requires_grad for p in kernel.feature_map.parameters()):
        form = kernel.executor.product_form()
        if form is not None and 3 ** (form.angle_map.size(1) // kernel.executor.num_qubits) <= MAX_MODES:
            if _expansion(kernel) is not None:
                return "product"
    if kernel.gradient == "adjoint" and kernel.executor.num_qubits <= MAX_STATEVECTOR_QUBITS and _forward_ad_works(kernel):
        return "statevector"
    return None


def supports_fused(kernel: QuantumKernel) -> bool:
    """True when :class:`FusedQKLSTMLayer` computes exactly what the per-step loop computes, faster."""
    return fused_route(kernel) is not None


def _map_tensors(feature_map: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The map's parameters and buffers by name, as :func:`torch.func.functional_call` takes them."""
    return {**dict(feature_map.named_parameters()), **dict(feature_map.named_buffers())}


def _angles_and_slopes(
    feature_map: torch.nn.Module, tensors: dict[str, torch.Tensor], u: torch.Tensor, tangent: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The map's angles of ``u`` and their derivative along ``tangent`` (forward mode, the map's own
    ``angles``). The map's floating tensors enter as duals with zero tangent: torch's forward mode of an
    operation between a dual and a plain tensor takes a slow path (~200 µs each, 3x the whole encoding)."""
    with forward_ad.dual_level():
        duals = {name: forward_ad.make_dual(t.detach(), torch.zeros_like(t)) if t.is_floating_point() else t
                 for name, t in tensors.items()}
        angles = torch.func.functional_call(feature_map, duals, (forward_ad.make_dual(u, tangent),))
        primal, slopes = forward_ad.unpack_dual(angles)
    return primal, slopes


def _exclusive_prod(factors: torch.Tensor) -> torch.Tensor:
    """``Π_{j≠q} factors[:, j]`` for every ``q`` of ``factors`` ``(B, n, M)``, without division."""
    parts = factors.unbind(1)
    before, after = [torch.ones_like(parts[0])], [torch.ones_like(parts[0])]
    for part in parts[:-1]:
        before.append(before[-1] * part)
    for part in parts[:0:-1]:
        after.append(after[-1] * part)
    return torch.stack(before, 1) * torch.stack(after[::-1], 1)


def _kernel_map(by: torch.Tensor) -> torch.Tensor:
    """``(3n, n·M)`` block diagonal of ``by / 2``: ``(1 + r_q·y_qm) / 2 = 1/2 + (r @ this)[q·M + m]``."""
    return torch.block_diag(*(by * 0.5).unbind(0))


def _gate_map(alpha: torch.Tensor, beta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``A`` ``(4R, 4H)`` and ``b`` ``(4H,)`` with all gates' pre-activations ``z = k A + b``."""
    if alpha.dim() == 2:  # "paper": (H, R), (H,)
        return torch.block_diag(*[alpha.t()] * 4), beta.repeat(4)
    return torch.block_diag(*alpha.transpose(1, 2).unbind(0)), beta.reshape(-1)


class ProductRoute:
    """The exact product kernel ``k_m(u) = Π_q (1 + r_q(u)·y_qm) / 2`` (inputs: ``by`` ``(n, 3, M)``).

    Per step ``~5`` operations on the Fourier modes of the Bloch vectors (:class:`FourierBloch`);
    the Jacobian ``∂k/∂u`` of all steps at once from the modes' derivative, whose angle slopes come
    from forward-mode autograd through the feature map's own ``angles``.
    """

    def __init__(self, feature_map: torch.nn.Module, bloch: FourierBloch) -> None:
        self.feature_map, self.tensors, self.bloch = feature_map, _map_tensors(feature_map), bloch

    def bind(self, by: torch.Tensor) -> None:
        self.by = by
        self.factor_map, self.half = self.bloch.to_bloch @ _kernel_map(by), by.new_tensor(0.5)  # (n·G, n·M)

    def evaluate(self, u: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """``k`` ``(N, M)`` of ``u`` ``(N, q)``, and what :meth:`linearize` needs: modes, factors."""
        modes = torch.cos(torch.addmm(self.bloch.arg_shift, self.feature_map.angles(u), self.bloch.arg_map))  # (N, n·G)
        factors = torch.addmm(self.half, modes, self.factor_map)  # (N, n·M)
        n, m = self.by.size(0), self.by.size(2)
        return factors.view(-1, n, m).prod(1), (modes, factors)

    def linearize(self, u: torch.Tensor, saved: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, tuple]:
        """``∂k/∂u`` ``(B, M, q)`` for the rows ``u`` ``(B, q)`` of all steps, and a context for :meth:`input_grads`."""
        modes, factors = saved
        n, m, rows = self.by.size(0), self.by.size(2), u.size(0)
        # each angle column (and so each qubit's modes) depends on one feature only: the derivative
        # along u + ε·1 is ∂/∂u_q, by forward-mode autograd through the feature map's encoding
        slopes = _angles_and_slopes(self.feature_map, self.tensors, u, torch.ones_like(u))[1]  # (B, P)
        dmodes = (modes @ self.bloch.turn) * (slopes @ self.bloch.arg_map)
        others = _exclusive_prod(factors.view(rows, n, m))  # the other qubits' factors
        dk_du = others * (dmodes @ (self.bloch.to_bloch @ _kernel_map(self.by))).view(rows, n, m)  # ∂k_m / ∂u_q
        return dk_du.transpose(1, 2), (modes, others)

    def input_grads(self, context: tuple, dk: torch.Tensor) -> tuple[torch.Tensor]:
        """``∂L/∂by`` from ``dk = ∂L/∂k`` ``(B, M)`` of all steps."""
        modes, others = context
        n = self.by.size(0)
        r = (modes @ self.bloch.to_bloch).view(-1, n, 3)  # (B, n, 3)
        return (torch.einsum("bni,bnm->nim", r, others * dk[:, None]) * 0.5,)


class StatevectorRoute:
    """Any exact fidelity kernel ``k_m(u) = |⟨φ_m|ψ(u)⟩|²`` (inputs: ``φ`` ``(M, D)``, the map's trainable weights).

    Per step: the states ``ψ`` of the batch (the executor's stages, no autograd) and their overlaps
    ``O = ψ φ^†``. The Jacobian ``∂k/∂u = 2 Re(Ō ⊙ ∂O/∂u)`` of all steps at once in forward mode:
    the angles' slopes by forward-mode autograd through the map's ``angles``, the states' by
    :meth:`~.statevector.StatevectorExecutor.jvp` (``q`` directions; row chunks within the
    executor's memory limit). With ``W = 2 (∂L/∂k) ⊙ O``: ``∂L/∂φ = W^† ψ`` and, for
    trainable weights, one adjoint sweep of ``λ = W φ`` over all rows gives ``∂L/∂angles``.
    """

    def __init__(self, kernel: QuantumKernel) -> None:
        self.feature_map, self.executor = kernel.feature_map, kernel.executor
        # the map's tensors as they are now (functional_call may swap them back before the backward runs)
        self.tensors = _map_tensors(self.feature_map)
        self.params = tuple(p for p in self.tensors.values() if p.requires_grad)

    def bind(self, states: torch.Tensor, *weights: torch.Tensor) -> None:
        """The references' states; the map's weights are read through :attr:`tensors` (their gradients' owners)."""
        self.states, self.states_h = states, states.mH  # (M, D), (D, M)

    def _states(self, angles: torch.Tensor) -> torch.Tensor:
        return self.executor.simulate(angles, drop_constant_tail=True)

    def _angles(self, u: torch.Tensor, *, detach: bool = True) -> torch.Tensor:
        """The map's angles of ``u`` with the tensors the forward used."""
        tensors = {name: t.detach() for name, t in self.tensors.items()} if detach else self.tensors
        return torch.func.functional_call(self.feature_map, tensors, (u,))

    def evaluate(self, u: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """``k`` ``(N, M)`` of ``u`` ``(N, q)``, and the overlaps ``O`` ``(N, M)``."""
        overlap = self._states(self.feature_map.angles(u)) @ self.states_h
        return overlap.real.square() + overlap.imag.square(), (overlap,)

    def linearize(self, u: torch.Tensor, saved: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, tuple]:
        """``∂k/∂u`` ``(B, M, q)`` for the rows ``u`` ``(B, q)`` of all steps, and the context ``(u, ψ, O)``."""
        (overlap,) = saved
        rows, q = u.shape
        eye = torch.eye(q, dtype=u.dtype, device=u.device).repeat_interleave(rows, 0)  # rows j·B … carry e_j
        angles, slopes = _angles_and_slopes(self.feature_map, self.tensors, u.repeat(q, 1), eye)
        angles, slopes = angles[:rows], slopes.view(q, rows, -1)  # (B, P), (q, B, P)
        jacobian, states = u.new_empty(rows, overlap.size(1), q), overlap.new_empty(rows, self.states.size(1))
        # a row's state and its q tangents, each with a working copy
        chunk = max(1, self.executor.chunk_rows(rows * (q + 1), u.dtype, u.device, copies=4, what="kernel Jacobian") // (q + 1))
        for start in range(0, rows, chunk):
            part = slice(start, start + chunk)
            states[part], tangents = self.executor.jvp(angles[part], slopes[:, part], drop_constant_tail=True)
            d_overlap = tangents @ self.states_h  # (q, b, M)
            jacobian[part] = 2 * (overlap[part].conj() * d_overlap).real.permute(1, 2, 0)
        return jacobian, (u, states, overlap)

    def input_grads(self, context: tuple, dk: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        """``∂L/∂φ`` ``(M, D)`` and the gradients of the map's trainable weights, from ``dk`` ``(B, M)``."""
        u, states, overlap = context
        weights = 2 * dk.to(overlap.dtype) * overlap  # (B, M): W
        grads: tuple = (weights.mH @ states,)
        if self.params:
            grad_angles = self.executor.adjoint(self._angles(u), states, weights @ self.states, drop_constant_tail=True)
            with torch.enable_grad():
                angles = self._angles(u.detach(), detach=False)
                grads += torch.autograd.grad(angles, self.params, grad_angles, allow_unused=True)
        return grads


class FusedQKLSTMLayer(torch.autograd.Function):
    """One QK-LSTM layer over a sequence: forward loop under no-grad, hand-written BPTT backward.

    Inputs (``L`` steps, batch ``N``, hidden ``H``, ``q`` features, ``M = 4R`` references):

    * ``xp`` ``(L, N, q)``: the input half of the projection, ``x_t W_x^T + p``;
    * ``h0``, ``c0`` ``(N, H)``; ``w_h`` ``(q, H)``: the hidden half of the projection;
    * ``alpha``, ``beta``: ``(H, R)``, ``(H,)`` (weighting ``"paper"``) or ``(4, H, R)``, ``(4, H)``;
    * ``route``: :class:`ProductRoute` or :class:`StatevectorRoute`, the kernel ``u ↦ k`` ``(N, M)``;
    * ``*inputs``: the route's tensors (``by``; or ``φ`` and the map's trainable weights).

    Returns ``h`` ``(L, N, H)`` (all steps; ``h_n = h[-1]``) and ``c_n`` ``(N, H)``. The forward
    keeps, per step, ``h``, ``c``, ``tanh c``, ``u``, the gate activations and what the route
    needs; ``backward`` takes the Jacobian ``∂k/∂u`` of all ``L·N`` rows at once from the route,
    derives the gates' local Jacobians from the activations, runs the reverse recurrence of
    ``(dh, dc)`` (7 operations per step) and returns gradients for every tensor input.
    """

    @staticmethod
    def forward(ctx, xp, h0, c0, w_h, alpha, beta, route, *inputs):
        batch, hidden = h0.shape
        route.bind(*(t.detach() for t in inputs))
        w_h_t = w_h.t()  # (H, q)
        gate_map, gate_bias = _gate_map(alpha, beta)
        doubled = torch.ones_like(gate_bias).index_fill_(0, torch.arange(2 * hidden, 3 * hidden, device=xp.device), 2.0)
        gate_map, gate_bias = gate_map * doubled, gate_bias * doubled  # tanh z = 2σ(2z) − 1 for the candidate
        h, c, history, kernel_history = h0, c0, [], []
        for x_t in xp.unbind(0):
            u = torch.addmm(x_t, h, w_h_t)  # (N, q)
            k, saved = route.evaluate(u)  # (N, M)
            gates = torch.sigmoid(torch.addmm(gate_bias, k, gate_map))  # (N, 4H): σ(z_i), σ(z_f), σ(2 z_C), σ(z_o)
            i, f, g2, o = gates.view(batch, 4, hidden).unbind(1)
            c = torch.addcmul(f * c - i, i, g2, value=2.0)  # f c + i (2σ(2 z_C) − 1)
            tanh_c = torch.tanh(c)
            h = o * tanh_c
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
    kernel: QuantumKernel, xp: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, w_h: torch.Tensor,
    alpha: torch.Tensor, beta: torch.Tensor, prepared: PreparedSide,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:class:`FusedQKLSTMLayer` of ``kernel`` against the :meth:`~QuantumKernel.prepare` d references
    (see there for shapes): ``(h (L, N, H), c_n (N, H))``. Raises ``ValueError`` when no route fits."""
    route = fused_route(kernel)
    if route == "product":
        bloch = prepared.bloch if prepared.bloch is not None else kernel.executor.product_bloch(prepared.angles)
        return FusedQKLSTMLayer.apply(xp, h0, c0, w_h, alpha, beta,
                                      ProductRoute(kernel.feature_map, _expansion(kernel, xp.dtype, xp.device)), bloch)
    if route == "statevector":
        states = prepared.states
        if states is None or states.dtype != (torch.complex64 if xp.dtype == torch.float32 else torch.complex128):
            states = kernel.executor.statevectors(prepared.angles.to(xp.dtype), drop_constant_tail=True)  # (M, D)
        statevector = StatevectorRoute(kernel)
        return FusedQKLSTMLayer.apply(xp, h0, c0, w_h, alpha, beta, statevector, states, *statevector.params)
    raise ValueError(f"fused_layer: expected a kernel with a fused route, got {kernel.extra_repr()} on "
                     f"{kernel.executor.num_qubits} qubits")
