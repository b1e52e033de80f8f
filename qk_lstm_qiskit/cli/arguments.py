"""Argument types of the ``qk-lstm`` flags and the parser that reports a bad one in one line.

A flag's value is checked where argparse reads it, so a refusal comes before any file is read,
folder created or job submitted: ``qk-lstm evaluate: error: argument --timeout: expected a
number > 0, got '0'`` (exit 2), never the 20-line usage.
"""

from __future__ import annotations

import argparse
import math
from typing import Callable, NoReturn

__all__ = ["OneLineParser", "integer", "number", "path", "SEED"]


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one ``prog: error: message`` line on stderr (exit 2)."""

    def error(self, message: str) -> NoReturn:
        message = " ".join(message.split())  # argparse wraps long choice lists over lines
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def number(minimum: float | None = None, maximum: float | None = None, *, strict: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite float ``>= minimum`` (``> minimum`` when ``strict``) and ``<= maximum``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        low = minimum is None or (value > minimum if strict else value >= minimum)
        if not (math.isfinite(value) and low and (maximum is None or value <= maximum)):
            if minimum is not None and maximum is not None:
                bounds = f" with {minimum} {'<' if strict else '<='} value <= {maximum}"
            elif minimum is not None:
                bounds = f" {'>' if strict else '>='} {minimum}"
            else:
                bounds = "" if maximum is None else f" <= {maximum}"
            raise argparse.ArgumentTypeError(f"expected a finite number{bounds}, got {text!r}")
        return value

    parse.__name__ = "number"
    return parse


def integer(minimum: int | None = None, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse type: an int in ``[minimum, maximum]`` (either bound optional)."""
    if minimum is not None and maximum is not None:
        bounds = f" with {minimum} <= value <= {maximum}"
    else:
        bounds = f" >= {minimum}" if minimum is not None else ("" if maximum is None else f" <= {maximum}")

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer{bounds}, got {text!r}") from None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"expected an integer{bounds}, got {value}")
        return value

    parse.__name__ = "integer"  # argparse names the type in "invalid <type> value"
    return parse


def path(text: str) -> str:
    """An argparse type: a non-empty path (``''`` would silently mean the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a path, got {text!r}")
    return text


SEED = integer(0, 2**32 - 1)  # numpy, torch and the transpiler take [0, 2**32)

