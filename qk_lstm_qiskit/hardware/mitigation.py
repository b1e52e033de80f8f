"""Readout-mitigated kernel estimates: ``none``, ``m3`` and the product estimator ``marginal``.

A kernel value is ``k = P(0…0)`` of the compute-uncompute circuit, measured with ``S`` shots.
With the readout calibration of :mod:`~qk_lstm_qiskit.hardware.readout` (``A_q``, columns =
prepared state, ``det_q = P(0|0) + P(1|1) − 1``) three estimators are offered:

``none``
    the frequency of ``0…0``: :math:`\\hat k = n_{0…0}/S`,
    :math:`\\mathrm{Var} = k_{obs}(1 − k_{obs})/S \\le 1/(4S)`; biased by readout (and gate) noise.
``m3``
    mthree's matrix-free correction of each binding's counts, then the quasi-probability of
    ``0…0``. In the tensored model it is the linear estimator
    :math:`\\hat k = \\frac1S\\sum_{shots} c_b`, :math:`c_b = \\prod_q (A_q^{-1})_{0 b_q}`, so
    :math:`\\mathrm{Var} = (\\sum_b c_b^2 p_b − k^2)/S \\le \\gamma/(4S)`, :math:`\\gamma = (\\max_b c_b − \\min_b c_b)^2`
    (Popoviciu; :func:`variance_factor`).
``marginal``
    for circuits that factorise over qubits (no multi-qubit gate in the ISA circuit, e.g. the
    paper's map, whose CNOTs the transpiler removes): the per-qubit marginals of the same shots,
    each corrected by its own ``A_q``, multiplied:
    :math:`\\hat k = \\prod_q \\hat p_q(0)`, :math:`\\hat p_q(0) = (\\hat p^{obs}_q(0) − P_q(0|1))/\\det_q`
    (clipped to [0, 1]). The factors come from independent qubits, so (before clipping)
    :math:`E\\hat k = k` and
    :math:`\\mathrm{Var} = \\prod_q(\\mu_q^2 + \\sigma_q^2) − \\prod_q \\mu_q^2 = \\sum_q \\sigma_q^2\\prod_{r\\ne q}\\mu_r^2 + O(S^{-2})`,
    :math:`\\sigma_q^2 = p^{obs}_q(0)(1 − p^{obs}_q(0))/(S\\det_q^2)` (:func:`marginal_variance`);
    to first order never above the tensored ``m3`` variance (:math:`\\mu_r^2 \\le E[c_r^2]`),
    and without readout correction never above the frequency's :math:`k(1−k)/S`.

:func:`shots_for_target_error` turns a kernel standard error ``E`` into
:math:`S = \\lceil \\gamma / (4E^2) \\rceil` shots per circuit, a bound for every kernel value.

:class:`MitigatedSampler` wraps any ``BaseSamplerV2``: it calibrates the measured physical
qubits once (through the wrapped sampler, or from the run folder's cache), runs the PUBs, and
returns each binding's mitigated distribution, which the kernels read like exact probabilities.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from qiskit.circuit import QuantumCircuit
from qiskit.primitives import BaseSamplerV2, DataBin, PrimitiveResult, SamplerPubResult
from qiskit.primitives.containers.sampler_pub import SamplerPub

from ..validation import check_choice
from .journal import WrappedJob
from .readout import (
    DEFAULT_CALIBRATION_SHOTS,
    ReadoutCalibration,
    calibration_circuits,
    calibration_counts,
    find_calibration,
    measured_qubits,
    reported_assignment_matrices,
    run_calibration,
)

__all__ = [
    "MITIGATIONS",
    "MitigatedSampler",
    "MitigationPlan",
    "QuasiProbabilities",
    "check_factorises",
    "corrected_marginals",
    "frequency_variance",
    "marginal_variance",
    "plan_mitigation",
    "product_distribution",
    "shots_for_target_error",
    "variance_factor",
]

logger = logging.getLogger(__name__)

MITIGATIONS = ("none", "m3", "marginal")  #: readout mitigations of :class:`MitigatedSampler` (``--mitigation``)
_MAX_BITS = 16  # dense product distributions of 2**n entries per binding


def check_factorises(circuit: QuantumCircuit) -> None:
    """Raise ``ValueError`` unless no instruction of ``circuit`` (barriers aside) acts on two or more qubits."""
    joint = sorted({i.operation.name for i in circuit.data if len(i.qubits) > 1 and i.operation.name != "barrier"})
    if joint:
        raise ValueError(
            "mitigation 'marginal': expected a transpiled fidelity circuit without multi-qubit gates (a product "
            f"kernel, e.g. reps=1), got {', '.join(joint)}; use mitigation 'm3'"
        )


def corrected_marginals(bits: np.ndarray, assignment: np.ndarray) -> np.ndarray:
    """Readout-corrected ``p_q(0)`` ``(rows, n)`` from shots ``bits`` ``(rows, shots, n)`` (bool, column q = clbit q).

    ``assignment`` ``(n, 2, 2)``: ``A_q`` of the qubit clbit q reads. Clipped to [0, 1].
    """
    observed = 1.0 - bits.mean(axis=1)  # (rows, n): frequency of reading 0
    p01, det = assignment[:, 0, 1], assignment[:, 0, 0] + assignment[:, 1, 1] - 1.0
    return np.clip((observed - p01) / det, 0.0, 1.0)


def product_distribution(p0: np.ndarray) -> np.ndarray:
    """``(rows, 2**n)`` product distribution of independent bits with ``P(bit q = 0) = p0[:, q]``.

    Index ``j`` has bit q of ``j`` as clbit q (the little-endian order of Qiskit's bit strings).
    """
    rows, n = p0.shape
    dist = np.ones((rows, 1))
    for q in reversed(range(n)):  # most significant bit first
        pair = np.stack([p0[:, q], 1.0 - p0[:, q]], axis=1)  # (rows, 2)
        dist = (dist[:, :, None] * pair[:, None, :]).reshape(rows, -1)
    return dist


def frequency_variance(k: float | np.ndarray, shots: int) -> float | np.ndarray:
    """Variance ``k(1 − k)/S`` of the frequency of an outcome of probability ``k`` in ``S`` shots."""
    return k * (1.0 - k) / shots


def marginal_variance(observed_p0: np.ndarray, assignment: np.ndarray, shots: int) -> float:
    """Exact variance of the unclipped product estimator ``Π_q p̂_q(0)`` of independent qubits.

    ``observed_p0`` ``(n,)``: probability that qubit q *reads* 0; ``assignment`` ``(n, 2, 2)``.
    """
    det = assignment[:, 0, 0] + assignment[:, 1, 1] - 1.0
    mu = (observed_p0 - assignment[:, 0, 1]) / det
    sigma2 = observed_p0 * (1.0 - observed_p0) / (shots * det**2)
    return float(np.prod(mu**2 + sigma2) - np.prod(mu**2))


def variance_factor(method: str, assignment: np.ndarray | None = None) -> float:
    """``γ`` with ``Var(k̂) ≤ γ/(4S)`` for every kernel value: 1 for ``none``, ``(max c − min c)²`` with
    ``c_b = Π_q (A_q^{-1})_{0 b_q}`` for ``m3`` and ``marginal`` (``assignment`` ``(n, 2, 2)``)."""
    _check_method(method)
    if method == "none":
        return 1.0
    if assignment is None:
        raise ValueError(f"variance_factor: expected assignment matrices (n, 2, 2) for method {method!r}, got None")
    det = assignment[:, 0, 0] + assignment[:, 1, 1] - 1.0
    read0, read1 = assignment[:, 1, 1] / det, -assignment[:, 0, 1] / det  # (A^{-1})_{00}, (A^{-1})_{01}
    high, low = 1.0, 1.0
    for values in zip(read0, read1):  # extremes of a product are products of extremes
        products = [e * v for e in (high, low) for v in values]
        high, low = max(products), min(products)
    return float((high - low) ** 2)


def shots_for_target_error(target_error: float, factor: float = 1.0) -> int:
    """Shots per circuit ``⌈γ/(4E²)⌉`` that bound a kernel's standard error by ``E`` (any kernel value).

    Raises:
        ValueError: ``target_error`` not in (0, 0.5] or ``factor`` < 1.
    """
    if isinstance(target_error, bool) or not isinstance(target_error, (int, float)) or not 0 < target_error <= 0.5:
        raise ValueError(f"shots_for_target_error: expected target_error in (0, 0.5], got {target_error!r}")
    if not factor >= 1.0:
        raise ValueError(f"shots_for_target_error: expected a variance factor >= 1, got {factor!r}")
    return math.ceil(factor / (4.0 * target_error**2) - 1e-9)


def _check_method(method: str) -> None:
    check_choice("mitigation", "method", method, MITIGATIONS)


class QuasiProbabilities:
    """Per-binding (quasi-)distributions of one PUB, read like exact probabilities.

    ``get_probabilities(loc)`` → ``{bit string: value}``; ``get_probabilities()`` → an object
    array of such dicts with the PUB's binding shape. Values may be slightly negative (``m3``).
    """

    def __init__(self, dists: list[dict[str, float]], num_bits: int, shape: tuple[int, ...]) -> None:
        self._dists, self._num_bits, self._shape = dists, num_bits, shape

    @property
    def num_bits(self) -> int:
        return self._num_bits

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    def get_probabilities(self, loc: int | tuple[int, ...] | None = None):
        flat = np.empty(len(self._dists), dtype=object)
        flat[:] = self._dists
        shaped = flat.reshape(self._shape)
        return shaped if loc is None else shaped[loc]


class _MitigatedJob(WrappedJob):
    """Waits for the wrapped job, then mitigates every PUB result."""

    def __init__(self, job, post) -> None:
        super().__init__(job_id=str(job.job_id()))
        self._job, self._post, self._result = job, post, None

    def result(self) -> PrimitiveResult:
        if self._result is None:
            raw = self._job.result()
            self._result = PrimitiveResult([self._post(i, r) for i, r in enumerate(raw)], metadata=raw.metadata)
        return self._result


class MitigatedSampler(BaseSamplerV2):
    """A ``BaseSamplerV2`` that returns readout-mitigated distributions (``m3`` or ``marginal``).

    PUB circuits must be ISA for ``device`` with their final measurements on physical qubits
    (as the kernels' transpiled fidelity circuits are). Before the first PUB on new qubits it
    calibrates them (:func:`~qk_lstm_qiskit.hardware.readout.run_calibration`) through
    ``sampler`` — or loads today's calibration from ``cache_dir`` — and saves it there.

    Args:
        sampler: the sampler that runs circuits (Runtime, Aer, a :class:`JournaledSampler`).
        method: ``"m3"`` or ``"marginal"`` (``"none"``: use ``sampler`` itself).
        device: the ``BackendV2`` the circuits are compiled for.
        calibration: a ready :class:`ReadoutCalibration` (default: measure or load one);
            ``calibrations`` lists those in use.
        calibration_shots: preparations of each state per qubit (default 10,000).
        cache_dir: folder for ``calibrations/*.json`` (default ``None``: not saved).
        backend_name: name in the calibration key (default ``device.name``).
        any_date: accept a cached calibration of another day (a resumed run; default False).

    Raises:
        TypeError: ``sampler`` is not a ``BaseSamplerV2``.
        ValueError: unknown ``method``; ``marginal`` on a circuit with multi-qubit gates.

    Example:
        >>> import torch
        >>> from qk_lstm_qiskit import FeatureMap, QuantumKernel, resolve_backend
        >>> rb = resolve_backend("fake:manila", shots=4096, seed=0)
        >>> sampler = MitigatedSampler(rb.sampler, "marginal", device=rb.device)  # cache_dir=... keeps calibrations
        >>> k = QuantumKernel(FeatureMap(4), sampler=sampler, pass_manager=rb.pass_manager)
        >>> K = k(torch.zeros(3, 4), torch.zeros(2, 4))  # calibrates the qubits once, then (3, 2) mitigated kernels
        >>> K.shape, bool((K - 1).abs().max() < 0.05)  # k(x, x) = 1 up to shot noise
        (torch.Size([3, 2]), True)
    """

    def __init__(self, sampler: BaseSamplerV2, method: str, *, device, calibration: ReadoutCalibration | None = None,
                 calibration_shots: int = DEFAULT_CALIBRATION_SHOTS, cache_dir: str | Path | None = None,
                 backend_name: str | None = None, any_date: bool = False) -> None:
        if not isinstance(sampler, BaseSamplerV2):
            raise TypeError(f"MitigatedSampler: expected sampler to be a BaseSamplerV2, got {type(sampler).__name__}")
        _check_method(method)
        if method == "none":
            raise ValueError("MitigatedSampler: expected method 'm3' or 'marginal', got 'none' (use the sampler itself)")
        self.sampler, self.method, self.device = sampler, method, device
        self.calibrations: list[ReadoutCalibration] = [] if calibration is None else [calibration]
        self.calibration_shots = calibration_shots
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.backend_name = backend_name or str(device.name)
        self.any_date = any_date
        self.calibrations_run = 0  # calibrations this sampler paid for
        self._lock = threading.Lock()
        self._mitigators: dict[int, Any] = {}  # id(calibration) -> M3Mitigation

    def calibrate(self, qubits: Sequence[int]) -> ReadoutCalibration:
        """The calibration of ``qubits``: held, cached in ``cache_dir``, or measured now (and cached)."""
        with self._lock:
            for held in self.calibrations:
                if held.covers(qubits):
                    return held
            cal = None
            if self.cache_dir is not None:
                cal = find_calibration(self.cache_dir, self.backend_name, qubits, any_date=self.any_date)
                if cal is not None:
                    logger.info("readout calibration of qubits %s from the cache (%s)", list(qubits), cal.date)
            if cal is None:
                cal = run_calibration(self.sampler, qubits, self.device, shots=self.calibration_shots,
                                      backend_name=self.backend_name)
                self.calibrations_run += 1
                if self.cache_dir is not None:
                    cal.save(self.cache_dir)
            self.calibrations.append(cal)
            return cal

    def _m3(self, cal: ReadoutCalibration):
        """An ``M3Mitigation`` holding ``cal``'s matrices (no backend: it can submit nothing)."""
        with self._lock:
            if id(cal) not in self._mitigators:
                from mthree import M3Mitigation

                matrices: list[Any] = [None] * (max(cal.qubits) + 1)
                for q, matrix in cal.matrices.items():
                    matrices[q] = np.asarray(matrix, dtype=np.float32)
                mitigator = M3Mitigation()
                mitigator.cals_from_matrices(matrices)
                self._mitigators[id(cal)] = mitigator
            return self._mitigators[id(cal)]

    def _mitigate(self, pub: SamplerPub, result) -> SamplerPubResult:
        data = next(iter(result.data.values()))  # BitArray (rows…, shots)
        shape = tuple(data.shape)
        rows = int(np.prod(shape, dtype=int))
        mapping = measured_qubits(pub.circuit)  # {clbit: physical qubit}
        n = data.num_bits
        qubits = [mapping[c] for c in range(n)]
        cal = self.calibrate(qubits)
        if self.method == "marginal":
            if n > _MAX_BITS:
                raise ValueError(f"MitigatedSampler: expected at most {_MAX_BITS} measured bits for 'marginal', got {n}")
            bits = data.to_bool_array(order="little").reshape(rows, data.num_shots, n)
            dist = product_distribution(corrected_marginals(bits, cal.assignment(qubits)))
            keys = [format(j, f"0{n}b") for j in range(2**n)]
            dists = [dict(zip(keys, row.tolist())) for row in dist]
        else:
            flat = data.reshape(rows) if shape != (rows,) else data
            counts = [flat.get_counts(row) for row in range(rows)]
            quasis = self._m3(cal).apply_correction(counts, [mapping] * rows)
            dists = [{k: float(v) for k, v in q.items()} for q in quasis]
        field = next(iter(result.data.keys()))
        return SamplerPubResult(DataBin(shape=shape, **{field: QuasiProbabilities(dists, n, shape)}),
                                metadata={**result.metadata, "mitigation": self.method})

    def run(self, pubs, *, shots: int | None = None) -> WrappedJob:
        coerced = [SamplerPub.coerce(pub, shots) for pub in pubs]
        for pub in coerced:
            if self.method == "marginal":
                check_factorises(pub.circuit)
            qubits = sorted(measured_qubits(pub.circuit).values())
            if qubits:
                self.calibrate(qubits)
        job = self.sampler.run(coerced, shots=shots)
        return _MitigatedJob(job, lambda i, r: self._mitigate(coerced[i], r))


@dataclass(frozen=True)
class MitigationPlan:
    """What a mitigated run adds, known before anything is submitted.

    Attributes:
        method: ``none``, ``m3`` or ``marginal``; qubits: the measured physical qubits.
        calibration_circuits, calibration_shots: ``C_cal`` circuits of ``S_cal`` shots to run
            (0 circuits: ``cached`` holds a usable calibration, or no mitigation).
        calibration_circuit: one of the ISA calibration circuits (for its duration), or ``None``.
        variance_factor: ``γ`` of the estimator, from ``cached`` or the device's reported errors.
        cached: a calibration from the cache folder, or ``None``.
    """

    method: str
    qubits: tuple[int, ...]
    calibration_circuits: int
    calibration_shots: int
    calibration_circuit: QuantumCircuit | None
    variance_factor: float
    cached: ReadoutCalibration | None


def plan_mitigation(method: str, isa_circuit: QuantumCircuit | None, device, *,
                    calibration_shots: int = DEFAULT_CALIBRATION_SHOTS, cache_dir: str | Path | None = None,
                    backend_name: str | None = None, any_date: bool = False) -> MitigationPlan:
    """The calibration to run and the estimator's ``γ`` for ``method`` on the kernels' ``isa_circuit``.

    Raises:
        ValueError: unknown ``method``; ``m3``/``marginal`` without a device or ISA circuit;
            ``marginal`` for a circuit with multi-qubit gates.
    """
    _check_method(method)
    if method == "none":
        return MitigationPlan(method, (), 0, 0, None, 1.0, None)
    if device is None or isa_circuit is None:
        raise ValueError(f"mitigation {method!r}: expected a device backend (aer-noisy:, fake:, ibm:), got none")
    if method == "marginal":
        check_factorises(isa_circuit)
    mapping = measured_qubits(isa_circuit)
    qubits = tuple(mapping[c] for c in sorted(mapping))
    cached = None
    if cache_dir is not None:
        cached = find_calibration(cache_dir, backend_name or str(device.name), qubits, any_date=any_date)
    if cached is not None:
        factor = variance_factor(method, cached.assignment(qubits))
        return MitigationPlan(method, qubits, 0, 0, None, factor, cached)
    circuits, per_circuit = calibration_counts(len(qubits), calibration_shots)
    factor = variance_factor(method, reported_assignment_matrices(device, qubits))
    example = calibration_circuits(qubits, device.num_qubits)[-1]
    return MitigationPlan(method, qubits, circuits, per_circuit, example, factor, None)
