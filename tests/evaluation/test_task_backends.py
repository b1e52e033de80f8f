"""Every task on a sampler backend: forecasting and classification checkpoints get what tagging gets —
the estimate, dry run, budget (a sample with its 95 % interval, or a refusal), job journal with replay on
resume, readout mitigation and the kernel comparison (:func:`~qk_lstm_qiskit.evaluation.backend.evaluate_on_backend`)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from qk_lstm_qiskit.cli import main
from qk_lstm_qiskit.config import load_config
from qk_lstm_qiskit.errors import QKLSTMError
from qk_lstm_qiskit.evaluation.backend import estimate_on_backend
from qk_lstm_qiskit.evaluation.forecast import (
    _restored_windows, estimate_forecast, evaluate_forecast, evaluate_forecast_on_backend, forecast_backend_work, predict,
)
from qk_lstm_qiskit.evaluation.options import Budget, EvaluationRequest, Sampling
from qk_lstm_qiskit.hardware.backends import ResolvedBackend, resolve_backend
from qk_lstm_qiskit.training.experiment import run_training

from _samplers import interrupting_sampler

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SHOTS = 256


@pytest.fixture(scope="module")
def forecaster(tmp_path_factory):
    """The forecast config's QK-LSTM (4 qubits, 4 gates x 4 references), 2 epochs on a short pendulum, windows of 2."""
    out = tmp_path_factory.mktemp("forecast")
    config = load_config(CONFIGS / "forecast_qklstm.yaml", {"train": {"epochs": 2}, "forecast": {"length": 30, "window": 2}})
    run_training(config, out, progress=False)
    return out / "model.pt"


def _exact_on(device_backend: ResolvedBackend, name: str = "exact-on-device") -> ResolvedBackend:
    """Exact probabilities through the device's pass manager: the device's timing for the estimate, no noise."""
    from qiskit_machine_learning.primitives import QMLSampler

    return dataclasses.replace(device_backend, name=name, sampler=QMLSampler(shots=None))


def _journal(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_forecast_estimate_counts_one_job_per_step_and_the_dry_run_writes_nothing(forecaster, tmp_path):
    work, _ = forecast_backend_work(forecaster, EvaluationRequest(backend="fake:manila"))
    windows, steps = work.population, work.lengths[0]
    assert (windows, steps) == (6, 2)
    estimate = estimate_forecast(forecaster, EvaluationRequest(backend="fake:manila", sampling=Sampling(SHOTS)))
    # every window in one batch: one job per time step, each binding G·R = 4·4 kernels per window
    assert (estimate.circuits, estimate.jobs) == (windows * steps * 4 * 4, steps)
    assert estimate.qpu_seconds > 0
    dry = evaluate_forecast_on_backend(forecaster, EvaluationRequest(
        backend="fake:manila", out_dir=tmp_path / "dry", sampling=Sampling(SHOTS), budget=Budget(dry_run=True)))
    assert dry["dry_run"] and dry["estimate"]["circuits"] == estimate.circuits and not (tmp_path / "dry").exists()
    training = estimate_forecast(forecaster, EvaluationRequest(backend="fake:manila"), training=True)
    assert training.backward_circuits > 0 and training.forward_circuits > estimate.circuits  # more windows, shifts


def test_an_exact_sampler_reproduces_the_exact_forecasts(forecaster, tmp_path):
    """Exact probabilities through the whole backend path (journal, streams, hooks) give the exact forecast."""
    manila = resolve_backend("fake:manila", shots=SHOTS, seed=0)
    m = evaluate_forecast_on_backend(forecaster, EvaluationRequest(backend="fake:manila", out_dir=tmp_path / "e"),
                                     resolved=_exact_on(manila))
    exact = evaluate_forecast(forecaster, tmp_path / "x")
    assert m["kernel_mean_abs_diff"] < 1e-6 and m["kernel_values"] == m["estimate"]["circuits"] == 6 * 2 * 16
    assert m["backend_rmse_vs_exact"] < 1e-5
    assert m["test_rmse"] == pytest.approx(exact["test_rmse"], abs=1e-5) and m["exact_test_rmse"] == pytest.approx(exact["test_rmse"])
    submitted = [r for r in _journal(tmp_path / "e" / "jobs.jsonl") if r["event"] == "submitted"]
    assert len(submitted) == m["jobs_submitted"] == m["estimate"]["jobs"] == 2
    assert (tmp_path / "e" / "forecast.png").is_file()


@pytest.mark.fake_backend
def test_an_interrupted_forecast_on_a_fake_device_resumes_without_paying_a_finished_job_twice(forecaster, tmp_path):
    manila = resolve_backend("fake:manila", shots=SHOTS, seed=3)
    request = EvaluationRequest(backend="fake:manila", out_dir=tmp_path / "run", sampling=Sampling(SHOTS, seed=3))
    interrupted = interrupting_sampler(manila.sampler, interrupt_at=1)
    with pytest.raises(KeyboardInterrupt):
        evaluate_forecast_on_backend(forecaster, request, resolved=dataclasses.replace(manila, sampler=interrupted))
    records = _journal(tmp_path / "run" / "jobs.jsonl")
    assert [r["event"] for r in records] == ["submitted", "done", "submitted"]  # step 0 done, step 1 cut off

    counting = interrupting_sampler(resolve_backend("fake:manila", shots=SHOTS, seed=3).sampler)
    resumed = evaluate_forecast_on_backend(forecaster, dataclasses.replace(request, resume=True),
                                           resolved=dataclasses.replace(manila, sampler=counting))
    assert (resumed["jobs_resumed"], resumed["jobs_submitted"], type(counting).runs) == (1, 1, 1)
    clean = evaluate_forecast_on_backend(forecaster, dataclasses.replace(request, out_dir=tmp_path / "clean"),
                                         resolved=resolve_backend("fake:manila", shots=SHOTS, seed=3))
    for key in ("test_rmse", "backend_rmse_vs_exact", "kernel_mean_abs_diff"):  # the same seeded jobs
        assert resumed[key] == pytest.approx(clean[key], rel=1e-12)
    assert 0 < resumed["kernel_mean_abs_diff"] < 0.15  # manila's noise moves the kernels by a few percent


@pytest.mark.fake_backend
def test_a_budget_evaluates_the_largest_sample_of_windows_that_fits(forecaster, tmp_path):
    manila = resolve_backend("fake:manila", shots=SHOTS, seed=0)
    exact_backend = _exact_on(manila)
    request = EvaluationRequest(backend="fake:manila", out_dir=tmp_path / "b", sampling=Sampling(SHOTS))
    full = evaluate_forecast_on_backend(forecaster, dataclasses.replace(request, budget=Budget(dry_run=True)),
                                        resolved=exact_backend)["estimate"]["qpu_seconds"]
    budget = Budget(max_qpu_seconds=0.8 * full, sample_seed=4)
    m = evaluate_forecast_on_backend(forecaster, dataclasses.replace(request, budget=budget), resolved=exact_backend)
    n = m["sample"]["examples"]
    assert m["sample"] == {"examples": n, "population": 6, "seed": 4} and 1 <= n < 6
    work, load = forecast_backend_work(forecaster, request)
    cost = lambda k: estimate_on_backend(forecaster, request, [2] * k, 6, load=load, resolved=exact_backend).qpu_seconds  # noqa: E731
    assert cost(n) <= budget.max_qpu_seconds < cost(n + 1) and m["estimate"]["qpu_seconds"] == pytest.approx(cost(n))
    # the sample's RMSE, recomputed from the exact model on the sampled windows (exact sampler: backend = exact)
    _, windows, _, _ = _restored_windows(forecaster)
    prediction = windows.to_series_units(predict(load(), windows.test[0]).double().numpy(), windows.test_index)
    truth = windows.series[windows.test_index]
    sampled = [int(np.flatnonzero(np.isclose(truth, t))[0]) for t in m["test_truth"]]  # which windows were drawn
    assert len(set(sampled)) == n
    assert m["test_rmse"] == pytest.approx(float(np.sqrt(np.mean((prediction[sampled] - truth[sampled]) ** 2))), abs=1e-5)
    low, high = m["interval_95"]
    assert low <= m["test_rmse"] <= high and m["standard_error"] > 0
    assert m["exact_full"] == pytest.approx(float(np.sqrt(np.mean((prediction - truth) ** 2))))
    assert m["exact_full_inside_interval"] == (low <= m["exact_full"] <= high)
    with pytest.raises(QKLSTMError, match="over max_qpu_seconds=1"):  # 2 jobs of 3 s: not one window fits
        evaluate_forecast_on_backend(forecaster, dataclasses.replace(request, out_dir=tmp_path / "none",
                                                                     budget=Budget(max_qpu_seconds=1)),
                                     resolved=exact_backend)
    assert not (tmp_path / "none").exists()


@pytest.mark.fake_backend
def test_cli_forecast_on_a_noisy_device_with_readout_mitigation(forecaster, tmp_path, capsys):
    out = tmp_path / "m3"
    code = main(["evaluate", "--checkpoint", str(forecaster), "--backend", "aer-noisy:manila", "--shots", "512",
                 "--mitigation", "m3", "--calibration-shots", "1000", "--out", str(out), "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "on aer-noisy:manila (512 shots): test RMSE" in printed and "mitigation m3" in printed
    assert "readout calibration of qubits" in printed and "measured now" in printed
    m = json.loads((out / "metrics.json").read_text())
    submitted = [r for r in _journal(out / "jobs.jsonl") if r["event"] == "submitted"]
    assert len(submitted) == m["jobs_submitted"] == m["estimate"]["jobs"] + m["estimate"]["calibration_jobs"]
    assert m["calibration"]["paid"] and (out / "forecast.png").is_file()
    assert main(["evaluate", "--checkpoint", str(forecaster), "--backend", "aer-noisy:manila", "--out", str(out)]) == 2
    assert "pass --resume" in capsys.readouterr().err  # never overwritten


# --------------------------------------------------------------------------- classification
@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    pytest.importorskip("aeon")
    from _sequences import toy_config, toy_npz

    root = tmp_path_factory.mktemp("classify")
    train, test = toy_npz(root / "train.npz"), toy_npz(root / "test.npz", seed=1)
    run_training(toy_config(train, test, "qk-lstm", epochs=2), root / "run", progress=False)
    return root / "run" / "model.pt"


def test_an_exact_sampler_reproduces_the_exact_classifier_and_keeps_the_test_order(classifier, tmp_path):
    from qk_lstm_qiskit.tasks.classification import evaluate_classification, evaluate_classification_on_backend

    manila = resolve_backend("fake:manila", shots=SHOTS, seed=0)
    m = evaluate_classification_on_backend(classifier, EvaluationRequest(backend="fake:manila", out_dir=tmp_path / "e",
                                                                         batch_size=4), resolved=_exact_on(manila))
    exact = evaluate_classification(classifier, tmp_path / "x")
    assert m["predictions"] == exact["predictions"] == m["exact_predictions"]  # the test split's own order
    assert m["accuracy"] == exact["accuracy"] and m["agreement"] == 1.0 and m["kernel_mean_abs_diff"] < 1e-6
    # 12 sequences of 2-5 steps sorted by length in batches of 4: jobs = Σ_b max length; kernels = G·R per step of
    # each sequence (padded steps are not sent)
    lengths = sorted(len(x) for x in _test_sequences(classifier))
    batches = [lengths[i:i + 4] for i in range(0, 12, 4)]
    assert m["jobs_submitted"] == m["estimate"]["jobs"] == sum(max(b) for b in batches)
    assert m["kernel_values"] == m["estimate"]["circuits"] == sum(lengths) * 4 * 1 < sum(len(b) * max(b) * 4 for b in batches)


def test_a_budget_classifies_a_sample_with_its_interval(classifier, tmp_path):
    from qk_lstm_qiskit.tasks.classification import evaluate_classification_on_backend

    manila = resolve_backend("fake:manila", shots=SHOTS, seed=0)
    request = EvaluationRequest(backend="fake:manila", out_dir=tmp_path / "s", batch_size=12)
    full = evaluate_classification_on_backend(classifier, dataclasses.replace(request, budget=Budget(dry_run=True)),
                                              resolved=_exact_on(manila))["estimate"]["qpu_seconds"]
    m = evaluate_classification_on_backend(classifier, dataclasses.replace(request, budget=Budget(max_qpu_seconds=0.9 * full)),
                                           resolved=_exact_on(manila))
    n = m["sample"]["examples"]
    assert 1 <= n < 12 and m["sequences"] == n and m["estimate"]["qpu_seconds"] <= 0.9 * full
    p, se = m["accuracy"], m["standard_error"]
    assert se == pytest.approx(np.sqrt((1 - n / 12) * p * (1 - p) / (n - 1)))  # proportion under sampling w/o replacement
    assert m["interval_95"][0] <= p <= m["interval_95"][1]


def _test_sequences(checkpoint) -> list:
    from qk_lstm_qiskit.tasks.classification import _restored

    _, task, _ = _restored(checkpoint)
    return task.test_data().sequences


def test_cli_classification_dry_run_and_a_run_on_aer(classifier, tmp_path, capsys):
    assert main(["evaluate", "--checkpoint", str(classifier), "--backend", "fake:manila", "--dry-run",
                 "--out", str(tmp_path / "dry")]) == 0
    printed = capsys.readouterr().out
    assert "dry run: nothing submitted" in printed and "circuits (bindings)" in printed
    assert not (tmp_path / "dry").exists()
    assert main(["evaluate", "--checkpoint", str(classifier), "--backend", "aer", "--shots", "128", "--max-sentences", "4",
                 "--out", str(tmp_path / "aer"), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "accuracy on aer (128 shots)" in printed and "jobs: " in printed and "on 4 sequences" in printed
    m = json.loads((tmp_path / "aer" / "metrics.json").read_text())
    assert m["sequences"] == 4 and torch.tensor(m["predictions"]).numel() == 4


def test_parallel_batches_give_the_numbers_of_one_batch_at_a_time(classifier, tmp_path):
    """Three batches in flight (threads): each batch its journal stream and its own padded-row schedule; the seeded
    jobs give the same predictions and kernel differences as one batch at a time."""
    from qk_lstm_qiskit.evaluation.options import JobPolicy
    from qk_lstm_qiskit.tasks.classification import evaluate_classification_on_backend

    runs = {}
    for workers in (1, 3):
        request = EvaluationRequest(backend="aer", out_dir=tmp_path / f"w{workers}", batch_size=4,
                                    sampling=Sampling(SHOTS, seed=2), jobs=JobPolicy(parallel_batches=workers))
        runs[workers] = evaluate_classification_on_backend(classifier, request)
    one, three = runs[1], runs[3]
    assert one["batches"] == 3 and three["parallel_batches"] == 3
    for key in ("predictions", "kernel_values", "kernel_mean_abs_diff", "kernel_mean_diff", "jobs_submitted"):
        assert three[key] == one[key]
    streams = {r["stream"] for r in _journal(tmp_path / "w3" / "jobs.jsonl") if r["event"] == "submitted"}
    assert streams == {"batch-0", "batch-1", "batch-2"}
