"""The assessment pipeline: the one module that knows the order of the stages.

raw image + camera profile -> replicas -> pixel classifier -> objects -> morphometry ->
matching to the raw objects -> sigma_raw; each codec -> decoded image -> same chain -> eps.

Replicas, codecs and codec images are independent tasks run by an executor (:mod:`noisestat.engine`:
joblib with ``jobs`` workers, or a dask.distributed cluster); inside a task the predictor runs tile by
tile with exact halos. Each task draws its randomness from its own child seed (replica noise per
fixed block) and the forest sums its trees in a fixed order, so every number is the same for any
``jobs``, ``tile`` and scheduler.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time

import numpy as np

from . import __version__
from .camera._profile import CameraProfile, load_profile
from .codecs import CodecResult, parse_spec
from .codecs._base import code_image, prepare_image
from .engine._executors import JoblibExecutor, Pending, make_executor, parse_scheduler
from .engine._tiles import (MIN_TILE, _tick, default_tile, label_mask, predict_tile, segment_tiled, tile_grid,
                            values_tile)
from .errors import InputError
from .io._files import (array_sha256, check_labels, check_raw_image, codec_input_files, file_sha256,
                        prepare_output_dir, read_image_info, read_labels)
from .measure._matching import METHODS, STATUSES, classify_objects, match_centroids, match_iou, pair_unmatched
from .measure._morphometry import ANGULAR_PARAMETERS, PARAMETERS, measure_objects
from .measure._volume import VOLUME_PARAMETERS, measure_volume_objects
from .predict._forest import THRESHOLD, PixelClassifier, load_model
from .predict._protocol import predictor_kind
from .replicas._draw import MODE as REPLICA_MODE
from .replicas._draw import BlockCache, draw_region, replica_seeds
from .report._inspection import segmentation_warnings
from .report._tables import format_summary, write_assessment
from .results import (GLOBAL_PARAMETERS, Assessment, CodecScore, ImageObjects, PackedLabels, Reference, ValueAssessment,
                      ValueScore)
from .score._eps import GLOBAL_FLOOR, angular_mask, epsilon, floored, replica_spread, resolution_floor, summarise_eps
from .score._null import (band_counts, replica_pair_eps, second_acquisition_losses, unchanged_warning,
                          unstable_warning)
from .score._verdict import Margins, judge, keep_for_spread, parse_primary
from .score._pixels import pixel_eps, pixel_floor, pixel_null, pixel_sigma, pixel_summary
from .score._tests import codec_statistics, difference_stats, loss_test

__all__ = ["assess", "assess_files", "build_reference", "score_codec", "segment_and_match",
           # result types and writers, importable from here as before
           "Assessment", "CodecScore", "ImageObjects", "Reference", "write_assessment", "format_summary"]

_ANGULAR = angular_mask(PARAMETERS, ANGULAR_PARAMETERS)


# The raw image's features are kept from training for its own segmentation when they fit this size;
# beyond it (large images) they are computed again, tile by tile, so memory stays bounded by the tile.
RAW_FEATURE_CACHE_BYTES = 512 << 20


def _match_objects(labels: np.ndarray, raw_labels: np.ndarray, raw_xy: np.ndarray, matching: str,
                   timing: dict | None = None, table=None, intensity=None) -> ImageObjects:
    """Measure one image's objects (unless their ``table`` is known; ``intensity`` its values in
    electrons) and align them to the raw ones."""
    start = time.perf_counter()
    if table is None:
        table = _measure(labels, intensity)
        start = _tick(timing, "measuring", start)
    n_raw = len(raw_xy)
    if matching == "iou":
        m = match_iou(raw_labels, labels)
    else:
        m = match_centroids(raw_xy, np.column_stack([table.column("XM"), table.column("YM")]))
    values = np.full((n_raw, len(PARAMETERS)), np.nan)
    partner = np.zeros(n_raw, dtype=np.int64)
    status = classify_objects(raw_labels, labels, m.partner)
    # a merge under the centroid rule keeps its partner id but is not a match: no values, no eps
    hit = (m.partner >= 0) & (status == "matched")
    values[hit] = table.values[m.partner[hit]]
    partner[hit] = table.labels[m.partner[hit]]
    area = int(table.column("Area").sum()) if len(table) else 0
    counts = {**m.counts(), **{k: int((status == k).sum()) for k in STATUSES[1:]}, "n_reference": n_raw}
    _tick(timing, "matching", start)
    return ImageObjects(values, partner, len(table), area, counts, np.asarray(table.values), labels=_compact(labels),
                        status=status)


def _measure(labels: np.ndarray, intensity=None):
    """The ImageJ parameters of a 2D image's objects (shape, and intensity from ``intensity``); a
    volume's volume, centre and intensity (:func:`noisestat.measure.measure_volume_objects`)."""
    return measure_objects(labels, intensity) if labels.ndim == 2 else measure_volume_objects(labels, intensity)


def _electrons(pixels: np.ndarray, profile: CameraProfile | None) -> np.ndarray | None:
    """An image's values in electrons above the camera's offset, ``(y - offset) / gain`` (per pixel with
    sCMOS maps), float32: the units of the intensity parameters. None without a profile."""
    if profile is None:
        return None
    y = np.asarray(pixels, dtype=np.float32)
    maps = profile.pixel_maps
    if maps is not None and tuple(maps.shape) == y.shape[-2:]:
        return (y - np.asarray(maps.offset_dn, np.float32)) / np.asarray(maps.gain_dn_per_e, np.float32)
    return (y - np.float32(profile.offset_dn)) / np.float32(profile.gain_dn_per_e)


def _replica_mode(image: np.ndarray) -> str:
    """The replica mode a run's replicas were drawn in (a volume's are drawn as ``pixel-as-mean``)."""
    return REPLICA_MODE if image.ndim == 2 else "pixel-as-mean"


def _whole(shape) -> tuple:
    return tuple(slice(0, n) for n in shape)


def _judged(raw_labels: np.ndarray) -> tuple | None:
    """The parameters the verdict judges: all of them for an image, a volume's measured ones."""
    return None if raw_labels.ndim == 2 else VOLUME_PARAMETERS


def _compact(labels: np.ndarray) -> np.ndarray:
    """Labels in the smallest unsigned type that holds their ids (kept for every image of a run)."""
    top = int(labels.max()) if labels.size else 0
    return labels.astype(np.uint16, copy=False) if top < 2**16 else labels


def _image_task(image, model, tile, threads, raw_labels, raw_xy, matching, min_area, labels=None, units=None):
    """One image's aligned objects (segmented here unless its ``labels`` are known; intensities in
    electrons of the camera ``units``) and its timing."""
    timing = {}
    if labels is None:
        labels = segment_tiled(lambda r: image[r], image.shape, model, tile, min_area, timing=timing,
                               threads=threads)
    return _match_objects(labels, raw_labels, raw_xy, matching, timing, intensity=_electrons(image, units)), timing


def _pixels_of(image, profile, seed):
    """``get(region)`` giving an image's pixels on a region: the image's own, or with ``seed`` its
    replica's, drawn with the noise blocks kept in the returned cache for the next regions."""
    blocks = BlockCache()
    if seed is None:
        return (lambda region: image[region]), blocks
    return (lambda region: draw_region(image, profile, seed, region, blocks)), blocks


def _objects_task(image, model, tile, threads, min_area, profile=None, seed=None, units=None):
    """One image segmented by a :class:`~noisestat.predict.LabelPredictor` and measured, its labels
    packed for the way back (a task): the raw image, a codec's, or with ``seed`` a replica. Needs
    nothing of the raw image's objects, so the raw image runs in the same batch. (A mask
    predictor's images go through :func:`_mask_task` and :func:`_finish_task`.)"""
    timing = {}
    get, blocks = _pixels_of(image, profile, seed)
    # the drawn blocks are dropped once the mask is predicted: labelling is the task's peak
    labels = segment_tiled(get, image.shape, model, tile, min_area, timing=timing, threads=threads,
                           predicted=blocks.clear)
    start = time.perf_counter()
    table = _measure(labels, _electrons(get(_whole(image.shape)), units))
    _tick(timing, "measuring", start)
    return PackedLabels.pack(_compact(labels)), table, timing


def _match_task(packed, table, raw_labels, raw_xy, matching, keep_packed):
    """One segmented image's objects aligned to the raw ones (a task)."""
    timing = {}
    objects = _match_objects(packed.unpack(), raw_labels, raw_xy, matching, timing, table=table)
    return (dataclasses.replace(objects, labels=packed) if keep_packed else objects), timing


def _mask_task(image, model, tiles, threads, profile=None, seed=None):
    """The predictor's mask on the cores of ``tiles`` (a task: part of one image, or with ``seed``
    part of a replica, drawn region by region with its noise blocks kept for the next tiles), the
    cores' pixels in tile order packed to bits."""
    timing = {}
    get = _pixels_of(image, profile, seed)[0]
    cores = [predict_tile(get, model, t, timing=timing, threads=threads).reshape(-1) for t in tiles]
    return np.packbits(np.concatenate(cores)), timing


def _assemble_mask(shape, tiles, parts) -> np.ndarray:
    """An image's mask from its :func:`_mask_task` results (``parts``: one per group of ``tiles``)."""
    mask = np.empty(shape, dtype=bool)
    for group, packed in zip(tiles, parts):
        sizes = [math.prod(c.stop - c.start for c in t.core) for t in group]
        bits = np.unpackbits(packed, count=sum(sizes)).view(bool)
        for t, start, n in zip(group, np.cumsum([0, *sizes[:-1]]), sizes):
            mask[t.core] = bits[start:start + n].reshape(tuple(c.stop - c.start for c in t.core))
    return mask


def _label_measure(shape, tiles, parts, min_area, timing, pixels=None):
    """Labels and measurements of an image whose mask came in parts; ``pixels``: ``(image, profile,
    seed, units)`` for the intensities (the image, or with ``seed`` its replica drawn again)."""
    start = time.perf_counter()
    labels = label_mask(_assemble_mask(shape, tiles, parts), min_area)
    start = _tick(timing, "labelling", start)
    intensity = None
    if pixels is not None:
        image, profile, seed, units = pixels
        intensity = _electrons(_pixels_of(image, profile, seed)[0](_whole(shape)), units)
    table = _measure(labels, intensity)
    _tick(timing, "measuring", start)
    return labels, table


def _finish_task(shape, tiles, parts, min_area, raw_labels, raw_xy, matching, keep_packed, pixels=None):
    """One image's objects from its mask's parts: labelled, measured (intensities from ``pixels``, see
    :func:`_label_measure`) and aligned to the raw objects (a task); a replica's labels packed."""
    timing = {}
    labels, table = _label_measure(shape, tiles, parts, min_area, timing, pixels)
    objects = _match_objects(labels, raw_labels, raw_xy, matching, timing, table=table)
    if keep_packed:
        objects = dataclasses.replace(objects, labels=PackedLabels.pack(objects.labels))
    return objects, timing


def _tile_groups(tiles, parts: int) -> list[list]:
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


def _parts_per_image(n_images: int, workers: int, n_tiles: int) -> int:
    """Parts each image's tiles are cut into so that the batch's rounds come out even: the p in
    1..4 (at most the tiles) with the shortest ceil(n_images p / workers) / p, the smallest on a tie."""
    best, best_p = None, 1
    for p in range(1, min(4, n_tiles) + 1):
        span = math.ceil(n_images * p / workers) / p
        if best is None or span < best - 1e-12:
            best, best_p = span, p
    return best_p


def segment_and_match(ref: Reference, image: np.ndarray) -> ImageObjects:
    """Objects of another image of the same scene as ``ref``'s raw image, aligned to the raw objects."""
    return _image_task(image, ref.model, ref.tile, 1, ref.raw_labels, ref.raw_xy, ref.matching, ref.min_area,
                       units=ref.profile)[0]


def _in_threads(model, labels) -> bool:
    """Whether this machine's workers are threads: for noisestat's forest (trained here from
    ``labels`` or given), whose heavy parts release the GIL, so the tasks share the arrays and one
    interpreter (:class:`noisestat.engine.JoblibExecutor`); processes for other predictors."""
    return labels is not None or isinstance(model, PixelClassifier)


def _apply_codec(codec, image, profile):
    """One codec's result and the seconds it took (a task)."""
    start = time.perf_counter()
    result = code_image(codec, image, profile)
    return result, time.perf_counter() - start


def _start_codecs(executor, codecs, image, profile) -> Pending:
    """Every codec's result on ``image``, on its way: the codecs run while this process trains and
    segments the raw image (:meth:`Pending.result` waits for them before the batch that needs the
    decoded images, so a setting that cannot be coded stops the run before the long part). On this
    machine they run in a background thread (threads) or at once (worker processes); on a cluster,
    codecs that read files (a decoded image, a checkpoint) run here at once, where those files are,
    the others on the workers."""
    names = [f"codec {c.spec}" for c in codecs]
    if isinstance(executor, JoblibExecutor):
        away, here = list(range(len(codecs))), {}
        remote = executor.start(_apply_codec, [(c, image, profile) for c in codecs], names)
    else:
        away = [i for i, c in enumerate(codecs) if not codec_input_files([c])]
        shared_image = executor.share(image) if away else None
        remote = executor.start(_apply_codec, [(codecs[i], shared_image, profile) for i in away],
                                [names[i] for i in away])
        here = {i: _apply_codec(c, image, profile) for i, c in enumerate(codecs) if i not in away}

    def collect():
        done = {**here, **dict(zip(away, remote.result()))}
        return [done[i] for i in range(len(codecs))]

    return Pending(collect)


def _parse_codecs(codecs) -> list:
    codecs = [parse_spec(c) if isinstance(c, str) else c for c in codecs]
    if not codecs:
        raise InputError("no codec to assess: give at least one codec spec")
    specs = [c.spec for c in codecs]
    if len(set(specs)) != len(specs):
        raise InputError(f"codec specs must be distinct; got {specs}")
    return codecs


def assess(image: np.ndarray, profile: CameraProfile, codecs, *, model: PixelClassifier | None = None,
           labels: np.ndarray | None = None, replicas: int = 10, seed: int = 0, jobs: int = 1,
           matching: str = "iou", min_area: int = 0, model_seeds: int = 0, provenance: dict | None = None,
           progress=None, tile: int | None = None, scheduler: str | None = None, notice=None,
           spacing: tuple | None = None, margins=None, primary=None, verdict_anyway: bool = False) -> Assessment:
    """Score codecs against the camera noise of one raw image.

    Parameters
    ----------
    image : ndarray of int, shape (rows, cols)
        The raw image (DN).
    profile : CameraProfile
    codecs : sequence of str or Codec
        Codec specs (``"jpeg:ratio=10"``) or codecs built by :func:`noisestat.codecs.parse_spec`.
    model : PixelClassifier, optional
        A fitted classifier. Exactly one of ``model`` and ``labels``.
    labels : ndarray, optional
        Sparse labels (0 unlabelled, 1 background, 2 object) to train a classifier on ``image``
        with a seed drawn from ``seed``.
    replicas : int, default 10
        Monte-Carlo raw-equivalent images.
    seed : int, default 0
        The one seed every random choice flows from (forest and replicas).
    jobs : int, default 1
        Parallel workers; the numbers do not depend on it.
    matching : {"iou", "centroid"}
        Object matching rule (:mod:`noisestat.measure`).
    min_area : int, default 0
        Objects smaller than this many pixels are discarded in every image (raw, replicas,
        codecs), as ImageJ's Analyze Particles size filter does. 0 keeps every object.
    model_seeds : int, default 0
        Retrain the forest with this many other seeds to measure sigma_model, the spread due to
        the forest's own randomness (needs ``labels``); reported beside sigma_raw, never mixed in.
    progress : callable, optional
        ``progress(task_name, done, total)`` after each replica, codec image or forest.
    tile : int, optional
        Tile edge in pixels: features and prediction run per tile with an exact halo, so the numbers
        do not depend on it; memory does (default: :func:`noisestat.engine.default_tile`).
    scheduler : str, optional
        ``"tcp://HOST:PORT"``: run the tasks on that dask.distributed cluster; ``"local:N"``: on a
        local one of N workers started for this run. ``jobs`` is then ignored; the numbers are the same.
    spacing : tuple of float, optional
        Physical voxel size per axis (z, y, x) of a volume: the forest trained here on a volume
        uses it for its anisotropic feature scales (read from the file's metadata by
        :func:`assess_files`).
    notice : callable, optional
        ``notice(message, seconds)`` for things to say on the way: the estimated duration before the
        long part (``seconds`` the estimate), a lost dask worker (``seconds`` None).
    margins : Margins or str, optional
        The verdict's margins (:class:`noisestat.score.Margins`, or its text ``"shift=0.5,spread=1.5"``).
    primary : sequence of str or str, optional
        The parameters the verdict judges (default :data:`noisestat.score.PRIMARY`; ``"all"``).
    verdict_anyway : bool, default False
        Give the verdict even when the raw segmentation is unfit to be judged (giant, fragmented or
        unstable: see the warnings); by default it is withheld (every outcome ``inconclusive``).

    Returns
    -------
    Assessment
        A :class:`~noisestat.predict.ValuePredictor` ``model`` is refused: :func:`assess_values`
        assesses it.
    """
    if model is not None and labels is None and predictor_kind(model) == "values":
        # one function, one result type: a value predictor's pixels have their own assessment
        raise InputError(f"{type(model).__name__} gives a value per pixel, not objects: assess it with "
                         f"noisestat.assess_values (per-pixel eps and its null)")
    started = time.time()
    warnings: list[str] = []  # things the user must know to read the verdict; in summary and report
    check_raw_image(image)
    image_name = (provenance or {}).get("inputs", {}).get("image", {}).get("path", "image")
    warnings.extend(_check_range(image, profile, image_name))
    if (model is None) == (labels is None):
        raise InputError("give exactly one of a trained model or sparse labels")
    if matching not in METHODS:
        raise InputError(f"matching must be one of {', '.join(METHODS)}; got {matching!r}")
    if replicas < 2:
        raise InputError(f"at least 2 replicas are needed to estimate sigma_raw; got {replicas}")
    if model_seeds < 0:
        raise InputError(f"model_seeds must be >= 0; got {model_seeds}")
    if model_seeds and labels is None:
        raise InputError("model_seeds needs sparse labels to retrain the forest (a saved model has one seed)")
    if min_area < 0:
        raise InputError(f"min_area must be >= 0 pixels; got {min_area}")
    if jobs == 0:
        raise InputError("jobs must be a positive number of workers (or negative: all cores but |jobs|-1)")
    if labels is not None:
        check_labels(labels, shape=image.shape)
    codecs = _parse_codecs(codecs)
    if tile is not None and (int(tile) != tile or tile < MIN_TILE):
        raise InputError(f"tile must be a whole number of pixels >= {MIN_TILE}; got {tile}")
    parse_scheduler(scheduler)
    margins = margins if isinstance(margins, Margins) else Margins.parse(margins)
    parse_primary(primary, PARAMETERS if image.ndim == 2 else VOLUME_PARAMETERS)
    if model is not None:
        predictor_kind(model)
    for codec in codecs:
        prepare_image(codec, image, profile)
    with make_executor(jobs, scheduler, notice=notice, threads=_in_threads(model, labels)) as executor:
        # seconds this process spends on the codecs (starting them, then waiting for any still running
        # once the raw image is segmented: they run meanwhile), beside the codecs' own seconds
        start = time.perf_counter()
        pending = _start_codecs(executor, codecs, image, profile)
        codec_wait = time.perf_counter() - start

        def decoded():
            nonlocal codec_wait
            start = time.perf_counter()
            images = [c.decoded for c, _ in pending.result()]
            codec_wait += time.perf_counter() - start
            return images

        ref, codec_objects = build_reference(image, profile, model=model, labels=labels, replicas=replicas,
                                             seed=seed, jobs=jobs, matching=matching, min_area=min_area,
                                             model_seeds=model_seeds, extra_images=decoded,
                                             progress=progress, tile=tile, executor=executor, notice=notice,
                                             spacing=spacing, margins=margins, primary=primary)
        coded = [c for c, _ in pending.result()]
        codec_seconds = sum(seconds for _, seconds in pending.result())
    scores = [score_codec(ref, c, objects) for c, objects in zip(coded, codec_objects)]
    model, trained, raw = ref.model, ref.trained, ref.raw

    prov = {"noisestat": __version__, "seed": seed, "replica_mode": _replica_mode(image), "model_seeds": model_seeds,
            "noise_model": profile.noise_model, "matching": matching,
            "threshold": THRESHOLD if isinstance(model, PixelClassifier) else None,
            "connectivity": 8 if image.ndim == 2 else 26, "min_area": min_area,
            "classifier": model.describe(), "classifier_trained_here": trained, "jobs": jobs,
            "tile": ref.tile, "engine": executor.description,
            "timing": {**ref.timing, "codecs": round(codec_seconds, 3), "codecs_wait": round(codec_wait, 3),
                       "wall": round(time.time() - started, 3)},
            "camera": profile.to_dict(), "image_shape": list(image.shape), "image_dtype": str(image.dtype),
            "image_sha256": array_sha256(image), "seconds": round(time.time() - started, 2)}
    prov.update(provenance or {})
    # a raw segmentation unfit to be judged (giant, fragmented, unstable) gets no verdict unless asked for:
    # its warnings come first, everywhere they are shown
    unfit = segmentation_warnings(raw, image.shape) + ([ref.unstable] if ref.unstable else [])
    withheld = None
    if unfit:
        kinds = [k for k in ("giant", "fragmented", "unstable") if any(k in w[:40] for w in unfit)]
        withheld = (f"the raw segmentation is {' and '.join(kinds) or 'unfit'} (see the warnings): fix the labels or "
                    f"the model, or ask for the verdict anyway (--verdict-anyway)")
        if not verdict_anyway:
            scores = [dataclasses.replace(c, tolerable=False, withheld=withheld) for c in scores]
    others = [w for w in segmentation_warnings(raw, image.shape, scores) if w not in unfit]
    warnings = unfit + warnings + others
    prov["verdict"] = {"margins": ref.margins.to_dict(), "primary": list(ref.primary),
                       "withheld": withheld if not verdict_anyway else None, "verdict_anyway": verdict_anyway}
    return Assessment(raw, ref.raw_objects, ref.sigma_raw, ref.n_replicas_matched, ref.replica_globals,
                      ref.replica_matching, tuple(scores), ref.rule, prov, model,
                      image=image, raw_labels=ref.raw_labels, replica_values=ref.replica_values,
                      null_eps=ref.null_eps, null_globals_eps=ref.null_globals_eps,
                      null_statistics=ref.null_statistics, null_tolerable=ref.null_tolerable,
                      sigma_model=ref.sigma_model, null_fractions=ref.null_fractions,
                      warnings=tuple(warnings) + tuple(w for w in ref.warnings if w not in warnings),
                      sigma_floor=ref.sigma_floor,
                      replica_status=ref.replica_status, null_loss=ref.null_loss, null_verdict=ref.null_verdict)


def build_reference(image, profile, *, model=None, labels=None, replicas=10, seed=0, jobs=1, matching="iou",
                    min_area=0, model_seeds=0, extra_images=(), progress=None, tile=None, scheduler=None,
                    executor=None, notice=None, spacing=None, margins=None, primary=None):
    """Segment the raw image, its replicas and two null replicas (and ``extra_images``, in the same
    parallel batch); returns the :class:`Reference` and the extra images' aligned objects.
    ``extra_images`` is a sequence of images or a callable that returns one: it is called once the
    raw image is segmented, just before the batch (codecs still running elsewhere are waited for there).

    Besides sigma_raw it fixes, from the replicas alone, the sigma floor per parameter
    (:func:`noisestat.score.resolution_floor`), the fraction |eps| < 1 and the rate of raw-object
    losses of simulated second acquisitions (pairs of replicas), and warns when the replicas
    themselves lose many raw objects (:data:`noisestat.score.UNSTABLE_FRACTION`).
    """
    if executor is None:
        with make_executor(jobs, scheduler, notice=notice, threads=_in_threads(model, labels)) as own:
            return build_reference(image, profile, model=model, labels=labels, replicas=replicas, seed=seed,
                                   jobs=jobs, matching=matching, min_area=min_area, model_seeds=model_seeds,
                                   extra_images=extra_images, progress=progress, tile=tile, executor=own,
                                   notice=notice, spacing=spacing, margins=margins, primary=primary)
    margins = margins if isinstance(margins, Margins) else Margins.parse(margins)
    started = time.perf_counter()
    timing: dict = {}
    forest_seed, replica_root, model_root = _seed_roots(seed)
    trained = labels is not None
    # Threads for one task's feature filters: this machine's cores shared among the workers.
    local = isinstance(executor, JoblibExecutor)
    threads = max(1, (os.cpu_count() or 1) // executor.workers) if local else 1
    # The predictor runs on every image in one batch of tasks; a second, short one labels, measures
    # and aligns each image to the raw image's objects. The raw image is segmented here first, on
    # every core of this machine, when there is one worker, or when training kept its features and
    # the workers are no more than this machine's cores (its trees alone then take less wall time
    # here than its features and trees as one more image of the batch); its time gives the
    # estimate. Otherwise it is one more image of the batch (its features computed again there, in
    # parallel: less wall time than a serial pass here while the workers wait), and one tile
    # measured here gives the estimate.
    raw_here = executor.workers == 1 or (not trained and predictor_kind(model) == "labels")
    raw_features = None
    if trained:
        # on a cluster the client's own cores are free while it trains (the forest does not depend on them)
        model = _new_forest(forest_seed, image.ndim, jobs if local else -1, spacing)
        tile = tile or default_tile(model, image.ndim)
        kept = image.size * model.n_features(image.ndim) * 4 <= RAW_FEATURE_CACHE_BYTES  # as _training_pixels
        raw_here = raw_here or (kept and executor.workers <= (os.cpu_count() or 1))
        # training runs here while the workers wait: its features take every core of this machine
        raw_features = _train(model, image, labels, tile, os.cpu_count() or 1, timing, keep=raw_here)
    tile = tile or default_tile(model, image.ndim)

    shared_image, shared_model = executor.share(image), executor.share(model)
    kind = predictor_kind(model)
    raw_timing: dict = {}
    raw_threads = os.cpu_count() or 1
    if raw_here:
        raw_labels = segment_tiled(lambda r: image[r], image.shape, model, tile, min_area, timing=raw_timing,
                                   features=raw_features, threads=raw_threads)
        start = time.perf_counter()
        raw = _measure(raw_labels, _electrons(image, profile))
        _tick(raw_timing, "measuring", start)
    del raw_features
    if callable(extra_images):
        extra_images = extra_images()
    seeds = replica_seeds(replica_root, replicas + 2)
    # A decoded image identical to the raw one (a lossless codec) has the raw segmentation: the forest
    # is deterministic, so it is not run again.
    same = [_same_image(extra, image) for extra in extra_images]
    n_images = replicas + 2 + sum(not s for s in same) + model_seeds + (not raw_here)  # the raw one when in the batch

    def estimate():
        # From the raw image's time, before the batch; when the raw image is in the batch, from one
        # tile measured here once the workers have their tasks (this process only waits for them).
        if notice is not None:
            _notice_estimate(notice, image, model, tile, threads, (raw_timing, raw_threads) if raw_here else None,
                             timing if trained else {}, n_images, executor.workers)

    if raw_here:
        estimate()

    # N replicas estimate sigma_raw; two more, independent of them, simulate a second raw acquisition
    # (their difference over sigma_raw is the null distribution of eps). The images of the batch:
    images = [(f"replica {i + 1}" if i < replicas else f"null pair {i - replicas + 1}", shared_image, profile, s)
              for i, s in enumerate(seeds)]
    images += [(f"codec image {i + 1}", extra, None, None) for i, (extra, s) in enumerate(zip(extra_images, same))
               if not s]
    if not raw_here:
        images.insert(0, ("raw image", shared_image, None, None))
    batch_start = time.perf_counter()  # wall time of the batches: the part the workers share
    if kind == "mask":
        # each image's tiles in a few parts when that evens out the rounds of the batch (7 images on
        # 2 workers: 14 half images); the masks are labelled, measured and matched in the second batch
        tiles = tile_grid(image.shape, tile, tuple(model.halo(image.ndim)))
        groups = _tile_groups(tiles, _parts_per_image(len(images), executor.workers, len(tiles)))
        tasks = [(im, shared_model, g, threads, prof, sd) for _, im, prof, sd in images for g in groups]
        names = [name if len(groups) == 1 else f"{name} part {k + 1}/{len(groups)}"
                 for name, *_ in images for k in range(len(groups))]
        masks = executor.map(_mask_task, tasks, names, progress, started=None if raw_here else estimate)
        batch_wall = time.perf_counter() - batch_start
        for _, t in masks:
            _merge_timing(timing, t)
        segmented = [[m for m, _ in masks[i * len(groups):(i + 1) * len(groups)]] for i in range(len(images))]
        del masks
        if not raw_here:
            raw_labels, raw = _label_measure(image.shape, groups, segmented.pop(0), min_area, raw_timing,
                                             (image, None, None, profile))
    else:
        common = (shared_model, tile, threads, min_area)
        segmented = executor.map(_objects_task, [(im, *common, prof, sd, profile) for _, im, prof, sd in images],
                                 [name for name, *_ in images], progress, started=None if raw_here else estimate)
        batch_wall = time.perf_counter() - batch_start
        for *_, t in segmented:
            _merge_timing(timing, t)
        segmented = [(packed, table) for packed, table, _ in segmented]
        if not raw_here:
            packed, raw = segmented.pop(0)
            raw_labels = packed.unpack()
            del packed
    del images
    _merge_timing(timing, raw_timing)
    raw_xy = np.column_stack([raw.column("XM"), raw.column("YM")])
    raw_objects = ImageObjects(raw.values, raw.labels.astype(np.int64), len(raw),
                               int(raw.column("Area").sum()) if len(raw) else 0, {}, np.asarray(raw.values),
                               labels=raw_labels, status=np.full(len(raw), "matched", dtype="<U7"))

    shared_labels = executor.share(raw_labels)
    raw_packed = PackedLabels.pack(_compact(raw_labels)) if any(same) else None
    parts = iter(segmented)
    tasks = []
    for i in range(replicas + 2 + len(extra_images)):
        keep_packed = i < replicas + 2
        if not keep_packed and same[i - replicas - 2]:
            tasks.append((_match_task, (raw_packed, raw, shared_labels, raw_xy, matching, False)))
        elif kind == "mask":
            # the intensities: a replica drawn again from its seed (exactly as its mask saw it), or the image
            pixels = ((shared_image, profile, seeds[i], profile) if keep_packed
                      else (extra_images[i - replicas - 2], None, None, profile))
            tasks.append((_finish_task, (image.shape, groups, next(parts), min_area, shared_labels, raw_xy, matching,
                                         keep_packed, pixels)))
        else:
            tasks.append((_match_task, (*next(parts), shared_labels, raw_xy, matching, keep_packed)))
    del segmented, parts
    names = ([f"replica {i + 1}" for i in range(replicas)] + ["null pair 1", "null pair 2"]
             + [f"codec image {i + 1}" for i in range(len(extra_images))])
    start = time.perf_counter()
    results = executor.map(_call, tasks, [f"objects of {n}" for n in names])
    timing["batch_wall"] = batch_wall + time.perf_counter() - start
    del tasks
    for _, t in results:
        _merge_timing(timing, t)
    results = [r for r, _ in results]
    replica_objects, null_pair, extra_objects = results[:replicas], results[replicas:replicas + 2], results[replicas + 2:]

    stack = np.stack([r.values for r in replica_objects]) if len(raw) else np.empty((replicas, 0, len(PARAMETERS)))
    sigma, n_matched = replica_spread(raw.values, stack, _ANGULAR)
    floor = resolution_floor(raw.values, stack, _ANGULAR)
    sigma_used = floored(sigma, floor[None])
    replica_globals = np.stack([r.globals for r in replica_objects])
    sigma_global = floored(replica_globals.std(axis=0, ddof=1), GLOBAL_FLOOR)

    null_eps = epsilon(null_pair[0].values, null_pair[1].values, sigma_used, _ANGULAR)
    null_globals = epsilon(null_pair[0].globals, null_pair[1].globals, sigma_global, np.zeros(2, bool))
    # the simulated second acquisitions (noisestat.score._null): replica pairs, then the extra pair
    pairs_eps = replica_pair_eps(raw.values, stack, floor, _ANGULAR)
    pooled_eps = np.concatenate([pairs_eps, null_eps])
    null_fractions = band_counts(pooled_eps, PARAMETERS)
    # the extra pair is judged against the replica pairs alone (its reference must not contain itself)
    null_stats = codec_statistics(null_eps, PARAMETERS, band_counts(pairs_eps, PARAMETERS) if len(pairs_eps)
                                  else None, margin=margins.shift, keep=keep_for_spread(margins.spread, replicas))
    pair_counts = [pair_unmatched(*_pair_args(replica_objects[2 * k], replica_objects[2 * k + 1]), matching)
                   for k in range(replicas // 2)]
    null_pair_counts = pair_unmatched(*_pair_args(null_pair[0], null_pair[1]), matching)
    pairs_loss, null_loss = second_acquisition_losses(pair_counts, null_pair_counts, matching)
    primary = parse_primary(primary, _judged(raw_labels) or PARAMETERS)
    null_verdict = judge(null_stats, null_eps, PARAMETERS, pairs_eps if len(pairs_eps) else None,
                         dict(zip(GLOBAL_PARAMETERS, null_globals)), replicas,
                         loss={"n_unmatched": null_pair_counts[0], "n_raw": null_pair_counts[1],
                               "null_unmatched": pairs_loss["unmatched"], "null_n": pairs_loss["n"]},
                         margins=margins, primary=primary, judged=_judged(raw_labels))

    replica_status = (np.stack([r.status for r in replica_objects]) if len(raw)
                      else np.empty((replicas, 0), dtype="<U7"))
    unstable = unstable_warning(replica_status, n_matched, STATUSES)
    unchanged = unchanged_warning(floor, sigma, PARAMETERS) if len(raw) else None
    warnings = [w for w in (unstable, unchanged) if w]

    sigma_model = None
    if model_seeds:
        # One feature computation serves the training of every retrained forest.
        rows, targets = _training_pixels(model, image, labels, tile, threads, timing)[:2]
        forests = [_new_forest(s, image.ndim, jobs, spacing).fit_pixels(rows, targets, ndim=image.ndim)
                   for s in model_root.spawn(model_seeds)]
        del rows, targets
        others = executor.map(_image_task, [(shared_image, f, tile, threads, shared_labels, raw_xy, matching,
                                             min_area, None, profile) for f in forests],
                              [f"forest seed {i + 1}" for i in range(model_seeds)], progress)
        for _, t in others:
            _merge_timing(timing, t)
        sigma_model, _ = replica_spread(raw.values, np.stack([o.values for o, _ in others]), _ANGULAR)
    timing = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in timing.items()}
    if timing.get("pixels_predicted"):
        n_trees = len(model.forest_.estimators_)
        timing["trees_evaluated_fraction"] = round(timing["tree_evaluations"] / (timing["pixels_predicted"] * n_trees), 4)
    timing["reference_wall"] = round(time.perf_counter() - started, 3)

    ref = Reference(profile, model, trained, seed, matching, min_area, raw, raw_labels, raw_objects, raw_xy, sigma,
                    n_matched, stack, replica_globals, tuple(r.matching for r in replica_objects), null_eps,
                    null_globals, null_stats, null_fractions, (null_verdict.tolerable, null_verdict.reasons),
                    null_verdict.rule, sigma_model, tuple(warnings), floor, replica_status, null_loss, tile, timing,
                    margins=margins, primary=primary, null_verdict=null_verdict, pooled_null_eps=pooled_eps,
                    unstable=unstable)
    return ref, extra_objects


def _notice_estimate(notice, image, model, tile, threads, raw, train_timing, n_images, workers) -> None:
    """Say how long the batch will take: from the raw image's measured time (``raw``: its timing and
    the threads it had) or, when it runs in the batch, from one tile measured here (features and
    trees), scaled to the image."""
    keys = ("pixels", "features", "trees", "predictor", "labelling", "measuring")
    if raw is not None:
        raw_timing, raw_threads = raw
        per_image = sum(raw_timing.get(k, 0.0) for k in keys)
        if raw_timing.get("features", 0.0) == 0.0:  # its features came from training: count them for the others
            per_image += train_timing.get("features", 0.0)
        source = f"the raw image took {_duration(per_image)}"
    else:
        tiles = tile_grid(image.shape, tile, tuple(model.halo(image.ndim)))
        one = max(tiles, key=lambda t: t.size)
        measured: dict = {}
        if predictor_kind(model) == "values":
            values_tile(lambda r: image[r], model, one, timing=measured)
        else:
            predict_tile(lambda r: image[r], model, one, timing=measured, threads=threads)
        core = math.prod(c.stop - c.start for c in one.core)
        seconds = sum(measured.get(k, 0.0) for k in keys)
        per_image = seconds * image.size / core
        raw_threads = threads
        source = f"one tile of {core} pixels took {seconds:.1f} s"
    # each task has ``threads`` threads where the measurement had ``raw_threads`` (an upper bound)
    estimate = per_image * raw_threads / threads * n_images / max(1, min(workers, n_images))
    notice(f"estimated time: {_duration(estimate)} for {n_images} images of {image.size} pixels on {workers} "
           f"worker{'s' if workers > 1 else ''} ({source})", estimate)


def _seed_roots(seed: int) -> tuple:
    """The forest's, the replicas' and the retrained forests' seed sequences, from the one seed
    (the third of four children is unused, kept so that these stay what they have been)."""
    forest, replicas, _, models = np.random.SeedSequence(seed).spawn(4)
    return forest, replicas, models


def _call(fn, args):
    return fn(*args)


def _merge_timing(total: dict, part: dict) -> None:
    for k, v in part.items():
        total[k] = total.get(k, 0) + v


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _new_forest(seed, ndim: int, jobs: int, spacing=None) -> PixelClassifier:
    """noisestat's forest, Weka's 2D features for images, the ilastik-style set (anisotropic with
    the voxel ``spacing``) for volumes."""
    if ndim == 2:
        return PixelClassifier(random_state=np.random.default_rng(seed), n_jobs=jobs)
    return PixelClassifier(random_state=np.random.default_rng(seed), n_jobs=jobs, feature_set="ilastik",
                           spacing=None if spacing is None else tuple(float(v) for v in spacing))


def _training_pixels(model, image, labels, tile, threads, timing, keep=False):
    """Features of the labelled pixels, in the image's raster order (the rows and order a whole-image
    computation gives), their labels, and, when ``keep`` and they fit
    :data:`RAW_FEATURE_CACHE_BYTES`, every tile's features for the raw segmentation."""
    tiles = tile_grid(image.shape, tile, tuple(model.halo(image.ndim)))
    n_features = model.n_features(image.ndim)
    cache = {} if keep and image.size * n_features * 4 <= RAW_FEATURE_CACHE_BYTES else None
    # the labelled pixels' raster positions: each tile writes its rows straight into their place
    # in one array (no per-tile lists concatenated and sorted: three copies of the training set)
    everywhere = np.flatnonzero(np.asarray(labels).reshape(-1) > 0)
    rows = np.empty((len(everywhere), n_features), dtype=np.float32)
    targets = np.empty(len(everywhere), dtype=np.asarray(labels).dtype)
    for t in tiles:
        picked = labels[t.core] > 0
        if not picked.any() and cache is None:
            continue
        start = time.perf_counter()
        features = model.features(np.asarray(image[t.region]), threads=threads, inner=t.inner)
        _tick(timing, "features", start)
        if picked.any():
            where = np.nonzero(picked)
            flat = np.ravel_multi_index(tuple(w + c.start for w, c in zip(where, t.core)), image.shape)
            place = np.searchsorted(everywhere, flat)
            rows[place] = features[where]
            targets[place] = labels[t.core][where]
        if cache is not None:
            cache[t.index] = features
    return rows, targets, cache


def _train(model, image, labels, tile, threads, timing, keep=True):
    """Fit ``model`` on the labelled pixels (features per tile); return the raw features kept
    (``keep``, and when they fit :data:`RAW_FEATURE_CACHE_BYTES`) or None."""
    rows, targets, cache = _training_pixels(model, image, labels, tile, threads, timing, keep=keep)
    start = time.perf_counter()
    model.fit_pixels(rows, targets, ndim=image.ndim)
    _tick(timing, "training", start)
    return cache


def _same_image(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b)


def _pair_args(a: ImageObjects, b: ImageObjects) -> tuple:
    """Two simulated acquisitions' label images and centres, for :func:`noisestat.measure.pair_unmatched`."""
    labels = [t.labels.unpack() if isinstance(t.labels, PackedLabels) else t.labels for t in (a, b)]
    xy = [np.column_stack([t.table[:, PARAMETERS.index("XM")], t.table[:, PARAMETERS.index("YM")]]) for t in (a, b)]
    return (*labels, *xy)


def score_codec(ref: Reference, coded: CodecResult, objects: ImageObjects) -> CodecScore:
    """eps, summaries, statistics, losses and the verdict of one decoded image against the reference."""
    raw = ref.raw
    eps = epsilon(raw.values, objects.values, ref.sigma_used, _ANGULAR)
    parameters = {p: summarise_eps(eps[:, j]) for j, p in enumerate(PARAMETERS)}
    statistics = codec_statistics(eps, PARAMETERS, ref.null_fractions, margin=ref.margins.shift,
                                  keep=keep_for_spread(ref.margins.spread, ref.n_replicas))
    sigma_global, sigma_used = ref.sigma_global, ref.sigma_global_used
    global_eps = epsilon(ref.raw_objects.globals, objects.globals, sigma_used, np.zeros(2, bool))
    global_scores = {name: {"raw": float(ref.raw_objects.globals[i]), "sigma_raw": float(sigma_global[i]),
                            "sigma_used": float(sigma_used[i]), "codec": float(objects.globals[i]),
                            "eps": float(global_eps[i])}
                     for i, name in enumerate(GLOBAL_PARAMETERS)}
    status = objects.status if objects.status is not None else np.where(np.isnan(objects.values[:, 0]), "lost",
                                                                        "matched")
    loss = {**loss_test(int((status != "matched").sum()), len(raw), ref.null_loss.get("unmatched", 0),
                        ref.null_loss.get("n", 0)),
            **{k: int((status == k).sum()) for k in STATUSES[1:]}}
    result = judge(statistics, eps, PARAMETERS, ref.pooled_null_eps, {k: v["eps"] for k, v in global_scores.items()},
                   ref.n_replicas, loss=loss, margins=ref.margins, primary=ref.primary, judged=_judged(ref.raw_labels))
    area = difference_stats(objects.values[:, 0] - raw.values[:, 0])
    return CodecScore(coded.spec, coded.compression_ratio, coded.n_bytes, coded.info, objects, eps, parameters,
                      global_scores, result.tolerable, result.reasons, statistics, area, loss, verdict=result)


def _values_task(image, model, tiles, profile=None, seed=None):
    """A value predictor's values on the cores of ``tiles`` (a task: part of one image, or with
    ``seed`` part of a replica), the cores' values in tile order, flat."""
    timing = {}
    get = _pixels_of(image, profile, seed)[0]
    cores = [values_tile(get, model, t, timing=timing).reshape(-1) for t in tiles]
    return np.concatenate(cores), timing


def _assemble_values(shape, groups, parts) -> np.ndarray:
    """An image's value map from its :func:`_values_task` results (one per group of tiles)."""
    out = np.empty(shape, dtype=np.result_type(*[p.dtype for p in parts]))
    for group, flat in zip(groups, parts):
        start = 0
        for t in group:
            size = tuple(c.stop - c.start for c in t.core)
            out[t.core] = flat[start:start + math.prod(size)].reshape(size)
            start += math.prod(size)
    return out


def assess_values(image: np.ndarray, profile: CameraProfile, codecs, model, *, replicas: int = 10, seed: int = 0,
                  jobs: int = 1, tile: int | None = None, scheduler: str | None = None, progress=None, notice=None,
                  provenance: dict | None = None) -> ValueAssessment:
    """Score codecs against the camera noise of one raw image, pixel by pixel, for a
    :class:`~noisestat.predict.ValuePredictor` ``model`` (a probability map, a restored image: a
    value per pixel from a bounded neighbourhood).

    The predictor runs, tile by tile with its halo, on the raw image, on ``replicas`` raw-equivalent
    replicas and two more (the null: a simulated second acquisition) and on each decoded image, in
    one batch of tasks on the engine of :func:`assess` (``jobs``, ``scheduler``; the same numbers on
    every path, for any ``tile``). sigma_raw, eps and the summaries are those of
    :mod:`noisestat.score._pixels`; there is no verdict (that module says why). A decoded image
    identical to the raw one has the raw values (the predictor must be deterministic).

    Returns
    -------
    ValueAssessment
    """
    started = time.time()
    check_raw_image(image)
    image_name = (provenance or {}).get("inputs", {}).get("image", {}).get("path", "image")
    warnings = list(_check_range(image, profile, image_name))
    if predictor_kind(model) != "values":
        raise InputError(f"{type(model).__name__} is not a value predictor (it needs predict_values(region) and "
                         f"halo(ndim)): assess its objects with noisestat.assess")
    if replicas < 2:
        raise InputError(f"at least 2 replicas are needed to estimate sigma_raw; got {replicas}")
    if jobs == 0:
        raise InputError("jobs must be a positive number of workers (or negative: all cores but |jobs|-1)")
    if tile is not None and (int(tile) != tile or tile < MIN_TILE):
        raise InputError(f"tile must be a whole number of pixels >= {MIN_TILE}; got {tile}")
    parse_scheduler(scheduler)
    codecs = _parse_codecs(codecs)
    for codec in codecs:
        prepare_image(codec, image, profile)
    tile = tile or default_tile(model, image.ndim)
    tiles = tile_grid(image.shape, tile, tuple(model.halo(image.ndim)))
    timing: dict = {}
    with make_executor(jobs, scheduler, notice=notice) as executor:
        coded = _start_codecs(executor, codecs, image, profile).result()
        codec_seconds = sum(seconds for _, seconds in coded)
        coded = [c for c, _ in coded]
        same = [_same_image(c.decoded, image) for c in coded]
        seeds = replica_seeds(_seed_roots(seed)[1], replicas + 2)  # the replicas of assess for this seed
        shared_image = executor.share(image)
        images = [("raw image", shared_image, None, None)]
        images += [(f"replica {i + 1}" if i < replicas else f"null pair {i - replicas + 1}", shared_image, profile, s)
                   for i, s in enumerate(seeds)]
        images += [(f"codec image {i + 1}", c.decoded, None, None) for i, (c, s) in enumerate(zip(coded, same))
                   if not s]
        groups = _tile_groups(tiles, _parts_per_image(len(images), executor.workers, len(tiles)))
        names = [name if len(groups) == 1 else f"{name} part {k + 1}/{len(groups)}"
                 for name, *_ in images for k in range(len(groups))]
        shared_model = executor.share(model)

        def estimate():  # from one tile measured here once the workers have their tasks
            if notice is not None:
                _notice_estimate(notice, image, model, tile, 1, None, {}, len(images), executor.workers)

        tasks = [(im, shared_model, g, prof, sd) for _, im, prof, sd in images for g in groups]
        parts = executor.map(_values_task, tasks, names, progress, started=estimate)
    for _, t in parts:
        _merge_timing(timing, t)
    maps = [_assemble_values(image.shape, groups, [p for p, _ in parts[i * len(groups):(i + 1) * len(groups)]])
            for i in range(len(images))]
    del parts
    raw_values, replica_maps, null_pair = maps[0], maps[1:replicas + 1], maps[replicas + 1:replicas + 3]
    decoded = iter(maps[replicas + 3:])
    start = time.perf_counter()
    sigma = pixel_sigma(replica_maps)
    floor = pixel_floor(raw_values, replica_maps)
    null_abs = pixel_null(replica_maps, null_pair, floor, sigma)
    null_summary = pixel_summary(pixel_eps(null_pair[0], null_pair[1], sigma, floor), null_abs)
    null = {"frac_abs_eps_lt_1": float((null_abs < 1).mean()), "q99_abs_eps": null_summary["null_q99_abs_eps"],
            "pixels_pooled": int(null_abs.size), "pairs": 1 + (replicas // 2 if replicas >= 4 else 0),
            "null_pair": null_summary}
    scores = []
    for c, s in zip(coded, same):
        values = raw_values if s else next(decoded)
        eps = pixel_eps(raw_values, values, sigma, floor)
        scores.append(ValueScore(c.spec, c.compression_ratio, c.n_bytes, c.info, values, eps,
                                 pixel_summary(eps, null_abs)))
    del null_abs
    _tick(timing, "scoring", start)
    if floor == 0 and not (sigma > 0).any():
        warnings.append("no replica changed the predictor's value at any pixel: sigma_raw is 0 everywhere, so any "
                        "change by a codec scores an infinite eps")
    prov = {"noisestat": __version__, "seed": seed, "replica_mode": _replica_mode(image), "predictor_kind": "values",
            "predictor": type(model).__name__, "noise_model": profile.noise_model, "classifier": model.describe(),
            "jobs": jobs, "tile": tile, "engine": executor.description,
            "timing": {**{k: round(v, 3) for k, v in timing.items()}, "codecs": round(codec_seconds, 3),
                       "wall": round(time.time() - started, 3)},
            "camera": profile.to_dict(), "image_shape": list(image.shape), "image_dtype": str(image.dtype),
            "image_sha256": array_sha256(image), "seconds": round(time.time() - started, 2)}
    prov.update(provenance or {})
    return ValueAssessment(raw_values, sigma, floor, replicas, null, tuple(scores), prov, model, tuple(warnings))


def _check_range(image: np.ndarray, profile: CameraProfile, name: str = "image") -> list[str]:
    """Refuse an image the profile cannot describe (per-pixel maps of another shape, values beyond
    the digitiser, an image below the offset); return the profile-fit warnings
    (:meth:`CameraProfile.fit_warnings`), ``name`` (the image's file) in every message."""
    return profile.fit_warnings(image, name)


def assess_files(image_path, camera_path, codecs, outdir, *, model_path=None, labels_path=None, replicas=10,
                 seed=0, jobs=1, matching="iou", min_area=0, model_seeds=0, progress=None, channel=None,
                 plane=None, tile=None, scheduler=None, notice=None, margins=None, primary=None,
                 verdict_anyway=False) -> Assessment:
    """Read the inputs, validate them all before any work, assess, write ``outdir``.

    ``channel`` and ``plane`` choose the 2D plane of a multi-channel file or stack
    (:func:`noisestat.io.read_image_info`); they and the file's pixel size are kept in the provenance.
    """
    parse_scheduler(scheduler)
    margins = margins if isinstance(margins, Margins) else Margins.parse(margins)
    image, info = read_image_info(image_path, channel=channel, plane=plane)
    parse_primary(primary, PARAMETERS if image.ndim == 2 else VOLUME_PARAMETERS)
    profile = load_profile(camera_path)
    if (model_path is None) == (labels_path is None):
        raise InputError("give exactly one of --model or --labels")
    codecs = [parse_spec(c) for c in codecs]
    inputs = {"image": {"path": str(image_path), "sha256": file_sha256(image_path), "axes": info.axes,
                        "shape": list(info.shape), "channel": channel, "plane": plane},
              "camera": {"path": str(camera_path), "sha256": file_sha256(camera_path)}}
    model = labels = None
    if model_path is not None:
        model = load_model(model_path)
        inputs["model"] = {"path": str(model_path), "sha256": file_sha256(model_path)}
    else:
        labels = read_labels(labels_path, shape=image.shape)
        inputs["labels"] = {"path": str(labels_path), "sha256": file_sha256(labels_path)}
    # The output rules (no input inside it, not someone else's folder, writable) before the work.
    # A folder holding the camera profile also holds its pixel-map TIFF, which must lie beside it.
    prepare_output_dir(outdir, inputs=[*(v["path"] for v in inputs.values()), *codec_input_files(codecs)])
    result = assess(image, profile, codecs, model=model, labels=labels, replicas=replicas, seed=seed, jobs=jobs,
                    matching=matching, min_area=min_area, model_seeds=model_seeds,
                    provenance={"inputs": inputs,
                                "pixel_size": None if info.pixel_size is None else info.pixel_size.to_dict()},
                    progress=progress, tile=tile, scheduler=scheduler, notice=notice,
                    spacing=info.spacing if image.ndim == 3 else None, margins=margins, primary=primary,
                    verdict_anyway=verdict_anyway)
    write_assessment(result, outdir)
    return result
