"""One training run end to end: data, model, executor, trainer, run folder."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch

from ..hardware.backends import resolve_backend
from ..config import RunConfig, load_config
from ..data.corpus import make_batches
from ..data.series import is_series_source
from ..data.tasks import TaskData, prepare_data
from ..errors import QKLSTMError
from ..nn.tagger import build_tagger, count_parameters
from .forecast import train_forecaster
from .trainer import Trainer, evaluate, seed_everything

__all__ = ["run_training", "default_run_dir"]

log = logging.getLogger(__name__)
CHECKPOINT_FORMAT = 1


def default_run_dir(config: RunConfig) -> Path:
    return Path("runs") / f"{config.model.kind}-s{config.train.seed}-{time.strftime('%Y%m%d-%H%M%S')}"


def _check_run_dir(out_dir: Path, resume: bool, config: RunConfig) -> dict | None:
    """Refuse to overwrite a finished or started run; return the resume state when asked."""
    last = out_dir / "last.pt"
    if not resume:
        existing = [n for n in ("model.pt", "last.pt", "metrics.json") if (out_dir / n).exists()]
        if existing:
            raise QKLSTMError(
                f"train: --out {out_dir} already holds a run ({', '.join(existing)}); "
                "pass --resume to continue it or choose another folder"
            )
        return None
    if not last.is_file():
        raise QKLSTMError(f"train: --resume expected {last} from an earlier run, not found")
    state = torch.load(last, map_location="cpu", weights_only=False)
    saved, current = load_config(overrides=state["config"]).to_dict(), config.to_dict()  # keys added since: defaults
    sections = ("model", "data", "executor") + (("forecast",) if is_series_source(config.data.source) else ())
    for section in sections:
        for key, value in current[section].items():
            if saved[section].get(key) != value:
                raise QKLSTMError(
                    f"train: --resume expected {section}.{key} = {saved[section].get(key)!r} as saved in {last}, got {value!r}"
                )
    return state


def run_training(
    config: RunConfig, out_dir: Path | None = None, *, resume: bool = False, progress: bool = True, sampler=None,
) -> dict[str, Any]:
    """Train the tagger (or, when ``data.source`` names a series, the forecaster) of ``config``
    and return its metrics (also written to ``out_dir``).

    Args:
        config: the whole run configuration.
        out_dir: run folder (created); ``None`` keeps everything in memory.
        resume: continue from ``out_dir/last.pt``.
        sampler: a ``BaseSamplerV2`` overriding ``config.executor`` (Python API only).
    """
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        resume_state = _check_run_dir(out_dir, resume, config)
    else:
        resume_state = None
    forecasting = is_series_source(config.data.source)
    data = None if forecasting else prepare_data(config.data)
    pass_manager = backend = None
    if sampler is None:
        ex = config.executor
        backend = resolve_backend(ex.backend, shots=ex.shots, seed=ex.seed, optimization_level=ex.optimization_level)
        sampler, pass_manager = backend.sampler, backend.pass_manager
    try:
        if forecasting:
            return train_forecaster(config, out_dir, resume_state, progress=progress, sampler=sampler,
                                    pass_manager=pass_manager, checkpoint_format=CHECKPOINT_FORMAT)
        return _train(config, data, out_dir, resume_state, progress, sampler, pass_manager)
    finally:
        if backend is not None:
            backend.close()


def _train(
    config: RunConfig, data: TaskData, out_dir: Path | None, resume_state: dict | None, progress: bool,
    sampler, pass_manager,
) -> dict[str, Any]:
    seed_everything(config.train.seed)
    model = build_tagger(config.model, len(data.words), len(data.tags), sampler=sampler, pass_manager=pass_manager)
    if config.model.kind == "qk-lstm" and config.model.references == "data":
        sample = make_batches(data.train[:32], 32, pad_index=data.words.pad_index or 0)[0]
        model.recurrent.init_references_from_data(model.embedding(sample.words).detach())
    metadata = {
        "format": CHECKPOINT_FORMAT,
        "model": config.model.kind,
        "trainable_parameters": count_parameters(model),
        "config": config.to_dict(),
        "words": data.words.to_dict(),
        "tags": data.tags.to_dict(),
    }
    trainer = Trainer(
        model, config.train, out_dir=out_dir, metadata=metadata, pad_index=data.words.pad_index or 0, progress=progress
    )
    if resume_state is not None:
        trainer.load_state(resume_state)
    history = trainer.fit(data.train, data.validation or None)
    final = evaluate(model, make_batches(
        data.train, config.train.batch_size, pad_index=data.words.pad_index or 0, bucket_batches=config.train.bucket_batches
    ))
    extra: dict[str, Any] = {"final_accuracy": final["accuracy"], "final_loss": final["loss"]}
    if data.validation:
        extra["best_val_accuracy"] = max(r["val_accuracy"] for r in history)
    trainer.write_metrics(**extra)
    meta = {k: v for k, v in metadata.items() if k not in ("words", "tags")}
    return {**meta, "epochs": history, **extra, "out_dir": None if out_dir is None else str(out_dir)}
