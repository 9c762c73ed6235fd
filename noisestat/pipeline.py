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

import copy
import dataclasses
import math
import os
import time

import numpy as np

from . import __version__
from ._tasks import (Classes, Sample, assemble_values, call, centre_distance, centres, check_fraction, compact,
                     finish_task, global_steps, global_totals, sampled_globals, sampled_pixels, segment_sample,
                     image_task, intensity,
                     label_measure, mask_task, match_task, measure, merge_timing, objects_task, pair_args, pair_classes,
                     parts_per_image, same_image,
                     tile_groups, values_task)
from .camera._profile import CameraProfile, load_profile
from .codecs import CodecResult, parse_spec
from .codecs._base import code_image, prepare_image
from .engine._estimate import notice_estimate
from .engine._executors import JoblibExecutor, Pending, make_executor, parse_scheduler
from .engine._tiles import MIN_TILE, _tick, default_tile, multi_class, segment_tiled, tile_grid
from .errors import InputError
from .io._files import (array_sha256, check_labels, check_raw_image, codec_input_files, file_sha256,
                        prepare_output_dir, read_image_info, read_labels)
from .io._projections import read_projections
from .measure._matching import METHODS, STATUSES, pair_unmatched
from .measure._morphometry import ANGULAR_PARAMETERS
from .measure._volume import parameters_for, size_column
from .predict._forest import PixelClassifier, load_model, parse_thresholds
from .predict._protocol import predictor_kind
from .predict._training import features_fit, new_forest, train, training_pixels
from .reconstruct._domain import Reconstructed, check_projections, parse_reconstruction
from .replicas._draw import MODE as REPLICA_MODE
from .replicas._draw import BlockCache, draw_region, replica_seeds
from .report._inspection import segmentation_warnings
from .report._tables import format_summary, write_assessment
from .results import (Assessment, CodecScore, ImageObjects, PackedLabels, Reference, ValueAssessment,
                      ValueScore)
from .score._sampling import extrapolate_global
from .score._eps import angular_mask, global_floors, epsilon, floored, replica_spread, resolution_floor, summarise_eps
from .score._null import (band_counts, replica_pair_eps, second_acquisition_losses, unchanged_warning,
                          unstable_warning)
from .score._criteria import eps_scale, keep_for_spread
from .score._classes import class_blocks, judge_classes
from .score._verdict import Margins, judge, parse_primary
from .score._operators import operator_scores
from .score._pixels import pixel_eps, pixel_floor, pixel_null, pixel_sigma, pixel_summary
from .score._tests import codec_statistics, difference_stats, loss_test

__all__ = ["assess", "assess_files", "build_reference", "score_codec", "segment_and_match",
           # result types and writers, importable from here as before
           "Assessment", "CodecScore", "ImageObjects", "Reference", "write_assessment", "format_summary"]


def _threshold_record(limits: dict):
    """The forest's threshold for the provenance: one number for one class of object, else per class."""
    values = list(limits.values())
    return values[0] if len(values) == 1 else {str(c): t for c, t in limits.items()}


def _angular(names) -> np.ndarray:
    """Which of the columns ``names`` hold angles (eps modulo 180 degrees)."""
    return angular_mask(names, ANGULAR_PARAMETERS)


def _replica_mode(image: np.ndarray) -> str:
    """The replica mode a run's replicas were drawn in (a volume's are drawn as ``pixel-as-mean``)."""
    return REPLICA_MODE if image.ndim == 2 else "pixel-as-mean"



def segment_and_match(ref: Reference, image: np.ndarray) -> ImageObjects:
    """Objects of another image of the same scene as ``ref``'s raw image, aligned to the raw objects."""
    return image_task(image, ref.model, ref.tile, 1, ref.raw_labels, ref.raw_xy, ref.matching, ref.min_area,
                       units=ref.profile, spacing=ref.spacing, classes=ref.classes, sample=ref.sample)[0]


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
           spacing: tuple | None = None, margins=None, primary=None, verdict_anyway: bool = False,
           reconstruct: dict | None = None, operators: bool = False, thresholds=None,
           sample: float | None = None) -> Assessment:
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
    reconstruct : dict, optional
        ``image`` is an optical projection tomography stack ``(angles, rows, width)``, reconstructed with
        these settings (:func:`noisestat.reconstruct.parse_reconstruction`): the replicas are drawn and
        the codecs applied on the projections (where the camera noise is and what is stored), and every
        image is reconstructed before the predictor; ``labels`` and ``model`` live in the
        reconstruction's geometry ``(rows, width, width)``, and ``spacing`` is its voxel size.
    thresholds : mapping of int to float, optional
        The forest's probability threshold per class of object (:func:`noisestat.predict.parse_thresholds`;
        default :data:`~noisestat.predict.THRESHOLD` each); a pixel is of the classes of object
        together when any passes (the object mask).
    operators : bool, default False
        Also score the classifier's own training filters per pixel (operator-level eps,
        :func:`noisestat.score.operator_scores`) on the same replicas and decoded images: on the image or
        volume, or on the projections (each one a 2D image) and on the reconstruction.
    sample : float, optional
        Judge a seeded random fraction (0, 1] of the tiles of a grid only (docs/scaling.md): the tiles
        of ``tile`` pixels a side, or by default of twice the engine's default tile, each segmented in
        engine tiles. Every image (raw, replicas drawn there only, decoded) is segmented on those tiles;
        the objects wholly inside a tile, not touching its faces towards other tiles, are scored as
        usual; the globals are extrapolated to the whole image with their sampling standard error
        (``summary()["raw"][name]["sampling_se"]``). The tiles are drawn from ``seed``.

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
    image_name = (provenance or {}).get("inputs", {}).get("image", {}).get("path", "image")
    if reconstruct is None:
        check_raw_image(image)
    else:
        check_projections(image, name=image_name)
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
    if sample is not None:
        sample = check_fraction(sample)
    # an OPT stack is seen by the predictor through its reconstruction (noisestat.reconstruct)
    domain = image if reconstruct is None else Reconstructed(image, reconstruct, profile)
    if labels is not None:
        check_labels(labels, shape=domain.shape)
    codecs = _parse_codecs(codecs)
    if tile is not None and (int(tile) != tile or tile < MIN_TILE):
        raise InputError(f"tile must be a whole number of pixels >= {MIN_TILE}; got {tile}")
    parse_scheduler(scheduler)
    margins = margins if isinstance(margins, Margins) else Margins.parse(margins)
    parse_primary(primary, parameters_for(image.ndim))
    if model is not None:
        predictor_kind(model)
        if thresholds is not None and isinstance(model, PixelClassifier):
            # the caller's model is left as it is: the run uses a copy with these thresholds
            model = copy.copy(model)
            model.thresholds = dict(thresholds)
            model.class_thresholds()  # a class the model lacks is refused here, before any work
        elif thresholds is not None:
            raise InputError(f"thresholds apply to noisestat's forest; {type(model).__name__} decides on its own")
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
            images = [c.decoded if reconstruct is None else domain.of(c.decoded) for c, _ in pending.result()]
            codec_wait += time.perf_counter() - start
            return images

        ref, codec_objects = build_reference(domain, profile, model=model, labels=labels, replicas=replicas,
                                             seed=seed, jobs=jobs, matching=matching, min_area=min_area,
                                             model_seeds=model_seeds, extra_images=decoded,
                                             progress=progress, tile=tile, executor=executor, notice=notice,
                                             spacing=spacing, margins=margins, primary=primary,
                                             thresholds=thresholds, sample=sample)
        coded = [c for c, _ in pending.result()]
        codec_seconds = sum(seconds for _, seconds in pending.result())
    scores = [score_codec(ref, c, objects) for c, objects in zip(coded, codec_objects)]
    model, trained, raw = ref.model, ref.trained, ref.raw
    operator_rows = ()
    if operators:
        start = time.perf_counter()
        operator_rows = operator_level(image, profile, coded, seed=seed, replicas=replicas, spacing=ref.spacing,
                                       domain=domain if reconstruct is not None else None)
        ref.timing["operators"] = round(time.perf_counter() - start, 3)

    prov = {"noisestat": __version__, "seed": seed, "replica_mode": _replica_mode(image), "model_seeds": model_seeds,
            "noise_model": profile.noise_model, "matching": matching,
            "threshold": (_threshold_record(model.class_thresholds()) if isinstance(model, PixelClassifier)
                          else None),
            "connectivity": 8 if image.ndim == 2 else 26, "min_area": min_area,
            "reconstruction": None if reconstruct is None else domain.describe(),
            "spacing": list(ref.spacing) if ref.spacing is not None else None,
            "classifier": model.describe(), "classifier_trained_here": trained, "jobs": jobs,
            "tile": ref.tile, "engine": executor.description,
            "sample": None if ref.sample is None else ref.sample.describe(seed),
            "timing": {**ref.timing, "codecs": round(codec_seconds, 3), "codecs_wait": round(codec_wait, 3),
                       "wall": round(time.time() - started, 3)},
            "camera": profile.to_dict(), "image_shape": list(image.shape), "image_dtype": str(image.dtype),
            "image_sha256": array_sha256(image), "seconds": round(time.time() - started, 2)}
    prov.update(provenance or {})
    # a raw segmentation unfit to be judged (giant, fragmented, unstable) gets no verdict unless asked for:
    # its warnings come first, everywhere they are shown
    unfit = unfit_warnings(ref)
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
                      image=image if reconstruct is None else domain.volume(), raw_labels=ref.raw_labels, replica_values=ref.replica_values,
                      null_eps=ref.null_eps, null_globals_eps=ref.null_globals_eps,
                      null_statistics=ref.null_statistics, null_tolerable=ref.null_tolerable,
                      sigma_model=ref.sigma_model, null_fractions=ref.null_fractions,
                      warnings=tuple(warnings) + tuple(w for w in ref.warnings if w not in warnings),
                      sigma_floor=ref.sigma_floor,
                      replica_status=ref.replica_status, null_loss=ref.null_loss, null_verdict=ref.null_verdict,
                      operators=tuple(operator_rows), global_floor=ref.global_floor)


def operator_level(image, profile, coded, *, seed: int, replicas: int, spacing=None, domain=None) -> tuple:
    """Operator-level eps (:func:`noisestat.score.operator_scores`) of each decoded image, on the replicas
    and the two null replicas of the assessment itself (the same seeds, drawn again region by region):
    on the image or volume, or with ``domain`` (a :class:`~noisestat.reconstruct.Reconstructed`) on the
    projections, each a 2D image, and on their reconstructions."""
    _, replica_root, _ = _seed_roots(seed)
    seeds = replica_seeds(replica_root, replicas + 2)

    def drawn(s):
        blocks = BlockCache()
        return lambda region: draw_region(image, profile, s, region, blocks)

    decoded = {c.spec: c.decoded for c in coded}
    if domain is None:
        name = "image" if image.ndim == 2 else "volume"
        return operator_scores(image, [drawn(s) for s in seeds[:replicas]], decoded,
                               [drawn(s) for s in seeds[replicas:]], domain=name,
                               spacing=spacing if image.ndim == 3 else None)

    def rebuilt(s):
        # a replica's reconstruction, drawn and reconstructed once, when first needed
        held = {}

        def get(region):
            if "volume" not in held:
                stack = draw_region(image, profile, s, tuple(slice(0, n) for n in image.shape), BlockCache())
                held["volume"] = domain.of(stack).volume()
            return held["volume"][region]
        return get

    rows = operator_scores(image, [drawn(s) for s in seeds[:replicas]], decoded, [drawn(s) for s in seeds[replicas:]],
                           domain="projections", spacing=(math.inf, 1.0, 1.0))
    rows += operator_scores(domain.volume(), [rebuilt(s) for s in seeds[:replicas]],
                            {spec: domain.of(d).volume() for spec, d in decoded.items()},
                            [rebuilt(s) for s in seeds[replicas:]], domain="reconstruction", spacing=spacing)
    return rows


def unfit_warnings(ref: Reference) -> list[str]:
    """The warnings that make the raw segmentation unfit to be judged (giant, fragmented, unstable):
    no verdict is given on it unless asked for (``assess``, ``tune``)."""
    return segmentation_warnings(ref.raw, ref.raw_labels.shape) + ([ref.unstable] if ref.unstable else [])


def build_reference(image, profile, *, model=None, labels=None, replicas=10, seed=0, jobs=1, matching="iou",
                    min_area=0, model_seeds=0, extra_images=(), progress=None, tile=None, scheduler=None,
                    executor=None, notice=None, spacing=None, margins=None, primary=None, thresholds=None,
                    sample=None):
    """Segment the raw image, its replicas and two null replicas (and ``extra_images``, in the same
    parallel batch); returns the :class:`Reference` and the extra images' aligned objects.
    ``extra_images`` is a sequence of images or a callable that returns one: it is called once the
    raw image is segmented, just before the batch (codecs still running elsewhere are waited for there).

    Besides sigma_raw it fixes, from the replicas alone, the sigma floor per parameter
    (:func:`noisestat.score.resolution_floor`), the fraction |eps| < 1 and the rate of raw-object
    losses of simulated second acquisitions (pairs of replicas), and warns when the replicas
    themselves lose many raw objects (:data:`noisestat.score.UNSTABLE_FRACTION`).

    ``sample``: the fraction of tiles to judge (:func:`assess`); the reference then holds its
    :class:`~noisestat._tasks.Sample` and every image's globals are extrapolated from those tiles.
    """
    if executor is None:
        with make_executor(jobs, scheduler, notice=notice, threads=_in_threads(model, labels)) as own:
            return build_reference(image, profile, model=model, labels=labels, replicas=replicas, seed=seed,
                                   jobs=jobs, matching=matching, min_area=min_area, model_seeds=model_seeds,
                                   extra_images=extra_images, progress=progress, tile=tile, executor=own,
                                   notice=notice, spacing=spacing, margins=margins, primary=primary,
                                   thresholds=thresholds, sample=sample)
    margins = margins if isinstance(margins, Margins) else Margins.parse(margins)
    started = time.perf_counter()
    timing: dict = {}
    columns = parameters_for(image.ndim)
    angular = _angular(columns)
    # a volume's objects are measured in the physical units of its voxel size (1 per axis when unknown)
    spacing = (tuple(float(v) for v in spacing) if spacing is not None else (1.0, 1.0, 1.0)) if image.ndim == 3 \
        else None
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
        model = new_forest(forest_seed, image.ndim, jobs if local else -1, spacing, thresholds)
        tile = tile or default_tile(model, image.ndim)
        kept = features_fit(image, model)
        raw_here = raw_here or (kept and executor.workers <= (os.cpu_count() or 1))
        # training runs here while the workers wait: its features take every core of this machine
        raw_features = train(model, image, labels, tile, os.cpu_count() or 1, timing, keep=raw_here)
    sampling_tile = tile
    tile = tile or default_tile(model, image.ndim)
    kind = predictor_kind(model)
    if sample is not None:
        if kind != "mask":
            raise InputError(f"--sample needs a predictor that works tile by tile (a mask predictor); "
                             f"{type(model).__name__} segments the whole image")
        # the sampling tile: --tile, or twice the engine's tile (objects well under a tile are rarely cut)
        sample = Sample.draw(image.shape, sample, sampling_tile or 2 * tile, tile, _sample_root(seed))

    shared_image, shared_model = executor.share(image), executor.share(model)
    raw_timing: dict = {}
    raw_threads = os.cpu_count() or 1
    if raw_here:
        if sample is not None:
            raw_labels, raw_ids = segment_sample(lambda r: image[r], image.shape, model, sample, min_area,
                                                 timing=raw_timing, features=raw_features, threads=raw_threads)
        else:
            raw_labels, raw_ids = segment_tiled(lambda r: image[r], image.shape, model, tile, min_area,
                                                timing=raw_timing, features=raw_features, threads=raw_threads,
                                                with_classes=True)
        start = time.perf_counter()
        raw = measure(raw_labels, intensity(image, sampled_pixels(lambda r: image[r], image.shape, sample), profile),
                      spacing, raw_ids)
        _tick(raw_timing, "measuring", start)
    del raw_features
    if callable(extra_images):
        extra_images = extra_images()
    seeds = replica_seeds(replica_root, replicas + 2)
    # A decoded image identical to the raw one (a lossless codec) has the raw segmentation: the forest
    # is deterministic, so it is not run again.
    same = [same_image(extra, image) for extra in extra_images]
    n_images = replicas + 2 + sum(not s for s in same) + model_seeds + (not raw_here)  # the raw one when in the batch

    def estimate():
        # From the raw image's time, before the batch; when the raw image is in the batch, from one
        # tile measured here once the workers have their tasks (this process only waits for them).
        if notice is not None:
            notice_estimate(notice, image, model, tile, threads, (raw_timing, raw_threads) if raw_here else None,
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
        halo = tuple(model.halo(image.ndim))
        tiles = sample.engine_tiles(halo) if sample is not None else tile_grid(image.shape, tile, halo)
        groups = tile_groups(tiles, parts_per_image(len(images), executor.workers, len(tiles)))
        tasks = [(im, shared_model, g, threads, prof, sd) for _, im, prof, sd in images for g in groups]
        names = [name if len(groups) == 1 else f"{name} part {k + 1}/{len(groups)}"
                 for name, *_ in images for k in range(len(groups))]
        masks = executor.map(mask_task, tasks, names, progress, started=None if raw_here else estimate)
        batch_wall = time.perf_counter() - batch_start
        for _, t in masks:
            merge_timing(timing, t)
        segmented = [[m for m, _ in masks[i * len(groups):(i + 1) * len(groups)]] for i in range(len(images))]
        del masks
        if not raw_here:
            raw_labels, raw = label_measure(image.shape, groups, segmented.pop(0), min_area, raw_timing,
                                             (image, None, None, profile), spacing, sample)
    else:
        common = (shared_model, tile, threads, min_area)
        segmented = executor.map(objects_task, [(im, *common, prof, sd, profile, spacing)
                                                for _, im, prof, sd in images],
                                 [name for name, *_ in images], progress, started=None if raw_here else estimate)
        batch_wall = time.perf_counter() - batch_start
        for *_, t in segmented:
            merge_timing(timing, t)
        segmented = [(packed, table) for packed, table, _ in segmented]
        if not raw_here:
            packed, raw = segmented.pop(0)
            raw_labels = packed.unpack()
            del packed
    del images
    merge_timing(timing, raw_timing)
    raw_xy = centres(raw)
    # several classes of object: each object matches its own class only, and each class has its globals
    classes = (Classes(tuple(int(c) for c in model.classes_ if int(c) != 1), np.asarray(raw.classes))
               if multi_class(model) and raw.classes is not None else None)
    totals = global_totals(raw, raw_labels, classes.objects if classes is not None else None)
    raw_objects = ImageObjects(raw.values, raw.labels.astype(np.int64), len(raw),
                               int(raw.column(size_column(image.ndim)).sum()) if len(raw) else 0, {},
                               np.asarray(raw.values), labels=raw_labels,
                               status=np.full(len(raw), "matched", dtype="<U7"), totals=totals)
    if sample is not None:
        raw_objects = dataclasses.replace(raw_objects, sampled=sampled_globals(raw, raw_labels,
                                                                               raw_objects.global_names, sample))
        kept = raw_objects.sampled["kept_probability"]
        if len(kept) and float(np.median(kept)) < 0.5:
            warnings_sample = (f"--sample: the objects are large for tiles of {sample.tile} px: the median raw object "
                               f"is kept with probability {float(np.median(kept)):.2f} (it must not touch a face "
                               f"between two tiles), so the totals rest on few objects with large weights and objects "
                               f"longer than a tile are never seen; give a larger --tile")
        elif not len(kept):
            warnings_sample = (f"--sample: no object lies wholly inside a sampled tile of {sample.tile} px (one that "
                               f"touches a face between two tiles is dropped): the totals are 0; give a larger "
                               f"--tile or fraction")
        else:
            warnings_sample = None

    shared_labels = executor.share(raw_labels)
    raw_packed = PackedLabels.pack(compact(raw_labels)) if any(same) else None
    parts = iter(segmented)
    tasks = []
    for i in range(replicas + 2 + len(extra_images)):
        keep_packed = i < replicas + 2
        if not keep_packed and same[i - replicas - 2]:
            tasks.append((match_task, (raw_packed, raw, shared_labels, raw_xy, matching, False, spacing, classes,
                                       sample)))
        elif kind == "mask":
            # the intensities: a replica drawn again from its seed (exactly as its mask saw it), or the image
            pixels = ((shared_image, profile, seeds[i], profile) if keep_packed
                      else (extra_images[i - replicas - 2], None, None, profile))
            tasks.append((finish_task, (image.shape, groups, next(parts), min_area, shared_labels, raw_xy, matching,
                                         keep_packed, pixels, spacing, classes, sample)))
        else:
            tasks.append((match_task, (*next(parts), shared_labels, raw_xy, matching, keep_packed, spacing,
                                       classes)))
    del segmented, parts
    names = ([f"replica {i + 1}" for i in range(replicas)] + ["null pair 1", "null pair 2"]
             + [f"codec image {i + 1}" for i in range(len(extra_images))])
    start = time.perf_counter()
    results = executor.map(call, tasks, [f"objects of {n}" for n in names])
    timing["batch_wall"] = batch_wall + time.perf_counter() - start
    del tasks
    for _, t in results:
        merge_timing(timing, t)
    results = [r for r, _ in results]
    replica_objects, null_pair, extra_objects = results[:replicas], results[replicas:replicas + 2], results[replicas + 2:]

    stack = np.stack([r.values for r in replica_objects]) if len(raw) else np.empty((replicas, 0, len(columns)))
    sigma, n_matched = replica_spread(raw.values, stack, angular)
    floor = resolution_floor(raw.values, stack, angular)
    sigma_used = floored(sigma, floor[None])
    replica_globals = np.stack([r.globals for r in replica_objects])
    # a global the replicas never moved is floored at the step of one object where it moves by objects
    # (a class's size and load): the lattice step alone would make one object more a proof of a change
    spread = replica_globals.std(axis=0, ddof=1)
    global_floor = np.where(spread > 0, global_floors(raw_objects.global_names, spacing),
                            global_floors(raw_objects.global_names, spacing,
                                          global_steps(raw, classes.objects if classes is not None else None)))
    sigma_global = floored(spread, global_floor)

    null_eps = epsilon(null_pair[0].values, null_pair[1].values, sigma_used, angular)
    null_globals = epsilon(null_pair[0].globals, null_pair[1].globals, sigma_global,
                           np.zeros(len(sigma_global), bool))
    # the simulated second acquisitions (noisestat.score._null): replica pairs, then the extra pair
    pairs_eps = replica_pair_eps(raw.values, stack, floor, angular)
    pooled_eps = np.concatenate([pairs_eps, null_eps])
    null_fractions = band_counts(pooled_eps, columns)
    # the extra pair is judged against the replica pairs alone (its reference must not contain itself)
    null_stats = codec_statistics(null_eps, columns, band_counts(pairs_eps, columns) if len(pairs_eps)
                                  else None, margin=margins.shift,
                                  keep=keep_for_spread(margins.spread, replicas, reference="pairs"),
                                  beyond_margin=margins.shift * eps_scale(replicas))
    reach = centre_distance(image.ndim, spacing)
    pair_counts = [pair_unmatched(*pair_args(replica_objects[2 * k], replica_objects[2 * k + 1]), matching, reach,
                                  **pair_classes(replica_objects[2 * k], replica_objects[2 * k + 1]))
                   for k in range(replicas // 2)]
    null_pair_counts = pair_unmatched(*pair_args(null_pair[0], null_pair[1]), matching, reach,
                                      **pair_classes(null_pair[0], null_pair[1]))
    pairs_loss, null_loss = second_acquisition_losses(pair_counts, null_pair_counts, matching)
    primary = parse_primary(primary, columns)
    null_loss_counts = {"n_unmatched": null_pair_counts[0], "n_raw": null_pair_counts[1],
                        "null_unmatched": pairs_loss["unmatched"], "null_n": pairs_loss["n"]}
    null_globals_eps = dict(zip(raw_objects.global_names, null_globals))
    if classes is None:
        null_verdict = judge(null_stats, null_eps, columns, pairs_eps if len(pairs_eps) else None, null_globals_eps,
                             replicas, loss=null_loss_counts, margins=margins, primary=primary,
                             reference="pairs" if len(pairs_eps) else "pooled")
    else:
        def null_class(rows, class_margins):
            # the extra pair's objects of one class against the replica pairs' objects of that class
            pairs = pairs_eps[class_blocks(rows, len(pairs_eps))] if len(pairs_eps) else pairs_eps
            stats = codec_statistics(null_eps[rows], columns, band_counts(pairs, columns) if len(pairs) else None,
                                     margin=class_margins.shift,
                                     keep=keep_for_spread(class_margins.spread, replicas, reference="pairs"),
                                     beyond_margin=class_margins.shift * eps_scale(replicas))
            return judge(stats, null_eps[rows], columns, pairs if len(pairs) else None, null_globals_eps, replicas,
                         loss=null_loss_counts, margins=class_margins, primary=primary,
                         reference="pairs" if len(pairs) else "pooled")

        null_verdict = judge_classes(null_class, classes.raw, classes.objects, margins)

    replica_status = (np.stack([r.status for r in replica_objects]) if len(raw)
                      else np.empty((replicas, 0), dtype="<U7"))
    unstable = unstable_warning(replica_status, n_matched, STATUSES)
    unchanged = unchanged_warning(floor, sigma, columns) if len(raw) else None
    warnings = [w for w in (unstable, unchanged, warnings_sample if sample is not None else None) if w]

    sigma_model = None
    if model_seeds:
        # One feature computation serves the training of every retrained forest.
        rows, targets = training_pixels(model, image, labels, tile, threads, timing)[:2]
        forests = [new_forest(s, image.ndim, jobs, spacing).fit_pixels(rows, targets, ndim=image.ndim)
                   for s in model_root.spawn(model_seeds)]
        del rows, targets
        others = executor.map(image_task, [(shared_image, f, tile, threads, shared_labels, raw_xy, matching,
                                             min_area, None, profile, spacing, classes, sample) for f in forests],
                              [f"forest seed {i + 1}" for i in range(model_seeds)], progress)
        for _, t in others:
            merge_timing(timing, t)
        sigma_model, _ = replica_spread(raw.values, np.stack([o.values for o, _ in others]), angular)
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
                    unstable=unstable, image=image, spacing=spacing, classes=classes, global_floor=global_floor, sample=sample)
    return ref, extra_objects


def _seed_roots(seed: int) -> tuple:
    """The forest's, the replicas' and the retrained forests' seed sequences, from the one seed
    (the third of four children is unused, kept so that these stay what they have been)."""
    forest, replicas, _, models = np.random.SeedSequence(seed).spawn(4)
    return forest, replicas, models


def _sample_root(seed: int) -> np.random.Generator:
    """The generator ``--sample``'s tiles are drawn from: the one seed's third child (unused otherwise)."""
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(4)[2])


def score_codec(ref: Reference, coded: CodecResult, objects: ImageObjects) -> CodecScore:
    """eps, summaries, statistics, losses and the verdict of one decoded image against the reference."""
    raw = ref.raw
    columns = ref.parameters
    eps = epsilon(raw.values, objects.values, ref.sigma_used, _angular(columns))
    parameters = {p: summarise_eps(eps[:, j]) for j, p in enumerate(columns)}
    statistics = codec_statistics(eps, columns, ref.null_fractions, margin=ref.margins.shift,
                                  keep=keep_for_spread(ref.margins.spread, ref.n_replicas),
                                  beyond_margin=ref.margins.shift * eps_scale(ref.n_replicas))
    sigma_global, sigma_used = ref.sigma_global, ref.sigma_global_used
    global_eps = epsilon(ref.raw_objects.globals, objects.globals, sigma_used, np.zeros(len(sigma_used), bool))
    global_scores = {name: {"raw": float(ref.raw_objects.globals[i]), "sigma_raw": float(sigma_global[i]),
                            "sigma_used": float(sigma_used[i]), "codec": float(objects.globals[i]),
                            "eps": float(global_eps[i])}
                     for i, name in enumerate(ref.global_names)}
    if ref.sample is not None:
        for name, extra in zip(ref.global_names, sampled_difference(ref, objects)):
            global_scores[name].update(extra)
    status = objects.status if objects.status is not None else np.where(np.isnan(objects.values[:, 0]), "lost",
                                                                        "matched")
    loss = {**loss_test(int((status != "matched").sum()), len(raw), ref.null_loss.get("unmatched", 0),
                        ref.null_loss.get("n", 0)),
            **{k: int((status == k).sum()) for k in STATUSES[1:]}}
    identical = ref.image is not None and same_image(coded.decoded, ref.image)
    global_eps = {k: v["eps"] for k, v in global_scores.items()}
    if ref.classes is None:
        result = judge(statistics, eps, columns, ref.pooled_null_eps, global_eps, ref.n_replicas, loss=loss,
                       margins=ref.margins, primary=ref.primary, identical=identical)
    else:
        def one_class(rows, margins):
            # the class's own objects against their own second acquisitions (noisestat.score._classes)
            pooled = ref.pooled_null_eps[class_blocks(rows, len(ref.pooled_null_eps))]
            stats = codec_statistics(eps[rows], columns, band_counts(pooled, columns), margin=margins.shift,
                                     keep=keep_for_spread(margins.spread, ref.n_replicas),
                                     beyond_margin=margins.shift * eps_scale(ref.n_replicas))
            lost = loss_test(int((status[rows] != "matched").sum()), int(rows.sum()),
                             ref.null_loss.get("unmatched", 0), ref.null_loss.get("n", 0))
            return judge(stats, eps[rows], columns, pooled, global_eps, ref.n_replicas, loss=lost, margins=margins,
                         primary=ref.primary, identical=identical)

        result = judge_classes(one_class, ref.classes.raw, ref.classes.objects, ref.margins)
    size = columns.index(size_column(ref.raw_labels.ndim))
    area = difference_stats(objects.values[:, size] - raw.values[:, size])
    return CodecScore(coded.spec, coded.compression_ratio, coded.n_bytes, coded.info, objects, eps, parameters,
                      global_scores, result.tolerable, result.reasons, statistics, area, loss, verdict=result)


def sampled_difference(ref: Reference, objects: ImageObjects) -> list[dict]:
    """A ``--sample`` run's sampling standard errors of one image's globals against the raw ones, per
    global: ``sampling_se`` (the codec's extrapolated total) and ``difference_sampling_se``, the error of
    the extrapolated raw - codec difference from the sampled tiles' paired differences (both images
    judged on the same tiles: the tiles' own variation cancels; NaN for a load, a ratio)."""
    raw, other, sample = ref.raw_objects.sampled, objects.sampled, ref.sample
    out = []
    for j in range(len(ref.global_names)):
        d = raw["tile_totals"][:, j] - other["tile_totals"][:, j]
        se = extrapolate_global(d, sample.n_tiles).se if np.all(np.isfinite(d)) else math.nan
        out.append({"sampling_se": float(other["se"][j]), "difference_sampling_se": float(se)})
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
        same = [same_image(c.decoded, image) for c in coded]
        seeds = replica_seeds(_seed_roots(seed)[1], replicas + 2)  # the replicas of assess for this seed
        shared_image = executor.share(image)
        images = [("raw image", shared_image, None, None)]
        images += [(f"replica {i + 1}" if i < replicas else f"null pair {i - replicas + 1}", shared_image, profile, s)
                   for i, s in enumerate(seeds)]
        images += [(f"codec image {i + 1}", c.decoded, None, None) for i, (c, s) in enumerate(zip(coded, same))
                   if not s]
        groups = tile_groups(tiles, parts_per_image(len(images), executor.workers, len(tiles)))
        names = [name if len(groups) == 1 else f"{name} part {k + 1}/{len(groups)}"
                 for name, *_ in images for k in range(len(groups))]
        shared_model = executor.share(model)

        def estimate():  # from one tile measured here once the workers have their tasks
            if notice is not None:
                notice_estimate(notice, image, model, tile, 1, None, {}, len(images), executor.workers)

        tasks = [(im, shared_model, g, prof, sd) for _, im, prof, sd in images for g in groups]
        parts = executor.map(values_task, tasks, names, progress, started=estimate)
    for _, t in parts:
        merge_timing(timing, t)
    maps = [assemble_values(image.shape, groups, [p for p, _ in parts[i * len(groups):(i + 1) * len(groups)]])
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
                 verdict_anyway=False, reconstruct=None, thresholds=None, operators=False, sample=None) -> Assessment:
    """Read the inputs, validate them all before any work, assess, write ``outdir``.

    ``channel`` and ``plane`` choose the 2D plane of a multi-channel file or stack
    (:func:`noisestat.io.read_image_info`); they and the file's pixel size are kept in the provenance.
    ``reconstruct``: the image is a projection stack (:func:`assess`); its ``angles`` may be a function
    of the number of projections. ``thresholds``: the forest's per-class thresholds, as text
    ("2=0.7,3=0.5") or a mapping. ``sample``: judge that fraction of the tiles (:func:`assess`).
    """
    parse_scheduler(scheduler)
    margins = margins if isinstance(margins, Margins) else Margins.parse(margins)
    if sample is not None:
        check_fraction(sample)
    if reconstruct is None:
        image, info = read_image_info(image_path, channel=channel, plane=plane)
        shape, spacing = image.shape, info.spacing if image.ndim == 3 else None
    else:
        # a projection stack as the camera wrote it: its rows may be fewer than a volume's minimum
        image, info = read_projections(image_path, channel=channel)
        check_projections(image, name=str(image_path))
        angles = reconstruct.get("angles")
        angles = angles(image.shape[0]) if callable(angles) else angles
        reconstruct = parse_reconstruction(reconstruct.get("method", "fbp"), angles=angles,
                                           center=reconstruct.get("center"), filter=reconstruct.get("filter", "ramp"),
                                           interpolation=reconstruct.get("interpolation", "linear"))
        shape = Reconstructed(image, reconstruct).shape
        # the reconstruction's voxel: a projection's pixel along the axis (rows) and across it (columns)
        size = info.pixel_size
        spacing = None if size is None else (float(size.y), float(size.x), float(size.x))
    parse_primary(primary, parameters_for(len(shape)))
    pixel_size = None if info.pixel_size is None else info.pixel_size.to_dict()
    if reconstruct is not None and info.pixel_size is not None:
        # the reconstruction's voxel: a frame's row pitch along the axis (z), its column pitch across it
        size = info.pixel_size
        pixel_size = {"x": float(size.x), "y": float(size.x), "unit": size.unit, "z": float(size.y)}
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
        labels = read_labels(labels_path, shape=shape)
        inputs["labels"] = {"path": str(labels_path), "sha256": file_sha256(labels_path)}
    if isinstance(thresholds, str):
        classes = model.classes_ if model is not None else np.unique(labels[labels > 0])
        thresholds = parse_thresholds(thresholds, classes)
    # The output rules (no input inside it, not someone else's folder, writable) before the work.
    # A folder holding the camera profile also holds its pixel-map TIFF, which must lie beside it.
    prepare_output_dir(outdir, inputs=[*(v["path"] for v in inputs.values()), *codec_input_files(codecs)])
    result = assess(image, profile, codecs, model=model, labels=labels, replicas=replicas, seed=seed, jobs=jobs,
                    matching=matching, min_area=min_area, model_seeds=model_seeds,
                    provenance={"inputs": inputs,
                                "pixel_size": pixel_size},
                    progress=progress, tile=tile, scheduler=scheduler, notice=notice,
                    spacing=spacing, margins=margins, primary=primary,
                    verdict_anyway=verdict_anyway, reconstruct=reconstruct, thresholds=thresholds,
                    operators=operators, sample=sample)
    write_assessment(result, outdir)
    return result
