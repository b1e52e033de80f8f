"""Labelled sequences: the archives, .ts/.npz/.csv files, stratified splits, standardisation on training only, bad input."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from qk_lstm_qiskit.data.scaling import ChannelScaler
from qk_lstm_qiskit.data.sequences import (
    default_test_source, encode_labels, make_sequence_batches, prepare_sequences, read_sequences, stratified_split,
    test_sequences as load_test_sequences,
)

aeon = pytest.importorskip("aeon")


def _write_npz(path, X, y, lengths=None):
    arrays = {"X": np.asarray(X), "y": np.asarray(y)}
    if lengths is not None:
        arrays["lengths"] = np.asarray(lengths)
    np.savez(path, **arrays)
    return str(path)


def _toy(rng, n_per_class=(6, 4, 5), channels=2, length=7):
    X = [rng.normal(loc=c, size=(length, channels)) for c, n in enumerate(n_per_class) for _ in range(n)]
    y = [f"c{c}" for c, n in enumerate(n_per_class) for _ in range(n)]
    return np.stack(X), np.asarray(y)


def test_basic_motions_as_aeon_ships_it_channels_last():
    from aeon.datasets import load_basic_motions

    X, y = load_basic_motions(split="train")
    sequences, labels = read_sequences("basic_motions", "train")
    assert len(sequences) == 40 and sequences[0].shape == (100, 6)
    np.testing.assert_array_equal(sequences[3], X[3].T)
    assert labels == [str(v) for v in y]


def test_japanese_vowels_keeps_every_length():
    from aeon.datasets import load_japanese_vowels

    X, _ = load_japanese_vowels(split="test")
    sequences, _ = read_sequences("japanese_vowels", "test")
    assert [len(s) for s in sequences] == [x.shape[1] for x in X]
    assert {s.shape[1] for s in sequences} == {12}


def test_stratified_split_counts_per_class_and_seed():
    labels = np.array([0] * 10 + [1] * 5 + [2] * 1)
    kept, carved = stratified_split(labels, 0.3, seed=4)
    # round(0.3 * n_c), at most n_c - 1: 3, 2 (1.5 rounds to 2), 0
    assert np.bincount(labels[carved], minlength=3).tolist() == [3, 2, 0]
    assert sorted(kept.tolist() + carved.tolist()) == list(range(16))
    again = stratified_split(labels, 0.3, seed=4)
    np.testing.assert_array_equal(again[1], carved)
    assert not np.array_equal(stratified_split(labels, 0.3, seed=5)[1], carved)


def test_prepare_standardises_with_training_statistics_only():
    splits = prepare_sequences("basic_motions", validation_fraction=0.25, seed=1)
    assert np.bincount(splits.train.labels).tolist() == [8, 8, 8, 8]  # 10 per class, round(2.5) = 2 carved
    assert np.bincount(splits.validation.labels).tolist() == [2, 2, 2, 2]
    raw, labels = read_sequences("basic_motions")
    classes = splits.classes
    encoded = encode_labels(labels, classes, "t")
    kept, carved = stratified_split(encoded, 0.25, 1)
    train_steps = np.concatenate([raw[i] for i in kept])  # (32 · 100, 6): an independent computation
    np.testing.assert_allclose(splits.scaler.mean, train_steps.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(splits.scaler.std, train_steps.std(axis=0), rtol=1e-12)
    np.testing.assert_allclose(splits.validation.sequences[0], (raw[carved[0]] - train_steps.mean(0)) / train_steps.std(0))
    standardised = np.concatenate(splits.train.sequences)
    np.testing.assert_allclose(standardised.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(standardised.std(0), 1, atol=1e-12)
    test = load_test_sequences("basic_motions", classes, splits.scaler)
    test_raw, _ = read_sequences("basic_motions", "test")
    np.testing.assert_allclose(test.sequences[5], (test_raw[5] - train_steps.mean(0)) / train_steps.std(0))


def test_train_fraction_is_a_stratified_subsample():
    splits = prepare_sequences("japanese_vowels", train_fraction=0.1, seed=0)
    assert np.bincount(splits.train.labels).tolist() == [3] * 9  # 30 per class, round(0.9 · 30) = 27 dropped


def test_npz_csv_and_ts_layouts_read_the_same_sequences(tmp_path):
    rng = np.random.default_rng(0)
    X, y = _toy(rng, (2, 2), channels=2, length=3)
    lengths = [3, 2, 1, 3]
    npz = read_sequences(_write_npz(tmp_path / "a.npz", X, y, lengths))
    lines = ["id,label,ax,ay"] + [f"s{i},{y[i]},{float(X[i, t, 0])!r},{float(X[i, t, 1])!r}" for i in range(4) for t in range(lengths[i])]
    (tmp_path / "a.csv").write_text("\n".join(lines) + "\n")
    csv = read_sequences(str(tmp_path / "a.csv"))
    ts_lines = ["@problemName toy", "@timeStamps false", "@missing false", "@univariate false", "@dimensions 2",
                "@equalLength false", "@classLabel true c0 c1", "@data"]
    ts_lines += [":".join(",".join(repr(float(v)) for v in X[i, : lengths[i], c]) for c in range(2)) + f":{y[i]}" for i in range(4)]
    (tmp_path / "toy_TRAIN.ts").write_text("\n".join(ts_lines) + "\n")
    ts = read_sequences(str(tmp_path / "toy_TRAIN.ts"))
    for read in (csv, ts):
        assert read[1] == npz[1] == list(y)
        for a, b in zip(read[0], npz[0]):
            np.testing.assert_allclose(a, b, rtol=1e-12)
    assert [len(s) for s in npz[0]] == lengths
    assert default_test_source(str(tmp_path / "toy_TRAIN.ts")) is None
    (tmp_path / "toy_TEST.ts").write_text("\n".join(ts_lines) + "\n")
    assert default_test_source(str(tmp_path / "toy_TRAIN.ts")) == str(tmp_path / "toy_TEST.ts")
    assert default_test_source("gunpoint") == "gunpoint"


def test_integer_labels_sort_numerically_and_map_to_saved_classes(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(12, 4, 1))
    y = np.array([10, 2, 1] * 4)
    splits = prepare_sequences(_write_npz(tmp_path / "n.npz", X, y))
    assert splits.classes == ("1", "2", "10")
    assert splits.train.labels.tolist() == [2, 1, 0] * 4


def test_batches_pad_with_zeros_after_each_end():
    splits = prepare_sequences("japanese_vowels")
    (batch,) = make_sequence_batches(splits.train.subset([0, 1, 2]), 3)
    assert batch.inputs.shape == (3, max(len(s) for s in splits.train.sequences[:3]), 12)
    for row in range(3):
        n = int(batch.lengths[row])
        assert n == len(splits.train.sequences[row])
        torch.testing.assert_close(batch.inputs[row, :n], torch.as_tensor(splits.train.sequences[row], dtype=torch.float32))
        assert (batch.inputs[row, n:] == 0).all()
    assert batch.labels.tolist() == splits.train.labels[:3].tolist()
    shuffled = make_sequence_batches(splits.train, 50, generator=torch.Generator().manual_seed(0))
    assert sorted(torch.cat([b.labels for b in shuffled]).tolist()) == sorted(splits.train.labels.tolist())


def test_channel_scaler_keeps_a_constant_channel_centred(caplog):
    scaler = ChannelScaler.fit([np.array([[1.0, 5.0], [3.0, 5.0]])])
    assert scaler.mean == (2.0, 5.0) and scaler.std == (1.0, 1.0)
    assert "constant" in caplog.text
    np.testing.assert_allclose(scaler.inverse(scaler.transform(np.array([[7.0, 2.0]]))), [[7.0, 2.0]])


@pytest.mark.parametrize("X, y, lengths, message", [
    (np.zeros((2, 3, 1, 1)), ["a", "b"], None, r"expected X of shape \(N, L, C\) or \(N, L\) and y of shape \(N,\), got X \(2, 3, 1, 1\)"),
    (np.zeros((2, 3, 1)), ["a", "b", "c"], None, r"expected X of shape .* got X \(2, 3, 1\) and y \(3,\)"),
    (np.array([[[0.0], [np.nan]], [[1.0], [2.0]]]), ["a", "b"], None, r"expected finite values, got nan in sequence 0 \(label 'a'\)"),
    (np.zeros((2, 3, 1)), ["a", "b"], [3, 0], r"expected sequences of length >= 1, got length 0 for sequence 1 \(label 'b'\)"),
    (np.zeros((2, 3, 1)), ["a", "b"], [3, 4], r"expected integer lengths of shape \(2,\) and at most 3"),
    (np.zeros((2, 3, 1)), ["a", "a"], None, r"expected at least 2 classes in the training split, got \['a'\]"),
])
def test_bad_npz_files_one_line_each(tmp_path, X, y, lengths, message):
    path = _write_npz(tmp_path / "bad.npz", X, y, lengths)
    with pytest.raises(ValueError, match=message):
        prepare_sequences(path)


def test_bad_sources_and_labels_one_line_each(tmp_path):
    rng = np.random.default_rng(2)
    X, y = _toy(rng, (3, 3))
    train = _write_npz(tmp_path / "train.npz", X, y)
    splits = prepare_sequences(train)
    test = _write_npz(tmp_path / "test.npz", X[:2], ["c0", "c9"])  # a class missing from training
    with pytest.raises(ValueError, match=r"sequences .*test.npz: expected labels in the training classes \['c0', 'c1'\], got unknown \['c9'\]"):
        load_test_sequences(test, splits.classes, splits.scaler)
    other = _write_npz(tmp_path / "three.npz", np.zeros((2, 7, 3)), ["c0", "c1"])
    with pytest.raises(ValueError, match=r"expected 2 channels \(as in training\), got 3"):
        load_test_sequences(other, splits.classes, splits.scaler)
    with pytest.raises(ValueError, match=r"sequences: expected source in \('basic_motions', 'japanese_vowels', 'gunpoint'\) or a .ts, .npz or .csv path, got 'x.txt'"):
        read_sequences("x.txt")
    with pytest.raises(FileNotFoundError, match=r"sequences: expected an existing file, got 'missing.npz'"):
        read_sequences("missing.npz")
    with pytest.raises(ValueError, match=r"sequences basic_motions: expected no columns for an archive"):
        read_sequences("basic_motions", columns=["a"])
    objects = tmp_path / "objects.npz"
    np.savez(objects, X=np.array([np.zeros((2, 1)), np.zeros((3, 1))], dtype=object), y=np.array(["a", "b"]))
    with pytest.raises(ValueError, match=r"object arrays are not read \(pad X and give lengths\)"):
        read_sequences(str(objects))
    (tmp_path / "mixed.csv").write_text("id,label,a\n1,x,0.5\n2,y,1\n1,x,2\n")
    with pytest.raises(ValueError, match=r"expected the rows of sequence id '1' to be contiguous, got it again on line 4"):
        read_sequences(str(tmp_path / "mixed.csv"))
    (tmp_path / "relabel.csv").write_text("id,label,a\n1,x,0.5\n1,y,1\n")
    with pytest.raises(ValueError, match=r"expected one label per sequence, got 'x' and 'y' for id '1' \(line 3\)"):
        read_sequences(str(tmp_path / "relabel.csv"))
    (tmp_path / "text.csv").write_text("id,label,a\n1,x,high\n")
    with pytest.raises(ValueError, match=r"expected a number in column 'a' on line 2, got 'high'"):
        read_sequences(str(tmp_path / "text.csv"))
    with pytest.raises(ValueError, match=r"expected a column 'b', got columns \['id', 'label', 'a'\]"):
        read_sequences(str(tmp_path / "text.csv"), columns=["b"])
    with pytest.raises(ValueError, match=r"prepare_sequences: expected 0 < train_fraction <= 1, got 0.0"):
        prepare_sequences(train, train_fraction=0.0)


def test_without_aeon_an_archive_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "aeon.datasets", None)  # import fails as if aeon were not installed
    with pytest.raises(ImportError, match=r"sequences: the archive 'gunpoint' needs aeon; pip install 'qk_lstm_qiskit\[classify\]'"):
        read_sequences("gunpoint")
