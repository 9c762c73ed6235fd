"""Reading JSON inputs (camera profiles, calibration descriptors) and the files they name.

A JSON input must hold an object, nest no deeper than :data:`MAX_JSON_DEPTH` and give each key
once; a path written in it must stay inside its own folder (:func:`file_inside`).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ..errors import InputError
from ._atomic import _reason

__all__ = ["read_json_object", "file_inside", "MAX_JSON_DEPTH"]


#: The deepest nesting of arrays and objects a JSON input may have (a camera profile needs 3).
MAX_JSON_DEPTH = 32


class _DuplicateKey(Exception):
    pass


def _unique_keys(pairs):
    """An object_pairs_hook: a key given twice with different values is refused (JSON parsers
    disagree on which one wins); the same value twice is kept once."""
    out = {}
    for key, value in pairs:
        if key in out and out[key] != value:
            raise _DuplicateKey(key, out[key], value)
        out[key] = value
    return out


def _json_depth(text: str) -> int:
    """The deepest nesting of ``[`` and ``{`` in JSON ``text`` (brackets inside strings not counted)."""
    depth = deepest = 0
    for token in re.finditer(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', text):
        t = token.group()
        if t in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif t in "]}":
            depth -= 1
    return deepest


def read_json_object(path: str | os.PathLike, *, what: str, error=InputError) -> dict:
    """Read a JSON file that must hold an object; ``error`` (an exception class) names the file and
    what it should have been when it is missing, not JSON, nested deeper than
    :data:`MAX_JSON_DEPTH`, not an object, or gives one key twice with different values."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: no such {what} file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not a JSON {what} ({exc})") from None
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} ({_reason(exc)})") from None
    depth = _json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise error(f"{path}: not a {what}: arrays and objects nested {depth} deep (at most {MAX_JSON_DEPTH})")
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        key, first, second = exc.args
        raise error(f"{path}: key {key!r} is given twice with different values ({_short(first)} and "
                    f"{_short(second)}); keep one") from None
    except (json.JSONDecodeError, RecursionError) as exc:
        raise error(f"{path}: not a JSON {what} ({exc})") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise error(f"{path}: not a JSON {what} ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise error(f"{path}: a {what} must be a JSON object; got {type(data).__name__}")
    return data


def file_inside(folder: str | os.PathLike, relative: str, *, where: str, what: str, owner: str,
                error=InputError) -> Path:
    """The file a path written in an input file names, which must lie inside ``folder`` (the folder of
    the file that names it); symbolic links are followed.

    ``relative`` uses ``/`` or Windows ``\\`` separators. Absolute paths, paths that climb out of
    the folder (``..``) and symbolic links that lead out of it are refused with ``error`` (``where``
    and ``what`` name the place and the kind of path in its message): an input file must not make
    noisestat read files elsewhere. ``owner`` names the file whose folder it is ("the profile").
    """
    from pathlib import PurePosixPath, PureWindowsPath

    folder = Path(folder)
    pure = PureWindowsPath(relative) if "\\" in relative else PurePosixPath(relative)
    if pure.is_absolute() or pure.anchor:
        raise error(f"{where}: {what} {relative!r} is absolute; it must be relative to {owner}'s folder {folder}")
    root = folder.resolve()
    resolved = folder.joinpath(*pure.parts).resolve()
    if not resolved.is_relative_to(root):
        raise error(f"{where}: {what} {relative!r} resolves to {resolved}, outside {owner}'s folder {root}")
    return resolved


def _short(value, limit: int = 40) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
