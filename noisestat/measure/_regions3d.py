"""3D morphometry per object of a label volume, in physical units, after MorphoLibJ's "Analyze
Regions 3D" (column names and definitions).

Surface area, mean breadth and Euler number are intrinsic volumes estimated from the histogram of
2x2x2 voxel configurations of each object (Ohser & Muecklich, *Statistical Analysis of
Microstructures in Materials Science*, 2000; Legland, Kieu & Devaux, Image Anal. Stereol. 26, 2007;
Lehmann & Legland, Insight Journal, 2012): every 2x2x2 block of the object's padded bounding box has
an 8-bit configuration index, the indices are counted with ``np.bincount`` and each measure is the dot
product of that histogram with a 256-entry lookup table.

* Surface area: Crofton's formula over the 13 lattice directions of the 26-neighbourhood. A block
  counts the voxel pairs (p, p + d) of each direction with exactly one voxel in the object (each pair
  shared with the blocks that also hold it); the surface is ``2 sum_d w_d n_d V_voxel / |d|`` with
  ``|d|`` the physical length of the step and ``w_d`` the fraction of the unit sphere nearer to +-d
  than to any other of the 26 physical directions (their spherical Voronoi cells, computed for the
  given spacing, so the weights follow anisotropic voxels).
* Mean breadth: the width in a direction is the Euler number of the sections by the lattice planes
  normal to it, summed and multiplied by the planes' spacing; 13 plane families (normal to the axes,
  to the face diagonals and to the body diagonals, in index space), weighted by the Voronoi cells of
  their physical normals. Sections are read with the 2D adjacency the 26-connectivity induces
  (8-neighbours in the square and rectangular planes, 6-neighbours in the triangular ones).
* Euler number: 26-connectivity for the object (6 for the background), from the local contributions
  of the cells of the cubical complex (each block's cube, its faces, edges and vertices shared with
  the neighbouring blocks).

Marching cubes on the binary mask is not used: it overestimates the surface of digitized ellipsoids
by 11-14 % with anisotropic voxels (``benchmarks/bench_surface_bias.py``, docs/volumes.md).
The lookup tables are derived here because no maintained Python library offers these estimators
with anisotropic spacing (scikit-image has ``skimage.measure.euler_number`` only; the tests check
the Euler table against it).
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull, SphericalVoronoi

from ..errors import InputError

__all__ = ["measure_regions_3d", "VOLUME_SHAPE_PARAMETERS", "intrinsic_volume_tables", "direction_weights"]

VOLUME_SHAPE_PARAMETERS = (
    "Volume", "SurfaceArea", "MeanBreadth", "Sphericity", "EulerNumber",
    "Centroid.X", "Centroid.Y", "Centroid.Z",
    "Box.X.Min", "Box.X.Max", "Box.Y.Min", "Box.Y.Max", "Box.Z.Min", "Box.Z.Max",
    "Elli.R1", "Elli.R2", "Elli.R3", "Elli.R1/R2", "Elli.R1/R3", "Elli.R2/R3",
    "MaxFeretDiam", "ConvexVolume", "Solidity", "Voxels",
)

# The 8 voxels of a 2x2x2 block, (dz, dy, dx), and the bit each sets in the configuration index.
_CORNERS = np.array(list(itertools.product((0, 1), repeat=3)))           # row k has bit 1 << k
_BITS = 1 << (4 * _CORNERS[:, 0] + 2 * _CORNERS[:, 1] + _CORNERS[:, 2])
# The 13 lattice directions of the 26-neighbourhood, one of each pair +-d, in (z, y, x).
_DIRECTIONS = np.array([d for d in itertools.product((-1, 0, 1), repeat=3)
                        if next((c for c in d if c), 0) > 0])
_SLAB_BLOCKS = 1 << 22          # blocks per slab when the configuration indices are counted


def direction_weights(vectors: np.ndarray) -> np.ndarray:
    """The share of the unit sphere nearer to +-v than to any other of the given directions, for
    each row v of ``vectors`` (physical, one of each pair +-v): the areas of the spherical Voronoi
    cells of the 2n unit vectors +-v / |v|, the two cells of a pair added, divided by 4 pi. The
    shares sum to 1.

    Examples
    --------
    >>> w = direction_weights(np.eye(3))
    >>> np.round(w, 6).tolist()
    [0.333333, 0.333333, 0.333333]
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    points = np.concatenate([unit, -unit])
    voronoi = SphericalVoronoi(points, radius=1.0, threshold=1e-9)
    areas = voronoi.calculate_areas() / (4.0 * np.pi)
    n = len(vectors)
    return areas[:n] + areas[n:]


def _config_sets() -> np.ndarray:
    """(256, 8) bool: which corners of the block each configuration index holds."""
    return (np.arange(256)[:, None] & _BITS[None, :]) > 0


def _corner_index(point) -> int:
    return int(4 * point[0] + 2 * point[1] + point[2])


def _euler_table() -> np.ndarray:
    """Euler number (26-connectivity) per configuration: the block's cube, minus half its 6 faces,
    plus a quarter of its 12 edges, minus an eighth of its 8 vertices, each counted when it holds a
    voxel of the object (a face is shared by 2 blocks, an edge by 4, a vertex by 8)."""
    inside = _config_sets()
    table = inside.any(axis=1).astype(np.float64)
    for axis in range(3):
        for side in (0, 1):
            face = _CORNERS[:, axis] == side
            table -= 0.5 * inside[:, face].any(axis=1)
    for axis in range(3):
        others = [a for a in range(3) if a != axis]
        for u, v in itertools.product((0, 1), repeat=2):
            edge = (_CORNERS[:, others[0]] == u) & (_CORNERS[:, others[1]] == v)
            table += 0.25 * inside[:, edge].any(axis=1)
    table -= inside.sum(axis=1) / 8.0
    return table


def _transition_counts() -> np.ndarray:
    """(256, 13): voxel pairs (p, p + d) inside the block with exactly one voxel in the object, per
    direction, divided by the number of blocks that hold such a pair (4 along an axis, 2 along a
    face diagonal, 1 along a body diagonal)."""
    inside = _config_sets()
    counts = np.zeros((256, len(_DIRECTIONS)))
    for j, d in enumerate(_DIRECTIONS):
        shares = 2 ** int(np.sum(d == 0))
        for p in _CORNERS:
            q = p + d
            if np.all((q >= 0) & (q <= 1)):
                counts[:, j] += inside[:, _corner_index(p)] != inside[:, _corner_index(q)]
        counts[:, j] /= shares
    return counts


def _section_windows():
    """Per plane family (the normal a in index space, one per lattice direction): the windows of its
    planes inside one block, each (corners, edges, share, vertex_share). A window is a rectangle (4
    corners; in the axis planes a 2x2 square shared by 2 blocks) or a triangle (3 corners, in the
    planes normal to a body diagonal)."""
    families = []
    for a in _DIRECTIONS:
        level = _CORNERS @ a
        windows = []
        for k in np.unique(level):
            members = np.flatnonzero(level == k)
            if len(members) < 3:
                continue
            pts = _CORNERS[members]
            if len(members) == 4:
                # the sides of the parallelogram: the pairs that are not its diagonals
                edges = []
                for i, j in itertools.combinations(range(4), 2):
                    rest = [r for r in range(4) if r not in (i, j)]
                    if not np.array_equal(pts[i] + pts[j], pts[rest[0]] + pts[rest[1]]):
                        edges.append((members[i], members[j]))
                share = 2.0 if np.count_nonzero(a) == 1 else 1.0
                windows.append((members, edges, share, 4.0))
            else:
                edges = list(itertools.combinations(members, 2))
                windows.append((members, edges, 1.0, 6.0))
        families.append(windows)
    return families


def _section_euler_counts() -> np.ndarray:
    """(256, 13): per plane family, the Euler number of the sections that fall inside a block: each
    window counts once if it holds a voxel of the object, minus half of each of its sides that holds
    one (a side is shared by 2 windows), plus each voxel divided by the windows around a vertex (4 in
    a rectangular lattice, 6 in a triangular one); a window shared by several blocks is divided
    among them."""
    inside = _config_sets()
    counts = np.zeros((256, len(_DIRECTIONS)))
    for j, windows in enumerate(_section_windows()):
        for members, edges, share, around in windows:
            chi = inside[:, members].any(axis=1).astype(np.float64)
            for u, v in edges:
                chi -= 0.5 * (inside[:, u] | inside[:, v])
            chi += inside[:, members].sum(axis=1) / around
            counts[:, j] += chi / share
    return counts


@lru_cache(maxsize=32)
def intrinsic_volume_tables(spacing: tuple[float, float, float]) -> dict[str, np.ndarray]:
    """The 256-entry lookup tables of surface area, mean breadth and Euler number (26-connectivity)
    for voxels of ``spacing`` (z, y, x): the measure of an object is the dot product of its 2x2x2
    configuration histogram (background padding included) with the table (module docstring).
    """
    s = np.asarray(spacing, dtype=np.float64)
    voxel_volume = float(np.prod(s))
    steps = _DIRECTIONS * s                                    # physical direction vectors
    lengths = np.linalg.norm(steps, axis=1)
    surface = 2.0 * _transition_counts() @ (direction_weights(steps) * voxel_volume / lengths)
    normals = _DIRECTIONS / s                                  # physical normals of the plane families
    plane_spacing = 1.0 / np.linalg.norm(normals, axis=1)
    breadth = _section_euler_counts() @ (direction_weights(normals) * plane_spacing)
    tables = {"SurfaceArea": surface, "MeanBreadth": breadth, "EulerNumber": _euler_table()}
    for table in tables.values():
        table.setflags(write=False)
    return tables


def _configuration_histogram(mask: np.ndarray) -> np.ndarray:
    """Counts of the 256 configuration indices over every 2x2x2 block of ``mask`` (bool, already
    padded with background), slab by slab so that no temporary exceeds a few megabytes."""
    histogram = np.zeros(256, dtype=np.int64)
    plane = mask.shape[1] * mask.shape[2]
    step = max(1, _SLAB_BLOCKS // max(plane, 1))
    for z0 in range(0, mask.shape[0] - 1, step):
        slab = mask[z0:z0 + step + 1]
        index = np.zeros((slab.shape[0] - 1, slab.shape[1] - 1, slab.shape[2] - 1), dtype=np.uint8)
        for (dz, dy, dx), bit in zip(_CORNERS, _BITS):
            part = slab[dz:slab.shape[0] - 1 + dz, dy:slab.shape[1] - 1 + dy, dx:slab.shape[2] - 1 + dx]
            index[part] |= np.uint8(bit)
        histogram += np.bincount(index.ravel(), minlength=256)
    return histogram


def _moments(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """Voxel count, mean index and covariance of the indices (z, y, x) of a box's voxels, summed slab
    by slab so that the coordinate arrays stay small whatever the object's size."""
    count, first, second = 0, np.zeros(3), np.zeros((3, 3))
    step = max(1, _SLAB_BLOCKS // max(mask.shape[1] * mask.shape[2], 1))
    for z0 in range(0, mask.shape[0], step):
        index = np.argwhere(mask[z0:z0 + step]).astype(np.float64)
        index[:, 0] += z0
        count += len(index)
        first += index.sum(axis=0)
        second += index.T @ index
    mean = first / count
    covariance = second / count - np.outer(mean, mean)
    return count, mean, covariance


def _hull(points: np.ndarray) -> tuple[np.ndarray, ConvexHull]:
    """Convex hull of ``points`` (index coordinates); a flat set (a plane, a line, one voxel) is given
    a thickness of 1e-6 along its missing directions so that Qhull accepts it. Returns the indices
    of the points that are hull vertices and the hull."""
    centred = points - points.mean(axis=0)
    spread, axes = np.linalg.eigh(centred.T @ centred)       # ascending; the columns are the axes
    flat = [axes[:, i] for i in range(3) if spread[i] < 1e-9 * max(1.0, spread[2])]
    if not flat:
        hull = ConvexHull(points)
        return hull.vertices, hull
    thick = [points]
    for axis in flat:
        thick += [points + 1e-6 * axis, points - 1e-6 * axis]
    hull = ConvexHull(np.concatenate(thick))
    return np.unique(hull.vertices % len(points)), hull


def _convex_voxels(hull: ConvexHull, shape: tuple[int, int, int]) -> int:
    """Number of voxel centres of a box of ``shape`` (index coordinates from 0) inside ``hull``: per
    row of x, the interval the facets leave open (rows in blocks of about a million row-facet pairs)."""
    normal, offset = hull.equations[:, :3], hull.equations[:, 3]
    tol = 1e-7
    a_x = normal[:, 2]
    safe = np.where(a_x == 0, 1.0, a_x)
    z, y = np.indices(shape[:2]).reshape(2, -1).astype(np.float64)
    step = max(1, (1 << 20) // len(offset))
    total = 0
    for start in range(0, len(z), step):
        rest = offset + np.outer(z[start:start + step], normal[:, 0]) + np.outer(y[start:start + step], normal[:, 1])
        bound = -rest / safe
        upper = np.where(a_x > 0, bound + tol, np.inf).min(axis=1)
        lower = np.where(a_x < 0, bound - tol, -np.inf).max(axis=1)
        open_rows = np.all((a_x != 0) | (rest <= tol), axis=1)
        lo = np.maximum(np.ceil(lower), 0)
        hi = np.minimum(np.floor(upper), shape[2] - 1)
        total += int(np.sum(np.where(open_rows & (hi >= lo), hi - lo + 1, 0)))
    return total


def _max_distance(points: np.ndarray) -> float:
    """Largest distance between two rows of ``points`` (physical), in blocks of rows."""
    best = 0.0
    rows = max(1, (1 << 20) // len(points))
    for start in range(0, len(points), rows):
        block = points[start:start + rows]
        d2 = ((block[:, None, :] - points[None, :, :]) ** 2).sum(axis=2)
        best = max(best, float(d2.max()))
    return float(np.sqrt(best))


def _check(labels, spacing, intensity) -> tuple[np.ndarray, tuple[float, float, float]]:
    labels = np.asarray(labels)
    if labels.ndim != 3 or not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"a label volume must be a 3D array of integers; got shape {labels.shape}, dtype {labels.dtype}")
    if labels.size and labels.min() < 0:
        raise InputError(f"label ids must be >= 0; got {labels.min()}")
    try:
        values = tuple(float(v) for v in spacing)
    except (TypeError, ValueError):
        raise InputError(f"spacing must be three numbers (z, y, x); got {spacing!r}") from None
    if len(values) != 3 or not all(np.isfinite(v) and v > 0 for v in values):
        raise InputError(f"spacing must be three positive numbers (z, y, x); got {spacing!r}")
    if intensity is not None and np.shape(intensity) != labels.shape:
        raise InputError(f"the intensity volume must have the label volume's shape {labels.shape}; "
                         f"got {np.shape(intensity)}")
    return labels, values


def measure_regions_3d(labels: np.ndarray, spacing=(1.0, 1.0, 1.0), intensity: np.ndarray | None = None
                       ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Shape of every object of a 3D label volume, in the physical units of ``spacing`` (z, y, x).

    Returns the object ids (ascending, > 0; ids need not be contiguous) and one float64 column per
    name of :data:`VOLUME_SHAPE_PARAMETERS`, with MorphoLibJ's names and definitions:

    * ``Volume``: voxel count times the voxel volume; ``Voxels``: the voxel count.
    * ``SurfaceArea``, ``MeanBreadth``, ``EulerNumber``: intrinsic volumes from the 2x2x2
      configuration histogram, Crofton estimates over 13 directions weighted for the spacing (module
      docstring); the Euler number with 26-connectivity for the object. The mean breadth of a ball is
      its diameter.
    * ``Sphericity``: ``36 pi Volume^2 / SurfaceArea^3`` (1 for a ball), MorphoLibJ's definition,
      which is the cube of Wadell's sphericity.
    * ``Centroid.X/Y/Z``: the mean of the voxel centres, the centre of voxel (z, y, x) lying at
      ``(z * spacing_z, y * spacing_y, x * spacing_x)`` (MorphoLibJ's convention, without origin).
    * ``Box.X.Min`` ... ``Box.Z.Max``: the bounding box of the voxels themselves in that
      convention: from the lowest centre minus half a voxel to the highest plus half a voxel, so a
      block of n voxels along x spans ``n * spacing_x``.
    * ``Elli.R1 >= Elli.R2 >= Elli.R3``: radii of the equivalent ellipsoid, ``sqrt(5 * lambda)`` for
      the eigenvalues lambda of the covariance of the voxel centres (physical); ``Elli.R1/R2``,
      ``Elli.R1/R3``, ``Elli.R2/R3`` their elongations (NaN where a radius is 0, as for one voxel).
    * ``MaxFeretDiam``: the largest distance between two voxel centres (physical; the pair lies on
      the convex hull of the centres).
    * ``ConvexVolume``: the voxels whose centres lie inside the convex hull of the object's voxel
      centres, times the voxel volume (the volume of the object made convex on the voxel grid, so a
      digitized ball or a box has a ``Solidity`` of 1); ``Solidity``: ``Volume / ConvexVolume``.

    Each object is processed on its bounding box padded by one voxel; the configuration indices are
    counted slab by slab (``uint8``), so the extra memory stays far below the volume's size.
    ``intensity`` is checked for shape only: intensity columns are added by the caller.

    Examples
    --------
    >>> v = np.zeros((4, 6, 6), np.uint16); v[1:3, 1:4, 2:5] = 9
    >>> ids, table = measure_regions_3d(v, spacing=(2.0, 1.0, 1.0))
    >>> ids.tolist(), table["Volume"].tolist(), table["EulerNumber"].tolist()
    ([9], [36.0], [1.0])
    >>> table["Box.Z.Min"].tolist(), table["Box.Z.Max"].tolist(), table["Centroid.Z"].tolist()
    ([1.0], [5.0], [3.0])
    """
    labels, spacing = _check(labels, spacing, intensity)
    columns = {name: np.zeros(0) for name in VOLUME_SHAPE_PARAMETERS}
    if labels.size == 0:
        return np.zeros(0, dtype=np.int64), columns
    slices = ndimage.find_objects(labels)
    ids = np.array([i + 1 for i, box in enumerate(slices) if box is not None], dtype=np.int64)
    columns = {name: np.full(len(ids), np.nan) for name in VOLUME_SHAPE_PARAMETERS}
    if not len(ids):
        return ids, columns
    s = np.asarray(spacing)
    voxel_volume = float(np.prod(s))
    tables = intrinsic_volume_tables(spacing)
    lut = np.stack([tables["SurfaceArea"], tables["MeanBreadth"], tables["EulerNumber"]], axis=1)
    rows = {name: [] for name in VOLUME_SHAPE_PARAMETERS}
    for label in ids:
        box = slices[label - 1]
        origin = np.array([b.start for b in box])
        mask = np.pad(labels[box] == label, 1)
        histogram = _configuration_histogram(mask)
        surface, breadth, euler = histogram @ lut
        count, mean, covariance = _moments(mask[1:-1, 1:-1, 1:-1])
        centroid = (mean + origin) * s
        covariance = covariance * np.outer(s, s)
        eigen = np.sort(np.clip(np.linalg.eigvalsh(covariance), 0, None))[::-1]
        radii = np.sqrt(5.0 * eigen)
        border = mask & ~ndimage.binary_erosion(mask)
        edge_points = np.argwhere(border).astype(np.float64) - 1
        vertices, hull = _hull(edge_points)
        convex = _convex_voxels(hull, tuple(b.stop - b.start for b in box))
        volume = count * voxel_volume
        low = (origin - 0.5) * s
        high = (np.array([b.stop for b in box]) - 0.5) * s
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios = (radii[0] / radii[1], radii[0] / radii[2], radii[1] / radii[2])
            sphericity = 36.0 * np.pi * volume ** 2 / surface ** 3 if surface > 0 else np.nan
        ratios = [float(r) if np.isfinite(r) else np.nan for r in ratios]
        values = {
            "Volume": volume, "SurfaceArea": surface, "MeanBreadth": breadth, "Sphericity": sphericity,
            "EulerNumber": euler,
            "Centroid.X": centroid[2], "Centroid.Y": centroid[1], "Centroid.Z": centroid[0],
            "Box.X.Min": low[2], "Box.X.Max": high[2], "Box.Y.Min": low[1], "Box.Y.Max": high[1],
            "Box.Z.Min": low[0], "Box.Z.Max": high[0],
            "Elli.R1": radii[0], "Elli.R2": radii[1], "Elli.R3": radii[2],
            "Elli.R1/R2": ratios[0], "Elli.R1/R3": ratios[1], "Elli.R2/R3": ratios[2],
            "MaxFeretDiam": _max_distance(edge_points[vertices] * s),
            "ConvexVolume": convex * voxel_volume, "Solidity": count / convex,
            "Voxels": float(count),
        }
        for name in VOLUME_SHAPE_PARAMETERS:
            rows[name].append(values[name])
    columns = {name: np.asarray(rows[name], dtype=np.float64) for name in VOLUME_SHAPE_PARAMETERS}
    return ids, columns
