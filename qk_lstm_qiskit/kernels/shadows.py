"""The classical-shadow fidelity: ``K`` random Pauli settings per call, every reference from the same shots."""

from __future__ import annotations

import numpy as np
import torch

from ..circuits.feature_map import FeatureMap
from .fidelity import Fidelity, FidelityCost, Reference, register_fidelity
from .measured import Readout, ShadowKernel

__all__ = ["ShadowFidelity"]


@register_fidelity("shadows")
class ShadowFidelity(Fidelity):
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
        super().__init__(feature_map)
        rng = np.random.default_rng(seed)
        self.estimator = ShadowKernel(feature_map, shots=shots, settings=settings, rng=rng)
        self.shots, self.on_device = shots, sampler is not None
        self.estimator.source = (
            self.estimator.sampler_source(sampler, pass_manager=pass_manager, readout=readout) if sampler is not None
            else self.estimator.simulated_source(rng, assignment))
        self._product = self.estimator.is_product

    @property
    def circuits_per_input(self) -> int:
        return self.estimator.settings_per_input

    @property
    def is_product(self) -> bool:
        return self._product

    def _prepare(self, ay: torch.Tensor) -> np.ndarray:
        return self.estimator.prepare(ay)  # (M, 2**n) exact

    def evaluate(self, ax: torch.Tensor, reference: Reference) -> torch.Tensor:
        prepared = reference.prepared if reference.prepared is not None else self._prepare(reference.angles)
        return self.estimator.evaluate(ax, prepared)

    def circuits(self):
        return (self.estimator.source.circuit,) if self.on_device else ()

    def cost(self, *, differentiate_y: bool = False) -> FidelityCost:
        return FidelityCost(forward=0)  # per input row, not per value: circuits_per_input

    def extra_repr(self) -> str:
        return (f"classical shadows, {self.circuits_per_input} settings x {self.shots} shots, "
                f"{'device' if self.on_device else 'exact shot noise'}")
