"""One training run end to end, for every task: data, model, executor, trainer, run folder, report."""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any, cast

import torch

from ..hardware.backends import resolve_backend
from ..hardware.cost import DryRunSampler, batch_shapes, estimate_model_cost
from ..config import RunConfig, load_config
from ..checkpoint import LAST_FILE, MODEL_FILE, checkpoint_task, data_fingerprint, load_checkpoint, require_keys, restoring
from ..nn.lstm import QKLSTM
from ..nn.tagger import count_parameters
from ..rundir import claim_out_dir
from ..tasks import Task, TaskData, make_task
from . import distributed
from .trainer import Trainer, seed_everything

__all__ = ["run_training", "default_run_dir", "estimate_training"]

log = logging.getLogger(__name__)


def default_run_dir(config: RunConfig) -> Path:
    return Path("runs") / f"{config.model.kind}-s{config.train.seed}-{time.strftime('%Y%m%d-%H%M%S')}"


RUN_OUTPUTS = (MODEL_FILE, LAST_FILE, "metrics.json")


def _resume_state(out_dir: Path, config: RunConfig, task: Task) -> dict:
    """``out_dir/last.pt``, refusing a config that differs from the saved one in the task or its
    ``task.sections`` (except a larger ``train.epochs``)."""
    state = load_checkpoint(out_dir / LAST_FILE, resume=True, keys=())
    if checkpoint_task(state) != task.name:
        raise ValueError(f"train: --resume expected task = {checkpoint_task(state)!r} as saved in {out_dir / LAST_FILE}, "
                         f"got {task.name!r} (a resumed run keeps its settings; only epochs may grow)")
    require_keys(state, out_dir / LAST_FILE, task.checkpoint_keys, resume=True)
    with restoring(out_dir / LAST_FILE):
        saved = load_config(overrides=state["config"]).to_dict()  # keys added since: defaults
    current = config.to_dict()
    for section in task.sections:
        for key, value in current[section].items():
            if section == "train" and key == "epochs":
                continue
            if section == "data" and key == "source" and Path(saved["data"]["source"]).resolve() == Path(value).resolve():
                continue  # a run trained on a relative path, resumed from the same folder
            if saved.get(section, {}).get(key) != value:
                raise ValueError(
                    f"train: --resume expected {section}.{key} = {saved.get(section, {}).get(key)!r} as saved in "
                    f"{out_dir / LAST_FILE}, got {value!r} (a resumed run keeps its settings; only epochs may grow)"
                )
    done = len(state["history"])
    if config.train.epochs < done:
        raise ValueError(f"train: --resume expected train.epochs >= {done} (epochs already run in {out_dir}), "
                         f"got {config.train.epochs}")
    return state


def with_absolute_data(config: RunConfig) -> RunConfig:
    """``config`` with ``data.source`` made absolute when it names an existing file (built-in sources unchanged)."""
    source = Path(config.data.source)
    if not source.is_file() or source.is_absolute():
        return config
    return dataclasses.replace(config, data=dataclasses.replace(config.data, source=str(source.resolve())))


def _place_executor(config: RunConfig) -> int | None:
    """Check ``executor.device`` before anything runs; the exact executors' memory limit in bytes (``None``: default)."""
    ex = config.executor
    if ex.device != "cpu" and ex.backend != "exact":
        raise ValueError(f"train: expected executor.device 'cpu' for backend {ex.backend!r} (samplers run on the host), got {ex.device!r}")
    if ex.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"train: expected a CUDA device for executor.device {ex.device!r}, but torch sees none")
    return None if ex.memory_limit_gb is None else int(ex.memory_limit_gb * 2**30)


def run_training(
    config: RunConfig, out_dir: Path | None = None, *, resume: bool = False, progress: bool = True, sampler=None,
) -> dict[str, Any]:
    """Train the model of ``config``'s task (:func:`~qk_lstm_qiskit.tasks.make_task`) and return its
    metrics (also written to ``out_dir``).

    The same run for every task: under ``torchrun`` every rank trains its share of each batch
    (:class:`~qk_lstm_qiskit.training.distributed.DistributedTrainer`); ``resume`` restores
    everything through :func:`~qk_lstm_qiskit.checkpoint.restoring`; the task's
    :meth:`~qk_lstm_qiskit.tasks.Task.report` adds its final metrics.

    Args:
        config: the whole run configuration.
        out_dir: run folder, created when the first epoch is saved (after every check passed);
            ``None`` keeps everything in memory.
        resume: continue from ``out_dir/last.pt``.
        sampler: a ``BaseSamplerV2`` overriding ``config.executor`` (Python API only).
    """
    config = with_absolute_data(config)  # checkpoints then work from any folder
    task = make_task(config)
    memory_limit = _place_executor(config)
    distributed.setup(config.executor.device)  # under torchrun: join the process group
    if out_dir is None:
        return _run(task, None, resume=resume, progress=progress, sampler=sampler, memory_limit=memory_limit)
    with claim_out_dir(out_dir, command="train", outputs=RUN_OUTPUTS, resume=resume, resume_from=LAST_FILE,
                       lock=distributed.world()[0] == 0) as out:  # rank 0 owns the folder for every rank
        return _run(task, out, resume=resume, progress=progress, sampler=sampler, memory_limit=memory_limit)


def _run(task: Task, out_dir: Path | None, *, resume: bool, progress: bool, sampler, memory_limit) -> dict[str, Any]:
    config = task.config
    resume_state = _resume_state(out_dir, config, task) if out_dir is not None and resume else None
    distributed.barrier()  # every rank has checked the run folder before rank 0 writes to it
    data = task.prepare()
    pass_manager = backend = None
    if sampler is None:
        ex = config.executor
        backend = resolve_backend(ex.backend, shots=ex.shots, seed=ex.seed, optimization_level=ex.optimization_level)
        sampler, pass_manager = backend.sampler, backend.pass_manager
    try:
        return _train(task, data, out_dir, resume_state, progress, sampler, pass_manager, memory_limit)
    finally:
        if backend is not None:
            backend.close()


def _train(
    task: Task, data: TaskData, out_dir: Path | None, resume_state: dict | None, progress: bool, sampler, pass_manager,
    memory_limit: int | None = None,
) -> dict[str, Any]:
    config = task.config
    seed_everything(config.train.seed)
    model = task.build_model(sampler=sampler, pass_manager=pass_manager, memory_limit=memory_limit)
    model = model.to(config.executor.device)
    if config.model.kind == "qk-lstm" and config.model.references == "data":
        recurrent = cast(QKLSTM, model.get_submodule("recurrent"))
        recurrent.init_references_from_data(task.recurrent_inputs(model, data.train))
    metadata = {
        "task": task.name,
        "model": config.model.kind,
        "trainable_parameters": count_parameters(model),
        "config": config.to_dict(),
        **data_fingerprint(config.data.source),
        **task.metadata(),
    }
    trainer_class = distributed.DistributedTrainer if distributed.world()[1] > 1 else Trainer
    trainer = trainer_class(model, config.train, task, out_dir=out_dir, metadata=metadata, progress=progress)
    if resume_state is not None and out_dir is not None:
        with restoring(out_dir / LAST_FILE):
            trainer.load_state(resume_state)
    history = trainer.fit(data.train, data.validation)
    # rank 0 reports (it wrote model.pt and writes the plots); every rank returns its report
    extra = distributed.from_rank_zero(task.report(model, data, history, out_dir) if distributed.world()[0] == 0 else None)
    trainer.write_metrics(**extra)
    meta = {k: v for k, v in metadata.items() if k not in task.private_keys}
    return {**meta, "epochs": history, **extra, "out_dir": None if out_dir is None else str(out_dir)}


def estimate_training(config: RunConfig, *, resolved=None, job_overhead_seconds: float | None = None):
    """:class:`~qk_lstm_qiskit.hardware.cost.CostEstimate` of ``qk-lstm train`` with ``config`` on its backend.

    ``train.epochs`` epochs over the training examples in batches of ``train.batch_size``
    (sorted by length: with shuffled batches expect more padded steps), forward and
    parameter-shift backward. Nothing is submitted.
    """
    task = make_task(config)
    if config.model.kind != "qk-lstm":
        raise ValueError(f"train: expected model.kind 'qk-lstm' for a QPU estimate (its kernels use the sampler), "
                         f"got {config.model.kind!r}")
    ex = config.executor
    rb = resolved or resolve_backend(ex.backend, shots=ex.shots, seed=ex.seed, optimization_level=ex.optimization_level)
    if rb.sampler is None:
        raise ValueError(f"train: expected a sampler backend for --dry-run/--max-qpu-seconds, got {rb.name!r}")
    lengths = sorted(task.sequence_lengths(task.prepare().train))
    model = task.build_model(sampler=DryRunSampler(), pass_manager=rb.pass_manager)
    return estimate_model_cost(model, batch_shapes(lengths, config.train.batch_size), rb, training=True,
                               epochs=config.train.epochs, job_overhead_seconds=job_overhead_seconds)
