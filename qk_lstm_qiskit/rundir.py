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
import tempfile
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch

__all__ = [
    "atomic_write",
    "check_out_dir",
    "check_out_file",
    "make_out_dir",
    "removed_if_left_empty",
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
    """Refuse an output folder that cannot take this command's ``outputs``; leave nothing behind.

    Checks, in order: ``out_dir`` and every existing ancestor are folders; the nearest existing
    one is writable (tried with a temporary folder, removed at once); without ``resume`` none of ``outputs`` exists in ``out_dir`` (nothing is ever
    overwritten); with ``resume`` the file ``resume_from`` exists in it.

    Returns:
        ``out_dir`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: one line naming ``command``, ``flag``, the folder and what is wrong.
    """
    out = Path(out_dir)
    _check_writable_folder(out, command=command, flag=flag, target=out)
    if resume:
        if resume_from is not None and not (out / resume_from).is_file():
            raise ValueError(f"{command}: --resume expected {out / resume_from} from an earlier run, not found")
        return out
    existing = [name for name in outputs if (out / name).exists()]
    if existing:
        hint = "pass --resume to continue it or choose" if resume_from is not None else "choose"
        raise ValueError(
            f"{command}: expected a {flag} folder without {', '.join(outputs)}, got {str(out)!r} holding "
            f"{', '.join(existing)}; {hint} another folder (nothing was overwritten)"
        )
    return out


def check_out_file(path: str | os.PathLike, *, command: str, flag: str) -> Path:
    """Refuse an output file ``path`` that exists or whose folder cannot be made or written; create nothing.

    Raises:
        ValueError: one line naming ``command``, ``flag``, the path and what is wrong.
    """
    path = Path(path)
    if path.exists() or path.is_symlink():
        what = "a folder" if path.is_dir() else "an existing file"
        raise ValueError(f"{command}: expected {flag} to be a new file, got {str(path)!r}, {what} (nothing was overwritten)")
    _check_writable_folder(path.parent, command=command, flag=flag, target=path)
    return path


def _check_writable_folder(folder: Path, *, command: str, flag: str, target: Path) -> None:
    """``folder`` and its existing ancestors are folders, and the nearest existing one takes new entries.

    ``target`` is what ``flag`` named: ``folder`` itself (an output folder) or a file in it.
    """
    noun = "a folder" if target == folder else "a file in a folder"
    for ancestor in (folder, *folder.parents):
        if not ancestor.exists():
            continue
        if not ancestor.is_dir():
            what = "a file" if ancestor == target else f"under the file {ancestor}"
            raise ValueError(f"{command}: expected {flag} to be {noun}, got {str(target)!r}, {what}")
        try:  # os.access is not enough (root, read-only mounts, /proc): try, and leave nothing behind
            tempfile.TemporaryDirectory(dir=ancestor, prefix=".qk-lstm-probe-").cleanup()
        except OSError as exc:
            raise ValueError(
                f"{command}: expected a writable {flag}, got {str(target)!r} ({ancestor} is not writable: {exc.strerror})"
            ) from exc
        return


@contextlib.contextmanager
def removed_if_left_empty(out_dir: str | os.PathLike | None) -> Iterator[None]:
    """On an error inside the block, remove ``out_dir`` if the block created it and left it empty
    (a run refused after its checks, e.g. out of memory at the first step, leaves no empty folder)."""
    out = None if out_dir is None else Path(out_dir)
    existed = out is None or out.exists()
    try:
        yield
    except BaseException:
        if not existed and out is not None and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise


def make_out_dir(out_dir: str | os.PathLike) -> Path:
    """Create ``out_dir`` (and its parents) right before the first write; return it.

    Raises:
        ValueError: the folder cannot be created (one line naming it).
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot create the folder {str(out)!r}: {exc.strerror}") from exc
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
