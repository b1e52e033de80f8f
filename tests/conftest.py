"""Shared fixtures: one torch thread (much faster on small ops on a loaded box), fixed seeds."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

torch.set_num_threads(1)  # at import too: module-level test data is built before any fixture runs


@pytest.fixture(autouse=True)
def _single_thread_and_seeds():
    """Every test starts from one torch thread and seeds 0 for python, numpy and torch."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded numpy generator for random angles and data."""
    return np.random.default_rng(1234)


@pytest.fixture
def gen() -> torch.Generator:
    """A seeded torch generator."""
    return torch.Generator().manual_seed(1234)
