"""Sources: what a stored file holds, indexable by one int or slice per stored axis.

A TIFF series is memory-mapped when uncompressed and contiguous, decoded page by page when stored
as one page per plane, and read whole otherwise; an OME-Zarr folder opens its full-resolution
array with zarr; PNG and other formats are read whole through imagecodecs. :func:`_stored` picks
the source and returns it with the file's axes and pixel size.
"""

from __future__ import annotations

import json
from itertools import product
from pathlib import Path

import numpy as np
import tifffile

from ..errors import InputError
from ._metadata import _pixel_size, _png_pixel_size, _tiff_pixel_size

__all__: list[str] = []

_TIFF_SUFFIXES = (".tif", ".tiff", ".btf")


def _not_readable(path, exc) -> InputError:
    kind = type(exc).__name__
    return InputError(f"{path}: not a readable image ({kind}: {str(exc).splitlines()[0] if str(exc) else kind})")


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
