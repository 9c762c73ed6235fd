"""Reading images and label images, hashing inputs, and writing outputs atomically.

Every reader turns what can go wrong with a file (missing, not an image, wrong shape or kind)
into an :class:`~noisestat.errors.InputError` whose message names the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import tifffile

from .errors import InputError

__all__ = ["read_image", "read_labels", "file_sha256", "array_sha256", "write_json_atomic",
           "write_text_atomic", "atomic_file", "staged_directory"]


def _read_any(path: Path) -> np.ndarray:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected an image file")
    suffix = path.suffix.lower()
    try:
        if suffix in (".tif", ".tiff", ".btf"):
            return tifffile.imread(path)
        # PNG and other formats through imagecodecs, which tifffile already depends on.
        import imagecodecs

        return np.asarray(imagecodecs.imread(path))
    except InputError:
        raise
    except Exception as exc:  # every reader failure means "not an image we can read"
        kind = type(exc).__name__
        raise InputError(f"{path}: not a readable image ({kind}: {str(exc).splitlines()[0] if str(exc) else kind})") from None


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read a 2D greyscale raw image (unsigned or signed integers).

    Parameters
    ----------
    path : path-like
        A TIFF (read with tifffile) or any format imagecodecs decodes (PNG, ...).

    Returns
    -------
    image : ndarray, shape (rows, cols)
        The pixel values, in the file's own integer dtype.

    Raises
    ------
    InputError
        If the file is missing, not an image, not 2D, not integer, or all zero.
    """
    path = Path(path)
    image = np.squeeze(_read_any(path))
    check_raw_image(image, name=str(path))
    return image


def check_raw_image(image: np.ndarray, *, name: str = "image") -> None:
    """Raise InputError unless ``image`` is a non-empty 2D integer image that is not all zero."""
    if image.ndim != 2:
        raise InputError(f"{name}: expected a 2D greyscale image; got shape {image.shape}")
    if not np.issubdtype(image.dtype, np.integer):
        raise InputError(f"{name}: expected integer pixel values (raw camera counts); got dtype {image.dtype}")
    if min(image.shape) < 8:
        raise InputError(f"{name}: image of shape {image.shape} is too small (at least 8 x 8)")
    if not image.any():
        raise InputError(f"{name}: every pixel is zero; that is not a camera image")


def read_labels(path: str | os.PathLike, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Read a sparse label image: 0 unlabelled, 1 background, 2 object.

    Raises
    ------
    InputError
        If the file is unreadable, its shape differs from ``shape``, or it holds values other
        than 0, 1, 2, or it labels no pixel of one of the two classes.
    """
    path = Path(path)
    labels = np.squeeze(_read_any(path))
    check_labels(labels, shape=shape, name=str(path))
    return labels.astype(np.uint8)


def check_labels(labels: np.ndarray, *, shape: tuple[int, int] | None = None, name: str = "labels") -> None:
    """Raise InputError unless ``labels`` is a valid sparse two-class label image."""
    if labels.ndim != 2:
        raise InputError(f"{name}: expected a 2D label image; got shape {labels.shape}")
    if shape is not None and labels.shape != tuple(shape):
        raise InputError(f"{name}: labels must have the image's shape {tuple(shape)}; got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer) and labels.dtype != bool:
        raise InputError(f"{name}: labels must be integers (0 unlabelled, 1 background, 2 object); got dtype {labels.dtype}")
    values = np.unique(labels)
    extra = [int(v) for v in values if v not in (0, 1, 2)]
    if extra:
        raise InputError(f"{name}: labels must be 0 (unlabelled), 1 (background) or 2 (object); found {extra[:5]}")
    for cls, what in ((1, "background"), (2, "object")):
        if cls not in values:
            raise InputError(f"{name}: no pixel is labelled {cls} ({what}); the classifier needs both classes")


def read_json_object(path: str | os.PathLike, *, what: str, error=InputError) -> dict:
    """Read a JSON file that must hold an object; ``error`` (an exception class) names the file and
    what it should have been when it is missing, not JSON or not an object."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: no such {what} file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(f"{path}: not a JSON {what} ({exc})") from None
    if not isinstance(data, dict):
        raise error(f"{path}: a {what} must be a JSON object; got {type(data).__name__}")
    return data


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def array_sha256(array: np.ndarray) -> str:
    """SHA-256 of an array's shape, dtype and bytes, in hex."""
    digest = hashlib.sha256(f"{array.shape}{array.dtype.str}".encode())
    digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "wb"):
    """Open a temporary file beside ``path`` for writing; rename it into place when the block ends
    without an exception, remove it otherwise. Nothing half-written ever carries the final name."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        kwargs = {} if "b" in mode else {"encoding": "utf-8", "newline": ""}
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it into place."""
    with atomic_file(path, "w") as handle:
        handle.write(text)


def write_json_atomic(path: str | os.PathLike, obj) -> None:
    """Write ``obj`` as indented JSON, atomically (NaN written as null)."""
    write_text_atomic(path, json.dumps(_json_safe(obj), indent=2) + "\n")


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


class staged_directory:
    """Context manager: build an output folder under a temporary name, move it into place on success.

    On an exception the temporary folder is removed and an existing folder of the same name is left
    exactly as it was. On success an existing folder is replaced as a whole.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __enter__(self) -> Path:
        parent = self.path.parent
        parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and not self.path.is_dir():
            raise InputError(f"{self.path}: exists and is not a folder")
        self.tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{self.path.name}.", suffix=".partial"))
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return False
        old = None
        if self.path.exists():
            old = self.path.with_name(f".{self.path.name}.old-{os.getpid()}")
            os.replace(self.path, old)
        os.replace(self.tmp, self.path)
        os.chmod(self.path, 0o777 & ~_UMASK)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return False
