"""The task seam: a task defined here alone (one class, one registration) trains, resumes bit-identically,
trains on 2 gloo ranks and evaluates through the one run path (run_training, the trainer, checkpoints, the CLI)."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
from pathlib import Path
from typing import Any, Mapping, Sequence

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from qk_lstm_qiskit.cli import main
from qk_lstm_qiskit.config import RunConfig, load_config
from qk_lstm_qiskit.evaluation.options import EvaluationRequest
from qk_lstm_qiskit.hardware.backends import resolve_backend
from qk_lstm_qiskit.nn.tagger import build_recurrent
from qk_lstm_qiskit.tasks import TASKS, Task, TaskData, make_task, task_of_checkpoint
from qk_lstm_qiskit.training.experiment import run_training

Examples = tuple[torch.Tensor, torch.Tensor]  # sequences (N, L, 1), labels (N,)


class LastStepClassifier(nn.Module):
    """Class logits ``(N, C)`` from the recurrent layer's last hidden state of ``(N, L, 1)`` sequences."""

    def __init__(self, recurrent: nn.Module, classes: int) -> None:
        super().__init__()
        self.recurrent, self.head = recurrent, nn.Linear(recurrent.hidden_size, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.recurrent(x)
        return self.head(hidden[:, -1])


class SignTask(Task):
    """Toy sequence classification: is the sum of 5 Gaussian values positive? Cross-entropy, accuracy."""

    name, metric, higher_is_better = "sign", "accuracy", True
    checkpoint_keys = ("classes",)

    def prepare(self) -> TaskData:
        gen = torch.Generator().manual_seed(self.config.data.split_seed)
        x = torch.randn(40, 5, 1, generator=gen)
        y = (x.sum((1, 2)) > 0).long()
        self.classes = 2
        return TaskData((x[:30], y[:30]), (x[30:], y[30:]))

    def metadata(self) -> dict[str, Any]:
        return {"classes": self.classes}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.classes = state["classes"]

    def build_model(self, *, sampler=None, pass_manager=None, memory_limit=None) -> nn.Module:
        recurrent = build_recurrent(self.config.model, 1, sampler=sampler, pass_manager=pass_manager,
                                    memory_limit=memory_limit)
        return LastStepClassifier(recurrent, self.classes)

    def batches(self, examples: Examples, generator: torch.Generator | None = None) -> list[Examples]:
        x, y = examples
        order = torch.randperm(len(y), generator=generator) if generator is not None else torch.arange(len(y))
        return [(x[i], y[i]) for i in order.split(self.config.train.batch_size)]

    def step(self, model: nn.Module, batch: Examples, device: torch.device):
        x, y = (t.to(device) for t in batch)
        logits = model(x)
        return nn.functional.cross_entropy(logits, y), len(y), float((logits.argmax(-1) == y).sum())

    def count(self, batch: Examples) -> int:
        return len(batch[1])

    def shard(self, batch: Examples, rank: int, world_size: int) -> Examples | None:
        x, y = batch
        return (x[rank::world_size], y[rank::world_size]) if len(y[rank::world_size]) else None

    def summarise(self, loss_sum: float, metric_sum: float, count: int) -> dict[str, float]:
        return {"loss": loss_sum / count, "accuracy": metric_sum / count}

    @torch.no_grad()
    def evaluate(self, model: nn.Module, batches: Sequence[Examples]) -> dict[str, float]:
        was_training = model.training
        model.eval()
        sums = [self.step(model, b, torch.device("cpu")) for b in batches]
        model.train(was_training)
        return self.summarise(sum(float(loss) * n for loss, n, _ in sums), sum(m for _, _, m in sums), sum(n for _, n, _ in sums))

    def report(self, model: nn.Module, data: TaskData, history, out_dir: Path | None) -> dict[str, Any]:
        return {"final_val_accuracy": self.evaluate(model, self.batches(data.validation))["accuracy"]}

    def summary(self, result: Mapping[str, Any]) -> list[str]:
        return [f"sign: validation accuracy {result['final_val_accuracy']:.4f}"]

    def evaluate_checkpoint(self, checkpoint: Path, request: EvaluationRequest) -> dict[str, Any]:
        """Validation loss and accuracy of the saved model, exact or with its kernels on a sampler backend."""
        path = checkpoint / "model.pt" if checkpoint.is_dir() else checkpoint
        validation = self.batches(self.prepare().validation)
        metrics = {"backend": request.backend, **self.evaluate(self.load(path), validation)}
        if request.backend != "exact":
            with resolve_backend(request.backend, shots=request.sampling.shots, seed=request.sampling.seed) as rb:
                sampled = self.load(path, sampler=rb.sampler, pass_manager=rb.pass_manager)
                metrics = {**self.evaluate(sampled, validation), "exact": metrics, "backend": request.backend}
        out = request.out_dir or path.parent / f"eval-{request.backend}"
        out.mkdir(parents=True)
        (out / "metrics.json").write_text(json.dumps(metrics))
        return {**metrics, "out_dir": str(out)}

    def evaluation_summary(self, metrics: Mapping[str, Any], request: EvaluationRequest) -> list[str]:
        return [f"sign on {metrics['backend']}: accuracy {metrics['accuracy']:.4f}"]


def sign_config(epochs: int = 4, kind: str = "lstm") -> RunConfig:
    return load_config(overrides={
        "task": "sign", "model": {"kind": kind, "hidden_dim": 3, "num_qubits": 2, "num_references": 2},
        "train": {"epochs": epochs, "batch_size": 6, "lr": 0.05, "seed": 1, "clip_grad_norm": 1.0},
    })


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setitem(TASKS, "sign", SignTask)


def strip_seconds(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


@pytest.mark.parametrize("kind", ["lstm", "qk-lstm"])
def test_a_task_defined_here_trains_and_its_checkpoint_evaluates(registered, tmp_path, kind):
    result = run_training(sign_config(6, kind), tmp_path / "run", progress=False)
    history = result["epochs"]
    assert result["task"] == "sign" and [e["epoch"] for e in history] == list(range(1, 7))
    assert history[-1]["loss"] < history[0]["loss"]  # it learns
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history[0])
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["task"] == "sign" and metrics["classes"] == 2 and metrics["config"]["task"] == "sign"
    assert metrics["final_val_accuracy"] == result["final_val_accuracy"]
    # the shipped model.pt (best validation accuracy) comes back through the task, and scores as recorded
    task, state = task_of_checkpoint(tmp_path / "run")
    assert isinstance(task, SignTask) and task.classes == 2
    model = task.load(tmp_path / "run" / "model.pt", state)
    best = max(history, key=lambda e: e["val_accuracy"])  # the first epoch reaching the best score
    assert state["epoch"] == best["epoch"]
    data = task.prepare()
    assert task.evaluate(model, task.batches(data.validation)) == pytest.approx(
        {"loss": best["val_loss"], "accuracy": best["val_accuracy"]}, rel=1e-6)


def test_a_task_defined_here_resumes_bit_identically(registered, tmp_path):
    straight = run_training(sign_config(4), tmp_path / "straight", progress=False)
    run_training(sign_config(2), tmp_path / "resumed", progress=False)  # "interrupted" after 2 epochs
    resumed = run_training(sign_config(4), tmp_path / "resumed", resume=True, progress=False)
    assert strip_seconds(resumed["epochs"]) == strip_seconds(straight["epochs"])
    a = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)
    assert all(torch.equal(a["model_state"][k], b["model_state"][k]) for k in a["model_state"])
    assert resumed["final_val_accuracy"] == straight["final_val_accuracy"]
    other = dataclasses.replace(sign_config(5), task="tagging")
    with pytest.raises(ValueError, match=r"--resume expected task = 'sign' as saved in .*last.pt, got 'tagging'"):
        run_training(other, tmp_path / "resumed", resume=True, progress=False)


def test_the_cli_trains_and_evaluates_a_task_defined_here(registered, tmp_path, capsys):
    code = main(["train", "--task", "sign", "--model", "lstm", "--epochs", "2", "--out", str(tmp_path / "run"),
                 "--no-progress"])
    assert code == 0, capsys.readouterr().err
    assert "sign: validation accuracy" in capsys.readouterr().out
    assert main(["evaluate", "--checkpoint", str(tmp_path / "run"), "--out", str(tmp_path / "ev")]) == 0
    evaluated = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    best = max(json.loads((tmp_path / "run" / "metrics.json").read_text())["epochs"], key=lambda e: e["val_accuracy"])
    assert evaluated["accuracy"] == pytest.approx(best["val_accuracy"])  # model.pt scored again, as in training
    assert f"sign on exact: accuracy {evaluated['accuracy']:.4f}" in capsys.readouterr().out
    assert main(["train", "--task", "nope", "--out", str(tmp_path / "x")]) == 2
    assert "error: config: expected task in ('tagging', 'forecasting', 'classification', 'sign'), got 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_make_task_checks_the_data_against_the_task():
    with pytest.raises(ValueError, match=r"expected data.source 'paper' or a CoNLL-U file for task 'tagging', got 'shm'"):
        make_task(load_config(overrides={"task": "tagging", "data": {"source": "shm"}}))
    with pytest.raises(ValueError, match=r"expected data.source shm, bessel, co2, macrodata or a .csv file for task 'forecasting'"):
        make_task(load_config(overrides={"task": "forecasting"}))
    assert make_task(RunConfig()).name == "tagging"  # a config without a task: the one its data implies


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, size: int, port: int, out_dir: str) -> None:
    """One torchrun-style rank: the environment torchrun sets, then the one run path."""
    torch.set_num_threads(1)
    TASKS["sign"] = SignTask  # this process's registry (spawned: the test's registration is not inherited)
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(size), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    try:
        run_training(sign_config(3), Path(out_dir), progress=False)
    finally:
        dist.destroy_process_group()


def test_a_task_defined_here_trains_on_two_gloo_ranks_like_one_process(registered, tmp_path):
    """Rows rank::2 of every batch per rank, loss normalised by the whole batch's count: the one-process trajectory."""
    mp.spawn(_rank, args=(2, _free_port(), str(tmp_path / "ranks")), nprocs=2, join=True)
    one = run_training(sign_config(3), tmp_path / "one", progress=False)
    ranks = json.loads((tmp_path / "ranks" / "metrics.json").read_text())  # written once, by rank 0
    for a, b in zip(ranks["epochs"], one["epochs"]):
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-7), key
    a = torch.load(tmp_path / "ranks" / "last.pt", weights_only=True)["model_state"]
    b = torch.load(tmp_path / "one" / "last.pt", weights_only=True)["model_state"]
    for name in b:
        torch.testing.assert_close(a[name], b[name], atol=1e-5, rtol=1e-5, msg=name)


@pytest.mark.shots
def test_a_task_defined_here_evaluates_its_qk_lstm_on_aer(registered, tmp_path, capsys):
    """Its kernels on Aer at 8192 shots: each kernel value within ~0.02 of the exact one moves the loss a little."""
    run_training(sign_config(3, "qk-lstm"), tmp_path / "run", progress=False)
    assert main(["evaluate", "--checkpoint", str(tmp_path / "run"), "--backend", "aer", "--shots", "8192",
                 "--out", str(tmp_path / "aer")]) == 0
    m = json.loads((tmp_path / "aer" / "metrics.json").read_text())
    assert m["backend"] == "aer" and 0 < abs(m["loss"] - m["exact"]["loss"]) < 0.05
    assert "sign on aer: accuracy" in capsys.readouterr().out
