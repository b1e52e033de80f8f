"""Package-wide exception and warning types."""

from __future__ import annotations

__all__ = ["QKLSTMError", "ProductKernelWarning", "TaskInferredWarning"]


class QKLSTMError(RuntimeError):
    """A backend or sampler-job failure (re-raised ``from`` its cause); bad arguments raise ``ValueError``/``TypeError``."""


class ProductKernelWarning(UserWarning):
    """The feature map's fidelity kernel factorises into single-qubit kernels.

    Such a kernel is a product of 2x2 overlaps and can be computed classically in O(n);
    add re-uploading layers (``reps >= 2``) to make the entangler matter.
    """


class TaskInferredWarning(FutureWarning):
    """A config file names no ``task``; the loader took the one its ``data.source`` implies
    (configs written before tasks were named keep working; name the task to silence it)."""
