"""Where an output may go, the output folder's marker file, and staged output folders.

The decisions (may this path receive an output?) are functions without side effects; the
writers call them again just before they touch the disk. A folder is replaced as a whole only
when noisestat wrote it (it holds :data:`OUTPUT_MARKER`) or it is empty, and is built under a
temporary name first (:class:`staged_directory`); a killed run's leftovers are removed by the
next run (:func:`clean_stale`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path

from ..errors import OutputError
from ._ownership import written_by_noisestat
from ._atomic import (_UMASK, _check_parents, _is_within, _make_parent, _os_cause, _reason, _resolved,
                      _temp_prefix, json_text)

__all__ = ["OUTPUT_MARKER", "STALE_AFTER_S", "staged_directory", "check_output_dir", "check_output_file",
           "prepare_output_dir", "prepare_output_file", "clean_stale", "is_noisestat_output", "codec_input_files"]

# ---------------------------------------------------------------------------------------------
# Writing outputs safely.
#
# The decisions (may this path receive an output?) are functions without side effects; the
# writers below call them again just before they touch the disk. Every OSError on the way out
# becomes an OutputError naming the path, so the command line prints one line.

#: Name of the file noisestat writes into every output folder it creates. A folder is replaced
#: as a whole only when it holds this file (or is empty).
OUTPUT_MARKER = ".noisestat-output"

#: Leftovers of a killed run (``.NAME.<pid>-<random>.partial``, ``.NAME.old-<pid>-<random>``,
#: ``.NAME.<pid>-<random>.tmp``) are removed when their process is gone, or, when the name holds no
#: process id or the id has been reused, once they are this old.
STALE_AFTER_S = 6 * 3600



def _check_inputs(out: Path, shown, inputs, *, folder: bool) -> None:
    for item in inputs:
        if item is None:
            continue
        source = _resolved(item)
        if source == out:
            raise OutputError(f"{shown}: the output would overwrite the input {item}; choose another output")
        if folder and _is_within(source, out):
            raise OutputError(f"{shown}: the output folder would replace the folder holding the input {item}; "
                              f"choose a new folder, e.g. {Path(shown) / 'results'}")
        if _is_within(out, source):
            raise OutputError(f"{shown}: the output lies inside the input {item}; choose another output")


def codec_input_files(codecs) -> list[str]:
    """Files parsed codecs read: every text parameter that names an existing file (``file:path=``,
    ``stream=``, a learned codec's ``checkpoint=``). An output must not replace them either."""
    return [v for c in codecs for v in getattr(c, "params", {}).values() if isinstance(v, str) and os.path.isfile(v)]


def is_noisestat_output(path: str | os.PathLike) -> bool:
    """True when ``path`` is a folder holding noisestat's output marker (see :data:`OUTPUT_MARKER`)."""
    marker = Path(path) / OUTPUT_MARKER
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(data, dict) and "noisestat" in data


def check_output_dir(path: str | os.PathLike, *, inputs=()) -> Path:
    """Decide whether ``path`` may receive a noisestat output folder; touch nothing.

    Allowed: a path that does not exist, an empty folder, or a folder noisestat wrote (it holds
    :data:`OUTPUT_MARKER`). Refused: the current folder or one above it, a folder holding any of
    ``inputs`` (or one of them, or a path inside one), a file, and a folder of other files.

    Returns
    -------
    Path
        The output folder with symbolic links resolved (where it will be written).

    Raises
    ------
    OutputError
    """
    shown = os.fspath(path)
    if shown.strip() == "":
        raise OutputError("output folder: the name is empty; give a folder name, e.g. -o results")
    out = _resolved(path)
    try:
        here = Path.cwd().resolve()
    except OSError:  # the current folder was deleted: nothing to protect there
        here = None
    if (here is not None and _is_within(here, out)) or out.parent == out:
        raise OutputError(f"{shown}: is the current folder or one above it; noisestat replaces its output folder "
                          f"as a whole, so name a new folder, e.g. -o results")
    _check_parents(out, shown)
    _check_inputs(out, shown, inputs, folder=True)
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise OutputError(f"{shown}: exists and is a file, not a folder; remove it or choose another output")
        try:
            names = [entry.name for entry in os.scandir(out)]
        except OSError as exc:
            raise OutputError(f"{shown}: cannot read the existing folder ({_reason(exc)})") from exc
        if names and not is_noisestat_output(out):
            raise OutputError(f"{shown}: the folder exists and holds {len(names)} item(s) noisestat did not write "
                              f"(no {OUTPUT_MARKER}); choose a new or empty folder, or delete this one first")
        foreign = _foreign_files(out) if names else []
        if foreign is None:
            raise OutputError(f"{shown}: was written by an earlier noisestat that did not list its files, so noisestat "
                              f"cannot tell them from files of yours put there since; delete the folder yourself, "
                              f"or choose another")
        if foreign:
            more = f" and {len(foreign) - 1} more file(s)" if len(foreign) > 1 else ""
            raise OutputError(f"{shown}: holds {foreign[0]}{more}, which noisestat did not write there; noisestat "
                              f"replaces its output folder as a whole, so move {'it' if len(foreign) == 1 else 'them'} "
                              f"out first or choose another folder")
    return out


def _manifest(folder: Path) -> list[str]:
    """Every file under ``folder`` but the marker, as paths relative to it with ``/``, sorted."""
    out = []
    for root, _, files in os.walk(folder):
        for name in files:
            rel = Path(root, name).relative_to(folder).as_posix()
            if rel != OUTPUT_MARKER:
                out.append(rel)
    return sorted(out)


def _noisestat_leftover(name: str) -> bool:
    """A name noisestat gives its temporary files and folders (a staged folder, a replaced one, a probe)."""
    return name.startswith(".") and (".partial" in name or ".old-" in name or name.endswith(".tmp")
                                     or name.startswith(".noisestat-probe"))


def _listed(folder: Path):
    """The files ``folder``'s marker lists (a set), or None when it has no marker or lists none."""
    try:
        data = json.loads((folder / OUTPUT_MARKER).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    listed = data.get("files") if isinstance(data, dict) else None
    return set(map(str, listed)) if isinstance(listed, list) else None


def _foreign_files(folder: Path, prefix: str = ""):
    """The files in a noisestat output folder that noisestat did not write there (a user's file put
    there since), as paths from the folder; None when its marker lists no files (an earlier noisestat's
    folder, whose files cannot be told from a user's). A subfolder with a marker of its own (a dataset's
    field) is judged by its own list; noisestat's temporary leftovers are noisestat's."""
    known = _listed(folder)
    if known is None:
        return None
    out = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        rel = f"{prefix}{entry.name}"
        if entry.name == OUTPUT_MARKER or _noisestat_leftover(entry.name):
            continue
        if entry.is_dir(follow_symlinks=False):
            sub = Path(entry.path)
            if (sub / OUTPUT_MARKER).is_file():
                inner = _foreign_files(sub, f"{rel}/")
                if inner is None:
                    return None
                out += inner
                continue
            out += [f"{rel}/{f}" for f in _manifest(sub) if f"{entry.name}/{f}" not in known]
        elif entry.name not in known:
            out.append(rel)
    return out


def check_output_file(path: str | os.PathLike, *, inputs=()) -> Path:
    """Decide whether a single output file may be written at ``path``; touch nothing.

    Refused: an empty name, a folder at ``path``, a file where a parent folder should be, any of
    ``inputs``, and an existing file noisestat did not write (:func:`noisestat.io.written_by_noisestat`).
    An existing file noisestat wrote is replaced (atomically) by a complete one.
    """
    shown = os.fspath(path)
    if shown.strip() == "":
        raise OutputError("output file: the name is empty; give a file name")
    out = _resolved(path)
    if out.is_dir():
        raise OutputError(f"{shown}: is a folder; give a file name (e.g. {Path(shown) / 'out'}) or remove the folder")
    _check_parents(out, shown)
    _check_inputs(out, shown, inputs, folder=False)
    if (out.exists() or out.is_symlink()) and not written_by_noisestat(out):
        raise OutputError(f"{shown}: a file noisestat did not write is there; noisestat replaces only its own "
                          f"files: give another name, or move that file away first")
    return out



def _probe_writable(folder: Path, shown) -> None:
    """Create and remove a temporary folder in ``folder``, or in its nearest existing ancestor when
    it does not exist yet: a refused write is found before the work, and nothing is left."""
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    try:
        os.rmdir(tempfile.mkdtemp(dir=folder, prefix=f".noisestat-probe.{os.getpid()}-"))
    except OSError as exc:
        raise OutputError(f"{shown}: cannot write in {folder} ({_reason(exc)})") from exc


def prepare_output_dir(path: str | os.PathLike, *, inputs=(), create_parents: bool = False) -> Path:
    """:func:`check_output_dir`, then remove a killed run's leftovers beside it and check that new
    files can be made there. Call it before the work; the parents are created only with
    ``create_parents`` (when writing), so a run that fails leaves no empty folders."""
    out = check_output_dir(path, inputs=inputs)
    if clean_stale(out):  # may have put back a previous folder: judge that one
        out = check_output_dir(path, inputs=inputs)
    if create_parents:
        _make_parent(out.parent, os.fspath(path))
    _probe_writable(out.parent, os.fspath(path))
    return out


def prepare_output_file(path: str | os.PathLike, *, inputs=(), create_parents: bool = False) -> Path:
    """:func:`check_output_file`, then remove a killed run's temporary files of the same name and
    check that new files can be made there. The parents are created when the file is written, or
    now with ``create_parents``."""
    out = check_output_file(path, inputs=inputs)
    clean_stale(out)
    if create_parents:
        _make_parent(out.parent, os.fspath(path))
    _probe_writable(out.parent, os.fspath(path))
    return out


def _pid_alive(pid: int) -> bool:
    # psutil.pid_exists does this too; noisestat does not depend on psutil for one system call.
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)  # signal 0: existence check only
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OverflowError:
        return False
    return True


def _leftover_name(name: str):
    """A pattern matching the names of a run's leftovers for output ``name``: group ``pid`` the
    process id (absent in names written by noisestat before it recorded one), group ``kind``."""
    n = re.escape(name)
    return re.compile(rf"^\.{n}\.(?:(?P<pid>\d+)-\w+\.(?P<kind>partial|tmp)|(?P<old>old)-(?P<oldpid>\d+)(?:-[0-9a-f]+)?"
                      rf"|\w{{8}}\.(?P<legacy>partial|tmp))$")


def _ours_or_empty(folder: Path) -> bool:
    """A leftover folder noisestat may remove: it holds noisestat's marker (every staged folder gets
    it first thing) or nothing (a run killed before writing the marker)."""
    if is_noisestat_output(folder):
        return True
    try:
        with os.scandir(folder) as entries:
            return next(entries, None) is None
    except OSError:
        return False


def clean_stale(path: str | os.PathLike) -> list[Path]:
    """Remove what a killed run left beside ``path``: ``.NAME.*.partial`` folders, ``.NAME.old-*``
    folders and ``.NAME.*.tmp`` files whose process is gone (or that are older than
    :data:`STALE_AFTER_S`); a folder only when it holds noisestat's marker or nothing. When ``path`` itself is missing and a run died while swapping folders,
    the previous folder (``.NAME.old-*``) is put back instead of removed. Returns what was removed.
    """
    path = Path(path)
    parent, pattern = path.parent, _leftover_name(path.name)
    try:
        entries = [e for e in os.scandir(parent) if pattern.match(e.name)]
    except OSError:
        return []
    now = time.time()
    stale = []
    for entry in entries:
        match = pattern.match(entry.name)
        pid = match.group("pid") or match.group("oldpid")
        kind = match.group("kind") or match.group("legacy") or "old"
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        if is_dir != (kind != "tmp"):  # folders for .partial and .old-, files for .tmp: nothing else
            continue
        if is_dir and not _ours_or_empty(Path(entry.path)):  # a folder of that name noisestat did not write
            continue
        if (pid is not None and not _pid_alive(int(pid))) or age > STALE_AFTER_S:
            stale.append(Path(entry.path))
    olds = sorted((p for p in stale if p.name.startswith(f".{path.name}.old-") and p.is_dir()),
                  key=lambda p: p.stat().st_mtime)
    if olds and not (path.exists() or path.is_symlink()):
        with contextlib.suppress(OSError):
            os.replace(olds[-1], path)
            stale.remove(olds[-1])
    for item in stale:
        if item.is_dir() and not item.is_symlink():
            shutil.rmtree(item, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                item.unlink()
    return stale


@contextlib.contextmanager
def _signals_deferred():
    """Hold SIGINT and SIGTERM back for the few system calls that swap two folders, so an
    interrupt cannot fall between them (the signal is delivered right after)."""
    signals = {signal.SIGINT, signal.SIGTERM}
    can = hasattr(signal, "pthread_sigmask") and threading.current_thread() is threading.main_thread()
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, signals) if can else None
    try:
        yield
    finally:
        if can:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class staged_directory:
    """Context manager: build an output folder under a temporary name, move it into place on success.

    The folder receives :data:`OUTPUT_MARKER` (JSON: the noisestat version and ``command``). On
    entry the rules of :func:`check_output_dir` apply: an existing folder is replaced only when
    noisestat wrote it or it is empty, and never when it holds one of ``inputs``. On an exception
    (an interrupt included) the temporary folder is removed and an existing folder of the same
    name is left exactly as it was; an OSError is raised as an OutputError naming the folder.
    """

    def __init__(self, path: str | os.PathLike, *, command: str | None = None, inputs=()):
        self.path = Path(path)
        self.command = command
        self.inputs = tuple(inputs)

    def __enter__(self) -> Path:
        shown = os.fspath(self.path)
        from .. import __version__

        self.final = prepare_output_dir(self.path, inputs=self.inputs, create_parents=True)
        marker = {"noisestat": __version__, "command": self.command,
                  "written_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        with _signals_deferred():  # no interrupt between creating the folder and owning its removal
            try:
                self.tmp = Path(tempfile.mkdtemp(dir=self.final.parent, prefix=_temp_prefix(self.final),
                                                 suffix=".partial"))
            except OSError as exc:
                raise OutputError(f"{shown}: cannot write in {self.final.parent} ({_reason(exc)})") from exc
            try:
                (self.tmp / OUTPUT_MARKER).write_text(json_text(marker), encoding="utf-8")
            except OSError as exc:
                shutil.rmtree(self.tmp, ignore_errors=True)
                raise OutputError(f"{shown}: could not write the output folder ({_reason(exc)})") from exc
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> bool:
        shown = os.fspath(self.path)
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            cause = _os_cause(exc)
            if cause is not None:
                raise OutputError(f"{shown}: could not write the output folder ({_reason(cause)}); "
                                  f"nothing was changed there") from exc
            return False
        try:
            # the marker lists every file written, so that a file put in the folder later is known as the
            # user's and a later run refuses to replace the folder (_foreign_files)
            marker = self.tmp / OUTPUT_MARKER
            record = json.loads(marker.read_text(encoding="utf-8"))
            record["files"] = _manifest(self.tmp)
            marker.write_text(json_text(record), encoding="utf-8")
            # The rules may have changed while the work ran (another program wrote there).
            check_output_dir(self.path, inputs=self.inputs)
            os.chmod(self.tmp, 0o777 & ~_UMASK)
            with _signals_deferred():
                old = None
                if self.final.exists() or self.final.is_symlink():
                    old = self.final.with_name(f".{self.final.name}.old-{os.getpid()}-{secrets.token_hex(4)}")
                    os.replace(self.final, old)
                try:
                    os.replace(self.tmp, self.final)
                except BaseException:
                    if old is not None:
                        os.replace(old, self.final)
                    raise
        except BaseException as exc:
            shutil.rmtree(self.tmp, ignore_errors=True)
            if isinstance(exc, OSError):
                raise OutputError(f"{shown}: could not move the finished output into place ({_reason(exc)}); "
                                  f"nothing was changed there") from exc
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)  # what remains (no permission) goes with clean_stale
        return False
