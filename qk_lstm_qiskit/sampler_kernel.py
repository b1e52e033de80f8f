"""Fidelity-kernel matrices on a Qiskit ``BaseSamplerV2``, differentiable by parameter shift.

The compute-uncompute circuit ``feature_map.fidelity_circuit()`` becomes a qiskit-machine-learning
``SamplerQNN`` whose output is ``P(0…0)``, wrapped in ``TorchConnector`` for autograd. Batching:

* forward: all ``N·M`` (x, y) pairs are the rows of ONE PUB in ONE ``sampler.run`` (``SamplerQNN``);
* backward: :class:`BatchedParamShiftSamplerGradient` (a drop-in ``ParamShiftSamplerGradient``)
  puts every ``±π/2``-shifted binding of every pair into ONE PUB of ONE ``sampler.run``. The stock
  gradient sends one PUB per shifted binding (``N·M·4P`` PUBs), slow on Aer (qiskit-aer #2448).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from qiskit.circuit import Parameter, ParameterExpression, QuantumCircuit
from qiskit.primitives import BaseSamplerV2, BitArray
from qiskit.providers import Options
from qiskit.transpiler.passes import TranslateParameterizedGates
from qiskit_machine_learning.connectors import TorchConnector
from qiskit_machine_learning.exceptions import QiskitMachineLearningError
from qiskit_machine_learning.gradients import ParamShiftSamplerGradient, SamplerGradientResult
from qiskit_machine_learning.gradients.utils import _assign_unique_parameters
from qiskit_machine_learning.neural_networks import SamplerQNN
from torch import nn

from .errors import QKLSTMError
from .feature_map import FeatureMap

__all__ = ["SamplerFidelity", "BatchedParamShiftSamplerGradient"]

logger = logging.getLogger(__name__)

_MAX_CLBITS = 20  # dense distributions of 2**num_clbits entries per binding


def _job_id(job: Any) -> str | None:
    try:
        return str(job.job_id())
    except Exception:  # noqa: BLE001 - an id is only decoration for the error message
        return None


def _all_zeros(outcome: int) -> int:
    """SamplerQNN ``interpret``: bit string ``0…0`` → class 0, anything else → class 1."""
    return 0 if outcome == 0 else 1


class _RecordingSampler(BaseSamplerV2):
    """Delegates ``run`` to the user's sampler and keeps the last job (for error messages)."""

    def __init__(self, sampler: BaseSamplerV2) -> None:
        self.sampler = sampler
        self.last_job: Any = None

    def run(self, pubs, *, shots: int | None = None):
        try:
            job = self.sampler.run(pubs) if shots is None else self.sampler.run(pubs, shots=shots)
        except Exception as exc:
            raise QKLSTMError(
                f"SamplerFidelity: {type(self.sampler).__name__}.run failed to submit a job: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        self.last_job = job
        return job


def _probabilities(pub_result: Any, rows: int) -> np.ndarray:
    """Outcome probabilities ``(rows, 2**num_clbits)`` of a PUB result with ``rows`` bindings.

    Counts from a ``BitArray`` (Aer, Runtime, ``StatevectorSampler``) are histogrammed in numpy;
    exact containers (``QMLSampler(shots=None)``) are read with ``get_probabilities``.
    """
    fields = list(pub_result.data.values())
    data = fields[0] if len(fields) == 1 else pub_result.join_data()
    num_bits = data.num_bits
    if num_bits > _MAX_CLBITS:
        raise ValueError(f"BatchedParamShiftSamplerGradient: expected at most {_MAX_CLBITS} clbits, got {num_bits}")
    size = 2**num_bits
    if isinstance(data, BitArray):
        packed = data.array.reshape(rows, data.num_shots, -1)  # (rows, shots, bytes), big-endian bytes
        outcomes = np.zeros(packed.shape[:2], dtype=np.int64)
        for byte in range(packed.shape[-1]):
            outcomes = (outcomes << 8) | packed[..., byte]
        flat = (outcomes + size * np.arange(rows)[:, None]).ravel()
        return np.bincount(flat, minlength=rows * size).reshape(rows, size) / data.num_shots
    probs = np.zeros((rows, size))
    if hasattr(data, "get_probabilities"):
        dists = np.asarray(data.get_probabilities(), dtype=object).reshape(rows)
    else:
        dists = []
        for row in range(rows):
            counts = data.get_counts(row)
            total = sum(counts.values())
            dists.append({k: v / total for k, v in counts.items()})
    for row, dist in enumerate(dists):
        for key, value in dist.items():
            probs[row, int(key.replace(" ", ""), 2)] += value
    return probs


class _ShiftPlan:
    """A circuit with one fresh parameter φ_g per gate angle, and the affine map θ → φ.

    ``φ = θ A + b`` with ``A`` ``(P, G)``; parameter shift on φ_g is exact for the supported
    rotation gates, and ``∂p/∂θ = A ∂p/∂φ`` (chain rule).
    """

    def __init__(self, circuit: QuantumCircuit, supported_gates: Sequence[str]) -> None:
        translated = TranslateParameterizedGates(list(supported_gates))(circuit)
        unique = _assign_unique_parameters(translated)
        g_circuit = unique.gradient_circuit
        g_circuit.global_phase = 0.0  # probabilities do not depend on it
        g_params = list(g_circuit.parameters)
        columns = {p: i for i, p in enumerate(circuit.parameters)}
        a = np.zeros((len(columns), len(g_params)))
        b = np.zeros(len(g_params))
        for j, g in enumerate(g_params):
            expr: ParameterExpression = unique.gradient_parameter_map[g]
            for p in expr.parameters:
                coeff = expr.gradient(p)
                if isinstance(coeff, ParameterExpression) and coeff.parameters:
                    raise ValueError(
                        f"BatchedParamShiftSamplerGradient: expected gate angles affine in the circuit "
                        f"parameters, got {expr}"
                    )
                a[columns[p], j] = complex(coeff).real
            b[j] = complex(expr.bind({p: 0.0 for p in expr.parameters})).real
        self.circuit = g_circuit
        self.a, self.b = a, b


class BatchedParamShiftSamplerGradient(ParamShiftSamplerGradient):
    """Parameter-shift gradient of sampling probabilities in one job, one PUB per distinct circuit.

    .. math::
        \\frac{\\partial p(z)}{\\partial \\theta_k} = \\sum_g A_{kg}
        \\frac{p_{\\varphi + \\frac{\\pi}{2} e_g}(z) - p_{\\varphi - \\frac{\\pi}{2} e_g}(z)}{2},
        \\qquad \\varphi = \\theta A + b

    Every gate angle gets its own parameter φ_g (as in ``ParamShiftSamplerGradient``), so
    transpiled circuits whose angles read ``θ + π`` or ``x − y`` are handled. All samples of a
    circuit and all their shifts are the rows of one 2-D PUB.

    Args:
        sampler: a ``BaseSamplerV2``.
        constant_columns: indices (in ``circuit.parameters`` order) treated as constants:
            their gradient is reported as zero and their shifts are not run (default none).

    Raises:
        QKLSTMError: the sampler job failed (names the job id).
        ValueError: a gate angle is not affine in the circuit parameters.
    """

    def __init__(self, sampler: BaseSamplerV2, *, constant_columns: Sequence[int] = ()) -> None:
        if not isinstance(sampler, BaseSamplerV2):
            raise TypeError(
                "BatchedParamShiftSamplerGradient: expected sampler to be a qiskit.primitives.BaseSamplerV2, "
                f"got {type(sampler).__name__}"
            )
        super().__init__(sampler=sampler)
        self.constant_columns = frozenset(int(c) for c in constant_columns)
        self._plans: dict[int, tuple[QuantumCircuit, _ShiftPlan]] = {}

    def _plan(self, circuit: QuantumCircuit) -> _ShiftPlan:
        cached = self._plans.get(id(circuit))
        if cached is None or cached[0] is not circuit:
            cached = (circuit, _ShiftPlan(circuit, self.SUPPORTED_GATES))
            self._plans[id(circuit)] = cached
        return cached[1]

    def _run(
        self,
        circuits: Sequence[QuantumCircuit],
        parameter_values: Sequence[Sequence[float]],
        parameters: Sequence[Sequence[Parameter]],
        **options,
    ) -> SamplerGradientResult:
        groups: dict[int, list[int]] = {}
        for i, circuit in enumerate(circuits):
            groups.setdefault(id(circuit), []).append(i)
        pubs, groups_out = [], []
        for indices in groups.values():
            circuit = circuits[indices[0]]
            plan = self._plan(circuit)
            columns = {p: k for k, p in enumerate(circuit.parameters)}
            wanted = sorted(
                {columns[p] for i in indices for p in parameters[i]} - self.constant_columns
            )
            shifted_g = np.flatnonzero(np.abs(plan.a[wanted]).sum(axis=0)) if wanted else np.array([], int)
            values = np.asarray([parameter_values[i] for i in indices], dtype=float)  # (S, P)
            phi = values @ plan.a + plan.b  # (S, G)
            rows = None
            if shifted_g.size:
                s, j, g = len(indices), shifted_g.size, phi.shape[1]
                rows = np.broadcast_to(phi[:, None, None, :], (s, 2, j, g)).copy()  # (S, ±, J, G)
                rows[:, 0, np.arange(j), shifted_g] += math.pi / 2
                rows[:, 1, np.arange(j), shifted_g] -= math.pi / 2
                pubs.append((plan.circuit, rows.reshape(-1, g)))
            groups_out.append((indices, plan, columns, shifted_g, len(pubs) - 1 if rows is not None else None))

        results = None
        if pubs:
            job = self._sampler.run(pubs)
            try:
                results = job.result()
            except Exception as exc:
                raise QKLSTMError(
                    f"BatchedParamShiftSamplerGradient: sampler job {_job_id(job)!r} failed: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc

        gradients: list[list[dict[int, float]]] = [[] for _ in circuits]
        for indices, plan, columns, shifted_g, pub_index in groups_out:
            dtheta = None
            if pub_index is not None:
                s, j = len(indices), shifted_g.size
                probs = _probabilities(results[pub_index], s * 2 * j).reshape(s, 2, j, -1)
                dphi = (probs[:, 0] - probs[:, 1]) / 2  # (S, J, D)
                dtheta = np.einsum("sjd,pj->spd", dphi, plan.a[:, shifted_g])  # (S, P, D)
            for row, i in enumerate(indices):
                grads = []
                for p in parameters[i]:
                    col = columns[p]
                    if dtheta is None or col in self.constant_columns:
                        grads.append({})
                        continue
                    dist = dtheta[row, col]
                    grads.append({int(k): float(dist[k]) for k in np.flatnonzero(dist)})
                gradients[i] = grads
        metadata = [{"parameters": list(p)} for p in parameters]
        return SamplerGradientResult(gradients=gradients, metadata=metadata, options=Options(**options))


class _KernelQNN(SamplerQNN):
    """``SamplerQNN`` for ``interpret=_all_zeros``: vectorised outcome counting, and job
    failures surfacing as :class:`QKLSTMError` naming the job id."""

    def _postprocess(self, num_samples: int, result) -> np.ndarray:
        """``[P(0…0), 1 − P(0…0)]`` per binding ``(num_samples, 2)``, counted in numpy.

        Same values as ``SamplerQNN._postprocess`` with ``_all_zeros`` on a circuit without a
        layout, which converts every shot of every binding to a Python string.
        """
        probs = _probabilities(result[0], num_samples)  # (S, 2**num_clbits)
        return np.stack([probs[:, 0], probs[:, 1:].sum(axis=1)], axis=1)

    def _failure(self, stage: str, exc: QiskitMachineLearningError) -> QKLSTMError:
        cause = exc.__cause__ or exc
        if isinstance(cause, QKLSTMError):
            return cause
        job_id = _job_id(getattr(self.sampler, "last_job", None))
        return QKLSTMError(
            f"SamplerFidelity: sampler job {job_id!r} failed in the {stage} pass: {type(cause).__name__}: {cause}"
        )

    def _forward(self, input_data, weights):
        try:
            return super()._forward(input_data, weights)
        except QiskitMachineLearningError as exc:
            error = self._failure("forward", exc)
            raise error from (error.__cause__ or exc.__cause__ or exc)

    def _backward(self, input_data, weights):
        try:
            return super()._backward(input_data, weights)
        except QiskitMachineLearningError as exc:
            error = self._failure("backward", exc)
            raise error from (error.__cause__ or exc.__cause__ or exc)


class SamplerFidelity(nn.Module):
    """Fidelity-kernel matrix from a Sampler: ``K[n, m] = P(0…0)`` of ``U†(y_m) U(x_n)|0⟩``.

    .. math:: K_{nm} = |\\langle 0 | U^\\dagger(\\theta^y_m) U(\\theta^x_n) | 0 \\rangle|^2

    Autograd runs through qiskit-machine-learning: a ``SamplerQNN`` (``input_gradients=True``,
    output ``[P(0…0), 1 − P(0…0)]``) in a ``TorchConnector``, with
    :class:`BatchedParamShiftSamplerGradient`. One forward is one ``sampler.run`` holding one
    PUB with the ``N·M`` bindings; its backward is one more ``run`` with one PUB of shifted
    bindings (``N·M·2P`` rows, or ``N·M·4P`` when ``ay`` requires grad). The module holds no
    parameters or buffers, so a ``state_dict`` is the same as on the exact executor.

    Args:
        feature_map: provides ``fidelity_circuit()`` and ``num_parameters`` (P).
        sampler: a ``qiskit.primitives.BaseSamplerV2`` (Aer, Runtime, ``QMLSampler``).
        pass_manager: transpiles the composed, measured circuit once (e.g. to a device's ISA);
            ``measure_all`` runs before it, so clbit q still reads logical qubit q whatever the
            layout (default ``None``: the sampler gets the logical circuit).

    Shape:
        ``ax``: ``(N, P)``, ``ay``: ``(M, P)`` angles from ``feature_map.angles`` → ``(N, M)`` in
        ``ax.dtype`` (TorchConnector computes in float32).

    Raises:
        TypeError: ``sampler`` is not a ``BaseSamplerV2``, or a bad ``feature_map``/``pass_manager``.
        ValueError: angle tensors of the wrong shape; a pass manager that drops parameters.
        QKLSTMError: a sampler job failed (names the job id), re-raised from its cause.

    Example:
        >>> from qiskit_machine_learning.primitives import QMLSampler
        >>> fm = FeatureMap(2, reps=2)
        >>> k = SamplerFidelity(fm, QMLSampler(shots=None))
        >>> k(fm.angles(torch.zeros(3, 2)), fm.angles(torch.zeros(1, 2))).shape
        torch.Size([3, 1])
    """

    def __init__(self, feature_map: FeatureMap, sampler: BaseSamplerV2, *, pass_manager=None) -> None:
        super().__init__()
        if not isinstance(feature_map, FeatureMap):
            raise TypeError(
                f"SamplerFidelity: expected feature_map to be a FeatureMap, got {type(feature_map).__name__}"
            )
        if not isinstance(sampler, BaseSamplerV2):
            raise TypeError(
                "SamplerFidelity: expected sampler to be a qiskit.primitives.BaseSamplerV2, "
                f"got {type(sampler).__name__}"
            )
        if pass_manager is not None and not callable(getattr(pass_manager, "run", None)):
            raise TypeError(
                f"SamplerFidelity: expected pass_manager to have a run(circuit) method, got {type(pass_manager).__name__}"
            )
        self.num_parameters = feature_map.num_parameters
        circuit, x, y = feature_map.fidelity_circuit()
        if pass_manager is not None:
            circuit = self._transpile(circuit, pass_manager)
        self.circuit = circuit
        self.input_params = (*x, *y)
        self.sampler = _RecordingSampler(sampler)
        self.transpiled = pass_manager is not None
        self._connectors: dict[bool, TorchConnector] = {}  # a plain dict: not submodules

    def _transpile(self, circuit: QuantumCircuit, pass_manager) -> QuantumCircuit:
        isa = pass_manager.run(circuit)
        if not isinstance(isa, QuantumCircuit):
            raise TypeError(
                f"SamplerFidelity: expected pass_manager.run to return a QuantumCircuit, got {type(isa).__name__}"
            )
        if set(isa.parameters) != set(circuit.parameters):
            raise ValueError(
                f"SamplerFidelity: expected the transpiled circuit to keep all {circuit.num_parameters} "
                f"parameters, got {isa.num_parameters}"
            )
        if isa.num_clbits != circuit.num_clbits:
            raise ValueError(
                f"SamplerFidelity: expected the transpiled circuit to keep {circuit.num_clbits} clbits, "
                f"got {isa.num_clbits}"
            )
        isa = isa.copy()
        # measure_all ran before transpiling: clbit q holds logical qubit q. SamplerQNN would
        # remap outcomes through the layout (correct only for measurements added afterwards).
        isa._layout = None
        logger.info("SamplerFidelity: transpiled fidelity circuit, depth %d, ops %s", isa.depth(), dict(isa.count_ops()))
        return isa

    def connector(self, differentiate_y: bool = True) -> TorchConnector:
        """The cached ``TorchConnector(SamplerQNN)``; ``differentiate_y=False`` skips the y shifts."""
        if differentiate_y not in self._connectors:
            p = self.num_parameters
            constant = () if differentiate_y else range(p, 2 * p)  # y angles come after x in the inputs
            qnn = _KernelQNN(
                circuit=self.circuit,
                sampler=self.sampler,
                input_params=list(self.input_params),
                interpret=_all_zeros,
                output_shape=2,
                gradient=BatchedParamShiftSamplerGradient(self.sampler, constant_columns=constant),
                input_gradients=True,
            )
            self._connectors[differentiate_y] = TorchConnector(qnn)
        return self._connectors[differentiate_y]

    def forward(self, ax: torch.Tensor, ay: torch.Tensor) -> torch.Tensor:
        p = self.num_parameters
        for name, rows, t in (("ax", "N", ax), ("ay", "M", ay)):
            if t.dim() != 2 or t.size(1) != p:
                raise ValueError(f"SamplerFidelity: expected {name} of shape ({rows}, {p}), got {tuple(t.shape)}")
            if not t.is_floating_point():
                raise TypeError(f"SamplerFidelity: expected {name} to be a floating-point tensor, got {t.dtype}")
        n, m = ax.size(0), ay.size(0)
        if n == 0 or m == 0:
            return ax.new_zeros(n, m)
        ay = ay.to(ax.dtype)
        pairs = torch.cat([ax.repeat_interleave(m, dim=0), ay.repeat(n, 1)], dim=1)  # (N·M, 2P), row n·M + m
        differentiate_y = torch.is_grad_enabled() and ay.requires_grad
        out = self.connector(differentiate_y)(pairs)  # (N·M, 2) float32: [P(0…0), 1 − P(0…0)]
        return out[:, 0].to(ax.dtype).reshape(n, m)

    def extra_repr(self) -> str:
        return (
            f"sampler={type(self.sampler.sampler).__name__}, num_parameters={self.num_parameters}, "
            f"transpiled={self.transpiled}"
        )
