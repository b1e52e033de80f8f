"""A finished job's sampler result on disk: one compressed ``.npz`` per job, rebuilt bit for bit.

:func:`write_result` keeps, for every PUB result, each ``DataBin`` field's
``BitArray`` — its packed bits ``array`` (uint8, shape ``(*pub shape, shots, ⌈num_bits/8⌉)``)
and ``num_bits`` — and the data bin's shape, plus the job id and the PUBs' fingerprint that
produced it. :func:`read_result` rebuilds an equal ``PrimitiveResult`` (same arrays,
``num_bits``, field names and shapes). Metadata is kept where it is plain JSON (shots, circuit
and simulator metadata); entries that are not (Runtime execution spans, datetimes) are dropped,
as nothing downstream reads them.

File layout: ``meta`` (a JSON string: format, job id, fingerprint, each PUB's shape, field
names and ``num_bits``, metadata) and ``pub<i>_field<j>`` (the uint8 arrays).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from qiskit.primitives import BitArray, DataBin, PrimitiveResult, SamplerPubResult

from ..errors import QKLSTMError
from ..rundir import atomic_write

__all__ = ["StoredResult", "read_result", "write_result"]

_FORMAT = 1


@dataclass(frozen=True)
class StoredResult:
    """What :func:`read_result` returns: the rebuilt result and the job and PUBs it came from."""

    result: PrimitiveResult
    job_id: str
    fingerprint: str


def _plain(metadata: Any) -> dict[str, Any]:
    """The top-level entries of ``metadata`` that survive a JSON round trip unchanged in kind."""
    kept = {}
    for key, value in dict(metadata or {}).items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            continue  # e.g. Runtime's ExecutionSpans: not needed to replay a result
        kept[str(key)] = value
    return kept


def write_result(result: PrimitiveResult, path: str | os.PathLike, *, job_id: str, fingerprint: str) -> None:
    """Write ``result`` (a sampler's ``PrimitiveResult``) to ``path`` atomically (``np.savez_compressed``, fsynced).

    Raises:
        TypeError: a PUB result's data field is not a ``BitArray`` (not a sampler result).
    """
    arrays: dict[str, Any] = {}  # Any: numpy's stub would match ``**arrays`` against allow_pickle: bool
    pubs = []
    for i, pub_result in enumerate(result):
        data = pub_result.data
        fields = []
        for j, (name, bits) in enumerate(data.items()):
            if not isinstance(bits, BitArray):
                raise TypeError(f"write_result: expected BitArray data fields, got {type(bits).__name__} for {name!r}")
            arrays[f"pub{i}_field{j}"] = np.asarray(bits.array, dtype=np.uint8)
            fields.append({"name": name, "num_bits": int(bits.num_bits)})
        pubs.append({"shape": list(data.shape), "fields": fields, "metadata": _plain(pub_result.metadata)})
    meta = {"format": _FORMAT, "job_id": str(job_id), "fingerprint": fingerprint, "pubs": pubs,
            "metadata": _plain(result.metadata)}
    arrays["meta"] = np.array(json.dumps(meta))
    with atomic_write(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())


def read_result(path: str | os.PathLike) -> StoredResult:
    """The result written by :func:`write_result` to ``path``, rebuilt.

    Raises:
        QKLSTMError: one line naming ``path`` when it is missing, truncated or not such a file.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as stored:
            meta = json.loads(str(stored["meta"][()]))
            if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
                raise ValueError(f"unknown format {meta.get('format') if isinstance(meta, dict) else meta!r}")
            pub_results = []
            for i, pub in enumerate(meta["pubs"]):
                shape = tuple(int(n) for n in pub["shape"])
                fields = {field["name"]: BitArray(stored[f"pub{i}_field{j}"], int(field["num_bits"]))
                          for j, field in enumerate(pub["fields"])}
                pub_results.append(SamplerPubResult(DataBin(shape=shape, **fields), metadata=pub["metadata"]))
            return StoredResult(PrimitiveResult(pub_results, metadata=meta["metadata"]), str(meta["job_id"]),
                                str(meta["fingerprint"]))
    except Exception as exc:  # zip, numpy, JSON, key and shape errors alike: the file is not usable
        detail = " ".join(str(exc).split()) or "no detail"
        raise QKLSTMError(
            f"read_result: cannot read the stored job result {path} ({type(exc).__name__}: {detail[:200]}); "
            "delete it to run that job again"
        ) from exc
