"""Run configuration: the paper's file, bad files and overrides, coercion and precedence (qk_lstm_qiskit.config)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from qk_lstm_qiskit.cli import main
from qk_lstm_qiskit.config import ModelConfig, RunConfig, load_config
from qk_lstm_qiskit.errors import TaskInferredWarning


PAPER_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "paper_pos.yaml"


def test_paper_config_file_values():
    config = load_config(PAPER_CONFIG)
    m, t = config.model, config.train
    assert (m.kind, m.embedding_dim, m.hidden_dim, m.num_qubits, m.num_references, m.reps) == ("qk-lstm", 8, 6, 4, 4, 1)
    assert (m.entanglement, m.weighting, m.references) == ("linear", "paper", "fixed")
    assert (t.epochs, t.optimizer, t.lr, t.batch_size, t.seed) == (100, "adam", 0.1, 1, 0)
    assert config.data.source == "paper" and config.executor.backend == "exact"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "text, match",
    [
        ("model: [unclosed\n", r"config .*config.yaml: not valid YAML \("),
        ("- model\n- train\n", r"expected a mapping of sections, got list"),
        ("optimiser:\n  lr: 0.1\n", r"unknown section 'optimiser' \(expected one of \['classify', 'data', 'executor', 'forecast', 'model', 'train'\], or task\)"),
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
    assert load_config(write(tmp_path, "")) == RunConfig(task="tagging")  # empty file: defaults, the task filled in
    assert load_config(write(tmp_path, "train:\n  clip_grad_norm: null\n")).train.clip_grad_norm is None


def test_missing_config_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"config: expected an existing YAML file, got '.*missing.yaml'"):
        load_config(tmp_path / "missing.yaml")


def test_yaml_float_strings_are_read_as_floats(tmp_path):
    """PyYAML (YAML 1.1) reads ``1e-3`` as a string; the config accepts it as the float it means."""
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: 1e-3\n", encoding="utf-8")
    assert load_config(path).train.lr == pytest.approx(0.001)


def test_a_config_without_a_task_gets_the_one_its_data_implies_and_is_told_so(tmp_path, capsys):
    old = write(tmp_path / "old", "data:\n  source: shm\ntrain:\n  epochs: 1\n")
    with pytest.warns(TaskInferredWarning, match=r"config .*config.yaml: no task named; 'forecasting' inferred from "
                      r"data.source 'shm' \(add `task: forecasting` to the file\)"):
        assert load_config(old).task == "forecasting"
    with pytest.warns(TaskInferredWarning, match="'tagging' inferred from data.source 'paper'"):
        assert load_config(write(tmp_path / "paper", "train:\n  epochs: 1\n")).task == "tagging"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_config(write(tmp_path / "named", "task: forecasting\ndata:\n  source: shm\n")).task == "forecasting"
        assert load_config(overrides={"data": {"source": "co2"}}).task == "forecasting"  # no file: nothing to edit, no note
        assert load_config(overrides={"task": "tagging"}).task == "tagging"
    with pytest.raises(ValueError, match=r"config: expected task to be a task name \(str\), got 3"):
        load_config(overrides={"task": 3})
    # the command line says it once, as a note on stdout, and trains as before
    assert main(["train", "--config", str(old), "--model", "lstm", "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.count("note: config") == 1 and "test RMSE" in out
