"""Backends by name, ISA circuits for fake devices, execution modes, IBM account errors."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.quantum_info import Statevector

from qk_lstm_qiskit.hardware.backends import (
    DEFAULT_SHOTS,
    fake_backend,
    fake_backend_names,
    make_sampler,
    resolve_backend,
)
from qk_lstm_qiskit.errors import QKLSTMError
from qk_lstm_qiskit.circuits.feature_map import FeatureMap

DUMMY_TOKEN = "dummy-token-1234567890-abcdef"


# --------------------------------------------------------------------------- names
@pytest.mark.parametrize(
    "name, cls",
    [("manila", "FakeManilaV2"), ("FakeManilaV2", "FakeManilaV2"), ("fake_manila", "FakeManilaV2"),
     ("Torino", "FakeTorino"), ("torino", "FakeTorino")],
)
def test_fake_backend_accepts_short_class_and_device_names(name, cls):
    assert type(fake_backend(name)).__name__ == cls


def test_fake_backend_names_lists_the_provider():
    names = fake_backend_names()
    assert {"manila", "torino", "brisbane"} <= set(names)
    assert list(names) == sorted(names)


def test_typo_gives_one_line_error_with_suggestion():
    with pytest.raises(ValueError, match=r"unknown fake device 'manla' \(did you mean manila\?.*valid names include") as info:
        resolve_backend("fake:manla")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["foo", "exact:1", "aer:x", "aer-noisy", "fake:", "ibm:", "ibm"])
def test_malformed_names_are_rejected(name):
    with pytest.raises(ValueError, match="expected a backend name like exact, aer, aer-noisy:manila"):
        resolve_backend(name)


def test_name_must_be_a_string():
    with pytest.raises(TypeError, match="expected name to be a str, got int"):
        resolve_backend(3)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"shots": 0}, "expected shots >= 1, got 0"),
     ({"optimization_level": 4}, r"expected optimization_level in \(0, 1, 2, 3\), got 4"),
     ({"mode": "dedicated"}, "expected mode in"),
     ({"dynamical_decoupling": "XYZ"}, "expected dynamical_decoupling in"),
     ({"max_execution_time": -1}, "expected max_execution_time >= 1")],
)
def test_bad_options_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        resolve_backend("fake:manila", **kwargs)


def test_runtime_options_are_refused_off_runtime():
    with pytest.raises(ValueError, match="expected mode, twirl_gates only with fake: or ibm: backends, got backend 'aer'"):
        resolve_backend("aer", mode="batch", twirl_gates=True)


def test_initial_layout_must_fit_the_device():
    with pytest.raises(ValueError, match=r"expected initial_layout to be distinct qubits in \[0, 5\) of fake_manila"):
        resolve_backend("fake:manila", initial_layout=[0, 7])


# --------------------------------------------------------------------------- samplers
def test_exact_has_no_sampler():
    rb = resolve_backend("exact")
    assert rb.sampler is None and rb.pass_manager is None and rb.shots is None
    assert make_sampler("exact") is None


def test_aer_honours_shots_and_seed():
    circuit = QuantumCircuit(1)
    circuit.h(0)
    circuit.measure_all()
    sampler = make_sampler("aer", shots=123, seed=7)
    first = sampler.run([circuit]).result()[0].data.meas
    again = make_sampler("aer", shots=123, seed=7).run([circuit]).result()[0].data.meas
    assert first.num_shots == 123
    assert first.get_counts() == again.get_counts()
    assert resolve_backend("aer").shots == DEFAULT_SHOTS


def test_runtime_options_reach_the_sampler():
    rb = resolve_backend(
        "fake:manila", shots=321, seed=5, dynamical_decoupling="XY4", twirl_gates=True, twirl_measure=True,
        max_execution_time=60,
    )
    options = rb.sampler.options
    assert options.default_shots == 321
    assert options.dynamical_decoupling.enable and options.dynamical_decoupling.sequence_type == "XY4"
    assert options.twirling.enable_gates and options.twirling.enable_measure
    assert options.max_execution_time == 60
    assert options.simulator.seed_simulator == 5
    info = rb.info()
    assert info["device"] == "fake_manila" and info["shots"] == 321 and info["mode"] == "job"


# --------------------------------------------------------------------------- ISA circuits
def _isa_ops_supported(circuit, target) -> list[str]:
    """Names/qargs of the operations of ``circuit`` that ``target`` does not support."""
    bad = []
    for instruction in circuit.data:
        if instruction.operation.name == "barrier":
            continue
        qargs = tuple(circuit.find_bit(q).index for q in instruction.qubits)
        if not target.instruction_supported(instruction.operation.name, qargs):
            bad.append(f"{instruction.operation.name}{qargs}")
    return bad


@pytest.mark.fake_backend
@pytest.mark.parametrize("name, layout", [("fake:manila", [4, 3, 2, 1]), ("fake:torino", None)])
def test_transpiled_fidelity_circuit_is_isa(name, layout):
    fm = FeatureMap(4, reps=2, entanglement="circular")
    circuit, _, _ = fm.fidelity_circuit()
    rb = resolve_backend(name, seed=3, initial_layout=layout)
    isa = rb.pass_manager.run(circuit)
    assert _isa_ops_supported(isa, rb.device.target) == []
    assert isa.num_qubits == rb.device.num_qubits
    assert set(isa.count_ops()) - {"barrier"} <= set(rb.device.target.operation_names)
    assert "h" not in isa.count_ops() and "ry" not in isa.count_ops()  # the inverse's gates were translated
    if layout is not None:
        assert isa.layout.initial_index_layout(filter_ancillas=True) == layout


@pytest.mark.fake_backend
def test_counts_of_isa_circuit_are_read_on_the_right_qubits():
    """Exact probabilities of the ISA circuit after a reversed layout and SWAP routing equal the
    statevector of the logical circuit bit string by bit string (qubit order included)."""
    from qiskit_machine_learning.primitives import QMLSampler

    fm = FeatureMap(4, reps=2, entanglement="circular")  # CX(3, 0) needs routing on the linear manila
    circuit, _, _ = fm.fidelity_circuit()
    rb = resolve_backend("fake:manila", seed=3, initial_layout=[4, 3, 2, 1])
    isa = rb.pass_manager.run(circuit)
    assert isa.layout.initial_index_layout(filter_ancillas=True) != [0, 1, 2, 3]
    values = np.random.default_rng(0).uniform(-1.5, 1.5, (3, circuit.num_parameters))
    assert [p.name for p in isa.parameters] == [p.name for p in circuit.parameters]
    result = QMLSampler(shots=None).run([(isa, values)]).result()[0].data.meas
    logical = circuit.remove_final_measurements(inplace=False)
    for row in range(values.shape[0]):
        counts = result.get_counts(row)
        total = sum(counts.values())
        expected = Statevector(logical.assign_parameters(values[row])).probabilities_dict()
        for bits, probability in expected.items():
            assert counts.get(bits, 0) / total == pytest.approx(probability, abs=1e-9)
        # the kernel k(x, y) is P(0000)
        assert counts.get("0000", 0) / total == pytest.approx(expected["0000"], abs=1e-9)


# --------------------------------------------------------------------------- execution modes
@pytest.mark.fake_backend
@pytest.mark.parametrize("mode", ["batch", "session"])
def test_batch_and_session_modes_run_in_local_mode(mode):
    circuit = QuantumCircuit(1)
    circuit.x(0)
    circuit.measure_all()
    with resolve_backend("fake:manila", shots=50, seed=1, mode=mode) as rb:
        assert rb.session is not None and rb.sampler.mode is rb.session
        isa = rb.pass_manager.run(circuit)
        counts = rb.sampler.run([isa]).result()[0].data.meas.get_counts()
    assert rb.session is None  # closed
    assert sum(counts.values()) == 50 and counts.get("1", 0) > 40  # readout error of qubit 0 is a few %


# --------------------------------------------------------------------------- IBM accounts
class _StandInService:
    """Stand-in for ``QiskitRuntimeService``: devices are fake backends, jobs a dict."""

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.jobs = {}

    def backend(self, name):
        if name != "ibm_manila":
            raise LookupError(f"No backend matches the criteria: {name}")
        return fake_backend("manila")

    def least_busy(self, **kwargs):
        self.least_busy_kwargs = kwargs
        return fake_backend("manila")

    def job(self, job_id):
        return self.jobs[job_id]


def test_ibm_backend_with_a_service(monkeypatch):
    service = _StandInService()
    rb = resolve_backend("ibm:ibm_manila", service=service, shots=10)
    assert rb.kind == "ibm" and rb.service is service and rb.device.name == "fake_manila"
    rb = resolve_backend("ibm:least_busy", service=service, min_num_qubits=4)
    assert service.least_busy_kwargs == {"operational": True, "simulator": False, "min_num_qubits": 4}


def test_unknown_ibm_device_is_one_line_error():
    with pytest.raises(QKLSTMError, match=r"could not get IBM device 'ibm_nowhere' \(LookupError: No backend"):
        resolve_backend("ibm:ibm_nowhere", service=_StandInService())


def test_ibm_env_vars_reach_the_service(monkeypatch):
    import qiskit_ibm_runtime

    monkeypatch.setenv("QISKIT_IBM_CHANNEL", "ibm_cloud")
    monkeypatch.setenv("QISKIT_IBM_INSTANCE", "crn:v1:test")
    monkeypatch.setattr(qiskit_ibm_runtime, "QiskitRuntimeService", _StandInService)
    rb = resolve_backend("ibm:ibm_manila")
    assert rb.service.kwargs == {"channel": "ibm_cloud", "instance": "crn:v1:test"}


def test_missing_account_says_how_to_save_one(monkeypatch, tmp_path):
    from qiskit_ibm_runtime.accounts import management

    for var in ("QISKIT_IBM_TOKEN", "QISKIT_IBM_INSTANCE", "QISKIT_IBM_CHANNEL", "QISKIT_IBM_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(management, "_DEFAULT_ACCOUNT_CONFIG_JSON_FILE", str(tmp_path / "none.json"))
    with pytest.raises(QKLSTMError, match=r'could not open an IBM Quantum account .*save_account\(channel="ibm_quantum_platform"') as info:
        resolve_backend("ibm:ibm_torino")
    assert "\n" not in str(info.value)


def test_invalid_token_is_masked(monkeypatch):
    import qiskit_ibm_runtime

    class LeakyService:
        def __init__(self, **kwargs):
            raise RuntimeError(f"token {DUMMY_TOKEN} was rejected")

    monkeypatch.setenv("QISKIT_IBM_TOKEN", DUMMY_TOKEN)
    monkeypatch.setattr(qiskit_ibm_runtime, "QiskitRuntimeService", LeakyService)
    with pytest.raises(QKLSTMError, match=r"token \*\*\* was rejected.*save_account") as info:
        resolve_backend("ibm:least_busy")
    assert DUMMY_TOKEN not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no traceback shows the token


def test_resolved_backend_info_has_no_credentials(monkeypatch):
    monkeypatch.setenv("QISKIT_IBM_TOKEN", DUMMY_TOKEN)
    rb = resolve_backend("ibm:ibm_manila", service=_StandInService())
    assert DUMMY_TOKEN not in repr(rb.info())


def test_make_sampler_refuses_device_backends():
    with pytest.raises(ValueError, match="make_sampler: expected backend 'exact' or 'aer', got 'fake:manila'"):
        make_sampler("fake:manila")


@pytest.mark.fake_backend
def test_default_layout_avoids_bad_readout_qubits():
    """Level 2 (the default) scores layouts by error rates; torino's qubit 0 reads out 17 % wrong."""
    import statistics

    rb = resolve_backend("fake:torino", seed=0)
    isa = rb.pass_manager.run(FeatureMap(4).fidelity_circuit()[0])
    target = rb.device.target
    errors = {q: target["measure"][(q,)].error for q in range(rb.device.num_qubits)}
    chosen = isa.layout.initial_index_layout(filter_ancillas=True)
    assert errors[0] > 0.15 and 0 not in chosen
    assert max(errors[q] for q in chosen) < statistics.median(errors.values())
