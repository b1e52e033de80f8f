"""Backends by name: the module that builds samplers from ``qiskit_aer`` and ``qiskit_ibm_runtime``.

A backend name picks where kernels run; :func:`resolve_backend` turns it into a sampler, the
pass manager that makes circuits ISA for the device, and the device itself (its target gives
gate and readout durations to :mod:`qk_lstm_qiskit.hardware.cost`).

=========================  ==================================================================
name                       sampler
=========================  ==================================================================
``exact``                  ``None``: the torch statevector executor
``aer``                    ideal Aer: :class:`~qk_lstm_qiskit.hardware.aer_sampler.AerProbabilitySampler`
``aer-noisy:<fake>``       Aer ``SamplerV2`` on ``AerSimulator.from_backend(Fake…)``
``fake:<fake>``            Runtime local testing mode: ``SamplerV2(mode=Fake…())``
``ibm:<device>``           ``QiskitRuntimeService().backend(<device>)``
``ibm:least_busy``         ``QiskitRuntimeService().least_busy(operational=True, simulator=False)``
=========================  ==================================================================

``<fake>`` is a fake-provider device, case-insensitive, with or without ``Fake``/``V2``/``fake_``:
``manila``, ``FakeManilaV2``, ``fake_manila`` and ``torino`` all work.

IBM credentials are never handled here: ``QiskitRuntimeService`` reads ``QISKIT_IBM_TOKEN``
(and ``QISKIT_IBM_INSTANCE``, ``QISKIT_IBM_CHANNEL``) or the account saved with
``QiskitRuntimeService.save_account(channel="ibm_quantum_platform", token=..., instance=...)``;
errors are reported in one line with the token, if any, masked.

Execution modes (Runtime backends only): ``job`` (default, one job per sampler call), ``batch``
(jobs of one run grouped, allowed on the open plan) and ``session`` (dedicated QPU window;
refused on the open plan). In local testing mode the primitive is built as
``SamplerV2(mode=batch)``: ``with Batch(backend=fake): SamplerV2()`` fails there.
"""

from __future__ import annotations

import difflib
import functools
import logging
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Sequence

from ..errors import QKLSTMError
from ..validation import check_int

__all__ = [
    "BACKEND_KINDS",
    "DD_SEQUENCES",
    "EXECUTION_MODES",
    "ResolvedBackend",
    "describe_error",
    "fake_backend",
    "fake_backend_names",
    "make_sampler",
    "resolve_backend",
]

logger = logging.getLogger(__name__)

BACKEND_KINDS = ("exact", "aer", "aer-noisy", "fake", "ibm")  #: the part of a backend name before ``:``
EXECUTION_MODES = ("job", "batch", "session")  #: Runtime execution modes (``--mode``)
DD_SEQUENCES = ("XX", "XpXm", "XY4")  #: dynamical-decoupling sequences of the Runtime sampler
DEFAULT_SHOTS = 4096  #: shots per PUB when none are given (the Runtime sampler's default)
TOKEN_ENV = "QISKIT_IBM_TOKEN"  #: environment variable read for the IBM Quantum token (never logged)
MAX_SHOTS = 10**7  #: shots per circuit at most (IBM devices take up to 10^7; local samplers hold one bit string per shot)
SAVE_ACCOUNT_HINT = (
    'save an account once with QiskitRuntimeService.save_account(channel="ibm_quantum_platform", '
    'token="<API key>", instance="<CRN>") or set QISKIT_IBM_TOKEN and QISKIT_IBM_INSTANCE'
)


# --------------------------------------------------------------------------- fake devices
def _short_name(class_name: str) -> str:
    """``FakeManilaV2`` → ``manila``."""
    name = class_name[len("Fake") :] if class_name.startswith("Fake") else class_name
    if name.endswith("V2"):
        name = name[:-2]
    return name.lower()


@functools.lru_cache(maxsize=1)
def _fake_classes() -> dict[str, type]:
    from qiskit_ibm_runtime import fake_provider
    from qiskit_ibm_runtime.fake_provider.fake_backend import FakeBackendV2

    classes = {}
    for attr in dir(fake_provider):
        obj = getattr(fake_provider, attr)
        if isinstance(obj, type) and issubclass(obj, FakeBackendV2) and obj is not FakeBackendV2:
            classes[_short_name(attr)] = obj
    return classes


def fake_backend_names() -> tuple[str, ...]:
    """Short names of the fake devices (``"manila"``, ``"torino"``, …), sorted."""
    return tuple(sorted(_fake_classes()))


def fake_backend(name: str):
    """A fresh fake device (``FakeBackendV2``) from ``manila``, ``FakeManilaV2`` or ``fake_manila``.

    Raises:
        ValueError: unknown name; the message lists close matches and a few valid names.
    """
    key = name.strip()
    key = key[len("fake_") :] if key.lower().startswith("fake_") else key
    key = _short_name(key) if key.startswith("Fake") else key.lower()
    classes = _fake_classes()
    if key not in classes:
        close = difflib.get_close_matches(key, classes, n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        examples = ", ".join(n for n in ("manila", "lima", "brisbane", "torino", "fez") if n in classes)
        raise ValueError(
            f"resolve_backend: unknown fake device {name!r} ({hint}valid names include {examples}; "
            f"{len(classes)} in qiskit_ibm_runtime.fake_provider)"
        )
    return classes[key]()


# --------------------------------------------------------------------------- result
@dataclass
class ResolvedBackend:
    """What a backend name resolves to.

    Attributes:
        name: the name as given (``"fake:manila"``).
        kind: one of :data:`BACKEND_KINDS`.
        sampler: a ``BaseSamplerV2``, or ``None`` for ``exact``.
        pass_manager: preset pass manager making circuits ISA for ``device`` (``None`` for
            ``exact`` and ``aer``, which take any gate).
        device: the ``BackendV2`` whose target the circuits are compiled for (``None`` for
            ``exact``/``aer``); its target holds gate and readout durations.
        service: an object with ``job(job_id)`` to fetch jobs again (``ibm`` only).
        shots: shots per circuit (``None`` for ``exact``).
        mode: ``"job"``, ``"batch"`` or ``"session"``.
        session: the open ``Batch``/``Session``, closed by :meth:`close`.
        options: the sampler options that were set (no credentials).

    Use as a context manager, or call :meth:`close`, to end a batch or session.
    """

    name: str
    kind: str
    sampler: Any = None
    pass_manager: Any = None
    device: Any = None
    service: Any = None
    shots: int | None = None
    mode: str = "job"
    session: Any = None
    optimization_level: int | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def device_name(self) -> str | None:
        return None if self.device is None else str(self.device.name)

    def info(self) -> dict[str, Any]:
        """JSON-ready description for metrics files and logs (never a credential)."""
        return {
            "backend": self.name,
            "kind": self.kind,
            "device": self.device_name,
            "device_qubits": None if self.device is None else int(self.device.num_qubits),
            "shots": self.shots,
            "mode": self.mode,
            "optimization_level": self.optimization_level,
            "options": self.options,
        }

    def close(self) -> None:
        """Close the batch or session, if any (jobs already submitted still run)."""
        if self.session is not None:
            try:
                self.session.close()
            except Exception as exc:  # closing must not hide the run's own result or error
                logger.warning("could not close the %s of %s: %s", self.mode, self.name, describe_error(exc))
            self.session = None

    def __enter__(self) -> "ResolvedBackend":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# --------------------------------------------------------------------------- helpers
def _seeded_aer_sampler(simulator, shots: int, seed: int | None):
    """Aer ``SamplerV2`` on ``simulator`` whose jobs are seeded by ``seed`` + :func:`job_digest`.

    A plain seeded Aer sampler restarts one random stream in every job, so every time step
    would see the same shot noise; seeding by content keeps jobs reproducible and independent
    of call order (a resumed run equals an uninterrupted one).
    """
    from qiskit.primitives.containers.sampler_pub import SamplerPub
    from qiskit_aer.primitives import SamplerV2 as AerSampler

    from .aer_sampler import job_digest

    lock = threading.Lock()  # concurrent batches: one seed per job

    class _ContentSeededSampler(AerSampler):
        def __init__(self) -> None:
            super().__init__(default_shots=shots, seed=None)
            self._backend = simulator

        def run(self, pubs, *, shots=None):
            if seed is None:
                return super().run(pubs, shots=shots)
            coerced = [SamplerPub.coerce(pub, shots if shots is not None else self._default_shots) for pub in pubs]
            with lock:
                self._seed = (seed + job_digest(coerced)) % 2**31
                job = super().run(coerced)
                job.result()  # run now, so the next call cannot change the seed under this job
            return job

    return _ContentSeededSampler()


def _mask(text: str) -> str:
    """``text`` with the value of ``QISKIT_IBM_TOKEN`` (if set) replaced by ``***``."""
    token = os.environ.get(TOKEN_ENV)
    if token:
        text = text.replace(token, "***")
    return text


def describe_error(exc: BaseException) -> str:
    """``"Type: message"`` on one line (at most 500 characters) with the IBM token masked."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return _mask(f"{type(exc).__name__}: {text}")[:500]


def _pass_manager(device, optimization_level: int, initial_layout: Sequence[int] | None, seed: int | None):
    from qiskit.transpiler import generate_preset_pass_manager

    if initial_layout is not None:
        layout = list(initial_layout)
        if len(set(layout)) != len(layout) or any(not 0 <= q < device.num_qubits for q in layout):
            raise ValueError(
                f"resolve_backend: expected initial_layout to be distinct qubits in [0, {device.num_qubits}) "
                f"of {device.name}, got {layout}"
            )
    return generate_preset_pass_manager(
        optimization_level=optimization_level,
        backend=device,
        initial_layout=None if initial_layout is None else list(initial_layout),
        seed_transpiler=seed,
    )


def _runtime_options(
    shots: int,
    *,
    local: bool,
    seed: int | None,
    dynamical_decoupling: str | None,
    twirl_gates: bool,
    twirl_measure: bool,
    max_execution_time: int | None,
) -> dict[str, Any]:
    options: dict[str, Any] = {"default_shots": shots}
    if dynamical_decoupling is not None:
        options["dynamical_decoupling"] = {"enable": True, "sequence_type": dynamical_decoupling}
    if twirl_gates or twirl_measure:
        options["twirling"] = {"enable_gates": twirl_gates, "enable_measure": twirl_measure}
    if max_execution_time is not None:
        options["max_execution_time"] = max_execution_time
    if local and seed is not None:
        options["simulator"] = {"seed_simulator": seed}
    return options


def _open_service(service_factory=None):
    """``QiskitRuntimeService`` from the environment or the saved account, or a one-line ``QKLSTMError``."""
    if service_factory is None:
        from qiskit_ibm_runtime import QiskitRuntimeService as service_factory
    kwargs = {}
    for key, env in (("channel", "QISKIT_IBM_CHANNEL"), ("instance", "QISKIT_IBM_INSTANCE")):
        if os.environ.get(env):
            kwargs[key] = os.environ[env]
    try:
        return service_factory(**kwargs)
    except Exception as exc:
        message = f"resolve_backend: could not open an IBM Quantum account ({describe_error(exc)}); {SAVE_ACCOUNT_HINT}"
        token = os.environ.get(TOKEN_ENV)
        # Drop the cause when its text holds the token, so no traceback can print it.
        raise QKLSTMError(message) from (None if token and token in repr(exc) else exc)


def _parse(name: str) -> tuple[str, str]:
    """``(kind, target)`` of a backend name; ``target`` is ``""`` for ``exact`` and ``aer``."""
    if not isinstance(name, str):
        raise TypeError(f"resolve_backend: expected name to be a str, got {type(name).__name__}")
    kind, sep, target = name.partition(":")
    kind = kind.strip().lower()
    if kind not in BACKEND_KINDS or (kind in ("exact", "aer")) == bool(sep) or (sep and not target.strip()):
        raise ValueError(
            "resolve_backend: expected a backend name like exact, aer, aer-noisy:manila, fake:manila, "
            f"ibm:ibm_torino or ibm:least_busy, got {name!r}"
        )
    return kind, target.strip()


# --------------------------------------------------------------------------- entry points
def resolve_backend(
    name: str = "exact",
    *,
    shots: int | None = None,
    seed: int | None = None,
    optimization_level: int = 2,
    mode: str = "job",
    initial_layout: Sequence[int] | None = None,
    dynamical_decoupling: str | None = None,
    twirl_gates: bool = False,
    twirl_measure: bool = False,
    max_execution_time: int | None = None,
    min_num_qubits: int = 1,
    service=None,
) -> ResolvedBackend:
    """Sampler, ISA pass manager and device for the backend ``name``.

    Args:
        name: see the module table (``exact``, ``aer``, ``aer-noisy:<fake>``, ``fake:<fake>``,
            ``ibm:<device>``, ``ibm:least_busy``).
        shots: shots per circuit (default 4096; ignored by ``exact``).
        seed: simulator seed (``aer``, ``aer-noisy``, ``fake``) and transpiler seed.
        optimization_level: preset pass-manager level 0–3 (default 2). Level 2 picks the
            physical qubits by their error rates; level 1 keeps the trivial layout whenever it
            fits the coupling map (on ``fake:torino`` that is qubit 0, 16.7 % readout error).
        mode: ``"job"`` (default), ``"batch"`` or ``"session"`` (Runtime backends only;
            sessions are refused on the open plan).
        initial_layout: physical qubits for the circuit's qubits 0…n−1 (default: chosen by the
            transpiler).
        dynamical_decoupling: ``None`` (off, default) or a sequence in :data:`DD_SEQUENCES`.
        twirl_gates, twirl_measure: Pauli twirling of 2-qubit gates / measurements (Runtime).
        max_execution_time: QPU seconds after which a Runtime job is cancelled.
        min_num_qubits: device size required by ``ibm:least_busy`` (default 1).
        service: a ready ``QiskitRuntimeService`` (or stand-in with ``backend``,
            ``least_busy`` and ``job``) for ``ibm:``; default opens one from the environment.

    Raises:
        ValueError: malformed name, unknown fake device, bad option value.
        QKLSTMError: no or invalid IBM account, unknown IBM device (one line, token masked).

    Example:
        >>> rb = resolve_backend("fake:manila", shots=1024, seed=1)
        >>> rb.device.name, rb.shots
        ('fake_manila', 1024)
    """
    kind, target = _parse(name)
    check_int("resolve_backend", "shots", shots, 1, optional=True)
    if shots is not None and shots > MAX_SHOTS:
        raise ValueError(f"resolve_backend: expected shots <= {MAX_SHOTS:.0e} per circuit, got {shots}")
    check_int("resolve_backend", "seed", seed, 0, optional=True)
    if seed is not None and seed >= 2**32:
        raise ValueError(f"resolve_backend: expected 0 <= seed < 2**32, got {seed}")
    check_int("resolve_backend", "max_execution_time", max_execution_time, 1, optional=True)
    if optimization_level not in (0, 1, 2, 3):
        raise ValueError(f"resolve_backend: expected optimization_level in (0, 1, 2, 3), got {optimization_level!r}")
    if mode not in EXECUTION_MODES:
        raise ValueError(f"resolve_backend: expected mode in {EXECUTION_MODES}, got {mode!r}")
    if dynamical_decoupling is not None and dynamical_decoupling not in DD_SEQUENCES:
        raise ValueError(
            f"resolve_backend: expected dynamical_decoupling in {DD_SEQUENCES} or None, got {dynamical_decoupling!r}"
        )
    runtime_only = {
        "mode": mode != "job",
        "dynamical_decoupling": dynamical_decoupling is not None,
        "twirl_gates": twirl_gates,
        "twirl_measure": twirl_measure,
        "max_execution_time": max_execution_time is not None,
    }
    if kind in ("exact", "aer", "aer-noisy"):
        unused = [key for key, used in runtime_only.items() if used]
        if unused:
            raise ValueError(
                f"resolve_backend: expected {', '.join(unused)} only with fake: or ibm: backends, got backend {name!r}"
            )
    if kind == "exact":
        return ResolvedBackend(name=name, kind=kind)
    shots = DEFAULT_SHOTS if shots is None else shots

    if kind == "aer":
        from .aer_sampler import AerProbabilitySampler

        # One OpenMP thread: kernel circuits are tiny, and after torch.set_num_threads(1) (cli.py)
        # Aer's default thread pool made a paper-task epoch 5x slower on the shared 2-core machine.
        sampler = AerProbabilitySampler(default_shots=shots, seed=seed, max_parallel_threads=1)
        return ResolvedBackend(name=name, kind=kind, sampler=sampler, shots=shots, options={"default_shots": shots})

    if kind == "aer-noisy":
        from qiskit_aer import AerSimulator

        device = fake_backend(target)
        simulator = AerSimulator.from_backend(device, max_parallel_threads=1)  # tiny circuits: one thread
        sampler = _seeded_aer_sampler(simulator, shots, seed)
        return ResolvedBackend(
            name=name, kind=kind, sampler=sampler, device=device, shots=shots,
            pass_manager=_pass_manager(device, optimization_level, initial_layout, seed),
            optimization_level=optimization_level, options={"default_shots": shots},
        )

    from qiskit_ibm_runtime import Batch, Session
    from qiskit_ibm_runtime.executor_sampler import SamplerV2 as RuntimeSampler

    if kind == "fake":
        device = fake_backend(target)
    else:
        service = _open_service() if service is None else service
        try:
            if target == "least_busy":
                device = service.least_busy(operational=True, simulator=False, min_num_qubits=min_num_qubits)
            else:
                device = service.backend(target)
        except Exception as exc:
            raise QKLSTMError(
                f"resolve_backend: could not get IBM device {target!r} ({describe_error(exc)}); "
                "list yours with QiskitRuntimeService().backends()"
            ) from exc
        if mode == "session":
            logger.warning("resolve_backend: session mode is refused on the IBM Quantum open plan; use batch or job")
    pass_manager = _pass_manager(device, optimization_level, initial_layout, seed)
    options = _runtime_options(
        shots, local=kind == "fake", seed=seed, dynamical_decoupling=dynamical_decoupling,
        twirl_gates=twirl_gates, twirl_measure=twirl_measure, max_execution_time=max_execution_time,
    )
    session = None
    try:
        if mode == "batch":
            session = Batch(backend=device)
        elif mode == "session":
            session = Session(backend=device)
        sampler = RuntimeSampler(mode=session if session is not None else device, options=options)
    except Exception as exc:
        if session is not None:
            session.close()
        raise QKLSTMError(f"resolve_backend: could not open a {mode} on {device.name} ({describe_error(exc)})") from exc
    logger.info("backend %s: device %s, %d shots, %s mode, optimization level %d",
                name, device.name, shots, mode, optimization_level)
    return ResolvedBackend(
        name=name, kind=kind, sampler=sampler, pass_manager=pass_manager, device=device,
        service=None if kind == "fake" else service, shots=shots, mode=mode, session=session,
        optimization_level=optimization_level, options=options,
    )


def make_sampler(backend: str = "exact", *, shots: int | None = None, seed: int | None = None):
    """A ``BaseSamplerV2`` for ``backend``, or ``None`` for the exact executor.

    Shorthand for ``resolve_backend(backend, shots=shots, seed=seed).sampler`` for ``exact``
    and ``aer``; device backends (``aer-noisy:``, ``fake:``, ``ibm:``) also need the pass
    manager that makes circuits ISA, so they go through :func:`resolve_backend`.

    Raises:
        ValueError: a device backend or unknown name, or ``shots <= 0``.
    """
    kind, _ = _parse(backend)
    if kind not in ("exact", "aer"):
        raise ValueError(
            f"make_sampler: expected backend 'exact' or 'aer', got {backend!r} "
            "(device backends need the pass manager of resolve_backend)"
        )
    return resolve_backend(backend, shots=shots, seed=seed).sampler
