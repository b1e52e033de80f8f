"""Kernel-target alignment and its maximisation over a kernel's trainable circuit weights.

.. math::
    A(K, T) = \\frac{\\langle K, T\\rangle_F}{\\|K\\|_F \\|T\\|_F},\\qquad
    T_{ij} = \\begin{cases} 1 & y_i = y_j \\\\ -1 & y_i \\ne y_j \\end{cases}

(Cristianini et al. 2001; for binary ``y ∈ {±1}``, ``T = y yᵀ``). :func:`train_alignment` does
what qiskit-machine-learning's ``QuantumKernelTrainer`` does, on torch autograd: gradients of
``A`` reach the feature map's weights through the exact executor (or the kernel's sampler).
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
import torch

from .kernel import QuantumKernel
from ..validation import check_int

__all__ = ["target_matrix", "kernel_target_alignment", "train_alignment"]

logger = logging.getLogger(__name__)


def class_codes(owner: str, labels) -> torch.Tensor:
    """Class labels ``(N,)`` (ints, strings or any comparable values) as integer codes ``(N,)``."""
    if isinstance(labels, torch.Tensor):
        return labels
    values = np.asarray(labels)
    if values.dtype == object or values.dtype.kind not in "biuUS":
        raise TypeError(f"{owner}: expected labels to be ints or strings, got {values.dtype} values")
    return torch.as_tensor(np.unique(values, return_inverse=True)[1].reshape(values.shape))


def target_matrix(labels: torch.Tensor) -> torch.Tensor:
    """``T`` ``(N, N)``: +1 for equal labels, −1 otherwise, for class labels ``(N,)``."""
    labels = class_codes("target_matrix", labels)
    if labels.dim() != 1:
        raise ValueError(f"target_matrix: expected labels of shape (N,), got {tuple(labels.shape)}")
    same = labels[:, None] == labels[None, :]
    return same.double() * 2 - 1


def kernel_target_alignment(gram: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``A(K, T)`` (module docstring) of a Gram matrix ``(N, N)`` and labels ``(N,)``; differentiable in K."""
    if gram.dim() != 2 or gram.size(0) != gram.size(1) or gram.size(0) != len(labels):
        raise ValueError(
            f"kernel_target_alignment: expected a ({len(labels)}, {len(labels)}) Gram matrix, got {tuple(gram.shape)}"
        )
    target = target_matrix(labels).to(gram.dtype)
    return (gram * target).sum() / (gram.norm() * target.norm())


def train_alignment(
    kernel: QuantumKernel,
    x: torch.Tensor,
    labels: Sequence[int] | torch.Tensor,
    *,
    steps: int = 50,
    lr: float = 0.05,
    optimizer: torch.optim.Optimizer | None = None,
) -> list[float]:
    """Maximise ``A(K(x, x), T(labels))`` over ``kernel``'s trainable parameters with Adam.

    Returns:
        the alignment before every step and after the last (``steps + 1`` values).

    Raises:
        ValueError: the kernel has no trainable parameter, or shapes do not match.
    """
    check_int("train_alignment", "steps", steps, 0)
    parameters = [p for p in kernel.parameters() if p.requires_grad]
    if not parameters:
        raise ValueError("train_alignment: expected a kernel with trainable weights (e.g. trainable_layers >= 1), got none")
    labels = class_codes("train_alignment", labels)
    if x.dim() != 2 or x.size(0) != labels.numel():
        raise ValueError(f"train_alignment: expected x of shape ({labels.numel()}, d), got {tuple(x.shape)}")
    optimizer = optimizer or torch.optim.Adam(parameters, lr=lr)
    history = []
    for step in range(steps + 1):
        alignment = kernel_target_alignment(kernel(x, x), labels)
        history.append(float(alignment.detach()))
        if step == steps:
            break
        optimizer.zero_grad()
        (-alignment).backward()
        optimizer.step()
        logger.info("train_alignment: step %d alignment %.4f", step, history[-1])
    return history
