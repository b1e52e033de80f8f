"""Train in simulation, infer on a (fake) device: evaluate, dry run, budget, resume, secrets."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from qk_lstm_qiskit.hardware.backends import ResolvedBackend, resolve_backend
from qk_lstm_qiskit.cli import main
from qk_lstm_qiskit.errors import QKLSTMError
from qk_lstm_qiskit.evaluation.backend import default_eval_dir, estimate_checkpoint, evaluate_checkpoint
from qk_lstm_qiskit.evaluation.options import Budget, Sampling
from qk_lstm_qiskit.circuits.feature_map import FeatureMap
from qk_lstm_qiskit.kernels.kernel import QuantumKernel

from _samplers import JobRegistry, ibm_standin

DUMMY_TOKEN = "dummy-token-123-do-not-leak-9f8e7d"
SHOTS = 256


def _journal(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.fake_backend
def test_sampler_kernel_after_a_reversed_layout_matches_the_exact_kernel():
    """The pass manager of a fake device + the sampler kernel read P(0…0) on the right qubits."""
    from qiskit_machine_learning.primitives import QMLSampler

    fm = FeatureMap(4, reps=2, entanglement="circular")
    rb = resolve_backend("fake:manila", seed=2, initial_layout=[4, 3, 2, 1])
    kernel = QuantumKernel(fm, sampler=QMLSampler(shots=None), pass_manager=rb.pass_manager)
    exact = QuantumKernel(fm)
    x, y = torch.randn(3, 4, generator=torch.Generator().manual_seed(0)), torch.randn(2, 4)
    assert torch.allclose(kernel(x, y).double(), exact(x, y).double(), atol=1e-5)


@pytest.mark.fake_backend
def test_evaluate_on_a_fake_device(checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("QISKIT_IBM_TOKEN", DUMMY_TOKEN)
    out = tmp_path / "eval"
    metrics = evaluate_checkpoint(checkpoint, "fake:manila", sampling=Sampling(SHOTS, seed=3), out_dir=out)
    saved = json.loads((out / "metrics.json").read_text())
    for key in ("accuracy", "exact_accuracy", "backend", "shots", "kernel_mean_abs_diff", "agreement", "estimate"):
        assert key in saved
    assert saved["backend"] == "fake:manila" and saved["device"] == "fake_manila" and saved["shots"] == SHOTS
    assert saved["tokens"] == 9 and saved["sentences"] == 2
    # the checkpoint's exact accuracy, recomputed independently through the trainer's evaluate
    from qk_lstm_qiskit.checkpoint import load_tagger
    from qk_lstm_qiskit.data.corpus import encode_corpus, make_batches, paper_corpus
    from qk_lstm_qiskit.tasks.tagging import evaluate

    model, words, tags, _ = load_tagger(checkpoint)
    batches = make_batches(encode_corpus(paper_corpus(), words, tags), 32)
    assert saved["exact_accuracy"] == pytest.approx(evaluate(model, batches)["accuracy"])
    # one job per time step of the batch of both sentences (5 and 4 tokens): a row of 4 gates·4 refs per sentence
    # still running, so 2 rows at steps 0-3 and 1 at step 4 (the padded step is not sent)
    records = _journal(out / "jobs.jsonl")
    submitted = [r for r in records if r["event"] == "submitted"]
    assert len(submitted) == 5 == saved["jobs_submitted"] == saved["estimate"]["jobs"]
    assert [r["num_bindings"] for r in submitted] == [32, 32, 32, 32, 16]
    assert all(r["shots"] == SHOTS and r["backend"] == "fake_manila" for r in submitted)
    assert saved["kernel_values"] == saved["estimate"]["circuits"] == (5 + 4) * 16
    # the device noise moves kernels by a few percent: the mean shift is small but not zero
    assert 0.0 < saved["kernel_mean_abs_diff"] < 0.15
    # tokens tagged alike are right or wrong alike: the accuracies differ by at most the disagreement
    assert abs(saved["accuracy"] - saved["exact_accuracy"]) <= 1 - saved["agreement"] + 1e-12
    assert metrics["out_dir"] == str(out)
    for path in (p for p in out.rglob("*") if p.is_file()):  # the token in the environment reached no file
        assert DUMMY_TOKEN.encode() not in path.read_bytes()


@pytest.mark.fake_backend
def test_dry_run_submits_and_writes_nothing(checkpoint, tmp_path):
    result = evaluate_checkpoint(checkpoint, "fake:manila", sampling=Sampling(SHOTS), out_dir=tmp_path / "dry",
                                 budget=Budget(dry_run=True))
    assert result["dry_run"] and not (tmp_path / "dry").exists()
    assert result["estimate"]["circuits"] == 144 and result["estimate"]["jobs"] == 5  # 9 tokens x 16, 5 steps
    assert "T_QPU ≈ J·t_job" in result["estimate_summary"]


@pytest.mark.fake_backend
def test_budget_refuses_before_any_submission(checkpoint, tmp_path):
    with pytest.raises(QKLSTMError, match=r"needs ≈ [\d.,]+ QPU seconds on fake:manila .* over max_qpu_seconds=1"):
        evaluate_checkpoint(checkpoint, "fake:manila", sampling=Sampling(SHOTS), out_dir=tmp_path / "b",
                            budget=Budget(max_qpu_seconds=1))
    assert not (tmp_path / "b" / "jobs.jsonl").exists()


@pytest.mark.fake_backend
def test_existing_journal_needs_resume(checkpoint, tmp_path):
    (tmp_path / "jobs.jsonl").write_text("")
    with pytest.raises(ValueError, match="holding jobs.jsonl; pass --resume to continue it"):
        evaluate_checkpoint(checkpoint, "fake:manila", sampling=Sampling(SHOTS), out_dir=tmp_path)


@pytest.mark.fake_backend
def test_interrupted_evaluate_resumes_by_job_id(checkpoint, tmp_path):
    registry = JobRegistry()
    rb, _ = ibm_standin(registry, interrupt_at=2)
    out = tmp_path / "ibm"
    with pytest.raises(KeyboardInterrupt):
        evaluate_checkpoint(checkpoint, resolved=rb, out_dir=out)
    first = [r["job_id"] for r in _journal(out / "jobs.jsonl") if r["event"] == "submitted"]
    assert len(first) == 3  # job 2 was submitted and journaled, then the wait was interrupted

    rb, sampler = ibm_standin(registry)
    metrics = evaluate_checkpoint(checkpoint, resolved=rb, out_dir=out, resume=True)
    assert (metrics["jobs_resumed"], metrics["jobs_submitted"]) == (3, 2)
    assert type(sampler).runs == 2  # nothing paid twice
    submitted = [r["job_id"] for r in _journal(out / "jobs.jsonl") if r["event"] == "submitted"]
    assert submitted[:3] == first and len(submitted) == 5

    clean = evaluate_checkpoint(checkpoint, resolved=ibm_standin(JobRegistry())[0], out_dir=tmp_path / "clean")
    for key in ("accuracy", "kernel_mean_abs_diff", "kernel_max_abs_diff"):
        assert metrics[key] == clean[key]  # same seeded jobs, same numbers


@pytest.mark.fake_backend
def test_cli_evaluate_leaves_no_trace_of_the_token(checkpoint, tmp_path, monkeypatch, capsys, caplog):
    """A dummy token in the environment appears in no output, log, journal, metrics or checkpoint."""
    import qiskit_ibm_runtime

    from qk_lstm_qiskit.hardware.backends import fake_backend

    class Service:  # what QiskitRuntimeService would be, with the token read from the environment
        def __init__(self, **kwargs):
            pass

        def backend(self, name):
            return fake_backend("manila")

        def job(self, job_id):
            raise KeyError(job_id)

    monkeypatch.setenv("QISKIT_IBM_TOKEN", DUMMY_TOKEN)
    monkeypatch.setattr(qiskit_ibm_runtime, "QiskitRuntimeService", Service)
    caplog.set_level(logging.DEBUG)
    out = tmp_path / "ibm"
    code = main(["-v", "evaluate", "--checkpoint", str(checkpoint), "--backend", "ibm:ibm_manila", "--shots", "64",
                 "--out", str(out), "--no-progress"])
    assert code == 0
    captured = capsys.readouterr()
    assert "accuracy on ibm:ibm_manila (64 shots)" in captured.out and "QPU seconds" in captured.out
    assert {"metrics.json", "jobs.jsonl"} <= {p.name for p in out.iterdir()}
    texts = [captured.out, captured.err, caplog.text, checkpoint.read_bytes().decode("latin-1")]
    texts += [p.read_bytes().decode("latin-1") for p in out.rglob("*") if p.is_file()]  # results/ too
    assert all(DUMMY_TOKEN not in text for text in texts)


def test_cli_estimate_and_dry_run(checkpoint, capsys):
    assert main(["estimate", "--checkpoint", str(checkpoint), "--backend", "aer", "--shots", "100"]) == 0
    text = capsys.readouterr().out
    assert "circuits (bindings): 144" in text and "QPU seconds: 0 (simulator)" in text
    assert "padded steps not sent (9 of 10 input rows)" in text
    assert main(["estimate", "--checkpoint", str(checkpoint), "--backend", "fake:nope"]) == 2
    assert "unknown fake device 'nope'" in capsys.readouterr().err


@pytest.mark.fake_backend
def test_estimate_of_training_counts_parameter_shifts(checkpoint):
    est = estimate_checkpoint(checkpoint, "fake:manila", sampling=Sampling(100), training=True, epochs=2)
    # references fixed → only the 8 x-angles are shifted: 16 circuits per forward binding
    assert est.shift_parameters == 8
    assert est.forward_circuits == 2 * 160 and est.backward_circuits == 16 * 2 * 160
    assert est.jobs == 2 * 5 * 2


def test_default_eval_dir(tmp_path):
    assert default_eval_dir(tmp_path / "model.pt", "fake:manila") == tmp_path.resolve() / "eval-fake-manila"


def test_non_sampler_backend_is_refused(checkpoint):
    with pytest.raises(ValueError, match="expected a sampler backend .* got 'exact'"):
        evaluate_checkpoint(checkpoint, "exact")


def test_training_folder_is_never_overwritten(checkpoint):
    before = (checkpoint.parent / "metrics.json").read_bytes()
    with pytest.raises(ValueError, match=r"holding metrics.json; pass --resume to continue it or choose another folder"):
        evaluate_checkpoint(checkpoint, "aer", sampling=Sampling(SHOTS), out_dir=checkpoint.parent)
    assert (checkpoint.parent / "metrics.json").read_bytes() == before
    assert not (checkpoint.parent / "jobs.jsonl").exists()


def test_an_exact_sampler_reproduces_the_exact_executor(checkpoint, tmp_path):
    """With exact probabilities the backend path must agree with the statevector path: this
    checks the kernel comparison itself (hooks, exact reference, accuracy bookkeeping)."""
    from qiskit_machine_learning.primitives import QMLSampler

    rb = ResolvedBackend(name="qml-exact", kind="aer", sampler=QMLSampler(shots=None))
    metrics = evaluate_checkpoint(checkpoint, resolved=rb, out_dir=tmp_path / "qml")
    assert metrics["kernel_values"] == 144
    assert metrics["kernel_mean_abs_diff"] < 1e-6  # float32 through TorchConnector
    assert metrics["accuracy"] == metrics["exact_accuracy"] and metrics["agreement"] == 1.0


def test_resume_on_a_local_simulator_replays_every_finished_job(checkpoint, tmp_path):
    out = tmp_path / "aer"
    first = evaluate_checkpoint(checkpoint, "aer", sampling=Sampling(SHOTS, seed=1), out_dir=out)
    (out / "metrics.json").unlink()  # as if the run had died before writing its metrics
    again = evaluate_checkpoint(checkpoint, "aer", sampling=Sampling(SHOTS, seed=7), out_dir=out, resume=True)
    assert (again["jobs_submitted"], again["jobs_resumed"]) == (0, 5)  # nothing paid twice
    for key in ("accuracy", "kernel_mean_abs_diff", "kernel_max_abs_diff"):  # the first run's shots, not seed 7's
        assert again[key] == first[key]
    assert len(list((out / "results").glob("batch-0-*.npz"))) == 5


@pytest.mark.parametrize("name", ["tomography", "shadows"])
def test_a_measured_state_fidelity_is_sent_to_the_estimator_run(checkpoint, tmp_path, name):
    """Priced per input row and readout-calibrated first, a measured-state estimator runs with --estimator; the
    per-value engine refuses it in one line (its estimate would count no circuit) before any folder is made."""
    with pytest.raises(ValueError, match=rf"^evaluate: expected a fidelity priced per kernel value .* --estimator {name}\), "
                                         rf"got '{name}'$"):
        evaluate_checkpoint(checkpoint, "aer", sampling=Sampling(SHOTS, fidelity=name), out_dir=tmp_path / "x")
    with pytest.raises(ValueError, match="expected a fidelity priced per kernel value"):
        estimate_checkpoint(checkpoint, "fake:manila", sampling=Sampling(SHOTS, fidelity=name))
    assert not (tmp_path / "x").exists()
