"""Assertions shared by the test modules."""

from __future__ import annotations

import contextlib

import pytest


@contextlib.contextmanager
def raises_one_line(error: type[Exception], match: str):
    """``pytest.raises`` that also requires a one-line message."""
    with pytest.raises(error, match=match) as info:
        yield info
    assert "\n" not in str(info.value)
