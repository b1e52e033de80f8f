"""A tagging task ready to train on: encoded sentences and the vocabularies that index them.

``prepare_data(config.data)`` is the one data-preparation path: the paper's two sentences
(``source: paper``) or a CoNLL-U treebank split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .conllu import encode_treebank, load_treebank
from .corpus import TaggedSentence, Vocabulary, encode_corpus, paper_corpus

if TYPE_CHECKING:
    from ..config import DataConfig

__all__ = ["TaskData", "prepare_data", "load_task"]


@dataclass
class TaskData:
    """Encoded sentences and the vocabularies that index them."""

    train: list[tuple[list[int], list[int]]]
    validation: list[tuple[list[int], list[int]]]
    words: Vocabulary
    tags: Vocabulary


def _encode(train: list[TaggedSentence], validation: list[TaggedSentence], words: Vocabulary, tags: Vocabulary) -> TaskData:
    return TaskData(encode_corpus(train, words, tags), encode_corpus(validation, words, tags), words, tags)


def prepare_data(config: DataConfig) -> TaskData:
    """The paper's two sentences (``source: paper``) or a CoNLL-U treebank split."""
    if config.source == "paper":
        corpus = paper_corpus()
        words = Vocabulary.build([w for w, _ in corpus], name="word")  # 9 case-sensitive words
        tags = Vocabulary([t for _, ts in corpus for t in ts], name="tag")  # DET, NN, V
        return _encode(corpus, [], words, tags)
    return load_task(config)


def load_task(config: DataConfig) -> TaskData:
    """The encoded task of a ``DataConfig`` whose ``source`` is a CoNLL-U path (used by the trainer)."""
    data = load_treebank(
        config.source,
        validation_fraction=config.validation_fraction,
        seed=config.split_seed,
        min_freq=config.min_freq,
        tagset=config.tag_column,  # type: ignore[arg-type]
        lowercase=config.lowercase,
        max_length=config.max_length,
        long_sentences=config.long_sentences,  # type: ignore[arg-type]
    )
    return TaskData(
        encode_treebank(data.train, data.words, data.tags),
        encode_treebank(data.validation, data.words, data.tags),
        data.words,
        data.tags,
    )
