"""Job journal: ids written before waiting, resume by job id without resubmitting, bounded retries."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.primitives import BaseSamplerV2, StatevectorSampler

from qk_lstm_qiskit.errors import QKLSTMError
from qk_lstm_qiskit.hardware.journal import JournaledSampler, RunJournal, pubs_fingerprint


def _circuit() -> QuantumCircuit:
    theta = Parameter("θ")
    circuit = QuantumCircuit(1)
    circuit.ry(theta, 0)
    circuit.measure_all()
    return circuit


PUBS = [(_circuit(), np.array([[0.0], [np.pi]]), 64)]


class _Job:
    """A cloud job stand-in: fails ``failures`` times, or never finishes with ``hang``."""

    def __init__(self, result=None, *, error: Exception | None = None, interrupt: bool = False, hang: bool = False):
        self._id = str(uuid.uuid4())
        self._result, self._error, self._interrupt, self._hang = result, error, interrupt, hang
        self.cancelled_calls = 0

    def job_id(self):
        return self._id

    def in_final_state(self):
        return not self._hang

    def status(self):
        return "QUEUED" if self._hang else ("ERROR" if self._error else "DONE")

    def done(self):
        return self.status() == "DONE"

    def running(self):
        return False

    def cancelled(self):
        return self.cancelled_calls > 0

    def cancel(self):
        self.cancelled_calls += 1

    def result(self):
        if self._interrupt:
            self._interrupt = False
            raise KeyboardInterrupt
        if self._error is not None:
            raise self._error
        return self._result


class _Cloud(BaseSamplerV2):
    """Runs PUBs exactly on a statevector sampler; keeps every job so ``job(id)`` finds it again.

    ``plan`` lists per submission: ``"ok"``, ``"fail"``, ``"interrupt"`` or ``"hang"``.
    """

    def __init__(self, plan=()):
        self.inner = StatevectorSampler(seed=1)
        self.plan = list(plan)
        self.jobs: dict[str, _Job] = {}
        self.runs = 0

    def run(self, pubs, *, shots=None):
        self.runs += 1
        kind = self.plan.pop(0) if self.plan else "ok"
        result = self.inner.run(pubs, shots=shots).result()
        job = _Job(result, error=RuntimeError("Job failed: 1517") if kind == "fail" else None,
                   interrupt=kind == "interrupt", hang=kind == "hang")
        self.jobs[job.job_id()] = job
        return job

    def job(self, job_id):  # the service side
        return self.jobs[job_id]


class _NoSubmit(BaseSamplerV2):
    def run(self, pubs, *, shots=None):
        raise AssertionError("a resumed call was submitted again")


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_job_id_is_journaled_before_waiting(tmp_path):
    cloud = _Cloud()
    sampler = JournaledSampler(cloud, tmp_path / "jobs.jsonl", backend_name="fake_test")
    job = sampler.run(PUBS)
    (record,) = _lines(tmp_path / "jobs.jsonl")  # written by run(), before result()
    assert record["event"] == "submitted" and record["index"] == 0 and record["attempt"] == 0
    assert record["job_id"] == job.job_id() and record["backend"] == "fake_test"
    assert record["num_pubs"] == 1 and record["shots"] == 64 and record["num_bindings"] == 2
    assert set(record) >= {"time", "fingerprint"}
    counts = job.result()[0].data.meas
    assert counts.get_counts(0) == {"0": 64} and counts.get_counts(1) == {"1": 64}
    assert _lines(tmp_path / "jobs.jsonl")[-1]["event"] == "done"


def test_interrupted_run_resumes_by_job_id_without_resubmitting(tmp_path):
    path = tmp_path / "jobs.jsonl"
    cloud = _Cloud(plan=["ok", "interrupt"])
    first = JournaledSampler(cloud, path)
    expected = first.run(PUBS).result()
    second_pubs = [(_circuit(), np.array([[0.5]]), 32)]
    with pytest.raises(KeyboardInterrupt):
        first.run(second_pubs).result()  # the process "dies" waiting for call 1
    ids = RunJournal(path).job_ids()
    assert len(ids) == 2 and cloud.runs == 2

    resumed = JournaledSampler(_NoSubmit(), path, service=cloud, resume=True)
    again = resumed.run(PUBS).result()
    assert again is expected  # the very result of the recorded job
    second = resumed.run(second_pubs).result()
    assert second is cloud.jobs[ids[1]].result()
    assert (resumed.fetched, resumed.submitted) == (2, 0)
    # calls beyond the journal are submitted as usual
    fresh = JournaledSampler(cloud, path, service=cloud, resume=True)
    fresh.calls = 2
    fresh.run(PUBS).result()
    assert fresh.submitted == 1 and len(RunJournal(path).job_ids()) == 3


def test_resume_refuses_different_circuits(tmp_path):
    path = tmp_path / "jobs.jsonl"
    cloud = _Cloud()
    JournaledSampler(cloud, path).run(PUBS)
    other = [(_circuit(), np.array([[0.1], [np.pi]]), 64)]
    resumed = JournaledSampler(_NoSubmit(), path, service=cloud, resume=True)
    with pytest.raises(QKLSTMError, match=r"call 0 does not match job .* \(different circuits or parameter values\)"):
        resumed.run(other)


def test_resume_needs_a_service(tmp_path):
    with pytest.raises(ValueError, match=r"expected a service with job\(job_id\) or a results_dir to resume, got "
                                         r"service=NoneType and results_dir=None"):
        JournaledSampler(_Cloud(), tmp_path / "jobs.jsonl", resume=True)


def test_failed_job_is_retried_with_exponential_backoff(tmp_path):
    sleeps = []
    cloud = _Cloud(plan=["fail", "fail", "ok"])
    sampler = JournaledSampler(cloud, tmp_path / "jobs.jsonl", max_retries=2, backoff_seconds=10, sleep=sleeps.append)
    result = sampler.run(PUBS).result()
    assert result[0].data.meas.get_counts(1) == {"1": 64}
    assert sleeps == [10, 20]
    events = [(r["event"], r.get("attempt")) for r in _lines(tmp_path / "jobs.jsonl")]
    assert events == [("submitted", 0), ("failed", None), ("submitted", 1), ("failed", None), ("submitted", 2), ("done", None)]


def test_retries_are_bounded_and_the_error_names_the_job(tmp_path):
    cloud = _Cloud(plan=["fail", "fail"])
    sampler = JournaledSampler(cloud, tmp_path / "jobs.jsonl", max_retries=1, backoff_seconds=0, sleep=lambda s: None)
    job = sampler.run(PUBS)
    with pytest.raises(QKLSTMError, match=r"job [0-9a-f-]{36} \(call 0\) failed after 2 attempt\(s\): RuntimeError: Job failed: 1517") as info:
        job.result()
    last = RunJournal(tmp_path / "jobs.jsonl").job_ids()[-1]
    assert last in str(info.value)
    assert isinstance(info.value.__cause__, RuntimeError)


def test_timed_out_job_is_cancelled_and_retried(tmp_path):
    now = [0.0]

    def sleep(seconds):
        now[0] += seconds

    cloud = _Cloud(plan=["hang", "ok"])
    sampler = JournaledSampler(cloud, tmp_path / "jobs.jsonl", timeout_seconds=60, poll_seconds=5,
                               backoff_seconds=1, sleep=sleep, clock=lambda: now[0])
    job = sampler.run(PUBS)
    hung = cloud.jobs[job.job_id()]
    assert job.result()[0].data.meas.get_counts(0) == {"0": 64}
    assert hung.cancelled_calls == 1
    failed = [r for r in _lines(tmp_path / "jobs.jsonl") if r["event"] == "failed"]
    assert failed[0]["error"] == "TimeoutError: no result after 60 s"


def test_resumed_failed_job_is_resubmitted(tmp_path):
    path = tmp_path / "jobs.jsonl"
    cloud = _Cloud(plan=["fail"])
    with pytest.raises(QKLSTMError):
        JournaledSampler(cloud, path, max_retries=0).run(PUBS).result()
    resumed = JournaledSampler(cloud, path, service=cloud, resume=True)
    assert resumed.run(PUBS).result()[0].data.meas.get_counts(0) == {"0": 64}
    assert resumed.submitted == 1 and resumed.fetched == 0


def test_torn_last_line_is_dropped(tmp_path):
    path = tmp_path / "jobs.jsonl"
    path.write_text('{"event": "submitted", "index": 0, "job_id": "a"}\n{"event": "subm')
    journal = RunJournal(path)
    assert journal.job_ids() == ["a"]
    journal.append({"event": "done", "index": 0, "job_id": "a"})
    assert [r["event"] for r in _lines(path)] == ["submitted", "done"]


def test_corrupt_journal_is_an_error(tmp_path):
    path = tmp_path / "jobs.jsonl"
    path.write_text('not json\n{"event": "done"}\n')
    with pytest.raises(QKLSTMError, match=r"expected JSON lines in .*jobs.jsonl, got line 1: 'not json'"):
        RunJournal(path)


def test_fingerprint_depends_on_values_and_shots():
    from qiskit.primitives.containers.sampler_pub import SamplerPub

    base = pubs_fingerprint([SamplerPub.coerce(PUBS[0])])
    assert base == pubs_fingerprint([SamplerPub.coerce((_circuit(), np.array([[0.0], [np.pi]]), 64))])
    assert base != pubs_fingerprint([SamplerPub.coerce((_circuit(), np.array([[0.0], [np.pi]]), 65))])
    assert base != pubs_fingerprint([SamplerPub.coerce((_circuit(), np.array([[1e-6], [np.pi]]), 64))])


@pytest.mark.fake_backend
def test_local_testing_mode_end_to_end(tmp_path):
    """Journal around the Runtime sampler on a fake device: ISA circuit, ids journaled, P(1) ≈ 1."""
    from qk_lstm_qiskit.hardware.backends import resolve_backend

    rb = resolve_backend("fake:manila", shots=400, seed=11)
    isa = rb.pass_manager.run(_circuit())
    sampler = JournaledSampler(rb.sampler, tmp_path / "jobs.jsonl")
    assert sampler.backend_name == "fake_manila"
    values = np.array([[0.0], [np.pi]])
    result = sampler.run([(isa, values)]).result()
    meas = result[0].data.meas
    p0 = meas.get_counts(0).get("0", 0) / 400
    p1 = meas.get_counts(1).get("1", 0) / 400
    # readout + gate error of manila's qubit is a few percent: allow 5 standard errors plus 5 %
    se = np.sqrt(0.25 / 400)
    assert p0 > 1 - 0.05 - 5 * se and p1 > 1 - 0.05 - 5 * se
    records = _lines(tmp_path / "jobs.jsonl")
    assert [r["event"] for r in records] == ["submitted", "done"]
    assert records[0]["job_id"] == records[1]["job_id"] and records[0]["backend"] == "fake_manila"


def test_job_errors_in_the_journal_mask_the_token(tmp_path, monkeypatch):
    token = "dummy-token-abc-123456"
    monkeypatch.setenv("QISKIT_IBM_TOKEN", token)

    class Leaky(_Cloud):
        def run(self, pubs, *, shots=None):
            job = _Job(error=RuntimeError(f"401: token {token} expired"))
            self.jobs[job.job_id()] = job
            return job

    sampler = JournaledSampler(Leaky(), tmp_path / "jobs.jsonl", max_retries=0)
    with pytest.raises(QKLSTMError, match=r"RuntimeError: 401: token \*\*\* expired") as info:
        sampler.run(PUBS).result()
    assert token not in str(info.value)
    assert token not in (tmp_path / "jobs.jsonl").read_text()


def test_streams_number_calls_on_their_own_and_resume_in_any_order(tmp_path):
    path = tmp_path / "jobs.jsonl"
    cloud = _Cloud()
    first = JournaledSampler(cloud, path)
    pubs_a, pubs_b = [(_circuit(), [[0.1]], 64)], [(_circuit(), [[0.2]], 64)]
    with first.stream("batch-0"):
        first.run(pubs_a).result()
    with first.stream("batch-1"):
        first.run(pubs_b).result()
    with first.stream("batch-0"):
        first.run(pubs_b).result()
    records = [r for r in _lines(path) if r["event"] == "submitted"]
    assert [(r["stream"], r["index"]) for r in records] == [("batch-0", 0), ("batch-1", 0), ("batch-0", 1)]

    resumed = JournaledSampler(_NoSubmit(), path, service=cloud, resume=True)
    with resumed.stream("batch-1"):  # the other order than the first run
        resumed.run(pubs_b).result()
    with resumed.stream("batch-0"):
        resumed.run(pubs_a).result()
        resumed.run(pubs_b).result()
    assert resumed.fetched == 3 and resumed.submitted == 0 and cloud.runs == 3


def test_calls_above_the_job_limit_are_split_and_joined(tmp_path):
    path = tmp_path / "jobs.jsonl"
    cloud = _Cloud()
    sampler = JournaledSampler(cloud, path, max_circuits_per_job=3)
    values = np.linspace(0, np.pi, 5)[:, None]  # 5 bindings, then 2 more in a second PUB
    pubs = [(_circuit(), values, 200), (_circuit(), np.array([[0.0], [np.pi]]), 200)]
    result = sampler.run(pubs).result()
    submitted = [r for r in _lines(path) if r["event"] == "submitted"]
    assert [r["num_bindings"] for r in submitted] == [3, 3, 1] and cloud.runs == 3
    assert result[0].data.meas.shape == (5,) and result[1].data.meas.shape == (2,)
    ones = [result[0].data.meas.get_counts(i).get("1", 0) / 200 for i in range(5)]
    expected = np.sin(values[:, 0] / 2) ** 2
    assert np.all(np.abs(np.array(ones) - expected) <= 5 * np.sqrt(expected * (1 - expected) / 200) + 1e-9)
    assert result[1].data.meas.get_counts(0) == {"0": 200} and result[1].data.meas.get_counts(1) == {"1": 200}
    resumed = JournaledSampler(_NoSubmit(), path, service=cloud, resume=True, max_circuits_per_job=3)
    again = resumed.run(pubs).result()
    assert resumed.fetched == 3
    assert np.array_equal(again[0].data.meas.array, result[0].data.meas.array)
    with pytest.raises(ValueError, match="expected max_circuits_per_job >= 1, got 0"):
        JournaledSampler(cloud, path, max_circuits_per_job=0)


def test_a_stopped_sampler_submits_nothing(tmp_path):
    cloud = _Cloud()
    sampler = JournaledSampler(cloud, tmp_path / "jobs.jsonl")
    sampler.stop()
    with pytest.raises(QKLSTMError, match="stopped .* no further jobs are submitted"):
        sampler.run(PUBS)
    assert cloud.runs == 0
