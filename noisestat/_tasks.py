"""The units of work the pipeline hands to the engine: one image (the raw one, a replica drawn from
its seed, a decoded one) segmented by the predictor tile by tile, its objects labelled, measured
(shape, and intensities in electrons) and aligned to the raw image's objects.

Each task is a pure function of its arguments and its own seed, so the numbers are the same on any
executor (:mod:`noisestat.engine`); :mod:`noisestat.pipeline` decides which tasks run, in what order.
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from .camera._profile import CameraProfile
from scipy import ndimage

from .engine._tiles import _tick, label_mask, object_classes, predict_tile, segment_tiled, values_tile
from .measure._matching import STATUSES, classify_objects, match_centroids, match_iou
from .measure._morphometry import measure_objects
from .measure._volume import centre_columns, measure_volume_objects, parameters_for, size_column
from .reconstruct._domain import Reconstructed
from .replicas._draw import BlockCache, draw_region
from .results import ImageObjects, PackedLabels


def match_objects(labels: np.ndarray, raw_labels: np.ndarray, raw_xy: np.ndarray, matching: str,
                   timing: dict | None = None, table=None, intensity=None, spacing=None, classes=None) -> ImageObjects:
    """Measure one image's objects (unless their ``table`` is known; ``intensity`` its values in
    electrons; a volume's in the units of ``spacing``) and align them to the raw ones. ``classes``:
    :class:`Classes` when the model tells several classes of object apart (an object matches a raw
    object of its own class only)."""
    start = time.perf_counter()
    if table is None:
        table = measure(labels, intensity, spacing)
        start = _tick(timing, "measuring", start)
    n_raw = len(raw_xy)
    if matching == "iou":
        m = match_iou(raw_labels, labels)
    else:
        m = match_centroids(raw_xy, centres(table), max_distance=centre_distance(labels.ndim, spacing))
    if classes is not None and table.classes is not None:
        # a raw object whose partner is of another class is not found in this image
        other = (m.partner >= 0) & (table.classes[np.maximum(m.partner, 0)] != classes.raw)
        m = dataclasses.replace(m, partner=np.where(other, -1, m.partner))
    values = np.full((n_raw, len(table.names)), np.nan)
    partner = np.zeros(n_raw, dtype=np.int64)
    status = classify_objects(raw_labels, labels, m.partner)
    # a merge under the centroid rule keeps its partner id but is not a match: no values, no eps
    hit = (m.partner >= 0) & (status == "matched")
    values[hit] = table.values[m.partner[hit]]
    partner[hit] = table.labels[m.partner[hit]]
    area = int(table.column(size_column(labels.ndim)).sum()) if len(table) else 0
    totals = global_totals(table, labels, classes.objects if classes is not None else None)
    counts = {**m.counts(), **{k: int((status == k).sum()) for k in STATUSES[1:]}, "n_reference": n_raw}
    _tick(timing, "matching", start)
    return ImageObjects(values, partner, len(table), area, counts, np.asarray(table.values), labels=compact(labels),
                        status=status, totals=totals)


@dataclasses.dataclass(frozen=True)
class Classes:
    """A run whose model tells several classes of object apart: its classes of object (2, 3, ...) and
    the raw objects' classes, row by row."""

    objects: tuple
    raw: np.ndarray


def measure(labels: np.ndarray, intensity=None, spacing=None, classes=None):
    """The ImageJ parameters of a 2D image's objects (shape, and intensity from ``intensity``); a
    volume's 3D parameters in the units of ``spacing`` and intensities
    (:func:`noisestat.measure.measure_volume_objects`). ``classes``: each id's class
    (:func:`noisestat.engine.object_classes`), kept row by row."""
    table = measure_objects(labels, intensity) if labels.ndim == 2 else measure_volume_objects(labels, intensity,
                                                                                                spacing)
    if classes is not None:
        table = dataclasses.replace(table, classes=np.asarray(classes)[table.labels].astype(np.uint8))
    return table


def global_totals(table, labels: np.ndarray, object_classes=None) -> dict | None:
    """The global parameters after N_tot (:attr:`noisestat.results.ImageObjects.totals`): a volume's
    V_tot and SA_tot; with several ``object_classes``, each class's N_tot[c] and size (A_tot[c] in
    pixels, or V_tot[c] and SA_tot[c]) and, for each class c after the first (2), its load on it:
    load[c] = size of the class-c objects that touch a class-2 object / (size of the class-2 objects +
    that size) -- the share of an organ (class 2) that its plaques (class c) take, a plaque counted when
    it lies against or within the organ. None for an image of one class of object."""
    volume = labels.ndim == 3
    if not volume and object_classes is None:
        return None
    size = "Volume" if volume else "Area"
    totals = {}
    if volume:
        totals = {"V_tot": _sum(table, "Volume"), "SA_tot": _sum(table, "SurfaceArea")}
    if object_classes is None:
        return totals
    if not volume:
        totals["A_tot"] = _sum(table, "Area")
    row_class = table.classes if table.classes is not None else np.zeros(len(table), np.uint8)
    for c in object_classes:
        rows = row_class == c
        totals[f"N_tot[{c}]"] = float(rows.sum())
        totals[f"{'V' if volume else 'A'}_tot[{c}]"] = _sum(table, size, rows)
        if volume:
            totals[f"SA_tot[{c}]"] = _sum(table, "SurfaceArea", rows)
    container = object_classes[0]
    held = np.isin(labels, table.labels[row_class == container]) if len(table) else np.zeros(labels.shape, bool)
    near = ndimage.binary_dilation(held, structure=ndimage.generate_binary_structure(labels.ndim, labels.ndim))
    touching = set(np.unique(labels[near & (labels > 0)]).tolist())
    for c in object_classes[1:]:
        rows = (row_class == c) & np.isin(table.labels, list(touching))
        inside = _sum(table, size, rows)
        whole = _sum(table, size, row_class == container) + inside
        totals[f"load[{c}]"] = inside / whole if whole > 0 else 0.0
    return totals


def _sum(table, name: str, rows=None) -> float:
    if not len(table):
        return 0.0
    column = table.column(name)
    return float(column[rows].sum() if rows is not None else column.sum())


def centres(table) -> np.ndarray:
    """The objects' centres, one row each (:func:`noisestat.measure.centre_columns`)."""
    names = centre_columns(2 if "XM" in table.names else 3)
    return np.column_stack([table.column(c) for c in names]) if len(table) else np.empty((0, len(names)))


def centre_distance(ndim: int, spacing=None) -> float:
    """The centroid rule's largest distance: 3 pixels for an image; for a volume 3 times the edge of
    a cube of one voxel's volume, in the physical units of ``spacing`` (a distance that means the same
    along every axis, whatever the anisotropy)."""
    if ndim == 2:
        return 3.0
    edge = float(np.prod(spacing)) ** (1 / 3) if spacing is not None else 1.0
    return 3.0 * edge


def electrons(pixels: np.ndarray, profile: CameraProfile | None) -> np.ndarray | None:
    """An image's values in electrons above the camera's offset, ``(y - offset) / gain`` (per pixel with
    sCMOS maps), float32: the units of the intensity parameters. None without a profile."""
    if profile is None:
        return None
    y = np.asarray(pixels, dtype=np.float32)
    maps = profile.pixel_maps
    if maps is not None and tuple(maps.shape) == y.shape[-2:]:
        return (y - np.asarray(maps.offset_dn, np.float32)) / np.asarray(maps.gain_dn_per_e, np.float32)
    return (y - np.float32(profile.offset_dn)) / np.float32(profile.gain_dn_per_e)


def intensity(image, values: np.ndarray, units: CameraProfile | None) -> np.ndarray | None:
    """An image's values in the units of the intensity parameters: electrons (:func:`electrons`), or a
    reconstruction's own values (reconstructed from projections already in electrons)."""
    if isinstance(image, Reconstructed):
        return np.asarray(values, dtype=np.float32)
    return electrons(values, units)


def whole(shape) -> tuple:
    return tuple(slice(0, n) for n in shape)


def compact(labels: np.ndarray) -> np.ndarray:
    """Labels in the smallest unsigned type that holds their ids (kept for every image of a run)."""
    top = int(labels.max()) if labels.size else 0
    return labels.astype(np.uint16, copy=False) if top < 2**16 else labels


def image_task(image, model, tile, threads, raw_labels, raw_xy, matching, min_area, labels=None, units=None,
               spacing=None, classes=None):
    """One image's aligned objects (segmented here unless its ``labels`` are known; intensities in
    electrons of the camera ``units``) and its timing."""
    timing = {}
    ids = None
    if labels is None:
        labels, ids = segment_tiled(lambda r: image[r], image.shape, model, tile, min_area, timing=timing,
                                    threads=threads, with_classes=True)
    values = intensity(image, image[whole(image.shape)], units)
    table = measure(labels, values, spacing, ids)
    return match_objects(labels, raw_labels, raw_xy, matching, timing, table=table, spacing=spacing,
                         classes=classes), timing


def pixels_of(image, profile, seed):
    """``get(region)`` giving an image's pixels on a region: the image's own, or with ``seed`` its
    replica's, drawn with the noise blocks kept in the returned cache for the next regions."""
    blocks = BlockCache()
    if seed is None:
        return (lambda region: image[region]), blocks
    if isinstance(image, Reconstructed):
        # the replica is drawn on the projections (where the camera noise is), then reconstructed
        stack = image.projections
        replica = image.of(draw_region(stack, profile, seed, whole(stack.shape), blocks))
        return replica.__getitem__, blocks
    return (lambda region: draw_region(image, profile, seed, region, blocks)), blocks


def objects_task(image, model, tile, threads, min_area, profile=None, seed=None, units=None, spacing=None):
    """One image segmented by a :class:`~noisestat.predict.LabelPredictor` and measured, its labels
    packed for the way back (a task): the raw image, a codec's, or with ``seed`` a replica. Needs
    nothing of the raw image's objects, so the raw image runs in the same batch. (A mask
    predictor's images go through :func:`mask_task` and :func:`finish_task`.)"""
    timing = {}
    get, blocks = pixels_of(image, profile, seed)
    # the drawn blocks are dropped once the mask is predicted: labelling is the task's peak
    labels, ids = segment_tiled(get, image.shape, model, tile, min_area, timing=timing, threads=threads,
                                predicted=blocks.clear, with_classes=True)
    start = time.perf_counter()
    table = measure(labels, intensity(image, get(whole(image.shape)), units), spacing, ids)
    _tick(timing, "measuring", start)
    return PackedLabels.pack(compact(labels)), table, timing


def match_task(packed, table, raw_labels, raw_xy, matching, keep_packed, spacing=None, classes=None):
    """One segmented image's objects aligned to the raw ones (a task)."""
    timing = {}
    objects = match_objects(packed.unpack(), raw_labels, raw_xy, matching, timing, table=table, spacing=spacing,
                            classes=classes)
    return (dataclasses.replace(objects, labels=packed) if keep_packed else objects), timing


def mask_task(image, model, tiles, threads, profile=None, seed=None):
    """The predictor's mask on the cores of ``tiles`` (a task: part of one image, or with ``seed``
    part of a replica, drawn region by region with its noise blocks kept for the next tiles), the
    cores' pixels in tile order packed to bits (a class map's, one byte each: ``{"classes": ...}``)."""
    timing = {}
    get = pixels_of(image, profile, seed)[0]
    cores = np.concatenate([predict_tile(get, model, t, timing=timing, threads=threads).reshape(-1) for t in tiles])
    if cores.dtype != bool:
        return {"classes": cores}, timing
    return np.packbits(cores), timing


def assemble_mask(shape, tiles, parts) -> np.ndarray:
    """An image's mask (a class map) from its :func:`mask_task` results (``parts``: one per group of
    ``tiles``)."""
    mask = np.empty(shape, dtype=np.uint8 if isinstance(parts[0], dict) else bool)
    for group, packed in zip(tiles, parts):
        sizes = [math.prod(c.stop - c.start for c in t.core) for t in group]
        bits = packed["classes"] if isinstance(packed, dict) else np.unpackbits(packed, count=sum(sizes)).view(bool)
        for t, start, n in zip(group, np.cumsum([0, *sizes[:-1]]), sizes):
            mask[t.core] = bits[start:start + n].reshape(tuple(c.stop - c.start for c in t.core))
    return mask


def label_measure(shape, tiles, parts, min_area, timing, pixels=None, spacing=None):
    """Labels and measurements of an image whose mask came in parts; ``pixels``: ``(image, profile,
    seed, units)`` for the intensities (the image, or with ``seed`` its replica drawn again)."""
    start = time.perf_counter()
    mask = assemble_mask(shape, tiles, parts)
    labels = label_mask(mask, min_area)
    ids = object_classes(labels, mask) if mask.dtype != bool else None
    del mask
    start = _tick(timing, "labelling", start)
    values = None
    if pixels is not None:
        image, profile, seed, units = pixels
        values = intensity(image, pixels_of(image, profile, seed)[0](whole(shape)), units)
    table = measure(labels, values, spacing, ids)
    _tick(timing, "measuring", start)
    return labels, table


def finish_task(shape, tiles, parts, min_area, raw_labels, raw_xy, matching, keep_packed, pixels=None, spacing=None,
                classes=None):
    """One image's objects from its mask's parts: labelled, measured (intensities from ``pixels``, see
    :func:`label_measure`) and aligned to the raw objects (a task); a replica's labels packed."""
    timing = {}
    labels, table = label_measure(shape, tiles, parts, min_area, timing, pixels, spacing)
    objects = match_objects(labels, raw_labels, raw_xy, matching, timing, table=table, spacing=spacing,
                            classes=classes)
    if keep_packed:
        objects = dataclasses.replace(objects, labels=PackedLabels.pack(objects.labels))
    return objects, timing


def tile_groups(tiles, parts: int) -> list[list]:
    """``tiles`` (raster order) cut into ``parts`` consecutive groups of about equal work (region
    pixels, what the features cost): neighbouring tiles stay together, sharing noise blocks."""
    work = np.cumsum([t.size for t in tiles])
    cuts = [int(np.searchsorted(work, work[-1] * k / parts)) for k in range(1, parts)]
    groups, start = [], 0
    for cut in [*cuts, len(tiles)]:
        cut = max(cut, start + 1) if start < len(tiles) else start
        groups.append(tiles[start:cut])
        start = cut
    return [g for g in groups if g]


def parts_per_image(n_images: int, workers: int, n_tiles: int) -> int:
    """Parts each image's tiles are cut into so that the batch's rounds come out even: the p in
    1..4 (at most the tiles) with the shortest ceil(n_images p / workers) / p, the smallest on a tie."""
    best, best_p = None, 1
    for p in range(1, min(4, n_tiles) + 1):
        span = math.ceil(n_images * p / workers) / p
        if best is None or span < best - 1e-12:
            best, best_p = span, p
    return best_p


def call(fn, args):
    return fn(*args)


def merge_timing(total: dict, part: dict) -> None:
    for k, v in part.items():
        total[k] = total.get(k, 0) + v


def same_image(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two images hold the same values (two reconstructions: the same projections)."""
    a, b = (x.projections if isinstance(x, Reconstructed) else x for x in (a, b))
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b)


def pair_args(a: ImageObjects, b: ImageObjects) -> tuple:
    """Two simulated acquisitions' label images and centres, for :func:`noisestat.measure.pair_unmatched`."""
    labels = [t.labels.unpack() if isinstance(t.labels, PackedLabels) else t.labels for t in (a, b)]
    names = parameters_for(labels[0].ndim)
    xy = [np.asarray(t.table, dtype=float).reshape(-1, len(names))[:, [names.index(c) for c in centre_columns(labels[0].ndim)]]
          for t in (a, b)]
    return (*labels, *xy)


def values_task(image, model, tiles, profile=None, seed=None):
    """A value predictor's values on the cores of ``tiles`` (a task: part of one image, or with
    ``seed`` part of a replica), the cores' values in tile order, flat."""
    timing = {}
    get = pixels_of(image, profile, seed)[0]
    cores = [values_tile(get, model, t, timing=timing).reshape(-1) for t in tiles]
    return np.concatenate(cores), timing


def assemble_values(shape, groups, parts) -> np.ndarray:
    """An image's value map from its :func:`values_task` results (one per group of tiles)."""
    out = np.empty(shape, dtype=np.result_type(*[p.dtype for p in parts]))
    for group, flat in zip(groups, parts):
        start = 0
        for t in group:
            size = tuple(c.stop - c.start for c in t.core)
            out[t.core] = flat[start:start + math.prod(size)].reshape(size)
            start += math.prod(size)
    return out
