"""The paper's task: nine case-sensitive words, three tags, strict vocabularies (qk_lstm_qiskit.data.corpus)."""

from __future__ import annotations

from pathlib import Path

import pytest

from qk_lstm_qiskit.config import DataConfig
from qk_lstm_qiskit.data.corpus import Vocabulary, encode_corpus
from qk_lstm_qiskit.data.tasks import prepare_data


PAPER_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "paper_pos.yaml"


def test_paper_task_has_nine_case_sensitive_words_and_three_tags():
    data = prepare_data(DataConfig())
    assert len(data.words) == 9 and len(data.tags) == 3
    assert set(data.words.itos) == {"The", "dog", "eat", "the", "ice", "Everybody", "read", "that", "book"}
    assert "The" in data.words and "the" in data.words and data.words.encode(["The"]) != data.words.encode(["the"])
    assert sorted(data.tags.itos) == ["DET", "NN", "V"]
    assert [len(ws) for ws, _ in data.train] == [5, 4] and data.validation == []
    assert data.tags.decode(data.train[0][1]) == ["DET", "NN", "V", "DET", "NN"]
    assert data.tags.decode(data.train[1][1]) == ["NN", "V", "DET", "NN"]


def test_unknown_word_or_tag_raises():
    data = prepare_data(DataConfig())
    with pytest.raises(ValueError, match=r"Vocabulary: unknown word 'cat' \(known: "):
        data.words.encode(["The", "cat"])
    with pytest.raises(ValueError, match=r"Vocabulary: unknown word 'THE'"):
        data.words.encode(["THE"])  # case-sensitive
    with pytest.raises(ValueError, match=r"Vocabulary: unknown tag 'ADJ' \(known: DET, NN, V\)"):
        data.tags.encode(["NN", "ADJ"])
    with pytest.raises(ValueError, match=r"Vocabulary: unknown word 'cat'"):
        encode_corpus([(["The", "cat"], ["DET", "NN"])], data.words, data.tags)
    with pytest.raises(ValueError, match=r"encode_corpus: expected a non-empty sentence with one tag per word, got 2 words and 1 tags in sentence 1"):
        encode_corpus([(["The", "dog"], ["DET"])], data.words, data.tags)
    # with an unk token, unknown words map to it instead
    vocab = Vocabulary(["a"], unk="<unk>", name="word")
    assert vocab.encode(["a", "zzz"]) == [1, 0]
