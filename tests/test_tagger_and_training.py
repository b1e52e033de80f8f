"""Taggers at the paper's config, the paper's task, training to 100 %, run folders, resume, configs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from qk_lstm_qiskit.checkpoint import load_checkpoint, load_tagger
from qk_lstm_qiskit.config import DataConfig, ModelConfig, RunConfig, load_config
from qk_lstm_qiskit.data.corpus import PAPER_SENTENCES, Vocabulary, encode_corpus
from qk_lstm_qiskit.errors import QKLSTMError
from qk_lstm_qiskit.data.tasks import prepare_data
from qk_lstm_qiskit.training.experiment import run_training
from qk_lstm_qiskit.nn.tagger import Tagger, build_tagger, count_parameters
from qk_lstm_qiskit.training.trainer import Trainer


PAPER_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "paper_pos.yaml"



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


# --------------------------------------------------------------------------- paper task and Table I
def test_paper_task_has_nine_case_sensitive_words_and_three_tags():
    data = prepare_data(DataConfig())
    assert len(data.words) == 9 and len(data.tags) == 3
    assert set(data.words.itos) == {"The", "dog", "eat", "the", "ice", "Everybody", "read", "that", "book"}
    assert "The" in data.words and "the" in data.words and data.words.encode(["The"]) != data.words.encode(["the"])
    assert sorted(data.tags.itos) == ["DET", "NN", "V"]
    assert [len(ws) for ws, _ in data.train] == [5, 4] and data.validation == []
    assert data.tags.decode(data.train[0][1]) == ["DET", "NN", "V", "DET", "NN"]
    assert data.tags.decode(data.train[1][1]) == ["NN", "V", "DET", "NN"]


def test_unknown_word_or_tag_raises():
    data = prepare_data(DataConfig())
    with pytest.raises(ValueError, match=r"Vocabulary: unknown word 'cat' \(known: "):
        data.words.encode(["The", "cat"])
    with pytest.raises(ValueError, match=r"Vocabulary: unknown word 'THE'"):
        data.words.encode(["THE"])  # case-sensitive
    with pytest.raises(ValueError, match=r"Vocabulary: unknown tag 'ADJ' \(known: DET, NN, V\)"):
        data.tags.encode(["NN", "ADJ"])
    with pytest.raises(ValueError, match=r"Vocabulary: unknown word 'cat'"):
        encode_corpus([(["The", "cat"], ["DET", "NN"])], data.words, data.tags)
    with pytest.raises(ValueError, match=r"encode_corpus: expected one tag per word in sentence 0, got 2 words and 1 tags"):
        encode_corpus([(["The", "dog"], ["DET"])], data.words, data.tags)
    # with an unk token, unknown words map to it instead
    vocab = Vocabulary(["a"], unk="<unk>", name="word")
    assert vocab.encode(["a", "zzz"]) == [1, 0]


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


@pytest.mark.parametrize(
    "weighting, references, expected",
    [
        ("paper", "learned", 183 + 4 * 4 * 4),  # + (4 gates, R = 4, 4 qubits) reference vectors
        ("per_gate", "fixed", 72 + 21 + 60 + 4 * (6 * 4 + 6)),  # each gate its own Linear(4 → 6)
        ("paper", "data", 183),
    ],
)
def test_qk_lstm_variants_count_and_train(weighting, references, expected, tmp_path):
    config = load_config(PAPER_CONFIG, {"model": {"weighting": weighting, "references": references}, "train": {"epochs": 2}})
    result = run_training(config, tmp_path, progress=False)
    assert result["trainable_parameters"] == expected
    assert len(result["epochs"]) == 2 and all(0.0 <= e["accuracy"] <= 1.0 for e in result["epochs"])
    model, _, _, _ = load_tagger(tmp_path / "model.pt")
    cell = model.recurrent.cells[0]
    assert ("references" in dict(cell.named_parameters())) == (references == "learned")
    assert torch.isfinite(cell.references).all()


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


# --------------------------------------------------------------------------- the paper's result
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


# --------------------------------------------------------------------------- checkpoints
def test_load_tagger_gives_identical_log_probs(tmp_path):
    config = with_train(load_config(PAPER_CONFIG), epochs=3)
    data = prepare_data(config.data)
    model = build_tagger(config.model, len(data.words), len(data.tags))
    metadata = {"config": config.to_dict(), "words": data.words.to_dict(), "tags": data.tags.to_dict()}
    Trainer(model, config.train, out_dir=tmp_path, metadata=metadata, progress=False).fit(data.train)
    loaded, words, tags, loaded_config = load_tagger(tmp_path / "model.pt")
    assert loaded_config == config and words.itos == data.words.itos and tags.itos == data.tags.itos
    assert not loaded.training
    model.eval()
    sentences = torch.tensor([data.train[0][0], data.train[1][0] + [0]])
    with torch.no_grad():
        assert torch.equal(loaded(sentences), model(sentences))


def test_load_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"checkpoint: expected an existing file, got '.*nothing.pt'"):
        load_checkpoint(tmp_path / "nothing.pt")
    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(ValueError, match=r"checkpoint: '.*text.pt' is not a qk_lstm_qiskit checkpoint"):
        load_checkpoint(tmp_path / "text.pt")
    torch.save({"model_state": {}}, tmp_path / "partial.pt")
    with pytest.raises(ValueError, match=r"lacks \['config', 'tags', 'words'\]"):
        load_checkpoint(tmp_path / "partial.pt")


# --------------------------------------------------------------------------- run folders and resume
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
    with pytest.raises(QKLSTMError, match=r"already holds a run \(model.pt, last.pt, metrics.json\); pass --resume"):
        run_training(with_train(config, seed=5), tmp_path, progress=False)
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.iterdir()}
    assert after == before


def test_resume_errors(tmp_path):
    config = with_train(load_config(PAPER_CONFIG), epochs=1)
    with pytest.raises(QKLSTMError, match=r"--resume expected .*last.pt from an earlier run, not found"):
        run_training(config, tmp_path / "empty", resume=True, progress=False)
    run_training(config, tmp_path / "run", progress=False)
    other = dataclasses.replace(config, model=dataclasses.replace(config.model, hidden_dim=5))
    with pytest.raises(QKLSTMError, match=r"--resume expected model.hidden_dim = 6 as saved in .*last.pt, got 5"):
        run_training(other, tmp_path / "run", resume=True, progress=False)


# --------------------------------------------------------------------------- configuration files
def test_paper_config_file_values():
    config = load_config(PAPER_CONFIG)
    m, t = config.model, config.train
    assert (m.kind, m.embedding_dim, m.hidden_dim, m.num_qubits, m.num_references, m.reps) == ("qk-lstm", 8, 6, 4, 4, 1)
    assert (m.entanglement, m.weighting, m.references) == ("linear", "paper", "fixed")
    assert (t.epochs, t.optimizer, t.lr, t.batch_size, t.seed) == (100, "adam", 0.1, 1, 0)
    assert config.data.source == "paper" and config.executor.backend == "exact"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "text, match",
    [
        ("model: [unclosed\n", r"config .*config.yaml: not valid YAML \("),
        ("- model\n- train\n", r"expected a mapping of sections, got list"),
        ("optimiser:\n  lr: 0.1\n", r"unknown section 'optimiser' \(expected one of \['data', 'executor', 'forecast', 'model', 'train'\]\)"),
        ("train: 5\n", r"expected section 'train' to be a mapping, got 5"),
        ("model:\n  hidden: 6\n", r"unknown key model.hidden \(expected one of \[.*'hidden_dim'"),
        ("train:\n  epochs: ten\n", r"expected train.epochs to be int, got 'ten'"),
        ("train:\n  epochs: true\n", r"expected train.epochs to be int, got True"),
        ("train:\n  epochs: 2.5\n", r"expected train.epochs to be int, got 2.5"),
        ("train:\n  lr: fast\n", r"expected train.lr to be float, got 'fast'"),
        ("train:\n  lr: -0.1\n", r"expected train.lr > 0, got -0.1"),
        ("train:\n  lr: .nan\n", r"expected train.lr > 0, got nan"),
        ("train:\n  epochs: 0\n", r"expected train.epochs > 0, got 0"),
        ("model:\n  kind: gru\n", r"expected model.kind in \('qk-lstm', 'lstm', 'qlstm'\), got 'gru'"),
        ("model:\n  weighting: global\n", r"expected model.weighting in \('paper', 'per_gate'\), got 'global'"),
        ("data:\n  validation_fraction: 1.0\n", r"expected data.validation_fraction in \[0, 1\), got 1.0"),
    ],
)
def test_bad_config_files_raise_value_error(tmp_path, text, match):
    with pytest.raises(ValueError, match=match) as info:
        load_config(write(tmp_path, text))
    assert "\n" not in str(info.value)


def test_config_overrides_are_validated_too():
    with pytest.raises(ValueError, match=r"config: expected train.batch_size > 0, got 0"):
        load_config(overrides={"train": {"batch_size": 0}})
    with pytest.raises(ValueError, match=r"config: unknown key train.learning_rate"):
        load_config(overrides={"train": {"learning_rate": 0.1}})


def test_config_coercion_and_precedence(tmp_path):
    path = write(tmp_path, "train:\n  lr: 1\n  epochs: 7\nmodel:\n  kind: lstm\n")
    config = load_config(path, {"train": {"epochs": 9}})
    assert config.train.lr == 1.0 and type(config.train.lr) is float  # int accepted for float
    assert config.train.epochs == 9 and config.model.kind == "lstm"  # overrides beat the file
    assert config.model.hidden_dim == ModelConfig().hidden_dim  # untouched keys keep the defaults
    assert load_config(write(tmp_path, "")) == RunConfig()  # empty file: defaults
    assert load_config(write(tmp_path, "train:\n  clip_grad_norm: null\n")).train.clip_grad_norm is None


def test_missing_config_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"config: expected an existing YAML file, got '.*missing.yaml'"):
        load_config(tmp_path / "missing.yaml")


def test_yaml_float_strings_are_read_as_floats(tmp_path):
    """PyYAML (YAML 1.1) reads ``1e-3`` as a string; the config accepts it as the float it means."""
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: 1e-3\n", encoding="utf-8")
    assert load_config(path).train.lr == pytest.approx(0.001)
