"""Small labelled sequence sets shared by the classification test modules."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qk_lstm_qiskit.config import load_config


def toy_npz(path: Path, seed: int = 0, n_per_class: int = 6, length: int = 5) -> str:
    """Two classes of 2-channel sequences of varying length: class 1 has a positive mean, class 0 a negative one."""
    rng = np.random.default_rng(seed)
    X = np.zeros((2 * n_per_class, length, 2))
    lengths, y = [], []
    for i in range(2 * n_per_class):
        n = int(rng.integers(2, length + 1))
        X[i, :n] = rng.normal(loc=1.0 if i % 2 else -1.0, size=(n, 2))
        lengths.append(n)
        y.append("up" if i % 2 else "down")
    np.savez(path, X=X, y=np.array(y), lengths=np.array(lengths))
    return str(path)


def toy_config(train: str, test: str, kind: str = "lstm", epochs: int = 2):
    return load_config(overrides={
        "task": "classification", "model": {"kind": kind, "hidden_dim": 3, "num_qubits": 2, "num_references": 1},
        "data": {"source": train, "validation_fraction": 0.34}, "classify": {"test_source": test, "pooling": "mean"},
        "train": {"epochs": epochs, "lr": 0.05, "batch_size": 4},
    })
