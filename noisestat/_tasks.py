"""The units of work the pipeline hands to the engine: one image (the raw one, a replica drawn from
its seed, a decoded one) segmented by the predictor tile by tile, its objects labelled, measured
(shape, and intensities in electrons) and aligned to the raw image's objects.

Each task is a pure function of its arguments and its own seed, so the numbers are the same on any
executor (:mod:`noisestat.engine`); :mod:`noisestat.pipeline` decides which tasks run, in what order.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import time

import numpy as np

from .camera._profile import CameraProfile
from scipy import ndimage

from .engine._tiles import (_tick, checked_labels, filter_small, label_mask, multi_class, object_classes, predict_tile,
                            segment_tiled, tile_grid, values_tile)
from .errors import InputError, ModelError
from .predict._protocol import predictor_name
from .measure._matching import STATUSES, classify_objects, match_centroids, match_iou
from .measure._morphometry import measure_objects
from .measure._volume import centre_columns, measure_volume_objects, parameters_for, size_column
from .reconstruct._domain import Reconstructed
from .replicas._draw import BlockCache, draw_region
from .results import ImageObjects, PackedLabels
from .score._sampling import extrapolate_global, extrapolate_ratio, kept_probability, sample_tiles, tile_totals


@dataclasses.dataclass(frozen=True, eq=False)
class Sample:
    """The tiles a ``--sample`` run judges: a seeded simple random sample of ``fraction`` of the tiles of a
    grid of ``tile`` voxels a side over an image of ``shape`` (:func:`noisestat.engine.tile_grid`'s grid),
    each segmented in engine tiles of ``engine_tile`` (which divides ``tile``), with the predictor's halo.

    Every image of a run (raw, replicas, decoded) is segmented on the sampled tiles only and labelled
    with zeros elsewhere; an object touching a sampled tile's first or last layer where another tile
    lies beyond is dropped (:meth:`whole`), so each kept object lies wholly inside one tile and is the
    object the whole image's segmentation has there.
    """

    fraction: float
    tile: int
    engine_tile: int
    shape: tuple
    indices: np.ndarray
    n_tiles: int

    @classmethod
    def draw(cls, shape, fraction, tile: int, engine_tile: int, seed) -> "Sample":
        """The sample of ``fraction`` of the tiles (:func:`noisestat.score.sample_tiles` from ``seed``)."""
        check_fraction(fraction)
        if tile % engine_tile:
            raise InputError(f"--sample: the sampling tile ({tile}) must be a multiple of the engine's tile "
                             f"({engine_tile})")
        n_tiles = len(tile_grid(tuple(shape), tile, (0,) * len(shape)))
        return cls(float(fraction), int(tile), int(engine_tile), tuple(int(n) for n in shape),
                   sample_tiles(n_tiles, float(fraction), seed), n_tiles)

    @property
    def per_axis(self) -> tuple:
        return tuple(-(-n // self.tile) for n in self.shape)

    def cores(self) -> list:
        """The sampled tiles' cores (slices), in the order of :attr:`indices`."""
        out = []
        for multi in zip(*np.unravel_index(self.indices, self.per_axis)):
            out.append(tuple(slice(int(i) * self.tile, min((int(i) + 1) * self.tile, n))
                             for i, n in zip(multi, self.shape)))
        return out

    def engine_tiles(self, halo) -> list:
        """The engine's tiles (core and region with ``halo``) that make up the sampled tiles, raster order."""
        k = self.tile // self.engine_tile
        chosen = set(self.indices.tolist())
        return [t for t in tile_grid(self.shape, self.engine_tile, tuple(halo))
                if int(np.ravel_multi_index(tuple(i // k for i in t.index), self.per_axis)) in chosen]

    def whole(self, labels: np.ndarray) -> np.ndarray:
        """``labels`` without the objects that touch a sampled tile's face towards another tile,
        renumbered 1..n in label order (the kept objects' order is the labelling's)."""
        touched = set()
        for core in self.cores():
            for axis, (c, n) in enumerate(zip(core, self.shape)):
                for at in ([c.start] if c.start > 0 else []) + ([c.stop - 1] if c.stop < n else []):
                    face = tuple(slice(at, at + 1) if a == axis else s for a, s in enumerate(core))
                    touched.update(np.unique(labels[face]).tolist())
        touched.discard(0)
        if not touched:
            return labels
        keep = np.ones(int(labels.max()) + 1, dtype=bool)
        keep[list(touched)] = False
        keep[0] = False
        lut = np.zeros(len(keep), dtype=labels.dtype)
        lut[keep] = np.arange(1, int(keep.sum()) + 1)
        return lut[labels]

    def tile_of(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """The tile (raster index) holding each object wholly (bounding boxes ``lo``, ``hi``)."""
        lo = np.asarray(lo, dtype=np.int64).reshape(-1, len(self.shape))
        first = lo // self.tile
        return (np.ravel_multi_index(tuple(first.T), self.per_axis).astype(np.int64) if len(lo)
                else np.empty(0, np.int64))

    def describe(self, seed) -> dict:
        """The provenance: fraction, tile, the sampled tiles (indices, their count and hash), the seed."""
        indices = self.indices.astype("<i8")
        return {"fraction": self.fraction, "tile": self.tile, "engine_tile": self.engine_tile,
                "grid": list(self.per_axis), "n_tiles": self.n_tiles, "n_sampled": int(len(indices)),
                "indices": indices.tolist() if len(indices) <= 1000 else None,
                "indices_sha256": hashlib.sha256(indices.tobytes()).hexdigest(), "seed": seed,
                "seed_stream": "the third child of numpy.random.SeedSequence(seed).spawn(4)"}


def check_fraction(fraction) -> float:
    """``--sample``'s fraction as a float in (0, 1], or InputError naming the value."""
    try:
        value = float(fraction)
    except (TypeError, ValueError):
        raise InputError(f"--sample must be a fraction of the tiles in (0, 1]; got {fraction!r}") from None
    if isinstance(fraction, bool) or not 0 < value <= 1:  # NaN fails the comparison too
        raise InputError(f"--sample must be a fraction of the tiles in (0, 1]; got {fraction!r}")
    return value


def object_contributions(table, labels: np.ndarray, names) -> dict:
    """Each object's share of each global of ``names`` (those of :func:`global_totals`, N_tot first):
    a sum's per-object values, or for ``load[c]`` its numerator's and denominator's ``(num, den)``."""
    n = len(table)
    ndim = labels.ndim
    size = "Volume" if ndim == 3 else "Area"
    row_class = table.classes if table.classes is not None else np.zeros(n, np.uint8)
    column = (lambda name: np.asarray(table.column(name), dtype=np.float64)) if n else (lambda name: np.zeros(0))
    out = {}
    loads = [name for name in names if name.startswith("load[")]
    touching = None
    if loads:
        container = int(min(int(name[name.index("[") + 1:-1]) for name in names if name.startswith("N_tot[")))
        held = np.isin(labels, table.labels[row_class == container]) if n else np.zeros(labels.shape, bool)
        near = ndimage.binary_dilation(held, structure=ndimage.generate_binary_structure(ndim, ndim))
        touching = np.isin(table.labels, np.unique(labels[near & (labels > 0)]))
    for name in names:
        base, _, cls = name.partition("[")
        rows = np.ones(n, bool) if not cls else row_class == int(cls[:-1])
        if base == "N_tot":
            out[name] = rows.astype(np.float64)
        elif base in ("A_tot", "V_tot"):
            out[name] = np.where(rows, column(size), 0.0)
        elif base == "SA_tot":
            out[name] = np.where(rows, column("SurfaceArea"), 0.0)
        elif base == "load":
            inside = np.where(rows & touching, column(size), 0.0)
            out[name] = (inside, np.where(row_class == container, column(size), 0.0) + inside)
        else:
            raise InputError(f"no sampled estimate for the global {name!r}")
    return out


def sampled_globals(table, labels: np.ndarray, names, sample: Sample) -> dict:
    """One image's globals ``names`` extrapolated from the objects of the sampled tiles
    (:mod:`noisestat.score._sampling`): each object weighted by the inverse of its probability of being
    kept (:func:`noisestat.score.kept_probability`), a sum's total ``N * mean`` of the tiles' weighted
    totals with its standard error (simple random sampling of tiles, plus the weights' own variance), a
    load the ratio of the weighted sums (delta-method error). Returns ``value``, ``se`` (arrays in
    ``names`` order), ``tile_totals`` (sampled tiles x globals; NaN for a load) for paired differences and
    each object's ``kept_probability``."""
    boxes = ndimage.find_objects(labels) if len(table) else []
    ids = np.asarray(table.labels, dtype=np.int64) if len(table) else np.zeros(0, np.int64)
    lo = np.array([[s.start for s in boxes[i - 1]] for i in ids], dtype=np.int64).reshape(-1, labels.ndim)
    hi = np.array([[s.stop for s in boxes[i - 1]] for i in ids], dtype=np.int64).reshape(-1, labels.ndim)
    kept = kept_probability(lo, hi, sample.shape, sample.tile) if len(ids) else np.zeros(0)
    weight = 1.0 / kept
    where = sample.tile_of(lo, hi)
    shares = object_contributions(table, labels, names)
    value, se = np.zeros(len(names)), np.zeros(len(names))
    totals = np.full((len(sample.indices), len(names)), np.nan)
    for j, name in enumerate(names):
        share = shares[name]
        if isinstance(share, tuple):
            num, den = (tile_totals(weight * s, where, sample.indices) for s in share)
            if den.sum() > 0:
                est = extrapolate_ratio(num, den, sample.n_tiles)
                value[j], se[j] = est.value, est.se
            else:
                value[j], se[j] = 0.0, np.nan
            continue
        totals[:, j] = tile_totals(weight * share, where, sample.indices)
        edge = tile_totals(share ** 2 * weight * (weight - 1), where, sample.indices)
        est = extrapolate_global(totals[:, j], sample.n_tiles, edge_variance=edge)
        value[j], se[j] = est.value, est.se
    return {"value": value, "se": se, "tile_totals": totals, "kept_probability": kept}


def match_objects(labels: np.ndarray, raw_labels: np.ndarray, raw_xy: np.ndarray, matching: str,
                   timing: dict | None = None, table=None, intensity=None, spacing=None, classes=None,
                   sample=None) -> ImageObjects:
    """Measure one image's objects (unless their ``table`` is known; ``intensity`` its values in
    electrons; a volume's in the units of ``spacing``) and align them to the raw ones. ``classes``:
    :class:`Classes` when the model tells several classes of object apart (an object matches a raw
    object of its own class only). ``sample``: the run's :class:`Sample`; the globals are then
    extrapolated from the sampled tiles (:func:`sampled_globals`)."""
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
    objects = ImageObjects(values, partner, len(table), area, counts, np.asarray(table.values), labels=compact(labels),
                           status=status, totals=totals, table_classes=table.classes)
    if sample is not None:
        objects = dataclasses.replace(objects, sampled=sampled_globals(table, labels, objects.global_names, sample))
    return objects


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


def global_steps(table, object_classes=None) -> dict:
    """One object's step of each class's size and load (:func:`noisestat.score.global_floors`): the
    smallest raw object of the class (of any class when the class has none) in Area or Volume and in
    SurfaceArea, and that object's share of the organ (class 2) with it. Empty with one class of object."""
    if object_classes is None or not len(table):
        return {}
    volume = "Volume" in table.names
    size = "Volume" if volume else "Area"
    row_class = table.classes if table.classes is not None else np.zeros(len(table), np.uint8)
    organ = _sum(table, size, row_class == object_classes[0])
    steps = {}
    for c in object_classes:
        rows = row_class == c
        rows = rows if rows.any() else np.ones(len(table), bool)
        smallest = float(np.nanmin(table.column(size)[rows]))
        steps[f"{'V' if volume else 'A'}_tot[{c}]"] = smallest
        if volume:
            steps[f"SA_tot[{c}]"] = float(np.nanmin(table.column("SurfaceArea")[rows]))
        if c != object_classes[0]:
            steps[f"load[{c}]"] = smallest / (organ + smallest) if organ + smallest > 0 else 0.0
    return steps


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
    # one float32 copy, converted in place: a volume's electrons cost one volume of 4 bytes a voxel
    y = np.array(pixels, dtype=np.float32)
    maps = profile.pixel_maps
    if maps is not None and tuple(maps.shape) == y.shape[-2:]:
        y -= np.asarray(maps.offset_dn, np.float32)
        y /= np.asarray(maps.gain_dn_per_e, np.float32)
        return y
    y -= np.float32(profile.offset_dn)
    y /= np.float32(profile.gain_dn_per_e)
    return y


class Electrons:
    """An image's values in electrons (:func:`electrons`), converted where they are read: the
    intensity parameters read the objects' pixels only (``at``, :func:`noisestat.measure.intensity_columns`),
    so a volume's background is never converted and no float32 copy of the whole image is held
    while it is measured. Each pixel's value is the one :func:`electrons` gives."""

    def __init__(self, pixels: np.ndarray, profile: CameraProfile):
        self.pixels = np.asarray(pixels)
        self.profile = profile
        self.shape = self.pixels.shape

    def at(self, where: np.ndarray) -> np.ndarray:
        """The electrons of the pixels where the boolean array ``where`` is true (float32, flat)."""
        y = self.pixels[where].astype(np.float32)
        maps = self.profile.pixel_maps
        if maps is not None and tuple(maps.shape) == self.shape[-2:]:
            y -= np.broadcast_to(np.asarray(maps.offset_dn, np.float32), self.shape)[where]
            y /= np.broadcast_to(np.asarray(maps.gain_dn_per_e, np.float32), self.shape)[where]
            return y
        y -= np.float32(self.profile.offset_dn)
        y /= np.float32(self.profile.gain_dn_per_e)
        return y

    def __array__(self, dtype=None, copy=None):
        out = electrons(self.pixels, self.profile)
        return out if dtype is None else out.astype(dtype, copy=False)


def intensity(image, values: np.ndarray, units: CameraProfile | None):
    """An image's values in the units of the intensity parameters: electrons (:class:`Electrons`,
    converted where the measurements read them), or a reconstruction's own values (reconstructed from
    projections already in electrons); None without a profile."""
    if isinstance(image, Reconstructed):
        return np.asarray(values, dtype=np.float32)
    return None if units is None else Electrons(values, units)


def whole(shape) -> tuple:
    return tuple(slice(0, n) for n in shape)


def compact(labels: np.ndarray) -> np.ndarray:
    """Labels in the smallest unsigned type that holds their ids (kept for every image of a run)."""
    top = int(labels.max()) if labels.size else 0
    return labels.astype(np.uint16, copy=False) if top < 2**16 else labels


def image_task(image, model, tile, threads, raw_labels, raw_xy, matching, min_area, labels=None, units=None,
               spacing=None, classes=None, sample=None):
    """One image's aligned objects (segmented here unless its ``labels`` are known; intensities in
    electrons of the camera ``units``; with ``sample`` on its sampled tiles only) and its timing."""
    timing = {}
    ids = None
    get = lambda r: image[r]  # noqa: E731
    if labels is None and sample is not None:
        labels, ids = segment_sample(get, image.shape, model, sample, min_area, timing=timing, threads=threads)
    elif labels is None:
        labels, ids = segment_tiled(get, image.shape, model, tile, min_area, timing=timing,
                                    threads=threads, with_classes=True)
    values = intensity(image, sampled_pixels(get, image.shape, sample), units)
    table = measure(labels, values, spacing, ids)
    return match_objects(labels, raw_labels, raw_xy, matching, timing, table=table, spacing=spacing,
                         classes=classes, sample=sample), timing


def segment_sample(get_region, shape, model, sample: Sample, min_area: int = 0, *, timing=None, features=None,
                   threads: int = 1):
    """Label image of one image on ``sample``'s tiles only (zeros elsewhere), the objects touching a
    sampled tile's inner faces dropped (:meth:`Sample.whole`), and each id's class (or None): what
    :func:`noisestat.engine.segment_tiled` gives, on the sampled tiles. ``features``: precomputed
    features per engine tile index (the raw image's, kept from training)."""
    tiles = sample.engine_tiles(model.halo(len(shape)))
    mask = np.zeros(shape, dtype=np.uint8 if multi_class(model) else bool)
    for t in tiles:
        mask[t.core] = predict_tile(get_region, model, t, timing=timing, threads=threads,
                                    features=None if features is None else features.get(t.index))
    start = time.perf_counter()
    labels = sample.whole(label_mask(mask, min_area, block=sample.engine_tile))
    _tick(timing, "labelling", start)
    return labels, (object_classes(labels, mask) if mask.dtype != bool else None)


def sampled_pixels(get, shape, sample):
    """An image's pixels (``get(region)``): the whole image, or with ``sample`` its sampled tiles only
    (zeros elsewhere; a replica is drawn there only)."""
    if sample is None:
        return get(whole(shape))
    out = None
    for core in sample.cores():
        part = np.asarray(get(core))
        if out is None:
            out = np.zeros(shape, dtype=part.dtype)
        out[core] = part
    return out


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


@contextlib.contextmanager
def named(names):
    """Put the image's name (``names``: one name, or the names of a batch's images) in front of a
    :class:`~noisestat.errors.ModelError` raised inside: the image the predictor failed on, or
    the batch's images where no one image is at fault (an error without an ``index``)."""
    try:
        yield
    except ModelError as exc:
        if names is None:
            raise
        if isinstance(names, str):
            where = names
        elif getattr(exc, "index", None) is not None and exc.index < len(names):
            where = names[exc.index]
        else:
            where = names[0] if len(names) == 1 else f"the batch of {', '.join(names)}"
        raise ModelError(f"{where}: {exc}") from None


def objects_task(image, model, tile, threads, min_area, profile=None, seed=None, units=None, spacing=None,
                 name=None):
    """One image segmented by a :class:`~noisestat.predict.LabelPredictor` and measured, its labels
    packed for the way back (a task): the raw image, a codec's, or with ``seed`` a replica. Needs
    nothing of the raw image's objects, so the raw image runs in the same batch. (A mask
    predictor's images go through :func:`mask_task` and :func:`finish_task`.) ``name``: the image's,
    put in front of the predictor's errors."""
    timing = {}
    get, blocks = pixels_of(image, profile, seed)
    # the drawn blocks are dropped once the mask is predicted: labelling is the task's peak
    with named(name):
        labels, ids = segment_tiled(get, image.shape, model, tile, min_area, timing=timing, threads=threads,
                                    predicted=blocks.clear, with_classes=True)
    start = time.perf_counter()
    table = measure(labels, intensity(image, get(whole(image.shape)), units), spacing, ids)
    _tick(timing, "measuring", start)
    return PackedLabels.pack(compact(labels)), table, timing


def objects_batch_task(images, model, min_area, units=None, spacing=None, names=None):
    """:func:`objects_task` for a batch of ``images`` (each ``(image, profile, seed)``: an image, or
    with ``seed`` a replica drawn whole) segmented by one call of the predictor's
    ``segment_batch(images)`` (a tool that loads its model once per call); the same labels as one
    :func:`objects_task` per image. ``names``: the images', put in front of the predictor's errors."""
    timing = {}
    start = time.perf_counter()
    pixels = [pixels_of(image, profile, seed)[0](whole(image.shape)) for image, profile, seed in images]
    start = _tick(timing, "pixels", start)
    with named(names):
        results = list(model.segment_batch([np.asarray(p) for p in pixels]))
        if len(results) != len(images):
            raise ModelError(f"{predictor_name(model)} returned {len(results)} label images for "
                             f"{len(images)} images")
        labelled = []
        for k, result in enumerate(results):
            try:
                labelled.append(checked_labels(model, result, images[k][0].shape))
            except ModelError as exc:
                exc.index = k
                raise
    start = _tick(timing, "predictor", start)
    out = []
    for (image, _, _), labels, p in zip(images, labelled, pixels):
        labels = filter_small(labels, min_area)
        table = measure(labels, intensity(image, p, units), spacing)
        out.append((PackedLabels.pack(compact(labels)), table))
    _tick(timing, "measuring", start)
    return out, timing


def batches(n_items: int, workers: int) -> list[range]:
    """``n_items`` cut into one run of consecutive items per worker (fewer when items are fewer), of
    sizes differing by one at most."""
    n = max(1, min(workers, n_items))
    cuts = [n_items * k // n for k in range(n + 1)]
    return [range(a, b) for a, b in zip(cuts, cuts[1:]) if b > a]


def match_task(packed, table, raw_labels, raw_xy, matching, keep_packed, spacing=None, classes=None, sample=None):
    """One segmented image's objects aligned to the raw ones (a task)."""
    timing = {}
    objects = match_objects(packed.unpack(), raw_labels, raw_xy, matching, timing, table=table, spacing=spacing,
                            classes=classes, sample=sample)
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


def assemble_mask(shape, tiles, parts, *, sampled: bool = False) -> np.ndarray:
    """An image's mask (a class map) from its :func:`mask_task` results (``parts``: one per group of
    ``tiles``); ``sampled``: the tiles are a sample's, the mask is background elsewhere."""
    make = np.zeros if sampled else np.empty
    mask = make(shape, dtype=np.uint8 if isinstance(parts[0], dict) else bool)
    for group, packed in zip(tiles, parts):
        sizes = [math.prod(c.stop - c.start for c in t.core) for t in group]
        bits = packed["classes"] if isinstance(packed, dict) else np.unpackbits(packed, count=sum(sizes)).view(bool)
        for t, start, n in zip(group, np.cumsum([0, *sizes[:-1]]), sizes):
            mask[t.core] = bits[start:start + n].reshape(tuple(c.stop - c.start for c in t.core))
    return mask


def label_measure(shape, tiles, parts, min_area, timing, pixels=None, spacing=None, sample=None):
    """Labels and measurements of an image whose mask came in parts; ``pixels``: ``(image, profile,
    seed, units)`` for the intensities (the image, or with ``seed`` its replica drawn again; with
    ``sample`` on its sampled tiles only, where the objects touching a tile's inner faces are dropped)."""
    start = time.perf_counter()
    mask = assemble_mask(shape, tiles, parts, sampled=sample is not None)
    labels = label_mask(mask, min_area)
    if sample is not None:
        labels = sample.whole(labels)
    ids = object_classes(labels, mask) if mask.dtype != bool else None
    del mask
    start = _tick(timing, "labelling", start)
    values = None
    if pixels is not None:
        image, profile, seed, units = pixels
        values = intensity(image, sampled_pixels(pixels_of(image, profile, seed)[0], shape, sample), units)
    table = measure(labels, values, spacing, ids)
    _tick(timing, "measuring", start)
    return labels, table


def finish_task(shape, tiles, parts, min_area, raw_labels, raw_xy, matching, keep_packed, pixels=None, spacing=None,
                classes=None, sample=None):
    """One image's objects from its mask's parts: labelled, measured (intensities from ``pixels``, see
    :func:`label_measure`) and aligned to the raw objects (a task); a replica's labels packed. ``sample``:
    the run's :class:`Sample` (the tiles are its tiles)."""
    timing = {}
    labels, table = label_measure(shape, tiles, parts, min_area, timing, pixels, spacing, sample)
    objects = match_objects(labels, raw_labels, raw_xy, matching, timing, table=table, spacing=spacing,
                            classes=classes, sample=sample)
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


def pair_classes(a: ImageObjects, b: ImageObjects) -> dict:
    """Two simulated acquisitions' objects' classes, for :func:`noisestat.measure.pair_unmatched` (empty
    with one class of object)."""
    if a.table_classes is None or b.table_classes is None:
        return {}
    return {"a_classes": a.table_classes, "b_classes": b.table_classes}


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
