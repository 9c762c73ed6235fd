"""Globals of a whole volume estimated from a random fraction of its tiles (``--sample F``).

The tiles of a grid are a finite population; :func:`sample_tiles` draws a simple random sample of a
fraction of them without replacement (seeded). An object counts for a sampled tile when it lies
wholly inside the tile (:func:`objects_in_core` on a tile's label image with its halo,
:func:`objects_inside` or :func:`tile_of_objects` on bounding boxes); each object then counts for at
most one tile, and no object is measured from a part.

A global that is a sum over objects (N_tot, V_tot, SA_tot) is the sum of its tiles' totals;
:func:`extrapolate_global` estimates it as ``N * mean`` of the sampled tiles' totals with the
standard error of simple random sampling, finite-population correction included. A ratio of two
such globals (plaque volume / organ volume) is estimated by :func:`extrapolate_ratio` as the ratio of
the sampled sums, with its delta-method (linearised) standard error.

**Objects cut by tile borders.** Counting only whole objects leaves out every object that a tile
border crosses, even when all tiles are sampled, so totals are biased low by the total of the cut
objects, and the bias grows with the objects' size against the tile's: along an axis a tile of ``T``
voxels cuts an object ``e`` voxels long with probability ``(e - 1) / T``, and never holds an object
longer than ``T``. The minus-sampling (Miles-Lantuejoul) correction weights each whole object by the
inverse of the probability that an object of its extent lies wholly inside one tile,
``prod_k (T_k - e_k + 1) / T_k`` (:func:`whole_weights`). It is exactly unbiased when the grid's
origin is drawn uniformly over one tile (``offset`` of :func:`tile_of_objects`), and unbiased on
average over the objects' positions for a fixed grid (the objects do not know where the grid
lies). The correction adds variance (the cut objects are not seen): :func:`whole_weights`'s
``edge_variance`` estimates it, and :func:`extrapolate_global` adds it to the standard error when
given. Objects longer than the tile along any axis can never be whole: they stay missing whatever
the weights, so the tile must exceed the largest object.
"""

from __future__ import annotations

import math

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..errors import InputError

__all__ = ["SampledEstimate", "sample_tiles", "objects_in_core", "objects_inside", "tile_of_objects",
           "whole_weights", "kept_probability", "tile_totals", "extrapolate_global", "extrapolate_ratio"]


@dataclass(frozen=True)
class SampledEstimate:
    """A whole volume's global (or ratio of globals) estimated from ``n_sampled`` of ``n_tiles``
    tiles, and its standard error (``se``; NaN when one tile of several was sampled)."""

    value: float
    se: float
    n_sampled: int
    n_tiles: int

    def interval(self, level: float = 0.95) -> tuple:
        """The ``level`` interval ``value -/+ t se``, t of Student's distribution on ``n_sampled - 1``
        degrees of freedom (with a handful of tiles the normal quantile would be too narrow: 3.18 against
        1.96 at 4 tiles); NaN bounds with one tile.

        Examples
        --------
        >>> lo, hi = SampledEstimate(100.0, 10.0, 4, 40).interval()
        >>> round(lo, 1), round(hi, 1)
        (68.2, 131.8)
        """
        if self.n_sampled < 2:
            return math.nan, math.nan
        from scipy import stats

        t = float(stats.t.isf((1 - level) / 2, self.n_sampled - 1))
        return self.value - t * self.se, self.value + t * self.se


def sample_tiles(n_tiles: int, fraction: float, seed: int | np.random.Generator | None) -> np.ndarray:
    """Indices (sorted, int64) of a simple random sample of ``round(fraction * n_tiles)`` tiles out of
    ``n_tiles``, at least one, without replacement; the same for the same ``seed``.

    Examples
    --------
    >>> sample_tiles(10, 0.3, seed=1).tolist() == sample_tiles(10, 0.3, seed=1).tolist()
    True
    >>> len(sample_tiles(10, 0.01, seed=1))
    1
    """
    if int(n_tiles) != n_tiles or n_tiles < 1:
        raise InputError(f"the number of tiles to sample from must be a whole number >= 1; got {n_tiles!r}")
    if not 0 < fraction <= 1:
        raise InputError(f"--sample must be a fraction of the tiles in (0, 1]; got {fraction!r}")
    n_tiles = int(n_tiles)
    count = min(n_tiles, max(1, int(round(fraction * n_tiles))))
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_tiles, size=count, replace=False)).astype(np.int64)


def objects_in_core(labels: np.ndarray, core: tuple) -> np.ndarray:
    """Ids (sorted) of the objects of a tile's label image ``labels`` (its region: core and halo)
    that lie wholly inside the core ``core`` (slices within ``labels``).

    Such an object is whole in the volume too, provided the region extends at least one voxel past
    the core on every side where the core does not end at the volume's edge (a halo >= 1): a part
    of a larger object would reach that voxel."""
    labels = np.asarray(labels)
    if len(core) != labels.ndim:
        raise InputError(f"the core has {len(core)} axes; the tile's label image has {labels.ndim}")
    boxes = ndimage.find_objects(labels)
    inside = [i + 1 for i, box in enumerate(boxes) if box is not None
              and all(b.start >= c.start and b.stop <= c.stop for b, c in zip(box, core))]
    return np.asarray(inside, dtype=np.int64)


def objects_inside(lo: np.ndarray, hi: np.ndarray, box_lo, box_hi) -> np.ndarray:
    """Which objects (bounding boxes ``lo`` inclusive, ``hi`` exclusive, one row per object) lie
    wholly inside the box ``[box_lo, box_hi)``: a boolean per object."""
    lo, hi = np.atleast_2d(lo), np.atleast_2d(hi)
    return np.all(lo >= np.asarray(box_lo), axis=1) & np.all(hi <= np.asarray(box_hi), axis=1)


def tile_of_objects(lo: np.ndarray, hi: np.ndarray, shape: tuple, tile, *, offset=0) -> tuple:
    """The tile that wholly holds each object (bounding boxes ``lo`` inclusive, ``hi`` exclusive) in
    a grid of ``tile``-voxel tiles over a volume of ``shape``, or -1 for an object a border cuts.

    The grid's borders lie at ``k * tile - offset`` (``offset`` in [0, tile) per axis; 0 is
    :func:`noisestat.engine.tile_grid`'s grid, a uniform random one makes the minus-sampling
    weights exactly unbiased). Tiles are numbered in raster order. Returns ``(index, n_tiles)``."""
    lo, hi = np.atleast_2d(np.asarray(lo, dtype=np.int64)), np.atleast_2d(np.asarray(hi, dtype=np.int64))
    ndim = len(shape)
    tile = np.broadcast_to(np.asarray(tile, dtype=np.int64), (ndim,))
    offset = np.broadcast_to(np.asarray(offset, dtype=np.int64), (ndim,))
    if np.any(tile < 1) or np.any(offset < 0) or np.any(offset >= tile):
        raise InputError(f"tiles must be >= 1 voxel with an offset in [0, tile); got tile {tile.tolist()}, "
                         f"offset {offset.tolist()}")
    first, last = (lo + offset) // tile, (hi - 1 + offset) // tile
    per_axis = -(-(np.asarray(shape, dtype=np.int64) + offset) // tile)
    whole = np.all(first == last, axis=1)
    index = np.full(len(lo), -1, dtype=np.int64)
    if whole.any():
        index[whole] = np.ravel_multi_index(tuple(first[whole].T), tuple(per_axis))
    return index, int(np.prod(per_axis))


def whole_weights(extent: np.ndarray, tile, values=None) -> tuple:
    """Minus-sampling weights of whole objects: ``1 / p`` with ``p = prod_k (T_k - e_k + 1) / T_k``
    the probability that an object of bounding-box extent ``e`` (voxels, one row per object) lies
    wholly inside one tile of edge ``T``, and each object's ``edge_variance`` ``v**2 w (w - 1)``
    (the variance the correction adds, for ``values`` ``v``; 1 per object when counting).
    Returns ``(weights, edge_variance)``."""
    extent = np.atleast_2d(np.asarray(extent, dtype=np.float64))
    tile = np.broadcast_to(np.asarray(tile, dtype=np.float64), extent.shape[1:])
    if np.any(extent < 1) or np.any(extent > tile):
        worst = extent[np.any((extent < 1) | (extent > tile), axis=1)][0]
        raise InputError(f"a whole object's extent must be from 1 voxel to the tile's {tile.tolist()} on every axis; "
                         f"got {worst.tolist()}")
    weights = 1.0 / np.prod((tile - extent + 1) / tile, axis=1)
    values = np.ones(len(extent)) if values is None else np.asarray(values, dtype=np.float64)
    return weights, values ** 2 * weights * (weights - 1)


def tile_totals(values: np.ndarray, tile_index: np.ndarray, sampled: np.ndarray) -> np.ndarray:
    """The sum of ``values`` of the objects of each sampled tile (``tile_index`` per object, -1 for
    objects no tile holds whole), in the order of ``sampled``; 0 for a tile without objects."""
    values, tile_index, sampled = np.asarray(values, dtype=np.float64), np.asarray(tile_index), np.asarray(sampled)
    order = np.argsort(sampled)
    position = np.searchsorted(sampled[order], tile_index)
    hit = (tile_index >= 0) & (position < len(sampled))
    hit[hit] = sampled[order][position[hit]] == tile_index[hit]
    totals = np.zeros(len(sampled))
    np.add.at(totals, order[position[hit]], values[hit])
    return totals


def _check_sample(values: np.ndarray, n_tiles_total: int, what: str) -> tuple:
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    n = len(values)
    if int(n_tiles_total) != n_tiles_total or n_tiles_total < max(n, 1):
        raise InputError(f"{what}: the total number of tiles must be a whole number at least the {n} sampled; "
                         f"got {n_tiles_total!r}")
    if not np.all(np.isfinite(values)):
        raise InputError(f"{what}: every sampled tile's value must be finite")
    return values, n, int(n_tiles_total)


def extrapolate_global(values_per_sampled_tile, n_tiles_total: int, *, edge_variance=None) -> SampledEstimate:
    """The whole volume's total of a global (N_tot, V_tot, SA_tot) from its totals on a simple random
    sample of tiles without replacement: ``N * mean``, standard error
    ``N * sqrt((1 - n / N) * s**2 / n)`` (``s`` the sampled totals' standard deviation, ``N`` tiles in
    all, ``n`` sampled).

    ``edge_variance``, optional, is the sum over each sampled tile's objects of their
    :func:`whole_weights` edge variance; the variance of the minus-sampling correction, ``N / n``
    times their sum, is then added.

    Examples
    --------
    >>> estimate = extrapolate_global([3, 5, 4, 4], 40)
    >>> estimate.value, round(estimate.se, 2)
    (160.0, 15.49)
    """
    values, n, total = _check_sample(values_per_sampled_tile, n_tiles_total, "extrapolate_global")
    if n == 0:
        raise InputError("extrapolate_global needs the values of at least one sampled tile")
    value = total * float(values.mean())
    if n == total:
        variance = 0.0
    elif n == 1:
        variance = np.nan
    else:
        variance = total ** 2 * (1 - n / total) * float(values.var(ddof=1)) / n
    if edge_variance is not None:
        edge = np.asarray(edge_variance, dtype=np.float64).reshape(-1)
        if len(edge) != n:
            raise InputError(f"extrapolate_global: edge_variance needs one value per sampled tile ({n}); got {len(edge)}")
        variance += total / n * float(edge.sum())
    return SampledEstimate(value, float(np.sqrt(variance)), n, total)


def extrapolate_ratio(numerator_per_sampled_tile, denominator_per_sampled_tile,
                      n_tiles_total: int) -> SampledEstimate:
    """A ratio of two globals (total plaque volume / total organ volume) from their totals on the same
    simple random sample of tiles: ``R = sum(y) / sum(x)``, standard error by the delta method,
    ``sqrt((1 - n / N) / n * s_d**2) / mean(x)`` with ``d = y - R x`` (Cochran's ratio estimator;
    its bias is of order ``1 / n``).

    Examples
    --------
    >>> estimate = extrapolate_ratio([1, 2, 3], [10, 20, 30], 10)
    >>> estimate.value, estimate.se
    (0.1, 0.0)
    """
    y, n, total = _check_sample(numerator_per_sampled_tile, n_tiles_total, "extrapolate_ratio")
    x, n_x, _ = _check_sample(denominator_per_sampled_tile, n_tiles_total, "extrapolate_ratio")
    if n_x != n or n == 0:
        raise InputError(f"extrapolate_ratio needs the numerator and denominator of the same sampled tiles; got {n} "
                         f"and {n_x} values")
    if x.sum() <= 0:
        raise InputError("extrapolate_ratio: the denominator's total over the sampled tiles must be positive; "
                         f"got {x.sum()!r}")
    ratio = float(y.sum() / x.sum())
    if n == total:
        se = 0.0
    elif n == 1:
        se = np.nan
    else:
        d = y - ratio * x
        se = float(np.sqrt((1 - n / total) / n * d.var(ddof=1)) / x.mean())
    return SampledEstimate(ratio, se, n, total)


def kept_probability(lo: np.ndarray, hi: np.ndarray, shape: tuple, tile) -> np.ndarray:
    """The probability that an object of each bounding box's extent (``lo`` inclusive, ``hi``
    exclusive, one row per object), placed uniformly at random in a volume of ``shape``, is kept by
    the rule of ``--sample``: it lies inside one tile of :func:`noisestat.engine.tile_grid`'s grid
    (``tile`` voxels a side, the last tiles shorter) without touching that tile's first or last
    layer where a neighbouring tile lies beyond (a face on the volume's edge may be touched).

    Per axis the count of kept starting positions is summed over the tiles, over the ``n - e + 1``
    positions an object of extent ``e`` may take; the axes multiply. The inverse is the object's
    minus-sampling weight: unlike :func:`whole_weights` it counts the volume's edges and the shorter
    last tiles exactly, which matters when a tile is a sizeable share of the volume.

    Examples
    --------
    >>> float(kept_probability([[0]], [[1]], (8,), 4)[0])  # a voxel: kept unless on one of the 2 faces
    0.75
    """
    lo, hi = np.atleast_2d(np.asarray(lo, dtype=np.int64)), np.atleast_2d(np.asarray(hi, dtype=np.int64))
    extent = hi - lo
    p = np.ones(len(lo))
    for axis, n in enumerate(shape):
        starts = np.arange(0, n, int(tile))
        stops = np.minimum(starts + int(tile), n)
        first = np.where(starts == 0, starts, starts + 1)  # the first voxel a kept object may hold
        last = np.where(stops == n, stops - 1, stops - 2)  # and the last
        e = extent[:, axis][:, None]
        kept = np.clip(last[None] - first[None] - e + 2, 0, None).sum(axis=1)
        p *= kept / np.maximum(n - extent[:, axis] + 1, 1)
    return p
