"""The run folder on disk: one guard before anything is written, and writes that never leave half a file.

Every command that writes results (``train``, ``reproduce``, ``evaluate``) first calls
:func:`check_out_dir` — before it builds a model, reads data or creates a folder — and creates the
folder with :func:`make_out_dir` only when it is about to write. Every file is written through
:func:`atomic_write`: to a temporary sibling, then renamed over the target, so a crash leaves
either the old file or the new one.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch

__all__ = [
    "atomic_write",
    "check_out_dir",
    "make_out_dir",
    "save_atomic",
    "write_csv_atomic",
    "write_json_atomic",
    "write_text_atomic",
]


def check_out_dir(
    out_dir: str | os.PathLike,
    *,
    command: str,
    outputs: Sequence[str],
    resume: bool = False,
    resume_from: str | None = None,
    flag: str = "--out",
) -> Path:
    """Refuse an output folder that cannot take this command's ``outputs``; create nothing.

    Checks, in order: ``out_dir`` and every existing ancestor are folders; the nearest existing
    one is writable; without ``resume`` none of ``outputs`` exists in ``out_dir`` (nothing is ever
    overwritten); with ``resume`` the file ``resume_from`` exists in it.

    Returns:
        ``out_dir`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: one line naming ``command``, ``flag``, the folder and what is wrong.
    """
    out = Path(out_dir)
    for folder in (out, *out.parents):
        if folder.exists():
            if not folder.is_dir():
                what = "a file" if folder == out else f"under the file {folder}"
                raise ValueError(f"{command}: expected {flag} to be a folder, got {str(out)!r}, {what}")
            if not os.access(folder, os.W_OK | os.X_OK):
                raise ValueError(f"{command}: expected a writable {flag}, got {str(out)!r} ({folder} is not writable)")
            break
    if resume:
        if resume_from is not None and not (out / resume_from).is_file():
            raise ValueError(f"{command}: --resume expected {out / resume_from} from an earlier run, not found")
        return out
    existing = [name for name in outputs if (out / name).exists()]
    if existing:
        hint = "; pass --resume to continue it" if resume_from is not None else ""
        raise ValueError(
            f"{command}: expected a {flag} folder without {', '.join(outputs)}, got {str(out)!r} holding "
            f"{', '.join(existing)}{hint} or choose another folder (nothing was overwritten)"
        )
    return out


def make_out_dir(out_dir: str | os.PathLike) -> Path:
    """Create ``out_dir`` (and its parents) right before the first write; return it."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return out


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix); rename it over ``path`` when the block succeeds."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_atomic(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` through :func:`atomic_write`."""
    with atomic_write(path) as tmp:
        torch.save(obj, tmp)


def write_text_atomic(text: str, path: str | os.PathLike) -> None:
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(obj: Any, path: str | os.PathLike) -> None:
    write_text_atomic(json.dumps(obj, indent=2) + "\n", path)


def write_csv_atomic(rows: Sequence[dict[str, Any]], path: str | os.PathLike) -> None:
    """One row per dict; the columns are every key, in first-seen order."""
    fields = list(dict.fromkeys(k for row in rows for k in row))
    with atomic_write(path) as tmp:
        with tmp.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
