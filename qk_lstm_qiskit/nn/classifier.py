"""Sequence classifier: (QK-)LSTM / QLSTM over a padded batch → one summary per sequence → Linear → logits."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import torch
from torch import nn

from ..validation import check_choice, check_int, check_tensor
from .tagger import build_recurrent

if TYPE_CHECKING:
    from ..config import ModelConfig

__all__ = ["POOLINGS", "SequenceClassifier", "build_classifier", "pool_hidden"]

POOLINGS = ("last", "mean")  #: how a sequence becomes one vector: the last hidden state, or the mean over steps


def pool_hidden(hidden: torch.Tensor, lengths: torch.Tensor, pooling: str) -> torch.Tensor:
    """One vector per sequence from the recurrent outputs of a right-padded batch.

    .. math::
        s_n = h_{n, L_n} \\ (\\texttt{last}), \\qquad s_n = \\frac{1}{L_n} \\sum_{t \\le L_n} h_{n,t} \\ (\\texttt{mean})

    The recurrence is causal, so the states up to ``L_n`` never see the padding after them.

    Shape:
        ``hidden``: ``(N, L, H)``, ``lengths``: ``(N,)`` long in ``[1, L]`` → ``(N, H)``.
    """
    if pooling == "last":
        return hidden[torch.arange(hidden.size(0), device=hidden.device), lengths.to(hidden.device) - 1]
    steps = torch.arange(hidden.size(1), device=hidden.device)
    mask = (steps[None, :] < lengths.to(hidden.device)[:, None]).to(hidden.dtype)  # (N, L): 1 on real steps
    return (hidden * mask.unsqueeze(-1)).sum(dim=1) / lengths.to(hidden.device, hidden.dtype)[:, None]


class SequenceClassifier(nn.Module):
    """Class logits of whole sequences.

    .. math:: z = W s + b, \\qquad s = \\text{pool}(h_1, …, h_{L}),\\quad h = \\text{recurrent}(x_1, …, x_L)

    Args:
        recurrent: a batch-first recurrent layer with ``hidden_size`` (``nn.LSTM``, ``QKLSTM``, ``QLSTM``).
        num_channels: input channels ``C``. num_classes: ``K >= 2``.
        pooling: ``last`` (the state after each sequence's last real step) or ``mean`` (masked mean over its steps).

    Shape:
        ``inputs``: ``(N, L, C)`` zero-padded after each sequence's end; ``lengths``: ``(N,)`` long in
        ``[1, L]`` (default: all ``L``) → ``(N, K)`` logits.
    """

    def __init__(self, recurrent: nn.Module, num_channels: int, num_classes: int, *, pooling: str = "last") -> None:
        super().__init__()
        check_int(type(self).__name__, "num_channels", num_channels, 1)
        check_int(type(self).__name__, "num_classes", num_classes, 2)
        check_choice(type(self).__name__, "pooling", pooling, POOLINGS)
        self.num_channels, self.num_classes, self.pooling = num_channels, num_classes, pooling
        self.recurrent = recurrent  # batch_first
        self.head = nn.Linear(cast(int, recurrent.hidden_size), num_classes)

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        owner = type(self).__name__
        if inputs.dim() != 3 or inputs.size(-1) != self.num_channels or inputs.size(1) == 0:
            raise ValueError(f"{owner}: expected inputs of shape (N, L >= 1, {self.num_channels}), got {tuple(inputs.shape)}")
        if lengths is None:
            lengths = torch.full((inputs.size(0),), inputs.size(1), dtype=torch.long)
        check_tensor(owner, "lengths", lengths, dtypes=(torch.long,))
        if lengths.shape != (inputs.size(0),) or (lengths < 1).any() or (lengths > inputs.size(1)).any():
            raise ValueError(f"{owner}: expected lengths of shape ({inputs.size(0)},) in [1, {inputs.size(1)}], "
                             f"got shape {tuple(lengths.shape)} with values {lengths.tolist()[:8]}")
        hidden, _ = self.recurrent(inputs)  # (N, L, H)
        return self.head(pool_hidden(hidden, lengths, self.pooling))

    def extra_repr(self) -> str:
        return f"num_channels={self.num_channels}, num_classes={self.num_classes}, pooling={self.pooling!r}"


def build_classifier(
    config: ModelConfig, num_channels: int, num_classes: int, *, pooling: str = "last", sampler=None, pass_manager=None,
    memory_limit: int | None = None,
) -> SequenceClassifier:
    """The classifier of ``config.kind`` over ``num_channels`` inputs; ``sampler``/``pass_manager`` reach the QK-LSTM
    kernels, ``memory_limit`` (bytes) the exact executors."""
    recurrent = build_recurrent(config, num_channels, sampler=sampler, pass_manager=pass_manager, memory_limit=memory_limit)
    return SequenceClassifier(recurrent, num_channels, num_classes, pooling=pooling)
