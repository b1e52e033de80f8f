"""Every shipped config loads, and the parameter counts its comments state are the models' own."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

from qk_lstm_qiskit.config import load_config
from qk_lstm_qiskit.data.series import is_series_source
from qk_lstm_qiskit.errors import ProductKernelWarning
from qk_lstm_qiskit.nn.forecaster import build_forecaster
from qk_lstm_qiskit.nn.tagger import build_tagger, count_parameters

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))
UPOS_TAGS = 17  # the UD English EWT configs tag UPOS
OUTSIDE = re.compile(r"([\d,]+) outside the embedding")


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_loads_and_states_its_own_parameter_count(path):
    config = load_config(path)
    text = path.read_text(encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ProductKernelWarning)
        if is_series_source(config.data.source) or config.data.source.endswith(".csv"):
            model, embedding = build_forecaster(config.model, 1), 0
        else:
            model = build_tagger(config.model, 1, UPOS_TAGS)
            embedding = model.embedding.weight.numel()
    claims = OUTSIDE.findall(text)
    if claims and embedding:
        assert int(claims[0].replace(",", "")) == count_parameters(model) - embedding, path.name
