"""Label images and float maps written for Fiji and napari, with their pixel or voxel size.

A plane is written with axes ``YX``, a volume ``(z, rows, cols)`` with axes ``ZYX``, as an ImageJ
hyperstack (``imagej=True``): the pixel size as the resolution tags (pixels per unit), ImageJ's
``unit`` and, for a volume, its ``spacing`` (the distance between slices, in the same unit). Fiji
opens such a file as a calibrated image or stack, napari as an image or labels layer, and
:func:`noisestat.io.read_array_info` reads the pixels and the voxel size back.

ImageJ's format holds 8- and 16-bit integers and 32-bit floats only, so a label image whose ids
exceed 65535 is written as an OME-TIFF of uint32 instead (``PhysicalSizeX/Y/Z`` and their units,
the same axes), which Fiji opens through Bio-Formats and noisestat reads the same way.

Every file goes through the one atomic writer: encoded in memory, then written to a temporary
file and renamed into place.
"""

from __future__ import annotations

import io
import os
import uuid

import numpy as np
import tifffile

from ._atomic import atomic_file
from ._hashing import array_sha256
from ._metadata import PixelSize

__all__ = ["write_label_image", "write_float_map"]

#: The largest label id an ImageJ hyperstack holds (16-bit); beyond it, an OME-TIFF of uint32.
MAX_IMAGEJ_LABEL = int(np.iinfo(np.uint16).max)


def _size_dict(pixel_size) -> dict | None:
    """``pixel_size`` (a PixelSize, a dict with ``x``, ``y``, ``unit`` and optionally ``z``, or
    None) as a dict of floats and a unit; ValueError for a size that is not positive and finite."""
    if pixel_size is None:
        return None
    size = dict(pixel_size.to_dict() if isinstance(pixel_size, PixelSize) else pixel_size)
    missing = [k for k in ("x", "y", "unit") if k not in size]
    if missing:
        raise ValueError(f"pixel_size needs x, y and unit; missing {', '.join(missing)}: {pixel_size!r}")
    out = {"unit": str(size["unit"])}
    for key in ("x", "y", "z"):
        if size.get(key) is None:
            continue
        value = float(size[key])
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"pixel_size {key} must be a positive length; got {size[key]!r}")
        out[key] = value
    return out


def _imagej_arguments(ndim: int, size: dict | None) -> dict:
    """tifffile's ``imwrite`` arguments for an ImageJ hyperstack of ``ndim`` axes and pixel ``size``."""
    metadata = {"axes": "YX" if ndim == 2 else "ZYX"}
    extra = {}
    if size is not None:
        extra["resolution"] = (1.0 / size["x"], 1.0 / size["y"])  # pixels per unit
        # ImageJ's header is ASCII; Fiji itself writes the micro sign as this escape.
        metadata["unit"] = size["unit"].replace("µ", "\\u00B5")
        if ndim == 3 and "z" in size:
            metadata["spacing"] = size["z"]
    return {"imagej": True, "metadata": metadata, **extra}


def _ome_arguments(data: np.ndarray, size: dict | None) -> dict:
    """tifffile's ``imwrite`` arguments for an OME-TIFF of ``data`` with pixel ``size``; the OME
    UUID is derived from the content, so the same labels give the same bytes."""
    metadata = {"axes": "YX" if data.ndim == 2 else "ZYX",
                "UUID": str(uuid.uuid5(uuid.NAMESPACE_OID, f"noisestat:{array_sha256(data)}:{size}"))}
    if size is not None:
        for key in ("x", "y", "z"):
            if key in size and (key != "z" or data.ndim == 3):
                metadata[f"PhysicalSize{key.upper()}"] = size[key]
                metadata[f"PhysicalSize{key.upper()}Unit"] = size["unit"]
    return {"ome": True, "metadata": metadata}


def _write(path, data: np.ndarray, arguments: dict) -> None:
    # Encoded in memory, then written through the one atomic writer: tifffile cannot take the
    # descriptor-backed handle atomic_file yields (it reads the handle's name as a path).
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, data, **arguments)
    with atomic_file(path, "wb") as handle:
        handle.write(buffer.getvalue())


def write_label_image(path: str | os.PathLike, labels: np.ndarray, *, pixel_size=None) -> None:
    """Write a label image ``(rows, cols)`` or label volume ``(z, rows, cols)`` with its pixel size.

    Parameters
    ----------
    path : path-like
        The TIFF to write; replaced atomically, its missing parent folders created.
    labels : ndarray of integers or bools, shape (rows, cols) or (z, rows, cols)
        Object ids, 0 the background; written unchanged.
    pixel_size : PixelSize or dict, optional
        The physical size of a pixel: ``x``, ``y``, ``unit`` and, for a volume, ``z`` (the slice
        distance). Without it the file holds no calibration.

    Notes
    -----
    Ids up to 65535: an ImageJ hyperstack of uint16 (axes ``YX`` or ``ZYX``). Larger ids: an
    OME-TIFF of uint32 with ``PhysicalSizeX/Y/Z``, since ImageJ's format has no 32-bit integers.

    Raises
    ------
    ValueError
        If ``labels`` is not 2D or 3D, not integer, or holds negative ids, or ``pixel_size`` is
        not a positive size with a unit.
    OutputError
        If the file cannot be written (the previous file, if any, is left unchanged).

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "labels.tif")
    >>> volume = np.zeros((8, 8, 8), np.int32)
    >>> volume[2:5, 3:6, 3:6] = 7
    >>> write_label_image(path, volume, pixel_size=PixelSize(0.5, 0.5, "µm", z=2.0))
    >>> from noisestat.io import read_array_info
    >>> data, info = read_array_info(path)
    >>> data.dtype, data.shape, info.spacing
    (dtype('uint16'), (8, 8, 8), (2.0, 0.5, 0.5))
    """
    labels = np.asarray(labels)
    if labels.ndim not in (2, 3):
        raise ValueError(f"label image must be 2D or 3D; got shape {labels.shape}")
    if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
        raise ValueError(f"label image must hold integer ids; got dtype {labels.dtype}")
    low = int(labels.min()) if labels.size else 0
    top = int(labels.max()) if labels.size else 0
    if low < 0:
        raise ValueError(f"label ids must be 0 or more; got {low}")
    if top > np.iinfo(np.uint32).max:
        raise ValueError(f"label ids must fit in 32 bits; got {top}")
    size = _size_dict(pixel_size)
    if top <= MAX_IMAGEJ_LABEL:
        _write(path, labels.astype(np.uint16), _imagej_arguments(labels.ndim, size))
    else:
        data = labels.astype(np.uint32)
        _write(path, data, _ome_arguments(data, size))


def write_float_map(path: str | os.PathLike, values: np.ndarray, *, pixel_size=None) -> None:
    """Write a map of values ``(rows, cols)`` or a float volume ``(z, rows, cols)`` as a float32
    ImageJ hyperstack with its pixel size (as :func:`write_label_image`); NaN and infinite values
    are kept.

    Raises
    ------
    ValueError
        If ``values`` is not 2D or 3D or not real numbers, or ``pixel_size`` is not a positive
        size with a unit.
    OutputError
        If the file cannot be written (the previous file, if any, is left unchanged).
    """
    values = np.asarray(values)
    if values.ndim not in (2, 3):
        raise ValueError(f"value map must be 2D or 3D; got shape {values.shape}")
    if not (np.issubdtype(values.dtype, np.floating) or np.issubdtype(values.dtype, np.integer)
            or values.dtype == bool):
        raise ValueError(f"value map must hold real numbers; got dtype {values.dtype}")
    _write(path, values.astype(np.float32), _imagej_arguments(values.ndim, _size_dict(pixel_size)))
