"""Finished jobs' results on disk: a resumed local run replays them bit for bit and pays for no job twice."""

from __future__ import annotations

import json
import logging
import threading

import numpy as np
import pytest
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
from qiskit.circuit import Parameter
from qiskit.primitives import BitArray, DataBin, PrimitiveResult, SamplerPubResult, StatevectorSampler
from qiskit_aer.primitives import SamplerV2 as AerSampler

from qk_lstm_qiskit.errors import QKLSTMError
from qk_lstm_qiskit.hardware.journal import JournaledSampler
from qk_lstm_qiskit.hardware.result_store import read_result, write_result

from _samplers import interrupting_sampler

SHOTS = 64  # two qubits at θ = π/2: two runs agree on every shot with probability 4**-64


def _circuit() -> QuantumCircuit:
    theta = Parameter("θ")
    circuit = QuantumCircuit(2)
    circuit.ry(theta, 0)
    circuit.h(1)
    circuit.measure_all()
    return circuit


def _pubs(k: int) -> list:
    """Call ``k``'s PUBs: distinct values per call, so fingerprints tell calls apart."""
    return [(_circuit(), np.array([[np.pi / 2 + 0.01 * k], [np.pi / 3]]), SHOTS)]


def _local(seed: int, interrupt_at: int | None = None):
    """A local sampler (no service): fresh random bits on every run; counts runs; ``interrupt_at`` one wait."""
    return interrupting_sampler(StatevectorSampler(seed=np.random.default_rng(seed)), interrupt_at=interrupt_at)


class _NoService:
    def job(self, job_id):
        raise AssertionError(f"job {job_id} was fetched although its result is stored")


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _arrays(result) -> list[dict[str, np.ndarray]]:
    return [{name: np.array(bits.array) for name, bits in pub.data.items()} for pub in result]


def _same(a, b) -> bool:
    left, right = _arrays(a), _arrays(b)
    return len(left) == len(right) and all(
        x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x) for x, y in zip(left, right))


def _interrupted_run(tmp_path, n: int, k: int, **options):
    """Calls ``0..k`` of ``n`` through a journaled local sampler; the wait for call ``k`` is interrupted."""
    local = _local(seed=7, interrupt_at=k)
    sampler = JournaledSampler(local, tmp_path / "jobs.jsonl", results_dir=tmp_path / "results", **options)
    results = [sampler.run(_pubs(i)).result() for i in range(k)]
    with pytest.raises(KeyboardInterrupt):
        sampler.run(_pubs(k)).result()
    assert local.runs == k + 1
    return results


def test_store_round_trips_two_registers_and_a_2d_sweep(tmp_path):
    a, b = Parameter("a"), Parameter("b")
    alpha, beta = ClassicalRegister(2, "alpha"), ClassicalRegister(1, "beta")
    circuit = QuantumCircuit(QuantumRegister(3), alpha, beta)
    circuit.ry(a, 0)
    circuit.rx(b, 1)
    circuit.h(2)
    circuit.measure([0, 1], alpha)
    circuit.measure(2, beta[0])
    values = np.random.default_rng(0).uniform(0, np.pi, (2, 3, 2))  # a 2-D sweep of (a, b) bindings
    result = AerSampler(default_shots=50, seed=3).run([(circuit, values), (circuit, values[0, 0])]).result()
    path = tmp_path / "main-0.npz"
    write_result(result, path, job_id="job-1", fingerprint="f" * 64)

    stored = read_result(path)
    assert (stored.job_id, stored.fingerprint) == ("job-1", "f" * 64)
    assert len(stored.result) == 2
    for original, again in zip(result, stored.result):
        assert list(again.data.keys()) == ["alpha", "beta"] and again.data.shape == original.data.shape
        for name in ("alpha", "beta"):
            assert again.data[name].num_bits == original.data[name].num_bits
            assert again.data[name].array.dtype == np.uint8
            assert np.array_equal(again.data[name].array, original.data[name].array)
        assert again.metadata["shots"] == 50
        assert again.metadata["simulator_metadata"] == original.metadata["simulator_metadata"]
    assert stored.result[0].data.shape == (2, 3) and stored.result[0].data.alpha.num_bits == 2
    assert stored.result[1].data.shape == () and stored.result[1].data.beta.num_bits == 1
    assert stored.result[0].data.alpha.get_counts((1, 2)) == result[0].data.alpha.get_counts((1, 2))


def test_metadata_that_is_not_json_is_dropped(tmp_path):
    bits = BitArray(np.array([[1], [0], [3]], dtype=np.uint8), 2)
    result = PrimitiveResult([SamplerPubResult(DataBin(meas=bits), metadata={"shots": 3, "spans": object()})],
                             metadata={"version": 2, "when": object()})
    write_result(result, tmp_path / "r.npz", job_id="j", fingerprint="x")
    again = read_result(tmp_path / "r.npz").result
    assert again[0].metadata == {"shots": 3} and again.metadata == {"version": 2}
    assert again[0].data.meas.get_counts() == {"01": 1, "00": 1, "11": 1}


def test_resumed_local_run_replays_stored_results_and_reruns_only_the_rest(tmp_path, caplog):
    n, k = 5, 3
    first = _interrupted_run(tmp_path, n, k)
    done = [r for r in _lines(tmp_path / "jobs.jsonl") if r["event"] == "done"]
    assert [r["result"] for r in done] == ["main-0.npz", "main-1.npz", "main-2.npz"]
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["main-0.npz", "main-1.npz", "main-2.npz"]

    local = _local(seed=8)
    resumed = JournaledSampler(local, tmp_path / "jobs.jsonl", resume=True, results_dir=tmp_path / "results")
    caplog.clear()  # the interrupted run's own warning
    with caplog.at_level(logging.WARNING, logger="qk_lstm_qiskit.hardware.journal"):
        again = [resumed.run(_pubs(i)).result() for i in range(n)]
    assert local.runs == n - k  # call k (its job died with the process) and the calls never made
    assert (resumed.fetched, resumed.replayed, resumed.submitted) == (k, k, n - k)
    assert all(_same(a, b) for a, b in zip(first, again[:k]))
    rerun = _local(seed=8).run(_pubs(0)).result()  # what a rerun of call 0 would have given instead
    assert not _same(rerun, first[0])
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and f"call {k}: job" in warnings[0] and "submitting it again" in warnings[0]
    resubmitted = [r for r in _lines(tmp_path / "jobs.jsonl") if r["event"] == "submitted" and r["index"] == k]
    assert [r["attempt"] for r in resubmitted] == [0, 1]

    # a second resume replays every call, now with a service that must not be asked
    idle = _local(seed=9)
    last = JournaledSampler(idle, tmp_path / "jobs.jsonl", resume=True, results_dir=tmp_path / "results",
                            service=_NoService())
    final = [last.run(_pubs(i)).result() for i in range(n)]
    assert idle.runs == 0 and (last.fetched, last.replayed, last.submitted) == (n, n, 0)
    assert all(_same(a, b) for a, b in zip(again, final))


def test_streams_replay_in_another_thread_order(tmp_path):
    path, results = tmp_path / "jobs.jsonl", tmp_path / "results"
    local = _local(seed=1)
    first = JournaledSampler(local, path, results_dir=results)
    got: dict[tuple[str, int], PrimitiveResult] = {}

    def work(sampler, name, offset):
        with sampler.stream(name):
            for i in range(2):
                got[(name, i)] = sampler.run(_pubs(offset + i)).result()

    threads = [threading.Thread(target=work, args=(first, f"batch-{b}", 10 * b)) for b in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert local.runs == 6
    assert {p.name for p in results.iterdir()} == {f"batch-{b}-{i}.npz" for b in range(3) for i in range(2)}
    expected, got = dict(got), {}

    idle = _local(seed=2)
    resumed = JournaledSampler(idle, path, resume=True, results_dir=results)
    threads = [threading.Thread(target=work, args=(resumed, f"batch-{b}", 10 * b)) for b in (2, 0, 1)]
    for t in threads:  # another order, one at a time
        t.start()
        t.join()
    assert idle.runs == 0 and resumed.replayed == 6
    assert all(_same(expected[key], got[key]) for key in expected)


def test_split_calls_store_each_job_and_replay_the_joined_result(tmp_path):
    path, results = tmp_path / "jobs.jsonl", tmp_path / "results"
    values = np.linspace(0, np.pi, 5)[:, None]
    pubs = [(_circuit(), values, SHOTS), (_circuit(), np.array([[0.0], [np.pi]]), SHOTS)]  # 7 bindings, 3 jobs
    local = _local(seed=3)
    first = JournaledSampler(local, path, results_dir=results, max_circuits_per_job=3).run(pubs).result()
    assert local.runs == 3
    assert sorted(p.name for p in results.iterdir()) == ["main-0.npz", "main-1.npz", "main-2.npz"]
    assert read_result(results / "main-1.npz").result[0].data.meas.shape == (2,)  # rows 3-4 of the first PUB

    idle = _local(seed=4)
    resumed = JournaledSampler(idle, path, resume=True, results_dir=results, max_circuits_per_job=3)
    again = resumed.run(pubs).result()
    assert idle.runs == 0 and resumed.replayed == 3
    assert again[0].data.meas.shape == (5,) and again[1].data.meas.shape == (2,)
    assert _same(first, again)
    assert again[1].data.meas.get_counts(1).keys() <= {"01", "11"}  # qubit 0 at θ = π is 1


def test_tampered_fingerprint_is_refused_in_one_line(tmp_path):
    _interrupted_run(tmp_path, 3, 2)
    path = tmp_path / "results" / "main-1.npz"
    stored = read_result(path)
    write_result(stored.result, path, job_id=stored.job_id, fingerprint="0" * 64)
    local = _local(seed=5)
    resumed = JournaledSampler(local, tmp_path / "jobs.jsonl", resume=True, results_dir=tmp_path / "results")
    resumed.run(_pubs(0)).result()
    with pytest.raises(QKLSTMError, match=r"call 1 does not match the result stored in .*main-1\.npz") as info:
        resumed.run(_pubs(1))
    assert "\n" not in str(info.value) and local.runs == 0


def test_corrupt_result_file_is_one_line_naming_it(tmp_path):
    _interrupted_run(tmp_path, 3, 2)
    path = tmp_path / "results" / "main-0.npz"
    path.write_bytes(path.read_bytes()[:40])  # truncated
    local = _local(seed=5)
    resumed = JournaledSampler(local, tmp_path / "jobs.jsonl", resume=True, results_dir=tmp_path / "results")
    with pytest.raises(QKLSTMError, match=r"cannot read the stored job result .*main-0\.npz \(BadZipFile: ") as info:
        resumed.run(_pubs(0))
    assert "\n" not in str(info.value) and local.runs == 0
    with pytest.raises(QKLSTMError, match=r"cannot read the stored job result .*other\.npz \(FileNotFoundError"):
        read_result(tmp_path / "other.npz")


def test_resume_with_a_service_fetches_jobs_without_a_stored_result(tmp_path):
    path = tmp_path / "jobs.jsonl"
    local = _local(seed=6)
    jobs = {}

    class Service:
        def job(self, job_id):
            return jobs[job_id]

    plain = JournaledSampler(local, path)  # no results_dir: nothing stored
    job = plain.run(_pubs(0))
    jobs[job.job_id()] = job
    first = job.result()
    resumed = JournaledSampler(_local(seed=7), path, resume=True, service=Service(), results_dir=tmp_path / "r")
    again = resumed.run(_pubs(0)).result()
    assert _same(first, again) and (resumed.fetched, resumed.replayed, resumed.submitted) == (1, 0, 0)
    assert (tmp_path / "r" / "main-0.npz").is_file()  # the fetched result is kept for next time
    assert _lines(path)[-1]["result"] == "main-0.npz"


def test_stream_names_must_be_file_name_safe_with_a_results_dir(tmp_path):
    sampler = JournaledSampler(_local(seed=0), tmp_path / "jobs.jsonl", results_dir=tmp_path / "r")
    for name in ("../x", "main", "a b"):
        with pytest.raises(ValueError, match=r"JournaledSampler.stream: expected a name of letters, digits"):
            with sampler.stream(name):
                pass


def test_a_missing_result_file_means_the_job_runs_again(tmp_path, caplog):
    first = _interrupted_run(tmp_path, 3, 2)
    (tmp_path / "results" / "main-1.npz").unlink()
    local = _local(seed=5)
    resumed = JournaledSampler(local, tmp_path / "jobs.jsonl", resume=True, results_dir=tmp_path / "results")
    with caplog.at_level(logging.WARNING, logger="qk_lstm_qiskit.hardware.journal"):
        again = [resumed.run(_pubs(i)).result() for i in range(2)]
    assert local.runs == 1 and (resumed.replayed, resumed.submitted) == (1, 1)
    assert _same(first[0], again[0]) and not _same(first[1], again[1])
    assert any("main-1.npz" in r.getMessage() and "is missing" in r.getMessage() for r in caplog.records)
    assert (tmp_path / "results" / "main-1.npz").is_file()  # stored again
