"""Objects of a 3D label volume: what a volume's segmentation is scored on today.

Per object only the volume (``Area``: voxels), the centre of mass (``XM``, ``YM``, in pixels,
as in 2D; the z centre is not one of the 2D parameters) and the intensity parameters are measured; every other parameter of
:data:`~noisestat.measure.PARAMETERS` is NaN, so eps is computed for the volume, the centre and
the counts (``N_tot``, ``A_tot``) and the verdict rests on them.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ._matching import label_counts
from ._morphometry import INTENSITY_PARAMETERS, PARAMETERS, ObjectMeasurements, intensity_columns

__all__ = ["measure_volume_objects", "VOLUME_PARAMETERS"]

VOLUME_PARAMETERS = ("Area", "XM", "YM") + INTENSITY_PARAMETERS


def measure_volume_objects(label_volume: np.ndarray, intensity: np.ndarray | None = None) -> ObjectMeasurements:
    """One row per object of a 3D label volume (ids ascending): voxel count, centre of mass and, with
    the volume's ``intensity``, the intensity parameters over its voxels; the other columns NaN
    (module docstring).

    Examples
    --------
    >>> import numpy as np
    >>> v = np.zeros((3, 4, 5), int); v[1, 1:3, 2:5] = 7
    >>> m = measure_volume_objects(v)
    >>> m.labels.tolist(), m.column("Area").tolist(), m.column("XM").tolist()
    ([7], [6.0], [3.5])
    """
    labels = np.asarray(label_volume)
    if labels.ndim != 3 or not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"a label volume must be a 3D array of integers; got shape {labels.shape}, dtype {labels.dtype}")
    if labels.size and labels.min() < 0:
        raise InputError(f"label ids must be >= 0; got {labels.min()}")
    counts = label_counts(labels)
    ids = np.flatnonzero(counts)
    ids = ids[ids > 0].astype(np.int64)
    values = np.full((len(ids), len(PARAMETERS)), np.nan)
    if len(ids):
        values[:, PARAMETERS.index("Area")] = counts[ids]
        # Sums of the x and y coordinates per id, plane by plane: a volume-sized float array of
        # weights (what scipy's center_of_mass needs) would be 8 bytes per voxel.
        rows, cols = labels.shape[1:]
        y, x = np.indices((rows, cols)).reshape(2, -1)
        sx = np.zeros(len(counts))
        sy = np.zeros(len(counts))
        for plane in labels:
            flat = plane.ravel()
            sx += np.bincount(flat, weights=x, minlength=len(counts))
            sy += np.bincount(flat, weights=y, minlength=len(counts))
        # pixel centres at +0.5, as the 2D parameters' ImageJ convention
        values[:, PARAMETERS.index("XM")] = sx[ids] / counts[ids] + 0.5
        values[:, PARAMETERS.index("YM")] = sy[ids] / counts[ids] + 0.5
        if intensity is not None:
            compact = np.zeros(len(counts), dtype=np.int64)
            compact[ids] = np.arange(1, len(ids) + 1)
            for name, column in intensity_columns(compact[labels], len(ids), intensity).items():
                values[:, PARAMETERS.index(name)] = column
    return ObjectMeasurements(labels=ids, values=values)
