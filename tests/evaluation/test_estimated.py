"""The kernel-estimator run on every task: forecasting (aer, shot noise only) and classification (fake device, sample)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from qk_lstm_qiskit.cli.estimators import estimator_work
from qk_lstm_qiskit.config import load_config
from qk_lstm_qiskit.evaluation.estimated import evaluate_estimated
from qk_lstm_qiskit.evaluation.options import EvaluationRequest, Mitigation, Sampling
from qk_lstm_qiskit.hardware.backends import ResolvedBackend, resolve_backend
from qk_lstm_qiskit.kernels.active_rows import ActiveRowsFidelity
from qk_lstm_qiskit.kernels.kernel import exact_fidelity
from qk_lstm_qiskit.nn.cell import QKLSTMCell
from qk_lstm_qiskit.training.experiment import run_training

from _estimated import estimated
from _sequences import toy_config, toy_npz
from _samplers import interrupting_sampler

FORECAST = Path(__file__).resolve().parents[2] / "configs" / "forecast_qklstm.yaml"


def forecast_config(**model):
    return load_config(FORECAST, {"train": {"epochs": 2}, "forecast": {"length": 30, "window": 2}, "model": model})


@pytest.fixture(scope="module")
def forecaster(tmp_path_factory):
    out = tmp_path_factory.mktemp("fc")
    run_training(forecast_config(), out, progress=False)  # reps=1: a product map, so tomography applies
    return out / "model.pt"


def _recorded_run(monkeypatch, checkpoint, out, estimator: str, shots: int):
    """The run's metrics and every kernel value the estimator sent next to the exact kernel on the same angles."""
    calls, maps = [], []
    evaluate = ActiveRowsFidelity.evaluate

    def recording(self, ax, reference):
        values = evaluate(self, ax, reference)
        calls.append((ax.detach().clone(), reference.angles.detach().clone(), values.detach().clone()))
        return values

    monkeypatch.setattr(ActiveRowsFidelity, "evaluate", recording)
    request = EvaluationRequest(backend="aer", out_dir=out, sampling=Sampling(shots=shots, seed=3))
    work, load = estimator_work(checkpoint, request)

    def spying_load(**kw):
        model = load(**kw)
        maps.extend(c.kernel.feature_map for c in model.modules() if isinstance(c, QKLSTMCell))
        return model

    metrics = evaluate_estimated(checkpoint, request, work, load=spying_load, estimator=estimator)
    exact = exact_fidelity(maps[0])  # one layer: every call is its kernel
    diffs = torch.cat([(values.double() - exact(ax, angles).double()).flatten() for ax, angles, values in calls])
    return metrics, diffs, maps[0].num_qubits, len(calls[0][0])


@pytest.mark.parametrize("estimator", ["tomography", "compute-uncompute"])
def test_forecasting_kernels_carry_shot_noise_only(forecaster, tmp_path, monkeypatch, estimator):
    shots = 256
    metrics, diffs, qubits, rows = _recorded_run(monkeypatch, forecaster, tmp_path / "e", estimator, shots)
    # compute-uncompute: binomial, Var ≤ 1/(4S); tomography (product of n unbiased qubit fidelities, each
    # Var ≤ |s|²/(4S) = 1/(4S)): Var ≤ (1 + 1/(4S))^n − 1. Both estimators are unbiased on aer (no readout error).
    bound = 1 / (4 * shots) if estimator == "compute-uncompute" else (1 + 1 / (4 * shots)) ** qubits - 1
    steps = metrics["estimate"]["tokens"] // metrics["examples"]
    assert metrics["examples"] == metrics["population"] == rows and metrics["batches"] == 1 and metrics["sample"] is None
    assert metrics["rows_sent"] == rows * steps and metrics["rows_skipped_padding"] == 0  # windows do not pad
    assert metrics["jobs_submitted"] == steps and metrics["jobs_resumed"] == 0  # one job per time step
    # mean of M squared (near-Gaussian) errors: E ≤ bound, standard error ≈ bound·√(2/M); allow 5 of them
    assert 0 < float((diffs**2).mean()) <= bound * (1 + 5 * (2 / diffs.numel()) ** 0.5)
    # the values of one x are correlated: the standard error of the mean uses one value per row (conservative)
    assert abs(float(diffs.mean())) <= 5 * (bound / (rows * steps)) ** 0.5
    assert 0 < metrics["backend_rmse_vs_exact"] < 0.05 * metrics["exact_test_rmse"]
    # the run's own kernel comparison (the engine's hooks on the fidelity it wraps) sees the same values
    assert metrics["kernel_values"] == diffs.numel()
    assert metrics["kernel_mean_abs_diff"] == pytest.approx(float(diffs.abs().mean()), rel=1e-6)
    assert metrics["kernel_mean_diff"] == pytest.approx(float(diffs.mean()), rel=1e-6, abs=1e-12)
    saved = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert saved["estimator"] == estimator and saved["test_rmse"] == metrics["test_rmse"]
    assert (tmp_path / "e" / "forecast.png").is_file()


def test_an_interrupted_run_resumes_without_paying_twice(forecaster, tmp_path):
    local = resolve_backend("aer", shots=256, seed=7)

    def backend(interrupt_at):
        sampler = interrupting_sampler(local.sampler, interrupt_at=interrupt_at)
        return ResolvedBackend(name="aer", kind="aer", sampler=sampler, pass_manager=local.pass_manager, service=None,
                               shots=256), sampler

    whole = estimated(forecaster, "aer", estimator="compute-uncompute", out_dir=tmp_path / "whole",
                      resolved=backend(None)[0])
    assert whole["jobs_submitted"] == 2  # window 2: two time steps
    rb, sampler = backend(1)
    with pytest.raises(KeyboardInterrupt):
        estimated(forecaster, "aer", estimator="compute-uncompute", out_dir=tmp_path / "cut", resolved=rb)
    assert sampler.runs == 2 and not (tmp_path / "cut" / "metrics.json").exists()
    rb, sampler = backend(None)
    resumed = estimated(forecaster, "aer", estimator="compute-uncompute", out_dir=tmp_path / "cut", resume=True,
                        resolved=rb)
    assert (resumed["jobs_resumed"], resumed["jobs_submitted"], sampler.runs) == (1, 1, 1)  # the finished job replayed
    assert resumed["test_prediction"] == whole["test_prediction"]  # same seeded jobs: the same forecasts


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cls")
    train, test = toy_npz(folder / "train.npz"), toy_npz(folder / "test.npz", seed=1)
    run_training(toy_config(train, test, "qk-lstm", epochs=2), folder / "run", progress=False)
    return folder / "run" / "model.pt", np.load(test)["lengths"]


@pytest.mark.fake_backend
def test_classification_on_a_fake_device_samples_to_the_budget(classifier, tmp_path):
    from qk_lstm_qiskit.tasks.classification import evaluate_classification

    checkpoint, lengths = classifier
    options = {"estimator": "compute-uncompute", "shots": 128, "job_overhead_seconds": 0.0}  # cost ∝ rows sent
    everything = estimated(checkpoint, "fake:manila", dry_run=True, **options)
    budget = everything["estimate"]["qpu_seconds"] / 2
    plan = estimated(checkpoint, "fake:manila", max_qpu_seconds=budget, dry_run=True, **options)
    assert 1 <= plan["examples"] < plan["population"] == len(lengths) and plan["estimate"]["qpu_seconds"] <= budget
    metrics = estimated(checkpoint, "fake:manila", max_qpu_seconds=budget, out_dir=tmp_path / "e", **options)
    chosen = metrics["sample"]["indices"]
    assert metrics["examples"] == plan["examples"] == len(chosen) and metrics["estimate"] == plan["estimate"]
    sampled = lengths[chosen]  # one batch: every sequence runs max(sampled) steps, padded rows send nothing
    assert metrics["rows_sent"] == sampled.sum() and metrics["rows_skipped_padding"] == (sampled.max() - sampled).sum()
    assert metrics["rows_skipped_padding"] > 0 and metrics["jobs_submitted"] == sampled.max()
    low, high = metrics["interval_95"]
    assert low <= metrics["accuracy"] <= high and high > low
    exact = evaluate_classification(checkpoint, tmp_path / "exact")
    assert metrics["exact_full"] == pytest.approx(exact["accuracy"])
    assert metrics["exact_full_inside_interval"] == (low <= exact["accuracy"] <= high)


def test_options_the_estimator_decides_are_refused_in_one_line(forecaster, tmp_path):
    for mitigation in (Mitigation(depolarizing="average"), Mitigation("m3")):
        request = EvaluationRequest(backend="aer", out_dir=tmp_path / "x", mitigation=mitigation)
        work, load = estimator_work(forecaster, request)
        with pytest.raises(ValueError, match=r"^evaluate: expected no mitigation\.\w+ with --estimator .*got '(average|m3)'$"):
            evaluate_estimated(forecaster, request, work, load=load, estimator="tomography")
    assert not (tmp_path / "x").exists()
