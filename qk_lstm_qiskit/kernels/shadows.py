"""The classical-shadow fidelity: ``K`` random Pauli settings per call, every reference from the same shots."""

from __future__ import annotations

import numpy as np

from ..circuits.feature_map import FeatureMap
from .fidelity import register_fidelity
from .measured import Readout, ShadowKernel
from .measured_fidelity import MeasuredStateFidelity

__all__ = ["ShadowFidelity"]


@register_fidelity("shadows")
class ShadowFidelity(MeasuredStateFidelity):
    """``k̂ = mean ⟨φ|ρ̂|φ⟩`` over classical shadows of ``U(x)|0⟩`` (``settings`` random Pauli settings of
    ``shots`` each, shared by the inputs of a call) against the references' exact states
    (:class:`~.measured.ShadowKernel`; statistics in :mod:`qk_lstm_qiskit.estimators.shadows`). Any map.
    Inference only: the estimate carries no gradient.

    Args:
        feature_map: any map.
        shots: per setting (default 64); settings: per call (default 32).
        sampler, pass_manager, readout, seed, assignment: as :class:`~.tomography.TomographyFidelity`
            (``seed`` also draws the settings).
    """

    def __init__(self, feature_map: FeatureMap, *, shots: int = 64, settings: int = 32, sampler=None,
                 pass_manager=None, readout: Readout | None = None, seed: int | None = 0,
                 assignment: np.ndarray | None = None) -> None:
        rng = np.random.default_rng(seed)
        super().__init__(feature_map, ShadowKernel(feature_map, shots=shots, settings=settings, rng=rng), shots=shots,
                         sampler=sampler, pass_manager=pass_manager, readout=readout, rng=rng, assignment=assignment)
        self._product = self.estimator.is_product

    @property
    def circuits_per_input(self) -> int:
        return self.estimator.settings_per_input

    @property
    def is_product(self) -> bool:
        return self._product

    def extra_repr(self) -> str:
        return (f"classical shadows, {self.circuits_per_input} settings x {self.shots} shots, "
                f"{'device' if self.on_device else 'exact shot noise'}")
