"""Sample moments with standard errors, for checking variance formulas by simulation."""

from __future__ import annotations

import numpy as np


def assert_mean(samples: np.ndarray, expected: np.ndarray, z: float = 5.0) -> None:
    """The sample mean over axis 0 within ``z`` standard errors of ``expected`` (elementwise)."""
    se = samples.std(axis=0, ddof=1) / np.sqrt(samples.shape[0])
    gap = np.abs(samples.mean(axis=0) - expected)
    assert np.all(gap <= z * se + 1e-12), f"mean off by {np.max(gap / (se + 1e-300)):.1f} standard errors"


def assert_variance(samples: np.ndarray, expected: np.ndarray, z: float = 5.0) -> None:
    """The sample variance over axis 0 within ``z`` standard errors (from the 4th central moment) of ``expected``."""
    r = samples.shape[0]
    centred = samples - samples.mean(axis=0)
    var = centred.var(axis=0, ddof=1)
    se = np.sqrt(np.maximum((centred**4).mean(axis=0) - var**2, 0.0) / r)
    gap = np.abs(var - expected)
    assert np.all(gap <= z * se + 1e-15), f"variance off by {np.max(gap / (se + 1e-300)):.1f} standard errors"
