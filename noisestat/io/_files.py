"""Reading images and label images, hashing inputs, and writing outputs atomically.

Every reader turns what can go wrong with a file (missing, not an image, wrong shape or kind)
into an :class:`~noisestat.errors.InputError` whose message names the file.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import tifffile

from ..errors import InputError, OutputError

__all__ = ["read_image", "read_image_info", "ImageInfo", "PixelSize", "read_labels", "file_sha256", "array_sha256", "write_json_atomic",
           "write_text_atomic", "json_text", "atomic_file", "staged_directory", "OUTPUT_MARKER",
           "check_output_dir", "check_output_file", "prepare_output_dir", "prepare_output_file",
           "clean_stale", "is_noisestat_output", "codec_input_files"]


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


@dataclass(frozen=True)
class PixelSize:
    """The physical size of one pixel: ``x`` (along columns) and ``y`` (along rows) in ``unit``."""

    x: float
    y: float
    unit: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ImageInfo:
    """What :func:`read_image_info` learnt about a file besides its pixels.

    ``axes`` and ``shape`` describe the file as stored (tifffile's series axes: ``Y``, ``X``,
    ``C`` channel, ``S`` sample such as RGB, ``Z``, ``T``, ...); ``channel`` and ``plane`` the
    selection read (None when the file has a single 2D plane and none was given); ``pixel_size``
    a :class:`PixelSize` or None when the file does not say.
    """

    path: str
    axes: str
    shape: tuple[int, ...]
    channel: int | None
    plane: int | None
    pixel_size: PixelSize | None


#: Micrometres per unit, for the units OME-XML and ImageJ write; others are kept as given.
_MICROMETRES = {"µm": 1.0, "nm": 1e-3, "mm": 1e3, "cm": 1e4, "m": 1e6, "pm": 1e-6, "Å": 1e-4}
_UNIT_NAMES = {"um": "µm", "micron": "µm", "microns": "µm", "\\u00b5m": "µm", "μm": "µm",  # Greek mu
               "nanometer": "nm", "millimeter": "mm", "centimeter": "cm", "meter": "m"}


def _unit_name(unit) -> str | None:
    text = str(unit).strip()
    return _UNIT_NAMES.get(text.lower(), text) if text and text.lower() not in ("pixel", "pixels", "none") else None


def _ome_pixel_size(xml_text: str) -> PixelSize | None:
    """PhysicalSizeX/Y and their units from the first Pixels element of OME-XML."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError:
        return None
    pixels = next((e for e in root.iter() if e.tag.rsplit("}", 1)[-1] == "Pixels"), None)
    if pixels is None or "PhysicalSizeX" not in pixels.attrib:
        return None
    x = float(pixels.get("PhysicalSizeX"))
    y = float(pixels.get("PhysicalSizeY", x))
    ux = _unit_name(pixels.get("PhysicalSizeXUnit", "µm"))  # OME's default unit is the micrometre
    uy = _unit_name(pixels.get("PhysicalSizeYUnit", "µm"))
    if ux is None or uy is None:
        return None
    if ux != uy and ux in _MICROMETRES and uy in _MICROMETRES:
        y, uy = y * _MICROMETRES[uy] / _MICROMETRES[ux], ux
    return PixelSize(x, y, ux) if ux == uy and x > 0 and y > 0 else None


def _tiff_pixel_size(tif: tifffile.TiffFile) -> PixelSize | None:
    """OME PhysicalSize, else XResolution/YResolution with ImageJ's ``unit`` or ResolutionUnit."""
    if tif.is_ome and tif.ome_metadata:
        size = _ome_pixel_size(tif.ome_metadata)
        if size is not None:
            return size
    tags = tif.pages.first.tags
    if "XResolution" not in tags:
        return None
    num, den = tags["XResolution"].value
    ynum, yden = tags["YResolution"].value if "YResolution" in tags else (num, den)
    if not (num and den and ynum and yden):
        return None
    x, y = den / num, yden / ynum  # resolution is pixels per unit
    unit = _unit_name((tif.imagej_metadata or {}).get("unit", "")) if tif.is_imagej else None
    if unit is None:
        res_unit = int(tags["ResolutionUnit"].value) if "ResolutionUnit" in tags else 2  # TIFF's default: inch
        per_unit_um = {2: 25400.0, 3: 10000.0}.get(res_unit)
        if per_unit_um is None:  # 1 = no absolute unit
            return None
        x, y, unit = x * per_unit_um, y * per_unit_um, "µm"
    return PixelSize(float(x), float(y), unit)


def _read_stored(path: Path) -> tuple[np.ndarray, str, PixelSize | None]:
    """The file's pixels, its axes (one letter per dimension) and its pixel size."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected an image file")
    try:
        if path.suffix.lower() in (".tif", ".tiff", ".btf"):
            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                data, axes = series.asarray(), series.axes
                return data, axes, _tiff_pixel_size(tif)
        import imagecodecs

        data = np.asarray(imagecodecs.imread(path))
        return data, {2: "YX", 3: "YXS"}.get(data.ndim, "Q" * data.ndim), None
    except InputError:
        raise
    except Exception as exc:  # every reader failure means "not an image we can read"
        kind = type(exc).__name__
        raise InputError(f"{path}: not a readable image ({kind}: {str(exc).splitlines()[0] if str(exc) else kind})") from None


def _pick(name, value, count, what) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < count:
        raise InputError(f"{name}: --{what} {value} is out of range; this file has {count} "
                         f"{what}(s): 0 to {count - 1}")
    return int(value)


def _select_plane(data: np.ndarray, axes: str, name: str, channel, plane) -> np.ndarray:
    """One 2D (Y, X) plane. ``channel`` indexes the C and S axes, ``plane`` every other axis
    (Z, T, ...), each flattened in file order; axes of length 1 are ignored."""
    shape = data.shape
    if len(axes) != data.ndim or "Y" not in axes or "X" not in axes:
        axes = "Q" * (data.ndim - 2) + "YX"  # unknown layout: the last two axes are the image
    kept = [i for i, n in enumerate(shape) if n > 1 or axes[i] in "YX"]
    chan = [i for i in kept if axes[i] in "CS"]
    rest = [i for i in kept if axes[i] not in "CSYX"]
    yx = [axes.index("Y"), axes.index("X")]
    n_chan = int(np.prod([shape[i] for i in chan])) if chan else 1
    n_plane = int(np.prod([shape[i] for i in rest])) if rest else 1
    if (n_chan > 1 and channel is None) or (n_plane > 1 and plane is None):
        ask = [f"--channel N (0 to {n_chan - 1})" if n_chan > 1 else "",
               f"--plane N (0 to {n_plane - 1})" if n_plane > 1 else ""]
        raise InputError(f"{name}: holds {n_chan * n_plane} 2D planes (axes {axes}, shape {shape}); "
                         f"choose one with {' and '.join(a for a in ask if a)}")
    c = _pick(name, channel, n_chan, "channel")
    p = _pick(name, plane, n_plane, "plane")
    order = rest + chan + yx
    # Length-1 axes go last, where the reshape drops them.
    ordered = np.transpose(data, order + [i for i in range(data.ndim) if i not in order])
    return ordered.reshape(n_plane, n_chan, shape[yx[0]], shape[yx[1]])[p, c]


def read_image_info(path: str | os.PathLike, *, channel: int | None = None,
                    plane: int | None = None) -> tuple[np.ndarray, ImageInfo]:
    """Read one 2D greyscale raw plane of an image file and what the file says about it.

    Parameters
    ----------
    path : path-like
        A TIFF (tifffile: plain, ImageJ hyperstack, OME-TIFF) or any format imagecodecs decodes
        (PNG, ...).
    channel : int, optional
        Index along the channel axes (C, and S such as RGB samples, flattened in file order).
        Needed when the file has more than one channel.
    plane : int, optional
        Index along every other non-image axis (Z, T, ... flattened in file order, so for
        ``TZCYX`` plane = t * Z + z). Needed when the file has more than one such plane.

    Returns
    -------
    image : ndarray, shape (rows, cols)
        The plane, in the file's own integer dtype.
    info : ImageInfo
        The file's axes and shape, the selection, and its pixel size (OME ``PhysicalSizeX/Y``,
        else the TIFF resolution tags with ImageJ's unit or ResolutionUnit; None otherwise).

    Raises
    ------
    InputError
        If the file is missing or not an image, holds several planes and none was chosen, an
        index is out of range, or the plane is not a usable integer image.
    """
    path = Path(path)
    data, axes, pixel_size = _read_stored(path)
    image = _select_plane(data, axes, str(path), channel, plane)
    check_raw_image(image, name=str(path))
    return image, ImageInfo(str(path), axes, tuple(data.shape), channel, plane, pixel_size)


def read_image(path: str | os.PathLike, *, channel: int | None = None, plane: int | None = None) -> np.ndarray:
    """Read a 2D greyscale raw image (unsigned or signed integers).

    Parameters
    ----------
    path : path-like
        A TIFF (read with tifffile) or any format imagecodecs decodes (PNG, ...).
    channel, plane : int, optional
        Which 2D plane of a multi-channel file or stack to read (see :func:`read_image_info`).

    Returns
    -------
    image : ndarray, shape (rows, cols)
        The pixel values, in the file's own integer dtype.

    Raises
    ------
    InputError
        If the file is missing, not an image, holds several planes and none was chosen, not
        integer, or all zero.
    """
    return read_image_info(path, channel=channel, plane=plane)[0]


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
    return out


def check_output_file(path: str | os.PathLike, *, inputs=()) -> Path:
    """Decide whether a single output file may be written at ``path``; touch nothing.

    Refused: an empty name, a folder at ``path``, a file where a parent folder should be, and any
    of ``inputs``. An existing file is replaced (atomically) by a complete one.
    """
    shown = os.fspath(path)
    if shown.strip() == "":
        raise OutputError("output file: the name is empty; give a file name")
    out = _resolved(path)
    if out.is_dir():
        raise OutputError(f"{shown}: is a folder; give a file name (e.g. {Path(shown) / 'out'}) or remove the folder")
    _check_parents(out, shown)
    _check_inputs(out, shown, inputs, folder=False)
    return out


def _make_parent(folder: Path, shown) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{shown}: cannot create the folder {folder} ({_reason(exc)})") from exc


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


def clean_stale(path: str | os.PathLike) -> list[Path]:
    """Remove what a killed run left beside ``path``: ``.NAME.*.partial`` folders, ``.NAME.old-*``
    folders and ``.NAME.*.tmp`` files whose process is gone (or that are older than
    :data:`STALE_AFTER_S`). When ``path`` itself is missing and a run died while swapping folders,
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
