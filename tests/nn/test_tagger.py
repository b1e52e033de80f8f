"""Taggers at the paper's config: Table I's parameter counts, output and input checks (qk_lstm_qiskit.nn.tagger)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from qk_lstm_qiskit.config import ModelConfig, load_config
from qk_lstm_qiskit.data.tasks import prepare_data
from qk_lstm_qiskit.nn.tagger import build_tagger, count_parameters


PAPER_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "paper_pos.yaml"


@pytest.mark.parametrize("kind, expected", [("qk-lstm", 183), ("lstm", 477), ("qlstm", 231)])
def test_parameter_counts_at_the_paper_config(kind, expected):
    config = load_config(PAPER_CONFIG, {"model": {"kind": kind}})
    data = prepare_data(config.data)
    model = build_tagger(config.model, len(data.words), len(data.tags))
    assert count_parameters(model) == expected
    # the shared parts of Table I: Embedding(9, 8) 72 + Linear(6, 3) 21
    assert count_parameters(model.embedding) == 72 and count_parameters(model.classifier) == 21
    if kind == "lstm":
        assert count_parameters(model.recurrent) == count_parameters(nn.LSTM(8, 6)) == 384


def test_tagger_output_and_input_checks(gen):
    model = build_tagger(ModelConfig(), 9, 3)
    words = torch.randint(0, 9, (2, 5), generator=gen)
    log_probs = model(words)
    assert log_probs.shape == (2, 5, 3)
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(2, 5))
    with pytest.raises(ValueError, match=r"Tagger: expected words of shape \(N, L\), got \(5,\)"):
        model(words[0])
    with pytest.raises(ValueError, match=r"Tagger: expected word indices in \[0, 9\), got \[0, 9\]"):
        model(torch.tensor([[0, 9]]))
    with pytest.raises(ValueError, match=r"build_tagger: expected kind in .*got 'gru'"):
        build_tagger(ModelConfig(kind="gru"), 9, 3)
