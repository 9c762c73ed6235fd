"""Reading images, volumes and label images.

Every reader turns what can go wrong with a file (missing, not an image, wrong shape or kind)
into an :class:`~noisestat.errors.InputError` whose message names the file.

Images are 2D planes ``(rows, cols)`` or 3D volumes ``(z, rows, cols)``: a TIFF whose one
non-image axis is Z (or a plain stack of pages) is a volume unless one plane is chosen, and an
OME-Zarr folder (NGFF 0.4 and 0.5) is read the same way. :func:`open_image` reads lazily
(a region reads only the chunks or pages it touches); :func:`read_image_info` reads everything.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import tifffile

from ..errors import InputError
from ._metadata import ImageInfo
from ._sources import _TIFF_SUFFIXES, _not_readable, _stored, _is_zarr_folder, _zarr_source

__all__ = ["read_image", "read_image_info", "read_array_info", "open_image", "ImageView", "read_labels", "check_raw_image",
           "check_labels", "VOLUME_AXES", "MIN_EXTENT"]


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


def _layout(axes: str, shape: tuple[int, ...], name: str, channel, plane,
            min_extent: int = MIN_EXTENT) -> tuple[tuple, tuple[int, ...]]:
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
        if min(shape[rest[0]], *(shape[i] for i in yx)) < min_extent:
            raise InputError(f"{name}: the volume of shape {(shape[rest[0]], shape[yx[0]], shape[yx[1]])} "
                             f"(axes {axes}) is too small (at least {min_extent} along each axis); read one 2D "
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


def _open(path, channel, plane, *, lazy: bool, raw: bool = True,
          min_extent: int = MIN_EXTENT) -> tuple[ImageView, ImageInfo]:
    path = Path(path)
    source, axes, pixel_size = _stored(path, lazy=lazy)
    shape = tuple(int(n) for n in source.shape)
    index, out = _layout(axes, shape, str(path), channel, plane, min_extent)
    view = ImageView(source, index, out, str(path))
    if raw:
        _check_kind(view.shape, view.dtype, str(path))
    elif view.dtype.kind not in "biuf":
        raise InputError(f"{path}: expected real numbers (integers or floats); got dtype {view.dtype}")
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


def read_array_info(path: str | os.PathLike, *, channel: int | None = None,
                    plane: int | None = None) -> tuple[np.ndarray, ImageInfo]:
    """Read a 2D plane or 3D volume of integers or floats, and what the file says about it.

    The reader of what noisestat writes for the user to inspect: label images and value maps
    (:func:`~noisestat.io.write_label_image`, :func:`~noisestat.io.write_float_map`) come back with
    their shape, dtype and pixel or voxel size. Files, selection and ``info`` are as for
    :func:`read_image_info`, without the raw image's checks (values may be floats, or all zero).

    Raises
    ------
    InputError
        If the file is missing or not an image, holds several planes and none was chosen, an
        index is out of range, or its values are not real numbers.
    """
    view, info = _open(path, channel, plane, lazy=False, raw=False)
    return np.asarray(view), info


def check_raw_image(image: np.ndarray, *, name: str = "image") -> None:
    """Raise InputError unless ``image`` is a non-empty 2D image or 3D volume of integers, at least
    8 along each axis, that is not all zero."""
    if image.ndim not in (2, 3):
        raise InputError(f"{name}: expected a 2D greyscale image or a 3D volume; got shape {image.shape}")
    _check_kind(image.shape, image.dtype, name)
    if not image.any():
        raise InputError(f"{name}: every pixel is zero; that is not a camera image")


def read_labels(path: str | os.PathLike, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Read a sparse label image or volume: 0 unlabelled, 1 background, 2 object (or classes of object 2, 3,
    ...).

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
    """Raise InputError unless ``labels`` is a valid sparse label image (2D) or volume (3D): 0 unlabelled,
    1 background, 2 object, or several classes of object 2, 3, ... (up to 255), with at least one pixel
    of the background and one of a class of object."""
    if labels.ndim not in (2, 3):
        raise InputError(f"{name}: expected a 2D label image or a 3D label volume; got shape {labels.shape}")
    if shape is not None and labels.shape != tuple(shape):
        raise InputError(f"{name}: labels must have the image's shape {tuple(shape)}; got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer) and labels.dtype != bool:
        raise InputError(f"{name}: labels must be integers (0 unlabelled, 1 background, 2 object); got dtype {labels.dtype}")
    values = np.unique(labels)
    extra = [int(v) for v in values if not 0 <= v <= 255]
    if extra:
        raise InputError(f"{name}: labels must be 0 (unlabelled), 1 (background) or 2..255 (classes of object); "
                         f"found {extra[:5]}")
    if 1 not in values:
        raise InputError(f"{name}: no pixel is labelled 1 (background); the classifier needs both classes")
    if not (values >= 2).any():
        raise InputError(f"{name}: no pixel is labelled 2 (object); the classifier needs both classes")
