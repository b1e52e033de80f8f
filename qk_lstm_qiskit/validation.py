"""Boundary checks that raise one-line errors naming the owner, argument, expected and actual value.

``TypeError`` for a wrong type, ``ValueError`` for a wrong value: the one place these are written.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch

__all__ = ["check_choice", "check_finite", "check_int", "check_number"]


def check_int(owner: str, name: str, value: Any, minimum: int | None = None, *, optional: bool = False) -> None:
    """Raise ``TypeError`` unless ``value`` is an int (or ``None`` when ``optional``), ``ValueError`` unless ``value >= minimum``."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        kind = "None or an int" if optional else "an int"
        raise TypeError(f"{owner}: expected {name} to be {kind}, got {type(value).__name__} {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{owner}: expected {name} >= {minimum}, got {value}")


def check_number(
    owner: str, name: str, value: Any, *, minimum: float | None = None, maximum: float | None = None,
    strict: bool = False, optional: bool = False,
) -> None:
    """A finite real number in ``[minimum, maximum]`` (open interval when ``strict``), else ``TypeError``/``ValueError``."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{owner}: expected {name} to be a number, got {type(value).__name__} {value!r}")
    low_ok = minimum is None or (value > minimum if strict else value >= minimum)
    high_ok = maximum is None or (value < maximum if strict else value <= maximum)
    if not (math.isfinite(value) and low_ok and high_ok):
        op = "<" if strict else "<="
        if minimum is not None and maximum is not None:
            expected = f"{minimum} {op} {name} {op} {maximum}"
        elif minimum is not None:
            expected = f"a finite {name} {'>' if strict else '>='} {minimum}"
        elif maximum is not None:
            expected = f"a finite {name} {op} {maximum}"
        else:
            expected = f"a finite {name}"
        raise ValueError(f"{owner}: expected {expected}, got {value!r}")


def check_choice(owner: str, name: str, value: Any, choices: Sequence[Any]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{owner}: expected {name} in {tuple(choices)}, got {value!r}")


def check_finite(owner: str, name: str, tensor: torch.Tensor) -> None:
    """Raise ``ValueError`` when ``tensor`` holds NaN or ±inf."""
    if not torch.isfinite(tensor).all():
        bad = tensor[~torch.isfinite(tensor)].flatten()[0].item()
        raise ValueError(f"{owner}: expected finite values in {name}, got {bad}")
