"""``qk-lstm`` command line: train and reproduce outputs, exit code 2 with one-line errors."""

from __future__ import annotations

import json

import pytest

from qk_lstm_qiskit import cli


def one_line_error(err: str, command: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith(f"qk-lstm {command}: error: ")
    return lines[0]


def test_train_prints_parameters_and_accuracy_and_writes_outputs(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", "--out", str(out), "--epochs", "3", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert (out / "model.pt").is_file()
    assert len(metrics["epochs"]) == 3 and metrics["config"]["train"]["epochs"] == 3
    assert "model: qk-lstm  trainable parameters: 183" in printed
    assert f"final training accuracy: {metrics['final_accuracy']:.4f}  loss: {metrics['final_loss']:.4f}" in printed
    assert "note: QKLSTM: the fidelity kernel" in printed and "is a product of single-qubit kernels" in printed  # the reps=1 note, once
    assert printed.count("note:") == 1
    # the same folder again, without --resume: refused, nothing lost
    assert cli.main(["train", "--out", str(out), "--epochs", "3", "--no-progress"]) == 2
    line = one_line_error(capsys.readouterr().err, "train")
    assert "holding model.pt, last.pt, metrics.json; pass --resume" in line
    assert json.loads((out / "metrics.json").read_text()) == metrics


def test_train_lstm_with_flags(tmp_path, capsys):
    out = tmp_path / "lstm"
    argv = ["train", "--model", "lstm", "--seed", "3", "--lr", "0.05", "--optimizer", "sgd", "--epochs", "2",
            "--out", str(out), "--no-progress"]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "model: lstm  trainable parameters: 477" in printed and "product of one-qubit" not in printed
    train = json.loads((out / "metrics.json").read_text())["config"]["train"]
    assert (train["seed"], train["lr"], train["optimizer"], train["epochs"]) == (3, 0.05, "sgd", 2)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--epochs", "0"], r"config: expected --epochs (train.epochs) > 0, got 0"),
        (["--lr", "-1"], r"config: expected --lr (train.lr) > 0, got -1.0"),
        (["--batch-size", "0"], r"config: expected --batch-size (train.batch_size) > 0, got 0"),
        (["--config", "missing.yaml"], r"config: expected an existing YAML file, got 'missing.yaml'"),
        (["--device", "gpu"], "config: expected --device (executor.device) to be cpu, cuda or cuda:<index>, got 'gpu'"),
        (["--device", "cuda:0", "--backend", "aer"],
         r"train: expected executor.device 'cpu' for backend 'aer' (samplers run on the host), got 'cuda:0'"),
    ],
)
def test_bad_train_flag_values_exit_2_with_one_line(tmp_path, capsys, argv, message):
    out = tmp_path / "run"
    assert cli.main(["train", "--out", str(out), "--no-progress", *argv]) == 2
    captured = capsys.readouterr()
    assert message in one_line_error(captured.err, "train")
    assert not out.exists()


def test_malformed_config_file_exits_2(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("train:\n  epochs: [1\n")
    assert cli.main(["train", "--config", str(config), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    assert "not valid YAML" in one_line_error(capsys.readouterr().err, "train")


def test_argparse_rejects_non_integer_epochs(capsys):
    assert cli.main(["train", "--epochs", "ten"]) == 2
    err = capsys.readouterr().err
    assert "argument --epochs: invalid int value: 'ten'" in one_line_error(err, "train")


def test_reproduce_writes_table_one_and_figure_three(tmp_path, capsys):
    out = tmp_path / "repro"
    assert cli.main(["reproduce", "--out", str(out), "--seeds", "1", "--epochs", "3", "--no-progress"]) == 0
    table = (out / "table1.md").read_text()
    assert "| Parameter | QK-LSTM | LSTM | QLSTM |" in table
    assert "| Total trainable parameters | 183 | 477 | 231 |" in table
    assert "| Vocabulary size | 9 | 9 | 9 |" in table and "| Number of tags | 3 | 3 | 3 |" in table
    assert "| Epochs | 3 | 3 | 3 |" in table
    png = (out / "fig3.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    summary = json.loads((out / "summary.json").read_text())
    assert {k: v["trainable_parameters"] for k, v in summary.items()} == {"qk-lstm": 183, "lstm": 477, "qlstm": 231}
    assert table in capsys.readouterr().out
    for kind in ("qk-lstm", "lstm", "qlstm"):
        assert len(json.loads((out / f"{kind}-s0" / "metrics.json").read_text())["epochs"]) == 3


def test_reproduce_bad_seeds_exit_2(tmp_path, capsys):
    assert cli.main(["reproduce", "--out", str(tmp_path / "r"), "--seeds", "0", "--no-progress"]) == 2
    assert "reproduce: expected seeds >= 1, got 0" in one_line_error(capsys.readouterr().err, "reproduce")


def test_train_resume_dir_continues_the_run(tmp_path, capsys):
    """``--resume DIR`` (issue form) equals ``--out DIR --resume``: the run goes on from its last epoch."""
    out = tmp_path / "run"
    assert cli.main(["train", "--out", str(out), "--epochs", "2", "--no-progress"]) == 0
    assert cli.main(["train", "--resume", str(out), "--epochs", "3", "--no-progress"]) == 0
    epochs = json.loads((out / "metrics.json").read_text())["epochs"]
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    assert cli.main(["train", "--resume", "--epochs", "3", "--no-progress"]) == 2
    assert "--resume DIR or --out DIR" in capsys.readouterr().err


def test_train_dry_run_counts_by_hand_and_writes_nothing(tmp_path, capsys):
    """Paper task, batch 1, 100 epochs: per epoch (5 + 4) tokens x 4 gates x 4 references = 144 forward
    circuits, 2 x 8 shifted angles each backward (2,304), 2 jobs per time step (18)."""
    out = tmp_path / "never"
    assert cli.main(["train", "--backend", "aer", "--shots", "100", "--dry-run", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "244,800 = 14,400 forward + 230,400 backward" in printed
    assert "shots: 24,480,000" in printed and "jobs: 1,800" in printed
    assert not out.exists()
    assert cli.main(["train", "--backend", "aer", "--dry-run", "--model", "lstm"]) == 2
    assert "expected model.kind 'qk-lstm'" in capsys.readouterr().err


def test_train_refuses_a_run_over_the_qpu_budget(tmp_path, capsys):
    out = tmp_path / "never"
    code = cli.main(["train", "--backend", "fake:manila", "--shots", "1024", "--max-qpu-seconds", "600",
                     "--out", str(out), "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert "over max_qpu_seconds=600" in err and "\n" not in err.strip()
    assert not out.exists()


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_device_without_cuda_exits_2(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", "--out", str(out), "--no-progress", "--device", "cuda"]) == 2
    assert "expected a CUDA device for executor.device 'cuda', but torch sees none" in one_line_error(
        capsys.readouterr().err, "train"
    )
    assert not out.exists()


@pytest.mark.parametrize("reps, entanglement, noted", [(2, "none", True), (2, "linear", False)])
def test_train_note_comes_from_the_model_not_from_config_names(tmp_path, capsys, reps, entanglement, noted):
    """reps 2 without entanglement is still a product kernel; reps 2 with CNOTs is not."""
    config = tmp_path / "c.yaml"
    config.write_text(f"model:\n  reps: {reps}\n  entanglement: {entanglement}\ntrain:\n  epochs: 1\n")
    assert cli.main(["train", "--config", str(config), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("is a product of single-qubit kernels") == (1 if noted else 0)


@pytest.mark.fake_backend
def test_evaluate_dry_run_prints_the_estimate_and_writes_nothing(tmp_path, capsys):
    """2 sentences (5 and 4 tokens) in one batch: 9 token steps × 4 gates × R = 4 references = 144 circuits in 5 jobs,
    nothing written."""
    assert cli.main(["train", "--epochs", "1", "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    capsys.readouterr()
    argv = ["evaluate", "--checkpoint", str(tmp_path / "run"), "--backend", "fake:manila", "--shots", "256", "--dry-run",
            "--out", str(tmp_path / "ev")]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "circuits (bindings): 144 = 144 forward + 0 backward" in out and "jobs: 5 in 5" in out
    assert out.strip().endswith("dry run: nothing submitted") and not (tmp_path / "ev").exists()
