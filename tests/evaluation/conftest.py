"""Fixtures of the evaluation tests."""

from __future__ import annotations

import pytest

from qk_lstm_qiskit.config import load_config
from qk_lstm_qiskit.training.experiment import run_training


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A QK-LSTM tagger trained exactly for a few epochs on the paper's two sentences (one per test module)."""
    out = tmp_path_factory.mktemp("paper")
    run_training(load_config(overrides={"train": {"epochs": 4}}), out, progress=False)
    return out / "model.pt"
