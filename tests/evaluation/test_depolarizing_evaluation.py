"""The global-depolarising correction in a backend evaluation: echoes in the kernels' jobs, counted, and the bias."""

from __future__ import annotations

import json
import math

import pytest

from qk_lstm_qiskit.cli import main
from qk_lstm_qiskit.evaluation.backend import estimate_checkpoint, evaluate_checkpoint
from qk_lstm_qiskit.evaluation.options import Mitigation, Sampling

SHOTS, ECHOES, LEVELS = 4096, 4, 2**4  # the paper map: 4 qubits


def _submitted(out):
    return [r for r in map(json.loads, (out / "jobs.jsonl").read_text().splitlines()) if r["event"] == "submitted"]


@pytest.mark.fake_backend
def test_average_correction_moves_the_kernel_bias_towards_zero(checkpoint, tmp_path):
    """aer-noisy:manila, seed 4: uncorrected kernels are biased low (noise pulls them towards 1/2ⁿ); with 4 echoes per
    job the signed mean error shrinks by more than 5 standard errors (binomial shot noise of the 160 values and of
    each job's rate estimate). The echoes ride in the kernels' jobs: 5 jobs of 32 + 4 bindings, as estimated."""
    runs = {}
    for depolarizing in ("none", "average"):
        out = tmp_path / depolarizing
        runs[depolarizing] = evaluate_checkpoint(checkpoint, "aer-noisy:manila", sampling=Sampling(SHOTS, seed=4),
                                                 mitigation=Mitigation(depolarizing=depolarizing), out_dir=out)
        saved = json.loads((out / "metrics.json").read_text())
        echoes = ECHOES if depolarizing == "average" else 0
        assert (saved["depolarizing"], saved["echoes"]) == (depolarizing, echoes)
        submitted = _submitted(out)
        assert len(submitted) == saved["jobs_submitted"] == saved["estimate"]["jobs"] == 5
        assert [r["num_bindings"] for r in submitted] == [32 + echoes] * 4 + [16 + echoes]  # step 4: one sentence
        assert saved["estimate"]["circuits"] == 144 + 5 * echoes and saved["kernel_values"] == 144
    none, average = runs["none"], runs["average"]
    assert none["depolarizing_rate"] is None
    rate = average["depolarizing_rate"]
    assert 0.0 < rate < 0.5
    values, jobs = 160, 5
    se_none = math.sqrt(0.25 / (SHOTS * values))  # binomial bound per value, averaged
    echo = 1.0 - rate * (LEVELS - 1) / LEVELS
    se_rate = LEVELS / (LEVELS - 1) * math.sqrt(echo * (1 - echo) / (SHOTS * ECHOES))  # per job
    se_average = se_none / (1 - rate) + se_rate / (1 - rate) ** 2 / math.sqrt(jobs)
    assert none["kernel_mean_diff"] < -5 * se_none  # biased low without the correction
    assert abs(none["kernel_mean_diff"]) - abs(average["kernel_mean_diff"]) > 5 * math.hypot(se_none, se_average)


@pytest.mark.fake_backend
def test_the_correction_runs_on_the_readout_mitigated_sampler(checkpoint, tmp_path):
    """With M3 the echoes are readout-corrected too: the rate they show is the gate noise alone, a fraction of the
    uncorrected echoes' rate (readout dominates on manila)."""
    plain = evaluate_checkpoint(checkpoint, "aer-noisy:manila", sampling=Sampling(SHOTS, seed=3),
                                mitigation=Mitigation(depolarizing="single"), out_dir=tmp_path / "plain")
    m3 = evaluate_checkpoint(checkpoint, "aer-noisy:manila", sampling=Sampling(SHOTS, seed=3),
                             mitigation=Mitigation("m3", calibration_shots=2000, depolarizing="single"),
                             out_dir=tmp_path / "m3")
    assert m3["mitigation"] == "m3" and m3["echoes"] == 1
    assert 0.0 <= m3["depolarizing_rate"] < plain["depolarizing_rate"] / 3


def test_the_cli_reports_the_correction(checkpoint, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["evaluate", "--checkpoint", str(checkpoint), "--backend", "aer", "--shots", "64", "--out", str(out),
                 "--depolarizing", "average", "--echoes", "2", "--no-progress"]) == 0
    saved = json.loads((out / "metrics.json").read_text())
    assert (saved["depolarizing"], saved["echoes"]) == ("average", 2)
    assert f"depolarising correction average: 2 echo circuit(s) per job, mean rate λ̂ = {saved['depolarizing_rate']:.4f}" \
        in capsys.readouterr().out
    assert [r["num_bindings"] for r in _submitted(out)] == [32 + 2] * 4 + [16 + 2]


def test_the_estimate_counts_the_echoes(checkpoint):
    est = estimate_checkpoint(checkpoint, "aer", sampling=Sampling(100),
                              mitigation=Mitigation(depolarizing="average", echoes=3))
    assert (est.circuits, est.jobs, est.circuits_per_call) == (144 + 5 * 3, 5, 3)
    assert "e=3 echo circuits per forward job" in est.summary()


@pytest.mark.parametrize("flags, message", [
    (["--depolarizing", "split"], "argument --depolarizing: invalid choice: 'split'"),
    (["--depolarizing", "average", "--echoes", "0"], "argument --echoes: expected an integer >= 1, got 0"),
    (["--depolarizing", "single", "--echoes", "3"], "expected echoes 1 for depolarizing 'single'"),
    (["--echoes", "2"], "expected echoes only with depolarizing single or average, got 2"),
    (["--depolarizing", "average", "--estimator", "shadows"], "expected no --depolarizing/--echoes with --estimator"),
])
def test_a_bad_option_is_one_line_and_creates_nothing(checkpoint, tmp_path, capsys, flags, message):
    out = tmp_path / "eval"
    code = main(["evaluate", "--checkpoint", str(checkpoint), "--backend", "aer", "--shots", "64", "--out", str(out),
                 *flags])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_a_fidelity_without_compute_uncompute_circuits_or_training_is_refused(checkpoint, tmp_path):
    with pytest.raises(ValueError, match="expected a compute-uncompute fidelity for depolarizing 'average'"
                                         ".* got fidelity 'compute-uncompute-shots'"):
        evaluate_checkpoint(checkpoint, "aer", sampling=Sampling(64, fidelity="compute-uncompute-shots"),
                            mitigation=Mitigation(depolarizing="average"), out_dir=tmp_path / "eval")
    assert not (tmp_path / "eval").exists()
    with pytest.raises(ValueError, match="expected depolarizing none when training"):
        estimate_checkpoint(checkpoint, "aer", mitigation=Mitigation(depolarizing="single"), training=True)
