"""The shot planner and the estimator evaluation on the paper's checkpoint (exact shot noise, fake device)."""

from __future__ import annotations

import json

import pytest

from qk_lstm_qiskit.checkpoint import load_tagger
from qk_lstm_qiskit.config import load_config
from qk_lstm_qiskit.data.tasks import evaluation_data
from qk_lstm_qiskit.evaluation.loop import sorted_batches
from qk_lstm_qiskit.evaluation.planner import plan_estimators
from qk_lstm_qiskit.hardware.backends import resolve_backend
from qk_lstm_qiskit.kernels.tomography import TomographyFidelity
from qk_lstm_qiskit.nn.cell import QKLSTMCell
from qk_lstm_qiskit.training.experiment import run_training

from _estimated import estimated


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("paper")
    run_training(load_config(overrides={"train": {"epochs": 4}}), out, progress=False)
    return out / "model.pt"


def _plan(checkpoint, shot_counts, target):
    model, words, tags, config = load_tagger(checkpoint)
    data = evaluation_data(None, config.data, words, tags)
    rb = resolve_backend("fake:manila", shots=1, seed=0)
    plan = plan_estimators(model, sorted_batches(data, 32, words.pad_index or 0), data.lengths, device=rb.device,
                           pass_manager=rb.pass_manager, backend=rb.name, estimators=("compute-uncompute", "tomography"),
                           shot_counts=shot_counts, repeats=2, target_loss=target)
    return model, plan


def test_many_shots_lose_nothing_and_the_cheaper_tomography_is_chosen(checkpoint):
    model, plan = _plan(checkpoint, (10**6,), 0.0)
    assert all(e.accuracy == plan.exact_accuracy and e.spread == 0 for e in plan.entries)
    cu, tomo = plan.entries
    assert (cu.cost.tokens, cu.cost.circuits, tomo.cost.circuits) == (9, 9 * 16, 9 * 3)  # no padded step counted
    assert tomo.cost.qpu_seconds < cu.cost.qpu_seconds
    assert plan.choice is tomo and "<- choice" in plan.summary()
    assert not any(isinstance(c.kernel.fidelity, TomographyFidelity) for c in model.modules() if isinstance(c, QKLSTMCell))


def test_the_choice_is_the_cheapest_entry_within_the_target(checkpoint):
    _, plan = _plan(checkpoint, (2, 64), 0.1)
    meeting = [e for e in plan.entries if plan.exact_accuracy - e.accuracy <= 0.1]
    assert plan.choice == min(meeting, key=lambda e: e.cost.qpu_seconds, default=None)
    assert json.loads(json.dumps(plan.to_dict()))["target_accuracy_loss"] == 0.1


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
