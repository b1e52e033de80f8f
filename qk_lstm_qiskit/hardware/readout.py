"""Readout calibration: per-qubit 2×2 assignment matrices measured on the device, cached in the run folder.

For every physical qubit q the assignment matrix (mthree's convention, columns = prepared state)

.. math:: A_q = \\begin{pmatrix} P(0|0) & P(0|1) \\\\ P(1|0) & P(1|1) \\end{pmatrix}

is measured with mthree's *balanced* calibration: ``L`` circuits (``HadamardGenerator``; ``L = 8``
for 4 qubits) that prepare bit strings in which every qubit is 0 in half of them and 1 in the
other half, ``⌈2·S_cal / L⌉`` shots each, so each qubit sees ``S_cal`` preparations of each state
while its neighbours take every value (crosstalk is averaged rather than ignored). The circuits
act only on the physical qubits the transpiled fidelity circuit measures, are ISA (``x`` and
``measure``), and run through the same sampler as the kernels (journaled, counted in the cost).

A calibration is saved as ``<folder>/calibrations/<backend>_q<q0>-<q1>…_<YYYY-MM-DD>.json``
(UTC date: devices recalibrate daily) and is found again by :func:`find_calibration`.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from qiskit.circuit import QuantumCircuit

from ..errors import QKLSTMError
from ..rundir import write_json_atomic
from ..validation import check_int

__all__ = [
    "DEFAULT_CALIBRATION_SHOTS",
    "ReadoutCalibration",
    "calibration_circuits",
    "calibration_counts",
    "calibration_path",
    "find_calibration",
    "measured_qubits",
    "reported_assignment_matrices",
    "run_calibration",
]

logger = logging.getLogger(__name__)

DEFAULT_CALIBRATION_SHOTS = 10_000  #: preparations of each state per qubit (mthree's default)
CALIBRATION_FOLDER = "calibrations"


def measured_qubits(circuit: QuantumCircuit) -> dict[int, int]:
    """``{clbit: physical qubit}`` of an ISA ``circuit``'s measurements, the last one per clbit
    (``mthree.utils.final_measurement_mapping``, which warns on every call under qiskit 2)."""
    mapping = {}
    for instruction in circuit.data:
        if instruction.operation.name == "measure":
            mapping[circuit.find_bit(instruction.clbits[0]).index] = circuit.find_bit(instruction.qubits[0]).index
    return dict(sorted(mapping.items()))


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name)


def _today() -> str:
    return datetime.now(timezone.utc).date().isoformat()


@dataclass(frozen=True)
class ReadoutCalibration:
    """Assignment matrices ``A_q`` ``(2, 2)`` of physical qubits on one backend, measured on ``date``.

    Attributes:
        backend: device name (``"fake_manila"``).
        matrices: ``{physical qubit: A_q}``, columns = prepared state (``A[0, 1] = P(0|1)``).
        shots: ``S_cal`` preparations of each state per qubit.
        date: UTC date ``YYYY-MM-DD``; ``time``: ISO time stamp.
        circuits, shots_per_circuit: what was run; ``job_ids``: the jobs that ran it.
    """

    backend: str
    matrices: dict[int, np.ndarray]
    shots: int
    date: str
    time: str = ""
    circuits: int = 0
    shots_per_circuit: int = 0
    job_ids: tuple[str, ...] = ()

    @property
    def qubits(self) -> tuple[int, ...]:
        return tuple(sorted(self.matrices))

    def covers(self, qubits: Sequence[int]) -> bool:
        return set(qubits) <= set(self.matrices)

    def assignment(self, qubits: Sequence[int]) -> np.ndarray:
        """``(len(qubits), 2, 2)`` assignment matrices in the order of ``qubits``.

        Raises:
            ValueError: a qubit without a calibration.
        """
        missing = sorted(set(qubits) - set(self.matrices))
        if missing:
            raise ValueError(f"ReadoutCalibration: expected calibrations of qubits {list(qubits)}, got none for {missing}")
        return np.stack([self.matrices[q] for q in qubits])

    def to_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend, "qubits": list(self.qubits), "date": self.date, "time": self.time,
            "method": "balanced", "shots": self.shots, "circuits": self.circuits,
            "shots_per_circuit": self.shots_per_circuit, "job_ids": list(self.job_ids),
            "matrices": {str(q): self.matrices[q].tolist() for q in self.qubits},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ReadoutCalibration":
        return cls(
            backend=str(data["backend"]), shots=int(data["shots"]), date=str(data["date"]), time=str(data.get("time", "")),
            matrices={int(q): np.asarray(m, dtype=float) for q, m in data["matrices"].items()},
            circuits=int(data.get("circuits", 0)), shots_per_circuit=int(data.get("shots_per_circuit", 0)),
            job_ids=tuple(data.get("job_ids", ())),
        )

    def save(self, folder: str | Path) -> Path:
        """Write to :func:`calibration_path` under ``folder`` (atomically); returns the path."""
        path = calibration_path(folder, self.backend, self.qubits, self.date)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.to_dict(), path)
        return path


def calibration_path(folder: str | Path, backend: str, qubits: Sequence[int], date: str) -> Path:
    """``<folder>/calibrations/<backend>_q<q0>-<q1>…_<date>.json``."""
    key = "-".join(str(q) for q in sorted(qubits))
    return Path(folder) / CALIBRATION_FOLDER / f"{_safe(backend)}_q{key}_{date}.json"


def find_calibration(folder: str | Path, backend: str, qubits: Sequence[int], *, date: str | None = None,
                     any_date: bool = False) -> ReadoutCalibration | None:
    """A saved calibration of ``backend`` covering ``qubits``: from ``date`` (default today, UTC), or
    the newest of any date with ``any_date`` (a resumed run keeps the calibration it started with).

    Raises:
        QKLSTMError: a calibration file that cannot be read.
    """
    base = Path(folder) / CALIBRATION_FOLDER
    if not base.is_dir():
        return None
    date = date or _today()
    found = []
    for path in sorted(base.glob(f"{_safe(backend)}_q*.json")):
        try:
            cal = ReadoutCalibration.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise QKLSTMError(f"find_calibration: expected a readout calibration in {path}, got {exc}") from exc
        if cal.backend == backend and cal.covers(qubits) and (any_date or cal.date == date):
            found.append(cal)
    return max(found, key=lambda c: (c.date, c.time)) if found else None


def _generator(num_qubits: int):
    from mthree.generators import HadamardGenerator

    return HadamardGenerator(num_qubits)


def calibration_circuits(qubits: Sequence[int], num_device_qubits: int) -> list[QuantumCircuit]:
    """mthree's balanced calibration circuits on the physical ``qubits`` of a device-wide register.

    Clbit ``i`` reads ``qubits[i]``; each circuit's name is its prepared bit string (clbit 0 last).
    """
    from mthree.circuits import balanced_cal_circuits

    circuits = balanced_cal_circuits(_generator(len(qubits)), list(qubits), num_device_qubits)
    for circuit, bits in zip(circuits, _generator(len(qubits))):
        circuit.name = "".join(str(int(b)) for b in bits)
    return circuits


def calibration_counts(num_qubits: int, shots: int) -> tuple[int, int]:
    """``(circuits, shots per circuit)`` of a balanced calibration with ``shots`` preparations per state."""
    length = _generator(num_qubits).length
    return length, math.ceil(2 * shots / length)


def _prepared(circuit: QuantumCircuit) -> np.ndarray:
    """Prepared bit of each clbit ``(n,)`` from the circuit name (clbit 0 is the last character)."""
    return np.array([int(b) for b in circuit.name[::-1]], dtype=bool)


def run_calibration(sampler, qubits: Sequence[int], device, *, shots: int = DEFAULT_CALIBRATION_SHOTS,
                    backend_name: str | None = None) -> ReadoutCalibration:
    """Measure ``A_q`` of the physical ``qubits`` of ``device`` with mthree's balanced circuits on ``sampler``.

    One ``sampler.run`` with one PUB per circuit. ``P(m|p)_q`` = share of the shots of the
    circuits preparing ``p`` on qubit q that read ``m``.

    Raises:
        ValueError: no qubits, a qubit outside the device, ``shots < 1``.
        QKLSTMError: the device cannot apply ``x`` or ``measure`` on a qubit; the job failed.
    """
    check_int("run_calibration", "shots", shots, 1)
    qubits = [int(q) for q in qubits]
    if not qubits or len(set(qubits)) != len(qubits) or not all(0 <= q < device.num_qubits for q in qubits):
        raise ValueError(f"run_calibration: expected distinct qubits in [0, {device.num_qubits}), got {qubits}")
    target = device.target
    for q in qubits:
        for op in ("x", "measure"):
            if not target.instruction_supported(op, (q,)):
                raise QKLSTMError(f"run_calibration: expected {device.name} to support {op} on qubit {q}, it does not")
    circuits = calibration_circuits(qubits, device.num_qubits)
    _, per_circuit = calibration_counts(len(qubits), shots)
    job = sampler.run([(c, None, per_circuit) for c in circuits])
    try:
        result = job.result()
    except Exception as exc:
        raise QKLSTMError(f"run_calibration: calibration job {job.job_id()} on {device.name} failed: {exc}") from exc
    hits = np.zeros((len(qubits), 2))  # correct reads when prepared 0 / 1
    total = np.zeros((len(qubits), 2))
    for circuit, pub in zip(circuits, result):
        bits = next(iter(pub.data.values())).to_bool_array(order="little")  # (shots, n), column i = clbit i
        prepared = _prepared(circuit)
        correct = (bits == prepared).sum(axis=0)
        hits[np.arange(len(qubits)), prepared.astype(int)] += correct
        total[np.arange(len(qubits)), prepared.astype(int)] += bits.shape[0]
    matrices = {}
    for i, q in enumerate(qubits):
        p00, p11 = hits[i] / total[i]
        matrices[q] = np.array([[p00, 1.0 - p11], [1.0 - p00, p11]])
        if 1.0 - p11 >= p00:
            raise QKLSTMError(f"run_calibration: qubit {q} of {device.name} reads 0 as often from |1> as from |0> "
                              f"(P(0|0) = {p00:.3f}, P(0|1) = {1 - p11:.3f}): its readout cannot be corrected")
    now = datetime.now(timezone.utc)
    logger.info("readout calibration of %s qubits %s: %d circuits x %d shots", device.name, qubits, len(circuits),
                per_circuit)
    return ReadoutCalibration(
        backend=backend_name or str(device.name), matrices=matrices, shots=shots, date=now.date().isoformat(),
        time=now.isoformat(timespec="seconds"), circuits=len(circuits), shots_per_circuit=per_circuit,
        job_ids=(str(job.job_id()),),
    )


def reported_assignment_matrices(device, qubits: Sequence[int]) -> np.ndarray:
    """``(n, 2, 2)`` symmetric ``A_q`` from the device's reported readout errors (``target['measure'][q].error``).

    Used before anything runs (shot budgets); qubits without a reported error get 0.
    """
    out = []
    for q in qubits:
        try:
            error = device.target["measure"][(q,)].error or 0.0
        except (KeyError, TypeError):
            error = 0.0
        out.append([[1.0 - error, error], [error, 1.0 - error]])
    return np.asarray(out, dtype=float)
