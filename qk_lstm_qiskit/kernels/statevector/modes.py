"""Fourier modes: a one-qubit stage's unitaries, or a product circuit's Bloch vectors, as
``cos(values W + w_0) V`` — one expansion (:func:`expand`) for both.

A product of one-qubit rotations ``A + cos ψ_j B + sin ψ_j C`` is multi-affine in
``(1, cos ψ_j, sin ψ_j)`` of its ``S`` slot angles, i.e. a sum of ``G = 3^S`` modes
``cos(w·ψ + θ)``, ``w ∈ {-1, 0, 1}^S``, solved exactly from its values on a 3-point grid per angle.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

__all__ = ["FourierModes", "UnitaryModes", "FourierBloch", "ProductForm", "MAX_MODES", "expand"]

MAX_MODES = 243  #: 3^5 modes per qubit: a stage with more parameterised slots multiplies its slot matrices instead


class FourierModes(NamedTuple):
    """The ``G = 3^S`` modes ``cos(w·ψ + θ)``, ``w ∈ {-1, 0, 1}^S``, of functions multi-affine in
    ``(1, cos ψ_j, sin ψ_j)`` of ``S`` angles (a product of one-qubit rotations is one).

    ``basis[g, m]`` is mode ``m`` at grid point ``points[g]`` (``ψ_j ∈ {0, 2π/3, 4π/3}``): such a
    function is ``f(ψ) = Σ_m a_m mode_m(ψ)`` with ``a = basis⁻¹ f(points)``, exactly. The modes pair
    up as ``cos(w·ψ)``, ``sin(w·ψ)``, so ``∂ modes / ∂ arg = modes @ turn``.
    """

    freq: torch.Tensor  # w (G, S)
    phase: torch.Tensor  # θ (G,): 0 for the cosines, −π/2 for the sines
    points: torch.Tensor  # (G, S)
    basis: torch.Tensor  # (G points, G modes)
    turn: torch.Tensor  # (G, G): signed permutation of the (cos, sin) pairs, 0 for w = 0

    @classmethod
    def of(cls, slots: int) -> FourierModes:
        grid = torch.cartesian_prod(*[torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64)] * slots).view(-1, slots)
        leading = grid.gather(1, (grid != 0).int().argmax(1, keepdim=True))[:, 0]  # first non-zero entry, or 0
        freq = torch.cat([grid.new_zeros(1, slots), grid[leading > 0]])  # 0, then one of each pair ±w
        modes = torch.cat([freq, freq[1:]])  # w = 0 has only the cosine mode
        pairs = freq.size(0) - 1  # cosine columns 1…pairs, their sines pairs + 1…2·pairs
        phases = torch.cat([freq.new_zeros(freq.size(0)), freq.new_full((pairs,), -math.pi / 2)])
        points = (grid + 1) * (2 * math.pi / 3)
        turn = torch.zeros(grid.size(0), grid.size(0), dtype=torch.float64)
        turn[pairs + 1 :, 1 : pairs + 1] = -torch.eye(pairs, dtype=torch.float64)  # (cos)' = −sin
        turn[1 : pairs + 1, pairs + 1 :] = torch.eye(pairs, dtype=torch.float64)  # (sin)' = cos
        return cls(modes, phases, points, torch.cos(points @ modes.t() + phases), turn)

    def spread(self, n: int) -> torch.Tensor:
        """``(S·n, n·G)``: slot angle ``(j, q)`` (row ``j·n + q``) into the arguments ``w·ψ_q`` of qubit ``q``'s modes."""
        slots = self.freq.size(1)
        blocks = torch.block_diag(*[self.freq.t()] * n)  # (n·S as (q, j), n·G)
        return blocks.view(n, slots, -1).transpose(0, 1).reshape(slots * n, -1)


def expand(fourier: FourierModes, on_grid: torch.Tensor, angle_map: torch.Tensor, angle_shift: torch.Tensor
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(W, w_0, V)`` with ``f = cos(values W + w_0) V`` from ``f`` at the grid points ``on_grid`` ``(G, n, E)``.

    ``angle_map`` ``(P, S·n)`` and ``angle_shift`` ``(S·n,)`` give the ``S`` expanded slot angles of each
    qubit from the values; ``V`` ``(n·G, n·E)`` is block-diagonal over qubits.
    """
    n, entries = on_grid.shape[1:]
    coefficients = torch.linalg.solve(fourier.basis.to(on_grid.dtype), on_grid.reshape(on_grid.size(0), -1))
    blocks = torch.block_diag(*coefficients.view(-1, n, entries).unbind(1))  # (n·G, n·E)
    spread = fourier.spread(n)
    return angle_map @ spread, angle_shift @ spread + fourier.phase.repeat(n), blocks


class UnitaryModes(NamedTuple):
    """A one-qubit stage's unitaries as Fourier modes of the values: ``U = cos(values @ W + w_0) V``.

    ``W`` ``(P, n·G)``, ``w_0`` ``(n·G,)``; ``V`` block-diagonal over qubits, as reals ``(n·G, n·8)``
    (the 4 entries of each ``U_q``, real and imaginary parts interleaved). With ``arg = values W + w_0``:
    ``U̇ = (−sin arg ⊙ valueṡ W) V`` and ``∂L/∂values = ((E @ to_grads) ⊙ −sin arg) W^T`` for
    ``E = ∂L/∂U`` (torch's convention, as reals), ``to_grads`` the real part of ``E·V`` as a matrix.
    """

    arg_map: torch.Tensor  # W (P, n·G)
    arg_shift: torch.Tensor  # w_0 (n·G,)
    to_entries: torch.Tensor  # V (n·G, n·8)
    to_grads: torch.Tensor  # (n·8, n·G)

    @classmethod
    def of(cls, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, angle_map: torch.Tensor, angle_shift: torch.Tensor
           ) -> UnitaryModes | None:
        """The float64 modes of the stage whose slot ``j`` on qubit ``q`` is ``A + cos φ B + sin φ C``
        (``a, b, c`` ``(S, n, 2, 2)`` complex128, ``φ = values @ angle_map + angle_shift``, column ``j·n + q``),
        or ``None`` when ``3^S' > MAX_MODES`` for its ``S'`` slots that carry a parameter on any qubit."""
        slots, n = a.size(0), a.size(1)
        used = (angle_map.view(-1, slots, n) != 0).any(0).any(1)  # (S,)
        varied = [j for j in range(slots) if used[j]] or [0]  # a constant stage: modes of one (constant) angle
        if 3 ** len(varied) > MAX_MODES:
            return None
        fourier = FourierModes.of(len(varied))
        phi = angle_shift.view(slots, n).expand(fourier.points.size(0), -1, -1).clone()  # (G, S, n)
        phi[:, varied] = fourier.points[:, :, None]
        mats = a + torch.cos(phi)[..., None, None] * b + torch.sin(phi)[..., None, None] * c
        unitary = mats[:, 0]
        for j in range(1, slots):
            unitary = mats[:, j] @ unitary  # (G, n, 2, 2) at the grid points
        columns = torch.cat([j * n + torch.arange(n) for j in varied]).long()
        arg_map, arg_shift, blocks = expand(fourier, unitary.reshape(unitary.size(0), n, 4), angle_map[:, columns],
                                            angle_shift[columns])
        entries = torch.view_as_real(blocks)  # (n·G, n·4, 2)
        return cls(
            arg_map,
            arg_shift,
            entries.reshape(blocks.size(0), -1),
            (entries * torch.tensor([1.0, -1.0], dtype=torch.float64)).reshape(blocks.size(0), -1).t(),
        )


class ProductForm(NamedTuple):
    """Real Bloch-vector form of the leading single-qubit stage of a product circuit.

    ``ψ = values @ angle_map + angle_shift`` gives the ``S'`` slot angles of each qubit (column
    ``j·n + q``); ``r_q = Σ_k c_k(ψ_{0q}) first[k, q]``, then ``r_q ← Σ_k c_k(ψ_{jq}) R_{jkq} r_q``
    with ``c(ψ) = (1, cos ψ, sin ψ)`` and ``R_j = rotations[j - 1].view(n, 3, 3, 3)``.
    """

    first: torch.Tensor  # (3, n, 3)
    rotations: torch.Tensor  # (S' - 1, n, 9, 3)
    angle_map: torch.Tensor  # (P, S'·n)
    angle_shift: torch.Tensor  # (S'·n,)

    @property
    def slots(self) -> int:
        return self.angle_map.size(1) // self.first.size(1)

    def bloch(self, psi: torch.Tensor) -> torch.Tensor:
        """Bloch vectors ``(G, n, 3)`` after the slots at slot angles ``psi`` ``(G, S', n)``."""
        slots = psi.unbind(1)  # S' × (G, n); a product form has at least one slot
        coef = torch.stack([torch.ones_like(slots[0]), torch.cos(slots[0]), torch.sin(slots[0])], -1)  # (G, n, k)
        r = torch.einsum("gnk,kni->gni", coef, self.first)
        for j, angle in enumerate(slots[1:], start=1):
            coef = torch.stack([torch.ones_like(angle), torch.cos(angle), torch.sin(angle)], -1)
            r = torch.einsum("gnk,nkij,gnj->gni", coef, self.rotations[j - 1].view(-1, 3, 3, 3), r)
        return r


class FourierBloch(NamedTuple):
    """Each qubit's Bloch vector of a product circuit as a trigonometric polynomial of the angles.

    .. math:: r = \\cos(a\\, W + w_0)\\, V,

    ``W`` ``(P, n·G)``, ``w_0`` ``(n·G,)`` and ``V`` ``(n·G, 3n)`` block-diagonal over qubits (:func:`expand`
    of the :class:`ProductForm` recurrence). ``∂ modes / ∂ arg = modes @ turn`` (``-sin``, ``cos``).
    """

    arg_map: torch.Tensor  # W (P, n·G)
    arg_shift: torch.Tensor  # w_0 (n·G,)
    to_bloch: torch.Tensor  # V (n·G, 3n)
    turn: torch.Tensor  # (n·G, n·G): signed permutation of the (cos, sin) pairs, 0 for w = 0

    @classmethod
    def of(cls, form: ProductForm) -> FourierBloch:
        """The float64 expansion of a float64 :class:`ProductForm`."""
        n = form.first.size(1)
        fourier = FourierModes.of(form.slots)
        bloch = form.bloch(fourier.points[:, :, None].expand(-1, -1, n))  # (G, n, 3) on the grid
        arg_map, arg_shift, to_bloch = expand(fourier, bloch, form.angle_map, form.angle_shift)
        return cls(arg_map, arg_shift, to_bloch, torch.block_diag(*[fourier.turn] * n))
