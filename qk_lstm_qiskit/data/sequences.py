"""Labelled sequences for classification: one label per multichannel sequence of any length.

Sources (``data.source``):

- an archive that ships inside aeon (``pip install 'qk_lstm_qiskit[classify]'``, no download):
  ``basic_motions`` (6 channels, 100 steps, 4 activities), ``japanese_vowels`` (12 channels,
  7–29 steps, 9 speakers), ``gunpoint`` (1 channel, 150 steps, 2 classes); their official
  train / test splits;
- a ``.ts`` file of the UEA/UCR archive format, read by aeon's reader (the test split: the
  sibling ``*_TEST.ts`` of a ``*_TRAIN.ts``, or an explicit test source);
- a ``.npz`` file with ``X`` — ``(N, L, C)`` floats, or an object array of ``(L_i, C)`` arrays —
  ``y`` — ``(N,)`` labels (ints or strings) — and optionally ``lengths`` — ``(N,)`` real steps of
  a padded ``X``;
- a ``.csv`` file in long layout: a header, then one row per time step with columns ``id`` (the
  sequence; its rows contiguous, in time order), ``label`` (the same on every row of a sequence)
  and one numeric column per channel (all other columns, or those named by ``columns``).

Labels are strings; their indices follow :attr:`LabelledSequences.classes` (the training split's
labels, numerically sorted when all are integers). :func:`prepare_sequences` carves a stratified,
seeded validation split from the training split and fits a per-channel standardisation on what
is left for training; the test split is read only by :func:`test_sequences`, with the training
run's classes and scaler.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..validation import check_int, check_number
from .scaling import ChannelScaler

__all__ = [
    "SEQUENCE_ARCHIVES", "LabelledSequences", "SequenceBatch", "SequenceSplits",
    "read_sequences", "default_test_source", "encode_labels", "stratified_split", "prepare_sequences",
    "test_sequences", "make_sequence_batches",
]

#: name → aeon.datasets loader (both splits ship inside aeon)
SEQUENCE_ARCHIVES = {
    "basic_motions": "load_basic_motions",
    "japanese_vowels": "load_japanese_vowels",
    "gunpoint": "load_gunpoint",
}
SPLITS = ("train", "test")
RawSequences = tuple[list[np.ndarray], list[str]]  # (sequences (L_i, C), label strings)


def _aeon(what: str) -> Any:
    try:
        import aeon.datasets
    except ImportError:
        raise ImportError(f"sequences: {what} needs aeon; pip install 'qk_lstm_qiskit[classify]'") from None
    return aeon.datasets


def _label_text(value: Any) -> str:
    """A label as the string it is known by (``1``, ``1.0`` and ``"1"`` are the same label)."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _from_channels_first(X: Any) -> list[np.ndarray]:
    """aeon's ``(N, C, L)`` array or list of ``(C, L_i)`` arrays as a list of ``(L_i, C)`` arrays."""
    return [np.asarray(x, dtype=float).T for x in X]


def _read_archive(name: str, split: str) -> RawSequences:
    loader = getattr(_aeon(f"the archive {name!r}"), SEQUENCE_ARCHIVES[name])
    X, y = loader(split=split)
    return _from_channels_first(X), [_label_text(v) for v in y]


def _read_ts(path: Path) -> RawSequences:
    datasets = _aeon(f"the .ts file {str(path)!r}")
    try:
        X, y = datasets.load_from_ts_file(str(path))
    except (OSError, ValueError, IndexError, KeyError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ValueError(f"sequences {path}: expected a .ts file of the UEA/UCR archive format, got {first}") from None
    return _from_channels_first(X), [_label_text(v) for v in y]


def _read_npz(path: Path) -> RawSequences:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except ValueError:  # object arrays need pickle: refused (a foreign file could run code)
        raise ValueError(f"sequences {path}: expected numeric arrays X, y (and lengths); object arrays are "
                         f"not read (pad X and give lengths)") from None
    missing = {"X", "y"} - set(arrays)
    if missing:
        raise ValueError(f"sequences {path}: expected arrays X and y, got {sorted(arrays)}")
    X, y = arrays["X"], arrays["y"]
    if X.ndim == 2:
        X = X[:, :, None]  # (N, L): one channel
    if X.ndim != 3 or y.ndim != 1 or len(X) != len(y):
        raise ValueError(f"sequences {path}: expected X of shape (N, L, C) or (N, L) and y of shape (N,), "
                         f"got X {X.shape} and y {y.shape}")
    if not (np.issubdtype(X.dtype, np.number) and not np.issubdtype(X.dtype, np.complexfloating)):
        raise ValueError(f"sequences {path}: expected real numbers in X, got dtype {X.dtype}")
    lengths = arrays.get("lengths", np.full(len(X), X.shape[1]))
    if lengths.shape != y.shape or not np.issubdtype(lengths.dtype, np.integer) or (lengths > X.shape[1]).any():
        raise ValueError(f"sequences {path}: expected integer lengths of shape {y.shape} and at most {X.shape[1]}, "
                         f"got {lengths.dtype} {lengths.shape} up to {lengths.max(initial=0)}")
    return [np.asarray(x[:n], dtype=float) for x, n in zip(X, lengths)], [_label_text(v) for v in y]


def _read_csv(path: Path, columns: Sequence[str] | None) -> RawSequences:
    try:
        text = path.read_text(encoding="utf-8-sig")
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except UnicodeDecodeError as exc:
        raise ValueError(f"sequences {path}: expected UTF-8 text, got byte 0x{exc.object[exc.start]:02x}") from None
    except csv.Error as exc:
        raise ValueError(f"sequences {path}: expected CSV text, got {exc}") from None
    if not rows:
        raise ValueError(f"sequences {path}: expected a header line with id, label and channel columns, got an empty file")
    header = [h.strip() for h in rows[0]]
    for name in ("id", "label", *(columns or ())):
        if name not in header:
            raise ValueError(f"sequences {path}: expected a column {name!r}, got columns {header}")
    channels = list(columns) if columns else [h for h in header if h not in ("id", "label")]
    if not channels:
        raise ValueError(f"sequences {path}: expected at least one channel column besides id and label, got {header}")
    at = {name: header.index(name) for name in ("id", "label", *channels)}
    sequences: list[np.ndarray] = []
    labels: list[str] = []
    current: list[list[float]] = []
    seen: set[str] = set()
    previous_id = None
    for number, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise ValueError(f"sequences {path}: expected {len(header)} fields on line {number}, got {len(row)}")
        sid, label = row[at["id"]].strip(), row[at["label"]].strip()
        if sid != previous_id:
            if sid in seen:
                raise ValueError(f"sequences {path}: expected the rows of sequence id {sid!r} to be contiguous, "
                                 f"got it again on line {number}")
            if current:
                sequences.append(np.asarray(current, dtype=float))
            seen.add(sid)
            current, previous_id = [], sid
            labels.append(label)
        elif label != labels[-1]:
            raise ValueError(f"sequences {path}: expected one label per sequence, got {labels[-1]!r} and {label!r} "
                             f"for id {sid!r} (line {number})")
        values = []
        for name in channels:
            field = row[at[name]].strip()
            try:
                values.append(float(field))
            except ValueError:
                raise ValueError(f"sequences {path}: expected a number in column {name!r} on line {number}, "
                                 f"got {field!r}") from None
        current.append(values)
    if current:
        sequences.append(np.asarray(current, dtype=float))
    return sequences, labels


def default_test_source(source: str) -> str | None:
    """Where the test split of ``source`` is when none is given: the archive's own, or the ``*_TEST``
    sibling of a ``*_TRAIN`` file (``None`` otherwise)."""
    if source in SEQUENCE_ARCHIVES:
        return source
    path = Path(source)
    stem = path.stem
    for train, test in (("_TRAIN", "_TEST"), ("_train", "_test")):
        if stem.endswith(train):
            sibling = path.with_name(stem[: -len(train)] + test + path.suffix)
            return str(sibling) if sibling.is_file() else None
    return None


def _check_raw(sequences: list[np.ndarray], labels: list[str], where: str) -> None:
    """One line for the first bad sequence: empty set, wrong shape, NaN/inf, length 0, channel mismatch."""
    if not sequences:
        raise ValueError(f"{where}: expected at least one sequence, got none")
    if len(sequences) != len(labels):
        raise ValueError(f"{where}: expected one label per sequence, got {len(sequences)} sequences and {len(labels)} labels")
    channels = sequences[0].shape[-1] if sequences[0].ndim == 2 else None
    for i, x in enumerate(sequences):
        if x.ndim != 2:
            raise ValueError(f"{where}: expected sequence {i} of shape (L, C), got {x.shape}")
        if x.shape[0] == 0:
            raise ValueError(f"{where}: expected sequences of length >= 1, got length 0 for sequence {i} (label {labels[i]!r})")
        if x.shape[1] != channels:
            raise ValueError(f"{where}: expected {channels} channels in every sequence, got {x.shape[1]} in sequence {i}")
        if not np.isfinite(x).all():
            bad = x[~np.isfinite(x)][0]
            raise ValueError(f"{where}: expected finite values, got {bad} in sequence {i} (label {labels[i]!r})")


def read_sequences(source: str, split: str = "train", *, columns: Sequence[str] | None = None) -> RawSequences:
    """``(sequences, labels)`` of ``source``: each sequence ``(L_i, C)`` float64, labels as strings.

    ``split`` picks the archive's split (ignored for files: a file is one split).

    Raises:
        FileNotFoundError: no such file.
        ImportError: an archive or ``.ts`` file without aeon installed (naming the extra).
        ValueError: an unknown source, an unreadable file, no sequences, a sequence of length 0,
            NaN or inf, differing channel counts — one line naming the source.
    """
    if split not in SPLITS:
        raise ValueError(f"sequences: expected split in {SPLITS}, got {split!r}")
    if source in SEQUENCE_ARCHIVES:
        if columns:
            raise ValueError(f"sequences {source}: expected no columns for an archive (its channels are fixed), got {list(columns)}")
        raw = _read_archive(source, split)
        where = f"sequences {source} ({split})"
    else:
        path = Path(source)
        suffix = path.suffix.lower()
        readers = {".ts": _read_ts, ".npz": _read_npz, ".csv": lambda p: _read_csv(p, columns)}
        if suffix not in readers:
            raise ValueError(f"sequences: expected source in {tuple(SEQUENCE_ARCHIVES)} or a .ts, .npz or .csv path, "
                             f"got {source!r}")
        if not path.is_file():
            raise FileNotFoundError(f"sequences: expected an existing file, got {source!r}")
        raw = readers[suffix](path)
        where = f"sequences {source}"
    _check_raw(*raw, where)
    return raw


def _class_order(labels: Sequence[str]) -> tuple[str, ...]:
    distinct = set(labels)
    try:
        return tuple(sorted(distinct, key=int))
    except ValueError:
        return tuple(sorted(distinct))


def encode_labels(labels: Sequence[str], classes: Sequence[str], where: str) -> np.ndarray:
    """Indices of ``labels`` in ``classes``, shape ``(N,)`` int64; ``ValueError`` naming an unknown label."""
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted({label for label in labels if label not in index})
    if unknown:
        raise ValueError(f"{where}: expected labels in the training classes {list(classes)}, got unknown {unknown[:5]}")
    return np.asarray([index[label] for label in labels], dtype=np.int64)


@dataclass(frozen=True)
class LabelledSequences:
    """Sequences ``(L_i, C)`` with one class index each (into ``classes``)."""

    sequences: tuple[np.ndarray, ...]
    labels: np.ndarray  # (N,) int64
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.sequences)

    @property
    def num_channels(self) -> int:
        return self.sequences[0].shape[1]

    @property
    def lengths(self) -> np.ndarray:
        return np.asarray([len(x) for x in self.sequences], dtype=np.int64)

    def subset(self, index: Sequence[int] | np.ndarray) -> LabelledSequences:
        index = np.asarray(index, dtype=np.int64)
        return LabelledSequences(tuple(self.sequences[i] for i in index), self.labels[index], self.classes)

    def scaled(self, scaler: ChannelScaler) -> LabelledSequences:
        return LabelledSequences(tuple(scaler.transform(x) for x in self.sequences), self.labels, self.classes)


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(kept, carved)`` sorted indices: ``round(fraction · n_c)`` examples of every class ``c`` carved
    at random (``numpy.random.default_rng(seed)``), at most ``n_c − 1`` so each class keeps one."""
    check_number("stratified_split", "fraction", fraction, minimum=0.0, maximum=1.0)
    rng = np.random.default_rng(seed)
    carved = []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        carved.extend(members[: min(int(round(fraction * len(members))), len(members) - 1)].tolist())
    carved_set = set(carved)
    kept = np.asarray([i for i in range(len(labels)) if i not in carved_set], dtype=np.int64)
    return kept, np.asarray(sorted(carved), dtype=np.int64)


@dataclass(frozen=True)
class SequenceSplits:
    """Standardised training and validation sequences, their classes and the fitted scaler."""

    source: str
    train: LabelledSequences
    validation: LabelledSequences | None
    scaler: ChannelScaler

    @property
    def classes(self) -> tuple[str, ...]:
        return self.train.classes


def prepare_sequences(
    source: str, *, validation_fraction: float = 0.0, seed: int = 0, columns: Sequence[str] | None = None,
    train_fraction: float = 1.0,
) -> SequenceSplits:
    """The training split of ``source``, a stratified validation split carved from it, standardised.

    Args:
        source: an archive name or a ``.ts``/``.npz``/``.csv`` training file (see the module docstring).
        validation_fraction: of each class, carved at random (``seed``) for validation.
        seed: the split's (and the subsample's) seed.
        columns: CSV channel columns (default: all but ``id`` and ``label``).
        train_fraction: keep this stratified fraction of the remaining training sequences (learning curves).

    The scaler is fitted on the training sequences that remain (never on validation or test).

    Raises:
        ValueError: as :func:`read_sequences`; fewer than two classes.
    """
    check_number("prepare_sequences", "validation_fraction", validation_fraction, minimum=0.0, maximum=1.0)
    check_number("prepare_sequences", "train_fraction", train_fraction, maximum=1.0)
    if not train_fraction > 0:
        raise ValueError(f"prepare_sequences: expected 0 < train_fraction <= 1, got {train_fraction!r}")
    check_int("prepare_sequences", "seed", seed, 0)
    sequences, labels = read_sequences(source, "train", columns=columns)
    classes = _class_order(labels)
    if len(classes) < 2:
        raise ValueError(f"sequences {source}: expected at least 2 classes in the training split, got {list(classes)}")
    everything = LabelledSequences(tuple(sequences), encode_labels(labels, classes, f"sequences {source}"), classes)
    kept, carved = stratified_split(everything.labels, validation_fraction, seed)
    train = everything.subset(kept)
    if train_fraction < 1.0:
        train = train.subset(stratified_split(train.labels, 1.0 - train_fraction, seed + 1)[0])
    scaler = ChannelScaler.fit(train.sequences)
    validation = everything.subset(carved).scaled(scaler) if len(carved) else None
    return SequenceSplits(source, train.scaled(scaler), validation, scaler)


def test_sequences(
    source: str, classes: Sequence[str], scaler: ChannelScaler, *, columns: Sequence[str] | None = None,
    max_sequences: int | None = None,
) -> LabelledSequences:
    """The test split ``source`` (an archive's, or a file) encoded with a training run's ``classes`` and ``scaler``.

    Raises:
        ValueError: as :func:`read_sequences`; a label absent from the training classes; a channel
            count other than the scaler's.
    """
    check_int("test_sequences", "max_sequences", max_sequences, 1, optional=True)
    split = "test" if source in SEQUENCE_ARCHIVES else "train"
    sequences, labels = read_sequences(source, split, columns=columns)
    where = f"sequences {source}" + (" (test)" if split == "test" else "")
    if sequences[0].shape[1] != len(scaler.mean):
        raise ValueError(f"{where}: expected {len(scaler.mean)} channels (as in training), got {sequences[0].shape[1]}")
    data = LabelledSequences(tuple(sequences), encode_labels(labels, classes, where), tuple(classes))
    if max_sequences is not None:
        data = data.subset(range(min(max_sequences, len(data))))
    return data.scaled(scaler)


@dataclass(frozen=True)
class SequenceBatch:
    """Zero-padded sequences with their lengths and labels.

    Shape: ``inputs (N, L_max, C)``, ``lengths (N,)`` long, ``labels (N,)`` long.
    """

    inputs: torch.Tensor
    lengths: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)


def make_sequence_batches(
    data: LabelledSequences, batch_size: int, *, generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> list[SequenceBatch]:
    """``data`` in batches of ``batch_size`` (shuffled with ``generator`` when given, else in order),
    each padded with zeros after its sequences' ends to its longest sequence."""
    check_int("make_sequence_batches", "batch_size", batch_size, 1)
    order = torch.randperm(len(data), generator=generator) if generator is not None else torch.arange(len(data))
    batches = []
    for chunk in order.split(batch_size):
        members = [data.sequences[i] for i in chunk.tolist()]
        longest = max(len(x) for x in members)
        inputs = torch.zeros(len(members), longest, data.num_channels, dtype=dtype)
        for row, x in enumerate(members):
            inputs[row, : len(x)] = torch.as_tensor(x, dtype=dtype)
        batches.append(SequenceBatch(
            inputs, torch.as_tensor([len(x) for x in members], dtype=torch.long),
            torch.as_tensor(data.labels[chunk.numpy()], dtype=torch.long),
        ))
    return batches

