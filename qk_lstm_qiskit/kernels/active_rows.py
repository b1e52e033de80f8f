"""A fidelity wrapper that sends only the rows of sequences still running: padded time steps cost no circuit."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

import torch

from ..circuits.feature_map import FeatureMap
from .fidelity import Fidelity, Reference

__all__ = ["ActiveRowsFidelity"]


class ActiveRowsFidelity(Fidelity):
    """Evaluates ``inner`` on the rows whose sequence is still running at this time step; padded rows get 0.

    Inside :meth:`schedule` ``(lengths)`` the ``t``-th :meth:`evaluate` call (the cell's time step
    ``t``) passes row ``i`` only when ``lengths[i] > t``. Outside a schedule every row is evaluated.
    Padded positions are masked out of every output, so their kernel values change no result. The
    schedule is per thread (batches may run concurrently).

    Args:
        inner: the fidelity that runs (e.g. on a device); feature_map: its map.
    """

    def __init__(self, inner: Fidelity, feature_map: FeatureMap) -> None:
        super().__init__(feature_map)
        self.inner = inner
        self._local = threading.local()
        self.rows_sent = self.rows_skipped = 0

    @property
    def is_product(self) -> bool:
        return self.inner.is_product

    @property
    def circuits_per_input(self) -> int | None:
        return getattr(self.inner, "circuits_per_input", None)

    def _prepare(self, ay: torch.Tensor) -> Reference:
        return self.inner.prepare(ay)

    @contextmanager
    def schedule(self, lengths: torch.Tensor) -> Iterator[None]:
        """Within the block, call ``t`` evaluates the rows with ``lengths > t`` (``lengths`` ``(N,)``)."""
        self._local.lengths, self._local.step = torch.as_tensor(lengths), 0
        try:
            yield
        finally:
            self._local.lengths = None

    def evaluate(self, ax: torch.Tensor, reference: Reference) -> torch.Tensor:
        inner = reference.prepared if isinstance(reference.prepared, Reference) else self.inner.prepare(reference.angles)
        lengths = getattr(self._local, "lengths", None)
        if lengths is None:
            self.rows_sent += ax.size(0)
            return self.inner(ax, inner)  # a module call: the inner fidelity's hooks see what is sent
        active = lengths > self._local.step
        self._local.step += 1
        if active.shape != (ax.size(0),):
            raise ValueError(f"ActiveRowsFidelity: expected {ax.size(0)} sequence lengths, got {tuple(lengths.shape)}")
        out = ax.new_zeros(ax.size(0), inner.angles.size(0))
        if active.any():
            out[active] = self.inner(ax[active], inner).to(ax.dtype)
        self.rows_sent += int(active.sum())
        self.rows_skipped += int((~active).sum())
        return out

    def circuits(self):
        return self.inner.circuits()

    def cost(self, *, differentiate_y: bool = False):
        return self.inner.cost(differentiate_y=differentiate_y)
