"""``qk-lstm diagnose``: diagnostics.json and concentration.png of a config's kernel on its task's inputs."""

from __future__ import annotations

import json

from qk_lstm_qiskit import cli

def test_cli_diagnose_writes_report_and_refuses_to_overwrite(tmp_path, capsys):
    config = tmp_path / "zz.yaml"
    config.write_text("model: {kind: qk-lstm, feature_map: zz, reps: 2, input_scaling: 0.1}\n")
    out = tmp_path / "diag"
    argv = ["diagnose", "--config", str(config), "--out", str(out), "--qubits", "2,3"]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "diagnostics.json").read_text())
    assert report["product_kernel"] is False and "product kernel: False" in printed
    assert report["sample"]["num_points"] == 9  # the paper task's 9 tokens
    assert (out / "concentration.png").is_file() and len(report["concentration"]) == 4
    before = (out / "diagnostics.json").read_text()
    assert cli.main(argv) == 2
    assert "expected a --out folder without diagnostics.json, concentration.png" in capsys.readouterr().err
    assert (out / "diagnostics.json").read_text() == before
    assert cli.main(["diagnose", "--out", str(tmp_path / "paper"), "--qubits", ""]) == 0
    assert "product kernel: True" in capsys.readouterr().out  # the paper's map, decided from its circuit
    lstm = tmp_path / "lstm.yaml"
    lstm.write_text("model: {kind: lstm}\n")
    assert cli.main(["diagnose", "--config", str(lstm), "--out", str(tmp_path / "x")]) == 2
    assert "expected model.kind 'qk-lstm', got 'lstm'" in capsys.readouterr().err


def test_cli_diagnose_a_checkpoint_uses_its_trained_projection(tmp_path, capsys):
    config = tmp_path / "zz.yaml"
    config.write_text("model: {kind: qk-lstm, feature_map: zz, input_scaling: 0.1}\ntrain: {epochs: 3}\n")
    assert cli.main(["train", "--config", str(config), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    assert cli.main(["diagnose", "--config", str(config), "--out", str(tmp_path / "init"), "--qubits", ""]) == 0
    assert cli.main(["diagnose", "--checkpoint", str(tmp_path / "run" / "model.pt"), "--out", str(tmp_path / "trained"),
                     "--qubits", ""]) == 0
    capsys.readouterr()
    initial, trained = (json.loads((tmp_path / d / "diagnostics.json").read_text()) for d in ("init", "trained"))
    assert trained["config"]["feature_map"] == "zz" and trained["concentration"] == []
    assert trained["sample"]["offdiagonal_mean"] != initial["sample"]["offdiagonal_mean"]  # trained projection
    assert cli.main(["diagnose", "--out", str(tmp_path / "bad"), "--qubits", "two"]) == 2
    assert "expected --qubits as integers >= 1" in capsys.readouterr().err
