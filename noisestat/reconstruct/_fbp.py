"""Filtered back-projection of a stack of projections, row by row, with ``iradon``'s conventions.

The stack is ``(angles, rows, width)`` as the camera wrote it; the sinogram of row ``r`` is
``projections[:, r, :].T``. Each row is filtered and back-projected on its own, exactly as
``skimage.transform.iradon(sinogram, theta, circle=True, filter_name=filter,
interpolation=interpolation)`` does it (same padding, same filter, same sample positions, zero
outside the inscribed circle, the same scale pi / (2 n)); only the order of the work differs:

* all rows of a block are filtered at once with one real FFT along the width;
* the back-projection's sample positions ``t = y cos(theta) - x sin(theta)`` are the same for every
  row, so for a tile of output pixels the interpolation weights of every angle are built once, as a
  sparse matrix (two non-zeros per pixel and angle for linear interpolation, one for nearest), and
  multiplied with the filtered projections of all the block's rows at once (scipy.sparse @ dense);
* two projections 180 degrees apart see every pixel at mirrored positions ``c + t`` and ``c - t``;
  with linear interpolation and the axis on a pixel or half-pixel position, the second is mirrored
  about the axis and added to the first before the back-projection, which halves its work without
  changing the sum (nearest interpolation rounds a halfway position down, which a mirror would turn
  up, so it back-projects every angle);
* when the angles also come in quarter turns (``a, a + 90, a + 180, a + 270``, as 360 k / n with n a
  multiple of 4), a projection at ``a + 90`` puts onto pixel ``(x, y)`` what one at ``a`` puts onto
  ``(y, -x)``: one set of weights, for a quarter of the angles, serves all four (the turned pair is a
  second operand, read back at the turned pixels).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.fft
import scipy.sparse

from ..errors import InputError, ProfileError
from ._filters import FILTERS, filter_response, padded_length

INTERPOLATIONS = ("linear", "nearest")

# Rows filtered and back-projected together: each sparse matrix is built once for this many rows.
ROWS_PER_BLOCK = 32
# Non-zeros of one pixel tile's sparse matrix (about 8 bytes each, plus the positions while it is built).
NONZEROS_PER_TILE = 1 << 22
# Angles filtered together (the complex spectrum of a block of rows is held for this many at a time).
ANGLES_PER_FILTER = 64
# Two angles closer than this to 180 degrees apart (degrees) are treated as exactly opposite.
OPPOSITE_TOLERANCE_DEG = 1e-7


@dataclass(frozen=True)
class _Geometry:
    """What every row of a stack shares: the angles, the axis, the pixels inside the circle."""

    width: int
    angles_deg: np.ndarray          # (n,) as given or 360 k / n
    center: float                   # the axis's column
    default_angles: bool
    primary: np.ndarray             # angles back-projected
    partner: np.ndarray             # for each primary angle, the index of its opposite or -1
    turned: np.ndarray | None       # quarter turns: for each primary angle, its +90 and +270 degree angles
    first: int                      # the first filtered column kept (may be negative)
    columns: int                    # how many filtered columns are kept
    size: int                       # FFT length


def _check_projections(projections, name: str):
    if not (hasattr(projections, "shape") and hasattr(projections, "__getitem__") and hasattr(projections, "dtype")):
        projections = np.asarray(projections)
    shape = tuple(int(n) for n in projections.shape)
    if len(shape) != 3:
        raise InputError(f"{name}: expected a stack of projections (angles, rows, width); got shape {shape}")
    dtype = np.dtype(projections.dtype)
    if dtype.kind not in "uif":
        raise InputError(f"{name}: expected integer or real projection values; got dtype {dtype}")
    if shape[0] < 1 or shape[1] < 1 or shape[2] < 2:
        raise InputError(f"{name}: a stack of shape {shape} has no slice to reconstruct "
                         f"(at least 1 angle, 1 row and a width of 2)")
    return projections, shape


def _angles(angles, count: int, name: str) -> tuple[np.ndarray, bool]:
    if angles is None:
        return 360.0 * np.arange(count) / count, True
    try:
        values = np.asarray(angles, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name}: the angles must be numbers in degrees; got {str(angles)[:60]}") from None
    if values.ndim != 1 or values.size != count:
        raise InputError(f"{name}: {count} projections need {count} angles; got {values.size} "
                         f"(shape {values.shape})")
    if not np.isfinite(values).all():
        raise InputError(f"{name}: the angles hold NaN or infinite values")
    return values, False


def _center(center, width: int, name: str) -> float:
    if center is None:
        return float(width // 2)
    try:
        value = float(center)
    except (TypeError, ValueError):
        raise InputError(f"{name}: the axis centre must be a column number; got {center!r}") from None
    if not (math.isfinite(value) and 0 <= value <= width - 1):
        raise InputError(f"{name}: the axis centre must lie on the projection, between column 0 and "
                         f"{width - 1}; got {center!r}")
    return value


def _opposites(angles_deg: np.ndarray, center: float) -> tuple[np.ndarray, np.ndarray]:
    """Pair each angle with one 180 degrees away (each used once), when the axis lies on a pixel or
    half-pixel position (the mirror of a sample is then a sample)."""
    n = angles_deg.size
    if abs(2 * center - round(2 * center)) > 1e-9:
        return np.arange(n), np.full(n, -1)
    phase = np.mod(angles_deg, 360.0)
    order = np.argsort(phase, kind="stable")
    sorted_phase = phase[order]
    used = np.zeros(n, bool)
    primary, partner = [], []
    for i in range(n):
        if used[i]:
            continue
        used[i] = True
        found = _match(sorted_phase, order, used, (phase[i] + 180.0) % 360.0)
        if found >= 0:
            used[found] = True
        primary.append(i)
        partner.append(found)
    return np.array(primary, dtype=np.intp), np.array(partner, dtype=np.intp)


def _match(sorted_phase, order, used, target: float) -> int:
    """An unused angle within the tolerance of ``target`` degrees (modulo 360), or -1."""
    n = sorted_phase.size
    for guess in (target - 360.0, target, target + 360.0):
        k = int(np.searchsorted(sorted_phase, guess - OPPOSITE_TOLERANCE_DEG))
        while k < n and sorted_phase[k] <= guess + OPPOSITE_TOLERANCE_DEG:
            if not used[order[k]]:
                return int(order[k])
            k += 1
    return -1


def _quarters(angles_deg: np.ndarray, center: float) -> np.ndarray | None:
    """The angles as groups ``(a, a + 90, a + 180, a + 270)`` when every angle belongs to one and the
    axis lies on a pixel or half-pixel position; None otherwise.

    A projection at ``a + 90`` back-projects onto pixel ``(x, y)`` what one at ``a`` back-projects
    onto ``(y, -x)``: one set of weights then serves four angles (two operands, mirrored pairs)."""
    n = angles_deg.size
    if n % 4 or abs(2 * center - round(2 * center)) > 1e-9:
        return None
    phase = np.mod(angles_deg, 360.0)
    order = np.argsort(phase, kind="stable")
    sorted_phase = phase[order]
    used = np.zeros(n, bool)
    groups = []
    for i in order:  # ascending phase: each group starts at its smallest
        if used[i]:
            continue
        used[i] = True
        group = [int(i)]
        for quarter in (1, 2, 3):
            j = _match(sorted_phase, order, used, (phase[i] + 90.0 * quarter) % 360.0)
            if j < 0:
                return None
            used[j] = True
            group.append(j)
        groups.append(group)
    return np.array(groups, dtype=np.intp)


def _geometry(shape, angles, center, filter, interpolation, name: str) -> _Geometry:
    count, _, width = shape
    if filter not in FILTERS:
        raise InputError(f"{name}: unknown filter {filter!r}; choose one of {', '.join(FILTERS)}")
    if interpolation not in INTERPOLATIONS:
        raise InputError(f"{name}: unknown interpolation {interpolation!r}; choose one of "
                         f"{', '.join(INTERPOLATIONS)}")
    angles_deg, default = _angles(angles, count, name)
    axis = _center(center, width, name)
    turned = None
    quarters = _quarters(angles_deg, axis) if interpolation == "linear" else None
    if quarters is not None:
        primary, partner, turned = quarters[:, 0], quarters[:, 2], quarters[:, [1, 3]]
    elif interpolation == "linear":
        primary, partner = _opposites(angles_deg, axis)
    else:  # nearest: a sample halfway between two pixels rounds down, which a mirror would turn up
        primary, partner = np.arange(count), np.full(count, -1)
    radius = width // 2
    first = math.floor(axis - radius) - 2
    last = math.ceil(axis + radius) + 2  # mirrored about the axis onto [first, last] when 2 * axis is whole
    return _Geometry(width, angles_deg, axis, default, primary, partner, turned, first, last - first + 1,
                     padded_length(width))


def describe_fbp(shape, angles=None, center=None, filter: str = "ramp", interpolation: str = "linear", *,
                 name: str = "projections") -> dict:
    """What :func:`fbp` does to a stack of this ``shape`` with these settings, for a provenance record.

    Parameters
    ----------
    shape : tuple of int
        ``(angles, rows, width)`` of the projections.
    angles, center, filter, interpolation, name
        As for :func:`fbp`.

    Returns
    -------
    dict
        ``method``, ``filter``, ``interpolation``, ``center_px`` (the axis's column), ``angles``
        (count, first and last in degrees, and whether they are the default 360 k / n), ``slice``
        (width x width, zero outside the inscribed circle) and ``convention``.

    Examples
    --------
    >>> d = describe_fbp((90, 4, 64))
    >>> d["filter"], d["interpolation"], d["center_px"], d["angles"]["default_360_k_over_n"]
    ('ramp', 'linear', 32.0, True)
    """
    shape = tuple(int(n) for n in shape)
    if len(shape) != 3:
        raise InputError(f"{name}: expected the shape (angles, rows, width); got {shape}")
    geometry = _geometry(shape, angles, center, filter, interpolation, name)
    return {"method": "filtered back-projection", "filter": filter, "interpolation": interpolation,
            "center_px": geometry.center,
            "angles": {"count": int(shape[0]), "first_deg": float(geometry.angles_deg[0]),
                       "last_deg": float(geometry.angles_deg[-1]),
                       "default_360_k_over_n": geometry.default_angles},
            "slice": f"{shape[2]} x {shape[2]}, zero outside the inscribed circle",
            "convention": "skimage.transform.iradon(projections[:, r, :].T, theta, circle=True) per row r, "
                          "the axis at center_px"}


def _row_range(row_slice, rows: int, name: str) -> tuple[int, int]:
    if isinstance(row_slice, (int, np.integer)) and not isinstance(row_slice, bool):
        row_slice = slice(int(row_slice), int(row_slice) + 1)
    if not isinstance(row_slice, slice) or row_slice.step not in (None, 1):
        raise InputError(f"{name}: rows must be a slice of consecutive rows (or one row); got {row_slice!r}")
    start = 0 if row_slice.start is None else int(row_slice.start)
    stop = rows if row_slice.stop is None else int(row_slice.stop)
    if not 0 <= start < stop <= rows:
        raise InputError(f"{name}: rows {start}:{stop} are not within the stack's {rows} rows")
    return start, stop


def _electrons(block: np.ndarray, profile, start: int, stop: int) -> np.ndarray:
    """A block of rows in electrons above the camera's offset, ``(y - offset) / gain`` (per pixel
    with sCMOS maps, each projection being one camera frame), in place."""
    maps = profile.pixel_maps
    if maps is None:
        block -= block.dtype.type(profile.offset_dn)
        block /= block.dtype.type(profile.gain_dn_per_e)
    else:
        block -= np.asarray(maps.offset_dn[start:stop], block.dtype)
        block /= np.asarray(maps.gain_dn_per_e[start:stop], block.dtype)
    return block


def _filtered(block: np.ndarray, geometry: _Geometry, filter: str) -> np.ndarray:
    """The block ``(angles, rows, width)`` filtered along the width; returned as the back-projection's
    operand ``(primary angles * kept columns, rows)``, each opposite angle mirrored and added."""
    n, rows, width = block.shape
    size, first, columns = geometry.size, geometry.first, geometry.columns
    response = filter_response(size, filter).astype(block.dtype)
    keep = np.arange(first, first + columns) % size
    out = np.empty((n, columns, rows), block.dtype)
    for a in range(0, n, ANGLES_PER_FILTER):
        part = block[a:a + ANGLES_PER_FILTER]
        spectrum = scipy.fft.rfft(part, n=size, axis=-1)
        spectrum *= response
        filtered = scipy.fft.irfft(spectrum, n=size, axis=-1)
        out[a:a + ANGLES_PER_FILTER] = filtered[..., keep].transpose(0, 2, 1)
    operand = out[geometry.primary]
    paired = geometry.partner >= 0
    if paired.any():
        # column k of the opposite angle samples the mirror position 2c - k: reversed columns
        operand[paired] += out[geometry.partner[paired], ::-1, :]
    if geometry.turned is not None:  # the quarter-turned angles' operand beside it: (.., 2 * rows)
        turned = out[geometry.turned[:, 0]]
        turned += out[geometry.turned[:, 1], ::-1, :]
        operand = np.concatenate([operand, turned], axis=2)
    return operand.reshape(operand.shape[0] * columns, -1)


def _circle(width: int, symmetric: bool):
    """The pixels back-projected: those of the disc of radius ``width // 2`` about the axis, as iradon's
    grid (``x`` along the slice's rows, ``y`` along its columns, from ``-width // 2``).

    Returns ``x``, ``y`` (float64), ``flat`` (each kept pixel's flat index in the slice), ``kept``
    (which of the pixels are in the slice) and ``turn`` (the index of the pixel ``(y, -x)``, or None).
    With ``symmetric``, the disc is whole, closed under quarter turns (an even width's slice lacks its
    row and column ``+radius``); otherwise it is the slice's pixels only."""
    radius = width // 2
    side = 2 * radius + 1 if symmetric else width
    i, j = np.mgrid[:side, :side] - radius
    inside = (i * i + j * j) <= radius * radius
    x, y = i[inside], j[inside]
    kept = (x + radius < width) & (y + radius < width)
    flat = (x[kept] + radius) * width + (y[kept] + radius)
    turn = None
    if symmetric:
        number = np.full((side, side), -1)
        number[inside] = np.arange(x.size)
        turn = number[y + radius, radius - x]
    return x.astype(np.float64), y.astype(np.float64), flat, kept, turn


def _weights(x, y, geometry: _Geometry, interpolation: str, dtype) -> scipy.sparse.csr_matrix:
    """The sparse matrix ``(pixels, primary angles * kept columns)`` that interpolates every primary
    angle's filtered projection at each pixel's position ``t + c`` and sums over angles."""
    theta = np.deg2rad(geometry.angles_deg[geometry.primary])
    columns = geometry.columns
    # t as iradon computes it, so that a position halfway between two pixels is the same number
    position = np.multiply.outer(y, np.cos(theta))
    position -= np.multiply.outer(x, np.sin(theta))
    shift = geometry.center - geometry.first                # t + shift indexes the kept columns
    whole = float(shift).is_integer()
    if not whole:
        position += shift
    # each angle's first kept column in the operand, and the whole part of the shift
    base = np.arange(theta.size, dtype=np.float64) * columns + (shift if whole else 0.0)
    pixels, count = position.shape
    per_pixel = count if interpolation == "nearest" else 2 * count
    index_type = np.int32 if max(pixels * per_pixel, count * columns) < 2**31 else np.int64
    if interpolation == "nearest":
        # the nearest pixel, halves going down as in interp1d's nearest: the least m with m + 1/2 >= t,
        # checked exactly (t - 1/2 may round onto the next whole number)
        nearest = np.ceil(position - 0.5)
        nearest += nearest + 0.5 < position
        nearest -= nearest - 0.5 >= position
        nearest += base
        indices = nearest.astype(index_type).ravel()
        data = np.ones(indices.size, dtype)
    else:
        # a pixel's entries in any order: first every angle's lower sample, then every upper one
        lower = np.floor(position)
        position -= lower                                   # the upper sample's weight
        lower += base
        indices = np.empty((pixels, 2, count), index_type)
        indices[:, 0] = lower
        np.add(indices[:, 0], 1, out=indices[:, 1])
        data = np.empty((pixels, 2, count), dtype)
        data[:, 1] = position
        np.subtract(1, data[:, 1], out=data[:, 0])
        indices, data = indices.ravel(), data.ravel()
    indptr = np.arange(0, pixels * per_pixel + 1, per_pixel, dtype=index_type)
    return scipy.sparse.csr_matrix((data, indices, indptr), shape=(pixels, count * columns))


def fbp_rows(projections, row_slice, angles=None, center=None, filter: str = "ramp", interpolation: str = "linear",
             dtype=np.float32, *, profile=None, name: str = "projections") -> np.ndarray:
    """Reconstruct a tile of rows: the slices of ``projections[:, row_slice, :]``.

    A pure function of its arguments, so the rows of a stack can be reconstructed as independent
    tasks in any order and on any worker; the slices equal those of :func:`fbp` over the whole stack.

    Parameters
    ----------
    projections : array-like, shape (angles, rows, width)
        The projection stack as the camera wrote it (integers or reals); only the tile's rows are read
        (a memory-mapped array or an ``ImageView`` reads no more).
    row_slice : slice or int
        Consecutive rows (step 1) within the stack, or one row.
    angles, center, filter, interpolation, dtype, profile, name
        As for :func:`fbp`.

    Returns
    -------
    ndarray, shape (len(rows), width, width), ``dtype``

    Raises
    ------
    InputError
        As :func:`fbp`, and for rows outside the stack.
    """
    projections, shape = _check_projections(projections, name)
    geometry = _geometry(shape, angles, center, filter, interpolation, name)
    start, stop = _row_range(row_slice, shape[1], name)
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise InputError(f"{name}: the volume's dtype must be float32 or float64; got {dtype}")
    width = shape[2]
    maps = None if profile is None else profile.pixel_maps
    if maps is not None and tuple(maps.shape) != shape[1:]:
        raise ProfileError(f"{name}: the camera profile's per-pixel maps are {tuple(maps.shape)}; each projection "
                           f"is {shape[1:]} (a crop or binning of the calibrated sensor?)")
    x, y, flat, kept, turn = _circle(width, geometry.turned is not None)
    # only the tile's pixels' non-zeros are held at once
    per_pixel = geometry.primary.size * (1 if interpolation == "nearest" else 2)
    pixels_per_tile = max(64, NONZEROS_PER_TILE // per_pixel)
    scale = dtype.type(np.pi / (2 * shape[0]))
    volume = np.zeros((stop - start, width * width), dtype)
    for r0 in range(start, stop, ROWS_PER_BLOCK):
        r1 = min(stop, r0 + ROWS_PER_BLOCK)
        block = np.array(projections[:, r0:r1, :], dtype=dtype)
        bad = ~np.isfinite(block)
        if bad.any():
            rows = r0 + np.flatnonzero(bad.any(axis=(0, 2)))
            shown = ", ".join(str(int(r)) for r in rows[:5]) + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")
            raise InputError(f"{name}: {int(bad.sum())} pixel(s) of row(s) {shown} hold NaN or infinite values")
        if profile is not None:
            block = _electrons(block, profile, r0, r1)
        operand = _filtered(block, geometry, filter)
        del block
        values = np.empty((x.size, operand.shape[1]), dtype)
        for p0 in range(0, x.size, pixels_per_tile):
            p1 = min(x.size, p0 + pixels_per_tile)
            weights = _weights(x[p0:p1], y[p0:p1], geometry, interpolation, dtype)
            values[p0:p1] = weights @ operand
        if turn is not None:  # the quarter-turned angles' sums, read at the turned pixels
            values = values[:, :r1 - r0] + values[turn, r1 - r0:]
        volume[r0 - start:r1 - start, flat] = values[kept].T
        volume[r0 - start:r1 - start] *= scale
    return volume.reshape(stop - start, width, width)


def fbp(projections, angles=None, center=None, filter: str = "ramp", interpolation: str = "linear", rows=None,
        dtype=np.float32, *, profile=None, name: str = "projections") -> np.ndarray:
    """Filtered back-projection of a projection stack, one slice per row, as ``iradon`` computes it.

    Slice ``r`` equals ``skimage.transform.iradon(projections[:, r, :].T, theta=angles, circle=True,
    filter_name=filter, interpolation=interpolation)`` (to float32 rounding), several times faster.

    Parameters
    ----------
    projections : array-like, shape (angles, rows, width)
        The projection stack as the camera wrote it: projection ``k`` is the camera frame at angle
        ``angles[k]``; its rows run along the rotation axis.
    angles : array-like of float, shape (angles,), optional
        Each projection's angle in degrees; default ``360 k / n`` (a full turn).
    center : float, optional
        The column the rotation axis passes through, from 0 to ``width - 1``; default the centre
        column ``width // 2``. The slice is centred on the axis. With linear interpolation and an
        axis on a pixel or half-pixel position, projections 180 degrees apart share the work.
    filter : {"ramp", "shepp-logan", "cosine", "hamming", "hann"}
        The filter, as ``iradon``'s ``filter_name``.
    interpolation : {"linear", "nearest"}
        How a projection is sampled between pixels, as ``iradon``'s.
    rows : slice, optional
        The rows to reconstruct (consecutive); default all.
    dtype : float32 or float64
        The volume's type, and the precision of the work.
    profile : CameraProfile, optional
        When given, each projection is first converted to electrons above the camera's offset,
        ``(y - offset) / gain`` (per pixel with sCMOS maps).
    name : str
        What to call the stack in messages (its file name).

    Returns
    -------
    volume : ndarray, shape (rows, width, width)
        Zero outside the circle inscribed in each slice.

    Raises
    ------
    InputError
        If the stack is not 3D or not numbers, holds NaN or infinities, the angles do not match the
        projections, the centre lies outside the width, or the filter or interpolation is unknown.

    Examples
    --------
    >>> import numpy as np
    >>> stack = np.ones((90, 2, 32))
    >>> fbp(stack).shape
    (2, 32, 32)
    """
    projections, shape = _check_projections(projections, name)
    start, stop = _row_range(slice(None) if rows is None else rows, shape[1], name)
    return fbp_rows(projections, slice(start, stop), angles, center, filter, interpolation, dtype,
                    profile=profile, name=name)
