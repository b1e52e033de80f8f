"""Shared fixtures: a temporary home folder, one torch thread (much faster on small ops on a loaded
box), fixed seeds, deterministic hypothesis runs."""

from __future__ import annotations

import os
import random
import shutil
import sys
import tempfile
from pathlib import Path

# Before anything imports qiskit_ibm_runtime, matplotlib or jupyter (they fix their paths at import):
# the suite, its CLI subprocesses and notebook kernels see a temporary home, so no test can write
# the user's ~/.qiskit (e.g. qiskit-ibm.json), ~/.config or ~/.cache, nor read a saved IBM account.
if "qk_lstm_qiskit" in sys.modules or "qiskit" in sys.modules:  # e.g. a warning category in pyproject's filterwarnings
    raise RuntimeError("tests/conftest.py: qiskit was imported before the conftest isolated the home folder")
TEST_HOME = Path(tempfile.mkdtemp(prefix="qk-lstm-test-home-"))
os.environ.update({
    "HOME": str(TEST_HOME),
    "USERPROFILE": str(TEST_HOME),
    "XDG_CONFIG_HOME": str(TEST_HOME / ".config"),
    "XDG_CACHE_HOME": str(TEST_HOME / ".cache"),
    "XDG_DATA_HOME": str(TEST_HOME / ".local" / "share"),
    "MPLCONFIGDIR": str(TEST_HOME / ".config" / "matplotlib"),
    "QISKIT_SETTINGS": str(TEST_HOME / ".qiskit" / "settings.conf"),
})
for _name in ("QISKIT_IBM_TOKEN", "QISKIT_IBM_INSTANCE", "QISKIT_IBM_CHANNEL", "QISKIT_IBM_URL"):
    os.environ.pop(_name, None)  # tests that need them set stand-ins with monkeypatch

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import settings  # noqa: E402

torch.set_num_threads(1)  # at import too: module-level test data is built before any fixture runs
# Same examples every run, nothing written to .hypothesis/, no timing flakiness on a loaded machine.
settings.register_profile("qk-lstm", database=None, derandomize=True, deadline=None)
settings.load_profile("qk-lstm")


def pytest_configure(config) -> None:
    config.addinivalue_line("filterwarnings", "ignore::qk_lstm_qiskit.errors.ProductKernelWarning")


def pytest_unconfigure(config) -> None:
    shutil.rmtree(TEST_HOME, ignore_errors=True)


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


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A QK-LSTM tagger trained exactly for a few epochs on the paper's two sentences (one per test module; a
    module's own ``checkpoint`` fixture takes precedence)."""
    from qk_lstm_qiskit.config import load_config
    from qk_lstm_qiskit.training.experiment import run_training

    out = tmp_path_factory.mktemp("paper")
    run_training(load_config(overrides={"train": {"epochs": 4}}), out, progress=False)
    return out / "model.pt"
