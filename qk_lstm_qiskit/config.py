"""Run configuration: frozen dataclass defaults, overridden by YAML files and CLI flags.

``task`` (top level) names what the run learns (:mod:`qk_lstm_qiskit.tasks`: ``tagging``,
``forecasting``, …). A config that names none (written before tasks were named) gets the one its
``data.source`` implies (:func:`infer_task`); a config file is told so once, with a
:class:`~qk_lstm_qiskit.errors.TaskInferredWarning`.
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from .circuits.feature_map import ENTANGLEMENTS, MAX_QUBITS
from .circuits.library import FEATURE_MAPS
from .data.conllu import LONG_SENTENCE_POLICIES, TAGSETS
from .data.sequences import SEQUENCE_ARCHIVES
from .data.series import SERIES_SOURCES, TABLE_SOURCES, is_series_source
from .errors import TaskInferredWarning
from .nn.cell import REFERENCE_MODES, WEIGHTINGS
from .nn.classifier import POOLINGS
from .nn.tagger import MODEL_KINDS

__all__ = ["check_model_memory", "ModelConfig", "DataConfig", "ForecastConfig", "ClassifyConfig", "TrainConfig", "ExecutorConfig", "RunConfig", "load_config",
           "infer_task", "MODEL_KINDS", "OPTIMIZERS"]


@dataclass(frozen=True)
class ModelConfig:
    """Tagger: Embedding(V, embedding_dim) → recurrent(hidden_dim) → Linear → log-softmax."""

    kind: str = "qk-lstm"  # qk-lstm | lstm | qlstm
    embedding_dim: int = 8
    hidden_dim: int = 6
    num_layers: int = 1
    num_qubits: int = 4  # qk-lstm, qlstm
    num_references: int = 4  # qk-lstm: R per gate
    reps: int = 1  # qk-lstm: feature-map layers (1 = the paper's circuit)
    entanglement: str = "linear"
    input_scaling: float = 1.0
    trainable_scaling: bool = False
    weighting: str = "paper"  # paper | per_gate
    references: str = "fixed"  # fixed | learned | data
    vqc_depth: int = 1  # qlstm
    # qk-lstm kernels beyond the paper (circuits/library.py): map, Pauli terms, RY·RZ layers per repetition
    feature_map: str = "paper"  # paper | zz | z | pauli
    paulis: str = "Z,ZZ"  # pauli: comma-separated terms
    trainable_layers: int = 0  # with trainable_scaling: one bandwidth per repetition instead of per qubit


@dataclass(frozen=True)
class DataConfig:
    """``source``: ``paper`` (the two sentences), a path to a CoNLL-U file, or a series to forecast
    (``shm`` | ``bessel`` | ``co2`` | a ``.csv`` path; see :class:`ForecastConfig`)."""

    source: str = "paper"
    tag_column: str = "upos"  # upos | xpos
    lowercase: bool = False
    min_freq: int = 1
    max_length: typing.Optional[int] = None
    long_sentences: str = "error"  # error | truncate | skip, for sentences longer than max_length
    validation_fraction: float = 0.0
    split_seed: int = 0


OPTIMIZERS = {"adam": "Adam", "sgd": "SGD"}  #: train.optimizer -> torch.optim class name


@dataclass(frozen=True)
class ForecastConfig:
    """Forecasting (``data.source`` a series): windows of ``window`` values → the value ``horizon``
    steps after the last; time-ordered split (``data.validation_fraction``, ``test_fraction``)."""

    column: typing.Optional[str] = None  # CSV: column to forecast
    # several columns (macrodata or a CSV): comma-separated inputs and targets (default: the inputs)
    columns: typing.Optional[str] = None  # e.g. "realgdp,realcons,realinv,unemp"
    target: typing.Optional[str] = None  # e.g. "realgdp,unemp"
    time_column: typing.Optional[str] = None  # CSV: must increase strictly (numbers or ISO dates)
    window: int = 4
    horizon: int = 1
    test_fraction: float = 0.2
    relative: bool = False  # windows and target minus the window's last value (trending series, e.g. co2)
    length: int = 240  # shm, bessel: samples
    noise: float = 0.0  # std of Gaussian noise added to the series
    noise_seed: int = 0


@dataclass(frozen=True)
class ClassifyConfig:
    """Sequence classification (``task: classification``): one label per sequence; see
    :mod:`qk_lstm_qiskit.data.sequences` for the sources and :mod:`qk_lstm_qiskit.nn.classifier` for the head."""

    pooling: str = "last"  # last | mean: the state after the last real step, or the masked mean over steps
    test_source: typing.Optional[str] = None  # default: the archive's test split, or the *_TEST sibling file
    columns: typing.Optional[str] = None  # CSV: comma-separated channel columns (default: all but id, label)
    train_fraction: float = 1.0  # a stratified fraction of the training split (learning curves)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 100
    optimizer: str = "adam"  # adam | sgd
    lr: float = 0.1
    batch_size: int = 1
    bucket_batches: int = 0  # > 0: batch sentences of similar length (pools of this many batches)
    clip_grad_norm: typing.Optional[float] = None
    seed: int = 0


@dataclass(frozen=True)
class ExecutorConfig:
    """Where kernels run: ``exact`` (torch statevectors) or a sampler backend name."""

    backend: str = "exact"  # exact | aer | aer-noisy:<device> | fake:<device> | ibm:<device>
    shots: typing.Optional[int] = None
    seed: typing.Optional[int] = None
    optimization_level: int = 2  # preset pass manager for device backends
    # exact executor (issue #11): where the model and batches live, and the bytes one kernel call may hold
    device: str = "cpu"  # cpu | cuda | cuda:<index>
    memory_limit_gb: typing.Optional[float] = None  # None: half the memory available at each call


@dataclass(frozen=True)
class RunConfig:
    """A whole run: ``task`` (a name in :data:`qk_lstm_qiskit.tasks.TASKS`; ``None`` until
    :func:`load_config` fills it in) and one section per concern."""

    task: typing.Optional[str] = None
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    forecast: ForecastConfig = field(default_factory=ForecastConfig)
    classify: ClassifyConfig = field(default_factory=ClassifyConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_CHOICES = {  # each list defined once, beside the code that uses it
    ("model", "kind"): MODEL_KINDS,
    ("model", "weighting"): WEIGHTINGS,
    ("model", "references"): REFERENCE_MODES,
    ("model", "entanglement"): ENTANGLEMENTS,
    ("model", "feature_map"): FEATURE_MAPS,
    ("data", "tag_column"): TAGSETS,
    ("data", "long_sentences"): LONG_SENTENCE_POLICIES,
    ("train", "optimizer"): tuple(OPTIMIZERS),
    ("classify", "pooling"): POOLINGS,
}
_POSITIVE = {
    ("model", n) for n in ("embedding_dim", "hidden_dim", "num_layers", "num_qubits", "num_references", "reps", "vqc_depth")
} | {("train", "epochs"), ("train", "batch_size"), ("train", "lr"), ("model", "input_scaling"), ("data", "min_freq"),
     ("data", "max_length"), ("executor", "shots"), ("train", "clip_grad_norm"), ("executor", "memory_limit_gb"),
     ("forecast", "window"), ("forecast", "horizon"), ("forecast", "length"), ("classify", "train_fraction")}


_SEEDS = {("train", "seed"), ("data", "split_seed"), ("executor", "seed")}  # numpy and torch take [0, 2**32)


def _coerce(where: str, section: str, name: str, value: Any, annotation: Any, label: str | None = None) -> Any:
    """``value`` checked (and int → float where a float is expected); ``label`` names its flag in errors."""
    key = f"{label} ({section}.{name})" if label else f"{section}.{name}"
    optional = typing.get_origin(annotation) is typing.Union
    base = [a for a in typing.get_args(annotation) if a is not type(None)][0] if optional else annotation
    if value is None and optional:
        return None
    ok = isinstance(value, base) and not (isinstance(value, bool) and base is not bool)
    if base is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if base is float and isinstance(value, str):  # YAML 1.1 reads 1e-3 as a string
        try:
            value, ok = float(value), True
        except ValueError:
            pass
    if not ok:
        raise ValueError(f"config{where}: expected {key} to be {base.__name__}, got {value!r}")
    if (section, name) in _CHOICES and value not in _CHOICES[section, name]:
        raise ValueError(f"config{where}: expected {key} in {_CHOICES[section, name]}, got {value!r}")
    if (section, name) in _POSITIVE and not (math.isfinite(value) and value > 0):
        raise ValueError(f"config{where}: expected {key} > 0, got {value!r}")
    if (section, name) == ("data", "source") and not value.strip():
        raise ValueError(f"config{where}: expected {key} to name a data source ('paper', a CoNLL-U file, shm, bessel, "
                         f"co2 or a .csv file), got {value!r}")
    if (section, name) == ("executor", "device") and not re.fullmatch(r"cpu|cuda(:\d+)?", value):
        raise ValueError(f"config{where}: expected {key} to be cpu, cuda or cuda:<index>, got {value!r}")
    if (section, name) in {("train", "bucket_batches"), ("model", "trainable_layers")} and value < 0:
        raise ValueError(f"config{where}: expected {key} >= 0, got {value!r}")
    if (section, name) in (("data", "validation_fraction"), ("forecast", "test_fraction")) and not 0.0 <= value < 1.0:
        raise ValueError(f"config{where}: expected {key} in [0, 1), got {value!r}")
    if (section, name) == ("classify", "train_fraction") and value > 1.0:
        raise ValueError(f"config{where}: expected {key} in (0, 1], got {value!r}")
    if (section, name) == ("forecast", "noise") and not (math.isfinite(value) and value >= 0):
        raise ValueError(f"config{where}: expected {key} >= 0, got {value!r}")
    if (section, name) == ("model", "num_qubits") and value > MAX_QUBITS:
        raise ValueError(f"config{where}: expected {key} <= {MAX_QUBITS}, got {value!r}")
    if (section, name) in _SEEDS and not 0 <= value < 2**32:
        raise ValueError(f"config{where}: expected 0 <= {key} < 2**32, got {value!r}")
    return value


def infer_task(source: str) -> str:
    """The task a config without ``task`` meant: ``forecasting`` for a series source
    (:func:`~qk_lstm_qiskit.data.series.is_series_source`, or a multivariate table such as ``macrodata``),
    ``classification`` for a sequence archive or a ``.ts``/``.npz`` file, else ``tagging``."""
    if is_series_source(source) or source in TABLE_SOURCES:
        return "forecasting"
    if source in SEQUENCE_ARCHIVES or source.lower().endswith((".ts", ".npz")):
        return "classification"
    return "tagging"


def _merge(config: RunConfig, overrides: Mapping[str, Any], where: str, labels: Mapping[str, str] | None = None) -> RunConfig:
    sections = {f.name: f for f in dataclasses.fields(RunConfig) if f.name != "task"}
    updated: dict[str, Any] = {}
    for section, values in overrides.items():
        if section == "task":
            if not (values is None or (isinstance(values, str) and values)):
                key = f"{labels['task']} (task)" if labels and "task" in labels else "task"
                raise ValueError(f"config{where}: expected {key} to be a task name (str), got {values!r}")
            updated["task"] = values
            continue
        if section not in sections:
            raise ValueError(f"config{where}: unknown section {section!r} (expected one of {sorted(sections)}, or task)")
        if not isinstance(values, Mapping):
            raise ValueError(f"config{where}: expected section {section!r} to be a mapping, got {values!r}")
        current = getattr(config, section)
        hints = typing.get_type_hints(type(current))
        changes = {}
        for name, value in values.items():
            if name not in hints:
                raise ValueError(f"config{where}: unknown key {section}.{name} (expected one of {sorted(hints)})")
            changes[name] = _coerce(where, section, name, value, hints[name], (labels or {}).get(f"{section}.{name}"))
        updated[section] = dataclasses.replace(current, **changes)
    return dataclasses.replace(config, **updated)


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` refusing duplicate keys (the last would win silently) and aliases (``*name``:
    a few hundred bytes of nested aliases expand to gigabytes, the "billion laughs")."""

    def compose_node(self, parent, index):  # noqa: ANN001 (PyYAML's signature)
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "expected no aliases (*name) in a config, got one",
                                              self.peek_event().start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):  # noqa: ANN001
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"expected each key once per mapping, got {key!r} again (first on line {seen[key] + 1})",
                    key_node.start_mark)
            if isinstance(key, (str, int, float, bool)):
                seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """The first line of a PyYAML error, with its line and column when it has them."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem and exc.problem_mark is not None:
        return f"{exc.problem} at line {exc.problem_mark.line + 1}, column {exc.problem_mark.column + 1}"
    return str(exc).strip().splitlines()[0]


def _check_applicable(config: RunConfig, given: Mapping[str, str], where: str) -> None:
    """Refuse a setting the run would silently ignore; ``given`` maps ``section.key`` to how it was given."""
    source = config.data.source
    for key, label in given.items():
        section, name = key.split(".", 1)
        if section == "forecast" and config.task == "tagging":
            reason = f"a series data.source (shm, bessel, co2, FILE.csv), got data.source {source!r} (task tagging)"
        elif key in ("forecast.column", "forecast.time_column") and source in SERIES_SOURCES:
            reason = f"a .csv data.source, got the built-in series {source!r}"
        elif key in ("executor.shots", "executor.seed") and config.executor.backend == "exact":
            reason = "a sampler backend (aer, aer-noisy:, fake:, ibm:), got executor.backend 'exact'"
        else:
            continue
        raise ValueError(f"config{where}: expected {label} only with {reason} (it would be ignored)")


def check_model_memory(model: ModelConfig, where: str = "") -> None:
    """Refuse a model whose recurrent weights alone would not fit in memory, before allocating them.

    The weights counted: ``nn.LSTM``'s ``4H(E + H)`` per layer, or a quantum cell's projection
    ``(E + H)·q`` and gate map ``4H·max(q, R)``; each costs 16 bytes in training (value,
    gradient and Adam's two moments).
    """
    import psutil

    width = model.embedding_dim + model.hidden_dim
    if model.kind == "lstm":
        weights = 4 * model.hidden_dim * width * model.num_layers
    else:
        weights = (width * model.num_qubits + 4 * model.hidden_dim * max(model.num_qubits, model.num_references)) * model.num_layers
    needed, available = 16 * weights, psutil.virtual_memory().available
    if needed > available:
        raise ValueError(
            f"config{where}: expected a model that fits in memory, got model.hidden_dim {model.hidden_dim}, "
            f"embedding_dim {model.embedding_dim}, num_layers {model.num_layers}: {weights:.3g} weights need "
            f"{needed / 2**30:.3g} GiB to train, {available / 2**30:.3g} GiB available"
        )


def load_config(
    path: str | Path | None = None, overrides: Mapping[str, Any] | None = None, *,
    labels: Mapping[str, str] | None = None,
) -> RunConfig:
    """Defaults ← YAML file ``path`` ← ``overrides`` (``{"train": {"seed": 1}}``, ``{"task": "tagging"}``), all validated.

    Without a ``task`` in either, the task is :func:`infer_task` of the final ``data.source``
    (a file is told so once per process, with a :class:`~qk_lstm_qiskit.errors.TaskInferredWarning`). ``labels`` names where an override came from in error messages (``{"train.seed": "--seed"}``).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: a file that is not UTF-8 YAML, malformed YAML, unknown section or key, wrong
            type or out-of-range value — one line naming the file and the key.
    """
    config = RunConfig()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config: expected an existing YAML file, got {str(path)!r}")
        try:
            loaded = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)  # noqa: S506 (a SafeLoader)
        except UnicodeDecodeError as exc:
            raise ValueError(
                f"config {path}: expected a UTF-8 YAML text file, got byte {exc.object[exc.start]:#04x} at offset {exc.start}"
            ) from exc
        except yaml.YAMLError as exc:
            raise ValueError(f"config {path}: not valid YAML ({_yaml_problem(exc)})") from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, Mapping):
            raise ValueError(f"config {path}: expected a mapping of sections, got {type(loaded).__name__}")
        config = _merge(config, loaded, f" {path}")
        given = {f"{s}.{k}": f"{s}.{k} (in {path})" for s, values in loaded.items() if isinstance(values, Mapping)
                 for k in values}
    else:
        given = {}
    if overrides is not None and not isinstance(overrides, Mapping):
        raise TypeError(f"config: expected overrides to be a mapping of sections, got {type(overrides).__name__}")
    if overrides:
        config = _merge(config, overrides, "", labels)
        given |= {f"{s}.{k}": (labels or {})[f"{s}.{k}"] for s, values in overrides.items()
                  if isinstance(values, Mapping) for k in values
                  if f"{s}.{k}" in (labels or {}) and values[k] is not None}  # flags; API overrides (e.g. a saved config) are complete
    if config.task is None:
        config = dataclasses.replace(config, task=infer_task(config.data.source))
        if path is not None:
            warnings.warn(f"config {path}: no task named; {config.task!r} inferred from data.source "
                          f"{config.data.source!r} (add `task: {config.task}` to the file)", TaskInferredWarning, stacklevel=2)
    _check_applicable(config, given, "")
    check_model_memory(config.model)
    return config
