"""``estimate --target-loss`` (the shot planner, any task) and ``evaluate --estimator`` on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qk_lstm_qiskit import cli
from qk_lstm_qiskit.config import load_config
from qk_lstm_qiskit.training.experiment import run_training


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("paper")
    run_training(load_config(overrides={"train": {"epochs": 4}}), out, progress=False)
    return out / "model.pt"


def test_estimate_shows_the_planners_choice_before_anything_runs(checkpoint, tmp_path, capsys):
    plan_file = tmp_path / "plan.json"
    code = cli.main(["estimate", "--checkpoint", str(checkpoint), "--backend", "fake:manila", "--target-accuracy-loss",
                     "0.05", "--estimators", "compute-uncompute,tomography", "--plan-shots", "1000000",
                     "--plan-repeats", "1", "--json", str(plan_file)])
    out = capsys.readouterr().out
    assert code == 0 and "cost estimate for fake:manila" in out and "<- choice" in out
    assert json.loads(plan_file.read_text())["choice"]["estimator"] == "tomography"


def test_target_loss_is_the_general_name_and_one_target_flag_is_allowed(checkpoint, tmp_path, capsys):
    plan_file = tmp_path / "plan.json"
    code = cli.main(["estimate", "--checkpoint", str(checkpoint), "--backend", "fake:manila", "--target-loss", "0.05",
                     "--estimators", "compute-uncompute,tomography", "--plan-shots", "1000000", "--plan-repeats", "1",
                     "--json", str(plan_file)])
    saved = json.loads(plan_file.read_text())
    assert code == 0 and saved["metric"] == "accuracy" and saved["choice"]["estimator"] == "tomography"
    assert "target: accuracy loss <= 5 point(s)" in capsys.readouterr().out
    code = cli.main(["estimate", "--checkpoint", str(checkpoint), "--target-loss", "0.05", "--target-accuracy-loss", "0.05"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "not allowed with argument" in err
    code = cli.main(["estimate", "--checkpoint", str(checkpoint), "--backend", "fake:manila", "--target-loss", "1.5"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "expected a target loss in [0, 1) for accuracy" in err


def test_evaluate_refuses_a_budget_below_one_example_in_one_line(checkpoint, tmp_path, capsys):
    out = tmp_path / "never"
    code = cli.main(["evaluate", "--checkpoint", str(checkpoint), "--backend", "fake:manila", "--estimator",
                     "tomography", "--max-qpu-seconds", "1", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "expected max_qpu_seconds to fit at least one example" in err and "\n" not in err.strip()
    assert not out.exists()


def test_bad_shot_counts_are_a_usage_error(checkpoint, capsys):
    code = cli.main(["estimate", "--checkpoint", str(checkpoint), "--plan-shots", "a,b", "--target-accuracy-loss", "0.01"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "expected comma-separated shot counts" in err[0]  # one line, exit 2


def _forecaster(folder, reps: int):
    config = load_config(Path(__file__).resolve().parents[2] / "configs" / "forecast_qklstm.yaml",
                         {"train": {"epochs": 1}, "forecast": {"length": 30, "window": 2}, "model": {"reps": reps}})
    run_training(config, folder, progress=False)
    return folder / "model.pt"


def test_evaluate_a_forecaster_with_tomography_prints_its_rmse(tmp_path, capsys):
    checkpoint = _forecaster(tmp_path / "fc", reps=1)  # a product map
    out = tmp_path / "e"
    code = cli.main(["evaluate", "--checkpoint", str(checkpoint), "--backend", "aer", "--estimator", "tomography",
                     "--shots", "256", "--out", str(out)])
    printed = capsys.readouterr().out
    saved = json.loads((out / "metrics.json").read_text())
    assert code == 0 and saved["estimator"] == "tomography" and saved["batches"] == 1  # every window in one batch
    assert f"tomography on aer: {saved['population']} of {saved['population']} examples in 1 batch" in printed
    assert (f"test RMSE {saved['test_rmse']:.4g} on all {saved['population']} examples; exact "
            f"{saved['exact_test_rmse']:.4g}") in printed
    assert saved["test_rmse"] != saved["exact_test_rmse"]  # 256 shots per setting: not the exact forecast


def test_tomography_on_an_entangling_map_is_refused_in_one_line(tmp_path, capsys):
    checkpoint = _forecaster(tmp_path / "fc", reps=2)  # reps=2 entangles the qubits: no product state to measure
    out = tmp_path / "never"
    code = cli.main(["evaluate", "--checkpoint", str(checkpoint), "--backend", "aer", "--estimator", "tomography",
                     "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "product" in err, err
    assert not out.exists()


def test_a_forecasters_plan_takes_target_loss_not_target_accuracy_loss(tmp_path, capsys):
    checkpoint = _forecaster(tmp_path / "fc", reps=1)
    code = cli.main(["estimate", "--checkpoint", str(checkpoint), "--backend", "fake:manila", "--target-accuracy-loss",
                     "0.1", "--estimators", "compute-uncompute", "--plan-shots", "64", "--plan-repeats", "1"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "expected --target-loss for this checkpoint (its metric is test RMSE" in err
    code = cli.main(["estimate", "--checkpoint", str(checkpoint), "--backend", "fake:manila", "--target-loss", "0.1",
                     "--estimators", "compute-uncompute", "--plan-shots", "64,4096", "--plan-repeats", "2"])
    out = capsys.readouterr().out
    assert code == 0 and "exact test RMSE" in out and "target: test RMSE increase <= 10 %" in out and "loss (%)" in out


def test_a_classifiers_plan_runs_from_the_command_line(tmp_path, capsys):
    pytest.importorskip("aeon")
    from _sequences import toy_config, toy_npz

    train, test = toy_npz(tmp_path / "train.npz"), toy_npz(tmp_path / "test.npz", seed=1)
    run_training(toy_config(train, test, "qk-lstm", epochs=2), tmp_path / "run", progress=False)
    plan_file = tmp_path / "plan.json"
    code = cli.main(["estimate", "--checkpoint", str(tmp_path / "run"), "--backend", "fake:manila", "--target-loss",
                     "0.5", "--estimators", "compute-uncompute", "--plan-shots", "64,256", "--plan-repeats", "2",
                     "--json", str(plan_file)])
    out = capsys.readouterr().out
    saved = json.loads(plan_file.read_text())
    assert code == 0 and saved["metric"] == "accuracy" and [e["shots"] for e in saved["entries"]] == [64, 256]
    rows = [line for line in out.splitlines() if line.strip().startswith("compute-uncompute")]
    assert len(rows) == 2 and "target: accuracy loss <= 50 point(s)" in out
    exact = saved["exact"]
    assert all(e["loss"] == pytest.approx(exact - sum(e["values"]) / 2) for e in saved["entries"])
    assert saved["choice"] == min((e for e in saved["entries"] if e["loss"] <= 0.5),
                                  key=lambda e: e["cost"]["qpu_seconds"], default=None)
