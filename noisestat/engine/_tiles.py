"""Tiles with exact halos: a predictor's mask computed tile by tile equals the whole-image mask.

The image is cut into a grid of ``tile``-pixel cubes (per axis, from the origin). Each tile's
*region* is its core grown by the predictor's halo on every side, clipped to the image: the image's
own edges stay real edges, as in the whole-image computation, and every pixel of the core sees the
same neighbourhood it sees there. The predictor runs on the region; the core of its answer is kept.
Objects are then labelled on the assembled mask, so objects crossing tile borders are whole, with
the ids (raster order of first pixel) the whole-image labelling gives; a mask of more than
:data:`LABEL_BLOCKS_ABOVE` pixels is labelled block by block (:func:`~noisestat.engine.label_blocks`,
the tile edge as the block), with the same ids.

Memory: a region's features dominate (``n_features * 4`` bytes per pixel of tile + halo), so the
default tile is the largest whose feature stack fits :data:`FEATURE_BUDGET_BYTES`.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.segmentation import relabel_sequential

from ..errors import InputError
from ..measure._matching import label_counts
from ..predict._protocol import check_predictor_output, predictor_kind, predictor_name
from ._label import label_blocks

__all__ = ["Tile", "tile_grid", "default_tile", "predict_mask_tiled", "predict_tile", "segment_tiled", "label_mask",
           "multi_class", "object_classes",
           "values_tile", "predict_values_tiled",
           "FEATURE_BUDGET_BYTES", "MIN_TILE", "LABEL_BLOCKS_ABOVE"]

# Features of one region at most this large (bytes): with two workers and the rest of an assessment,
# a 2560 x 2560 image stays within about 1.2 GB in all processes (benchmarks/bench_memory.py). The
# default 2D tile is then 416 px (halo 28): 1.3x the feature work of one whole-image pass.
FEATURE_BUDGET_BYTES = 64 << 20
# Volumes: a 3D halo multiplies a small tile's region many times over (21 px a side around a 32-voxel
# core is 12x the core), so their regions get more room: tile 64, region 106^3, 1.9x the core.
FEATURE_BUDGET_BYTES_3D = 160 << 20
MIN_TILE = 16
_CHUNK = 1 << 22  # pixels per pass of the id lookup in filter_small
# Masks of more pixels than this are labelled block by block (label_blocks): no whole-mask pass of
# scipy's labelling, which writes uint16 and starts again in int32 when an image holds more than
# 65535 objects (a second whole-image array); the blocks' count gives the type first. Below it the
# whole mask is labelled at once, 2 to 3 times faster, and its few arrays are small. 2**24 pixels:
# a 4096 x 4096 image, a 64 x 512 x 512 volume.
LABEL_BLOCKS_ABOVE = 1 << 24
# The block edge when the caller names no tile.
LABEL_BLOCK = {2: 512, 3: 64}
# Tile edge when the predictor does not say how much memory a pixel costs.
GENERIC_TILE = {2: 512, 3: 128}


@dataclass(frozen=True)
class Tile:
    """One tile: its ``core`` and its ``region`` (core + halo, clipped) in image coordinates."""

    index: tuple
    core: tuple
    region: tuple

    @property
    def inner(self) -> tuple:
        """The core's position inside the region."""
        return tuple(slice(c.start - r.start, c.stop - r.start) for c, r in zip(self.core, self.region))

    @property
    def size(self) -> int:
        return int(np.prod([r.stop - r.start for r in self.region]))


def tile_grid(shape: tuple, tile: int, halo: tuple) -> list[Tile]:
    """The tiles of an image of ``shape``: cores of ``tile`` pixels a side (the last ones shorter),
    regions grown by ``halo`` (one value per axis) and clipped to the image."""
    if int(tile) != tile or tile < MIN_TILE:
        raise InputError(f"tile must be a whole number of pixels >= {MIN_TILE}; got {tile}")
    tile = int(tile)
    if len(halo) != len(shape):
        raise InputError(f"halo has {len(halo)} axes; the image has {len(shape)}")
    per_axis = [range(0, max(n, 1), tile) for n in shape]
    tiles = []
    for index, starts in zip(itertools.product(*[range(len(a)) for a in per_axis]), itertools.product(*per_axis)):
        core = tuple(slice(s, min(s + tile, n)) for s, n in zip(starts, shape))
        region = tuple(slice(max(c.start - h, 0), min(c.stop + h, n)) for c, h, n in zip(core, halo, shape))
        tiles.append(Tile(index, core, region))
    return tiles


def default_tile(model, ndim: int) -> int:
    """The largest tile edge (a multiple of 16) whose features fit :data:`FEATURE_BUDGET_BYTES`
    (:data:`FEATURE_BUDGET_BYTES_3D` for volumes), for a predictor that says its feature count
    (``n_features(ndim)``) and halo: the bytes its ``tile_bytes(core, region)`` gives, or 4 per
    feature and pixel of the region; :data:`GENERIC_TILE` otherwise."""
    n_features = model.n_features(ndim) if callable(getattr(model, "n_features", None)) else None
    if not n_features or not callable(getattr(model, "halo", None)):
        return GENERIC_TILE.get(ndim, 128)
    halo = model.halo(ndim)
    edge = MIN_TILE
    while True:
        nxt = edge + 16
        core, region = (nxt,) * ndim, tuple(nxt + 2 * h for h in halo)
        if callable(getattr(model, "tile_bytes", None)):
            need = model.tile_bytes(core, region)
        else:
            need = int(np.prod(region)) * n_features * 4
        budget = FEATURE_BUDGET_BYTES if ndim == 2 else FEATURE_BUDGET_BYTES_3D
        if need > budget or nxt > 4096:
            return edge
        edge = nxt


def _tick(timing: dict | None, key: str, start: float) -> float:
    now = time.perf_counter()
    if timing is not None:
        timing[key] = timing.get(key, 0.0) + now - start
    return now


def predict_mask_tiled(get_region, shape: tuple, model, tile: int, *, timing: dict | None = None,
                       features: dict | None = None, threads: int = 1) -> np.ndarray:
    """The predictor's foreground mask of an image of ``shape``, tile by tile.

    ``get_region(slices)`` returns the image's pixels on a region (the raw image sliced, a replica's
    part drawn with :func:`noisestat.replicas.draw_region`, ...). ``features``, optional, maps a
    tile index to its core's precomputed features (the raw image's, kept from training).
    ``timing`` accumulates seconds of "pixels" (getting regions), "features" and "trees".
    """
    mask = np.empty(shape, dtype=np.uint8 if multi_class(model) else bool)
    for t in tile_grid(shape, tile, tuple(model.halo(len(shape)))):
        mask[t.core] = predict_tile(get_region, model, t, timing=timing,
                                    features=None if features is None else features.get(t.index), threads=threads)
    return mask


def predict_tile(get_region, model, t: Tile, *, timing: dict | None = None, features=None,
                 threads: int = 1) -> np.ndarray:
    """The predictor's mask on one tile's core (``features``: the core's, if already computed).

    A model that computes its own features (noisestat's forest) gets them for the core from the
    whole region and runs its trees on the core only: the halo is needed by the features, not by
    the decisions."""
    start = time.perf_counter()
    region = np.asarray(get_region(t.region))
    start = _tick(timing, "pixels", start)
    if not callable(getattr(model, "features", None)):
        out = check_predictor_output(model, model.predict_mask(region), region.shape, "mask")
        _tick(timing, "predictor", start)
        return out[t.inner]
    if features is None:
        features = model.features(region, threads=threads, inner=t.inner)
    start = _tick(timing, "features", start)
    counts = {} if timing is not None else None
    core = region[t.inner]
    if multi_class(model):
        # a class map: 0 background, c for a pixel of class c (the model's per-class thresholds)
        out = model.predict_classes(core, features=features, counts=counts, threads=threads)
    else:
        out = check_predictor_output(model, model.predict_mask(core, features=features, counts=counts,
                                                               threads=threads), core.shape, "mask")
    if counts:
        timing["tree_evaluations"] = timing.get("tree_evaluations", 0) + counts.get("tree_evaluations", 0)
        timing["pixels_predicted"] = timing.get("pixels_predicted", 0) + counts.get("pixels", 0)
    _tick(timing, "trees", start)
    return out


def values_tile(get_region, model, t: Tile, *, timing: dict | None = None) -> np.ndarray:
    """A :class:`~noisestat.predict.ValuePredictor`'s values on one tile's core (computed on the
    region, checked, the core kept)."""
    start = time.perf_counter()
    region = np.asarray(get_region(t.region))
    start = _tick(timing, "pixels", start)
    out = check_predictor_output(model, model.predict_values(region), region.shape, "values")
    _tick(timing, "predictor", start)
    return np.ascontiguousarray(out[t.inner])


def predict_values_tiled(get_region, shape: tuple, model, tile: int | None = None, *,
                         timing: dict | None = None) -> np.ndarray:
    """A value predictor's map of an image of ``shape``, tile by tile (the whole-image map when the
    predictor's halo is right). float32 when the predictor gives float32, float64 otherwise."""
    tile = tile or default_tile(model, len(shape))
    tiles = tile_grid(shape, tile, tuple(model.halo(len(shape))))
    out = None
    for t in tiles:
        core = values_tile(get_region, model, t, timing=timing)
        if out is None or (core.dtype == np.float64 and out.dtype != np.float64):
            previous, out = out, np.empty(shape, dtype=core.dtype)
            if previous is not None:
                out[...] = previous
        out[t.core] = core
    return out


def multi_class(model) -> bool:
    """Whether ``model`` tells more than one class of object apart (noisestat's forest trained on classes
    1..C, C > 2): its tiles give a class map, each class's objects labelled on their own."""
    classes = getattr(model, "classes_", None)
    return callable(getattr(model, "predict_classes", None)) and classes is not None and len(classes) > 2


def object_classes(labels: np.ndarray, class_map: np.ndarray) -> np.ndarray:
    """The class of each object id 0..max (index = id; 0 for the background) from the class map its
    labels came from (:func:`label_mask` of a class map)."""
    n = int(labels.max()) + 1 if labels.size else 1
    out = np.zeros(n, dtype=np.uint8)
    flat, classes = np.asarray(labels).reshape(-1), np.asarray(class_map).reshape(-1)
    for start in range(0, flat.size, _CHUNK):  # every pixel of an object has its class: any one tells
        ids = flat[start:start + _CHUNK]
        out[ids] = classes[start:start + _CHUNK]
    out[0] = 0
    return out


def label_mask(mask: np.ndarray, min_area: int = 0, *, block: int | None = None) -> np.ndarray:
    """Objects of a mask: fully connected components (8 in 2D, 26 in 3D) of at least ``min_area``
    pixels (ImageJ's Analyze Particles size filter), labelled 1..n in raster order of first pixel.

    A class map (uint8: 0 background, c a class of object) is labelled class by class, ascending,
    each class's ids after the previous class's: an object is one class's connected component
    (:func:`object_classes` gives each id's class).

    A mask of more than :data:`LABEL_BLOCKS_ABOVE` pixels is labelled block by block
    (:func:`~noisestat.engine.label_blocks`, blocks of ``block`` pixels a side: the tile edge; by
    default :data:`LABEL_BLOCK`), with the same ids; the labels are then uint16, int32 or int64,
    the smallest that holds the count."""
    mask = np.asarray(mask)
    if mask.dtype != bool:
        return _label_classes(mask, min_area, block)
    if mask.size > LABEL_BLOCKS_ABOVE:
        edge = block or LABEL_BLOCK.get(mask.ndim, 64)
        labels, _ = label_blocks(mask, edge, connectivity=mask.ndim)
        return filter_small(labels, min_area)
    # scipy's labelling numbers components in raster order of their first pixel, as skimage's does,
    # and writes the requested type directly: 2 bytes a pixel while the ids fit (skimage's int64
    # result would take four times as much), int32 beyond 65535 objects
    structure = ndimage.generate_binary_structure(mask.ndim, mask.ndim)
    try:
        labels, _ = ndimage.label(mask, structure=structure, output=np.uint16)
    except RuntimeError:  # more objects than uint16 holds
        labels, _ = ndimage.label(mask, structure=structure, output=np.int32)
    return filter_small(labels, min_area)


def _label_classes(class_map: np.ndarray, min_area: int, block) -> np.ndarray:
    """:func:`label_mask` of a class map: each class's components, the classes one after another."""
    total = None
    for c in (int(v) for v in np.unique(class_map) if v > 0):
        labels = label_mask(class_map == c, min_area, block=block)
        n = int(labels.max()) if labels.size else 0
        if total is None:
            total = np.zeros(class_map.shape, dtype=np.int32)
        if n:
            where = labels > 0
            total[where] = labels[where].astype(np.int32) + int(total.max())
    if total is None:
        return np.zeros(class_map.shape, dtype=np.uint16)
    return total.astype(np.uint16) if total.max() < 2 ** 16 else total


def filter_small(labels: np.ndarray, min_area: int) -> np.ndarray:
    """``labels`` without the objects under ``min_area`` pixels, renumbered 1..n in label order."""
    if min_area > 1:
        # a lookup table from old to new ids, applied in chunks (indexing by a whole volume's labels
        # would convert them to 8-byte integers first); ascending old ids keep their order, as
        # skimage's relabel_sequential numbers them
        keep = label_counts(labels) >= min_area
        keep[0] = False
        lut = np.zeros(len(keep), dtype=labels.dtype)
        lut[keep] = np.arange(1, int(keep.sum()) + 1)
        flat = np.ascontiguousarray(labels).reshape(-1)
        for start in range(0, flat.size, _CHUNK):
            flat[start:start + _CHUNK] = lut[flat[start:start + _CHUNK]]
        labels = flat.reshape(labels.shape)
    return labels


def checked_labels(model, result, shape: tuple) -> np.ndarray:
    """A :class:`~noisestat.predict.LabelPredictor`'s label image of an image of ``shape``, checked
    (:func:`~noisestat.predict.check_predictor_output`) and renumbered 1..n in order (int32)."""
    labels = np.asarray(check_predictor_output(model, result, shape, "labels"))
    if labels.dtype == bool:
        labels = labels.astype(np.uint8)
    # renumbered in the predictor's own integer type first: ids of any size (a tool's uint64 ids, ids at
    # 2^32) keep their objects apart, where a cast to int32 first would wrap or merge them
    renumbered = relabel_sequential(labels)[0]
    if renumbered.size and int(renumbered.max()) > np.iinfo(np.int32).max:
        raise InputError(f"{predictor_name(model)} gave {int(renumbered.max())} objects; noisestat counts at most "
                         f"{np.iinfo(np.int32).max}")
    return renumbered.astype(np.int32)


def segment_tiled(get_region, shape: tuple, model, tile: int | None, min_area: int = 0, *,
                  timing: dict | None = None, features: dict | None = None, threads: int = 1,
                  predicted=None, with_classes: bool = False):
    """Label image of one image: a :class:`~noisestat.predict.MaskPredictor` tile by tile, labelled
    here; a :class:`~noisestat.predict.LabelPredictor` on the whole image. ``predicted()``, optional,
    is called once the predictor is done, before labelling (to free what only prediction needed).
    ``with_classes``: return ``(labels, classes)``, ``classes`` the class of each id
    (:func:`object_classes`) for a model of several classes of object, else None."""
    kind = predictor_kind(model)
    if kind == "values":
        raise InputError(f"{predictor_name(model)} gives a value per pixel, not objects: assess it with "
                         f"noisestat.assess_values")
    if kind == "labels":
        start = time.perf_counter()
        image = np.asarray(get_region(tuple(slice(0, n) for n in shape)))
        labels = checked_labels(model, model.segment(image), shape)
        _tick(timing, "predictor", start)
        if predicted is not None:
            predicted()
        labels = filter_small(labels, min_area)
        return (labels, None) if with_classes else labels
    tile = tile or default_tile(model, len(shape))
    mask = predict_mask_tiled(get_region, shape, model, tile, timing=timing, features=features, threads=threads)
    if predicted is not None:
        predicted()
    start = time.perf_counter()
    labels = label_mask(mask, min_area, block=tile)
    _tick(timing, "labelling", start)
    if not with_classes:
        return labels
    return labels, (object_classes(labels, mask) if mask.dtype != bool else None)
