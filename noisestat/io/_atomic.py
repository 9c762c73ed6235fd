"""The one atomic writer: every file noisestat writes goes through :func:`atomic_file`.

A file is written to a temporary name beside its final one and renamed into place only when
complete, so nothing half-written ever carries the final name. Every OSError on the way out
becomes an :class:`~noisestat.errors.OutputError` naming the path and, where known, what to do.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..errors import OutputError

__all__ = ["atomic_file", "write_text_atomic", "write_json_atomic", "json_text", "scratch_directory"]


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()

_HINTS = {errno.ENOSPC: "the disk is full: free some space and run again",
          errno.EDQUOT: "the disk quota is exhausted: free some space and run again",
          errno.EACCES: "no permission to write there: choose another place or fix the permissions",
          errno.EPERM: "no permission to write there: choose another place or fix the permissions",
          errno.EROFS: "the file system is read-only: choose another place",
          errno.ENOTDIR: "part of the path is a file, not a folder",
          errno.EISDIR: "a folder is in the way of the file"}


def _reason(exc: BaseException) -> str:
    """The cause of an OSError in words, with what to do when noisestat knows it."""
    if isinstance(exc, OSError):
        text = exc.strerror or str(exc) or type(exc).__name__
        hint = _HINTS.get(exc.errno)
        return f"{text}; {hint}" if hint else text
    return str(exc) or type(exc).__name__


def _os_cause(exc: BaseException | None) -> OSError | None:
    """The OSError at the root of ``exc`` (itself, or what an OutputError was raised from)."""
    while exc is not None:
        if isinstance(exc, OSError):
            return exc
        exc = exc.__cause__ if isinstance(exc, OutputError) else None
    return None


def _is_within(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def _resolved(path: str | os.PathLike) -> Path:
    # realpath, not Path.resolve(strict=True): the output usually does not exist yet.
    return Path(os.path.realpath(os.path.abspath(os.fspath(path))))


def _check_parents(path: Path, shown) -> None:
    """Raise OutputError when a file (not a folder) sits where a parent folder of ``path`` should be."""
    for parent in reversed(path.parents):
        if parent.exists() and not parent.is_dir():
            raise OutputError(f"{shown}: {parent} is a file, not a folder; remove it or choose another output")
def _make_parent(folder: Path, shown) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{shown}: cannot create the folder {folder} ({_reason(exc)})") from exc

def _temp_prefix(path: Path) -> str:
    return f".{path.name}.{os.getpid()}-"


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "wb"):
    """Open a temporary file beside ``path`` for writing; rename it into place when the block ends
    without an exception, remove it otherwise. Nothing half-written ever carries the final name.

    Missing parent folders are created. Any OSError (no permission, a full disk, a folder in the
    way) is raised as an OutputError naming ``path``, and a previous file at ``path`` is left as
    it was.
    """
    path = Path(path)
    shown = os.fspath(path)
    if path.is_dir():
        raise OutputError(f"{shown}: is a folder; give a file name or remove the folder")
    _check_parents(_resolved(path), shown)
    _make_parent(path.parent, shown)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path), suffix=".tmp")
    except OSError as exc:
        raise OutputError(f"{shown}: cannot write in {path.parent} ({_reason(exc)})") from exc
    try:
        kwargs = {} if "b" in mode else {"encoding": "utf-8", "newline": ""}
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except OSError as exc:
        _remove_quietly(tmp)
        raise OutputError(f"{shown}: could not write the file ({_reason(exc)}); any previous file there "
                          f"is unchanged") from exc
    except BaseException:
        _remove_quietly(tmp)
        raise


def _remove_quietly(path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it into place."""
    with atomic_file(path, "w") as handle:
        handle.write(text)


def json_text(obj) -> str:
    """``obj`` as the indented JSON noisestat writes (NaN written as null)."""
    return json.dumps(_json_safe(obj), indent=2) + "\n"


def write_json_atomic(path: str | os.PathLike, obj) -> None:
    """Write ``obj`` as indented JSON, atomically (NaN written as null)."""
    write_text_atomic(path, json_text(obj))


def _json_safe(obj):
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None if np.isnan(obj) else ("inf" if obj > 0 else "-inf")
    return obj


@contextlib.contextmanager
def scratch_directory(prefix: str = "noisestat-"):
    """A private folder (mode 0700) in the system's temporary place for files nothing else reads,
    removed with everything in it when the block ends, however it ends."""
    try:
        folder = tempfile.mkdtemp(prefix=prefix)
    except OSError as exc:
        raise OutputError(f"{tempfile.gettempdir()}: cannot create a temporary folder: {_reason(exc)}") from None
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
