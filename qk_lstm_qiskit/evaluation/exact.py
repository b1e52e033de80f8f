"""``qk-lstm evaluate --backend exact``: a saved tagger of any kind on the torch executor."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from ..checkpoint import load_tagger
from ..data.tasks import evaluation_data
from ..rundir import claim_out_dir, write_json_atomic
from ..validation import check_int
from .loop import evaluate_tagger
from .metrics import write_confusion_png

__all__ = ["OUTPUT_FILES", "evaluate_exact"]

logger = logging.getLogger(__name__)

OUTPUT_FILES = ("metrics.json", "confusion.png")  #: what an exact evaluation writes into its folder


def evaluate_exact(
    checkpoint: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    data: str | None = None,
    batch_size: int | None = None,
    max_sentences: int | None = None,
) -> dict[str, Any]:
    """Evaluate the tagger saved at ``checkpoint`` on the exact executor; write ``metrics.json`` and ``confusion.png``.

    Args:
        checkpoint: a ``model.pt`` or ``last.pt`` written by ``qk-lstm train`` (any model kind), or its run folder.
        out_dir: a folder for the results, created when they are written; must not already hold
            them (a training run's ``metrics.json`` or an earlier evaluation is never overwritten).
        data: ``"paper"``, a CoNLL-U path, or ``None`` for the checkpoint's validation split
            (re-drawn with its seed; the whole training source when it had no split).
        batch_size: sentences per batch (default: the training batch size).
        max_sentences: evaluate only the first sentences (default all).

    Returns:
        The metrics (also in ``out_dir/metrics.json``): ``accuracy``, ``loss``, ``macro_f1``,
        ``per_tag`` (precision, recall, f1, support), ``confusion_matrix`` and ``labels``,
        known/unknown-word accuracies, ``unseen_tags``, ``sentences``, ``tokens``, ``seconds``.

    Raises:
        FileNotFoundError: missing checkpoint or data file.
        ValueError: ``out_dir`` already holds results, a foreign checkpoint, bad data, unknown
            words without ``<unk>``.
    """
    for name, value in (("batch_size", batch_size), ("max_sentences", max_sentences)):
        check_int("evaluate", name, value, 1, optional=True)
    with claim_out_dir(out_dir, command="evaluate", outputs=OUTPUT_FILES) as out:
        return _evaluate_exact(checkpoint, out, data, batch_size, max_sentences)


def _evaluate_exact(checkpoint, out: Path, data, batch_size, max_sentences) -> dict:
    model, words, tags, config = load_tagger(checkpoint)
    eval_data = evaluation_data(data, config.data, words, tags, max_sentences=max_sentences)
    result, _ = evaluate_tagger(model, eval_data, words, tags, batch_size=batch_size or config.train.batch_size)
    if eval_data.unseen_tags:
        logger.warning("gold tags absent from training count as errors: %s", eval_data.unseen_tags)
    metrics = {
        "checkpoint": str(checkpoint),
        "data": eval_data.source,
        "model": config.model.kind,
        "backend": "exact",
        **result.metrics,
    }
    head, sep, tail = eval_data.source.partition(" (")
    write_confusion_png(result, out, f"{config.model.kind} (exact) on {Path(head).name}{sep}{tail}")
    write_json_atomic(metrics, out / "metrics.json")
    return metrics
