"""The trainer's task interface: tagging through it equals the tagging loop; old last.pt files resume."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from qk_lstm_qiskit.checkpoint import LAST_FILE, save_checkpoint
from qk_lstm_qiskit.config import load_config
from qk_lstm_qiskit.data.corpus import make_batches
from qk_lstm_qiskit.data.tasks import prepare_data
from qk_lstm_qiskit.evaluation.loop import tag_batches
from qk_lstm_qiskit.nn.tagger import build_tagger
from qk_lstm_qiskit.training.experiment import run_training
from qk_lstm_qiskit.tasks.tagging import TaggingTask, evaluate

PAPER_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "paper_pos.yaml"


def test_tagging_task_step_is_the_token_weighted_nll_and_accuracy():
    config = load_config(PAPER_CONFIG, {"model": {"kind": "lstm"}, "train": {"batch_size": 2}})
    data = prepare_data(config.data)
    model = build_tagger(config.model, len(data.words), len(data.tags))
    task = TaggingTask(config, words=data.words, tags=data.tags)
    batch = task.batches(data.train)[0]  # both sentences: 5 + 4 real tokens, one padded
    loss, count, correct = task.step(model, batch, torch.device("cpu"))
    tagged = tag_batches(model, [batch])
    assert count == 9 and abs(loss.item() - tagged.loss) < 1e-6
    assert correct == int((tagged.predictions == tagged.targets).sum())
    assert task.evaluate(model, make_batches(data.train, 1)) == evaluate(model, make_batches(data.train, 1))


def test_a_last_pt_with_best_accuracy_from_before_the_task_interface_resumes(tmp_path):
    config = load_config(PAPER_CONFIG, {"train": {"epochs": 2}})
    run_training(config, tmp_path / "run", progress=False)
    state = torch.load(tmp_path / "run" / LAST_FILE, weights_only=True)
    state["best_accuracy"] = state.pop("best_score")  # the key tagging runs wrote until now
    save_checkpoint(state, tmp_path / "run" / LAST_FILE)
    resumed = run_training(dataclasses.replace(config, train=dataclasses.replace(config.train, epochs=3)),
                           tmp_path / "run", resume=True, progress=False)
    assert [e["epoch"] for e in resumed["epochs"]] == [1, 2, 3]
    assert torch.load(tmp_path / "run" / LAST_FILE, weights_only=True)["best_score"] >= state["best_accuracy"]
