"""Samplers by name: the one module that imports qiskit_aer and qiskit_ibm_runtime.

Names: ``exact`` (torch statevector executor, no sampler) and ``aer`` (ideal Aer ``SamplerV2``
with ``shots`` and ``seed``).
"""

from __future__ import annotations

__all__ = ["BACKEND_KINDS", "make_sampler"]

BACKEND_KINDS = ("exact", "aer")


def make_sampler(backend: str = "exact", *, shots: int | None = None, seed: int | None = None):
    """A ``BaseSamplerV2`` for ``backend``, or ``None`` for the exact executor.

    Raises:
        ValueError: unknown backend name or ``shots <= 0``.
    """
    if shots is not None and (isinstance(shots, bool) or not isinstance(shots, int) or shots <= 0):
        raise ValueError(f"make_sampler: expected shots to be a positive int, got {shots!r}")
    if backend == "exact":
        return None
    if backend == "aer":
        from qiskit_aer.primitives import SamplerV2

        run_options = {"shots": shots or 1024}
        if seed is not None:
            run_options["seed"] = seed
        return SamplerV2(options={"run_options": run_options})
    raise ValueError(f"make_sampler: expected backend in {BACKEND_KINDS}, got {backend!r}")
