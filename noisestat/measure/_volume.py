"""The objects of a 3D label volume, and which parameters each kind of image has.

A volume's objects are measured in 3D with MorphoLibJ's column names and definitions, in physical units
from the voxel size (:mod:`noisestat.measure._regions3d`), plus the intensity parameters over each
object's voxels. An image's objects have ImageJ's 2D parameters (:data:`PARAMETERS`). The functions here
say which set, which centre columns and which global totals belong to an image of ``ndim`` dimensions:
every table, statistic and figure asks them rather than assuming the 2D set.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ._morphometry import ANGULAR_PARAMETERS, INTENSITY_PARAMETERS, PARAMETERS, ObjectMeasurements, intensity_columns
from ._regions3d import VOLUME_SHAPE_PARAMETERS, measure_regions_3d

__all__ = ["measure_volume_objects", "VOLUME_PARAMETERS", "parameters_for", "centre_columns", "size_column",
           "angular_for"]

VOLUME_PARAMETERS: tuple[str, ...] = VOLUME_SHAPE_PARAMETERS + INTENSITY_PARAMETERS
"""Every per-object column of a volume, in table order: the 3D shape parameters, then the intensity ones."""


def parameters_for(ndim: int) -> tuple[str, ...]:
    """The per-object columns of an image (``ndim`` 2: :data:`PARAMETERS`) or a volume (3:
    :data:`VOLUME_PARAMETERS`)."""
    return PARAMETERS if ndim == 2 else VOLUME_PARAMETERS


def centre_columns(ndim: int) -> tuple[str, ...]:
    """The columns of an object's centre: ``XM, YM`` (pixels) for an image, ``Centroid.X, .Y, .Z``
    (physical units) for a volume. The centroid matching rule measures its distance in them."""
    return ("XM", "YM") if ndim == 2 else ("Centroid.X", "Centroid.Y", "Centroid.Z")


def size_column(ndim: int) -> str:
    """The column counting an object's pixels (``Area``) or voxels (``Voxels``): ``min_area`` and the
    single-object size differences are in these units."""
    return "Area" if ndim == 2 else "Voxels"


def angular_for(ndim: int) -> tuple[str, ...]:
    """The columns holding angles (modulo 180 degrees): none among a volume's."""
    return ANGULAR_PARAMETERS if ndim == 2 else ()


def measure_volume_objects(label_volume: np.ndarray, intensity: np.ndarray | None = None,
                           spacing=None) -> ObjectMeasurements:
    """One row per object of a 3D label volume (ids ascending), columns :data:`VOLUME_PARAMETERS`: the 3D
    shape parameters in the physical units of ``spacing`` (z, y, x; 1 per axis when not given) and, with the
    volume's ``intensity``, the intensity parameters over its voxels (NaN without it).

    Examples
    --------
    >>> import numpy as np
    >>> v = np.zeros((3, 4, 5), int); v[1, 1:3, 2:5] = 7
    >>> m = measure_volume_objects(v, spacing=(2.0, 0.5, 0.5))
    >>> m.labels.tolist(), m.column("Voxels").tolist(), m.column("Volume").tolist()
    ([7], [6.0], [3.0])
    """
    labels = np.asarray(label_volume)
    if labels.ndim != 3 or not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"a label volume must be a 3D array of integers; got shape {labels.shape}, dtype {labels.dtype}")
    if labels.size and labels.min() < 0:
        raise InputError(f"label ids must be >= 0; got {labels.min()}")
    spacing = (1.0, 1.0, 1.0) if spacing is None else tuple(float(s) for s in spacing)
    ids, columns = measure_regions_3d(labels, spacing=spacing)
    ids = np.asarray(ids, dtype=np.int64)
    values = np.full((len(ids), len(VOLUME_PARAMETERS)), np.nan)
    for name in VOLUME_SHAPE_PARAMETERS:
        values[:, VOLUME_PARAMETERS.index(name)] = columns[name]
    if len(ids) and intensity is not None:
        # ids made consecutive (1..n) for the intensity columns' bincounts
        # the smallest type that holds the count: the compacted labels are a volume-sized array
        lookup = np.zeros(int(ids.max()) + 1, dtype=np.uint16 if len(ids) < 2 ** 16 else np.uint32)
        lookup[ids] = np.arange(1, len(ids) + 1)
        for name, column in intensity_columns(lookup[labels], len(ids), intensity).items():
            values[:, VOLUME_PARAMETERS.index(name)] = column
    return ObjectMeasurements(labels=ids, values=values, names=VOLUME_PARAMETERS)
