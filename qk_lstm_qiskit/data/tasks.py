"""The one data-preparation path: sentences read, lower-cased, split and encoded the same way for
training (:func:`prepare_data`) and for every evaluation (:func:`evaluation_data`).

``config`` is a run's ``DataConfig``: ``source`` is ``paper`` (the paper's two sentences) or a
CoNLL-U path, read with its ``tag_column``, ``lowercase``, ``max_length`` and ``long_sentences``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..validation import check_int
from .conllu import build_vocabularies, read_conllu, split_corpus
from .corpus import TaggedSentence, Vocabulary, encode_corpus, paper_corpus

if TYPE_CHECKING:
    from ..config import DataConfig

__all__ = ["EvaluationData", "TaskData", "evaluation_data", "evaluation_sentences", "prepare_data", "read_sentences"]

Encoded = list[tuple[list[int], list[int]]]


@dataclass
class TaskData:
    """Encoded training and validation sentences and the vocabularies that index them."""

    train: Encoded
    validation: Encoded
    words: Vocabulary
    tags: Vocabulary


@dataclass
class EvaluationData:
    """Sentences to evaluate on: ``encoded`` with the checkpoint's vocabularies, gold tags the model
    never saw as :data:`~qk_lstm_qiskit.data.corpus.UNSEEN_TAG` (counted in ``unseen_tags``)."""

    source: str  # what was read, for reports
    sentences: list[TaggedSentence]
    encoded: Encoded
    unseen_tags: dict[str, int]

    @property
    def lengths(self) -> list[int]:
        return [len(ws) for ws, _ in self.sentences]


def read_sentences(source: str, config: DataConfig) -> list[TaggedSentence]:
    """The sentences of ``source`` (``paper`` or a CoNLL-U path) read with ``config``'s columns,
    lower-casing and long-sentence policy: the only place sentences are read and lower-cased."""
    if source == "paper":
        corpus = paper_corpus()
        return [([w.lower() for w in ws], ts) for ws, ts in corpus] if config.lowercase else corpus
    return read_conllu(
        source, tagset=config.tag_column, lowercase=config.lowercase,  # type: ignore[arg-type]
        max_length=config.max_length, long_sentences=config.long_sentences,  # type: ignore[arg-type]
    )


def _split(config: DataConfig) -> tuple[list[TaggedSentence], list[TaggedSentence], list[TaggedSentence]]:
    """``(all, train, validation)`` sentences of the training source, split with the config's seed."""
    corpus = read_sentences(config.source, config)
    if config.validation_fraction == 0:
        return corpus, list(corpus), []
    train, validation = split_corpus(corpus, validation_fraction=config.validation_fraction, seed=config.split_seed)
    return corpus, train, validation


def prepare_data(config: DataConfig) -> TaskData:
    """The encoded task of a ``DataConfig``: its sentences split, vocabularies built, both parts encoded.

    The paper's task has a closed, case-sensitive vocabulary (9 words, tags DET/NN/V, no ``<unk>``);
    a treebank gets ``<pad>``/``<unk>`` words from the training split (``min_freq`` cut-off) and
    every tag of the file (:func:`~qk_lstm_qiskit.data.conllu.build_vocabularies`).
    """
    corpus, train, validation = _split(config)
    if config.source == "paper":
        words = Vocabulary.build([w for w, _ in corpus], name="word")
        tags = Vocabulary([t for _, ts in corpus for t in ts], name="tag")
    else:
        words, tags = build_vocabularies(train, min_freq=config.min_freq, tag_corpus=corpus)
    return TaskData(encode_corpus(train, words, tags), encode_corpus(validation, words, tags), words, tags)


def evaluation_sentences(
    data: str | None, config: DataConfig, *, max_sentences: int | None = None
) -> tuple[list[TaggedSentence], str]:
    """``(sentences, description)`` named by ``data`` (``paper``, a CoNLL-U path) or, by default
    (``None``), the run's own validation split (its whole training source when it had none).

    Raises:
        FileNotFoundError, ValueError: an unreadable file (a file without sentences included).
    """
    check_int("evaluation_data", "max_sentences", max_sentences, 1, optional=True)
    if data is None:
        _, train, validation = _split(config)
        sentences = validation or train
        part = "validation split" if validation else ("training sentences" if config.source == "paper" else "training source")
        source = f"{config.source} ({part})"
    else:
        sentences, source = read_sentences(data, config), str(data)
    return sentences[:max_sentences], source


def evaluation_data(
    data: str | None, config: DataConfig, words: Vocabulary, tags: Vocabulary, *, max_sentences: int | None = None
) -> EvaluationData:
    """:func:`evaluation_sentences` encoded with a checkpoint's vocabularies (unseen gold tags counted).

    Raises:
        FileNotFoundError, ValueError: as :func:`evaluation_sentences`; an unknown word for a
            vocabulary without ``<unk>``.
    """
    sentences, source = evaluation_sentences(data, config, max_sentences=max_sentences)
    unseen = Counter(t for _, ts in sentences for t in ts if t not in tags)
    encoded = encode_corpus(sentences, words, tags, unseen_tags="count")
    return EvaluationData(source, sentences, encoded, dict(sorted(unseen.items())))
