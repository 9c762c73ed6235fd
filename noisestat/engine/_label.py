"""Connected components of a mask larger than memory, computed block by block, exactly.

:func:`label_blocks` gives the labels :func:`scipy.ndimage.label` gives on the whole mask (the same
partition and the same ids: 1..n in raster order of each object's first voxel) while no step holds
more than a few blocks of the mask:

1. *Summaries.* Each block is labelled alone (:func:`scipy.ndimage.label`); its task returns only
   the count of its local objects, the raster position of each one's first voxel and the block's
   shell (its first and last plane along every axis). This is a pure function of the block
   (:func:`block_summary`), so it runs as an engine task.
2. *Joins.* Local ids become provisional global ids (each block's offset is the count of the blocks
   before it in raster order). Two blocks that touch (across a face, and for higher connectivity
   across an edge or a corner) contribute the pairs of provisional ids whose voxels are neighbours
   under the structuring element; a union-find merges them. Blocks are visited in raster order and a
   block's shell is dropped once no later block can touch it, so at most two layers of blocks'
   shells are held.
3. *Renumbering.* Each merged object is numbered by the raster position of its first voxel (the
   earliest of its parts' first voxels), which is how :func:`scipy.ndimage.label` numbers.
4. *Output.* Each block is labelled again and its local ids mapped to the final ones
   (:func:`block_labels`, a pure function of the block and its small lookup table); the caller
   writes it into the output, an in-memory array or any writable array (a numpy memmap, a zarr
   array). Labelling a block twice costs less than keeping every block's labels.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..errors import InputError

__all__ = ["label_blocks", "block_summary", "block_labels", "BlockSummary", "executor_map", "block_slices"]

# How many blocks' tasks are handed to ``map`` at once: the results of one batch are held together.
BATCH = 16


@dataclass(frozen=True)
class BlockSummary:
    """What the joins need of one block labelled alone: ``count`` local objects (ids 1..count),
    ``first`` (int64, ``count``) the flat index in the whole mask (C order) of each one's first voxel
    in raster order, and ``shell``: for each axis, the block's local ids on its first and last plane
    along that axis."""

    count: int
    first: np.ndarray
    shell: tuple


def block_slices(shape: tuple, block) -> list[tuple]:
    """The blocks of an array of ``shape``, in raster order: slices of ``block`` voxels a side (one
    value, or one per axis), the last along each axis shorter where ``block`` does not divide it."""
    edges = _block_edges(block, len(shape))
    per_axis = [[slice(s, min(s + b, n)) for s in range(0, n, b)] for n, b in zip(shape, edges)]
    return list(itertools.product(*per_axis))


def _block_edges(block, ndim: int) -> tuple:
    edges = (block,) * ndim if np.ndim(block) == 0 else tuple(block)
    if len(edges) != ndim or any(int(b) != b or b < 1 for b in edges):
        raise InputError(f"block must be a positive whole number of voxels, or one per axis ({ndim}); got {block!r}")
    return tuple(int(b) for b in edges)


def _structure(ndim: int, connectivity) -> np.ndarray:
    connectivity = ndim if connectivity is None else connectivity
    if int(connectivity) != connectivity or not 1 <= connectivity <= ndim:
        raise InputError(f"connectivity must be a whole number from 1 (faces) to {ndim} (faces, edges and corners) "
                         f"for a mask of {ndim} axes; got {connectivity!r}")
    return ndimage.generate_binary_structure(ndim, int(connectivity))


def _block_mask(source, region: tuple) -> np.ndarray:
    """The mask on ``region``: ``source(region)`` if it is callable, else ``source[region]``; checked."""
    got = source(region) if callable(source) else source[region]
    got = np.asarray(got)
    shape = tuple(s.stop - s.start for s in region)
    if got.shape != shape:
        raise InputError(f"the mask of block {_describe(region)} must have the shape {shape}; got {got.shape}")
    return got if got.dtype == bool else got != 0


def _describe(region: tuple) -> str:
    return "[" + ", ".join(f"{s.start}:{s.stop}" for s in region) + "]"


def block_summary(source, region: tuple, shape: tuple, structure: np.ndarray) -> BlockSummary:
    """Label the block ``region`` of a mask of ``shape`` alone and summarise it for the joins
    (:class:`BlockSummary`). ``source`` is the mask (anything sliced by a tuple of slices) or a
    callable returning the mask of a region. A pure function of its arguments."""
    labels, count = ndimage.label(_block_mask(source, region), structure=structure)
    flat = labels.reshape(-1)
    # scipy numbers the block's objects 1..count in raster order of their first voxel, so the running
    # maximum of the ids steps up by one exactly at each object's first voxel (no sort needed)
    running = np.maximum.accumulate(flat)
    at = np.flatnonzero(running[1:] != running[:-1]) + 1
    if flat.size and flat[0]:
        at = np.concatenate([[0], at])
    del running
    local = np.unravel_index(at, labels.shape)
    first = np.ravel_multi_index(tuple(c + s.start for c, s in zip(local, region)), shape).astype(np.int64)
    dtype = np.min_scalar_type(count)
    shell = tuple((np.ascontiguousarray(np.take(labels, 0, axis=k), dtype=dtype),
                   np.ascontiguousarray(np.take(labels, -1, axis=k), dtype=dtype)) for k in range(labels.ndim))
    return BlockSummary(int(count), first, shell)


def block_labels(source, region: tuple, structure: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """The block ``region`` labelled alone, its local ids mapped through ``lut`` (``lut[0]`` is 0).
    A pure function of its arguments."""
    labels, _ = ndimage.label(_block_mask(source, region), structure=structure)
    return lut[labels]


def executor_map(executor, name: str = "label block"):
    """A ``map`` for :func:`label_blocks` that runs the blocks' tasks on a
    :class:`~noisestat.engine.Executor` (its workers or its cluster)."""
    def run(fn, arguments):
        return executor.map(fn, list(arguments), [f"{name} {i + 1}" for i in range(len(arguments))])
    return run


def _serial_map(fn, arguments):
    return (fn(*args) for args in arguments)


def _find(parent: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Roots of ``ids``; the ids then point straight at their roots."""
    roots = parent[ids]
    while True:
        up = parent[roots]
        if np.array_equal(up, roots):
            break
        roots = up
    parent[ids] = roots
    return roots


def _union(parent: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """Merge the sets of ``a[i]`` and ``b[i]``; a root is always the smallest id of its set, so the
    forest stays acyclic whatever order the writes land in."""
    while a.size:
        ra, rb = _find(parent, a), _find(parent, b)
        differ = ra != rb
        a, b, ra, rb = a[differ], b[differ], ra[differ], rb[differ]
        if not a.size:
            return
        low, high = np.minimum(ra, rb), np.maximum(ra, rb)
        np.minimum.at(parent, high, low)


def _contact(index_a: tuple, index_b: tuple, shell_a: tuple, shell_b: tuple, structure: np.ndarray):
    """Pairs (local id in a, local id in b) of neighbouring voxels of two touching blocks, from their
    shells. ``delta = index_b - index_a`` is in {-1, 0, 1} per axis and not all 0."""
    delta = tuple(j - i for i, j in zip(index_a, index_b))
    ndim = len(delta)
    moved = [k for k in range(ndim) if delta[k]]
    # the plane of each block facing the other along the first axis they differ on; along other
    # differing axes the contact narrows to the first or last line of that plane
    k0 = moved[0]
    face_a = shell_a[k0][1 if delta[k0] > 0 else 0]
    face_b = shell_b[k0][0 if delta[k0] > 0 else 1]
    rest = [k for k in range(ndim) if k != k0]
    index_a_rest, index_b_rest = [], []
    for k in rest:
        if delta[k] > 0:
            index_a_rest.append(slice(-1, None))
            index_b_rest.append(slice(0, 1))
        elif delta[k] < 0:
            index_a_rest.append(slice(0, 1))
            index_b_rest.append(slice(-1, None))
        else:
            index_a_rest.append(slice(None))
            index_b_rest.append(slice(None))
    face_a, face_b = face_a[tuple(index_a_rest)], face_b[tuple(index_b_rest)]
    pairs = []
    for offset in np.argwhere(structure) - 1:
        if any(offset[k] != delta[k] for k in moved):
            continue
        # lateral shift along the axes the blocks share: voxel x of a meets voxel x + shift of b
        sa, sb = [], []
        for k in rest:
            if delta[k] or offset[k] == 0:
                sa.append(slice(None))
                sb.append(slice(None))
            elif offset[k] > 0:
                sa.append(slice(None, -1))
                sb.append(slice(1, None))
            else:
                sa.append(slice(1, None))
                sb.append(slice(None, -1))
        a, b = face_a[tuple(sa)], face_b[tuple(sb)]
        both = (a != 0) & (b != 0)
        if both.any():
            pairs.append(np.stack([a[both].astype(np.int64), b[both].astype(np.int64)], axis=1))
    if not pairs:
        return np.empty((0, 2), dtype=np.int64)
    pairs = np.concatenate(pairs)
    # distinct pairs through one integer key per pair (np.unique along an axis sorts far slower)
    width = int(pairs[:, 1].max()) + 1
    keys = np.unique(pairs[:, 0] * width + pairs[:, 1])
    return np.stack([keys // width, keys % width], axis=1)


def label_blocks(mask, block, *, connectivity: int | None = None, shape: tuple | None = None, out=None,
                 dtype=None, map=None, batch: int = BATCH):
    """Connected components of a boolean mask, block by block, exactly as on the whole mask.

    Parameters
    ----------
    mask : array-like or callable
        The mask: anything with ``shape`` that a tuple of slices reads (a numpy array or memmap, a
        zarr array), or a callable returning the mask of a region (a tuple of slices), as the tiles
        of :mod:`noisestat.engine` read images; then ``shape`` is required. Nonzero is foreground.
    block : int or tuple of int
        Block edge in voxels (one value, or one per axis); the last block along an axis may be shorter.
    connectivity : int, optional
        1 (faces only) to ``ndim`` (faces, edges and corners; the default, as :func:`label_mask`).
    shape : tuple, optional
        The mask's shape, when ``mask`` is a callable.
    out : writable array, optional
        Where the labels go, block by block (a numpy memmap, a zarr array, ...), of the mask's shape
        and an integer type that holds the count. By default a new numpy array of ``dtype``.
    dtype : numpy dtype, optional
        The new array's type; by default the smallest of uint16, int32 and int64 that holds the count.
    map : callable, optional
        ``map(fn, arguments)`` returns ``fn(*args)`` for each tuple of ``arguments`` in order
        (:func:`executor_map` makes one of an engine executor); by default the blocks run one after
        another in this process.
    batch : int
        Blocks handed to ``map`` at once (their results are held together).

    Returns
    -------
    labels : array
        ``out``, or the new array: 0 background, objects 1..n numbered in raster order of their first
        voxel; equal to ``scipy.ndimage.label(mask, structure)[0]``.
    n : int
        The number of objects.

    Memory: the output, ``batch`` blocks, the shells of two layers of blocks and two integers per
    provisional object; never the whole mask nor its whole labelling in any other form.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import ndimage
    >>> rng = np.random.default_rng(0)
    >>> mask = rng.random((50, 70)) < 0.4
    >>> labels, n = label_blocks(mask, 16)
    >>> expected, n_expected = ndimage.label(mask, structure=np.ones((3, 3)))
    >>> bool(np.array_equal(labels, expected)) and n == n_expected
    True
    """
    if shape is None:
        if callable(mask) or not hasattr(mask, "shape"):
            raise InputError("label_blocks needs shape= when the mask is given as a function of a region")
        shape = tuple(mask.shape)
    shape = tuple(int(n) for n in shape)
    if not shape:
        raise InputError("label_blocks needs a mask of at least one axis; got a scalar")
    structure = _structure(len(shape), connectivity)
    regions = block_slices(shape, block)
    counts_per_axis = [len(range(0, n, b)) for n, b in zip(shape, _block_edges(block, len(shape)))]
    indices = list(itertools.product(*[range(c) for c in counts_per_axis]))
    map = map or _serial_map
    batch = max(int(batch), 1)

    # 1 and 2: summaries, then joins against the earlier neighbours still held
    offsets = np.zeros(len(regions) + 1, dtype=np.int64)
    firsts, pairs = [], []
    held: dict = {}
    neighbours = [d for d in itertools.product((-1, 0, 1), repeat=len(shape)) if any(d)]
    for start in range(0, len(regions), batch):
        part = range(start, min(start + batch, len(regions)))
        summaries = map(block_summary, [(mask, regions[i], shape, structure) for i in part])
        for i, summary in zip(part, summaries):
            index = indices[i]
            offsets[i + 1] = offsets[i] + summary.count
            firsts.append(summary.first)
            for d in neighbours:
                earlier = tuple(a + b for a, b in zip(index, d))
                if earlier in held:
                    j, shell = held[earlier]
                    found = _contact(earlier, index, shell, summary.shell, structure)
                    if found.size:
                        pairs.append(np.stack([found[:, 0] + offsets[j], found[:, 1] + offsets[i]], axis=1))
            held[index] = (i, summary.shell)
            for old in [k for k in held if k[0] < index[0] - 1]:
                del held[old]
    held.clear()
    total = int(offsets[-1])
    parent = np.arange(total + 1, dtype=np.int64)
    if pairs:
        joined = np.concatenate(pairs)
        _union(parent, joined[:, 0], joined[:, 1])
        del joined
    pairs.clear()

    # 3: one id per merged object, in raster order of its first voxel
    roots = _find(parent, np.arange(total + 1, dtype=np.int64))
    first = np.full(total + 1, np.iinfo(np.int64).max, dtype=np.int64)
    if total:
        np.minimum.at(first, roots[1:], np.concatenate(firsts))
    firsts.clear()
    objects = np.flatnonzero(first[1:] < np.iinfo(np.int64).max) + 1  # the roots
    order = objects[np.argsort(first[objects], kind="stable")]
    n = len(order)
    final = np.zeros(total + 1, dtype=np.int64)
    final[order] = np.arange(1, n + 1)
    final = final[roots]

    # 4: each block again, mapped, written
    if out is None:
        dtype = np.dtype(dtype) if dtype is not None else next(
            t for t in (np.dtype(np.uint16), np.dtype(np.int32), np.dtype(np.int64)) if np.iinfo(t).max >= n)
        out = np.zeros(shape, dtype=dtype)
    if tuple(out.shape) != shape:
        raise InputError(f"the output of label_blocks must have the mask's shape {shape}; got {tuple(out.shape)}")
    kind = np.dtype(out.dtype)
    if kind.kind not in "iu" or np.iinfo(kind).max < n:
        raise InputError(f"the output of label_blocks must be an integer type holding {n} objects; got {kind}")
    for start in range(0, len(regions), batch):
        part = range(start, min(start + batch, len(regions)))
        arguments = []
        for i in part:
            lut = np.zeros(int(offsets[i + 1] - offsets[i]) + 1, dtype=kind)
            lut[1:] = final[offsets[i] + 1:offsets[i + 1] + 1]
            arguments.append((mask, regions[i], structure, lut))
        for i, labels in zip(part, map(block_labels, arguments)):
            out[regions[i]] = labels
    return out, n
