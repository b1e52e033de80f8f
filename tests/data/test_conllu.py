"""CoNLL-U reading, splitting and vocabularies (qk_lstm_qiskit.data.conllu)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conllu.exceptions import ParseException

from qk_lstm_qiskit.data.corpus import PAD_TAG, UNSEEN_TAG, encode_corpus, make_batches
from qk_lstm_qiskit.data.conllu import (
    build_vocabularies,
    read_conllu,
    split_corpus,
)
from qk_lstm_qiskit.data.tasks import prepare_data

UD_DEV = Path(__file__).resolve().parents[3] / "shared" / "data" / "ud_english_ewt" / "en_ewt-ud-dev.conllu"
if not UD_DEV.exists():
    UD_DEV = Path("/work/shared/data/ud_english_ewt/en_ewt-ud-dev.conllu")


def row(*cols: str) -> str:
    return "\t".join(cols)


def word(i: int | str, form: str, upos: str, xpos: str = "_", head: str = "0") -> str:
    return row(str(i), form, form.lower(), upos, xpos, "_", head, "dep", "_", "_")


# Sentence 1: a multi-word token ("don't" = do + n't) and an empty node (2.1); sentence 2: plain.
SAMPLE = "\n".join(
    [
        "# newdoc id = doc1",
        "# sent_id = s1",
        "# text = I don't know",
        word(1, "I", "PRON", "PRP"),
        row("2-3", "don't", "_", "_", "_", "_", "_", "_", "_", "_"),
        word(2, "do", "AUX", "VBP"),
        row("2.1", "know", "know", "VERB", "VB", "_", "_", "_", "0:root", "_"),
        word(3, "n't", "PART", "RB"),
        word(4, "Know", "VERB", "VB"),
        "",
        "# sent_id = s2",
        word(1, "The", "DET", "DT"),
        word(2, "dog", "NOUN", "NN"),
        word(3, "barks", "VERB", "VBZ"),
        "",
    ]
)


def write(tmp_path: Path, text: str | bytes, name: str = "sample.conllu") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_reads_syntactic_words_skipping_multiword_tokens_and_empty_nodes(tmp_path):
    corpus = read_conllu(write(tmp_path, SAMPLE))
    assert corpus == [
        (["I", "do", "n't", "Know"], ["PRON", "AUX", "PART", "VERB"]),
        (["The", "dog", "barks"], ["DET", "NOUN", "VERB"]),
    ]


def test_xpos_and_lowercase_options(tmp_path):
    corpus = read_conllu(write(tmp_path, SAMPLE), tagset="xpos", lowercase=True)
    assert corpus[0] == (["i", "do", "n't", "know"], ["PRP", "VBP", "RB", "VB"])
    assert corpus[1][1] == ["DT", "NN", "VBZ"]


def test_crlf_bom_comment_blocks_and_no_final_newline(tmp_path):
    text = "# global comment\n\n\n" + SAMPLE.strip()
    path = write(tmp_path, b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8"))
    assert read_conllu(path) == read_conllu(write(tmp_path, SAMPLE, "plain.conllu"))


def test_conllu_plus_global_columns(tmp_path):
    text = "# global.columns = ID FORM UPOS\n" + "\n".join([row("1", "Hi", "INTJ"), row("2", "!", "PUNCT")]) + "\n"
    assert read_conllu(write(tmp_path, text)) == [(["Hi", "!"], ["INTJ", "PUNCT"])]
    with pytest.raises(ValueError, match=r"expected XPOS column\(s\) in .* global.columns, got 'ID FORM UPOS'"):
        read_conllu(write(tmp_path, text, "plus.conllu"), tagset="xpos")
    with pytest.raises(ValueError, match=r"expected FORM column\(s\) in .* global.columns, got 'ID UPOS'"):
        read_conllu(write(tmp_path, "# global.columns = ID UPOS\n1\tNOUN\n", "noform.conllu"))


# ---- maximum sentence length -------------------------------------------------------------------


def test_long_sentence_error_names_file_sentence_length_and_maximum(tmp_path):
    path = write(tmp_path, SAMPLE)
    with pytest.raises(ValueError) as info:
        read_conllu(path, max_length=3)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message and "sentence 1" in message and "sent_id s1" in message
    assert "max_length=3" in message and "got 4 words" in message and "line 1" in message


def test_long_sentence_truncate_and_skip(tmp_path):
    path = write(tmp_path, SAMPLE)
    assert read_conllu(path, max_length=3, long_sentences="truncate")[0] == (["I", "do", "n't"], ["PRON", "AUX", "PART"])
    assert read_conllu(path, max_length=3, long_sentences="skip") == [(["The", "dog", "barks"], ["DET", "NOUN", "VERB"])]
    assert len(read_conllu(path, max_length=4)) == 2  # the limit is inclusive
    with pytest.raises(ValueError, match=r"expected at least one sentence in .*, got no sentence of at most 2 words"):
        read_conllu(path, max_length=2, long_sentences="skip")


# ---- bad input ---------------------------------------------------------------------------------


def test_missing_file_names_the_path(tmp_path):
    missing = tmp_path / "nope.conllu"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        read_conllu(missing)


def test_directory_and_wrong_path_type(tmp_path):
    with pytest.raises(ValueError, match=r"expected a CoNLL-U file, got directory"):
        read_conllu(tmp_path)
    with pytest.raises(TypeError, match=r"expected path to be a str or os.PathLike, got int"):
        read_conllu(3)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["", "\n\n  \n", "# only = comments\n# more\n"])
def test_empty_file(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(ValueError, match=rf"expected at least one sentence in {re.escape(str(path))}, got an empty file"):
        read_conllu(path)


def test_csv_file_names_file_and_line(tmp_path):
    path = write(tmp_path, "word,tag\nthe,DET\n", "data.csv")
    with pytest.raises(ValueError, match=rf"expected 10 tab-separated columns in {re.escape(str(path))} line 1, got 1"):
        read_conllu(path)


def test_wrong_number_of_columns_names_line(tmp_path):
    lines = SAMPLE.split("\n")
    lines[12] = row("2", "dog", "dog", "NOUN")  # sentence 2, second word: 4 columns
    path = write(tmp_path, "\n".join(lines))
    with pytest.raises(ValueError, match=r"expected 10 tab-separated columns in .* line 13, got 4"):
        read_conllu(path)


@pytest.mark.parametrize(
    ("bad_line", "what"),
    [
        (word("x", "dog", "NOUN"), "'x' is not a valid ID"),
        (word(3, "barks", "VERB", head="root"), "'root' is not a valid value"),
    ],
)
def test_conllu_parse_errors_are_reraised_with_line(tmp_path, bad_line, what):
    lines = SAMPLE.split("\n")
    lines[13] = bad_line  # sentence 2, third word
    path = write(tmp_path, "\n".join(lines))
    with pytest.raises(ValueError, match=rf"expected a valid CoNLL-U line in .* line 14, got .*{what}") as info:
        read_conllu(path)
    assert isinstance(info.value.__cause__, ParseException)


def test_non_consecutive_word_ids_and_missing_tag(tmp_path):
    lines = SAMPLE.split("\n")
    lines[12] = word(3, "dog", "NOUN")
    with pytest.raises(ValueError, match=r"expected word id 2 in .* line 13, got 3"):
        read_conllu(write(tmp_path, "\n".join(lines)))
    with pytest.raises(ValueError, match=r"expected a XPOS tag in .* line 6, got '_'"):
        read_conllu(write(tmp_path, SAMPLE.replace("\tAUX\tVBP\t", "\tAUX\t_\t"), "x.conllu"), tagset="xpos")


def test_binary_and_non_utf8_files(tmp_path):
    with pytest.raises(ValueError, match=r"expected a UTF-8 CoNLL-U text file, got undecodable byte 0xff in .* line 2"):
        read_conllu(write(tmp_path, b"# ok\n\xff\xfe\x00\x01"))
    with pytest.raises(ValueError, match=r"got a NUL byte \(binary data\) in .* line 1"):
        read_conllu(write(tmp_path, b"PK\x03\x04\x00\x00\x00", "zip.conllu"))


def test_bad_options(tmp_path):
    path = write(tmp_path, SAMPLE)
    with pytest.raises(ValueError, match=r"expected tagset in \('upos', 'xpos'\), got 'deprel'"):
        read_conllu(path, tagset="deprel")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"expected long_sentences in .*, got 'cut'"):
        read_conllu(path, long_sentences="cut")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"expected max_length >= 1, got 0"):
        read_conllu(path, max_length=0)


# ---- split -------------------------------------------------------------------------------------


def toy_corpus(n: int) -> list:
    return [([f"w{i}"], ["X"]) for i in range(n)]


def test_split_is_deterministic_disjoint_and_ordered():
    corpus = toy_corpus(50)
    train, validation = split_corpus(corpus, validation_fraction=0.2, seed=7)
    assert (len(train), len(validation)) == (40, 10)
    assert split_corpus(corpus, validation_fraction=0.2, seed=7) == (train, validation)
    assert split_corpus(corpus, validation_fraction=0.2, seed=8)[1] != validation
    position = {s[0][0]: i for i, s in enumerate(corpus)}
    for part in (train, validation):
        assert [position[s[0][0]] for s in part] == sorted(position[s[0][0]] for s in part)
    assert sorted(position[s[0][0]] for s in train + validation) == list(range(50))


def test_empty_split_and_bad_fraction():
    with pytest.raises(ValueError, match=r"got an empty validation split \(4 sentences, validation_fraction=0.1\)"):
        split_corpus(toy_corpus(4), validation_fraction=0.1)
    with pytest.raises(ValueError, match=r"got an empty training split \(1 sentences"):
        split_corpus(toy_corpus(1), validation_fraction=0.9)
    for bad in (0, 1, 1.5, -0.1):
        with pytest.raises(ValueError, match=r"expected 0 < validation_fraction < 1, got"):
            split_corpus(toy_corpus(10), validation_fraction=bad)
    with pytest.raises(TypeError, match=r"expected validation_fraction to be a number, got str '0.1'"):
        split_corpus(toy_corpus(10), validation_fraction="0.1")  # type: ignore[arg-type]


# ---- vocabularies and encoding -----------------------------------------------------------------


def test_vocabularies_min_freq_pad_unk_and_tags_without_unk():
    train = [(["a", "b", "a"], ["X", "Y", "X"]), (["a", "c"], ["X", "Z"])]
    words, tags = build_vocabularies(train, min_freq=2)
    assert words.itos == ["<pad>", "<unk>", "a"]
    assert (words.pad_index, words.stoi["<unk>"]) == (0, 1)
    assert words.encode(["a", "b", "never"]) == [2, 1, 1]
    assert tags.itos == ["X", "Y", "Z"] and tags.unk is None and tags.pad is None
    with pytest.raises(ValueError, match=r"Vocabulary.build: expected min_freq >= 1, got 0"):
        build_vocabularies(train, min_freq=0)
    with pytest.raises(ValueError, match=r"expected at least one training sentence, got 0"):
        build_vocabularies([])


def test_unseen_tags_error_or_count_as_wrong():
    words, tags = build_vocabularies([(["a", "b"], ["X", "Y"])])
    evaluation = [(["a", "z"], ["X", "NEW"])]
    with pytest.raises(ValueError, match=r"expected tags of the training vocabulary \(2 tags: X, Y\), got 'NEW' in sentence 1"):
        encode_corpus(evaluation, words, tags)
    encoded = encode_corpus(evaluation, words, tags, unseen_tags="count")
    assert encoded == [([2, 1], [0, UNSEEN_TAG])]
    (batch,) = make_batches(encoded, 4)
    assert batch.mask.sum().item() == 2  # the unseen tag is a real token ...
    predictions = batch.tags.clamp(min=0)  # ... a perfect model on the known tags still misses it
    accuracy = (predictions == batch.tags)[batch.mask].float().mean().item()
    assert accuracy == 0.5 and UNSEEN_TAG != PAD_TAG
    with pytest.raises(ValueError, match=r"expected unseen_tags in \('error', 'count'\), got 'skip'"):
        encode_corpus(evaluation, words, tags, unseen_tags="skip")  # type: ignore[arg-type]


def test_prepare_data_words_from_training_split_tags_from_whole_file(tmp_path):
    sentences = []
    for i in range(10):
        tag = "INTJ" if i == 3 else "NOUN"  # a tag that only one sentence has
        sentences += [f"# sent_id = {i}", word(1, f"word{i}", tag), word(2, ".", "PUNCT"), ""]
    path = write(tmp_path, "\n".join(sentences))
    from qk_lstm_qiskit.config import DataConfig

    task = prepare_data(DataConfig(source=str(path), validation_fraction=0.2, split_seed=1))
    assert (len(task.train), len(task.validation)) == (8, 2)
    unk = task.words.stoi["<unk>"]
    assert all(ws[0] == unk for ws, _ in task.validation)  # validation-only forms go through <unk>
    assert all(ws[0] != unk for ws, _ in task.train)
    assert task.tags.itos == ["PUNCT", "NOUN", "INTJ"]  # INTJ kept whichever split sentence 3 is in
    everything = prepare_data(DataConfig(source=str(path), validation_fraction=0))
    assert (len(everything.train), everything.validation) == (10, [])


def test_prepare_data_encodes_a_data_config(tmp_path):
    from qk_lstm_qiskit.config import DataConfig

    path = write(tmp_path, SAMPLE)
    task = prepare_data(DataConfig(source=str(path), tag_column="xpos", lowercase=True, validation_fraction=0.5, split_seed=3))
    assert len(task.train) == len(task.validation) == 1
    assert "know" in task.words and "Know" not in task.words and "VBZ" in task.tags
    assert all(len(w) == len(t) for w, t in task.train + task.validation)
    with pytest.raises(ValueError, match=r"max_length=2 words, got 4 words in sentence 1"):
        prepare_data(DataConfig(source=str(path), max_length=2))


@pytest.mark.skipif(not UD_DEV.exists(), reason=f"UD English EWT dev file not found at {UD_DEV}")
def test_real_ud_english_ewt_dev():
    corpus = read_conllu(UD_DEV)
    assert len(corpus) == 2001
    assert len({t for _, tags in corpus for t in tags}) == 17
    assert sum(len(w) for w, _ in corpus) == 25147  # syntactic words (359 multi-word tokens, 4 empty nodes skipped)
    assert corpus[0] == (["From", "the", "AP", "comes", "this", "story", ":"], ["ADP", "DET", "PROPN", "VERB", "DET", "NOUN", "PUNCT"])


def test_length_buckets_keep_every_sentence_and_cut_padding():
    """``bucket_batches`` regroups the same sentences into batches of similar length, reproducibly."""
    import torch

    from qk_lstm_qiskit.data.corpus import make_batches

    lengths = [1 + (7 * i) % 23 for i in range(200)]
    encoded = [([i] * n, [0] * n) for i, n in enumerate(lengths)]

    def run(bucket: int, seed: int = 0):
        return make_batches(encoded, 8, generator=torch.Generator().manual_seed(seed), bucket_batches=bucket)

    plain, bucketed = run(0), run(5)
    sentences = sorted(int(row[0]) for b in bucketed for row in b.words)
    assert sentences == list(range(200))  # every sentence once
    assert all(int(b.mask[r].sum()) == lengths[int(b.words[r, 0])] for b in bucketed for r in range(len(b.words)))
    cells = lambda batches: sum(b.words.numel() for b in batches)  # noqa: E731
    assert cells(bucketed) < 0.75 * cells(plain)
    assert [b.words.tolist() for b in run(5)] == [b.words.tolist() for b in bucketed]  # same generator, same batches
    assert [b.words.tolist() for b in run(5, seed=1)] != [b.words.tolist() for b in bucketed]
    with pytest.raises(ValueError, match="expected bucket_batches >= 0, got -1"):
        make_batches(encoded, 8, bucket_batches=-1)
