"""Kernels from ``U(x)`` measured alone in Pauli settings, against references known exactly.

The reference side ``y`` of a QK-LSTM gate is classical, so its state is simulated exactly once
(``prepare``); only the input side runs on a device. Two estimators
(statistics in :mod:`qk_lstm_qiskit.estimators`):

* :class:`TomographyKernel` (product maps): 3 settings per input — all qubits in X, then Y,
  then Z — and ``k̂ = Π_q (1 + r̂_q·s_q)/2`` with per-qubit 2×2 readout correction;
* :class:`ShadowKernel` (any map): ``K`` random Pauli settings per call, ``m`` shots each,
  ``k̂ = mean ⟨φ|ρ̂|φ⟩`` with tensored readout correction in the weights.

Both run the map without its constant tail (:func:`~qk_lstm_qiskit.circuits.measurement.without_constant_tail`)
and get their outcome distributions from a :class:`Measurements` source: :class:`SamplerMeasurements`
(one PUB of ``N·K`` bindings on a ``BaseSamplerV2``, ISA-transpiled once) or
:class:`SimulatedMeasurements` (exact multinomial draws from exact probabilities, optional readout
noise: the shot planner's noise model, no circuit run).
"""

from __future__ import annotations

from typing import Callable, Protocol

import numpy as np
import torch
from qiskit.circuit import QuantumCircuit

from ..circuits.measurement import basis_measurement_circuit, is_product_circuit, without_constant_tail
from ..estimators.bases import basis_angles, random_settings
from ..estimators.shadows import shadow_kernel, shadow_weights
from ..estimators.tomography import bloch_from_marginals, product_kernel, tomography_settings
from ..gradients.parameter_shift import probabilities
from ..validation import check_int
from .statevector import StatevectorExecutor

__all__ = ["Measurements", "SamplerMeasurements", "SimulatedMeasurements", "MeasuredStateKernel",
           "TomographyKernel", "ShadowKernel", "Readout", "zero_marginals"]

Readout = Callable[[tuple[int, ...]], np.ndarray]  #: physical qubits of clbits 0…n-1 → assignment (n, 2, 2)


class Measurements(Protocol):
    """Outcome frequencies of ``U(θ)|0⟩`` measured in settings: ``(N, K, 2**n)`` for angles ``(N, P)``, settings ``(K, n)``."""

    def frequencies(self, angles: np.ndarray, settings: np.ndarray, shots: int) -> np.ndarray: ...

    def assignment(self) -> np.ndarray | None:
        """Readout assignment matrices ``(n, 2, 2)`` to undo (``None``: ideal readout)."""
        ...


class SamplerMeasurements:
    """Runs the basis-measurement circuit on a ``BaseSamplerV2``: one PUB with a row per (input, setting).

    Args:
        circuit, parameters: the map without its constant tail and its angle order.
        sampler: a ``BaseSamplerV2`` (Aer, Runtime, a journaled or dry-run sampler).
        pass_manager: transpiles the measured circuit once (to a device's ISA), default none.
        readout: maps the measured physical qubits to their assignment matrices (e.g. a readout
            calibration's), default none.
    """

    def __init__(self, circuit: QuantumCircuit, parameters, sampler, *, pass_manager=None,
                 readout: Readout | None = None) -> None:
        measured, theta, basis = basis_measurement_circuit(circuit, parameters)
        self.logical = measured
        self.circuit = measured if pass_manager is None else pass_manager.run(measured)
        order = {p: i for i, p in enumerate((*theta, *basis))}
        self._columns = [order[p] for p in self.circuit.parameters]
        self.sampler, self.readout = sampler, readout
        self.last_job = None

    def physical_qubits(self) -> tuple[int, ...]:
        """The device qubit each clbit reads (clbit q = logical qubit q: measured before transpiling)."""
        mapping = {}
        for instruction in self.circuit.data:
            if instruction.operation.name == "measure":
                mapping[self.circuit.find_bit(instruction.clbits[0]).index] = self.circuit.find_bit(instruction.qubits[0]).index
        return tuple(mapping[c] for c in sorted(mapping))

    def assignment(self) -> np.ndarray | None:
        return None if self.readout is None else np.asarray(self.readout(self.physical_qubits()), dtype=float)

    def frequencies(self, angles: np.ndarray, settings: np.ndarray, shots: int) -> np.ndarray:
        n_inputs, k = angles.shape[0], settings.shape[0]
        rows = np.concatenate([np.repeat(angles, k, axis=0), np.tile(basis_angles(settings), (n_inputs, 1))], axis=1)
        job = self.sampler.run([(self.circuit, rows[:, self._columns], shots)])
        self.last_job = job
        return probabilities(job.result()[0], rows.shape[0]).reshape(n_inputs, k, -1)


class SimulatedMeasurements:
    """Exact shot noise: multinomial draws from the exact distributions (and readout ``assignment``, if given)."""

    def __init__(self, executor: StatevectorExecutor, rng: np.random.Generator,
                 assignment: np.ndarray | None = None) -> None:
        self.executor, self.rng, self._assignment = executor, rng, assignment

    def assignment(self) -> np.ndarray | None:
        return self._assignment

    def frequencies(self, angles: np.ndarray, settings: np.ndarray, shots: int) -> np.ndarray:
        from ..estimators.shadows import simulate_counts

        states = self.executor.simulate(torch.as_tensor(angles, dtype=torch.float64)).numpy()
        return simulate_counts(states, settings, shots, self.rng, self._assignment) / shots


def zero_marginals(frequencies: np.ndarray) -> np.ndarray:
    """``P(read 0)`` per qubit ``(…, n)`` from distributions ``(…, 2**n)`` (bit q of the index is qubit q)."""
    d = frequencies.shape[-1]
    n = int(round(np.log2(d)))
    bits = (np.arange(d)[:, None] >> np.arange(n)[None, :]) & 1  # (D, n)
    return frequencies @ (1 - bits)


class MeasuredStateKernel:
    """Base of the estimators that measure ``U(x)|0⟩`` alone: the stripped circuit, its exact executor, a source.

    Args:
        feature_map: the map (its ``circuit``, ``parameters_order``, ``angles``).
        shots: per setting.
        source: where outcome frequencies come from (default none yet: set ``source``).
    """

    settings_per_input: int = 0

    def __init__(self, feature_map, *, shots: int, source: Measurements | None = None) -> None:
        check_int(type(self).__name__, "shots", shots, 1)
        self.feature_map, self.shots, self.source = feature_map, shots, source
        self.circuit = without_constant_tail(feature_map.circuit)
        self.parameters = feature_map.parameters_order
        self.executor = StatevectorExecutor(self.circuit, self.parameters)
        self.is_product = is_product_circuit(self.circuit)

    def sampler_source(self, sampler, *, pass_manager=None, readout: Readout | None = None) -> SamplerMeasurements:
        return SamplerMeasurements(self.circuit, self.parameters, sampler, pass_manager=pass_manager, readout=readout)

    def simulated_source(self, rng: np.random.Generator, assignment: np.ndarray | None = None) -> SimulatedMeasurements:
        return SimulatedMeasurements(self.executor, rng, assignment)

    def _source(self) -> Measurements:
        if self.source is None:
            raise ValueError(f"{type(self).__name__}: expected a measurement source, got none")
        return self.source


class TomographyKernel(MeasuredStateKernel):
    """Product maps: per-qubit Bloch vectors from 3 settings per input; kernels against exact reference Bloch vectors.

    Shape: ``ax`` ``(N, P)`` angles → ``(N, M)`` against :meth:`prepare` d ``(M, P)`` angles.
    """

    settings_per_input = 3

    def __init__(self, feature_map, *, shots: int, source: Measurements | None = None) -> None:
        super().__init__(feature_map, shots=shots, source=source)
        if not self.is_product:
            raise ValueError(f"TomographyKernel: expected a product map (no entangling gate before the constant tail), "
                             f"got {self.circuit.count_ops().get('cx', 0)} CX in {feature_map.extra_repr()}")

    def prepare(self, ay: torch.Tensor) -> np.ndarray:
        """Exact reference Bloch vectors ``(M, n, 3)``."""
        return self.executor.product_bloch(ay.detach().double()).permute(2, 0, 1).numpy()

    def bloch(self, ax: torch.Tensor) -> np.ndarray:
        """Measured, readout-corrected Bloch vectors ``(N, n, 3)``."""
        source = self._source()
        n = self.circuit.num_qubits
        freq = source.frequencies(ax.detach().double().numpy(), tomography_settings(n), self.shots)  # (N, 3, D)
        observed = zero_marginals(freq).transpose(0, 2, 1)  # (N, n, 3): qubit q in basis a
        return bloch_from_marginals(observed, source.assignment())

    def evaluate(self, ax: torch.Tensor, prepared: np.ndarray) -> torch.Tensor:
        if ax.size(0) == 0:
            return ax.new_zeros(0, prepared.shape[0])
        return torch.as_tensor(product_kernel(self.bloch(ax), prepared), dtype=ax.dtype)


class ShadowKernel(MeasuredStateKernel):
    """Any map: classical shadows in ``settings`` random Pauli settings of ``shots`` each, shared by the inputs of a call.

    Args:
        settings: settings per call ``K`` (default 32); ``rng``: draws them (default seeded 0).
    """

    def __init__(self, feature_map, *, shots: int, settings: int = 32, source: Measurements | None = None,
                 rng: np.random.Generator | None = None) -> None:
        super().__init__(feature_map, shots=shots, source=source)
        check_int("ShadowKernel", "settings", settings, 1)
        self.settings_per_input = settings
        self.rng = rng if rng is not None else np.random.default_rng(0)

    def prepare(self, ay: torch.Tensor) -> np.ndarray:
        """Exact reference states ``(M, 2**n)``."""
        return self.executor.simulate(ay.detach().double()).numpy()

    def evaluate(self, ax: torch.Tensor, prepared: np.ndarray) -> torch.Tensor:
        if ax.size(0) == 0:
            return ax.new_zeros(0, prepared.shape[0])
        source = self._source()
        settings = random_settings(self.settings_per_input, self.circuit.num_qubits, self.rng)
        freq = source.frequencies(ax.detach().double().numpy(), settings, self.shots)  # (N, K, D)
        weights = shadow_weights(prepared, settings, source.assignment())
        return torch.as_tensor(shadow_kernel(freq, weights), dtype=ax.dtype)
