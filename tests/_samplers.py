"""Sampler doubles shared by the test modules."""

from __future__ import annotations

import numpy as np
from qiskit.primitives import BaseSamplerV2


class CountingSampler(BaseSamplerV2):
    """Delegates to ``inner``; records, per ``run`` call, the circuits and binding shapes of its PUBs."""

    def __init__(self, inner: BaseSamplerV2) -> None:
        self.inner = inner
        self.calls: list[list[tuple[int, tuple[int, ...]]]] = []

    def run(self, pubs, *, shots=None):
        pubs = list(pubs)
        self.calls.append([(pub[0].num_qubits, np.shape(pub[1])) for pub in pubs])
        return self.inner.run(pubs) if shots is None else self.inner.run(pubs, shots=shots)
