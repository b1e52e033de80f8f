"""Jobs are never lost: a JSON-lines journal of every submitted job, and a sampler that resumes from it.

On hardware a job can wait in a queue for hours and the process that submitted it can die in
the meantime. :class:`JournaledSampler` wraps any ``BaseSamplerV2`` (it is what the kernels
call) and appends ``{"event": "submitted", "index": k, "job_id": …}`` to the run's journal
*before* anyone waits on the result of its ``k``-th call. A rerun with ``resume=True`` replays
call ``k`` from its stored result (below) or by fetching the recorded job with
``service.job(job_id)`` instead of submitting it again; calls are identified by their order, and
a fingerprint of the PUBs (circuit and parameter values) guards against replaying a job for
different circuits.

Calls made concurrently (independent sentence batches in threads) are told apart by a
*stream*: ``with sampler.stream("batch-3"): …`` numbers that thread's calls ``0, 1, …`` on
their own, so a resumed run matches calls to jobs whatever order the threads ran in. A call
with more bindings than ``max_circuits_per_job`` is split into several jobs (consecutive
calls of its stream, submitted together) whose results are joined again.

With ``results_dir`` every finished job's result is also kept on disk, in
``results_dir/<stream or "main">-<index>.npz`` (see :mod:`~qk_lstm_qiskit.hardware.result_store`,
with the job id and the PUBs' fingerprint), so a resumed run replays a finished call from its
file: no service call, no submission — the only way to resume on local backends (Aer, Runtime
local testing mode), whose jobs die with their process. A recorded call without a stored result
is fetched by id when there is a service, else submitted again.

A job whose result fails or times out is resubmitted up to ``max_retries`` times, waiting
``backoff_seconds · 2**attempt`` in between; then :class:`~qk_lstm_qiskit.errors.QKLSTMError`
names the job id.

Journal lines (one JSON object each, appended and fsynced)::

    {"event": "submitted", "index": 0, "attempt": 0, "job_id": "…", "backend": "fake_manila",
     "num_pubs": 1, "shots": 4096, "fingerprint": "…", "time": "2026-11-21T05:40:00Z"}
    (plus "stream": "batch-3" for calls made inside a stream)
    {"event": "done", "index": 0, "job_id": "…", "time": "…"}
    (plus "result": "main-0.npz" with a results_dir, "usage_seconds": … for Runtime jobs)
    {"event": "failed", "index": 0, "job_id": "…", "error": "…", "time": "…"}
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
from qiskit.primitives import BaseSamplerV2, BitArray, DataBin, PrimitiveResult, SamplerPubResult
from qiskit.primitives.base.base_primitive_job import BasePrimitiveJob
from qiskit.primitives.containers.sampler_pub import SamplerPub
from qiskit.providers import JobStatus

from .backends import describe_error  # one line, IBM token masked
from ..errors import QKLSTMError
from ..rundir import write_text_atomic
from ..validation import check_int
from .result_store import read_result, write_result

__all__ = ["JournaledSampler", "RunJournal", "WrappedJob", "pubs_fingerprint"]

logger = logging.getLogger(__name__)

JOURNAL_NAME = "jobs.jsonl"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


_STREAM_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def _result_name(index: int, stream: str | None) -> str:
    """The file of call ``index`` of ``stream`` in ``results_dir``: ``main-3.npz``, ``batch-0-3.npz``."""
    return f"{'main' if stream is None else stream}-{index}.npz"


def _usage(job) -> dict[str, float]:
    """``{"usage_seconds": …}`` when the job reports its QPU usage (Runtime jobs), else ``{}``."""
    try:
        usage = job.usage()
    except Exception:  # simulator jobs have no usage; a failed lookup must not fail the run
        return {}
    return {"usage_seconds": float(usage)} if isinstance(usage, (int, float)) else {}


def _stream(name: str | None) -> dict[str, str]:
    return {} if name is None else {"stream": name}


def _default_shots(sampler) -> int | None:
    """The shots a sampler uses for PUBs without their own (Runtime ``options.default_shots``, Aer ``default_shots``)."""
    for getter in (lambda: sampler.options.default_shots, lambda: sampler.default_shots):
        try:
            value = getter()
        except Exception:
            continue
        if isinstance(value, int):
            return value
    return None


def pubs_fingerprint(pubs: Iterable[SamplerPub]) -> str:
    """SHA-256 over each PUB's circuit shape, parameter names, values (12 decimals) and shots."""
    digest = hashlib.sha256()
    for pub in pubs:
        circuit = pub.circuit
        names = [p.name for p in circuit.parameters]
        digest.update(json.dumps([circuit.num_qubits, circuit.num_clbits, len(circuit.data), names, pub.shots]).encode())
        if names:
            values = np.round(np.asarray(pub.parameter_values.as_array(circuit.parameters), dtype=float), 12)
            digest.update(str(values.shape).encode())
            digest.update(np.ascontiguousarray(values + 0.0).tobytes())  # + 0.0 turns -0.0 into 0.0
    return digest.hexdigest()


class RunJournal:
    """Append-only JSON-lines record of jobs, ``path`` usually ``<out>/jobs.jsonl``.

    Args:
        path: the journal file (created with its folder on the first append).

    Raises:
        QKLSTMError: an existing journal has a line that is not a JSON object.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.records: list[dict[str, Any]] = []
        self._lock = threading.Lock()  # appends from concurrent batches
        lines = self.path.read_text(encoding="utf-8").splitlines() if self.path.exists() else []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                if number < len(lines):
                    raise QKLSTMError(
                        f"RunJournal: expected JSON lines in {self.path}, got line {number}: {line[:80]!r}"
                    ) from exc
                # A crash while writing the last line: drop the fragment so appends stay valid.
                logger.warning("journal %s: dropping a torn last line %d", self.path, number)
                write_text_atomic("".join(f"{kept}\n" for kept in lines[:-1]), self.path)
                break
            if not isinstance(record, dict):
                raise QKLSTMError(f"RunJournal: expected a JSON object on line {number} of {self.path}, got {line[:80]!r}")
            self.records.append(record)

    def append(self, record: dict[str, Any]) -> None:
        """Write one record and flush it to disk before returning."""
        record = {**record, "time": record.get("time", _now())}
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record, sort_keys=False) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            self.records.append(record)

    def latest_submission(self, index: int, stream: str | None = None) -> dict[str, Any] | None:
        """The last ``submitted`` record of call ``index`` of ``stream`` (default: no stream), or ``None``."""
        found = None
        for record in list(self.records):
            if record.get("event") == "submitted" and record.get("index") == index and record.get("stream") == stream:
                found = record
        return found

    def failed(self, job_id: str) -> bool:
        return any(r.get("event") == "failed" and r.get("job_id") == job_id for r in self.records)

    def stored_result(self, job_id: str) -> str | None:
        """The result file named by the last ``done`` record of ``job_id``, or ``None``."""
        found = None
        for record in list(self.records):
            if record.get("event") == "done" and record.get("job_id") == job_id and "result" in record:
                found = str(record["result"])
        return found

    def job_ids(self) -> list[str]:
        """Every submitted job id, in submission order."""
        return [r["job_id"] for r in self.records if r.get("event") == "submitted"]


class WrappedJob(BasePrimitiveJob):
    """A job around another one (``self._job``): status calls pass through; ``self._result`` caches the result."""

    def status(self):
        return self._job.status()

    def done(self) -> bool:
        return self._result is not None or bool(self._job.done())

    def running(self) -> bool:
        return bool(self._job.running())

    def cancelled(self) -> bool:
        return bool(self._job.cancelled())

    def in_final_state(self) -> bool:
        return self._result is not None or bool(self._job.in_final_state())

    def cancel(self):
        return self._job.cancel()


class _JournaledJob(WrappedJob):
    """The job of one :meth:`JournaledSampler.run` call: waits, retries, journals the outcome."""

    def __init__(self, owner: "JournaledSampler", index: int, pubs: list[SamplerPub], shots: int | None,
                 fingerprint: str, job, attempt: int, stream: str | None = None) -> None:
        super().__init__(job_id=str(job.job_id()))
        self._owner, self._index, self._pubs, self._shots, self._stream = owner, index, pubs, shots, stream
        self._fingerprint, self._job, self._attempt = fingerprint, job, attempt
        self._result = None

    def result(self):
        if self._result is not None:
            return self._result
        owner = self._owner
        retries = 0
        while True:
            job_id = str(self._job.job_id())
            try:
                result = owner._wait(self._job)
            except KeyboardInterrupt:
                logger.warning("interrupted while waiting for job %s (call %d); it is in %s: rerun with resume",
                               job_id, self._index, owner.journal.path)
                raise
            except Exception as exc:
                error = describe_error(exc)
                owner.journal.append({"event": "failed", "index": self._index, **_stream(self._stream),
                                      "job_id": job_id, "error": error})
                if retries >= owner.max_retries:
                    raise QKLSTMError(
                        f"JournaledSampler: job {job_id} (call {self._index}) failed after {retries + 1} attempt(s): {error}"
                    ) from exc
                delay = owner.backoff_seconds * 2**retries
                logger.warning("job %s (call %d) failed (%s); resubmitting in %.0f s", job_id, self._index, error, delay)
                owner._sleep(delay)
                retries += 1
                self._attempt += 1
                self._job = owner._submit(self._index, self._attempt, self._pubs, self._shots, self._fingerprint,
                                          self._stream)
                self._job_id = str(self._job.job_id())
                continue
            stored = owner._store(result, self._index, self._stream, job_id, self._fingerprint)
            owner.journal.append({"event": "done", "index": self._index, **_stream(self._stream), "job_id": job_id,
                                  **stored, **_usage(self._job)})
            self._result = result
            return result


class _StoredJob(BasePrimitiveJob):
    """A finished job replayed from its result file: ``result()`` returns the stored result."""

    def __init__(self, job_id: str, result: PrimitiveResult) -> None:
        super().__init__(job_id=job_id)
        self._result = result

    def result(self) -> PrimitiveResult:
        return self._result

    def status(self) -> JobStatus:
        return JobStatus.DONE

    def done(self) -> bool:
        return True

    def running(self) -> bool:
        return False

    def cancelled(self) -> bool:
        return False

    def in_final_state(self) -> bool:
        return True

    def cancel(self) -> None:
        return None


class JournaledSampler(BaseSamplerV2):
    """A ``BaseSamplerV2`` that journals every job it submits and can resume from the journal.

    Args:
        sampler: the sampler that really runs the PUBs.
        journal: a :class:`RunJournal` or a path to one.
        service: an object with ``job(job_id)`` (``QiskitRuntimeService``) to fetch jobs again.
        resume: replay the calls recorded in the journal: from their stored result when there is
            one, else by fetching the job from ``service``, else (local backends) by submitting
            it again. Needs ``service`` or ``results_dir``.
        results_dir: keep each finished job's result in ``results_dir/<stream or "main">-<index>.npz``
            (default ``None``: keep none). Stream names must then be file-name safe
            (letters, digits, ``_ . -``) and not ``main``.
        backend_name: recorded in each line (default: ``sampler.backend().name`` when available).
        max_retries: resubmissions of a failed or timed-out job (default 2).
        backoff_seconds: wait before the first resubmission, doubled each time (default 30).
        timeout_seconds: give up on a job after this long (default ``None``: wait for ever,
            as queues can hold jobs for hours); a timed-out job is cancelled and retried.
        poll_seconds: status polling interval while a timeout is set (default 5).
        shots: shots of PUBs that carry none (default ``None``: the wrapped sampler's default).
        max_circuits_per_job: split a call with more bindings into several jobs (default
            ``None``: never split; IBM devices report theirs as ``backend.max_circuits``).
        sleep, clock: injectable for tests (default ``time.sleep``, ``time.monotonic``).

    Counters: ``submitted`` counts jobs this process submitted (paid); ``fetched`` counts recorded
    calls that were *not* paid again, whether fetched by id or replayed from ``results_dir``;
    ``replayed`` counts the latter alone (``fetched - replayed`` were fetched from the service).

    Raises:
        ValueError: ``resume`` without a ``service`` or ``results_dir``, or negative retry/backoff values.
    """

    def __init__(
        self,
        sampler: BaseSamplerV2,
        journal: RunJournal | str | Path,
        *,
        service=None,
        resume: bool = False,
        backend_name: str | None = None,
        max_retries: int = 2,
        backoff_seconds: float = 30.0,
        timeout_seconds: float | None = None,
        poll_seconds: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        max_circuits_per_job: int | None = None,
        shots: int | None = None,
        results_dir: str | Path | None = None,
    ) -> None:
        if not isinstance(sampler, BaseSamplerV2):
            raise TypeError(f"JournaledSampler: expected sampler to be a BaseSamplerV2, got {type(sampler).__name__}")
        has_service = service is not None and callable(getattr(service, "job", None))
        if resume and not has_service and results_dir is None:
            raise ValueError(
                "JournaledSampler: expected a service with job(job_id) or a results_dir to resume, got service="
                f"{type(service).__name__} and results_dir=None (local and simulator jobs cannot be fetched again)"
            )
        check_int("JournaledSampler", "max_retries", max_retries, 0)
        for name, value in (("backoff_seconds", backoff_seconds), ("poll_seconds", poll_seconds)):
            if not value >= 0:
                raise ValueError(f"JournaledSampler: expected {name} >= 0, got {value!r}")
        check_int("JournaledSampler", "max_circuits_per_job", max_circuits_per_job, 1, optional=True)
        if timeout_seconds is not None and not timeout_seconds > 0:
            raise ValueError(f"JournaledSampler: expected timeout_seconds > 0 or None, got {timeout_seconds!r}")
        self.sampler = sampler
        self.journal = journal if isinstance(journal, RunJournal) else RunJournal(journal)
        self.service = service if has_service else None
        self.resume = resume
        self.results_dir = None if results_dir is None else Path(results_dir)
        if backend_name is None:
            try:
                backend_name = str(sampler.backend().name)
            except Exception:
                backend_name = type(sampler).__name__
        self.backend_name = backend_name
        self.max_retries, self.backoff_seconds = max_retries, backoff_seconds
        self.timeout_seconds, self.poll_seconds = timeout_seconds, poll_seconds
        self._sleep, self._clock = sleep, clock
        self.max_circuits_per_job, self.shots = max_circuits_per_job, shots
        self.calls = 0  # index of the next run() call outside any stream
        self.submitted = 0  # jobs submitted by this process
        self.fetched = 0  # recorded calls not paid again: fetched by id or replayed from results_dir
        self.replayed = 0  # of those, replayed from their stored result
        self._stream_calls: dict[str, int] = {}
        self._local = threading.local()
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    @contextmanager
    def stream(self, name: str):
        """Number this thread's calls inside the block as stream ``name`` (``0, 1, …``).

        Raises:
            ValueError: with ``results_dir``, a name that is not file-name safe or is ``main``.
        """
        if self.results_dir is not None and (not _STREAM_NAME.fullmatch(str(name)) or str(name) == "main"):
            raise ValueError(
                "JournaledSampler.stream: expected a name of letters, digits, '_', '.', '-' other than 'main' "
                f"(it names result files), got {str(name)!r}"
            )
        previous = getattr(self._local, "stream", None)
        self._local.stream = str(name)
        try:
            yield self
        finally:
            self._local.stream = previous

    def stop(self) -> None:
        """Refuse every later ``run`` (an interrupted run: threads must not submit more jobs)."""
        self._stopped.set()

    def _next_index(self, stream: str | None) -> int:
        with self._lock:
            if stream is None:
                index, self.calls = self.calls, self.calls + 1
            else:
                index = self._stream_calls.get(stream, 0)
                self._stream_calls[stream] = index + 1
            return index

    def run(self, pubs, *, shots: int | None = None):
        coerced = [SamplerPub.coerce(pub, shots if shots is not None else self.shots) for pub in pubs]
        limit = self.max_circuits_per_job
        if limit is None or sum(p.parameter_values.size for p in coerced) <= limit:
            return self._run_call(coerced, shots)
        chunks = _split_pubs(coerced, limit)
        jobs = [self._run_call([pub for _, pub in chunk], shots) for chunk in chunks]
        return _SplitJob(jobs, chunks, coerced)

    def _run_call(self, coerced: list[SamplerPub], shots: int | None) -> BasePrimitiveJob:
        if self._stopped.is_set():
            raise QKLSTMError("JournaledSampler: stopped (the run was interrupted); no further jobs are submitted")
        fingerprint = pubs_fingerprint(coerced)
        stream = getattr(self._local, "stream", None)
        index = self._next_index(stream)
        record = self.journal.latest_submission(index, stream) if self.resume else None
        if record is not None:
            if record.get("fingerprint") != fingerprint:
                raise QKLSTMError(
                    f"JournaledSampler: call {index} does not match job {record.get('job_id')} in {self.journal.path} "
                    "(different circuits or parameter values); resume only the same run, or start a new output folder"
                )
            attempt = int(record.get("attempt", 0))
            if self.journal.failed(record["job_id"]):
                job = self._submit(index, attempt + 1, coerced, shots, fingerprint, stream)
                return _JournaledJob(self, index, coerced, shots, fingerprint, job, attempt + 1, stream)
            stored = self._replay(index, stream, record["job_id"], fingerprint)
            if stored is not None:
                return stored
            if self.service is None:
                logger.warning("call %d%s: job %s has no stored result and cannot be fetched (a local job dies with "
                               "its process); submitting it again", index, f" of {stream}" if stream else "",
                               record["job_id"])
                job = self._submit(index, attempt + 1, coerced, shots, fingerprint, stream)
                return _JournaledJob(self, index, coerced, shots, fingerprint, job, attempt + 1, stream)
            try:
                job = self.service.job(record["job_id"])
            except Exception as exc:
                raise QKLSTMError(
                    f"JournaledSampler: could not fetch job {record['job_id']} (call {index}) recorded in "
                    f"{self.journal.path}: {describe_error(exc)}"
                ) from exc
            with self._lock:
                self.fetched += 1
            logger.info("call %d: resumed job %s from the journal", index, record["job_id"])
            return _JournaledJob(self, index, coerced, shots, fingerprint, job, attempt, stream)
        job = self._submit(index, 0, coerced, shots, fingerprint, stream)
        return _JournaledJob(self, index, coerced, shots, fingerprint, job, 0, stream)

    def _replay(self, index: int, stream: str | None, job_id: str, fingerprint: str) -> _StoredJob | None:
        """Call ``index``'s finished job from its result file, or ``None`` if it has none.

        Raises:
            QKLSTMError: the file is unreadable, or holds another job or other PUBs (one line).
        """
        name = self.journal.stored_result(job_id) if self.results_dir is not None else None
        if name is None or self.results_dir is None:
            return None
        path = self.results_dir / name
        if not path.is_file():
            logger.warning("call %d: the result file %s of job %s is missing; the job is not replayed", index, path,
                           job_id)
            return None
        stored = read_result(path)
        if stored.fingerprint != fingerprint or stored.job_id != job_id:
            raise QKLSTMError(
                f"JournaledSampler: call {index} does not match the result stored in {path} (job {stored.job_id}, "
                f"journal: job {job_id}; different circuits or parameter values); resume only the same run, "
                "or start a new output folder"
            )
        with self._lock:
            self.fetched += 1
            self.replayed += 1
        logger.info("call %d: replayed job %s from %s", index, job_id, path)
        return _StoredJob(job_id, stored.result)

    def _store(self, result: PrimitiveResult, index: int, stream: str | None, job_id: str,
               fingerprint: str) -> dict[str, str]:
        """Write a finished job's result to ``results_dir``: ``{"result": file name}`` for its done line, or ``{}``."""
        if self.results_dir is None:
            return {}
        name = _result_name(index, stream)
        try:
            self.results_dir.mkdir(parents=True, exist_ok=True)
            write_result(result, self.results_dir / name, job_id=job_id, fingerprint=fingerprint)
        except TypeError:  # not shots (an exact sampler's probabilities): nothing a resume would need to replay
            logger.debug("call %d: job %s returned no bit arrays; its result is not stored", index, job_id)
            return {}
        except OSError as exc:  # the result is in hand: a full disk must not lose it, only its replay
            logger.warning("call %d: could not store the result of job %s in %s: %s", index, job_id,
                           self.results_dir, describe_error(exc))
            return {}
        return {"result": name}

    def _submit(self, index: int, attempt: int, pubs: list[SamplerPub], shots: int | None, fingerprint: str,
                stream: str | None = None):
        try:
            job = self.sampler.run(pubs, shots=shots)
        except Exception as exc:
            raise QKLSTMError(f"JournaledSampler: submitting call {index} to {self.backend_name} failed: {describe_error(exc)}") from exc
        default = _default_shots(self.sampler)
        shots_used = [p.shots if p.shots is not None else default for p in pubs]
        self.journal.append({
            "event": "submitted", "index": index, **_stream(stream), "attempt": attempt, "job_id": str(job.job_id()),
            "backend": self.backend_name, "num_pubs": len(pubs),
            "shots": shots_used[0] if len(set(shots_used)) == 1 else shots_used,
            "num_bindings": int(sum(p.parameter_values.size for p in pubs)),
            "fingerprint": fingerprint,
        })
        with self._lock:
            self.submitted += 1
        logger.info("call %d: submitted job %s to %s", index, job.job_id(), self.backend_name)
        return job

    def _wait(self, job):
        """``job.result()``, or ``TimeoutError`` (after a best-effort cancel) past ``timeout_seconds``."""
        if self.timeout_seconds is not None and hasattr(job, "in_final_state"):
            start = self._clock()
            while not job.in_final_state():
                if self._clock() - start > self.timeout_seconds:
                    try:
                        job.cancel()
                    except Exception as exc:
                        logger.warning("could not cancel timed-out job %s: %s", job.job_id(), describe_error(exc))
                    raise TimeoutError(f"no result after {self.timeout_seconds:g} s")
                self._sleep(self.poll_seconds)
        return job.result()


def _split_pubs(pubs: list[SamplerPub], limit: int) -> list[list[tuple[int, SamplerPub]]]:
    """Consecutive chunks of at most ``limit`` bindings: ``[(pub index, PUB of some of its rows), …]`` per job."""
    chunks: list[list[tuple[int, SamplerPub]]] = [[]]
    room = limit
    for i, pub in enumerate(pubs):
        params = list(pub.circuit.parameters)
        rows = int(pub.parameter_values.size)
        values = np.asarray(pub.parameter_values.as_array(params), dtype=float).reshape(rows, len(params))
        start = 0
        while start < rows:
            if room == 0:
                chunks.append([])
                room = limit
            take = min(room, rows - start)
            part = values[start : start + take] if params else None
            chunks[-1].append((i, SamplerPub.coerce((pub.circuit, part, pub.shots))))
            start, room = start + take, room - take
    return chunks


class _SplitJob(BasePrimitiveJob):
    """The jobs of one call split by ``max_circuits_per_job``; :meth:`result` joins their PUB results."""

    def __init__(self, jobs: list[BasePrimitiveJob], chunks: list[list[tuple[int, SamplerPub]]],
                 pubs: list[SamplerPub]) -> None:
        super().__init__(job_id=",".join(str(j.job_id()) for j in jobs))
        self._jobs, self._chunks, self._pubs, self._result = jobs, chunks, pubs, None

    def result(self) -> PrimitiveResult:
        if self._result is None:
            parts: dict[int, list] = {}
            for job, chunk in zip(self._jobs, self._chunks):
                for (i, _), pub_result in zip(chunk, job.result()):
                    parts.setdefault(i, []).append(pub_result)
            joined = []
            for i, pub in enumerate(self._pubs):
                shape = pub.parameter_values.shape
                fields = {
                    name: BitArray.concatenate([p.data[name].reshape(p.data[name].size) for p in parts[i]],
                                               axis=0).reshape(shape)
                    for name in parts[i][0].data.keys()
                }
                joined.append(SamplerPubResult(DataBin(shape=shape, **fields), metadata=parts[i][0].metadata))
            self._result = PrimitiveResult(joined, metadata={"jobs": [str(j.job_id()) for j in self._jobs]})
        return self._result

    def status(self):
        return [job.status() for job in self._jobs]

    def done(self) -> bool:
        return all(job.done() for job in self._jobs)

    def running(self) -> bool:
        return any(job.running() for job in self._jobs)

    def cancelled(self) -> bool:
        return any(job.cancelled() for job in self._jobs)

    def in_final_state(self) -> bool:
        return all(job.in_final_state() for job in self._jobs)

    def cancel(self):
        return [job.cancel() for job in self._jobs]
