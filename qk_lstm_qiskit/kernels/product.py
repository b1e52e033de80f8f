"""The exact product kernel from per-qubit Bloch vectors: no statevector at any qubit count."""

from __future__ import annotations

import torch

from ..circuits.feature_map import FeatureMap
from .exact import StatevectorFidelity
from .fidelity import Reference, register_fidelity
from .routes import KernelRoute, ProductRoute, is_qubit_local
from .statevector import FourierBloch, StatevectorExecutor

__all__ = ["ProductFidelity"]


@register_fidelity("product")
class ProductFidelity(StatevectorFidelity):
    """``k = Π_q (1 + r_q(x)·r_q(y)) / 2`` for a product circuit (``U = M ⊗_q u_q`` with a constant
    CX/CZ/SWAP stage ``M``, e.g. the paper's ``reps=1``): the constant stage cancels in ``U†(y)U(x)``
    and the kernel is the product of single-qubit fidelities of the Bloch vectors the executor produces
    (:meth:`~.statevector.StatevectorExecutor.product_bloch`): the same number as the statevector
    fidelity, far fewer operations, differentiable by autograd.

    Its fused route is :class:`~.routes.ProductRoute` for a qubit-local map without trainable weights,
    else the statevector route of :class:`~.exact.StatevectorFidelity`.

    Args: as :class:`~.exact.StatevectorFidelity`.

    Raises:
        ValueError: the map's circuit is not a product circuit.
    """

    def __init__(self, feature_map: FeatureMap, *, memory_limit: int | None = None,
                 executor: StatevectorExecutor | None = None) -> None:
        super().__init__(feature_map, memory_limit=memory_limit, executor=executor)
        if not self.executor.is_product_circuit:
            raise ValueError(f"ProductFidelity: expected a product circuit, got the entangling map {feature_map.extra_repr()}")
        self._local: bool | None = None  # the map is qubit-local (checked on first route)
        self._expansions: dict[tuple[torch.dtype, torch.device], FourierBloch] = {}

    @property
    def is_product(self) -> bool:
        return True

    def _prepare(self, ay: torch.Tensor) -> torch.Tensor:
        return self.executor.product_bloch(ay)  # (n, 3, M)

    def evaluate(self, ax: torch.Tensor, reference: Reference) -> torch.Tensor:
        # Π_q |<u_q(y)|u_q(x)>|² = Π_q (1 + r_q(x)·r_q(y)) / 2
        cosines = torch.bmm(self.executor.product_bloch(ax).transpose(1, 2), self.bloch(reference, ax.dtype))  # (n, N, M)
        return torch.prod(cosines + 1.0, dim=0) * 0.5**self.num_qubits

    def bloch(self, reference: Reference, dtype: torch.dtype) -> torch.Tensor:
        """The reference's Bloch vectors ``(n, 3, M)`` in ``dtype``."""
        bloch = reference.prepared
        if not isinstance(bloch, torch.Tensor) or bloch.dtype != dtype:
            bloch = self.executor.product_bloch(reference.angles.to(dtype))
        return bloch

    def route(self, feature_map: FeatureMap, reference: Reference) -> KernelRoute | None:
        form = self.executor.product_form(torch.float64)
        if form is not None and not any(p.requires_grad for p in feature_map.parameters()):
            if self._local is None:  # the map this fidelity was built for: checked once
                self._local = is_qubit_local(feature_map, form)
            if self._local:
                dtype, device = reference.angles.dtype, reference.angles.device
                key = (dtype, torch.device(device))
                if key not in self._expansions:
                    self._expansions[key] = FourierBloch(*(t.to(device, dtype) for t in FourierBloch.of(form)))
                return ProductRoute(feature_map, self._expansions[key], self.bloch(reference, dtype))
        return super().route(feature_map, reference)

    def extra_repr(self) -> str:
        return "exact product kernel (Bloch vectors)"
