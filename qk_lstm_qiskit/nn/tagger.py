"""Sequence taggers: Embedding → (QK-)LSTM / QLSTM → Linear → log-softmax."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import torch
from torch import nn

from ..circuits.library import FeatureMapSpec
from ..kernels.fidelity import make_fidelity
from .lstm import QKLSTM
from .qlstm import QLSTM

if TYPE_CHECKING:
    from ..config import ModelConfig

__all__ = ["MODEL_KINDS", "Tagger", "build_recurrent", "build_tagger", "count_parameters", "feature_map_spec"]

MODEL_KINDS = ("qk-lstm", "lstm", "qlstm")  #: the recurrent layers a model can use (``model.kind``)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable scalars."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


class Tagger(nn.Module):
    """Per-token tag log-probabilities.

    Shape:
        ``words``: ``(N, L)`` long → ``(N, L, num_tags)`` log-probabilities.
    """

    def __init__(self, vocab_size: int, num_tags: int, embedding_dim: int, recurrent: nn.Module) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.recurrent = recurrent  # batch_first
        self.classifier = nn.Linear(cast(int, recurrent.hidden_size), num_tags)

    def forward(self, words: torch.Tensor) -> torch.Tensor:
        if words.dim() != 2:
            raise ValueError(f"Tagger: expected words of shape (N, L), got {tuple(words.shape)}")
        if words.numel() and (words.min() < 0 or words.max() >= self.embedding.num_embeddings):
            raise ValueError(
                f"Tagger: expected word indices in [0, {self.embedding.num_embeddings}), "
                f"got [{words.min().item()}, {words.max().item()}]"
            )
        hidden, _ = self.recurrent(self.embedding(words))  # (N, L, H)
        return torch.log_softmax(self.classifier(hidden), dim=-1)


def feature_map_spec(config: ModelConfig) -> FeatureMapSpec:
    """The feature map a QK-LSTM of ``config`` builds."""
    return FeatureMapSpec(
        config.feature_map, config.num_qubits, reps=config.reps, entanglement=config.entanglement,
        paulis=tuple(config.paulis.split(",")), trainable_layers=config.trainable_layers,
        input_scaling=config.input_scaling, trainable_scaling=config.trainable_scaling,
    )


def build_recurrent(
    config: ModelConfig, input_size: int, *, sampler=None, pass_manager=None, memory_limit: int | None = None,
    fidelity: str | None = None,
) -> nn.Module:
    """The batch-first recurrent layer of ``config.kind`` over inputs of size ``input_size``; ``memory_limit``:
    bytes each exact executor may allocate per call (default: a fraction of the memory available);
    ``fidelity``: a registered fidelity's name for the QK-LSTM kernels, built on ``sampler`` and
    ``pass_manager`` when a sampler is given (default: compute-uncompute on a sampler, else exact)."""
    h = config.hidden_dim
    if config.kind == "lstm":
        return nn.LSTM(input_size, h, num_layers=config.num_layers, batch_first=True)
    if config.kind == "qlstm":
        return QLSTM(
            input_size, h, num_layers=config.num_layers, batch_first=True, num_qubits=config.num_qubits,
            depth=config.vqc_depth, memory_limit=memory_limit,
        )
    if config.kind == "qk-lstm":
        return QKLSTM(
            input_size, h, num_layers=config.num_layers, batch_first=True, num_references=config.num_references,
            feature_map=feature_map_spec(config), weighting=config.weighting, references=config.references,
            memory_limit=memory_limit, **_kernel_options(fidelity, sampler, pass_manager),
        )
    raise ValueError(f"build_recurrent: expected kind in {MODEL_KINDS}, got {config.kind!r}")


def _kernel_options(fidelity: str | None, sampler, pass_manager) -> dict:
    """The QK-LSTM's kernel keywords: the sampler as given, or the fidelity ``fidelity`` built on it."""
    if fidelity is None:
        return {"sampler": sampler, "pass_manager": pass_manager}
    if sampler is None:
        return {"fidelity": fidelity}
    return {"fidelity": lambda fm: make_fidelity(fidelity, fm, sampler=sampler, pass_manager=pass_manager)}


def build_tagger(
    config: ModelConfig, vocab_size: int, num_tags: int, *, sampler=None, pass_manager=None,
    memory_limit: int | None = None, fidelity: str | None = None,
) -> Tagger:
    """The tagger of ``config.kind``; ``sampler``/``pass_manager``/``fidelity`` reach the QK-LSTM kernels
    (:func:`build_recurrent`)."""
    if config.kind not in MODEL_KINDS:
        raise ValueError(f"build_tagger: expected kind in {MODEL_KINDS}, got {config.kind!r}")
    recurrent = build_recurrent(config, config.embedding_dim, sampler=sampler, pass_manager=pass_manager,
                                memory_limit=memory_limit, fidelity=fidelity)
    return Tagger(vocab_size, num_tags, config.embedding_dim, recurrent)
