"""Fidelity kernels ``k(x, y) = |<0|U†(y)U(x)|0>|²`` and the ways to compute them.

``kernel``: :class:`QuantumKernel`, a feature map and one fidelity; ``fidelity``: the protocol every
way of computing kernels implements, and its registry; one file per fidelity: ``exact`` (statevectors,
adjoint gradient), ``product`` (Bloch vectors), ``shift`` (the parameter-shift reference), ``sampler``
(compute–uncompute on a ``BaseSamplerV2``), ``measured`` (``U(x)`` measured alone against known
references); ``routes``: the kernels a fused recurrent layer runs; ``statevector``: the exact executor;
``diagnostics``: concentration, geometric difference, effective dimension; ``alignment``: kernel-target
alignment training; ``qiskit_ml``: the qiskit-machine-learning ``BaseKernel`` adapter.
"""

# Every fidelity module registers its fidelity on import: import them all, so that the registry
# (``fidelity.FIDELITIES``) is complete wherever a fidelity is named.
from . import exact, product, sampler, shadows, shift, shot_noise, tomography  # noqa: E402,F401
