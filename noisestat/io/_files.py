"""Reading images, volumes and label images, hashing inputs, and writing outputs atomically.

Every reader turns what can go wrong with a file (missing, not an image, wrong shape or kind)
into an :class:`~noisestat.errors.InputError` whose message names the file.

Images are 2D planes ``(rows, cols)`` or 3D volumes ``(z, rows, cols)``: a TIFF whose one
non-image axis is Z (or a plain stack of pages) is a volume unless one plane is chosen, and an
OME-Zarr folder (NGFF 0.4 and 0.5) is read the same way. :func:`open_image` reads lazily
(a region reads only the chunks or pages it touches); :func:`read_image_info` reads everything.
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
import struct
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, replace
from itertools import product
from pathlib import Path

import numpy as np
import tifffile

from ..errors import InputError, OutputError

__all__ = ["read_image", "read_image_info", "open_image", "ImageView", "ImageInfo", "PixelSize", "spacing",
           "read_labels", "file_sha256", "array_sha256", "write_json_atomic",
           "write_text_atomic", "json_text", "atomic_file", "staged_directory", "OUTPUT_MARKER",
           "check_output_dir", "check_output_file", "prepare_output_dir", "prepare_output_file",
           "clean_stale", "is_noisestat_output", "codec_input_files"]

_TIFF_SUFFIXES = (".tif", ".tiff", ".btf")


def _not_readable(path, exc) -> InputError:
    kind = type(exc).__name__
    return InputError(f"{path}: not a readable image ({kind}: {str(exc).splitlines()[0] if str(exc) else kind})")


def _read_any(path: Path) -> np.ndarray:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        if _is_zarr_folder(path):  # an OME-Zarr label image: its full-resolution level, whole
            source, _, _ = _zarr_source(path)
            return np.asarray(source[(slice(None),) * len(source.shape)])
        raise InputError(f"{path}: is a folder, expected an image file")
    suffix = path.suffix.lower()
    try:
        if suffix in _TIFF_SUFFIXES:
            return tifffile.imread(path)
        # PNG and other formats through imagecodecs, which tifffile already depends on.
        import imagecodecs

        return np.asarray(imagecodecs.imread(path))
    except InputError:
        raise
    except Exception as exc:  # every reader failure means "not an image we can read"
        raise _not_readable(path, exc) from None


@dataclass(frozen=True)
class PixelSize:
    """The physical size of one pixel: ``x`` (along columns) and ``y`` (along rows) in ``unit``;
    for a volume also ``z`` (between slices, in the same unit), None when the file does not say.

    Examples
    --------
    >>> PixelSize(0.5, 0.5, "µm").to_dict()
    {'x': 0.5, 'y': 0.5, 'unit': 'µm'}
    >>> PixelSize(0.5, 0.5, "µm", z=2.0).to_dict()
    {'x': 0.5, 'y': 0.5, 'unit': 'µm', 'z': 2.0}
    """

    x: float
    y: float
    unit: str
    z: float | None = None

    def to_dict(self) -> dict:
        """``x``, ``y``, ``unit``, and ``z`` only when known (so 2D files give what they always gave)."""
        out = asdict(self)
        if out["z"] is None:
            del out["z"]
        return out


@dataclass(frozen=True)
class ImageInfo:
    """What :func:`read_image_info` or :func:`open_image` learnt about a file besides its pixels.

    ``axes`` and ``shape`` describe the file as stored (tifffile's series axes, or the OME-Zarr
    axes in capitals: ``Y``, ``X``, ``C`` channel, ``S`` sample such as RGB, ``Z``, ``T``,
    ``I``/``Q`` a plain stack of pages, ...); ``channel`` and ``plane`` the selection read (None
    when not given); ``pixel_size`` a :class:`PixelSize` of the array returned, or None when the
    file does not say (``z`` only for a volume); ``ndim`` 2 for a plane ``(rows, cols)``, 3 for a
    volume ``(z, rows, cols)``.
    """

    path: str
    axes: str
    shape: tuple[int, ...]
    channel: int | None
    plane: int | None
    pixel_size: PixelSize | None
    ndim: int = 2

    @property
    def spacing(self) -> tuple[float, ...] | None:
        """The physical size along each axis of the array read: see :func:`spacing`."""
        return spacing(self)


def spacing(info: ImageInfo) -> tuple[float, ...] | None:
    """The physical size of a pixel along each axis of the array read, in ``info.pixel_size.unit``:
    ``(y, x)`` for a plane, ``(z, y, x)`` for a volume; None when the file does not give them all.

    Examples
    --------
    >>> info = ImageInfo("v.tif", "ZYX", (9, 64, 64), None, None, PixelSize(0.5, 0.5, "µm", z=2.0), ndim=3)
    >>> spacing(info)
    (2.0, 0.5, 0.5)
    >>> spacing(replace(info, pixel_size=PixelSize(0.5, 0.5, "µm"))) is None
    True
    """
    size = info.pixel_size
    if size is None:
        return None
    if info.ndim == 2:
        return (float(size.y), float(size.x))
    return None if size.z is None else (float(size.z), float(size.y), float(size.x))


#: Micrometres per unit, for the units OME-XML, ImageJ and OME-Zarr write; others are kept as given.
_MICROMETRES = {"µm": 1.0, "nm": 1e-3, "mm": 1e3, "cm": 1e4, "m": 1e6, "pm": 1e-6, "Å": 1e-4}
_UNIT_NAMES = {"um": "µm", "micron": "µm", "microns": "µm", "\\u00b5m": "µm", "μm": "µm",  # Greek mu
               "nanometer": "nm", "millimeter": "mm", "centimeter": "cm", "meter": "m",
               # the UDUNITS-2 names OME-Zarr uses
               "micrometer": "µm", "picometer": "pm", "angstrom": "Å", "nanometre": "nm", "micrometre": "µm"}


def _unit_name(unit) -> str | None:
    text = str(unit).strip()
    return _UNIT_NAMES.get(text.lower(), text) if text and text.lower() not in ("pixel", "pixels", "none") else None


def _in_unit(value: float, unit: str, target: str) -> float | None:
    """``value`` in ``unit`` expressed in ``target``; None when the two cannot be compared."""
    if unit == target:
        return float(value)
    if unit in _MICROMETRES and target in _MICROMETRES:
        return float(value) * _MICROMETRES[unit] / _MICROMETRES[target]
    return None


def _pixel_size(x, y, unit_x, unit_y=None, z=None, unit_z=None) -> PixelSize | None:
    """A PixelSize in the unit of ``x`` (y and z converted to it), or None when x or y is unusable."""
    ux, uy = _unit_name(unit_x), _unit_name(unit_x if unit_y is None else unit_y)
    if ux is None or uy is None or x is None or y is None:
        return None
    y = _in_unit(y, uy, ux)
    if y is None or not (float(x) > 0 and y > 0):
        return None
    if z is not None:
        uz = _unit_name(unit_x if unit_z is None else unit_z)
        z = None if uz is None else _in_unit(z, uz, ux)
        z = z if z is not None and z > 0 else None
    return PixelSize(float(x), y, ux, z)


def _ome_pixel_size(xml_text: str) -> PixelSize | None:
    """PhysicalSizeX/Y/Z and their units from the first Pixels element of OME-XML."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError:
        return None
    pixels = next((e for e in root.iter() if e.tag.rsplit("}", 1)[-1] == "Pixels"), None)
    if pixels is None or "PhysicalSizeX" not in pixels.attrib:
        return None
    try:
        x = float(pixels.get("PhysicalSizeX"))
        y = float(pixels.get("PhysicalSizeY", x))
        z = float(pixels.get("PhysicalSizeZ")) if "PhysicalSizeZ" in pixels.attrib else None
    except ValueError:
        return None
    # OME's default unit is the micrometre
    return _pixel_size(x, y, pixels.get("PhysicalSizeXUnit", "µm"), pixels.get("PhysicalSizeYUnit", "µm"),
                       z, pixels.get("PhysicalSizeZUnit", "µm"))


def _tiff_pixel_size(tif: tifffile.TiffFile) -> PixelSize | None:
    """OME PhysicalSize, else XResolution/YResolution with ImageJ's ``unit`` (and ``spacing`` for
    the slices) or ResolutionUnit."""
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
    imagej = (tif.imagej_metadata or {}) if tif.is_imagej else {}
    unit = _unit_name(imagej.get("unit", "")) if tif.is_imagej else None
    if unit is None:
        res_unit = int(tags["ResolutionUnit"].value) if "ResolutionUnit" in tags else 2  # TIFF's default: inch
        per_unit_um = {2: 25400.0, 3: 10000.0}.get(res_unit)
        if per_unit_um is None:  # 1 = no absolute unit
            return None
        return PixelSize(float(x * per_unit_um), float(y * per_unit_um), "µm")
    try:
        z = float(imagej["spacing"]) if "spacing" in imagej else None  # ImageJ: slice spacing in ``unit``
    except (TypeError, ValueError):
        z = None
    return PixelSize(float(x), float(y), unit, z if z is not None and z > 0 else None)


# --------------------------------------------------------------------------------------------------
# Sources: what a file holds, indexable by a tuple of ints and slices (one per stored axis)
# --------------------------------------------------------------------------------------------------


class _TiffMemmap:
    """The contiguous, uncompressed data of a TIFF series, memory-mapped when first indexed.

    Kept as a recipe (path, offset, dtype, shape) rather than an open map, so it pickles small
    and a worker process maps the file itself.
    """

    def __init__(self, path: Path, offset: int, dtype: np.dtype, shape: tuple[int, ...]):
        self.path, self.offset, self.file_dtype, self.shape = path, offset, dtype, shape
        self.dtype = dtype.newbyteorder("=")
        self._map = None

    def __getstate__(self):
        return {**self.__dict__, "_map": None}

    def __getitem__(self, key):
        if self._map is None:
            self._map = np.memmap(self.path, dtype=self.file_dtype, mode="r", offset=self.offset, shape=self.shape)
        return np.array(self._map[key], dtype=self.dtype)  # a copy: the map is read-only and stays open


class _TiffPages:
    """A TIFF series stored as one page per 2D plane (compressed, tiled, ...): indexing it decodes
    only the pages it touches, each in full. The file is opened for each read, so nothing stays open
    and it pickles as a path.

    tifffile's ``aszarr`` does this per tile, but needs zarr (optional here) and holds the file
    open in a store that does not pickle, which a dask cluster needs.
    """

    def __init__(self, path: Path, shape: tuple[int, ...], page_ndim: int, dtype: np.dtype):
        self.path, self.shape, self.page_ndim, self.dtype = path, shape, page_ndim, dtype

    def __getitem__(self, key):
        lead = len(self.shape) - self.page_ndim
        ranges = [[k] if isinstance(k, (int, np.integer)) else range(*k.indices(n))
                  for k, n in zip(key[:lead], self.shape[:lead])]
        in_page = tuple(key[lead:])
        with tifffile.TiffFile(self.path) as tif:
            planes = [tif.asarray(key=int(np.ravel_multi_index(i, self.shape[:lead])) if lead else 0, series=0)
                      .reshape(self.shape[lead:])[in_page] for i in product(*ranges)]
        out_shape = [len(r) for r in ranges]
        if not planes:  # an empty selection: the shape of what the page key would give
            page = np.broadcast_to(np.False_, self.shape[lead:])[in_page].shape
            return np.empty([n for k, n in zip(key[:lead], out_shape) if not isinstance(k, (int, np.integer))]
                            + list(page), self.dtype)
        data = np.stack(planes).reshape(out_shape + list(planes[0].shape))
        return data[tuple(0 if isinstance(k, (int, np.integer)) else slice(None) for k in key[:lead])]


class _Eager:
    """An array already in memory, indexed like the lazy sources."""

    def __init__(self, data: np.ndarray):
        self.data, self.shape, self.dtype = data, data.shape, data.dtype

    def __getitem__(self, key):
        return self.data[key]


def _tiff_source(path: Path, tif: tifffile.TiffFile, *, lazy: bool):
    series = tif.series[0]
    shape, dtype = tuple(series.shape), np.dtype(series.dtype)
    if lazy and series.dataoffset is not None and int(np.prod(shape)) > 0:
        return _TiffMemmap(path, int(series.dataoffset), np.dtype(tif.byteorder + dtype.str[1:]), shape)
    page = tif.pages.first
    page_shape = tuple(page.shape)
    if (lazy and len(series.pages) > 1 and shape[len(shape) - len(page_shape):] == page_shape
            and int(np.prod(shape[:len(shape) - len(page_shape)])) == len(series.pages)):
        return _TiffPages(path, shape, len(page_shape), dtype)
    return _Eager(series.asarray())  # one page holding several planes (or odd layouts): read whole


def _is_zarr_folder(path: Path) -> bool:
    return (path / ".zattrs").is_file() or (path / "zarr.json").is_file()


def _zarr_attributes(path: Path) -> dict:
    """The group attributes of an OME-Zarr folder: ``.zattrs`` (zarr v2, NGFF 0.4) or the
    ``attributes`` of ``zarr.json`` (zarr v3, NGFF 0.5, where the OME keys sit under ``ome``)."""
    name = ".zattrs" if (path / ".zattrs").is_file() else "zarr.json"
    try:
        doc = json.loads((path / name).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: {name} is not readable JSON ({type(exc).__name__})") from None
    if not isinstance(doc, dict):
        raise InputError(f"{path}: {name} must hold a JSON object")
    attrs = doc.get("attributes", {}) if name == "zarr.json" else doc
    attrs = attrs if isinstance(attrs, dict) else {}
    ome = attrs.get("ome")
    return {**attrs, **ome} if isinstance(ome, dict) else attrs


def _zarr_axes(path: Path, multiscale: dict, ndim: int) -> tuple[str, list]:
    """One capital letter per axis (names t, c, z, y, x; else by type) and each axis' unit."""
    axes = multiscale.get("axes")
    if axes is None and ndim <= 5:  # NGFF 0.1 and 0.2 fixed the order TCZYX
        axes = list("tczyx"[5 - ndim:])
    if not isinstance(axes, list) or len(axes) != ndim:
        raise InputError(f"{path}: OME-Zarr multiscales 'axes' must name the {ndim} axes of the array; "
                         f"got {axes!r}")
    letters, units = [], []
    for axis in axes:
        axis = {"name": axis} if isinstance(axis, str) else axis
        if not isinstance(axis, dict):
            raise InputError(f"{path}: OME-Zarr multiscales 'axes' entries must be objects; got {axis!r}")
        name, kind = str(axis.get("name", "")).lower(), str(axis.get("type", "")).lower()
        letter = name.upper() if name in ("t", "c", "z", "y", "x") else {"time": "T", "channel": "C"}.get(kind, "Q")
        letters.append(letter)
        units.append(axis.get("unit"))
    joined = "".join(letters)
    if joined.count("Y") != 1 or joined.count("X") != 1:
        raise InputError(f"{path}: OME-Zarr axes {joined} must include one y and one x axis")
    return joined, units


def _zarr_scale(path: Path, transforms, ndim: int, where: str) -> list[float]:
    scale = [1.0] * ndim
    for t in transforms or []:
        if isinstance(t, dict) and t.get("type") == "scale":
            values = t.get("scale")
            if not isinstance(values, list) or len(values) != ndim:
                raise InputError(f"{path}: OME-Zarr {where} scale must have {ndim} values; got {values!r}")
            scale = [a * float(b) for a, b in zip(scale, values)]
    return scale


def _zarr_source(path: Path):
    """The full-resolution array of an OME-Zarr folder (opened lazily with zarr), its axes and
    its pixel size (with ``z`` when the Z axis has a unit)."""
    attrs = _zarr_attributes(path)
    multiscales = attrs.get("multiscales")
    if not isinstance(multiscales, list) or not multiscales or not isinstance(multiscales[0], dict):
        raise InputError(f"{path}: is a folder but not OME-Zarr (no 'multiscales' in its .zattrs or zarr.json); "
                         f"expected an image file or an OME-Zarr image")
    multiscale = multiscales[0]
    datasets = multiscale.get("datasets")
    if not isinstance(datasets, list) or not datasets or not isinstance(datasets[0], dict) \
            or not isinstance(datasets[0].get("path"), str):
        raise InputError(f"{path}: OME-Zarr multiscales holds no datasets (need at least one with a 'path')")
    level = datasets[0]["path"]  # datasets go from the highest resolution down
    array_path = path / level
    if not ((array_path / ".zarray").is_file() or (array_path / "zarr.json").is_file()):
        raise InputError(f"{path}: the OME-Zarr dataset '{level}' is missing (no zarr array at {array_path})")
    try:
        import zarr
    except ImportError:
        raise InputError(f"{path}: reading OME-Zarr needs the zarr package; install noisestat[dask] "
                         f"(pip install 'noisestat[dask]')") from None
    try:
        array = zarr.open_array(store=str(array_path), mode="r")
    except Exception as exc:  # every zarr failure means "not an array we can read"
        raise InputError(f"{path}: the OME-Zarr dataset '{level}' is not a readable zarr array "
                         f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    ndim = len(array.shape)
    axes, units = _zarr_axes(path, multiscale, ndim)
    scale = _zarr_scale(path, datasets[0].get("coordinateTransformations"), ndim, f"dataset '{level}'")
    scale = [a * b for a, b in zip(scale, _zarr_scale(path, multiscale.get("coordinateTransformations"), ndim,
                                                      "multiscales"))]
    x, y = axes.index("X"), axes.index("Y")
    z = axes.index("Z") if "Z" in axes else None
    size = None
    if units[x] is not None:
        size = _pixel_size(scale[x], scale[y], units[x], units[y] if units[y] is not None else units[x],
                           None if z is None or units[z] is None else scale[z], None if z is None else units[z])
    return array, axes, size


# --------------------------------------------------------------------------------------------------
# Selecting a plane or a volume
# --------------------------------------------------------------------------------------------------


class ImageView:
    """A 2D plane ``(rows, cols)`` or 3D volume ``(z, rows, cols)`` of a stored array, read on demand.

    Indexing with ints, slices and ``...`` reads only that region of the file (the chunks of an
    OME-Zarr array or the bytes of an uncompressed TIFF it touches; whole pages of a compressed
    TIFF) and returns an ndarray; ``np.asarray(view)`` reads it all. It has ``shape``, ``dtype``,
    ``ndim`` and pickles without its data, so ``dask.array.from_array(view)`` works on a cluster.

    Written here rather than returned as a dask array because dask is optional; it only maps a
    region of the view to the stored axes (fixed channel and plane indices, stored order).
    """

    def __init__(self, source, index: tuple, out: tuple[int, ...], name: str):
        self._source, self._index, self._out, self.name = source, index, out, name
        self.shape = tuple(int(source.shape[a]) for a in out)
        self.dtype = np.dtype(source.dtype)
        self.ndim = len(out)

    @property
    def chunks(self) -> tuple[int, ...] | None:
        """The source's chunk shape along the view's axes (OME-Zarr), or None."""
        chunks = getattr(self._source, "chunks", None)
        return None if chunks is None else tuple(int(chunks[a]) for a in self._out)

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"ImageView({self.name}, shape={self.shape}, dtype={self.dtype})"

    def __array__(self, dtype=None, copy=None):
        data = self[...]
        return data if dtype is None else data.astype(dtype, copy=False)

    def __getitem__(self, key) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        if sum(k is Ellipsis for k in key) > 1:
            raise IndexError("an index can only have a single ellipsis ('...')")
        if Ellipsis in key:
            at = key.index(Ellipsis)
            key = key[:at] + (slice(None),) * (self.ndim - len(key) + 1) + key[at + 1:]
        if len(key) > self.ndim:
            raise IndexError(f"too many indices for a {self.ndim}D image: {len(key)}")
        key = key + (slice(None),) * (self.ndim - len(key))
        picked = {}
        for axis, k, n in zip(self._out, key, self.shape):
            if isinstance(k, (int, np.integer)) and not isinstance(k, bool):
                if not -n <= k < n:
                    raise IndexError(f"index {k} is out of bounds for an axis of size {n}")
                picked[axis] = int(k) % n
            elif isinstance(k, slice):
                picked[axis] = k
            else:
                raise TypeError(f"{self.name}: only ints, slices and ... index an image read lazily; got {k!r}")
        source_key = tuple(self._index[a] if self._index[a] is not None else picked[a]
                           for a in range(len(self._index)))
        data = np.asarray(self._source[source_key])
        # The axes left are the sliced ones, in stored order; put them in the view's order.
        left = [a for a in range(len(source_key)) if isinstance(source_key[a], slice)]
        wanted = [a for a in self._out if isinstance(picked[a], slice)]
        data = data.transpose([left.index(a) for a in wanted]) if left != wanted else data
        # One sample of interleaved RGB (or a transposed layout) is a strided view of the file's
        # array: codecs and writers need the plane's own contiguous pixels.
        return np.ascontiguousarray(data)


def _pick(name, value, count, what) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < count:
        raise InputError(f"{name}: --{what} {value} is out of range; this file has {count} "
                         f"{what}(s): 0 to {count - 1}")
    return int(value)


#: The one non-image axis read as a volume's Z when no plane is chosen: OME/ImageJ Z, and the
#: axis of a plain stack of pages (``I``, or ``Q`` in files tifffile wrote without axes).
VOLUME_AXES = "ZIQ"
#: The smallest extent along every axis of an image or volume.
MIN_EXTENT = 8


def _layout(axes: str, shape: tuple[int, ...], name: str, channel, plane) -> tuple[tuple, tuple[int, ...]]:
    """Which index each stored axis takes (None: kept) and the kept axes in output order.

    ``channel`` indexes the C and S axes, ``plane`` every other axis (Z, T, ...), each flattened in
    file order; axes of length 1 are ignored. With no ``plane``, a file whose only other axis is Z
    (or a plain stack) gives a volume (Z, Y, X); any other gives a plane (Y, X)."""
    ndim = len(shape)
    if len(axes) != ndim or "Y" not in axes or "X" not in axes:
        axes = "Q" * (ndim - 2) + "YX"  # unknown layout: the last two axes are the image
    kept = [i for i, n in enumerate(shape) if n > 1 or axes[i] in "YX"]
    chan = [i for i in kept if axes[i] in "CS"]
    rest = [i for i in kept if axes[i] not in "CSYX"]
    yx = [axes.index("Y"), axes.index("X")]
    n_chan = int(np.prod([shape[i] for i in chan])) if chan else 1
    n_plane = int(np.prod([shape[i] for i in rest])) if rest else 1
    volume = plane is None and len(rest) == 1 and axes[rest[0]] in VOLUME_AXES
    if n_chan > 1 and channel is None and volume:
        raise InputError(f"{name}: holds {n_chan} channels of a {n_plane}-slice volume (axes {axes}, shape {shape}); "
                         f"choose one with --channel N (0 to {n_chan - 1}), and add --plane N (0 to {n_plane - 1}) "
                         f"for one 2D plane")
    if (n_chan > 1 and channel is None) or (n_plane > 1 and plane is None and not volume):
        ask = [f"--channel N (0 to {n_chan - 1})" if n_chan > 1 else "",
               f"--plane N (0 to {n_plane - 1})" if n_plane > 1 else ""]
        raise InputError(f"{name}: holds {n_chan * n_plane} 2D planes (axes {axes}, shape {shape}); "
                         f"choose one with {' and '.join(a for a in ask if a)}")
    c = _pick(name, channel, n_chan, "channel")
    index = [None if i in yx else 0 for i in range(ndim)]
    for i, k in zip(chan, np.unravel_index(c, [shape[i] for i in chan]) if chan else ()):
        index[i] = int(k)
    if volume:
        index[rest[0]] = None
        if min(shape[rest[0]], *(shape[i] for i in yx)) < MIN_EXTENT:
            raise InputError(f"{name}: the volume of shape {(shape[rest[0]], shape[yx[0]], shape[yx[1]])} "
                             f"(axes {axes}) is too small (at least {MIN_EXTENT} along each axis); read one 2D "
                             f"plane with --plane N (0 to {n_plane - 1})")
        return tuple(index), (rest[0], *yx)
    p = _pick(name, plane, n_plane, "plane")
    for i, k in zip(rest, np.unravel_index(p, [shape[i] for i in rest]) if rest else ()):
        index[i] = int(k)
    return tuple(index), tuple(yx)


def _check_kind(shape: tuple[int, ...], dtype, name: str) -> None:
    """What :func:`check_raw_image` checks that needs no pixel value."""
    if len(shape) not in (2, 3):
        raise InputError(f"{name}: expected a 2D greyscale image or a 3D volume; got shape {tuple(shape)}")
    if not np.issubdtype(dtype, np.integer):
        raise InputError(f"{name}: expected integer pixel values (raw camera counts); got dtype {dtype}")
    if min(shape) < MIN_EXTENT:
        what = "image" if len(shape) == 2 else "volume"
        size = " x ".join([str(MIN_EXTENT)] * len(shape))
        raise InputError(f"{name}: {what} of shape {tuple(shape)} is too small (at least {size})")


def _png_pixel_size(path: Path) -> PixelSize | None:
    """The pHYs chunk of a PNG (pixels per metre along x and y) as a pixel size in µm.

    Read by hand: imagecodecs decodes PNG pixels but returns none of its chunks, and noisestat
    does not depend on Pillow for nine bytes of metadata. The chunks before the image data are
    walked (pHYs must precede IDAT); a unit of 0 (aspect ratio only) gives None.
    """
    try:
        with open(path, "rb") as handle:
            if handle.read(8) != b"\x89PNG\r\n\x1a\n":
                return None
            while True:
                head = handle.read(8)
                if len(head) < 8:
                    return None
                length, kind = struct.unpack(">I4s", head)
                if kind in (b"IDAT", b"IEND"):
                    return None
                if kind == b"pHYs" and length == 9:
                    per_x, per_y, unit = struct.unpack(">IIB", handle.read(9))
                    if unit != 1 or not per_x or not per_y:
                        return None
                    return PixelSize(1e6 / per_x, 1e6 / per_y, "µm")
                handle.seek(length + 4, os.SEEK_CUR)  # the chunk's data and its CRC
    except (OSError, struct.error):
        return None


def _stored(path: Path, *, lazy: bool):
    """The file's data as a source (indexable by one key per stored axis), its axes and its pixel size."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        if _is_zarr_folder(path):
            return _zarr_source(path)
        raise InputError(f"{path}: is a folder, expected an image file or an OME-Zarr folder "
                         f"(no .zattrs or zarr.json in it)")
    try:
        if path.suffix.lower() in _TIFF_SUFFIXES:
            with tifffile.TiffFile(path) as tif:
                return _tiff_source(path, tif, lazy=lazy), tif.series[0].axes, _tiff_pixel_size(tif)
        import imagecodecs

        data = np.asarray(imagecodecs.imread(path))
        size = _png_pixel_size(path) if path.suffix.lower() == ".png" else None
        return _Eager(data), {2: "YX", 3: "YXS"}.get(data.ndim, "Q" * data.ndim), size
    except InputError:
        raise
    except Exception as exc:  # every reader failure means "not an image we can read"
        raise _not_readable(path, exc) from None


def _open(path, channel, plane, *, lazy: bool) -> tuple[ImageView, ImageInfo]:
    path = Path(path)
    source, axes, pixel_size = _stored(path, lazy=lazy)
    shape = tuple(int(n) for n in source.shape)
    index, out = _layout(axes, shape, str(path), channel, plane)
    view = ImageView(source, index, out, str(path))
    _check_kind(view.shape, view.dtype, str(path))
    if pixel_size is not None and view.ndim == 2 and pixel_size.z is not None:
        pixel_size = replace(pixel_size, z=None)  # a plane's pixels have no depth
    return view, ImageInfo(str(path), axes, shape, channel, plane, pixel_size, view.ndim)


def open_image(path: str | os.PathLike, *, channel: int | None = None,
               plane: int | None = None) -> tuple[ImageView, ImageInfo]:
    """Open a 2D plane or 3D volume of an image file or OME-Zarr folder without reading its pixels.

    Parameters
    ----------
    path : path-like
        A TIFF (plain, ImageJ hyperstack, OME-TIFF), an OME-Zarr folder (NGFF 0.4 or 0.5; its
        full-resolution level; needs zarr, ``pip install 'noisestat[dask]'``), or any format
        imagecodecs decodes (PNG, ...).
    channel, plane : int, optional
        As for :func:`read_image_info`.

    Returns
    -------
    image : ImageView
        The plane ``(rows, cols)`` or volume ``(z, rows, cols)``; indexing it reads only that
        region: the chunks of an OME-Zarr array, the bytes of an uncompressed TIFF (memory-mapped),
        the pages of a TIFF stored as one compressed page per plane. Other TIFF layouts (several
        planes in one compressed page) and PNG are read whole when opened.
    info : ImageInfo
        As for :func:`read_image_info`.

    Raises
    ------
    InputError
        As :func:`read_image_info`, except that an all-zero image is only found when read;
        also for a folder that is not OME-Zarr, a multiscales without datasets, a missing array,
        or zarr not installed.
    """
    return _open(path, channel, plane, lazy=True)


def read_image_info(path: str | os.PathLike, *, channel: int | None = None,
                    plane: int | None = None) -> tuple[np.ndarray, ImageInfo]:
    """Read one 2D greyscale raw plane, or a 3D volume, of an image file and what the file says about it.

    Parameters
    ----------
    path : path-like
        A TIFF (tifffile: plain, ImageJ hyperstack, OME-TIFF), an OME-Zarr folder (see
        :func:`open_image`) or any format imagecodecs decodes (PNG, ...).
    channel : int, optional
        Index along the channel axes (C, and S such as RGB samples, flattened in file order).
        Needed when the file has more than one channel.
    plane : int, optional
        Index along every other non-image axis (Z, T, ... flattened in file order, so for
        ``TZCYX`` plane = t * Z + z): one 2D plane. Without it, a file whose only such axis is Z
        (or a plain stack of pages) is read as a volume; one with other such axes (time points...)
        needs it.

    Returns
    -------
    image : ndarray, shape (rows, cols) or (z, rows, cols)
        The plane or volume, in the file's own integer dtype.
    info : ImageInfo
        The file's axes and shape, the selection, ``ndim`` and the pixel size (OME
        ``PhysicalSizeX/Y/Z``, else the TIFF resolution tags with ImageJ's unit and ``spacing`` or
        ResolutionUnit; the OME-Zarr scale and axis units; the PNG pHYs chunk; None otherwise).

    Raises
    ------
    InputError
        If the file is missing or not an image, holds several planes and none was chosen, an
        index is out of range, or the plane is not a usable integer image.
    """
    view, info = _open(path, channel, plane, lazy=False)
    image = np.asarray(view)
    check_raw_image(image, name=info.path)
    return image, info


def read_image(path: str | os.PathLike, *, channel: int | None = None, plane: int | None = None) -> np.ndarray:
    """Read a 2D greyscale raw image or a 3D volume (unsigned or signed integers).

    Parameters
    ----------
    path : path-like
        A TIFF (read with tifffile), an OME-Zarr folder or any format imagecodecs decodes (PNG, ...).
    channel, plane : int, optional
        Which plane or volume of a multi-channel file or stack to read (see :func:`read_image_info`).

    Returns
    -------
    image : ndarray, shape (rows, cols) or (z, rows, cols)
        The pixel values, in the file's own integer dtype.

    Raises
    ------
    InputError
        If the file is missing, not an image, holds several planes and none was chosen, not
        integer, or all zero.
    """
    return read_image_info(path, channel=channel, plane=plane)[0]


def check_raw_image(image: np.ndarray, *, name: str = "image") -> None:
    """Raise InputError unless ``image`` is a non-empty 2D image or 3D volume of integers, at least
    8 along each axis, that is not all zero."""
    if image.ndim not in (2, 3):
        raise InputError(f"{name}: expected a 2D greyscale image or a 3D volume; got shape {image.shape}")
    _check_kind(image.shape, image.dtype, name)
    if not image.any():
        raise InputError(f"{name}: every pixel is zero; that is not a camera image")


def read_labels(path: str | os.PathLike, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Read a sparse label image or volume: 0 unlabelled, 1 background, 2 object.

    A TIFF, PNG or OME-Zarr folder; axes of length 1 are dropped, so a ``(z, rows, cols)`` volume
    or a ``(rows, cols)`` image remains.

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


def check_labels(labels: np.ndarray, *, shape: tuple[int, ...] | None = None, name: str = "labels") -> None:
    """Raise InputError unless ``labels`` is a valid sparse two-class label image (2D) or volume (3D)."""
    if labels.ndim not in (2, 3):
        raise InputError(f"{name}: expected a 2D label image or a 3D label volume; got shape {labels.shape}")
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
