r"""Real POS-tagging data: CoNLL-U treebanks (Universal Dependencies) read with the ``conllu`` package.

The reader keeps the *syntactic words* of each sentence (integer ids ``1..n``): multi-word token
lines (``3-4``) and empty nodes (``5.1``) are skipped, so ``don't`` contributes ``do`` + ``n't``.
Tags come from the UPOS column (default) or the XPOS column. The words vocabulary is built on the
training split only (``<pad>`` at index 0, ``<unk>`` at index 1, ``min_freq`` cut-off); the tag
vocabulary has neither (padding uses :data:`~qk_lstm_qiskit.data.corpus.PAD_TAG` in the targets).

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = Path(folder) / "tiny.conllu"
    ...     _ = path.write_text("1\tThe\tthe\tDET\tDT\t_\t2\tdet\t_\t_\n"
    ...                         "2\tdog\tdog\tNOUN\tNN\t_\t0\troot\t_\t_\n\n")
    ...     sentences = read_conllu(path)
    >>> sentences
    [(['The', 'dog'], ['DET', 'NOUN'])]
    >>> words, tags = build_vocabularies(sentences)
    >>> words.itos, tags.itos
    (['<pad>', '<unk>', 'The', 'dog'], ['DET', 'NOUN'])
"""

from __future__ import annotations

import logging
import math
import os
import random
from pathlib import Path
from typing import Literal, Sequence

import conllu
from conllu.exceptions import ParseException

from .corpus import TaggedSentence, Vocabulary
from ..validation import check_int, check_number

__all__ = [
    "PAD_WORD",
    "UNK_WORD",
    "build_vocabularies",
    "read_conllu",
    "split_corpus",
]

logger = logging.getLogger(__name__)

PAD_WORD = "<pad>"  #: the padding word, index 0 of every words vocabulary
UNK_WORD = "<unk>"  #: what rare and unseen words encode as, index 1

CONLLU_FIELDS = ("id", "form", "lemma", "upos", "xpos", "feats", "head", "deprel", "deps", "misc")
TAGSETS = ("upos", "xpos")
LONG_SENTENCE_POLICIES = ("error", "truncate", "skip")


def _decode(path: Path, raw: bytes) -> str:
    """UTF-8 text of ``raw`` (a BOM is dropped); ``ValueError`` naming the file and line otherwise."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ValueError(
            f"read_conllu: expected a UTF-8 CoNLL-U text file, got undecodable byte "
            f"0x{raw[exc.start]:02x} in {path} line {line}"
        ) from exc
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise ValueError(f"read_conllu: expected a CoNLL-U text file, got a NUL byte (binary data) in {path} line {line}")
    return text


def _blocks(lines: Sequence[str]) -> list[tuple[int, list[str]]]:
    """Blank-line separated blocks as ``(line number of the first line, lines)`` (1-based)."""
    blocks: list[tuple[int, list[str]]] = []
    current: list[str] = []
    start = 0
    for number, line in enumerate(lines, start=1):
        if line.strip():
            if not current:
                start = number
            current.append(line)
        elif current:
            blocks.append((start, current))
            current = []
    if current:
        blocks.append((start, current))
    return blocks


def _parse_block(path: Path, start: int, block: list[str], fields: Sequence[str]) -> conllu.TokenList:
    """One sentence through ``conllu``; column-count and parse errors name the file and line."""
    for offset, line in enumerate(block):
        if line.startswith("#"):
            continue
        columns = len(line.split("\t"))
        if columns != len(fields):
            raise ValueError(
                f"read_conllu: expected {len(fields)} tab-separated columns in {path} line {start + offset}, "
                f"got {columns}: {line[:60]!r}"
            )
    try:
        return conllu.parse_token_and_metadata("\n".join(block), fields=fields)
    except ParseException as exc:
        # Locate the offending line by parsing the lines one at a time (still with ``conllu``).
        bad = start
        for offset, line in enumerate(block):
            if line.startswith("#"):
                continue
            try:
                conllu.parse_token_and_metadata(line, fields=fields)
            except ParseException:
                bad = start + offset
                break
        raise ValueError(f"read_conllu: expected a valid CoNLL-U line in {path} line {bad}, got {exc}") from exc


def read_conllu(
    path: str | os.PathLike,
    *,
    tagset: Literal["upos", "xpos"] = "upos",
    lowercase: bool = False,
    max_length: int | None = None,
    long_sentences: Literal["error", "truncate", "skip"] = "error",
) -> list[TaggedSentence]:
    """Tagged sentences ``(words, tags)`` of a CoNLL-U file, in file order.

    Args:
        path: the ``.conllu`` file (read in place, never copied).
        tagset: ``"upos"`` (default, 17 universal tags) or ``"xpos"`` (language-specific tags).
        lowercase: lower-case every word form (default ``False``).
        max_length: longest sentence allowed, in syntactic words; ``None`` (default) for no limit.
        long_sentences: what a sentence longer than ``max_length`` does: ``"error"`` (default,
            ``ValueError``), ``"truncate"`` (keep its first ``max_length`` words) or ``"skip"``
            (drop it). Truncations and skips are logged at INFO level.

    Returns:
        ``list[(words, tags)]`` with ``len(words) == len(tags) >= 1``. Multi-word token lines
        (``3-4``) and empty nodes (``5.1``) are skipped; comment-only blocks are ignored.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        TypeError: ``path`` is not a string or path.
        ValueError: bad options; ``path`` is a directory, empty, binary, not UTF-8, or not CoNLL-U
            (wrong number of columns, invalid id or head, missing tag, word ids not ``1..n``) — the
            message names the file and line; a sentence longer than ``max_length`` with
            ``long_sentences="error"`` — the message names the sentence, its length and the limit.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"read_conllu: expected path to be a str or os.PathLike, got {type(path).__name__}")
    if tagset not in TAGSETS:
        raise ValueError(f"read_conllu: expected tagset in {TAGSETS}, got {tagset!r}")
    if long_sentences not in LONG_SENTENCE_POLICIES:
        raise ValueError(f"read_conllu: expected long_sentences in {LONG_SENTENCE_POLICIES}, got {long_sentences!r}")
    check_int("read_conllu", "max_length", max_length, 1, optional=True)
    path = Path(path)
    if not path.exists():
        hint = ("; treebanks are not shipped: download one from https://universaldependencies.org/ (e.g. UD_English-EWT) "
                "and pass its path with --data" if path.suffix == ".conllu" else "")
        raise FileNotFoundError(f"read_conllu: expected an existing CoNLL-U file, got missing path {path}{hint}")
    if path.is_dir():
        raise ValueError(f"read_conllu: expected a CoNLL-U file, got directory {path}")
    text = _decode(path, path.read_bytes())
    lines = [line.rstrip("\r") for line in text.split("\n")]

    fields: Sequence[str] = CONLLU_FIELDS
    if lines and lines[0].startswith("# global.columns ="):  # CoNLL-U Plus
        fields = [f.lower() for f in lines[0].split("=", 1)[1].split()]
        missing = [name.upper() for name in ("id", "form", tagset) if name not in fields]
        if missing:
            raise ValueError(
                f"read_conllu: expected {', '.join(missing)} column(s) in {path} global.columns, got {lines[0][19:].strip()!r}"
            )

    corpus: list[TaggedSentence] = []
    truncated = skipped = number = 0
    for start, block in _blocks(lines):
        if all(line.startswith("#") for line in block):
            continue  # document-level comments
        number += 1
        sentence = _parse_block(path, start, block, fields)
        words: list[str] = []
        tags: list[str] = []
        token_lines = [start + i for i, line in enumerate(block) if not line.startswith("#")]
        for token, line_number in zip(sentence, token_lines):
            token_id = token["id"]
            if isinstance(token_id, tuple):  # (3, "-", 4) multi-word token or (5, ".", 1) empty node
                continue
            if token_id != len(words) + 1:
                raise ValueError(
                    f"read_conllu: expected word id {len(words) + 1} in {path} line {line_number}, got {token_id!r}"
                )
            tag = token[tagset]
            if tag is None or tag == "_":
                raise ValueError(
                    f"read_conllu: expected a {tagset.upper()} tag in {path} line {line_number}, got {tag or '_'!r}"
                )
            form = token["form"]
            words.append(form.lower() if lowercase else form)
            tags.append(tag)
        if not words:
            raise ValueError(f"read_conllu: expected at least one word in sentence {number} of {path} line {start}, got 0")
        if max_length is not None and len(words) > max_length:
            if long_sentences == "error":
                sent_id = sentence.metadata.get("sent_id")
                name = f"sentence {number}" + (f" (sent_id {sent_id})" if sent_id else "")
                raise ValueError(
                    f"read_conllu: expected sentences of at most max_length={max_length} words, got {len(words)} "
                    f"words in {name} of {path} line {start}"
                )
            if long_sentences == "skip":
                skipped += 1
                continue
            truncated += 1
            words, tags = words[:max_length], tags[:max_length]
        corpus.append((words, tags))
    if not corpus:
        what = "an empty file" if number == 0 and not skipped else f"no sentence of at most {max_length} words"
        raise ValueError(f"read_conllu: expected at least one sentence in {path}, got {what}")
    if truncated or skipped:
        logger.info("%s: truncated %d and skipped %d sentences longer than %s words", path, truncated, skipped, max_length)
    logger.debug("%s: %d sentences, %d words", path, len(corpus), sum(len(w) for w, _ in corpus))
    return corpus


def split_corpus(
    corpus: Sequence[TaggedSentence], *, validation_fraction: float = 0.1, seed: int = 0
) -> tuple[list[TaggedSentence], list[TaggedSentence]]:
    """Deterministic ``(train, validation)`` split; both keep the corpus order.

    ``round(validation_fraction * len(corpus))`` sentences, drawn by ``random.Random(seed)``, go to
    validation. The same corpus, fraction and seed always give the same split.

    Raises:
        ValueError: ``validation_fraction`` outside ``(0, 1)``, or a split that would be empty.
    """
    check_number("split_corpus", "validation_fraction", validation_fraction, minimum=0, maximum=1, strict=True)
    n = len(corpus)
    n_val = math.floor(validation_fraction * n + 0.5)
    if n_val == 0 or n_val == n:
        empty = "validation" if n_val == 0 else "training"
        raise ValueError(
            f"split_corpus: expected non-empty training and validation splits, got an empty {empty} split "
            f"({n} sentences, validation_fraction={validation_fraction})"
        )
    order = list(range(n))
    random.Random(seed).shuffle(order)
    validation_ids = set(order[:n_val])
    train = [corpus[i] for i in range(n) if i not in validation_ids]
    validation = [corpus[i] for i in range(n) if i in validation_ids]
    return train, validation


def build_vocabularies(
    train: Sequence[TaggedSentence], *, min_freq: int = 1, tag_corpus: Sequence[TaggedSentence] | None = None
) -> tuple[Vocabulary, Vocabulary]:
    """``(words, tags)`` vocabularies.

    Words (training sentences only): ``<pad>`` (index 0), ``<unk>`` (index 1), then the forms seen
    at least ``min_freq`` times, most frequent first; rarer and unseen forms encode as ``<unk>``.
    Tags: every tag of ``tag_corpus`` (default ``train``), most frequent first, no ``<pad>`` /
    ``<unk>``. :func:`~qk_lstm_qiskit.data.tasks.prepare_data` passes the whole file as ``tag_corpus``: the label set is
    part of the task, so a rare tag drawn only into the validation split still gets an output.
    """
    if not train:
        raise ValueError("build_vocabularies: expected at least one training sentence, got 0")
    words = Vocabulary.build((w for w, _ in train), min_freq=min_freq, pad=PAD_WORD, unk=UNK_WORD, name="word")
    tags = Vocabulary.build((t for _, t in (train if tag_corpus is None else tag_corpus)), name="tag")
    return words, tags
