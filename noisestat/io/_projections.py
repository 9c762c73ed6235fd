"""Reading an optical projection tomography stack: the projections ``(angles, rows, width)`` as the camera
wrote them, one frame per angle, read with the readers of :mod:`noisestat.io._readers` (TIFF, OME-TIFF,
OME-Zarr) but without a volume's minimum extent: a stack may hold a few rows."""

from __future__ import annotations

import os

import numpy as np

from ..errors import InputError
from ._metadata import ImageInfo
from ._readers import _open

__all__ = ["read_projections"]


def read_projections(path: str | os.PathLike, *, channel: int | None = None) -> tuple[np.ndarray, ImageInfo]:
    """Read a projection stack ``(angles, rows, width)`` of integers or reals, and what the file says about
    it (the pixel size of a frame: its ``y`` along the rotation axis, its ``x`` across it).

    Raises
    ------
    InputError
        If the file is missing or not an image, is not a stack of frames, or its values are not real
        numbers.
    """
    try:
        view, info = _open(path, channel, None, lazy=False, raw=False, min_extent=1)
    except InputError as exc:
        if "--plane" not in str(exc):
            raise
        # the reader's hint (--plane) picks one 2D plane, never one stack of frames: say what fits instead
        first = str(exc).split("; choose")[0].split("; read")[0]
        raise InputError(f"{first}; a projection stack is one 3D stack (angles, rows, width): save each "
                         f"stack to a file of its own") from None
    if view.ndim != 3:
        raise InputError(f"{path}: expected a stack of projections (angles, rows, width); got one image of "
                         f"shape {tuple(view.shape)}")
    return np.asarray(view), info
