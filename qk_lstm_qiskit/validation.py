"""Boundary checks that raise one-line errors naming the owner, argument, expected and actual value."""

from __future__ import annotations

import torch

__all__ = ["check_finite", "check_int"]


def check_int(owner: str, name: str, value: int, minimum: int) -> None:
    """Raise ``TypeError`` unless ``value`` is an int, ``ValueError`` unless ``value >= minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{owner}: expected {name} to be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{owner}: expected {name} >= {minimum}, got {value}")


def check_finite(owner: str, name: str, tensor: torch.Tensor) -> None:
    """Raise ``ValueError`` when ``tensor`` holds NaN or ±inf."""
    if not torch.isfinite(tensor).all():
        bad = tensor[~torch.isfinite(tensor)].flatten()[0].item()
        raise ValueError(f"{owner}: expected finite values in {name}, got {bad}")
