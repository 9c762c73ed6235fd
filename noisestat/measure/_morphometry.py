"""Per-object morphological parameters with ImageJ's exact definitions.

The parameters and their column names are those of ImageJ's *Analyze Particles*
(area, centre of mass, perimeter, fitted ellipse, shape descriptors, Feret
diameters) plus the extra shape descriptors of the BioVoxxel *Extended Particle
Analyzer* (``FeretAR``, ``Compact``, ``Extent``), so that tables written here can
be compared column by column with tables written by ImageJ.

Geometry follows ImageJ: pixel ``(x, y)`` (``x`` = column, ``y`` = row, ``y``
pointing down) covers the unit square ``[x, x+1] x [y, y+1]``; the outline of an
object is the polygon on pixel corners that ImageJ's wand traces around the
object's *outer* boundary (holes are not traced, as with "include holes" off),
while the area and the moments count only the object's own pixels.

The definitions were checked against ImageJ's sources ``ij/gui/Wand.java``
(``autoOutline``/``traceEdge``), ``ij/gui/PolygonRoi.java``
(``getTracedPerimeter``), ``ij/process/EllipseFitter.java``,
``ij/process/FloatPolygon.java`` (``getConvexHull``) and ``ij/gui/Roi.java``
(``getFeretValues``); the code below is an independent implementation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from noisestat.errors import InputError

__all__ = [
    "ANGULAR_PARAMETERS",
    "INTENSITY_PARAMETERS",
    "PARAMETERS",
    "SHAPE_PARAMETERS",
    "intensity_columns",
    "ObjectMeasurements",
    "measure_objects",
]

SHAPE_PARAMETERS: tuple[str, ...] = (
    "Area", "XM", "YM", "Perim.", "Major", "Minor", "Angle", "Circ.", "Feret",
    "FeretX", "FeretY", "FeretAngle", "MinFeret", "AR", "Round", "Solidity",
    "FeretAR", "Compact", "Extent",
)
"""The 19 morphological parameters: column names exactly as ImageJ (and BioVoxxel) write them."""

INTENSITY_PARAMETERS: tuple[str, ...] = ("Mean", "StdDev", "Median", "Min", "Max", "IntDen", "RawIntDen")
"""ImageJ's intensity measurements of an object's pixels, with ImageJ's names: the mean, the sample
standard deviation (0 for one pixel), the median (the middle value; the mean of the two middle ones
for an even count), the minimum and maximum, IntDen = Area x Mean and RawIntDen = the sum of the
values (equal here: Area is in pixels). Measured on the image's own pixels in the units given
(noisestat gives electrons above the camera's offset); NaN when no image is given."""

PARAMETERS: tuple[str, ...] = SHAPE_PARAMETERS + INTENSITY_PARAMETERS
"""Every per-object column, in table order: the shape parameters, then the intensity ones."""

ANGULAR_PARAMETERS: tuple[str, ...] = ("Angle", "FeretAngle")
"""Columns holding angles in degrees, defined modulo 180 degrees."""

_COLUMN = {name: i for i, name in enumerate(PARAMETERS)}

# ImageJ's traced perimeter counts every side of the crack outline as 1 and takes
# (2 - sqrt 2) off for each "corner" vertex, so that a staircase costs sqrt 2 per step.
_CORNER_CUT = 2.0 - math.sqrt(2.0)

# Walking directions of the wand, as numbered in ImageJ's Wand.traceEdge:
# 0 = +x (right), 1 = -y (up on screen), 2 = -x (left), 3 = +y (down on screen).
# From a vertex (x, y) -- the corner shared by pixels (x-1, y-1), (x, y-1),
# (x-1, y) and (x, y) -- "the pixel in direction d" is (x, y), (x, y-1),
# (x-1, y-1), (x-1, y) for d = 0, 1, 2, 3.  A vertex's neighbourhood is coded as a
# 4-bit number with bit d set when the pixel in direction d belongs to the object.
#
# 8-connected rule of traceEdge: coming in with direction d, try to turn to d+1,
# else go straight on (d), else turn to d-1.  Tabulated as _NEXT_DIRECTION[code*4 + d].
_NEXT_DIRECTION = []
for _code in range(16):
    for _d in range(4):
        if _code >> ((_d + 1) & 3) & 1:
            _NEXT_DIRECTION.append((_d + 1) & 3)
        elif _code >> _d & 1:
            _NEXT_DIRECTION.append(_d)
        else:
            _NEXT_DIRECTION.append((_d + 3) & 3)
_NEXT_DIRECTION = tuple(_NEXT_DIRECTION)
del _code, _d

# Beyond this many (label value / pixel count) the labels are compacted with
# np.unique instead of a look-up table indexed by label value.
_SPARSE_LABEL_FACTOR = 4


@dataclass(frozen=True, eq=False)
class ObjectMeasurements:
    """Table of morphological parameters, one row per object.

    Attributes
    ----------
    labels : numpy.ndarray
        ``(n_objects,)`` int64 label ids, ascending.
    values : numpy.ndarray
        ``(n_objects, len(names))`` float64, columns in ``names`` order.
    names : tuple of str
        The columns: :data:`PARAMETERS` for an image's objects, a volume's own set
        (:data:`~noisestat.measure.VOLUME_PARAMETERS`) for a volume's.
    classes : numpy.ndarray, optional
        ``(n_objects,)`` uint8: each object's class (2, 3, ...) when the model tells several classes of
        object apart; None otherwise.

    Notes
    -----
    Both arrays are made read-only, so that the frozen dataclass is immutable in
    practice too.  Equality is identity (``eq=False``): element-wise comparison of
    arrays has no single truth value.
    """

    labels: np.ndarray
    values: np.ndarray
    names: tuple = PARAMETERS
    classes: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.labels.setflags(write=False)
        self.values.setflags(write=False)
        if self.classes is not None:
            self.classes.setflags(write=False)

    def column(self, name: str) -> np.ndarray:
        """Return one parameter for all objects.

        Parameters
        ----------
        name : str
            A column name from ``names``, e.g. ``"Perim."``.

        Returns
        -------
        numpy.ndarray
            ``(n_objects,)`` float64 view of that column (read-only).

        Raises
        ------
        KeyError
            If `name` is not one of ``names``.
        """
        try:
            index = _COLUMN[name] if self.names is PARAMETERS else self.names.index(name)
        except (KeyError, ValueError):
            raise KeyError(
                f"unknown parameter {name!r}; expected one of {', '.join(self.names)}"
            ) from None
        return self.values[:, index]

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def measure_objects(label_image: np.ndarray, intensity: np.ndarray | None = None) -> ObjectMeasurements:
    """Measure every object of a label image with ImageJ's definitions.

    Parameters
    ----------
    label_image : numpy.ndarray
        2-D integer array; 0 is background and each positive id is one object
        (the caller has labelled 8-connected components; an object may contain
        holes).
    intensity : numpy.ndarray, optional
        The image's values, same shape, for :data:`INTENSITY_PARAMETERS` (NaN without it).

    Returns
    -------
    ObjectMeasurements
        One row per object, in ascending id order; an image without objects gives
        an empty ``(0, len(PARAMETERS))`` table.

    Raises
    ------
    InputError
        If `label_image` is not a 2-D array of integers, or holds negative ids
        or ids beyond the int64 range.

    Notes
    -----
    Area, centre of mass and ellipse use all pixels carrying the id.  The outline
    (perimeter, convex hull, Feret diameters, solidity) is ImageJ's 8-connected
    wand trace started from the id's first pixel in raster order, so for an id
    that is not one 8-connected component only the component holding that pixel
    is outlined -- what ImageJ would do with a selection started there.
    """
    labels_img, ids, areas = _compact_labels(_validated(label_image))
    n_objects = ids.shape[0]
    values = np.zeros((n_objects, len(PARAMETERS)), dtype=np.float64)
    if n_objects == 0:
        return ObjectMeasurements(labels=ids, values=values)
    for name, column in intensity_columns(labels_img, n_objects, intensity).items():
        values[:, _COLUMN[name]] = column

    slices = ndimage.find_objects(labels_img)
    row0 = np.array([s[0].start for s in slices], dtype=np.int64)
    row1 = np.array([s[0].stop for s in slices], dtype=np.int64)
    col0 = np.array([s[1].start for s in slices], dtype=np.int64)
    col1 = np.array([s[1].stop for s in slices], dtype=np.int64)

    area = areas.astype(np.float64)
    xm, ym, major, minor, angle = _ellipses(labels_img, n_objects, areas, row0, col0)

    # The outline-based parameters need one trace per object; everything in the
    # loop is proportional to the outline length, apart from the vectorised
    # comparison that builds the object's mask on its bounding box.
    padded = np.pad(labels_img, 1)
    outline = np.empty((n_objects, 7), dtype=np.float64)
    # The outline's values are a function of the object's mask on its bounding box (the Feret
    # start point is shifted by the box's corner afterwards), and segmentations repeat masks: of
    # the 1539 objects of the real phase-contrast set3's forest segmentation, 753 are single pixels
    # and 442 masks are distinct. Each distinct mask is traced once.
    traced: dict = {}
    for k in range(n_objects):
        # Bounding box grown by one pixel on each side, in padded coordinates.
        mask = padded[row0[k]:row1[k] + 2, col0[k]:col1[k] + 2] == k + 1
        key = (mask.shape, mask.tobytes())
        values_k = traced.get(key)
        if values_k is None:
            xs, ys = _trace_outline(mask)
            hx, hy = _imagej_convex_hull(xs, ys)
            values_k = traced[key] = (_traced_perimeter(xs, ys), _shoelace_area(hx, hy), *_feret_values(hx, hy))
        perimeter_k, hull_k, feret, feret_x, feret_y, feret_angle, min_feret = values_k
        outline[k] = (perimeter_k, hull_k, feret, feret_x + col0[k], feret_y + row0[k], feret_angle, min_feret)

    perimeter = outline[:, 0]
    hull_area = outline[:, 1]
    feret = outline[:, 2]
    min_feret = outline[:, 6]
    box_area = ((row1 - row0) * (col1 - col0)).astype(np.float64)

    columns = {
        "Area": area,
        "XM": xm,
        "YM": ym,
        "Perim.": perimeter,
        "Major": major,
        "Minor": minor,
        "Angle": angle,
        "Circ.": np.minimum(1.0, 4.0 * np.pi * area / perimeter**2),
        "Feret": feret,
        "FeretX": outline[:, 3],
        "FeretY": outline[:, 4],
        "FeretAngle": outline[:, 5],
        "MinFeret": min_feret,
        "AR": major / minor,
        "Round": 4.0 * area / (np.pi * major**2),
        "Solidity": area / hull_area,
        "FeretAR": feret / min_feret,
        "Compact": np.sqrt(4.0 * area / np.pi) / major,
        "Extent": area / box_area,
    }
    for name, column in columns.items():
        values[:, _COLUMN[name]] = column
    return ObjectMeasurements(labels=ids, values=values)


def intensity_columns(compact: np.ndarray, n_objects: int, intensity: np.ndarray | None) -> dict:
    """:data:`INTENSITY_PARAMETERS` of objects labelled 1..``n_objects`` in ``compact`` (any number of
    axes), from ``intensity`` (same shape: an array, or an object with ``shape`` and ``at(mask)``, the
    values where the boolean ``mask`` is true, so that only the objects' pixels are read or converted);
    NaN columns without it.

    Examples
    --------
    >>> lab = np.array([[1, 1, 0], [0, 2, 2]]); img = np.array([[1.0, 3.0, 9.0], [9.0, 5.0, 5.0]])
    >>> {k: v.tolist() for k, v in intensity_columns(lab, 2, img).items()}["StdDev"]
    [1.4142135623730951, 0.0]
    """
    if intensity is None:
        return {name: np.full(n_objects, np.nan) for name in INTENSITY_PARAMETERS}
    # an intensity with ``at(mask)`` (the pixels' values where ``mask`` is true) converts only those
    at = getattr(intensity, "at", None)
    if at is None:
        intensity = np.asarray(intensity)
    if tuple(intensity.shape) != compact.shape:
        raise InputError(f"the intensity image has shape {tuple(intensity.shape)}; the labels have {compact.shape}")
    # only the objects' pixels, in float64: a volume's background is never copied or converted
    inside = compact > 0
    lab = compact[inside].astype(np.int64)
    val = (intensity[inside] if at is None else at(inside)).astype(np.float64)
    del inside
    count = np.bincount(lab, minlength=n_objects + 1)[1:].astype(np.float64)
    total = np.bincount(lab, weights=val, minlength=n_objects + 1)[1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    # the sum of squared deviations from each object's own mean (not sum2 - sum^2/n: no cancellation)
    dev2 = np.bincount(lab, weights=(val - mean[lab - 1]) ** 2, minlength=n_objects + 1)[1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.where(count > 1, np.sqrt(dev2 / np.maximum(count - 1, 1)), 0.0)
    # the order statistics from one sort of the objects' pixels by (object, value): each object's values
    # are one run, its minimum first, its maximum last, its median in the middle (the mean of the two
    # middle ones for an even count, as ImageJ's and scipy's median)
    order = np.lexsort((val, lab))
    ranked = val[order]
    del order
    n = count.astype(np.int64)
    start = np.concatenate([[0], np.cumsum(n)[:-1]])
    present = n > 0
    low = np.full(n_objects, np.nan)
    high = np.full(n_objects, np.nan)
    median = np.full(n_objects, np.nan)
    s, k = start[present], n[present]
    low[present] = ranked[s]
    high[present] = ranked[s + k - 1]
    median[present] = 0.5 * (ranked[s + (k - 1) // 2] + ranked[s + k // 2])
    return {"Mean": mean, "StdDev": sd, "Median": median, "Min": low, "Max": high,
            "IntDen": count * mean, "RawIntDen": total}


def _validated(label_image: np.ndarray) -> np.ndarray:
    """Check that the input is a 2-D array of non-negative integers."""
    array = np.asarray(label_image)
    if array.ndim != 2:
        raise InputError(
            f"label_image must be a 2-D array, got {array.ndim} dimension(s) "
            f"of shape {array.shape}"
        )
    if not np.issubdtype(array.dtype, np.integer):
        raise InputError(
            f"label_image must hold integer labels, got dtype {array.dtype}"
        )
    if array.size and array.min() < 0:
        raise InputError(
            f"label_image must hold labels >= 0, got minimum {array.min()}"
        )
    if array.size and array.max() > np.iinfo(np.int64).max:
        raise InputError(
            f"label_image labels must fit in int64, got maximum {array.max()}"
        )
    return array


def _compact_labels(array: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Renumber the ids present to 1..n, keeping their order.

    Returns the renumbered image (int32 or int64), the original ids (int64,
    ascending) and the pixel count of each id (int64).  Compacting keeps
    ``find_objects`` and the per-label sums small when ids are sparse.
    """
    if array.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return np.zeros(array.shape, dtype=np.int32), empty, empty
    max_label = int(array.max())
    if max_label == 0:
        empty = np.zeros(0, dtype=np.int64)
        return np.zeros(array.shape, dtype=np.int32), empty, empty
    if max_label <= _SPARSE_LABEL_FACTOR * array.size:
        counts = np.bincount(array.ravel().astype(np.intp, copy=False))
        ids = np.flatnonzero(counts[1:]) + 1
        n = ids.shape[0]
        dtype = np.int32 if n < np.iinfo(np.int32).max else np.int64
        lookup = np.zeros(max_label + 1, dtype=dtype)
        lookup[ids] = np.arange(1, n + 1, dtype=dtype)
        compact = lookup[array]
        areas = counts[ids]
    else:
        unique, inverse, counts = np.unique(
            array.ravel(), return_inverse=True, return_counts=True
        )
        has_background = unique[0] == 0
        ids = unique[1:] if has_background else unique
        areas = counts[1:] if has_background else counts
        n = ids.shape[0]
        dtype = np.int32 if n < np.iinfo(np.int32).max else np.int64
        inverse = inverse.reshape(array.shape).astype(dtype)
        compact = inverse if has_background else inverse + 1
    return compact, ids.astype(np.int64), areas.astype(np.int64)


def _ellipses(labels_img: np.ndarray, n_objects: int, areas: np.ndarray,
              row0: np.ndarray, col0: np.ndarray):
    """Centre of mass and ImageJ's best-fitting ellipse of every object.

    Sums of x, y, x^2, y^2, xy are taken over all pixels at once with
    ``np.bincount``, in coordinates relative to each object's bounding box, so
    they stay integers exactly representable in float64 (below 2**53 for objects
    of up to millions of pixels).  The central moments are then formed in exact
    integer arithmetic, so that a symmetric object gets exactly equal moments and
    the isotropic case (Angle 0, Major == Minor) is not decided by rounding.

    Returns
    -------
    tuple of numpy.ndarray
        XM, YM, Major, Minor, Angle, each ``(n_objects,)`` float64.
    """
    flat = labels_img.ravel()
    foreground = np.flatnonzero(flat)
    lab = flat[foreground]
    y, x = np.divmod(foreground, labels_img.shape[1])
    # Index 0 of the per-label arrays is the background, hence the leading 0.
    x = (x - np.concatenate(([0], col0))[lab]).astype(np.float64)
    y = (y - np.concatenate(([0], row0))[lab]).astype(np.float64)
    size = n_objects + 1

    def _sum(weights):
        sums = np.bincount(lab, weights=weights, minlength=size)[1:]
        # Exact integers; object dtype gives unbounded Python-int products below.
        return np.rint(sums).astype(np.int64).astype(object)

    n = areas.astype(object)
    sx, sy = _sum(x), _sum(y)
    sxx, syy, sxy = _sum(x * x), _sum(y * y), _sum(x * y)

    # n^2 times the central moments of the pixel centres, exact.
    dxx = n * sxx - sx * sx
    dyy = n * syy - sy * sy
    dxy = n * sxy - sx * sy
    # 12 n^2 times the covariance of the pixels as unit squares (each square adds
    # 1/12 to the xx and yy moments, as in ImageJ's EllipseFitter), still exact.
    n2 = n * n
    a = 12 * dxx + n2
    b = 12 * dyy + n2
    c = 12 * dxy
    det = a * b - c * c

    xm = col0 + (sx / n).astype(np.float64) + 0.5
    ym = row0 + (sy / n).astype(np.float64) + 0.5

    af = a.astype(np.float64)
    bf = b.astype(np.float64)
    cf = c.astype(np.float64)
    # Larger eigenvalue without cancellation; the smaller one follows from the
    # exact determinant, so that long thin objects keep an accurate ratio.
    l1 = 0.5 * (af + bf) + np.hypot(0.5 * (af - bf), cf)
    ratio = l1 * l1 / det.astype(np.float64)
    isotropic = (a == b) & (c == 0)
    ratio[isotropic.astype(bool)] = 1.0
    sqrt_ratio = np.sqrt(ratio)

    # Ellipse with the moments' axis ratio, rescaled to the object's area:
    # pi/4 * Major * Minor == Area.
    scale = 4.0 * areas.astype(np.float64) / np.pi
    major = np.sqrt(scale * sqrt_ratio)
    minor = np.sqrt(scale / sqrt_ratio)

    # Major-axis direction: atan2(2 u11, u20 - u02) / 2 in image coordinates
    # (y down); ImageJ reports it counter-clockwise as seen on screen, hence the
    # sign change.  Exactly isotropic objects give atan2(0, 0) = 0, as in ImageJ.
    two_dxy = (2 * dxy).astype(np.float64)
    diff = (dxx - dyy).astype(np.float64)
    angle = -0.5 * np.arctan2(two_dxy, diff) * (180.0 / np.pi)
    angle = _wrap_degrees(angle)
    return xm, ym, major, minor, angle


def _wrap_degrees(angle: np.ndarray) -> np.ndarray:
    """Reduce angles to [0, 180); guards np.mod(-tiny, 180) rounding to 180.0."""
    angle = np.mod(angle, 180.0)
    return np.where(angle >= 180.0, angle - 180.0, angle) + 0.0


def _trace_outline(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Trace an object's outer outline the way ImageJ's wand does.

    No library reproduces ImageJ's traced polygon -- its vertex set, start vertex
    and direction, which the traced perimeter depends on -- so the tracer is
    written here, following the rules of ImageJ's ``Wand.autoOutline`` and
    ``Wand.traceEdge`` in 8-connected mode:

    * start from the object's first pixel in raster order, move right to the end
      of its run; the boundary between the last run pixel and the pixel after it
      has just been walked downwards (direction 3), so tracing starts at the lower
      end of that boundary;
    * at each vertex turn to direction d+1 if that pixel is inside, else go
      straight on if that pixel is inside, else turn to d-1;
    * record a vertex only where the direction changes; stop on returning to the
      start vertex with the start direction.

    Parameters
    ----------
    mask : numpy.ndarray
        2-D bool, the object's pixels on its bounding box grown by one background
        pixel on every side (so that the first row and column are empty and the
        object's first pixel in raster order lies in row 1).

    Returns
    -------
    xs, ys : numpy.ndarray
        int64 vertex coordinates in the order ImageJ lists them, relative to the
        top-left corner of the (un-grown) bounding box.
    """
    m = mask.astype(np.uint8)
    # Vertex (j, i) of the (h+1, w+1) vertex grid is the corner between padded
    # pixels (j-1.., i-1..) and (j.., i..); it sits at bounding-box corner (j, i).
    code = (m[1:, 1:] | (m[:-1, 1:] << 1) | (m[:-1, :-1] << 2) | (m[1:, :-1] << 3))
    stride = code.shape[1]
    codes = code.ravel().tolist()

    first_row = mask[1]
    run_start = int(np.argmax(first_row))
    run_stop = run_start + int(np.argmin(first_row[run_start:]))
    # run_stop is the padded column of the first outside pixel; its left edge is
    # vertex column run_stop - 1, and the walk starts one vertex row down.
    start = stride + run_stop - 1

    steps = (1, -stride, -1, stride)
    table = _NEXT_DIRECTION
    position = start
    direction = 3
    vertices = []
    append = vertices.append
    while True:
        new_direction = table[(codes[position] << 2) | direction]
        if new_direction != direction:
            append(position)
        position += steps[new_direction]
        direction = new_direction
        if position == start and direction == 3:
            break
    ys, xs = np.divmod(np.asarray(vertices, dtype=np.int64), stride)
    return xs, ys


def _traced_perimeter(xs: np.ndarray, ys: np.ndarray) -> float:
    """ImageJ's perimeter of a traced polygon (PolygonRoi.getTracedPerimeter).

    The sides are summed, and (2 - sqrt 2) is subtracted per corner: walking the
    vertices from the first, a vertex counts as a corner if its incoming side is
    longer than one pixel or if the previous vertex did not count (the first
    vertex always counts).  Within a run of unit sides every other vertex counts,
    which is computed here from the distance to the run's last reset.
    """
    sides = np.abs(xs - _previous(xs)) + np.abs(ys - _previous(ys))
    index = np.arange(sides.shape[0])
    reset = sides > 1
    reset[0] = True
    last_reset = np.maximum.accumulate(np.where(reset, index, 0))
    n_corners = np.count_nonzero((index - last_reset) % 2 == 0)
    return float(sides.sum()) - n_corners * _CORNER_CUT


def _imagej_convex_hull(xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Convex hull of the outline vertices, in ImageJ's vertex order.

    ImageJ's ``FloatPolygon.getConvexHull`` (gift wrapping) lists the hull
    without collinear points, starting at the vertex with the smallest y (then
    smallest x) and going counter-clockwise as seen on screen (y down).  The hull
    here is a monotone chain, then put into that order, because the order decides
    which of several equally long Feret diameters ImageJ reports.

    The outline vertices of a pixel object always span a 2-D hull (at least a
    unit square), so the degenerate cases of a hull routine do not arise.
    """
    # Only the leftmost and rightmost vertex of each row can be on the hull.
    width = int(xs.max()) + 1
    py, px = np.divmod(np.unique(ys * width + xs), width)
    new_row = np.flatnonzero(np.diff(py)) + 1
    firsts = np.concatenate(([0], new_row))
    lasts = np.concatenate((new_row - 1, [py.shape[0] - 1]))
    keep = np.unique(np.concatenate((firsts, lasts)))
    points = list(zip(py[keep].tolist(), px[keep].tolist()))  # sorted by (y, x)

    def chain(sequence):
        hull = []
        for p in sequence:
            while len(hull) >= 2:
                (ay, ax), (by, bx) = hull[-2], hull[-1]
                if (by - ay) * (p[1] - ax) - (bx - ax) * (p[0] - ay) > 0:
                    break
                hull.pop()  # clockwise or collinear: not a hull vertex
            hull.append(p)
        return hull

    lower = chain(points)
    upper = chain(reversed(points))
    hull = lower[:-1] + upper[:-1]
    hy = np.array([p[0] for p in hull], dtype=np.int64)
    hx = np.array([p[1] for p in hull], dtype=np.int64)
    # Counter-clockwise on screen = negative signed shoelace sum in (x, y-down).
    if _signed_double_area(hx, hy) > 0:
        hx, hy = hx[::-1], hy[::-1]
    first = int(np.lexsort((hx, hy))[0])
    order = np.arange(first, first + hx.shape[0]) % hx.shape[0]
    return hx[order], hy[order]


def _previous(values: np.ndarray) -> np.ndarray:
    """The cyclic predecessor of each element (np.roll(values, 1), cheaper)."""
    return np.concatenate((values[-1:], values[:-1]))


def _signed_double_area(xs: np.ndarray, ys: np.ndarray) -> int:
    """Twice the signed shoelace area of a closed polygon (exact integers)."""
    return int(np.dot(_previous(xs), ys) - np.dot(xs, _previous(ys)))


def _shoelace_area(xs: np.ndarray, ys: np.ndarray) -> float:
    """Area of a simple closed polygon."""
    return abs(_signed_double_area(xs, ys)) / 2.0


def _feret_values(hx: np.ndarray, hy: np.ndarray) -> tuple[float, float, float, float, float]:
    """Feret diameter, its left end point and angle, and MinFeret (Roi.getFeretValues).

    Parameters
    ----------
    hx, hy : numpy.ndarray
        Convex hull in ImageJ's order (see :func:`_imagej_convex_hull`).

    Returns
    -------
    tuple of float
        Feret, FeretX, FeretY (relative to the coordinates given), FeretAngle in
        degrees in [0, 180), MinFeret.
    """
    n = hx.shape[0]
    dx = hx[:, None] - hx[None, :]
    dy = hy[:, None] - hy[None, :]
    d2 = dx * dx + dy * dy
    d2[np.tril_indices(n)] = -1
    # Ties: the maximum distance is often reached by several pairs.  ImageJ scans
    # pairs (i, j), i < j, in hull order and keeps the first strict maximum;
    # argmax over the row-major upper triangle returns exactly that pair.
    i, j = divmod(int(np.argmax(d2)), n)
    if hx[i] > hx[j]:  # report the left end point (on equal x, the first found)
        i, j = j, i
    x1, y1, x2, y2 = float(hx[i]), float(hy[i]), float(hx[j]), float(hy[j])
    feret = math.sqrt(float(d2.max()))
    angle = (180.0 / math.pi) * math.atan2(y1 - y2, x2 - x1)
    if angle < 0.0:
        angle += 180.0

    # MinFeret: for each hull side (i-1, i), the largest distance of a hull vertex
    # from the side's line; the minimum over the sides.  The unit normal and the
    # dot product are formed in the same order as ImageJ's to match its rounding.
    xf = hx.astype(np.float64)
    yf = hy.astype(np.float64)
    xprev, yprev = _previous(xf), _previous(yf)
    xnorm = yf - yprev
    ynorm = xprev - xf
    factor = 1.0 / np.sqrt(xnorm * xnorm + ynorm * ynorm)
    xnorm = xnorm * factor
    ynorm = ynorm * factor
    dist = (xf[None, :] - xf[:, None]) * xnorm[:, None] + (yf[None, :] - yf[:, None]) * ynorm[:, None]
    max_dist = np.maximum(dist.max(axis=1), 0.0)
    min_feret = float(max_dist.min())
    return feret, x1, y1, angle, min_feret
