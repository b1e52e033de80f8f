"""What a fidelity kernel does on data: product or not, concentration, power of data, spectrum.

* **Product kernel**: decided from the compiled circuit (``StatevectorExecutor.is_product_circuit``).
* **Exponential concentration** (Thanasilp et al., arXiv 2208.11060): mean and variance of the
  off-diagonal ``k(x, x')`` against the qubit count, with and without a bandwidth ``s``
  (``k(s x, s x')``, Shaydulin & Wild, arXiv 2111.05451).
* **Power of data** (Huang et al., *Nat. Commun.* 12, 2631 (2021)): with Gram matrices scaled to
  trace ``N``, the geometric difference
  :math:`g(K^C \\| K^Q) = \\sqrt{\\| \\sqrt{K^Q} (K^C + \\lambda I)^{-1} \\sqrt{K^Q} \\|_\\infty}`
  to an RBF kernel (large ``g``: a classical kernel may not match the quantum one) and the
  model complexity :math:`s_K(y) = y^\\top (K + \\lambda I)^{-1} y` of labels ``y ∈ {±1}``.
* **Effective dimension** of the Gram spectrum: the participation ratio
  :math:`(\\sum_i \\lambda_i)^2 / \\sum_i \\lambda_i^2` (1: one direction; ``N``: flat spectrum).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..circuits.feature_map import FeatureMap
from .kernel import QuantumKernel
from .statevector.memory import default_memory_limit, state_bytes

__all__ = [
    "offdiagonal_stats",
    "rbf_gram",
    "geometric_difference",
    "model_complexity",
    "effective_dimension",
    "concentration",
    "check_concentration_memory",
    "diagnose",
    "plot_diagnostics",
]


def _normalized(gram: np.ndarray) -> np.ndarray:
    """``gram`` scaled to trace ``N`` (Huang et al.'s convention)."""
    return gram * (gram.shape[0] / np.trace(gram))


def offdiagonal_stats(gram: np.ndarray) -> tuple[float, float]:
    """Mean and variance of the off-diagonal entries of a square ``gram`` ``(N, N)``, ``N >= 2``."""
    gram = np.asarray(gram, dtype=float)
    if gram.ndim != 2 or gram.shape[0] != gram.shape[1] or gram.shape[0] < 2:
        raise ValueError(f"offdiagonal_stats: expected a square (N, N) matrix with N >= 2, got shape {gram.shape}")
    values = gram[~np.eye(gram.shape[0], dtype=bool)]
    return float(values.mean()), float(values.var())


def rbf_gram(x: np.ndarray, gamma: float | None = None) -> np.ndarray:
    """``exp(-γ ‖x_i − x_j‖²)`` for ``x`` ``(N, d)``; ``γ = 1 / (d · var(x))`` (scikit-learn's "scale")."""
    x = np.asarray(x, dtype=float)
    if gamma is None:
        variance = x.var()
        gamma = 1.0 / (x.shape[1] * variance) if variance > 0 else 1.0
    squared = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    return np.exp(-gamma * squared)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    eigenvalues, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ vectors.T


def geometric_difference(quantum: np.ndarray, classical: np.ndarray, regularization: float = 1e-3) -> float:
    """``g(K^C ‖ K^Q)`` (module docstring) of two ``(N, N)`` Gram matrices, both scaled to trace N."""
    kq, kc = _normalized(np.asarray(quantum, float)), _normalized(np.asarray(classical, float))
    if kq.shape != kc.shape or kq.ndim != 2 or kq.shape[0] != kq.shape[1]:
        raise ValueError(f"geometric_difference: expected two (N, N) matrices, got {kq.shape} and {kc.shape}")
    root = _psd_sqrt(kq)
    inner = root @ np.linalg.solve(kc + regularization * np.eye(len(kc)), root)
    return float(math.sqrt(max(float(np.linalg.norm(inner, ord=2)), 0.0)))


def model_complexity(gram: np.ndarray, labels: np.ndarray, regularization: float = 1e-3) -> float:
    """``s_K(y) = y^T (K + λI)^{-1} y`` with ``K`` scaled to trace N; integer class labels are
    averaged over their one-vs-rest ``±1`` labellings."""
    k = _normalized(np.asarray(gram, float))
    labels = np.asarray(labels)
    if labels.shape != (k.shape[0],):
        raise ValueError(f"model_complexity: expected labels of shape ({k.shape[0]},), got {labels.shape}")
    classes = np.unique(labels)
    targets = [np.where(labels == c, 1.0, -1.0) for c in (classes[:1] if len(classes) == 2 else classes)]
    solve = np.linalg.solve(k + regularization * np.eye(len(k)), np.stack(targets, 1))  # (N, C)
    return float(np.mean([t @ solve[:, i] for i, t in enumerate(targets)]))


def effective_dimension(gram: np.ndarray) -> float:
    """Participation ratio ``(Σλ)² / Σλ²`` of the eigenvalues of a symmetric ``gram``."""
    eigenvalues = np.clip(np.linalg.eigvalsh((gram + gram.T) / 2), 0.0, None)
    return float(eigenvalues.sum() ** 2 / np.square(eigenvalues).sum())


def _gram(kernel: QuantumKernel, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return kernel(x, x).double().cpu().numpy()


def check_concentration_memory(
    make_map: Callable[[int], FeatureMap], qubits: Sequence[int], *, num_samples: int = 32,
) -> None:
    """Refuse concentration rows whose states cannot be held, before any is simulated.

    A row of an entangling map holds the ``num_samples`` states of both sides of its Gram matrix,
    ``2 · num_samples · 2^n`` complex128 amplitudes (product maps need none: Bloch vectors).

    Raises:
        MemoryError: one line naming the qubit count, the bytes and the executor's limit.
    """
    for n in sorted(set(qubits), reverse=True):
        kernel = QuantumKernel(make_map(n).double(), warn=False)
        if kernel.is_product_kernel:
            continue
        needed = 2 * state_bytes(n, num_samples, torch.float64)
        limit = default_memory_limit()
        if needed > limit:
            raise MemoryError(
                f"concentration: {n} qubits need {needed / 2**30:.3g} GiB for the {num_samples} sample states of both "
                f"sides, over the executor's memory limit of {limit / 2**30:.3g} GiB; use fewer qubits"
            )


def concentration(
    make_map: Callable[[int], FeatureMap],
    qubits: Sequence[int] = (2, 4, 6, 8),
    bandwidths: Sequence[float] = (1.0, 0.1),
    *,
    num_samples: int = 32,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Off-diagonal mean and variance of ``k(s x, s x')`` for ``x ~ U[-π, π]^n`` per qubit count and ``s``.

    Returns:
        rows ``{"num_qubits", "bandwidth", "mean", "var", "product_kernel"}``.
    """
    check_concentration_memory(make_map, qubits, num_samples=num_samples)
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for n in qubits:
        kernel = QuantumKernel(make_map(n).double())
        x = (torch.rand(num_samples, kernel.num_features, generator=generator, dtype=torch.float64) * 2 - 1) * math.pi
        for s in bandwidths:
            mean, var = offdiagonal_stats(_gram(kernel, x * s))
            rows.append({"num_qubits": n, "bandwidth": s, "mean": mean, "var": var,
                         "product_kernel": kernel.is_product_kernel})
    return rows


def diagnose(
    kernel: QuantumKernel,
    x: torch.Tensor,
    labels: Sequence[int] | None = None,
    *,
    make_map: Callable[[int], FeatureMap] | None = None,
    qubits: Sequence[int] = (2, 4, 6, 8),
    bandwidths: Sequence[float] = (1.0, 0.1),
    regularization: float = 1e-3,
    seed: int = 0,
) -> dict[str, Any]:
    """The module's diagnostics of ``kernel`` on the sample ``x`` ``(N, d)`` (JSON-ready dict).

    ``make_map(n)`` builds the same kind of map on ``n`` qubits for the concentration rows
    (omitted: none). ``labels`` (``N`` class labels) add the model complexities.
    """
    if not isinstance(kernel, QuantumKernel):
        raise TypeError(f"diagnose: expected kernel to be a QuantumKernel, got {type(kernel).__name__}")
    if x.dim() != 2 or x.size(0) < 2 or x.size(1) != kernel.num_features:
        raise ValueError(f"diagnose: expected x of shape (N >= 2, {kernel.num_features}), got {tuple(x.shape)}")
    x = x.detach().double()
    quantum = _gram(kernel, x)
    classical = rbf_gram(x.numpy())
    mean, var = offdiagonal_stats(quantum)
    sample: dict[str, Any] = {
        "num_points": int(x.size(0)),
        "offdiagonal_mean": mean,
        "offdiagonal_var": var,
        "geometric_difference_rbf": geometric_difference(quantum, classical, regularization),
        "effective_dimension": effective_dimension(quantum),
        "effective_dimension_rbf": effective_dimension(classical),
    }
    if labels is not None:
        sample["model_complexity"] = model_complexity(quantum, np.asarray(labels), regularization)
        sample["model_complexity_rbf"] = model_complexity(classical, np.asarray(labels), regularization)
    return {
        "feature_map": kernel.feature_map.extra_repr(),
        "num_qubits": kernel.feature_map.num_qubits,
        "product_kernel": kernel.is_product_kernel,
        "regularization": regularization,
        "sample": sample,
        "concentration": [] if make_map is None else concentration(make_map, qubits, bandwidths, seed=seed),
    }


def plot_diagnostics(report: dict[str, Any], path) -> None:
    """Concentration plot (off-diagonal mean ± std against qubits, one line per bandwidth) as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    for s in sorted({row["bandwidth"] for row in report["concentration"]}, reverse=True):
        rows = [r for r in report["concentration"] if r["bandwidth"] == s]
        n = [r["num_qubits"] for r in rows]
        left.semilogy(n, [r["mean"] for r in rows], "o-", label=f"s = {s:g}")
        right.semilogy(n, [max(r["var"], 1e-300) for r in rows], "o-", label=f"s = {s:g}")
    left.set(xlabel="qubits", ylabel="mean off-diagonal k", title="kernel concentration")
    right.set(xlabel="qubits", ylabel="variance of off-diagonal k")
    left.legend()
    fig.suptitle(report["feature_map"], fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
