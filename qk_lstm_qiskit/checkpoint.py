"""Loading trained taggers and forecasters from ``model.pt`` on any executor."""

from __future__ import annotations

from pathlib import Path

import torch

from .config import RunConfig, load_config
from .data.corpus import Vocabulary
from .data.series import Scaler
from .nn.forecaster import Forecaster, build_forecaster
from .nn.tagger import Tagger, build_tagger

__all__ = ["load_checkpoint", "load_tagger", "load_forecaster", "is_forecast_checkpoint"]


def load_checkpoint(path: str | Path) -> dict:
    """The checkpoint dictionary at ``path`` (tensors and plain data only)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint: expected an existing file, got {str(path)!r}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for foreign files
        raise ValueError(f"checkpoint: {str(path)!r} is not a qk_lstm_qiskit checkpoint ({type(exc).__name__})") from exc
    keys = set(state if isinstance(state, dict) else ())
    task_keys = {"scaler"} if isinstance(state, dict) and state.get("task") == "forecast" else {"words", "tags"}
    missing = ({"model_state", "config"} | task_keys) - keys
    if missing:
        raise ValueError(f"checkpoint: {str(path)!r} lacks {sorted(missing)}; expected a model.pt written by qk-lstm train")
    return state


def load_tagger(
    path: str | Path, *, sampler=None, pass_manager=None
) -> tuple[Tagger, Vocabulary, Vocabulary, RunConfig]:
    """Rebuild the tagger saved at ``path`` with kernels on ``sampler`` (``None``: exact).

    The parameters do not depend on the executor, so a model trained on one runs on any other.

    Returns:
        ``(tagger in eval mode, word vocabulary, tag vocabulary, run config)``.
    """
    state = load_checkpoint(path)
    if state.get("task") == "forecast":
        raise ValueError(f"load_tagger: expected a tagger checkpoint, got the forecaster {str(path)!r} (use load_forecaster)")
    config = load_config(overrides=state["config"])
    words, tags = Vocabulary.from_dict(state["words"]), Vocabulary.from_dict(state["tags"])
    model = build_tagger(config.model, len(words), len(tags), sampler=sampler, pass_manager=pass_manager)
    model.load_state_dict(state["model_state"])
    return model.eval(), words, tags, config


def is_forecast_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` holds a forecaster (written by a forecasting run)."""
    return load_checkpoint(path).get("task") == "forecast"


def load_forecaster(path: str | Path, *, sampler=None, pass_manager=None) -> tuple[Forecaster, Scaler, RunConfig]:
    """Rebuild the forecaster saved at ``path`` with kernels on ``sampler`` (``None``: exact).

    Returns:
        ``(forecaster in eval mode, the training span's scaler, run config)``.
    """
    state = load_checkpoint(path)
    if state.get("task") != "forecast":
        raise ValueError(f"load_forecaster: expected a forecaster checkpoint, got the tagger {str(path)!r} (use load_tagger)")
    config = load_config(overrides=state["config"])
    model = build_forecaster(config.model, state.get("num_features", 1), sampler=sampler, pass_manager=pass_manager)
    model.load_state_dict(state["model_state"])
    return model.eval(), Scaler(**state["scaler"]), config
