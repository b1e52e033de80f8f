"""The exact executor: batched statevectors of one parameterized circuit, differentiable by adjoint sweeps."""

from __future__ import annotations

import math
from typing import Sequence

import torch
from qiskit.circuit import Parameter, ParameterExpression, QuantumCircuit
from torch.autograd.function import once_differentiable

from .memory import WORK_COPIES, MemoryPolicy, state_bytes
from .modes import ProductForm
from .numba_backend import NumbaBackend
from .stages import MonomialStage, SingleQubitStage, compile_stages, complex_dtype, monomial, move_stages
from .torch_backend import TorchBackend

__all__ = ["StatevectorExecutor"]


class _Statevectors(torch.autograd.Function):
    """``executor.simulate(values)`` whose backward is the adjoint sweep ``executor.adjoint``."""

    @staticmethod
    def forward(ctx, values, executor: StatevectorExecutor, drop_constant_tail: bool):
        states = executor.simulate(values, drop_constant_tail=drop_constant_tail)
        ctx.executor, ctx.drop = executor, drop_constant_tail
        ctx.save_for_backward(values, states)
        return states

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_states):
        values, states = ctx.saved_tensors
        grad = ctx.executor.adjoint(values, states, grad_states, drop_constant_tail=ctx.drop)
        return grad, None, None


class StatevectorExecutor:
    """Batched statevectors of one parameterized circuit, differentiable by adjoint sweeps.

    .. math:: |\\psi(\\theta_b)\\rangle = U(\\theta_b)\\,|0\\rangle^{\\otimes n}

    The circuit is compiled once (:mod:`.stages`); each call runs its stages on one backend, chosen
    once per call: :mod:`.native`'s compiled loops on the CPU up to ``numba_backend.MAX_QUBITS``
    qubits, torch's batched products otherwise.

    Args:
        circuit: the circuit to simulate (not modified). Gates: ``SUPPORTED_GATES``;
            barriers are skipped and final measurements ignored.
        parameters: order of the value columns (default ``circuit.parameters``).
        memory_limit: bytes a call may allocate (default :func:`~.memory.default_memory_limit`, a fraction
            of the memory available at call time); rows are chunked to fit, or the call is refused.

    Shape:
        ``values``: ``(B, P)`` float32 or float64 → states ``(B, 2**n)`` complex64/128, on the
        values' device.

    Raises:
        ValueError: a gate is not supported, a gate angle is not ``a·θ + b`` for one
            parameter, a gate follows a measurement, or the parameter list does not match.
        MemoryError: (at call time) the states would exceed ``memory_limit``.
    """

    def __init__(
        self, circuit: QuantumCircuit, parameters: Sequence[Parameter] | None = None, *, memory_limit: int | None = None
    ) -> None:
        self.num_qubits = circuit.num_qubits
        self.parameters = tuple(circuit.parameters if parameters is None else parameters)
        missing = set(circuit.parameters) - set(self.parameters)
        if missing:
            names = sorted(p.name for p in missing)
            raise ValueError(f"StatevectorExecutor: parameters missing from the column order: {names}")
        if isinstance(circuit.global_phase, ParameterExpression):
            raise ValueError("StatevectorExecutor: expected a numeric global phase, got a parameter expression")
        self.memory = MemoryPolicy(self.num_qubits, memory_limit)
        self.global_phase = float(circuit.global_phase)
        self._stages, self._rotations = compile_stages(circuit, self.parameters)
        self._cache: dict[tuple[torch.dtype, torch.device], list] = {}
        self._torch = TorchBackend(self.num_qubits, len(self.parameters), self._monomial)
        self._numba = NumbaBackend(self._stages, self.num_qubits, len(self.parameters), self._monomial)

    @property
    def memory_limit(self) -> int | None:
        """Bytes a call may allocate (``None``: a fraction of the memory available at call time)."""
        return self.memory.limit

    @memory_limit.setter
    def memory_limit(self, value: int | None) -> None:
        self.memory = MemoryPolicy(self.num_qubits, value)

    @property
    def shift_scales(self) -> tuple[float, ...] | None:
        """Per column, the ``a`` of its one gate ``R(a·θ + b)`` (RX/RY/RZ/P), or ``None``.

        When every parameter sits in exactly one such rotation, the two-term shift rule
        ``∂f/∂θ = a [f(θ + π/2a) − f(θ − π/2a)] / 2`` is exact for any expectation or fidelity.
        """
        scales = []
        for column in range(len(self.parameters)):
            coefficients = self._rotations.get(column, [])
            if len(coefficients) != 1 or coefficients[0] == 0.0:
                return None
            scales.append(coefficients[0])
        return tuple(scales)

    @property
    def is_product_circuit(self) -> bool:
        """True when ``U = M · (⊗_q u_q)`` with ``M`` a constant monomial (CX/CZ/SWAP) stage.

        Then ``U†(x')U(x)`` is a tensor product of single-qubit unitaries, so the fidelity
        kernel factorises into single-qubit kernels.
        """
        return all(isinstance(s, MonomialStage) for s in self._stages[1:])

    def state_bytes(self, rows: int, dtype: torch.dtype = torch.float32) -> int:
        """Bytes of ``rows`` states ``(rows, 2**n)`` of the complex dtype that goes with ``dtype``."""
        return state_bytes(self.num_qubits, rows, dtype)

    def limit(self, device: torch.device | str | None = None) -> int:
        """The memory limit in force for a call on ``device`` (bytes)."""
        return self.memory.limit_for(device)

    def chunk_rows(self, rows: int, dtype: torch.dtype, device, *, held: int = 0, copies: int = WORK_COPIES,
                   what: str = "states") -> int:
        """:meth:`.memory.MemoryPolicy.chunk_rows`: rows per chunk that fit the limit (or ``MemoryError``)."""
        return self.memory.chunk_rows(rows, dtype, device, held=held, copies=copies, what=what)

    # ------------------------------------------------------------------ compiled stages
    def _stages_for(self, dtype: torch.dtype, device: torch.device, drop_constant_tail: bool = False) -> list:
        """The stages in ``dtype`` on ``device``; ``drop_constant_tail`` leaves out a trailing monomial stage."""
        key = (dtype, torch.device(device))
        if key not in self._cache:
            self._cache[key] = move_stages(self._stages, dtype, torch.device(device))
        stages = self._cache[key]
        if drop_constant_tail and stages and isinstance(stages[-1], MonomialStage):
            return stages[:-1]
        return stages

    def _monomial(self, stage: MonomialStage, dtype: torch.dtype, device: torch.device) -> MonomialStage:
        if stage.perm is None:
            self.chunk_rows(1, dtype, device, held=2**self.num_qubits * 24, what="permutation")  # perm, inverse, phase
        return monomial(stage, self.num_qubits, dtype, device)

    def _backend(self, values: torch.Tensor) -> NumbaBackend | TorchBackend:
        """The compiled loops when they support the call (CPU, few qubits, modes), else torch."""
        return self._numba if self._numba.supports(values) else self._torch

    def _check_values(self, values: torch.Tensor) -> None:
        if not isinstance(values, torch.Tensor):
            raise TypeError(f"StatevectorExecutor: expected values to be a torch.Tensor, got {type(values).__name__}")
        if values.dim() != 2 or values.size(1) != len(self.parameters):
            raise ValueError(
                f"StatevectorExecutor: expected values of shape (B, {len(self.parameters)}), got {tuple(values.shape)}"
            )
        if values.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"StatevectorExecutor: expected float32 or float64 values, got {values.dtype}")

    # ------------------------------------------------------------------ execution
    def statevectors(self, values: torch.Tensor, *, drop_constant_tail: bool = False) -> torch.Tensor:
        """States ``(B, 2**n)`` for parameter values ``(B, P)`` (columns in ``self.parameters`` order).

        Differentiable in ``values`` (adjoint backward, first order). ``drop_constant_tail``
        leaves out a trailing constant CX/CZ/SWAP stage and the global phase: the states then
        differ from the circuit's by one fixed unitary, which no overlap ``⟨ψ(θ')|ψ(θ)⟩`` sees.
        """
        self._check_values(values)
        if values.requires_grad and torch.is_grad_enabled():
            return _Statevectors.apply(values, self, drop_constant_tail)
        return self.simulate(values, drop_constant_tail=drop_constant_tail)

    def simulate(self, values: torch.Tensor, *, drop_constant_tail: bool = False) -> torch.Tensor:
        """:meth:`statevectors` without autograd, in row chunks that fit the memory limit."""
        self._check_values(values)
        values = values.detach()
        batch = values.size(0)
        chunk = self.chunk_rows(batch, values.dtype, values.device, held=self.state_bytes(batch, values.dtype))
        stages = self._stages_for(values.dtype, values.device, drop_constant_tail)
        backend = self._backend(values)
        if chunk >= batch:
            out = backend.simulate(stages, values)
        else:
            out = torch.empty(batch, 2**self.num_qubits, dtype=complex_dtype(values.dtype), device=values.device)
            for start in range(0, batch, chunk):
                out[start : start + chunk] = backend.simulate(stages, values[start : start + chunk])
        if self.global_phase and not drop_constant_tail:
            out *= complex(math.cos(self.global_phase), math.sin(self.global_phase))
        return out

    def apply_stages(self, values: torch.Tensor, *, drop_constant_tail: bool = False) -> torch.Tensor:
        """:meth:`simulate` as plain torch operations on ``values`` ``(B, P)``: no check, chunking or
        detaching, so torch's forward-mode autograd (dual tensors) propagates through it; one
        chunk's worth of rows at a time is the caller's business. The global phase is left out."""
        return self._torch.simulate(self._stages_for(values.dtype, values.device, drop_constant_tail), values)

    def jvp(
        self, values: torch.Tensor, tangents: torch.Tensor, *, drop_constant_tail: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """States ``ψ`` ``(B, 2**n)`` and their directional derivatives ``(K, B, 2**n)`` along
        ``tangents`` ``(K, B, P)`` of the values ``(B, P)`` (forward mode, the product rule per stage).

        No chunking (the caller's business); the global phase is left out, as in :meth:`apply_stages`.
        """
        self._check_values(values)
        if not isinstance(tangents, torch.Tensor) or tangents.dim() != 3 or tangents.shape[1:] != values.shape \
                or tangents.dtype != values.dtype:
            shape = tuple(tangents.shape) if isinstance(tangents, torch.Tensor) else type(tangents).__name__
            raise ValueError(f"StatevectorExecutor: expected tangents of shape (K, {values.size(0)}, {values.size(1)}) "
                             f"and dtype {values.dtype}, got {shape}"
                             + (f" {tangents.dtype}" if isinstance(tangents, torch.Tensor) else ""))
        stages = self._stages_for(values.dtype, values.device, drop_constant_tail)
        return self._backend(values).tangents(stages, values, tangents)

    def adjoint(
        self, values: torch.Tensor, states: torch.Tensor, grad_states: torch.Tensor, *, drop_constant_tail: bool = False
    ) -> torch.Tensor:
        """``∂L/∂values`` ``(B, P)`` from states ``(B, 2**n)`` of :meth:`simulate` and ``g = ∂L/∂states``.

        torch's convention for complex tensors: ``g = ∂L/∂Re ψ + i ∂L/∂Im ψ``, so
        ``∂L/∂θ = Re⟨g|∂_θ ψ⟩``. One reverse sweep per chunk of rows; ``states`` is not modified.
        """
        values = values.detach()
        batch = values.size(0)
        grad = values.new_zeros(batch, len(self.parameters))
        if not len(self.parameters) or batch == 0:
            return grad
        stages = self._stages_for(values.dtype, values.device, drop_constant_tail)
        rotate = bool(self.global_phase) and not drop_constant_tail  # un-apply the global phase e^{iγ}
        phase = complex(math.cos(self.global_phase), -math.sin(self.global_phase))
        chunk = self.chunk_rows(batch, values.dtype, values.device, copies=2 * WORK_COPIES, what="adjoint sweep")
        backend = self._backend(values)
        for start in range(0, batch, chunk):
            rows = slice(start, start + chunk)
            psi, lam = states[rows], grad_states[rows]
            if rotate:
                psi, lam = psi * phase, lam * phase
            grad[rows] = backend.reverse(stages, values[rows], psi, lam)
        return grad

    # ------------------------------------------------------------------ product circuits
    def product_form(self, dtype: torch.dtype = torch.float64, device: torch.device | str | None = None) -> ProductForm | None:
        """The :class:`~.modes.ProductForm` of a product circuit's single-qubit stage, or ``None``.

        ``None`` when the circuit is not a product circuit or does not start with one-qubit gates.
        """
        if not self.is_product_circuit or not self._stages or not isinstance(self._stages[0], SingleQubitStage):
            return None
        stage = self._stages_for(dtype, torch.device(device if device is not None else "cpu"))[0]
        return ProductForm(stage.bloch_first, stage.bloch_abc, stage.bloch_map, stage.bloch_shift)

    def product_bloch(self, values: torch.Tensor) -> torch.Tensor:
        """Bloch vectors ``(n, 3, B)`` (qubit-major) of the qubits of a product circuit.

        For :attr:`is_product_circuit` circuits ``U(θ)|0⟩ = M ⊗_q u_q(θ)`` with a constant
        unitary ``M`` (CX/CZ/SWAP stages), so ``|⟨ψ(θ')|ψ(θ)⟩|² = Π_q (1 + r_q(θ)·r_q(θ')) / 2``
        with ``r_q`` the Bloch vector of ``u_q``. Each gate acts on ``r`` as the SO(3) rotation
        ``A + cos ψ B + sin ψ C`` derived from its 2×2 matrix at compile time; real arithmetic,
        no statevector (any qubit count).
        """
        if not self.is_product_circuit:
            raise ValueError("StatevectorExecutor: expected a product circuit for product_bloch, got entangling stages")
        n, batch = self.num_qubits, values.size(0)
        form = self.product_form(values.dtype, values.device)
        if form is None:
            zero = values.new_zeros(n, 3, batch)
            zero[:, 2] = 1.0  # |0>
            return zero
        psi = torch.addmm(form.angle_shift[:, None], form.angle_map.t(), values.t())  # (S'·n, B)
        ones = values.new_ones(n, 1, batch)
        bloch: torch.Tensor | None = None
        for s, angle in enumerate(psi.view(psi.size(0) // n, n, 1, batch).unbind(0)):  # (n, 1, B) per slot
            coef = torch.cat([ones, torch.cos(angle), torch.sin(angle)], dim=1)  # (n, 3, B): 1, cos ψ, sin ψ
            if bloch is None:  # first slot on the folded constant vector: terms (n, 3 terms, 3)
                terms = form.first.permute(1, 0, 2)[..., None]  # (n, 3, 3, 1)
            else:  # (n, 9, 3) @ (n, 3, B): A r, B r, C r for every qubit at once
                terms = torch.bmm(form.rotations[s - 1], bloch).view(n, 3, 3, batch)
            bloch = (coef[:, :, None, :] * terms).sum(1)  # (n, 3, B)
        if bloch is None:
            raise ValueError(f"{type(self).__name__}: expected a product form with at least one parameterised slot")
        return bloch

    def probabilities(self, values: torch.Tensor) -> torch.Tensor:
        """Born probabilities ``(B, 2**n)`` of the computational basis states."""
        state = self.statevectors(values)
        return state.real.square() + state.imag.square()

    def __repr__(self) -> str:
        kinds = ["1q" if isinstance(s, SingleQubitStage) else "perm" for s in self._stages]
        return f"StatevectorExecutor(num_qubits={self.num_qubits}, parameters={len(self.parameters)}, stages={kinds})"
