"""Data-parallel training: 2 gloo ranks with the same global batches follow the one-process trajectory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from qk_lstm_qiskit.config import ModelConfig, RunConfig, TrainConfig
from qk_lstm_qiskit.data.corpus import Vocabulary
from qk_lstm_qiskit.nn.tagger import build_tagger
from qk_lstm_qiskit.tasks.tagging import TaggingTask
from qk_lstm_qiskit.training.distributed import DistributedTrainer, world
from qk_lstm_qiskit.training.trainer import Trainer, seed_everything

CONFIG = TrainConfig(epochs=1, lr=0.05, batch_size=4, bucket_batches=2, seed=3, clip_grad_norm=1.0)
MODEL = ModelConfig(kind="qk-lstm", embedding_dim=4, hidden_dim=3, num_qubits=3, num_references=2, reps=2)


def sentences() -> list[tuple[list[int], list[int]]]:
    """12 sentences of 2–6 tokens: 3 length-bucketed batches of 4, uneven token counts per rank."""
    gen = torch.Generator().manual_seed(5)
    data = []
    for _ in range(12):
        length = int(torch.randint(2, 7, (1,), generator=gen))
        data.append((torch.randint(1, 9, (length,), generator=gen).tolist(), torch.randint(0, 3, (length,), generator=gen).tolist()))
    return data


def train_once(trainer_class, **kwargs) -> tuple[dict, list]:
    seed_everything(0)
    model = build_tagger(MODEL, 9, 3)
    words = Vocabulary([str(i) for i in range(1, 9)], pad="<pad>", name="word")  # indices 0 (pad) … 8
    task = TaggingTask(RunConfig(model=MODEL, train=CONFIG), words=words, tags=Vocabulary("ABC", name="tag"))
    trainer = trainer_class(model, CONFIG, task, progress=False, **kwargs)
    history = trainer.fit(sentences())
    return model.state_dict(), history


def _rank(rank: int, size: int, init_file: str, out_file: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=size)
    try:
        state, history = train_once(DistributedTrainer)
        if rank == 0:
            torch.save({"state": state, "history": history}, out_file)
    finally:
        dist.destroy_process_group()


def test_two_gloo_ranks_reach_the_one_process_parameters(tmp_path):
    """3 optimizer steps; the loss is normalised by the global token count, so the averaged gradient is the same."""
    out = tmp_path / "ranks.pt"
    mp.spawn(_rank, args=(2, str(tmp_path / "init"), str(out)), nprocs=2, join=True)
    ranks = torch.load(out, weights_only=False)
    state, history = train_once(Trainer)
    assert len(history) == 1 and history[0]["epoch"] == 1
    for name, value in state.items():
        torch.testing.assert_close(ranks["state"][name], value, atol=1e-5, rtol=1e-5, msg=name)
    seed_everything(0)
    initial = build_tagger(MODEL, 9, 3).state_dict()  # the common starting point
    assert max((state[k] - initial[k]).abs().max() for k in state) > 1e-3  # the 3 steps really moved the model
    for key in ("loss", "accuracy"):  # epoch metrics summed over ranks equal the one-process metrics
        assert ranks["history"][0][key] == pytest.approx(history[0][key], rel=1e-5)


def test_world_without_torchrun_is_one_process(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert world() == (0, 1)


@pytest.mark.slow
def test_torchrun_two_ranks_train_write_once_and_resume(tmp_path):
    """``torchrun --nproc_per_node=2 --no-python qk-lstm train``: rank 0 writes the run folder; --resume continues it."""
    bin_dir = Path(sys.executable).parent
    out = tmp_path / "run"
    env = {**os.environ, "QK_LSTM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    base = [str(bin_dir / "torchrun"), "--nproc_per_node=2", "--no-python", str(bin_dir / "qk-lstm"), "train",
            "--batch-size", "2", "--out", str(out), "--no-progress"]
    first = subprocess.run([*base, "--epochs", "1"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert [e["epoch"] for e in metrics["epochs"]] == [1]
    second = subprocess.run([*base, "--epochs", "2", "--resume"], capture_output=True, text=True, env=env, cwd=tmp_path,
                            timeout=300)
    assert second.returncode == 0, second.stderr[-2000:]
    resumed = json.loads((out / "metrics.json").read_text())
    assert [e["epoch"] for e in resumed["epochs"]] == [1, 2]
    assert resumed["epochs"][:1] == metrics["epochs"]


def _torchrun_train(config: Path, out: Path) -> subprocess.CompletedProcess:
    """``torchrun --nproc_per_node=2 --no-python qk-lstm train --config CONFIG --out OUT`` (one thread per rank),
    checked to succeed."""
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "QK_LSTM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    ranks = subprocess.run([str(bin_dir / "torchrun"), "--nproc_per_node=2", "--no-python", str(bin_dir / "qk-lstm"),
                            "train", "--config", str(config), "--out", str(out), "--no-progress"],
                           capture_output=True, text=True, env=env, cwd=out.parent, timeout=300)
    assert ranks.returncode == 0, ranks.stderr[-2000:]
    return ranks


@pytest.mark.slow
def test_torchrun_two_ranks_train_a_forecaster_like_one_process(tmp_path):
    """Forecasting goes through the same run: rank 0 writes the run folder and the plot, both ranks report its numbers."""
    from qk_lstm_qiskit.config import load_config
    from qk_lstm_qiskit.training.experiment import run_training

    config = tmp_path / "fc.yaml"
    config.write_text("task: forecasting\nmodel: {kind: qk-lstm, hidden_dim: 3, num_qubits: 2, num_references: 2}\n"
                      "data: {source: shm, validation_fraction: 0.2}\nforecast: {length: 80}\n"
                      "train: {epochs: 2, batch_size: 8, lr: 0.02}\n")
    ranks = _torchrun_train(config, tmp_path / "ranks")
    assert ranks.stdout.count("test RMSE:") == 1  # rank 0 alone prints the report (issue 24)
    one = run_training(load_config(config), tmp_path / "one", progress=False)
    metrics = json.loads((tmp_path / "ranks" / "metrics.json").read_text())
    for a, b in zip(metrics["epochs"], one["epochs"]):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5) and a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-5)
    assert metrics["test_rmse"] == pytest.approx(one["test_rmse"], rel=1e-4)
    assert (tmp_path / "ranks" / "forecast.png").is_file()


@pytest.mark.slow
def test_torchrun_two_ranks_train_a_classifier_like_one_process(tmp_path):
    """Sequence classification through ``torchrun`` too: rank 0 writes the run folder and confusion.png, the epochs
    match one process, and the test accuracy is scored once."""
    pytest.importorskip("aeon")
    from _sequences import toy_npz

    from qk_lstm_qiskit.config import load_config
    from qk_lstm_qiskit.training.experiment import run_training

    train, test = toy_npz(tmp_path / "train.npz"), toy_npz(tmp_path / "test.npz", seed=1)
    config = tmp_path / "cls.yaml"
    config.write_text("task: classification\nmodel: {kind: qk-lstm, hidden_dim: 3, num_qubits: 2, num_references: 1}\n"
                      f"data: {{source: {train}, validation_fraction: 0.34}}\n"
                      f"classify: {{test_source: {test}, pooling: mean}}\ntrain: {{epochs: 2, batch_size: 4, lr: 0.05}}\n")
    ranks = _torchrun_train(config, tmp_path / "ranks")
    assert ranks.stdout.count("test accuracy:") == 1  # rank 0 alone prints the report
    one = run_training(load_config(config), tmp_path / "one", progress=False)
    metrics = json.loads((tmp_path / "ranks" / "metrics.json").read_text())
    for a, b in zip(metrics["epochs"], one["epochs"], strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5) and a["val_accuracy"] == b["val_accuracy"]
    assert metrics["test_accuracy"] == one["test_accuracy"]
    assert (tmp_path / "ranks" / "confusion.png").is_file()
