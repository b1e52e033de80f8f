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
from typing import Any

import numpy as np
import torch
from qiskit.circuit import QuantumCircuit
from qiskit.primitives import BaseSamplerV2
from qiskit_machine_learning.connectors import TorchConnector
from qiskit_machine_learning.exceptions import QiskitMachineLearningError
from qiskit_machine_learning.neural_networks import SamplerQNN

from ..circuits.feature_map import FeatureMap
from ..errors import QKLSTMError
from ..gradients.parameter_shift import BatchedParamShiftSamplerGradient, job_id, probabilities
from .exact import exact_executor
from .fidelity import Fidelity, FidelityCost, Reference, register_fidelity

__all__ = ["SamplerFidelity"]

logger = logging.getLogger(__name__)


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



class _KernelQNN(SamplerQNN):
    """``SamplerQNN`` for ``interpret=_all_zeros``: vectorised outcome counting, and job
    failures surfacing as :class:`QKLSTMError` naming the job id.

    The one place that overrides SamplerQNN's private ``_postprocess``, ``_forward`` and
    ``_backward`` (their signatures are checked by tests/test_library_internals.py).
    """

    def _postprocess(self, num_samples: int, result) -> np.ndarray:
        """``[P(0…0), 1 − P(0…0)]`` per binding ``(num_samples, 2)``, counted in numpy.

        Same values as ``SamplerQNN._postprocess`` with ``_all_zeros`` on a circuit without a
        layout, which converts every shot of every binding to a Python string.
        """
        probs = probabilities(result[0], num_samples)  # (S, 2**num_clbits)
        return np.stack([probs[:, 0], probs[:, 1:].sum(axis=1)], axis=1)

    def _failure(self, stage: str, exc: QiskitMachineLearningError) -> QKLSTMError:
        cause = exc.__cause__ or exc
        if isinstance(cause, QKLSTMError):
            return cause
        failed = job_id(getattr(self.sampler, "last_job", None))
        return QKLSTMError(
            f"SamplerFidelity: sampler job {failed!r} failed in the {stage} pass: {type(cause).__name__}: {cause}"
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


@register_fidelity("compute-uncompute")
class SamplerFidelity(Fidelity):
    """Fidelity-kernel matrix from a Sampler: ``K[n, m] = P(0…0)`` of ``U†(y_m) U(x_n)|0⟩``.

    .. math:: K_{nm} = |\\langle 0 | U^\\dagger(\\theta^y_m) U(\\theta^x_n) | 0 \\rangle|^2

    The compute-uncompute fidelity on a device, one circuit per value (registered as
    ``"compute-uncompute"``). Autograd runs through qiskit-machine-learning: a ``SamplerQNN``
    (``input_gradients=True``, output ``[P(0…0), 1 − P(0…0)]``) in a ``TorchConnector``, with
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
        super().__init__(feature_map)
        self._product = exact_executor(feature_map).is_product_circuit  # compiled only, nothing simulated
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
        # measure_all ran before transpiling: clbit q holds logical qubit q. SamplerQNN would
        # remap outcomes through the layout (correct only for measurements added afterwards),
        # so hand it the same ISA circuit without one (compose into a fresh circuit drops it).
        unlaid = QuantumCircuit(*isa.qregs, *isa.cregs, name=isa.name)
        isa = unlaid.compose(isa)
        logger.info("SamplerFidelity: transpiled fidelity circuit, depth %d, ops %s", isa.depth(), dict(isa.count_ops()))
        return isa

    def _constant(self, differentiate_y: bool) -> range:
        """Columns of the y angles (after x's in the inputs) when they are not differentiated."""
        p = self.num_parameters
        return range(0) if differentiate_y else range(p, 2 * p)

    def connector(self, differentiate_y: bool = True) -> TorchConnector:
        """The cached ``TorchConnector(SamplerQNN)``; ``differentiate_y=False`` skips the y shifts."""
        if differentiate_y not in self._connectors:
            constant = self._constant(differentiate_y)
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

    @property
    def is_product(self) -> bool:
        return self._product

    def evaluate(self, ax: torch.Tensor, reference: Reference) -> torch.Tensor:
        ay = reference.angles
        n, m = ax.size(0), ay.size(0)
        if n == 0 or m == 0:
            return ax.new_zeros(n, m)
        ay = ay.to(ax.dtype)
        return self.evaluate_pairs(ax.repeat_interleave(m, dim=0), ay.repeat(n, 1)).reshape(n, m)  # row n·M + m

    def evaluate_pairs(self, ax: torch.Tensor, ay: torch.Tensor) -> torch.Tensor:
        """``k(ax_b, ay_b)`` of ``B`` explicit pairs of angles ``(B, P)`` each → ``(B,)`` in ``ax.dtype``,
        all in ONE ``sampler.run`` (one PUB of ``B`` bindings): a caller may add its own pairs to a job."""
        if ax.size(0) == 0:
            return ax.new_zeros(0)
        differentiate_y = torch.is_grad_enabled() and ay.requires_grad
        out = self.connector(differentiate_y)(torch.cat([ax, ay.to(ax.dtype)], dim=1))  # (B, 2) float32
        return out[:, 0].to(ax.dtype)  # P(0…0)

    def circuits(self) -> tuple[QuantumCircuit, ...]:
        """The composed, measured (and transpiled) fidelity circuit."""
        return (self.circuit,)

    def cost(self, *, differentiate_y: bool = False) -> FidelityCost:
        """One circuit per value forward; the backward shifts every gate angle of the differentiated sides
        (:meth:`~qk_lstm_qiskit.gradients.parameter_shift.BatchedParamShiftSamplerGradient.shifted_angles`)."""
        gradient = BatchedParamShiftSamplerGradient(self.sampler, constant_columns=self._constant(differentiate_y))
        shifted = gradient.shifted_angles(self.circuit)
        return FidelityCost(forward=1, backward=2 * shifted, shifted_parameters=shifted)

    def extra_repr(self) -> str:
        return (
            f"sampler={type(self.sampler.sampler).__name__}, num_parameters={self.num_parameters}, "
            f"transpiled={self.transpiled}"
        )
