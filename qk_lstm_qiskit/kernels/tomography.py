"""The product-kernel tomography fidelity: 3 circuits per input instead of one per (input, reference) pair."""

from __future__ import annotations

import numpy as np

from ..circuits.feature_map import FeatureMap
from .fidelity import register_fidelity
from .measured import Readout, TomographyKernel
from .measured_fidelity import MeasuredStateFidelity

__all__ = ["TomographyFidelity"]


@register_fidelity("tomography")
class TomographyFidelity(MeasuredStateFidelity):
    """``k̂ = Π_q (1 + r̂_q(x)·s_q(y))/2``: each qubit's Bloch vector of ``U(x)|0⟩`` measured in X, Y and Z
    (all qubits at once, ``shots`` per setting, per-qubit 2×2 readout correction), against the references'
    exact Bloch vectors (:class:`~.measured.TomographyKernel`; statistics in
    :mod:`qk_lstm_qiskit.estimators.tomography`). Inference only: the estimate carries no gradient.

    Args:
        feature_map: a product map (no entangling gate before its constant tail, e.g. the paper's ``reps=1``).
        shots: per setting (default 1024).
        sampler, pass_manager, readout: run on this ``BaseSamplerV2`` (ISA circuit from the pass manager;
            ``readout`` maps the measured physical qubits to assignment matrices ``(n, 2, 2)``). Without a
            sampler the shots are drawn exactly from the exact distributions (the shot planner's model),
            seeded by ``seed``, with the readout errors of ``assignment`` if given.

    Raises:
        ValueError: an entangling map.
    """

    circuits_per_input = 3  # X, Y, Z settings, whatever the number of references

    def __init__(self, feature_map: FeatureMap, *, shots: int = 1024, sampler=None, pass_manager=None,
                 readout: Readout | None = None, seed: int | None = 0, assignment: np.ndarray | None = None) -> None:
        super().__init__(feature_map, TomographyKernel(feature_map, shots=shots), shots=shots, sampler=sampler,
                         pass_manager=pass_manager, readout=readout, rng=np.random.default_rng(seed),
                         assignment=assignment)

    @property
    def is_product(self) -> bool:
        return True

    def extra_repr(self) -> str:
        return f"product tomography, shots={self.shots} per setting, {'device' if self.on_device else 'exact shot noise'}"
