"""What a run learns: the :class:`Task` protocol and the registry of tasks by name.

A new task is one module with a :class:`Task` subclass, plus that class in the tuple below.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..checkpoint import MODEL_FILE, checkpoint_task, load_checkpoint, require_keys, restoring
from ..config import RunConfig, infer_task, load_config
from .base import Step, Task, TaskData
from .classification import ClassificationTask
from .forecasting import ForecastingTask
from .tagging import TaggingTask

__all__ = ["TASKS", "Step", "Task", "TaskData", "make_task", "task_class", "task_of_checkpoint"]

TASKS: dict[str, type[Task]] = {cls.name: cls for cls in (TaggingTask, ForecastingTask, ClassificationTask)}  #: name → task class


def task_class(name: str) -> type[Task]:
    """The registered task called ``name``.

    Raises:
        ValueError: an unknown name (one line naming the registered ones).
    """
    if name not in TASKS:
        raise ValueError(f"config: expected task in {tuple(TASKS)}, got {name!r}")
    return TASKS[name]


def make_task(config: RunConfig) -> Task:
    """The task ``config`` names (a config without one: :func:`~qk_lstm_qiskit.config.infer_task`), checked against it."""
    return task_class(config.task or infer_task(config.data.source))(config)


def task_of_checkpoint(path: str | os.PathLike) -> tuple[Task, dict[str, Any]]:
    """The task that wrote the checkpoint at ``path`` (a file or its run folder), restored from it, and
    the checkpoint's dictionary (checked for the task's keys).

    Raises:
        FileNotFoundError, ValueError: see :func:`~qk_lstm_qiskit.checkpoint.load_checkpoint`; an unknown task.
    """
    path = Path(path)
    path = path / MODEL_FILE if path.is_dir() else path
    state = load_checkpoint(path, keys=())
    cls = task_class(checkpoint_task(state))
    require_keys(state, path, cls.checkpoint_keys)
    with restoring(path):
        task = cls(load_config(overrides=state["config"]))
        task.restore(state)
    return task, state
