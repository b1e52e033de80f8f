"""Boundary checks that raise one-line errors naming the owner, argument, expected and actual value.

``TypeError`` for a wrong type, ``ValueError`` for a wrong value: the one place these are written.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch

__all__ = ["check_choice", "check_dtype", "check_finite", "check_int", "check_number", "check_pair", "check_tensor", "FLOAT_DTYPES"]

FLOAT_DTYPES = (torch.float32, torch.float64)  #: what the executors compute in


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


def check_tensor(
    owner: str, name: str, value: Any, *, dtypes: Sequence[torch.dtype] = FLOAT_DTYPES, finite: bool = True
) -> None:
    """Raise ``TypeError`` unless ``value`` is a ``torch.Tensor`` of one of ``dtypes``; ``ValueError`` on NaN/inf.

    Complex, integer, boolean and half-precision tensors are refused rather than cast: a cast
    would silently drop an imaginary part or change the precision the caller asked for.
    """
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{owner}: expected {name} to be a torch.Tensor, got {type(value).__name__}")
    if value.dtype not in dtypes:
        expected = " or ".join(str(d).removeprefix("torch.") for d in dtypes)
        raise TypeError(f"{owner}: expected {name} of dtype {expected}, got {str(value.dtype).removeprefix('torch.')}")
    if finite:
        check_finite(owner, name, value)


def check_dtype(owner: str, dtype: Any) -> None:
    """Raise ``TypeError`` unless ``dtype`` (a factory argument) is ``None`` or one of :data:`FLOAT_DTYPES`."""
    if dtype is not None and dtype not in FLOAT_DTYPES:
        expected = " or ".join(str(d).removeprefix("torch.") for d in FLOAT_DTYPES)
        raise TypeError(f"{owner}: expected dtype {expected} (what the executors compute in), got {dtype}")


def check_pair(owner: str, name: str, value: Any, names: tuple[str, str] = ("h_0", "c_0")) -> tuple[Any, Any]:
    """``value`` as a 2-tuple, or ``TypeError`` naming the expected ``(names[0], names[1])``."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        got = f"{type(value).__name__} of length {len(value)}" if isinstance(value, (tuple, list)) else type(value).__name__
        raise TypeError(f"{owner}: expected {name} to be a tuple ({names[0]}, {names[1]}), got {got}")
    return value[0], value[1]
