"""Training runs end to end: the paper's QK-LSTM to 100 %, variants, run folders, resume (qk_lstm_qiskit.training)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from qk_lstm_qiskit.checkpoint import load_tagger
from qk_lstm_qiskit.config import RunConfig, load_config
from qk_lstm_qiskit.data.corpus import PAPER_SENTENCES, Vocabulary, encode_corpus, make_batches, paper_corpus
from qk_lstm_qiskit.training.experiment import run_training
from qk_lstm_qiskit.nn.tagger import Tagger


PAPER_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "paper_pos.yaml"


def with_train(config: RunConfig, **changes) -> RunConfig:
    return dataclasses.replace(config, train=dataclasses.replace(config.train, **changes))


def predicted_tags(model: Tagger, words: Vocabulary, tags: Vocabulary) -> list[list[str]]:
    """Argmax tags of the paper's sentences, one sentence at a time (no padding involved)."""
    out = []
    with torch.no_grad():
        for sentence, _ in PAPER_SENTENCES:
            log_probs = model(torch.tensor([words.encode(sentence)]))
            out.append(tags.decode(log_probs[0].argmax(-1).tolist()))
    return out


@pytest.mark.parametrize(
    "weighting, references, expected",
    [
        ("paper", "learned", 183 + 4 * 4 * 4),  # + (4 gates, R = 4, 4 qubits) reference vectors
        ("per_gate", "fixed", 72 + 21 + 60 + 4 * (6 * 4 + 6)),  # each gate its own Linear(4 → 6)
        ("paper", "data", 183),
    ],
)
def test_qk_lstm_variants_count_and_train(weighting, references, expected, tmp_path):
    config = load_config(PAPER_CONFIG, {"model": {"weighting": weighting, "references": references}, "train": {"epochs": 5}})
    result = run_training(config, tmp_path, progress=False)
    assert result["trainable_parameters"] == expected
    assert len(result["epochs"]) == 5 and result["epochs"][-1]["loss"] < result["epochs"][0]["loss"]  # it learns
    model, words, tags, _ = load_tagger(tmp_path / "model.pt")
    batches = make_batches(encode_corpus(paper_corpus(), words, tags), 1)
    log_probs = [model(b.words)[b.mask] for b in batches]  # (tokens, T) per sentence
    gold = torch.cat([b.tags[b.mask] for b in batches])
    expected = (torch.cat([lp.argmax(-1) for lp in log_probs]) == gold).double().mean().item()
    assert result["final_accuracy"] == pytest.approx(expected)  # the saved model is the one that was scored
    cell = model.recurrent.cells[0]
    assert ("references" in dict(cell.named_parameters())) == (references == "learned")
    assert torch.isfinite(cell.references).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_paper_qk_lstm_reaches_100_percent_with_adam(seed, tmp_path):
    config = load_config(PAPER_CONFIG, {"train": {"seed": seed}})
    assert (config.model.kind, config.train.epochs, config.train.optimizer, config.train.lr) == ("qk-lstm", 100, "adam", 0.1)
    result = run_training(config, tmp_path, progress=False)
    assert result["final_accuracy"] == 1.0
    assert result["trainable_parameters"] == 183
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert {"model", "trainable_parameters", "epochs", "final_accuracy", "config"} <= set(metrics)
    assert metrics["model"] == "qk-lstm"
    assert type(metrics["trainable_parameters"]) is int and metrics["trainable_parameters"] == 183
    assert metrics["final_accuracy"] == 1.0 and metrics["config"] == config.to_dict()
    assert [e["epoch"] for e in metrics["epochs"]] == list(range(1, 101))
    assert all({"epoch", "loss", "accuracy"} <= set(e) for e in metrics["epochs"])
    assert metrics["epochs"][-1]["loss"] < metrics["epochs"][0]["loss"]
    # independent check of the metric: the saved model tags both sentences exactly as the paper
    model, words, tags, _ = load_tagger(tmp_path / "model.pt")
    assert predicted_tags(model, words, tags) == [list(t) for _, t in PAPER_SENTENCES]


def strip_seconds(epochs: list[dict]) -> list[dict]:
    return [{k: v for k, v in e.items() if k != "seconds"} for e in epochs]


@pytest.mark.parametrize("backend", ["exact", pytest.param("aer", marks=pytest.mark.shots)])
def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path, backend):
    """On Aer too: every job is seeded by its content, so the shot noise does not depend on where a run resumed."""
    config = load_config(PAPER_CONFIG)
    if backend == "aer":
        config = dataclasses.replace(config, executor=dataclasses.replace(config.executor, backend="aer", shots=64, seed=3))
    four = with_train(config, epochs=4)
    straight = run_training(four, tmp_path / "straight", progress=False)
    first = run_training(with_train(four, epochs=2), tmp_path / "resumed", progress=False)
    assert len(first["epochs"]) == 2
    resumed = run_training(four, tmp_path / "resumed", resume=True, progress=False)
    assert strip_seconds(resumed["epochs"]) == strip_seconds(straight["epochs"])
    assert [e["epoch"] for e in resumed["epochs"]] == [1, 2, 3, 4]
    a = torch.load(tmp_path / "straight" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "resumed" / "last.pt", weights_only=False)
    assert a["model_state"].keys() == b["model_state"].keys()
    for name, tensor in a["model_state"].items():
        assert torch.equal(tensor, b["model_state"][name]), name
    assert resumed["final_accuracy"] == straight["final_accuracy"]
    metrics = json.loads((tmp_path / "resumed" / "metrics.json").read_text())
    assert strip_seconds(metrics["epochs"]) == strip_seconds(straight["epochs"])


def test_refuses_to_overwrite_a_run_and_leaves_it_untouched(tmp_path):
    config = with_train(load_config(PAPER_CONFIG), epochs=1)
    run_training(config, tmp_path, progress=False)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.iterdir()}
    assert {"metrics.json", "metrics.csv", "model.pt", "last.pt"} <= set(before)
    with pytest.raises(ValueError, match=r"holding model.pt, last.pt, metrics.json; pass --resume to continue it"):
        run_training(with_train(config, seed=5), tmp_path, progress=False)
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.iterdir()}
    assert after == before


def test_resume_errors(tmp_path):
    config = with_train(load_config(PAPER_CONFIG), epochs=1)
    with pytest.raises(ValueError, match=r"--resume expected .*last.pt from an earlier run, not found"):
        run_training(config, tmp_path / "empty", resume=True, progress=False)
    run_training(config, tmp_path / "run", progress=False)
    other = dataclasses.replace(config, model=dataclasses.replace(config.model, hidden_dim=5))
    with pytest.raises(ValueError, match=r"--resume expected model.hidden_dim = 6 as saved in .*last.pt, got 5"):
        run_training(other, tmp_path / "run", resume=True, progress=False)
