"""Per-channel standardisation fitted on training data only (sequences and multivariate series)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = ["ChannelScaler"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChannelScaler:
    """Per-channel standardisation ``z = (x − mean) / std`` with statistics of the training steps.

    A channel constant over the training steps keeps ``std = 1`` (it is only centred).
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def fit(cls, sequences: Sequence[np.ndarray]) -> ChannelScaler:
        """Mean and (population) std of every channel over all steps of ``sequences`` (each ``(L_i, C)``)."""
        steps = np.concatenate(list(sequences))  # (Σ L_i, C)
        mean, std = steps.mean(axis=0), steps.std(axis=0)
        constant = np.flatnonzero(~(std > 0))
        if constant.size:
            log.warning("scaling: channels %s are constant over the training data; they are only centred", constant.tolist())
        return cls(tuple(float(m) for m in mean), tuple(float(s) if s > 0 else 1.0 for s in std))

    def select(self, channels: Sequence[int]) -> ChannelScaler:
        """The statistics of ``channels`` only, in that order."""
        return ChannelScaler(tuple(self.mean[c] for c in channels), tuple(self.std[c] for c in channels))

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """Standardised ``z`` of shape ``(…, C)`` back in the channels' units."""
        return z * np.asarray(self.std) + np.asarray(self.mean)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """``x`` of shape ``(…, C)`` standardised channel by channel."""
        return (x - np.asarray(self.mean)) / np.asarray(self.std)

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, state: dict[str, Sequence[float]]) -> ChannelScaler:
        return cls(tuple(float(m) for m in state["mean"]), tuple(float(s) for s in state["std"]))
