"""The checkpoint format: ``model.pt`` (a trained model) and ``last.pt`` (everything ``--resume`` needs).

Every task shares it (:mod:`qk_lstm_qiskit.tasks`: a task adds its own keys and rebuilds its model
with :meth:`~qk_lstm_qiskit.tasks.Task.load`); :func:`load_tagger` / :func:`load_forecaster` rebuild
the two first tasks' models on any executor.

Both are ``torch.save`` dictionaries of tensors and plain Python data (no pickled objects), written
atomically and stamped ``format`` = :data:`FORMAT_VERSION`; both are read with
``torch.load(weights_only=True)``, so a foreign file cannot run code when loaded.

================  ===========================================================================
key               content
================  ===========================================================================
``format``        :data:`FORMAT_VERSION`
``model_state``   the model's ``state_dict``
``config``        ``RunConfig.to_dict()`` of the run
``task``          the task's name (:func:`checkpoint_task`: absent in taggers' files and
                  ``"forecast"`` in forecasters' files of format 2)
task keys         the task's own (``Task.checkpoint_keys``): ``words`` and ``tags`` vocabularies
                  (``Vocabulary.to_dict()``) for tagging; ``scaler`` (``{mean, std}`` of the
                  training span) and ``num_features`` for forecasting
provenance        ``model``, ``trainable_parameters``, ``epoch``
``last.pt``       adds ``optimizer_state``, ``generator_state``, ``torch_rng_state``,
                  ``numpy_rng_state`` (as plain lists), ``python_rng_state``, ``history``,
                  ``best_score`` (the monitored metric, negated when lower is better;
                  ``best_accuracy`` in taggers' files before forecasting existed)
================  ===========================================================================
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from pathlib import Path
from typing import Any, Iterator

import torch

from .config import RunConfig, load_config
from .data.corpus import Vocabulary
from .data.scaling import ChannelScaler
from .data.series import Scaler
from .nn.forecaster import Forecaster, build_forecaster
from .nn.tagger import Tagger, build_tagger
from .rundir import save_atomic

__all__ = [
    "FORMAT_VERSION",
    "LAST_FILE",
    "MODEL_FILE",
    "checkpoint_task",
    "is_forecast_checkpoint",
    "load_checkpoint",
    "load_forecaster",
    "load_tagger",
    "require_keys",
    "restoring",
    "save_checkpoint",
]

FORMAT_VERSION = 3  #: 2: numpy RNG state stored as plain lists (weights_only loading of last.pt); 3: every file names its task
MODEL_FILE = "model.pt"  #: the trained model of a run folder (best validation score, or the last epoch)
LAST_FILE = "last.pt"  #: everything ``--resume`` needs (model, optimizer, RNG states, epoch, history)
_MODEL_KEYS = frozenset({"model_state", "config"})
_TAGGING_KEYS, _FORECAST_KEYS = ("words", "tags"), ("scaler",)
_LEGACY_TASKS = {None: "tagging", "forecast": "forecasting"}  # "task" in files of format <= 2
_RESUME_KEYS = frozenset({
    "optimizer_state", "generator_state", "torch_rng_state", "numpy_rng_state", "python_rng_state",
    "epoch", "history",
})


log = logging.getLogger(__name__)
_WARNED: set[tuple[str, str]] = set()


def data_fingerprint(source: str) -> dict[str, str]:
    """``{"data_path", "data_sha256"}`` of ``data.source`` when it names a file (a built-in source: ``{}``).

    Stored in checkpoints, so a run can be evaluated or resumed from any folder and an edited
    data file is noticed (:func:`check_data_fingerprint`).
    """
    path = Path(source)
    if not path.is_file():
        return {}
    return {"data_path": str(path.resolve()), "data_sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def check_data_fingerprint(state: dict[str, Any], path: str | os.PathLike, *, strict: bool) -> None:
    """Compare the data file a checkpoint ``state`` (from ``path``) was trained on with that file now.

    A changed file: ``ValueError`` with ``strict`` (resuming on other data), else one warning line.
    """
    saved = state.get("data_sha256")
    if not isinstance(saved, str) or not Path(str(state.get("data_path"))).is_file():
        return
    now = data_fingerprint(str(state["data_path"]))["data_sha256"]
    if now == saved:
        return
    message = (f"checkpoint {str(path)!r}: expected data {state['data_path']} as trained on (sha256 {saved[:12]}…), "
               f"got a changed file (sha256 {now[:12]}…)")
    if strict:
        raise ValueError(f"{message}; resume on the original data or train a new run")
    if (saved, now) not in _WARNED:  # one line per changed file, however often it is loaded
        _WARNED.add((saved, now))
        log.warning("%s; results use the file as it is now", message)


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> None:
    """Write ``state`` (see the module table) to ``path`` atomically, stamped with :data:`FORMAT_VERSION`."""
    save_atomic({**state, "format": FORMAT_VERSION}, Path(path))


def checkpoint_task(state: dict[str, Any]) -> str:
    """The name of the task that wrote ``state`` (files of format 2: ``tagging`` without a
    ``task`` key, ``forecasting`` for ``"forecast"``)."""
    task = state.get("task")
    if state.get("format", 1) <= 2:
        task = _LEGACY_TASKS.get(task, task)
    return task if isinstance(task, str) else repr(task)


def load_checkpoint(path: str | os.PathLike, *, resume: bool = False, keys: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The checkpoint dictionary at ``path``, loaded with ``weights_only=True`` and checked.

    Args:
        path: a ``model.pt`` or ``last.pt`` written by ``qk-lstm train``.
        resume: require the ``last.pt`` keys (optimizer, RNG states, history).
        keys: the task's own keys to require (default: those of tagging and forecasting files
            by their :func:`checkpoint_task`; none for other tasks, whose loaders name theirs).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: a file that is not such a checkpoint (foreign, truncated or empty), of a newer
            format, or lacking keys — one line naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint: expected an existing file, got {str(path)!r}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for foreign or truncated files
        raise ValueError(
            f"checkpoint: {str(path)!r} is not a qk_lstm_qiskit checkpoint (unreadable: {type(exc).__name__})"
        ) from exc
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint: {str(path)!r} is not a qk_lstm_qiskit checkpoint (got a {type(state).__name__})")
    version = state.get("format", 1)
    if isinstance(version, bool) or not isinstance(version, int):
        raise ValueError(f"checkpoint: expected an int format in {str(path)!r}, got {version!r} (not a qk_lstm_qiskit checkpoint)")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"checkpoint: expected format <= {FORMAT_VERSION} in {str(path)!r}, got {version!r} (written by a newer version)"
        )
    if keys is None:
        keys = {"tagging": _TAGGING_KEYS, "forecasting": _FORECAST_KEYS}.get(checkpoint_task(state), ())
    require_keys(state, path, keys, resume=resume)
    check_data_fingerprint(state, path, strict=resume)
    return state


def require_keys(state: dict[str, Any], path: str | os.PathLike, keys: tuple[str, ...], *, resume: bool = False) -> None:
    """Refuse a checkpoint ``state`` (read from ``path``) without ``model_state``, ``config`` and ``keys``
    (and, with ``resume``, the ``last.pt`` keys) in one line naming the file."""
    required = _MODEL_KEYS | set(keys) | (_RESUME_KEYS if resume else set())
    missing = required - set(state)
    if resume and not {"best_score", "best_accuracy"} & set(state):
        missing |= {"best_score"}
    if missing:
        expected = "a last.pt" if resume else "a model.pt or last.pt"
        raise ValueError(f"checkpoint: {str(path)!r} lacks {sorted(missing)}; expected {expected} written by qk-lstm train")


def load_tagger(
    path: str | os.PathLike, *, sampler=None, pass_manager=None, fidelity: str | None = None
) -> tuple[Tagger, Vocabulary, Vocabulary, RunConfig]:
    """Rebuild the tagger saved at ``path`` (``model.pt``, ``last.pt`` or their run folder) on ``sampler``
    (with the registered fidelity ``fidelity``, default compute-uncompute; see :func:`~qk_lstm_qiskit.nn.tagger.build_tagger`).

    ``sampler=None`` is the exact executor. The parameters do not depend on the executor, so a
    model trained on one runs on any other.

    Returns:
        ``(tagger in eval mode, word vocabulary, tag vocabulary, run config)``.

    Raises:
        ValueError: see :func:`load_checkpoint`; a state dict that does not fit its own config.
    """
    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    state = load_checkpoint(path)
    if checkpoint_task(state) != "tagging":
        raise ValueError(f"load_tagger: expected a tagger checkpoint, got the {_what(state)} {str(path)!r} "
                         f"(use {'load_forecaster' if checkpoint_task(state) == 'forecasting' else 'Task.load'})")
    with restoring(path):  # a hand-edited config, vocabulary or state dict
        config = load_config(overrides=state["config"])
        words, tags = Vocabulary.from_dict(state["words"]), Vocabulary.from_dict(state["tags"])
        model = build_tagger(config.model, len(words), len(tags), sampler=sampler, pass_manager=pass_manager,
                             fidelity=fidelity)
        model.load_state_dict(state["model_state"])
    return model.eval(), words, tags, config


@contextlib.contextmanager
def restoring(path: str | os.PathLike) -> Iterator[None]:
    """Turn a saved state that does not fit what it is loaded into (a hand-edited or foreign model,
    optimizer or RNG state) into one ``ValueError`` naming ``path``.

    Example:
        >>> import torch
        >>> model = torch.nn.Linear(2, 1)
        >>> with restoring("runs/x/last.pt"):  # doctest: +ELLIPSIS
        ...     model.load_state_dict({"weight": torch.zeros(3, 3), "bias": torch.zeros(1)})
        Traceback (most recent call last):
        ...
        ValueError: checkpoint: 'runs/x/last.pt' holds a state that does not fit its config (...)
    """
    try:
        yield
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as exc:
        lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
        detail = " ".join(lines[:2])[:200] or type(exc).__name__
        raise ValueError(f"checkpoint: {str(path)!r} holds a state that does not fit its config ({detail})") from exc


def _what(state: dict[str, Any]) -> str:
    task = checkpoint_task(state)
    return {"tagging": "tagger", "forecasting": "forecaster"}.get(task, f"{task} model")


def _model_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path / MODEL_FILE if path.is_dir() else path


def is_forecast_checkpoint(path: str | os.PathLike) -> bool:
    """Whether ``path`` (a checkpoint or its run folder) holds a forecaster."""
    return checkpoint_task(load_checkpoint(_model_path(path))) == "forecasting"


def load_forecaster(
    path: str | os.PathLike, *, sampler=None, pass_manager=None
) -> tuple[Forecaster, Scaler | ChannelScaler, RunConfig]:
    """Rebuild the forecaster saved at ``path`` (``model.pt``, ``last.pt`` or their run folder) on ``sampler``.

    Returns:
        ``(forecaster in eval mode, the training span's scaler, run config)``: a :class:`Scaler` for one
        series, a per-column :class:`~qk_lstm_qiskit.data.scaling.ChannelScaler` for a table (``num_targets`` saved).

    Raises:
        ValueError: see :func:`load_checkpoint`; a tagger checkpoint; a state that does not fit the config.
    """
    path = _model_path(path)
    state = load_checkpoint(path)
    if checkpoint_task(state) != "forecasting":
        raise ValueError(f"load_forecaster: expected a forecaster checkpoint, got the {_what(state)} {str(path)!r} "
                         f"(use {'load_tagger' if checkpoint_task(state) == 'tagging' else 'Task.load'})")
    with restoring(path):
        config = load_config(overrides=state["config"])
        model = build_forecaster(config.model, state.get("num_features", 1), num_targets=state.get("num_targets"),
                                 sampler=sampler, pass_manager=pass_manager)
        model.load_state_dict(state["model_state"])
        saved = state["scaler"]
        scaler = ChannelScaler.from_dict(saved) if isinstance(saved["mean"], (list, tuple)) else Scaler(**saved)
    return model.eval(), scaler, config
