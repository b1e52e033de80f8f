"""Multivariate forecasting: several columns in, one or several targets out, through the forecasting task."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qk_lstm_qiskit.checkpoint import load_forecaster
from qk_lstm_qiskit.cli import main
from qk_lstm_qiskit.config import load_config
from qk_lstm_qiskit.data.series import load_table, make_table_windows
from qk_lstm_qiskit.evaluation.forecast import evaluate_forecast, predict, regression_metrics
from qk_lstm_qiskit.nn.tagger import count_parameters
from qk_lstm_qiskit.tasks import make_task
from qk_lstm_qiskit.training.experiment import run_training

pytest.importorskip("statsmodels")
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("name, expected", [("qklstm", 121), ("lstm", 116), ("qlstm", 114)])
def test_macro_configs_state_their_counts(name, expected):
    task = make_task(load_config(CONFIGS / f"macro_{name}.yaml"))
    task.prepare()
    assert count_parameters(task.build_model()) == expected


def test_train_resume_evaluate_per_target_against_persistence(tmp_path):
    def config(epochs):
        return load_config(CONFIGS / "macro_lstm.yaml", {"train": {"epochs": epochs}})

    whole = run_training(config(3), tmp_path / "whole", progress=False)
    run_training(config(1), tmp_path / "split", progress=False)
    resumed = run_training(config(3), tmp_path / "split", resume=True, progress=False)
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in whole["epochs"]]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in resumed["epochs"]]
    assert resumed["targets"] == ["realgdp", "unemp"] and resumed["test_rmse"] == whole["test_rmse"]

    # an independent recomputation of the per-target RMSE in the columns' units
    model, scaler, saved = load_forecaster(tmp_path / "split")
    columns = ["realgdp", "realcons", "realinv", "unemp"]
    table = load_table("macrodata", columns)
    windows = make_table_windows(table, columns, columns, ["realgdp", "unemp"], 8, 1, validation_fraction=0.15,
                                 test_fraction=0.15, relative=True)
    assert scaler == windows.scaler
    z = predict(model, windows.test[0]).double().numpy()  # (n, 2) standardised changes
    levels = table[windows.test_index - 1][:, [0, 3]]
    forecast = z * np.asarray(scaler.std)[[0, 3]] + levels
    truth = table[windows.test_index][:, [0, 3]]
    for j, name in enumerate(["realgdp", "unemp"]):
        assert resumed["test_rmse"][name] == pytest.approx(regression_metrics(forecast[:, j], truth[:, j])["rmse"])
        assert resumed["persistence_rmse"][name] == pytest.approx(regression_metrics(levels[:, j], truth[:, j])["rmse"])
    metrics = evaluate_forecast(tmp_path / "split", tmp_path / "eval")
    assert metrics["test_rmse"] == resumed["test_rmse"] and (tmp_path / "eval" / "forecast.png").is_file()
    assert json.loads((tmp_path / "split" / "metrics.json").read_text())["test_rmse"] == resumed["test_rmse"]


def test_cli_columns_and_target_flags(tmp_path, capsys):
    rng = np.random.default_rng(0)
    values = np.cumsum(rng.normal(size=(60, 3)), axis=0)
    csv = tmp_path / "t.csv"
    csv.write_text("a,b,c\n" + "".join(f"{x:.4f},{y:.4f},{z:.4f}\n" for x, y, z in values))
    args = ["train", "--task", "forecasting", "--data", str(csv), "--model", "lstm", "--epochs", "1", "--no-progress"]
    assert main([*args, "--columns", "a,b,c", "--target", "b", "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "b: test RMSE" in out and "persistence RMSE" in out
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["targets"] == ["b"]
    assert main([*args, "--columns", "a,x", "--out", str(tmp_path / "bad")]) == 2
    assert "expected a column 'x', got columns ['a', 'b', 'c']" in capsys.readouterr().err
    assert main([*args, "--columns", "a,b", "--column", "a", "--out", str(tmp_path / "bad")]) == 2
    assert "expected forecast.columns and forecast.target, not forecast.column (--column), got column 'a'" in capsys.readouterr().err
    assert main(["train", "--task", "forecasting", "--data", "macrodata", "--out", str(tmp_path / "bad")]) == 2
    assert "expected forecast.columns (--columns A,B,...) naming the input columns, got None" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_training_cost_estimate_counts_windows(capsys):
    pytest.importorskip("qiskit_ibm_runtime")
    assert main(["train", "--config", str(CONFIGS / "macro_qklstm.yaml"), "--backend", "fake:manila", "--epochs", "1",
                 "--dry-run"]) == 0
    out = capsys.readouterr().out
    task = make_task(load_config(CONFIGS / "macro_qklstm.yaml"))
    windows = len(task.prepare().train[1])  # 8 steps each, batches of 16: C_fwd = Σ_b L_b · N_b · G · R
    assert "L_b in [8, 8]" in out and f"{8 * windows * 4 * 4:,} forward" in out
