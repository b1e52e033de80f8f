"""Parameter-shift gradients of sampler probabilities, batched into one PUB per circuit.

:class:`BatchedParamShiftSamplerGradient` is a drop-in ``ParamShiftSamplerGradient`` of
qiskit-machine-learning: every ``±π/2``-shifted binding of every row goes into ONE PUB of ONE
``sampler.run`` (the stock gradient sends one PUB per shifted binding, slow on Aer, qiskit-aer #2448).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from qiskit.circuit import Parameter, ParameterExpression, QuantumCircuit
from qiskit.primitives import BaseSamplerV2, BitArray
from qiskit.providers import Options
from qiskit.transpiler.passes import TranslateParameterizedGates
from qiskit_machine_learning.gradients import ParamShiftSamplerGradient, SamplerGradientResult
# qiskit-machine-learning's own helper for one parameter per gate angle (private; the one use,
# checked by tests/test_library_internals.py): the circuit ParamShiftSamplerGradient differentiates.
from qiskit_machine_learning.gradients.utils import _assign_unique_parameters

from ..errors import QKLSTMError

__all__ = ["BatchedParamShiftSamplerGradient", "job_id", "probabilities"]

_MAX_CLBITS = 20  # dense distributions of 2**num_clbits entries per binding


def job_id(job: Any) -> str | None:
    try:
        return str(job.job_id())
    except Exception:  # noqa: BLE001 - an id is only decoration for the error message
        return None



def probabilities(pub_result: Any, rows: int) -> np.ndarray:
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
    dists: list[dict] | np.ndarray
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

    def shifted_angles(self, circuit: QuantumCircuit) -> int:
        """Gate angles shifted (each ``±π/2``) per binding of ``circuit`` when every parameter outside
        ``constant_columns`` is differentiated: the backward runs ``2 ×`` this many circuits per binding."""
        plan = self._plan(circuit)
        wanted = sorted(set(range(circuit.num_parameters)) - self.constant_columns)
        return int(np.flatnonzero(np.abs(plan.a[wanted]).sum(axis=0)).size) if wanted else 0

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
                    f"BatchedParamShiftSamplerGradient: sampler job {job_id(job)!r} failed: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc

        gradients: list[list[dict[int, float]]] = [[] for _ in circuits]
        for indices, plan, columns, shifted_g, pub_index in groups_out:
            dtheta: np.ndarray | None = None
            if pub_index is not None and results is not None:
                s, j = len(indices), shifted_g.size
                probs = probabilities(results[pub_index], s * 2 * j).reshape(s, 2, j, -1)
                dphi = (probs[:, 0] - probs[:, 1]) / 2  # (S, J, D)
                dtheta = np.einsum("sjd,pj->spd", dphi, plan.a[:, shifted_g])  # (S, P, D)
            for row, i in enumerate(indices):
                grads: list[dict[int, float]] = []
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

