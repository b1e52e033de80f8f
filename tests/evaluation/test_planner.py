"""The shot planner and the estimator evaluation on the paper's checkpoint (exact shot noise, fake device)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from qk_lstm_qiskit.checkpoint import load_forecaster
from qk_lstm_qiskit.config import load_config
from qk_lstm_qiskit.data.series import prepare_series
from qk_lstm_qiskit.evaluation.forecast import evaluate_forecast, forecast_backend_work, forecast_report
from qk_lstm_qiskit.evaluation.backend import tagging_backend_work
from qk_lstm_qiskit.evaluation.options import EvaluationRequest
from qk_lstm_qiskit.evaluation.planner import plan_estimators
from qk_lstm_qiskit.hardware.backends import resolve_backend
from qk_lstm_qiskit.kernels.shot_noise import ComputeUncomputeShots
from qk_lstm_qiskit.kernels.tomography import TomographyFidelity
from qk_lstm_qiskit.nn.cell import QKLSTMCell
from qk_lstm_qiskit.training.experiment import run_training

from _estimated import estimated


def _plan(checkpoint, shot_counts, target):
    work, load = tagging_backend_work(checkpoint, EvaluationRequest(backend="fake:manila"))
    model = load()
    rb = resolve_backend("fake:manila", shots=1, seed=0)
    plan = plan_estimators(model, work, device=rb.device,
                           pass_manager=rb.pass_manager, backend=rb.name, estimators=("compute-uncompute", "tomography"),
                           shot_counts=shot_counts, repeats=2, target_loss=target)
    return model, plan


def test_many_shots_lose_nothing_and_the_cheaper_tomography_is_chosen(checkpoint):
    model, plan = _plan(checkpoint, (10**6,), 0.0)
    assert plan.metric == "accuracy" and all(e.value == plan.exact and e.spread == e.loss == 0 for e in plan.entries)
    cu, tomo = plan.entries
    assert (cu.cost.tokens, cu.cost.circuits, tomo.cost.circuits) == (9, 9 * 16, 9 * 3)  # no padded step counted
    assert tomo.cost.qpu_seconds < cu.cost.qpu_seconds
    assert plan.choice is tomo and "<- choice" in plan.summary()
    assert not any(isinstance(c.kernel.fidelity, TomographyFidelity) for c in model.modules() if isinstance(c, QKLSTMCell))


def test_the_choice_is_the_cheapest_entry_within_the_target(checkpoint):
    _, plan = _plan(checkpoint, (2, 64), 0.1)
    meeting = [e for e in plan.entries if plan.exact - e.value <= 0.1]
    assert plan.choice == min(meeting, key=lambda e: e.cost.qpu_seconds, default=None)
    assert json.loads(json.dumps(plan.to_dict()))["target_loss"] == 0.1


@pytest.mark.fake_backend
def test_tomography_on_a_fake_device_sends_no_padded_row(checkpoint, tmp_path):
    metrics = estimated(checkpoint, "fake:manila", estimator="tomography", shots=512, out_dir=tmp_path / "e",
                        calibration_shots=1000)
    assert metrics["examples"] == metrics["population"] == 2 and metrics["sample"] is None
    assert metrics["batches"] == 1 and "interval_95" not in metrics  # every sentence: no sampling interval
    assert metrics["rows_sent"] == 9 and metrics["rows_skipped_padding"] == 1  # lengths 5 and 4 in one batch
    assert metrics["jobs_submitted"] == 1 + 5  # calibration, then one job per time step
    assert abs(metrics["accuracy"] - metrics["exact_accuracy"]) <= 2 / 9
    assert json.loads((tmp_path / "e" / "metrics.json").read_text())["estimator"] == "tomography"


def test_a_budget_below_one_example_is_refused(checkpoint):
    with pytest.raises(ValueError, match="expected max_qpu_seconds to fit at least one example"):
        estimated(checkpoint, "fake:manila", estimator="tomography", max_qpu_seconds=1.0, dry_run=True)
    plan = estimated(checkpoint, "fake:manila", estimator="tomography", shots=64, max_qpu_seconds=40.0, dry_run=True)
    assert plan["dry_run"] and 1 <= plan["examples"] <= 2 and plan["estimate"]["qpu_seconds"] <= 40.0


# ---------------------------------------------------------------------- any task: a forecaster and its test RMSE


@pytest.fixture(scope="module")
def forecaster(tmp_path_factory):
    out = tmp_path_factory.mktemp("forecast")
    config = load_config(Path(__file__).resolve().parents[2] / "configs" / "forecast_qklstm.yaml",
                         {"train": {"epochs": 2}, "forecast": {"length": 30, "window": 2}})
    run_training(config, out, progress=False)
    return out / "model.pt"


@pytest.fixture(scope="module")
def forecast_plan(forecaster):
    work, load = forecast_backend_work(forecaster, EvaluationRequest(backend="fake:manila"))
    rb = resolve_backend("fake:manila", shots=1, seed=0)
    plan = plan_estimators(load(), work, device=rb.device, pass_manager=rb.pass_manager, backend=rb.name,
                           estimators=("compute-uncompute", "tomography"), shot_counts=(64, 4096), repeats=4,
                           target_loss=0.05, seed=3)
    return work, plan


def _rmse_with(checkpoint, fidelities) -> float:
    """The test RMSE of the forecaster with its layers' fidelities replaced (the public exact path)."""
    model, scaler, config = load_forecaster(checkpoint)
    for cell, make in zip([m for m in model.modules() if isinstance(m, QKLSTMCell)], fidelities, strict=True):
        cell.kernel.fidelity = make(cell.kernel.feature_map)
    return forecast_report(model, prepare_series(config.data, config.forecast, scaler=scaler))["test_rmse"]


def test_a_forecasters_plan_scores_its_test_rmse(forecaster, forecast_plan, tmp_path):
    work, plan = forecast_plan
    assert (plan.metric, plan.higher_is_better) == ("test RMSE", False)
    assert plan.exact == pytest.approx(evaluate_forecast(forecaster, tmp_path / "exact")["test_rmse"], rel=1e-12)
    cu64 = next(e for e in plan.entries if (e.estimator, e.shots) == ("compute-uncompute", 64))
    layers = sum(isinstance(m, QKLSTMCell) for m in load_forecaster(forecaster)[0].modules())
    by_hand = [_rmse_with(forecaster, [lambda fm, s=3 + 1000 * r + i: ComputeUncomputeShots(fm, shots=64, seed=s)
                                       for i in range(layers)]) for r in range(4)]
    assert cu64.values == pytest.approx(by_hand, rel=1e-9)
    assert cu64.loss == pytest.approx((statistics.fmean(by_hand) - plan.exact) / plan.exact, rel=1e-9)
    assert cu64.cost.jobs == work.lengths[0] * layers  # every window in one batch: one job per time step and layer


def test_more_shots_move_the_rmse_less_and_the_choice_is_the_cheapest_within_the_target(forecast_plan):
    _, plan = forecast_plan
    cu = {e.shots: e for e in plan.entries if e.estimator == "compute-uncompute"}
    # Kernel noise moves this RMSE to first order either way (the signed mean loss of a few repeats can be < 0):
    # the robust check is the size of the move, ~ 1/sqrt(shots), i.e. ~8x smaller at 4096 than at 64 shots.
    moved = {n: statistics.fmean(abs(v - plan.exact) for v in e.values) for n, e in cu.items()}
    assert moved[64] > 2 * moved[4096] and cu[64].spread > 2 * cu[4096].spread
    meeting = [e for e in plan.entries if e.loss <= 0.05]
    assert plan.choice == min(meeting, key=lambda e: e.cost.qpu_seconds, default=None)
    assert "test RMSE" in plan.summary() and "loss (%)" in plan.summary() and "increase <= 5 %" in plan.summary()
    with pytest.raises(ValueError, match="expected a target loss >= 0 for test RMSE"):
        plan_estimators(None, forecast_plan[0], device=None, pass_manager=None, backend="x", target_loss=-0.1)
