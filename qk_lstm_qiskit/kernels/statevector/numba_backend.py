"""The executor's stages by :mod:`.native`'s compiled loops: one call per sweep over all rows (CPU).

The one-qubit stages enter as their Fourier modes (:class:`~.modes.UnitaryModes`), whose arguments
``values W + w_0`` and cosines torch computes vectorised; the monomial stages as permutations.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from . import native
from .stages import SingleQubitStage, complex_dtype

__all__ = ["NumbaBackend", "MAX_QUBITS"]

# Up to this many qubits the CPU runs the stages by :mod:`.native`'s compiled loops (one call per sweep); above,
# torch's batched products of Kronecker groups are faster. QK-LSTM forward + backward, B=32, T=25, R=8, reps 2,
# native vs torch, best of 5, two rounds: 9 qubits 107/69 vs 150/126 ms, 10: 215/121 vs 189/191, 11: 267/224 vs
# 317/191, 12: 437/424 vs 328/298.
MAX_QUBITS = 10  #: the most qubits the compiled loops run (measured crossover above)


class NumbaBackend:
    """:meth:`simulate`, :meth:`tangents` and :meth:`reverse` as :mod:`.native` calls (same contract as
    :class:`~.torch_backend.TorchBackend`); runs when :meth:`supports` a call.

    Args:
        stages: the compiled float64 stages (their modes are packed once per dtype).
        num_qubits, num_parameters: of the circuit.
        monomial: ``(stage, dtype, device) → stage`` with its permutation built (the executor's).
    """

    def __init__(self, stages: list, num_qubits: int, num_parameters: int, monomial: Callable) -> None:
        self.stages, self.num_qubits, self.num_parameters, self.monomial = stages, num_qubits, num_parameters, monomial
        self.all_modes = all(s.modes is not None for s in stages if isinstance(s, SingleQubitStage))
        self._programs: dict[tuple[torch.dtype, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._modes: dict[torch.dtype, tuple[torch.Tensor, torch.Tensor, np.ndarray]] = {}

    def supports(self, values: torch.Tensor) -> bool:
        """CPU tensors, at most ``MAX_QUBITS`` qubits, every one-qubit stage given by its Fourier modes."""
        return values.device.type == "cpu" and self.num_qubits <= MAX_QUBITS and self.all_modes

    def simulate(self, stages: list, values: torch.Tensor) -> torch.Tensor:
        program, perms, phases = self._program(stages, values.dtype)
        _, args, coef = self._mode_arguments(values)
        out = torch.empty(values.size(0), 2**self.num_qubits, dtype=complex_dtype(values.dtype))
        native.simulate(program, torch.cos(args).numpy(), coef, perms, phases, out.numpy())
        return out

    def tangents(self, stages: list, values: torch.Tensor, tangents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, directions = values.size(0), tangents.size(0)
        program, perms, phases = self._program(stages, values.dtype)
        arg_map, args, coef = self._mode_arguments(values)
        rates = (tangents @ arg_map).view(directions, *args.shape).mul_(-torch.sin(args))
        packed = values.new_empty(batch, 1 + directions, 2**self.num_qubits, dtype=complex_dtype(values.dtype))
        native.tangents(program, torch.cos(args).numpy(), rates.numpy(), coef, perms, phases, packed.numpy())
        return packed[:, 0], packed[:, 1:].transpose(0, 1)

    def reverse(self, stages: list, values: torch.Tensor, psi: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
        program, perms, phases = self._program(stages, values.dtype)
        arg_map, args, coef = self._mode_arguments(values)
        grad_modes = torch.empty_like(args)
        native.reverse(program, torch.cos(args).numpy(), coef, perms, phases, psi.contiguous().clone().numpy(),
                       lam.resolve_conj().contiguous().clone().numpy(), grad_modes.numpy())
        return grad_modes.mul_(-torch.sin(args)).view(values.size(0), -1) @ arg_map.t()

    def _mode_arguments(self, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        """All one-qubit stages' modes: ``W`` ``(P, S₁·n·G)``, the arguments ``values W + w_0`` as
        ``(B, S₁, n, G)`` (each stage's ``G`` padded to the largest) and ``coef`` ``(S₁, n, G, 4)`` complex."""
        dtype = values.dtype
        if dtype not in self._modes:
            n = self.num_qubits
            singles = [s.modes for s in self.stages if isinstance(s, SingleQubitStage) and s.modes is not None]  # all
            width = max([m.arg_map.size(1) // n for m in singles], default=1)
            maps = torch.zeros(self.num_parameters, len(singles), n, width, dtype=torch.float64)
            shifts = torch.zeros(len(singles), n, width, dtype=torch.float64)
            coefs = torch.zeros(len(singles), n, width, 4, dtype=torch.complex128)
            for j, modes in enumerate(singles):
                g = modes.arg_map.size(1) // n
                maps[:, j, :, :g] = modes.arg_map.view(-1, n, g)
                shifts[j, :, :g] = modes.arg_shift.view(n, g)
                entries = modes.to_entries.view(n, g, n, 4, 2).diagonal(dim1=0, dim2=2).permute(3, 0, 1, 2)  # (n, g, 4, 2)
                coefs[j, :, :g] = torch.view_as_complex(entries.contiguous())
            self._modes[dtype] = (maps.flatten(1).to(dtype), shifts.flatten().to(dtype),
                                  coefs.to(complex_dtype(dtype)).numpy())
        arg_map, arg_shift, coef = self._modes[dtype]
        return arg_map, torch.addmm(arg_shift, values, arg_map).view(values.size(0), *coef.shape[:3]), coef

    def _program(self, stages: list, dtype: torch.dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(program, perms, phases)`` of ``stages`` (a prefix of the CPU stages in ``dtype``)."""
        key = (dtype, len(stages))
        if key not in self._programs:
            program: list[tuple[int, int]] = []
            perms: list[np.ndarray] = []
            phases: list[np.ndarray] = []
            singles = 0
            for stage in stages:
                if isinstance(stage, SingleQubitStage):
                    program.append((0, singles))
                    singles += 1
                    continue
                stage = self.monomial(stage, dtype, torch.device("cpu"))
                program.append((1, len(perms)))
                perms.append(stage.perm.numpy())
                phases.append(np.ones(2**self.num_qubits) if stage.phase is None else stage.phase.numpy())
            dim, cdtype = 2**self.num_qubits, np.complex64 if dtype == torch.float32 else np.complex128
            self._programs[key] = (
                np.array(program, dtype=np.int64).reshape(-1, 2),
                np.array(perms, dtype=np.int64).reshape(-1, dim),
                np.array(phases, dtype=cdtype).reshape(-1, dim),
            )
        return self._programs[key]
