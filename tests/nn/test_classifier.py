"""Sequence classifier: padding never changes a sequence's logits, the masked mean is the mean over real steps, gradcheck."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from qk_lstm_qiskit.config import ModelConfig
from qk_lstm_qiskit.nn.classifier import SequenceClassifier, build_classifier, pool_hidden
from qk_lstm_qiskit.nn.lstm import QKLSTM


def test_masked_mean_and_last_state_against_a_loop(gen):
    hidden = torch.randn(3, 5, 4, generator=gen, dtype=torch.float64)
    lengths = torch.tensor([5, 1, 3])
    mean = pool_hidden(hidden, lengths, "mean")
    last = pool_hidden(hidden, lengths, "last")
    for n, length in enumerate(lengths.tolist()):
        torch.testing.assert_close(mean[n], hidden[n, :length].mean(0))
        torch.testing.assert_close(last[n], hidden[n, length - 1])


@pytest.mark.parametrize("kind", ["qk-lstm", "lstm", "qlstm"])
@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_padding_does_not_change_a_sequences_logits(kind, pooling, gen):
    torch.manual_seed(0)
    model = build_classifier(ModelConfig(kind=kind, hidden_dim=3), 2, 3, pooling=pooling).eval()
    sequences = [torch.randn(n, 2, generator=gen) for n in (4, 1, 6)]
    padded = torch.zeros(3, 6, 2)
    for i, s in enumerate(sequences):
        padded[i, : len(s)] = s
        padded[i, len(s):] = 7.0  # whatever is after the end must not matter
    logits = model(padded, torch.tensor([4, 1, 6]))
    for i, s in enumerate(sequences):
        torch.testing.assert_close(logits[i], model(s.unsqueeze(0))[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["qk-lstm", "lstm"])
def test_classifier_gradients_by_gradcheck(kind, gen):
    torch.manual_seed(0)
    if kind == "lstm":
        recurrent = nn.LSTM(2, 2, batch_first=True).double()
    else:
        recurrent = QKLSTM(2, 2, batch_first=True, num_qubits=2, num_references=1, dtype=torch.float64)
    model = SequenceClassifier(recurrent, 2, 2, pooling="mean").double()
    inputs = torch.randn(2, 3, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([3, 2])
    params = [p for p in model.parameters()]
    names = [n for n, _ in model.named_parameters()]

    def logits(x, *values):
        state = dict(zip(names, values))
        return torch.func.functional_call(model, state, (x, lengths))

    assert torch.autograd.gradcheck(logits, (inputs, *[p.detach().clone().requires_grad_() for p in params]))


def test_bad_inputs_one_line_each():
    model = build_classifier(ModelConfig(kind="lstm", hidden_dim=2), 3, 2)
    with pytest.raises(ValueError, match=r"SequenceClassifier: expected inputs of shape \(N, L >= 1, 3\), got \(2, 4, 2\)"):
        model(torch.zeros(2, 4, 2))
    with pytest.raises(ValueError, match=r"SequenceClassifier: expected inputs of shape \(N, L >= 1, 3\), got \(2, 0, 3\)"):
        model(torch.zeros(2, 0, 3))
    with pytest.raises(ValueError, match=r"expected lengths of shape \(2,\) in \[1, 4\], got shape \(2,\) with values \[4, 0\]"):
        model(torch.zeros(2, 4, 3), torch.tensor([4, 0]))
    with pytest.raises(TypeError, match=r"SequenceClassifier: expected lengths of dtype int64, got float32"):
        model(torch.zeros(2, 4, 3), torch.tensor([4.0, 1.0]))
    with pytest.raises(ValueError, match=r"SequenceClassifier: expected pooling in \('last', 'mean'\), got 'max'"):
        build_classifier(ModelConfig(kind="lstm"), 3, 2, pooling="max")
    with pytest.raises(ValueError, match=r"SequenceClassifier: expected num_classes >= 2, got 1"):
        build_classifier(ModelConfig(kind="lstm"), 3, 1)
