"""Sequence classification as a task: the configs' budgets, train → resume → evaluate, the CLI, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from qk_lstm_qiskit.cli import main
from qk_lstm_qiskit.config import infer_task, load_config
from qk_lstm_qiskit.data.sequences import make_sequence_batches, prepare_sequences
from qk_lstm_qiskit.data.sequences import test_sequences as read_test_split
from qk_lstm_qiskit.evaluation.classification import classification_metrics, classify
from qk_lstm_qiskit.nn.tagger import count_parameters
from qk_lstm_qiskit.tasks import make_task, task_of_checkpoint
from qk_lstm_qiskit.tasks.classification import estimate_classification, evaluate_classification
from qk_lstm_qiskit.training.experiment import run_training

from _sequences import toy_config, toy_npz

pytest.importorskip("aeon")
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("name, expected", [("qklstm", 97), ("lstm", 92), ("qlstm", 106)])
def test_basicmotions_configs_state_their_counts(name, expected):
    config = load_config(CONFIGS / f"basicmotions_{name}.yaml")
    task = make_task(config)
    task.prepare()
    assert count_parameters(task.build_model()) == expected


@pytest.mark.parametrize("kind", ["lstm", "qk-lstm"])
def test_train_resume_evaluate_end_to_end(tmp_path, kind):
    train, test = toy_npz(tmp_path / "train.npz"), toy_npz(tmp_path / "test.npz", seed=1)
    whole = run_training(toy_config(train, test, kind, epochs=3), tmp_path / "whole", progress=False)
    run_training(toy_config(train, test, kind, epochs=1), tmp_path / "split", progress=False)
    resumed = run_training(toy_config(train, test, kind, epochs=3), tmp_path / "split", resume=True, progress=False)
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in whole["epochs"]]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in resumed["epochs"]]  # bit-identical resume
    assert resumed["test_accuracy"] == whole["test_accuracy"]
    saved = json.loads((tmp_path / "split" / "metrics.json").read_text())
    assert saved["classes"] == ["down", "up"] and saved["test_sequences"] == 12
    assert (tmp_path / "split" / "confusion.png").stat().st_size > 0

    # evaluate scores model.pt on the test split with the saved scaler: an independent recomputation
    task, state = task_of_checkpoint(tmp_path / "split")
    model = task.load(tmp_path / "split" / "model.pt", state)
    splits = prepare_sequences(train, validation_fraction=0.34, seed=0)
    assert task.scaler == splits.scaler
    predictions, gold, _ = classify(model, make_sequence_batches(read_test_split(test, splits.classes, splits.scaler), 5))
    expected = classification_metrics(predictions, gold, splits.classes)
    metrics = evaluate_classification(tmp_path / "split", tmp_path / "eval")
    assert metrics["accuracy"] == expected["accuracy"] == saved["test_accuracy"]
    assert metrics["macro_f1"] == pytest.approx(expected["macro_f1"])
    assert metrics["confusion_matrix"] == expected["confusion_matrix"]
    with pytest.raises(ValueError, match=r"evaluate: expected a --out folder without metrics.json, confusion.png, got .* \(nothing was overwritten\)"):
        evaluate_classification(tmp_path / "split", tmp_path / "eval")  # nothing overwritten


def test_a_class_missing_from_training_and_other_bad_input(tmp_path):
    train = toy_npz(tmp_path / "train.npz")
    X = np.zeros((2, 3, 2))
    np.savez(tmp_path / "odd.npz", X=X, y=np.array(["down", "sideways"]))
    config = toy_config(train, str(tmp_path / "odd.npz"))
    with pytest.raises(ValueError, match=r"expected labels in the training classes \['down', 'up'\], got unknown \['sideways'\]"):
        run_training(config, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()  # refused before the first epoch
    with pytest.raises(ValueError, match=r"config: expected data.source in \('basic_motions', 'japanese_vowels', 'gunpoint'\) "
                                         r"or a .ts, .npz or .csv file for task 'classification', got 'shm'"):
        make_task(load_config(overrides={"task": "classification", "data": {"source": "shm"}}))
    with pytest.raises(ValueError, match=r"expected classify.pooling in \('last', 'mean'\), got 'max'"):
        load_config(overrides={"classify": {"pooling": "max"}})
    with pytest.raises(ValueError, match=r"expected classify.train_fraction in \(0, 1\], got 1.5"):
        load_config(overrides={"classify": {"train_fraction": 1.5}})
    assert [infer_task(s) for s in ("basic_motions", "x.ts", "x.npz", "macrodata", "shm", "paper")] == [
        "classification", "classification", "classification", "forecasting", "forecasting", "tagging"]


def test_cli_train_evaluate_estimate(tmp_path, capsys):
    train, test = toy_npz(tmp_path / "train.npz"), toy_npz(tmp_path / "test.npz", seed=1)
    common = ["--task", "classification", "--data", train, "--model", "qk-lstm", "--epochs", "1", "--no-progress"]
    config = tmp_path / "c.yaml"
    config.write_text(f"model:\n  hidden_dim: 2\n  num_qubits: 2\n  num_references: 1\nclassify:\n  test_source: {test}\n")
    assert main(["train", "--config", str(config), *common, "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "test accuracy:" in out and "confusion.png" in out
    assert main(["evaluate", "--checkpoint", str(tmp_path / "run"), "--out", str(tmp_path / "ev")]) == 0
    assert "macro-F1" in capsys.readouterr().out
    assert main(["evaluate", "--checkpoint", str(tmp_path / "run"), "--mitigation", "m3"]) == 2
    assert "expected --mitigation only with a sampler backend, got --backend exact" in capsys.readouterr().err
    assert main(["estimate", "--checkpoint", str(tmp_path / "run"), "--backend", "fake:manila", "--batch-size", "4"]) == 0
    summary = capsys.readouterr().out
    # 12 test sequences, one layer of 4 gates with 1 reference each: G·R circuits per step of each sequence (padded
    # steps are not sent), one job per step of each batch of 4 sequences sorted by length
    lengths = sorted(read_test_split(test, ("down", "up"), prepare_sequences(train).scaler).lengths.tolist())
    jobs = sum(max(lengths[i:i + 4]) for i in range(0, 12, 4))
    assert f"circuits (bindings): {sum(lengths) * 4 * 1:,}" in summary and f"jobs: {jobs} in {jobs}" in summary


@pytest.mark.fake_backend
def test_a_few_test_sequences_on_a_fake_device(tmp_path):
    train, test = toy_npz(tmp_path / "train.npz"), toy_npz(tmp_path / "test.npz", seed=1, length=3)
    run_training(toy_config(train, test, "qk-lstm", epochs=2), tmp_path / "run", progress=False)
    exact = evaluate_classification(tmp_path / "run", tmp_path / "exact", max_sequences=4)
    sampled = evaluate_classification(tmp_path / "run", tmp_path / "manila", backend="fake:manila", shots=512,
                                      max_sequences=4, seed=3)
    assert sampled["exact_accuracy"] == exact["accuracy"] and sampled["exact_predictions"] == exact["predictions"]
    gold = read_test_split(test, ("down", "up"), prepare_sequences(train, validation_fraction=0.34).scaler)
    correct = [p == g for p, g in zip(sampled["predictions"], gold.labels[:4].tolist())]
    assert sampled["accuracy"] == sum(correct) / 4 and sampled["sequences"] == 4
    assert sampled["agreement"] == sum(a == b for a, b in zip(sampled["predictions"], exact["predictions"])) / 4
    estimate = estimate_classification(tmp_path / "run", "fake:torino", max_sequences=4, batch_size=4)
    assert estimate.to_dict()["circuits"] == sum(gold.lengths[:4].tolist()) * 4 * 1  # G·R per step of each sequence


def _train_classifier(trainer_class, train_path: str):
    from qk_lstm_qiskit.training.trainer import seed_everything

    config = toy_config(train_path, train_path, "qk-lstm", epochs=1)
    task = make_task(config)
    data = task.prepare()
    seed_everything(0)
    model = task.build_model()
    trainer = trainer_class(model, config.train, task, progress=False)
    return model.state_dict(), trainer.fit(data.train)


def _classification_rank(rank: int, size: int, init_file: str, out_file: str, train_path: str) -> None:
    import torch.distributed as dist

    from qk_lstm_qiskit.training.distributed import DistributedTrainer

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=size)
    try:
        state, history = _train_classifier(DistributedTrainer, train_path)
        if rank == 0:
            torch.save({"state": state, "history": history}, out_file)
    finally:
        dist.destroy_process_group()


def test_two_gloo_ranks_classify_like_one_process(tmp_path):
    """Batches of 4 variable-length sequences split over 2 ranks: the same parameters and epoch metrics."""
    import torch.multiprocessing as mp

    from qk_lstm_qiskit.training.trainer import Trainer

    train = toy_npz(tmp_path / "train.npz", n_per_class=7)
    out = tmp_path / "ranks.pt"
    mp.spawn(_classification_rank, args=(2, str(tmp_path / "init"), str(out), train), nprocs=2, join=True)
    ranks = torch.load(out, weights_only=False)
    state, history = _train_classifier(Trainer, train)
    for name, value in state.items():
        torch.testing.assert_close(ranks["state"][name], value, atol=1e-5, rtol=1e-5, msg=name)
    for key in ("loss", "accuracy"):
        assert ranks["history"][0][key] == pytest.approx(history[0][key], rel=1e-5)
