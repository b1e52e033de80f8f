"""The run folder on disk: one guard before anything is written, and writes that never leave half a file.

Every command that writes results (``train``, ``reproduce``, ``evaluate``, ``diagnose``) first
calls :func:`check_out_dir` — before it builds a model, reads data or creates a folder — then owns
the folder for the whole run with :func:`claim_out_dir`: a lock file ``.qk-lstm.lock`` holding the
owner's pid, so a second command on the same folder is refused in one line while the owner lives
(a lock whose process is gone is taken over). Every file is written through :func:`atomic_write`:
to a temporary sibling, then renamed over the target, so a crash leaves either the old file or
the new one.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch

__all__ = [
    "LOCK_NAME",
    "atomic_write",
    "check_out_dir",
    "claim_out_dir",
    "check_out_file",
    "make_out_dir",
    "removed_if_left_empty",
    "save_atomic",
    "write_csv_atomic",
    "write_json_atomic",
    "write_text_atomic",
]

log = logging.getLogger(__name__)
LOCK_NAME = ".qk-lstm.lock"  #: in a run folder while a command owns it: JSON with the owner's pid, host, command, start


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
    out = _named(out_dir, command=command, flag=flag)
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
    path = _named(path, command=command, flag=flag)
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
        if ancestor.is_symlink() and not ancestor.exists():
            where = "" if ancestor == target else f" (under {ancestor})"
            raise ValueError(f"{command}: expected {flag} to be {noun}, got {str(target)!r}{where}, a symbolic link to a "
                             f"missing path or to itself ({os.readlink(ancestor)!r})")
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


def _named(path: str | os.PathLike, *, command: str, flag: str) -> Path:
    """``path`` as a Path, refusing an empty name (``Path("")`` would silently mean the current folder)."""
    if not str(path).strip():
        raise ValueError(f"{command}: expected {flag} to name a path, got {str(path)!r}")
    return Path(path)


def _lock_holder(lock: Path) -> dict[str, Any] | None:
    """The live owner recorded in ``lock``, or ``None`` when the lock is stale (its process is gone)."""
    try:
        holder = json.loads(lock.read_text(encoding="utf-8"))
        pid, host = int(holder["pid"]), str(holder["host"])
    except (OSError, ValueError, KeyError, TypeError):
        return {"pid": "?", "command": "a command writing it"} if lock.exists() else None  # being written
    if host != socket.gethostname():
        return holder  # another machine's process: cannot tell, so it is taken as alive
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return holder
    return holder


def _take_lock(out: Path, *, command: str, flag: str) -> Path:
    """Create ``out/LOCK_NAME`` for this process; refuse a live owner, take over a stale lock."""
    lock = out / LOCK_NAME
    record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "command": command,
                         "started": time.strftime("%Y-%m-%dT%H:%M:%S")})
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = _lock_holder(lock)
            if holder is not None:
                raise ValueError(
                    f"{command}: expected {flag} {str(out)!r} to be free, got a folder in use by process {holder['pid']} "
                    f"({holder.get('command', '?')}, since {holder.get('started', '?')}); wait for it or choose another "
                    f"folder (remove {lock} if that process is gone)"
                ) from None
            stale = lock.with_name(f"{LOCK_NAME}.stale-{os.getpid()}")
            with contextlib.suppress(FileNotFoundError):  # another process may take it over first
                os.replace(lock, stale)
                stale.unlink()
                log.warning("%s: took over %s from a process that is gone", command, lock)
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(record)
        return lock
    raise ValueError(f"{command}: expected to own {flag} {str(out)!r}, but other processes keep claiming it")


@contextlib.contextmanager
def claim_out_dir(
    out_dir: str | os.PathLike,
    *,
    command: str,
    outputs: Sequence[str],
    resume: bool = False,
    resume_from: str | None = None,
    flag: str = "--out",
    lock: bool = True,
) -> Iterator[Path]:
    """Own the run folder ``out_dir`` for the block: checked, created, locked, checked again.

    :func:`check_out_dir` first (nothing is created when it refuses), then the folder is created
    and the lock file ``LOCK_NAME`` (this process's pid) is taken: a folder owned by a live
    process is refused in one line, a stale lock taken over. The checks run again under the
    lock (another process may have written in between). On leaving, the lock is removed, and
    the folder too when this block created it and left it empty (a refused or failed run
    leaves nothing). ``lock=False`` (e.g. torchrun ranks other than 0) only checks.

    Raises:
        ValueError: one line naming ``command``, ``flag``, the folder and what is wrong.
    """
    out = check_out_dir(out_dir, command=command, outputs=outputs, resume=resume, resume_from=resume_from, flag=flag)
    if not lock:
        with removed_if_left_empty(out):
            yield out
        return
    created = [folder for folder in (out, *out.parents) if not folder.exists()]  # innermost first
    lock_path = None
    try:
        make_out_dir(out)
        lock_path = _take_lock(out, command=command, flag=flag)
        check_out_dir(out, command=command, outputs=outputs, resume=resume, resume_from=resume_from, flag=flag)
        yield out
    finally:
        if lock_path is not None:
            lock_path.unlink(missing_ok=True)
        for folder in created:
            if not folder.is_dir() or any(folder.iterdir()):
                break
            folder.rmdir()


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
    """``torch.save`` through :func:`atomic_write`.

    Raises:
        OSError: the file could not be written (e.g. a full disk; torch reports it as a ``RuntimeError``
            from its zip writer): one line naming ``path``; the previous file is untouched.
    """
    with atomic_write(path) as tmp:
        try:
            torch.save(obj, tmp)
        except RuntimeError as exc:
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise OSError(f"cannot write {path} (disk full or not writable? torch: {detail})") from exc


def write_text_atomic(text: str, path: str | os.PathLike) -> None:
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(obj: Any, path: str | os.PathLike) -> None:
    """Strict JSON: a NaN or infinite float is written as ``null`` (``json.dumps`` would write ``NaN``)."""
    write_text_atomic(json.dumps(_finite_or_null(obj), indent=2, allow_nan=False) + "\n", path)


def _finite_or_null(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {key: _finite_or_null(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_null(value) for value in obj]
    return obj


def write_csv_atomic(rows: Sequence[dict[str, Any]], path: str | os.PathLike) -> None:
    """One row per dict; the columns are every key, in first-seen order."""
    fields = list(dict.fromkeys(k for row in rows for k in row))
    with atomic_write(path) as tmp:
        with tmp.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
