"""The executor's memory policy: one limit per executor, one check, rows in chunks that fit."""

from __future__ import annotations

import psutil
import torch

__all__ = ["MEMORY_FRACTION", "MemoryPolicy", "default_memory_limit", "state_bytes"]

MEMORY_FRACTION = 0.5  #: default limit: this fraction of the memory available when a call starts
WORK_COPIES = 3  # state-sized buffers live per row while a stage runs: input, output, one temporary
_SMALL_CALL = 2**26  # bytes (64 MiB): below this a call is not checked against the available memory
_CHUNK_BYTES = 2**30  # working memory of one chunk (1 GiB): larger chunks are no faster, only bigger


def default_memory_limit(device: torch.device | str | None = None) -> int:
    """``MEMORY_FRACTION`` of the memory available now on ``device`` (host RAM, or the CUDA device's)."""
    device = torch.device(device if device is not None else "cpu")
    if device.type == "cuda":
        available = torch.cuda.mem_get_info(device)[0]
    else:
        available = psutil.virtual_memory().available
    return int(MEMORY_FRACTION * available)


def state_bytes(num_qubits: int, rows: int, dtype: torch.dtype = torch.float32) -> int:
    """Bytes of ``rows`` states ``(rows, 2**n)`` of the complex dtype that goes with ``dtype``."""
    return rows * 2**num_qubits * (8 if dtype == torch.float32 else 16)  # complex64 / complex128


def _gb(num_bytes: int) -> str:
    return f"{num_bytes / 2**30:.3g} GiB ({num_bytes} bytes)"


class MemoryPolicy:
    """How many rows of ``num_qubits``-qubit states a call may hold at once.

    Args:
        num_qubits: the states' qubits.
        limit: bytes a call may allocate (``None``: :func:`default_memory_limit` at call time).

    Raises:
        ValueError: ``limit`` is not a positive int or ``None``.
    """

    def __init__(self, num_qubits: int, limit: int | None = None) -> None:
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0):
            raise ValueError(f"StatevectorExecutor: expected memory_limit to be a positive int (bytes) or None, got {limit!r}")
        self.num_qubits, self.limit = num_qubits, limit

    def limit_for(self, device: torch.device | str | None = None) -> int:
        """The limit in force for a call on ``device`` (bytes)."""
        return self.limit if self.limit is not None else default_memory_limit(device)

    def chunk_rows(self, rows: int, dtype: torch.dtype, device, *, held: int = 0, copies: int = WORK_COPIES,
                   what: str = "states") -> int:
        """Rows per chunk so that ``held`` bytes plus ``copies`` state buffers per row fit the limit.

        Raises:
            MemoryError: not even one row fits (names qubits, rows and bytes), before allocating.
        """
        per_row = state_bytes(self.num_qubits, copies, dtype)
        if self.limit is None and held + per_row * rows <= _SMALL_CALL:
            return max(1, rows)  # small calls skip the query of the available memory (a system call)
        limit = self.limit_for(device)
        if held + per_row > limit:
            raise MemoryError(
                f"StatevectorExecutor: {what} of {self.num_qubits} qubits for {rows} rows need at least "
                f"{_gb(held + per_row)} ({_gb(state_bytes(self.num_qubits, 1, dtype))} per state), over the memory "
                f"limit of {_gb(limit)}; use fewer qubits or rows, or raise the limit (executor.memory_limit_gb)"
            )
        return max(1, min(rows, min(limit - held, _CHUNK_BYTES) // per_row))
