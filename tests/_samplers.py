"""Sampler doubles shared by the test modules."""

from __future__ import annotations

import numpy as np
from qiskit.primitives import BaseSamplerV2, BitArray, DataBin, PrimitiveResult, SamplerPubResult
from qiskit.primitives.containers.sampler_pub import SamplerPub
from qiskit.quantum_info import Statevector

from qk_lstm_qiskit.hardware.aer_sampler import submitted_job
from qk_lstm_qiskit.hardware.readout import measured_qubits


class CountingSampler(BaseSamplerV2):
    """Delegates to ``inner``; records, per ``run`` call, the circuits and binding shapes of its PUBs."""

    def __init__(self, inner: BaseSamplerV2) -> None:
        self.inner = inner
        self.calls: list[list[tuple[int, tuple[int, ...]]]] = []

    def run(self, pubs, *, shots=None):
        pubs = list(pubs)
        self.calls.append([(pub[0].num_qubits, np.shape(pub[1])) for pub in pubs])
        return self.inner.run(pubs) if shots is None else self.inner.run(pubs, shots=shots)

def assignment(p0_given_1: float, p1_given_0: float) -> np.ndarray:
    """``A`` with columns = prepared state: ``[[P(0|0), P(0|1)], [P(1|0), P(1|1)]]``."""
    return np.array([[1.0 - p1_given_0, p0_given_1], [p1_given_0, 1.0 - p0_given_1]])


class ReadoutNoiseSampler(BaseSamplerV2):
    """Exact ``Statevector`` outcome probabilities of the measured qubits, sampled, then each bit
    flipped independently with the assignment matrix of its physical qubit (``matrices[q]``).

    ``runs`` counts ``run`` calls; shots default to ``default_shots``; seeded by ``seed``.
    """

    def __init__(self, matrices: dict[int, np.ndarray], *, default_shots: int = 1024, seed: int = 0) -> None:
        self.matrices = matrices
        self.default_shots = default_shots
        self.rng = np.random.default_rng(seed)
        self.runs = 0

    def _bits(self, circuit, values, shots: int) -> np.ndarray:
        bound = circuit.assign_parameters(values) if circuit.num_parameters else circuit
        mapping = measured_qubits(bound)
        qubits = [mapping[c] for c in range(len(mapping))]
        probs = self._distribution(Statevector(bound.remove_final_measurements(inplace=False)).probabilities(qargs=qubits))
        outcomes = self.rng.choice(probs.size, size=shots, p=probs / probs.sum())
        bits = (outcomes[:, None] >> np.arange(len(qubits))) & 1  # (shots, n), column c = clbit c
        flip = np.empty_like(bits, dtype=bool)
        for c, q in enumerate(qubits):
            a = self.matrices.get(q, np.eye(2))
            chance = np.where(bits[:, c] == 0, a[1, 0], a[0, 1])
            flip[:, c] = self.rng.random(shots) < chance
        return (bits.astype(bool) ^ flip)

    def _distribution(self, probs: np.ndarray) -> np.ndarray:
        """The outcome distribution sampled (before readout flips): the exact one."""
        return probs

    def run(self, pubs, *, shots: int | None = None) :
        self.runs += 1
        coerced = [SamplerPub.coerce(pub, shots if shots is not None else self.default_shots) for pub in pubs]
        results = []
        for pub in coerced:
            shape = pub.parameter_values.shape
            rows = int(np.prod(shape, dtype=int))
            values = np.asarray(pub.parameter_values.as_array(list(pub.circuit.parameters)), dtype=float)
            values = values.reshape(rows, pub.circuit.num_parameters)
            bits = np.stack([self._bits(pub.circuit, row, pub.shots) for row in values])  # (rows, shots, n)
            array = BitArray.from_bool_array(bits.reshape(-1, bits.shape[-1]), order="little")
            array = array.reshape(*shape, pub.shots)
            results.append(SamplerPubResult(DataBin(shape=shape, meas=array), metadata={"shots": pub.shots}))
        return submitted_job(lambda: PrimitiveResult(results, metadata={}))


class GlobalDepolarizingSampler(ReadoutNoiseSampler):
    """Exact outcome probabilities ``p`` of every binding after a global depolarising channel of known ``rate``
    ``λ`` — ``(1 − λ) p + λ/2ⁿ`` — sampled with ``default_shots`` (seeded; no readout flips)."""

    def __init__(self, rate: float, *, default_shots: int = 1024, seed: int = 0) -> None:
        super().__init__({}, default_shots=default_shots, seed=seed)
        self.rate = rate

    def _distribution(self, probs: np.ndarray) -> np.ndarray:
        return (1.0 - self.rate) * probs + self.rate / probs.size


class JobRegistry:
    """Stand-in for the IBM service side: remembers every job so ``job(id)`` finds it again."""

    def __init__(self):
        self.jobs = {}

    def job(self, job_id):
        return self.jobs[job_id]


class _InterruptOnce:
    def __init__(self, job):
        self._job = job

    def __getattr__(self, name):
        return getattr(self._job, name)

    def result(self):
        raise KeyboardInterrupt


def interrupting_sampler(inner: BaseSamplerV2, registry: JobRegistry | None = None, interrupt_at: int | None = None):
    """Runs ``inner``, registers each job in ``registry`` (if given) and counts runs in the class attribute ``runs``;
    the wait of run number ``interrupt_at`` (0-based) raises ``KeyboardInterrupt``."""

    class Sampler(BaseSamplerV2):
        runs = 0

        def run(self, pubs, *, shots=None):
            job = inner.run(pubs, shots=shots)
            if registry is not None:
                registry.jobs[job.job_id()] = job
            Sampler.runs += 1
            return _InterruptOnce(job) if Sampler.runs - 1 == interrupt_at else job

    return Sampler()


def ibm_standin(registry: JobRegistry, interrupt_at: int | None = None, seed: int = 5, shots: int = 256):
    """``(ResolvedBackend named ibm:ibm_manila, its sampler)``: manila's noise on Aer (faster than local mode), jobs
    fetched again by id from ``registry``."""
    from qk_lstm_qiskit.hardware.backends import ResolvedBackend, resolve_backend

    local = resolve_backend("aer-noisy:manila", shots=shots, seed=seed)
    sampler = interrupting_sampler(local.sampler, registry, interrupt_at)
    return ResolvedBackend(name="ibm:ibm_manila", kind="ibm", sampler=sampler, pass_manager=local.pass_manager,
                           device=local.device, service=registry, shots=shots, optimization_level=1), sampler
