"""Tagged sentences, vocabularies and padded batches; the paper's two-sentence POS task."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Sequence

import torch
from ..validation import check_choice, check_int

__all__ = [
    "PAD_TAG",
    "UNSEEN_TAG",
    "UNSEEN_TAG_POLICIES",
    "PAPER_SENTENCES",
    "Batch",
    "TaggedSentence",
    "Vocabulary",
    "encode_corpus",
    "make_batches",
    "paper_corpus",
]

PAD_TAG = -100  #: target index ignored by the loss and the accuracy
UNSEEN_TAG = -1  #: target index of a gold tag absent from the training tag vocabulary (never predicted)
UNSEEN_TAG_POLICIES = ("error", "count")  #: what an unseen gold tag does: raise, or count as an error

TaggedSentence = tuple[list[str], list[str]]  #: one sentence: ``(words, tags)``, equally long

#: The paper's task (docs/guide/concepts.md): case-sensitive, 9 distinct words, tags {DET, NN, V}.
PAPER_SENTENCES: tuple[TaggedSentence, ...] = (
    ("The dog eat the ice".split(), ["DET", "NN", "V", "DET", "NN"]),
    ("Everybody read that book".split(), ["NN", "V", "DET", "NN"]),
)


def paper_corpus() -> list[TaggedSentence]:
    """The two hand-tagged sentences of the paper, as fresh lists."""
    return [(list(words), list(tags)) for words, tags in PAPER_SENTENCES]


class Vocabulary:
    """Token ↔ index map, in first-seen order after the special tokens.

    Args:
        tokens: the known tokens (duplicates ignored).
        pad: padding token placed at index 0, or ``None`` (default).
        unk: token that unknown inputs map to, or ``None`` to reject unknown tokens.
        name: what the tokens are (``"word"``, ``"tag"``), used in error messages.
    """

    def __init__(self, tokens: Iterable[str], *, pad: str | None = None, unk: str | None = None, name: str = "token"):
        self.pad, self.unk, self.name = pad, unk, name
        self.itos: list[str] = [t for t in (pad, unk) if t is not None]
        for token in tokens:
            if token not in self.itos:
                self.itos.append(token)
        self.stoi = {t: i for i, t in enumerate(self.itos)}

    @classmethod
    def build(
        cls, sequences: Iterable[Sequence[str]], *, min_freq: int = 1, pad: str | None = None,
        unk: str | None = None, name: str = "token",
    ) -> "Vocabulary":
        """Vocabulary of the tokens seen at least ``min_freq`` times, most frequent first."""
        check_int("Vocabulary.build", "min_freq", min_freq, 1)
        counts = Counter(t for seq in sequences for t in seq)
        kept = [t for t, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if c >= min_freq]
        return cls(kept, pad=pad, unk=unk, name=name)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    @property
    def pad_index(self) -> int | None:
        return None if self.pad is None else self.stoi[self.pad]

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """Indices of ``tokens``; unknown ones map to ``unk`` or raise ``ValueError``."""
        out = []
        for token in tokens:
            index = self.stoi.get(token)
            if index is None:
                if self.unk is None:
                    shown = ", ".join(self.itos[:12]) + (", …" if len(self) > 12 else "")
                    raise ValueError(f"Vocabulary: unknown {self.name} {token!r} (known: {shown})")
                index = self.stoi[self.unk]
            out.append(index)
        return out

    def decode(self, indices: Iterable[int]) -> list[str]:
        return [self.itos[i] for i in indices]

    def to_dict(self) -> dict:
        return {"itos": self.itos, "pad": self.pad, "unk": self.unk, "name": self.name}

    @classmethod
    def from_dict(cls, state: dict) -> "Vocabulary":
        specials = [t for t in (state["pad"], state["unk"]) if t is not None]
        return cls(state["itos"][len(specials) :], pad=state["pad"], unk=state["unk"], name=state["name"])


@dataclass
class Batch:
    """Padded batch. ``words`` ``(N, L)`` long, ``tags`` ``(N, L)`` long with ``PAD_TAG`` on padding."""

    words: torch.Tensor
    tags: torch.Tensor

    @property
    def mask(self) -> torch.Tensor:
        """``(N, L)`` bool, True on real tokens."""
        return self.tags != PAD_TAG


def encode_corpus(
    corpus: Sequence[TaggedSentence], words: Vocabulary, tags: Vocabulary, *, unseen_tags: str = "error"
) -> list[tuple[list[int], list[int]]]:
    """Index every sentence: the one encoding used by training and every evaluation.

    Unknown words go through ``words.unk`` (a vocabulary without one raises ``ValueError``). A gold
    tag absent from ``tags`` (evaluating on another file than the one trained on) raises
    ``ValueError`` naming the tag and sentence (``unseen_tags="error"``, default), or is encoded as
    :data:`UNSEEN_TAG` (``"count"``): it stays inside ``Batch.mask`` and counts as a wrong prediction
    (the model cannot output it); losses leave it out (``targets >= 0``).

    Raises:
        ValueError: an empty sentence, a words/tags length mismatch, an unknown word or tag as above.
    """
    check_choice("encode_corpus", "unseen_tags", unseen_tags, UNSEEN_TAG_POLICIES)
    encoded = []
    for number, (ws, ts) in enumerate(corpus, start=1):
        if not ws or len(ws) != len(ts):
            raise ValueError(
                f"encode_corpus: expected a non-empty sentence with one tag per word, got {len(ws)} words "
                f"and {len(ts)} tags in sentence {number}"
            )
        tag_ids = []
        for tag in ts:
            index = tags.stoi.get(tag)
            if index is None:
                if unseen_tags == "error":
                    raise ValueError(
                        f"encode_corpus: expected tags of the training vocabulary ({len(tags)} tags: "
                        f"{', '.join(tags.itos)}), got {tag!r} in sentence {number}"
                    )
                index = UNSEEN_TAG
            tag_ids.append(index)
        encoded.append((words.encode(ws), tag_ids))
    return encoded


def make_batches(
    encoded: Sequence[tuple[list[int], list[int]]],
    batch_size: int,
    *,
    pad_index: int = 0,
    generator: torch.Generator | None = None,
    bucket_batches: int = 0,
) -> list[Batch]:
    """Split into batches padded to their own longest sentence.

    Args:
        generator: shuffle the sentences (and, with buckets, the batches) with it; ``None`` keeps order.
        bucket_batches: ``> 0`` sorts every pool of ``bucket_batches · batch_size`` consecutive
            (shuffled) sentences by length before cutting it into batches, then shuffles the batches:
            sentences of similar length share a batch, so far fewer padded time steps are computed.
    """
    if batch_size < 1:
        raise ValueError(f"make_batches: expected batch_size >= 1, got {batch_size}")
    if bucket_batches < 0:
        raise ValueError(f"make_batches: expected bucket_batches >= 0, got {bucket_batches}")
    order = list(range(len(encoded)))
    if generator is not None:
        order = torch.randperm(len(encoded), generator=generator).tolist()
    if bucket_batches:
        pool = bucket_batches * batch_size
        order = [i for start in range(0, len(order), pool)
                 for i in sorted(order[start : start + pool], key=lambda i: len(encoded[i][0]))]
    batches = []
    for start in range(0, len(order), batch_size):
        chunk = [encoded[i] for i in order[start : start + batch_size]]
        length = max(len(ws) for ws, _ in chunk)
        words = torch.full((len(chunk), length), pad_index, dtype=torch.long)
        tags = torch.full((len(chunk), length), PAD_TAG, dtype=torch.long)
        for row, (ws, ts) in enumerate(chunk):
            words[row, : len(ws)] = torch.tensor(ws)
            tags[row, : len(ts)] = torch.tensor(ts)
        batches.append(Batch(words, tags))
    if bucket_batches and generator is not None:
        batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
    return batches
