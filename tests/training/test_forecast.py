"""Forecasting: the regression head, the trainer's forecast task, metrics, resume, CLI and evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from qk_lstm_qiskit.checkpoint import is_forecast_checkpoint, load_forecaster, load_tagger
from qk_lstm_qiskit.cli import main
from qk_lstm_qiskit.config import load_config
from qk_lstm_qiskit.data.series import damped_shm
from qk_lstm_qiskit.evaluation.forecast import evaluate_forecast, regression_metrics
from qk_lstm_qiskit.nn.forecaster import build_forecaster
from qk_lstm_qiskit.nn.tagger import count_parameters
from qk_lstm_qiskit.training.experiment import run_training
from qk_lstm_qiskit.tasks.forecasting import ForecastingTask

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def config_for(kind: str, **train):
    name = {"qk-lstm": "forecast_qklstm.yaml", "lstm": "forecast_lstm.yaml", "qlstm": "forecast_qlstm.yaml"}[kind]
    return load_config(CONFIGS / name, {"train": {"epochs": 3, **train}, "forecast": {"length": 80}})


def strip_seconds(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


@pytest.mark.parametrize("kind, expected", [("qk-lstm", 119), ("lstm", 117), ("qlstm", 117)])
def test_config_budgets_are_matched_as_their_comments_say(kind, expected):
    config = load_config(CONFIGS / f"forecast_{kind.replace('-', '')}.yaml")
    assert count_parameters(build_forecaster(config.model)) == expected
    assert f"{expected} trainable parameters" in (CONFIGS / f"forecast_{kind.replace('-', '')}.yaml").read_text()


def test_forecaster_is_a_linear_head_on_the_last_hidden_state():
    config = load_config(overrides={"model": {"kind": "lstm", "hidden_dim": 3}})
    model = build_forecaster(config.model)
    x = torch.randn(5, 7, 1)
    hidden, _ = model.recurrent(x)
    torch.testing.assert_close(model(x), hidden[:, -1] @ model.head.weight[0] + model.head.bias[0])
    with pytest.raises(ValueError, match=r"Forecaster: expected inputs of shape \(N, W, 1\), got \(5, 7\)"):
        model(x[..., 0])


def test_forecast_task_batches_cover_every_window_once_and_shuffle_with_the_generator():
    task = ForecastingTask(load_config(CONFIGS / "forecast_lstm.yaml", {"train": {"batch_size": 4}}))
    inputs, targets = torch.arange(10.0).view(10, 1, 1), torch.arange(10.0)
    ordered = task.batches((inputs, targets))
    assert [b[1].tolist() for b in ordered] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    first = task.batches((inputs, targets), torch.Generator().manual_seed(0))
    again = task.batches((inputs, targets), torch.Generator().manual_seed(0))
    assert sorted(torch.cat([b[1] for b in first]).tolist()) == list(range(10))
    assert [b[1].tolist() for b in first] == [b[1].tolist() for b in again] != [b[1].tolist() for b in ordered]
    assert all(torch.equal(b[0][:, 0, 0], b[1]) for b in first)  # inputs stay with their targets


def test_regression_metrics():
    assert regression_metrics(np.array([1.0, 3.0]), np.array([0.0, 0.0])) == {"rmse": pytest.approx(np.sqrt(5)), "mae": 2.0}
    with pytest.raises(ValueError, match=r"regression_metrics: expected two equal non-empty shapes, got \(2,\) and \(3,\)"):
        regression_metrics(np.zeros(2), np.zeros(3))


def test_forecast_run_writes_the_metrics_checkpoint_and_plot(tmp_path):
    out = tmp_path / "run"
    result = run_training(config_for("lstm", epochs=4), out, progress=False)
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("test_rmse", "test_mae", "persistence_rmse", "trainable_parameters", "epochs", "config"):
        assert key in metrics, key
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2, 3, 4] and "val_loss" in metrics["epochs"][0]
    assert (out / "forecast.png").stat().st_size > 1000 and (out / "metrics.csv").is_file()
    # independent recomputation: numpy windows of the same series, the checkpoint's model
    model, scaler, config = load_forecaster(out / "model.pt")
    series = damped_shm(80)
    train_end, test_start = 48, 64  # 80 - 16 test - 16 validation
    assert scaler.mean == pytest.approx(series[:train_end].mean()) and scaler.std == pytest.approx(series[:train_end].std())
    targets = np.arange(test_start, 80)
    windows = np.stack([series[j - 4 : j] for j in targets])
    with torch.no_grad():
        z = model(torch.tensor((windows - scaler.mean) / scaler.std, dtype=torch.float32).unsqueeze(-1)).double().numpy()
    prediction = z * scaler.std + scaler.mean
    assert result["test_rmse"] == pytest.approx(np.sqrt(np.mean((prediction - series[targets]) ** 2)), rel=1e-5)
    assert result["test_mae"] == pytest.approx(np.mean(np.abs(prediction - series[targets])), rel=1e-5)
    assert result["persistence_rmse"] == pytest.approx(np.sqrt(np.mean((series[targets - 1] - series[targets]) ** 2)))
    best = min(range(4), key=lambda i: metrics["epochs"][i]["val_loss"])
    assert metrics["test_epoch"] == best + 1  # model.pt = the lowest validation loss, and it is what is scored
    assert is_forecast_checkpoint(out / "model.pt")
    with pytest.raises(ValueError, match=r"load_tagger: expected a tagger checkpoint, got the forecaster"):
        load_tagger(out / "model.pt")


def test_qk_lstm_forecaster_learns_the_pendulum_better_than_persistence():
    config = load_config(CONFIGS / "forecast_qklstm.yaml", {"train": {"epochs": 15}})  # 240 steps, 0.5 s
    result = run_training(config, None, progress=False)
    assert result["epochs"][-1]["loss"] < 0.2 * result["epochs"][0]["loss"]
    assert result["test_rmse"] < result["persistence_rmse"]


@pytest.mark.parametrize("kind", ["qk-lstm", "qlstm"])
def test_resumed_forecast_run_ends_identical_to_an_uninterrupted_one(tmp_path, kind):
    four = config_for(kind, epochs=4)
    straight = run_training(four, tmp_path / "straight", progress=False)
    run_training(config_for(kind, epochs=2), tmp_path / "resumed", progress=False)  # "interrupted" after 2 epochs
    resumed = run_training(four, tmp_path / "resumed", resume=True, progress=False)
    assert strip_seconds(resumed["epochs"]) == strip_seconds(straight["epochs"])
    a = torch.load(tmp_path / "straight" / "last.pt", weights_only=False)["model_state"]
    b = torch.load(tmp_path / "resumed" / "last.pt", weights_only=False)["model_state"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    for key in ("test_rmse", "test_mae", "test_epoch"):
        assert resumed[key] == straight[key], key


def test_resume_refuses_another_series(tmp_path):
    run_training(config_for("lstm", epochs=1), tmp_path / "run", progress=False)
    other = load_config(CONFIGS / "forecast_lstm.yaml", {"train": {"epochs": 2}, "forecast": {"length": 80, "window": 5}})
    with pytest.raises(Exception, match=r"--resume expected forecast.window = 4 as saved in .*last.pt, got 5"):
        run_training(other, tmp_path / "run", resume=True, progress=False)


# --------------------------------------------------------------------------- command line
def write_csv(tmp_path, values) -> Path:
    path = tmp_path / "series.csv"
    path.write_text("month,value\n" + "".join(f"2000-{1 + i // 28:02d}-{1 + i % 28:02d},{v!r}\n" for i, v in enumerate(values)))
    return path


def test_cli_trains_on_a_csv_column_and_evaluates_the_checkpoint(tmp_path, capsys):
    path = write_csv(tmp_path, [float(v) for v in np.sin(np.arange(60) * 0.5)])
    out = tmp_path / "run"
    code = main(["train", "--config", str(CONFIGS / "forecast_lstm.yaml"), "--data", str(path), "--column", "value",
                 "--epochs", "2", "--out", str(out), "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 0 and "test RMSE" in printed and "column 'value'" in printed
    trained = json.loads((out / "metrics.json").read_text())
    assert main(["evaluate", "--checkpoint", str(out / "model.pt"), "--out", str(tmp_path / "ev")]) == 0
    evaluated = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert evaluated["test_rmse"] == pytest.approx(trained["test_rmse"], rel=1e-6)
    assert evaluated["persistence_rmse"] == trained["persistence_rmse"]
    assert (tmp_path / "ev" / "forecast.png").is_file()
    assert main(["evaluate", "--checkpoint", str(out), "--out", str(tmp_path / "ev")]) == 2  # never overwrites
    assert "already" not in capsys.readouterr().out
    assert main(["evaluate", "--checkpoint", str(out), "--data", "paper", "--out", str(tmp_path / "x")]) == 2
    assert "expected no --data with a forecast checkpoint" in capsys.readouterr().err
    assert main(["evaluate", "--checkpoint", str(out), "--backend", "aer", "--out", str(tmp_path / "x")]) == 2
    assert "expected a qk-lstm checkpoint on sampler backend 'aer', got 'lstm'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_cli_bad_csv_is_one_line_and_writes_nothing(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("value\n1\n2\noops\n")
    code = main(["train", "--config", str(CONFIGS / "forecast_lstm.yaml"), "--data", str(path), "--column", "value",
                 "--out", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().count("\n") == 0 and "bad.csv: expected a number in column 'value' at row 3, got 'oops'" in err
    assert not (tmp_path / "run" / "metrics.json").exists()


@pytest.mark.shots
def test_evaluate_on_aer_follows_the_exact_forecast(tmp_path):
    run_training(config_for("qk-lstm", epochs=3), tmp_path / "run", progress=False)
    m = evaluate_forecast(tmp_path / "run", tmp_path / "aer", backend="aer", shots=8192, seed=1)
    assert m["backend"] == "aer" and m["shots"] == 8192
    assert m["exact_test_rmse"] == pytest.approx(evaluate_forecast(tmp_path / "run", tmp_path / "ex")["test_rmse"])
    # A kernel estimated from 8192 shots has a standard error <= 0.5 / sqrt(8192) = 0.0055; the
    # forecasts (std-scaled by ~1.4 here) move by much less than 0.1 but not by zero.
    assert 0 < m["backend_rmse_vs_exact"] < 0.1
    assert (tmp_path / "aer" / "forecast.png").is_file()


def test_evaluate_refuses_a_classical_model_on_a_sampler(tmp_path):
    run_training(config_for("lstm", epochs=1), tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match=r"evaluate: expected a qk-lstm checkpoint on sampler backend 'aer', got 'lstm'"):
        evaluate_forecast(tmp_path / "run" / "model.pt", tmp_path / "ev", backend="aer")


@pytest.mark.fake_backend
def test_evaluate_on_a_fake_device_in_local_testing_mode(tmp_path, capsys):
    config = load_config(CONFIGS / "forecast_qklstm.yaml",
                         {"train": {"epochs": 2}, "forecast": {"length": 30, "window": 2}})
    run_training(config, tmp_path / "run", progress=False)
    code = main(["evaluate", "--checkpoint", str(tmp_path / "run"), "--backend", "fake:manila", "--shots", "2048",
                 "--out", str(tmp_path / "manila")])
    assert code == 0 and "on fake:manila (2048 shots): test RMSE" in capsys.readouterr().out
    m = json.loads((tmp_path / "manila" / "metrics.json").read_text())
    assert m["device"] and m["shots"] == 2048 and m["test_windows"] == 6
    assert m["exact_test_rmse"] == pytest.approx(json.loads((tmp_path / "run" / "metrics.json").read_text())["test_rmse"])
    _, scaler, _ = load_forecaster(tmp_path / "run" / "model.pt")
    # a noisy device: no binomial bound applies; it moves the forecasts, by less than the series' spread
    assert 0 < m["backend_rmse_vs_exact"] < scaler.std


def test_cli_estimates_the_cost_of_a_forecast_run(capsys):
    assert main(["train", "--config", str(CONFIGS / "forecast_qklstm.yaml"), "--backend", "fake:manila", "--dry-run"]) == 0
    assert "L_b in [4, 4]" in capsys.readouterr().out  # windows of forecast.window = 4 steps


@pytest.mark.parametrize(
    "forecast, match",
    [
        ({"window": 0}, r"config: expected forecast.window > 0, got 0"),
        ({"horizon": -1}, r"config: expected forecast.horizon > 0, got -1"),
        ({"noise": -0.5}, r"config: expected forecast.noise >= 0, got -0.5"),
        ({"test_fraction": 1.0}, r"config: expected forecast.test_fraction in \[0, 1\), got 1.0"),
        ({"relative": "yes"}, r"config: expected forecast.relative to be bool, got 'yes'"),
        ({"lag": 2}, r"config: unknown key forecast.lag"),
    ],
)
def test_forecast_config_is_validated(forecast, match):
    with pytest.raises(ValueError, match=match):
        load_config(overrides={"forecast": forecast})
