"""Regression head for forecasting: (QK-)LSTM / QLSTM over a window → Linear → one value."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from .tagger import build_recurrent

if TYPE_CHECKING:
    from ..config import ModelConfig

__all__ = ["Forecaster", "build_forecaster"]


class Forecaster(nn.Module):
    """The value ``horizon`` steps after a window, from the last hidden state.

    .. math:: \\hat y = w^\\top h_W + b, \\qquad h_W = \\text{recurrent}(x_1, …, x_W)

    Shape:
        ``inputs``: ``(N, W, F)`` (standardised) → ``(N,)`` predictions (standardised).
    """

    def __init__(self, recurrent: nn.Module, num_features: int = 1) -> None:
        super().__init__()
        self.num_features = num_features
        self.recurrent = recurrent  # batch_first
        self.head = nn.Linear(recurrent.hidden_size, 1)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if inputs.dim() != 3 or inputs.size(-1) != self.num_features:
            raise ValueError(f"Forecaster: expected inputs of shape (N, W, {self.num_features}), got {tuple(inputs.shape)}")
        hidden, _ = self.recurrent(inputs)  # (N, W, H)
        return self.head(hidden[:, -1]).squeeze(-1)


def build_forecaster(
    config: ModelConfig, num_features: int = 1, *, sampler=None, pass_manager=None, memory_limit: int | None = None
) -> Forecaster:
    """The forecaster of ``config.kind``; ``sampler``/``pass_manager`` reach the QK-LSTM kernels."""
    return Forecaster(build_recurrent(config, num_features, sampler=sampler, pass_manager=pass_manager,
                                      memory_limit=memory_limit), num_features)
