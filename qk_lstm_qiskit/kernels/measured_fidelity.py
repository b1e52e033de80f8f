"""What the measured-state fidelities share: ``U(x)`` measured alone, the references' exact side prepared classically."""

from __future__ import annotations

import numpy as np
import torch

from .fidelity import Fidelity, FidelityCost, Reference
from .measured import Readout, ShadowKernel, TomographyKernel

__all__ = ["MeasuredStateFidelity"]


class MeasuredStateFidelity(Fidelity):
    """A measured-state kernel (:class:`~.measured.TomographyKernel`, :class:`~.measured.ShadowKernel`) as a fidelity: the ``y`` side exactly (``_prepare``),
    each call's ``x`` side measured on a sampler, or drawn exactly from the exact distributions without one.
    Inference only; its cost is per input row (``circuits_per_input``), not per kernel value.

    Args:
        estimator: the measured-state kernel; its ``source`` is set here.
        shots: per setting.
        sampler, pass_manager, readout: run on this ``BaseSamplerV2`` (see :class:`~.tomography.TomographyFidelity`).
        rng, assignment: without a sampler: the draws' generator and the readout errors ``(n, 2, 2)`` if given.
    """

    def __init__(self, feature_map, estimator: TomographyKernel | ShadowKernel, *, shots: int, sampler=None,
                 pass_manager=None, readout: Readout | None = None, rng: np.random.Generator,
                 assignment: np.ndarray | None = None) -> None:
        super().__init__(feature_map)
        self.estimator, self.shots, self.on_device = estimator, shots, sampler is not None
        estimator.source = (estimator.sampler_source(sampler, pass_manager=pass_manager, readout=readout)
                            if sampler is not None else estimator.simulated_source(rng, assignment))

    def _prepare(self, ay: torch.Tensor) -> np.ndarray:
        return self.estimator.prepare(ay)

    def evaluate(self, ax: torch.Tensor, reference: Reference) -> torch.Tensor:
        prepared = reference.prepared if reference.prepared is not None else self._prepare(reference.angles)
        return self.estimator.evaluate(ax, prepared)

    def circuits(self):
        return (self.estimator.source.circuit,) if self.on_device else ()

    def cost(self, *, differentiate_y: bool = False) -> FidelityCost:
        return FidelityCost(forward=0)  # per input row, not per value: circuits_per_input
