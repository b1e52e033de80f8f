"""Compute–uncompute's shot noise drawn exactly: the exact kernel, then the frequency of ``0…0`` in ``S`` shots."""

from __future__ import annotations

import numpy as np
import torch

from ..circuits.feature_map import FeatureMap
from ..estimators.compute_uncompute import simulate_frequencies
from .fidelity import Fidelity, Reference, register_fidelity

__all__ = ["ComputeUncomputeShots"]


@register_fidelity("compute-uncompute-shots")
class ComputeUncomputeShots(Fidelity):
    """``k̂ ~ Binomial(S, k)/S`` with ``k`` the exact kernel: what compute–uncompute on a noiseless device
    returns, drawn without running a circuit (the shot planner's model of the baseline). Inference only.

    Args:
        feature_map: any map; shots: per circuit (default 1024); seed: of the draws (default 0).
    """

    def __init__(self, feature_map: FeatureMap, *, shots: int = 1024, seed: int | None = 0) -> None:
        super().__init__(feature_map)
        from .kernel import exact_fidelity

        self.exact = exact_fidelity(feature_map)
        self.shots, self.rng = shots, np.random.default_rng(seed)
        self.circuits_per_reference = 1

    @property
    def is_product(self) -> bool:
        return self.exact.is_product

    def _prepare(self, ay: torch.Tensor):
        return self.exact.prepare(ay)

    def evaluate(self, ax: torch.Tensor, reference: Reference) -> torch.Tensor:
        inner = reference.prepared if isinstance(reference.prepared, Reference) else self.exact.prepare(reference.angles)
        with torch.no_grad():
            k = self.exact.evaluate(ax, inner).double().numpy()
        return torch.as_tensor(simulate_frequencies(k, self.shots, self.rng), dtype=ax.dtype)

    def extra_repr(self) -> str:
        return f"compute-uncompute, shots={self.shots}, exact shot noise"
