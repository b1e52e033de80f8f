"""A :class:`~qk_lstm_qiskit.kernels.kernel.QuantumKernel` as a qiskit-machine-learning ``BaseKernel``.

``QSVC``, ``QSVR``, ``PegasosQSVC`` and ``sklearn.svm.SVC(kernel="precomputed")`` then use this
package's exact executor (or the kernel's sampler) for their Gram matrices.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from qiskit_machine_learning.kernels import BaseKernel

if TYPE_CHECKING:
    from .kernel import QuantumKernel

__all__ = ["QiskitKernel", "nearest_psd"]


def nearest_psd(matrix: np.ndarray) -> np.ndarray:
    """The closest positive semi-definite matrix (Frobenius norm) to a symmetric ``matrix``:
    negative eigenvalues clipped to 0, as qiskit-ml's ``enforce_psd``."""
    eigenvalues, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.maximum(eigenvalues, 0.0)) @ vectors.T


class QiskitKernel(BaseKernel):
    """``BaseKernel.evaluate(x_vec, y_vec=None)`` → numpy Gram matrix of a ``QuantumKernel``.

    .. math:: K_{nm} = |\\langle 0| U^\\dagger(y_m) U(x_n) |0\\rangle|^2

    Evaluated without gradients in float64 on the exact path (float32 through a sampler).
    With ``y_vec=None`` the matrix is symmetric with unit diagonal and, if ``enforce_psd``,
    projected onto the PSD cone as in qiskit-ml. ``feature_map`` is the circuit the kernel runs
    (for a :class:`~qk_lstm_qiskit.circuits.feature_map.CircuitFeatureMap`, its source circuit
    with the current weights bound).

    Args:
        kernel: the :class:`QuantumKernel` (its trainable weights are read at every call).
        enforce_psd: project ``evaluate(x)`` onto the PSD cone (default True).

    Shape:
        ``x_vec``: ``(N, d)`` or ``(d,)``, ``y_vec``: ``(M, d)`` or ``(d,)`` → ``(N, M)``.

    Raises:
        TypeError: ``kernel`` is not a ``QuantumKernel``.
        ValueError: inputs of the wrong shape or with NaN/inf.

    Example:
        >>> import numpy as np
        >>> from sklearn.svm import SVC
        >>> from qk_lstm_qiskit import FeatureMap, QuantumKernel
        >>> qk = QuantumKernel(FeatureMap(2, reps=2)).to_qiskit()
        >>> x_train, y_train = np.array([[0.1, 0.2], [0.3, -0.4], [-1.0, 0.5], [0.8, 0.9]]), np.array([0, 0, 1, 1])
        >>> gram = qk.evaluate(x_train)  # (4, 4), ones on the diagonal
        >>> gram.shape, bool(np.allclose(np.diag(gram), 1.0))
        ((4, 4), True)
        >>> SVC(kernel="precomputed").fit(gram, y_train).predict(qk.evaluate(x_train, x_train)).shape
        (4,)
    """

    def __init__(self, kernel: QuantumKernel, *, enforce_psd: bool = True) -> None:
        if not (isinstance(kernel, torch.nn.Module) and callable(getattr(kernel, "prepare", None))
                and hasattr(kernel, "feature_map")):
            raise TypeError(f"QiskitKernel: expected kernel to be a QuantumKernel, got {type(kernel).__name__}")
        super().__init__(feature_map=kernel.feature_map.bound_circuit(), enforce_psd=enforce_psd)
        self.kernel = kernel

    @property
    def num_features(self) -> int:
        return self.kernel.num_features

    @property
    def feature_map(self):
        """The circuit ``U(x)`` (current weights bound)."""
        return self.kernel.feature_map.bound_circuit()

    def _as_matrix(self, name: str, vec) -> torch.Tensor:
        array = np.asarray(vec, dtype=float)
        if array.ndim == 1:
            array = array[None, :]
        d = self.num_features
        if array.ndim != 2 or array.shape[1] != d:
            raise ValueError(f"QiskitKernel: expected {name} of shape (N, {d}) or ({d},), got {np.shape(vec)}")
        if not np.isfinite(array).all():
            raise ValueError(f"QiskitKernel: expected finite values in {name}, got {array[~np.isfinite(array)][0]}")
        return torch.from_numpy(array)

    def evaluate(self, x_vec: np.ndarray, y_vec: np.ndarray | None = None) -> np.ndarray:
        """Gram matrix ``(N, M)`` (``(N, N)`` for ``y_vec=None``) as float64 numpy."""
        x = self._as_matrix("x_vec", x_vec)
        y = x if y_vec is None else self._as_matrix("y_vec", y_vec)
        with torch.no_grad():
            matrix = self.kernel(x, y).double().cpu().numpy()
        if y_vec is None:
            matrix = (matrix + matrix.T) / 2
            np.fill_diagonal(matrix, 1.0)
            if self.enforce_psd:
                matrix = nearest_psd(matrix)
        return matrix
