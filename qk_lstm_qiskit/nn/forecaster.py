"""Regression head for forecasting: (QK-)LSTM / QLSTM over a window of F columns → Linear → one value or T values."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import torch
from torch import nn

from ..validation import check_int
from .tagger import build_recurrent

if TYPE_CHECKING:
    from ..config import ModelConfig

__all__ = ["Forecaster", "build_forecaster"]


class Forecaster(nn.Module):
    """The value(s) ``horizon`` steps after a window, from the last hidden state.

    .. math:: \\hat y = W h_W + b, \\qquad h_W = \\text{recurrent}(x_1, …, x_W)

    Args:
        recurrent: a batch-first recurrent layer with ``hidden_size``.
        num_features: input columns ``F``.
        num_targets: ``None`` (default): one target, predictions ``(N,)``; an int ``T``: predictions ``(N, T)``.

    Shape:
        ``inputs``: ``(N, W, F)`` (standardised) → ``(N,)`` or ``(N, T)`` predictions (standardised).
    """

    def __init__(self, recurrent: nn.Module, num_features: int = 1, num_targets: int | None = None) -> None:
        super().__init__()
        check_int(type(self).__name__, "num_targets", num_targets, 1, optional=True)
        self.num_features, self.num_targets = num_features, num_targets
        self.recurrent = recurrent  # batch_first
        self.head = nn.Linear(cast(int, recurrent.hidden_size), num_targets or 1)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if inputs.dim() != 3 or inputs.size(-1) != self.num_features:
            raise ValueError(f"Forecaster: expected inputs of shape (N, W, {self.num_features}), got {tuple(inputs.shape)}")
        hidden, _ = self.recurrent(inputs)  # (N, W, H)
        out = self.head(hidden[:, -1])  # (N, T)
        return out if self.num_targets is not None else out.squeeze(-1)


def build_forecaster(
    config: ModelConfig, num_features: int = 1, *, num_targets: int | None = None, sampler=None, pass_manager=None,
    memory_limit: int | None = None,
) -> Forecaster:
    """The forecaster of ``config.kind`` (see :class:`Forecaster`); ``sampler``/``pass_manager`` reach the QK-LSTM kernels."""
    recurrent = build_recurrent(config, num_features, sampler=sampler, pass_manager=pass_manager, memory_limit=memory_limit)
    return Forecaster(recurrent, num_features, num_targets)
