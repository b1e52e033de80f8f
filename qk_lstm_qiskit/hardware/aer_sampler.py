"""Ideal Aer sampling without per-shot strings: Aer computes probabilities, numpy draws the shots.

Aer's ``SamplerV2`` makes the simulator write one hex string per shot and parses them in Python:
at 1024 shots that is ≈ 1.7 ms per parameter binding of a 4-qubit kernel circuit, most of a
sampler-path epoch. Without noise, a binding's counts are one draw from Multinomial(shots, p) with
``p_b = |⟨b|ψ⟩|²`` over the measured qubits — the distribution Aer's measurement sampling draws from.
:class:`AerProbabilitySampler` lets Aer compute p once per binding (``save_probabilities``,
parameters bound inside Aer) and draws the shots in numpy: same distribution, same result types,
≈ 10× less time per binding. Noisy simulation needs Aer's shot-by-shot trajectories; use
``qiskit_aer.primitives.SamplerV2`` there (``backends.resolve_backend("aer-noisy:…")`` does).
"""

from __future__ import annotations

import zlib
from typing import Iterable

import numpy as np
from qiskit import QiskitError
from qiskit.primitives import BaseSamplerV2, BitArray, DataBin, PrimitiveResult, SamplerPubResult
from qiskit.primitives.containers.sampler_pub import SamplerPub
from qiskit.primitives.primitive_job import PrimitiveJob
from qiskit.primitives.statevector_sampler import _preprocess_circuit
from qiskit_aer import AerSimulator
from qiskit_aer.library import SaveProbabilities
from ..validation import check_int

__all__ = ["AerProbabilitySampler", "job_digest", "submitted_job"]

MAX_MEASURED_QUBITS = 24  # probabilities are a dense (bindings, 2**k) array


def submitted_job(function, *args) -> PrimitiveJob:
    """``function(*args)`` running in a started ``PrimitiveJob``, as Qiskit's own samplers return.

    Qiskit has no public way to start a ``PrimitiveJob``; this is the one place that calls its
    private ``_submit`` (checked by tests/test_library_internals.py).
    """
    job = PrimitiveJob(function, *args)
    job._submit()
    return job


def job_digest(pubs: Iterable[SamplerPub]) -> int:
    """CRC-32 of the PUBs' bound values, shots and circuit sizes: a job's content in one integer.

    Seeding a job with ``seed + job_digest`` makes it reproducible and independent of call
    order (a resumed run equals an uninterrupted one), while different jobs get different noise.
    """
    digest = 0
    for pub in pubs:
        digest = zlib.crc32(pub.parameter_values.as_array().tobytes(), digest)
        digest = zlib.crc32(f"{pub.shots}|{pub.circuit.num_qubits}|{pub.circuit.size()}".encode(), digest)
    return digest


class AerProbabilitySampler(BaseSamplerV2):
    """Noise-free ``BaseSamplerV2``: Aer statevector probabilities, shots drawn by numpy.

    Accepts what ``StatevectorSampler`` accepts: any circuit whose measurements are all final
    (any subset of qubits, any classical registers; unmeasured clbits read 0). Returns, per
    PUB, one ``BitArray`` per classical register of shape ``(*pub.shape, shots)``.

    Args:
        default_shots: shots per binding when neither the PUB nor ``run`` gives them (> 0).
        seed: base seed. Job j draws from ``default_rng([seed, job_digest(j)])``: the same
            job content gives the same shots in any order of calls. ``None``: fresh entropy.
        max_parallel_threads: Aer's OpenMP threads (default 1: kernel circuits are tiny).

    Raises:
        ValueError: ``default_shots <= 0``; at run time a mid-circuit measurement, control
            flow, more than ``MAX_MEASURED_QUBITS`` measured qubits, or ``shots <= 0``.
    """

    def __init__(self, *, default_shots: int = 1024, seed: int | None = None, max_parallel_threads: int = 1) -> None:
        check_int("AerProbabilitySampler", "default_shots", default_shots, 1)
        self.default_shots = default_shots
        self.seed = seed
        self.simulator = AerSimulator(
            method="statevector", max_parallel_threads=max_parallel_threads, runtime_parameter_bind_enable=True
        )

    def run(self, pubs, *, shots: int | None = None) -> PrimitiveJob:
        shots = self.default_shots if shots is None else shots
        check_int("AerProbabilitySampler", "shots", shots, 1)
        coerced = []
        for i, pub in enumerate(pubs):
            try:
                coerced.append(SamplerPub.coerce(pub, shots))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"AerProbabilitySampler: PUB {i} is invalid: {exc}") from exc
        prepared = [self._prepare(pub.circuit) for pub in coerced]  # errors here, not in the job thread
        return submitted_job(self._run, coerced, prepared)

    @staticmethod
    def _prepare(circuit):
        """``(circuit without final measurements + save_probabilities, measured qubits, meas_info)``."""
        try:
            # Qiskit's StatevectorSampler helper (private; the one use, checked by tests/test_library_internals.py):
            # the circuit without final measurements, the measured qubits, and each register's bit map.
            unmeasured, qargs, meas_info = _preprocess_circuit(circuit)
        except QiskitError as exc:
            raise ValueError(f"AerProbabilitySampler: expected measurements only at the end of the circuit ({exc})") from exc
        if any(item.num_bits > 64 for item in meas_info):
            raise ValueError(
                "AerProbabilitySampler: expected classical registers of at most 64 bits, got "
                f"{max(item.num_bits for item in meas_info)}"
            )
        if len(qargs) > MAX_MEASURED_QUBITS:
            raise ValueError(
                f"AerProbabilitySampler: expected at most {MAX_MEASURED_QUBITS} measured qubits, got {len(qargs)}"
            )
        unmeasured.append(SaveProbabilities(len(qargs), label="probabilities"), qargs)
        return unmeasured, qargs, meas_info

    def _run(self, pubs: list[SamplerPub], prepared: list) -> PrimitiveResult:
        rng = np.random.default_rng(None if self.seed is None else [self.seed, job_digest(pubs)])
        simulated = [i for i, (pub, (_, qargs, _)) in enumerate(zip(pubs, prepared)) if qargs and pub.parameter_values.size]
        probabilities = dict(
            zip(simulated, self._probabilities([pubs[i] for i in simulated], [prepared[i][0] for i in simulated]))
        )
        results = []
        for i, (pub, (_, qargs, meas_info)) in enumerate(zip(pubs, prepared)):
            # not simulated: no bindings, or nothing measured (every clbit reads 0)
            probs = probabilities.get(i, np.ones((pub.parameter_values.size, 1)))
            outcomes = _draw(rng, probs, pub.shots).reshape(pub.shape + (pub.shots,))  # bit i = qargs[i]
            meas = {item.creg_name: _register(outcomes, item, len(qargs)) for item in meas_info}
            results.append(
                SamplerPubResult(
                    DataBin(**meas, shape=pub.shape),
                    metadata={"shots": pub.shots, "circuit_metadata": pub.circuit.metadata},
                )
            )
        return PrimitiveResult(results, metadata={"version": 2})

    def _probabilities(self, pubs: list[SamplerPub], circuits: list) -> list[np.ndarray]:
        """One Aer run: per PUB, ``(bindings, 2**k)`` probabilities of its k measured qubits."""
        if not pubs:
            return []
        binds = []
        for pub, circuit in zip(pubs, circuits):
            values = pub.parameter_values.as_array(circuit.parameters)  # (*shape, P)
            binds.append({p: values[..., i].ravel() for i, p in enumerate(circuit.parameters)})
        result = self.simulator.run(circuits, shots=1, parameter_binds=binds).result()
        if not result.success:
            raise RuntimeError(f"AerProbabilitySampler: Aer simulation failed: {result.status}")
        out, start = [], 0
        for pub in pubs:
            rows = pub.parameter_values.size
            out.append(np.array([result.data(start + row)["probabilities"] for row in range(rows)]).reshape(rows, -1))
            start += rows
        return out


def _draw(rng: np.random.Generator, probs: np.ndarray, shots: int) -> np.ndarray:
    """``(rows, shots)`` i.i.d. outcomes, row r drawn from ``probs[r]`` (rounding noise renormalised)."""
    probs = np.clip(probs, 0.0, None)
    probs /= probs.sum(axis=1, keepdims=True)
    counts = rng.multinomial(shots, probs)  # (rows, 2**k)
    size = probs.shape[1]
    outcomes = np.repeat(np.tile(np.arange(size), len(probs)), counts.ravel()).reshape(len(probs), shots)
    return rng.permuted(outcomes, axis=1)  # shots in random order, as from a device


def _register(outcomes: np.ndarray, item, num_measured: int) -> BitArray:
    """The ``BitArray`` of one classical register: clbit c holds bit ``item.qreg_indices[c]`` of the outcome.

    Built by one table lookup: row o of ``table`` is the register's big-endian bytes for outcome o.
    """
    codes = np.arange(2**num_measured, dtype=np.uint64)
    value = np.zeros_like(codes)
    for clbit, bit in enumerate(item.qreg_indices):
        if bit < num_measured:  # otherwise no final measurement writes this clbit: it reads 0
            value |= ((codes >> np.uint64(bit)) & np.uint64(1)) << np.uint64(clbit)
    num_bytes = (item.num_bits + 7) // 8  # BitArray's byte width
    table = value.astype(">u8").view(np.uint8).reshape(-1, 8)[:, 8 - num_bytes :]
    return BitArray(table[outcomes], item.num_bits)
