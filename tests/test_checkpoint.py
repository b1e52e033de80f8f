"""The checkpoint format: model.pt round trip on any executor, foreign and partial files (qk_lstm_qiskit.checkpoint)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from qk_lstm_qiskit.checkpoint import load_checkpoint, load_tagger
from qk_lstm_qiskit.config import RunConfig, load_config
from qk_lstm_qiskit.data.tasks import prepare_data
from qk_lstm_qiskit.nn.tagger import build_tagger
from qk_lstm_qiskit.tasks.tagging import TaggingTask
from qk_lstm_qiskit.training.trainer import Trainer


PAPER_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "paper_pos.yaml"


def with_train(config: RunConfig, **changes) -> RunConfig:
    return dataclasses.replace(config, train=dataclasses.replace(config.train, **changes))


def test_load_tagger_gives_identical_log_probs(tmp_path):
    config = with_train(load_config(PAPER_CONFIG), epochs=3)
    data = prepare_data(config.data)
    model = build_tagger(config.model, len(data.words), len(data.tags))
    metadata = {"config": config.to_dict(), "words": data.words.to_dict(), "tags": data.tags.to_dict()}
    task = TaggingTask(config, words=data.words, tags=data.tags)
    Trainer(model, config.train, task, out_dir=tmp_path, metadata=metadata, progress=False).fit(data.train)
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


def test_checkpoints_of_format_2_keep_their_task(tmp_path):
    """Files written before tasks were named (format 2: no ``task`` for taggers, ``"forecast"`` for forecasters,
    configs without ``task``) load, evaluate and resume as the task they were."""
    from qk_lstm_qiskit.checkpoint import checkpoint_task, load_forecaster
    from qk_lstm_qiskit.tasks import task_of_checkpoint
    from qk_lstm_qiskit.training.experiment import run_training

    configs = {"tagging": with_train(load_config(PAPER_CONFIG), epochs=1),
               "forecasting": load_config(PAPER_CONFIG.parent / "forecast_lstm.yaml",
                                          {"train": {"epochs": 1}, "forecast": {"length": 60}})}
    for name, config in configs.items():
        run = tmp_path / name
        run_training(config, run, progress=False)
        for file in ("model.pt", "last.pt"):  # as format 2 wrote them
            state = torch.load(run / file, weights_only=True)
            del state["task"], state["config"]["task"]
            if name == "forecasting":
                state["task"] = "forecast"
            torch.save({**state, "format": 2}, run / file)
        state = load_checkpoint(run / "model.pt")
        assert state["format"] == 2 and checkpoint_task(state) == name
        task, _ = task_of_checkpoint(run)
        assert task.name == name and task.config.task == name
        (load_tagger if name == "tagging" else load_forecaster)(run)
        resumed = run_training(with_train(config, epochs=2), run, resume=True, progress=False)
        assert [e["epoch"] for e in resumed["epochs"]] == [1, 2]
