"""The assessment pipeline: the one module that knows the order of the stages (the reference is built
by :mod:`noisestat._reference`, a decoded image scored by :mod:`noisestat._scoring`).

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
import time

import numpy as np

from . import __version__
from ._tasks import assemble_values, check_fraction, merge_timing, parts_per_image, same_image, tile_groups, values_task
from .camera._profile import CameraProfile, load_profile
from .codecs import parse_spec
from .codecs._base import code_image, prepare_image
from .engine._estimate import notice_estimate
from .engine._executors import JoblibExecutor, Pending, make_executor, parse_scheduler
from .engine._tiles import MIN_TILE, _tick, default_tile, tile_grid
from .errors import InputError
from .io._files import (array_sha256, check_labels, check_raw_image, codec_input_files, file_sha256,
                        prepare_output_dir, read_image_info, read_labels)
from .io._projections import read_projections
from .io._readers import read_array_info
from .measure._matching import METHODS
from .measure._volume import parameters_for
from .predict._forest import PixelClassifier, parse_thresholds
from .predict._protocol import predictor_kind, predictor_name
from .predict._choose import load_predictor, predictor_from_options
from .reconstruct import describe_fbp
from .reconstruct._domain import Reconstructed, check_projections, parse_reconstruction
from .replicas._draw import MODE as REPLICA_MODE
from .replicas._draw import replica_seeds
from .report._inspection import segmentation_warnings
from .report._tables import format_summary, write_assessment
from .results import Assessment, CodecScore, ImageObjects, Reference, ValueAssessment, ValueScore
from .score._verdict import Margins, parse_primary
from .score._pixels import pixel_eps, pixel_floor, pixel_null, pixel_sigma, pixel_summary
from .score._values import check_regions, check_target, judge_values, value_reference
from ._reference import _grid_root, _in_threads, _seed_roots, build_reference, segment_and_match, unfit_warnings
from ._scoring import operator_level, score_codec

__all__ = ["assess", "assess_files", "build_reference", "score_codec", "segment_and_match",
           # result types and writers, importable from here as before
           "Assessment", "CodecScore", "ImageObjects", "Reference", "write_assessment", "format_summary"]


def _threshold_record(limits: dict):
    """The forest's threshold for the provenance: one number for one class of object, else per class."""
    values = list(limits.values())
    return values[0] if len(values) == 1 else {str(c): t for c, t in limits.items()}


def _replica_mode(image: np.ndarray) -> str:
    """The replica mode a run's replicas were drawn in (a volume's are drawn as ``pixel-as-mean``)."""
    return REPLICA_MODE if image.ndim == 2 else "pixel-as-mean"


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
        raise InputError(f"{predictor_name(model)} gives a value per pixel, not objects: assess it with "
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
            raise InputError(f"thresholds apply to noisestat's forest; {predictor_name(model)} decides on its own")
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
                                       domain=domain if reconstruct is not None else None,
                                       within=None if ref.sample is None else ref.sample.cores())
        ref.timing["operators"] = round(time.perf_counter() - start, 3)

    prov = {"noisestat": __version__, "seed": seed, "replica_mode": _replica_mode(image), "model_seeds": model_seeds,
            "noise_model": profile.noise_model, "matching": matching,
            "threshold": (_threshold_record(model.class_thresholds()) if isinstance(model, PixelClassifier)
                          else None),
            "connectivity": 8 if image.ndim == 2 else 26, "min_area": min_area,
            "reconstruction": None if reconstruct is None else domain.describe(),
            "spacing": list(ref.spacing) if ref.spacing is not None else None,
            "classifier": model.describe(), "classifier_trained_here": trained, "deterministic": ref.deterministic,
            "jobs": jobs,
            "tile": ref.tile, "engine": executor.description,
            "sample": None if ref.sample is None else ref.sample.describe(seed),
            "operators": None if not operators else (
                "every pixel" if ref.sample is None else
                ("the sampled tiles of the reconstruction; the projections whole" if reconstruct is not None
                 else "the sampled tiles")),
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


def assess_values(image: np.ndarray, profile: CameraProfile, codecs, model, *, replicas: int = 10, seed: int = 0,
                  jobs: int = 1, tile: int | None = None, scheduler: str | None = None, progress=None, notice=None,
                  provenance: dict | None = None, regions=None, target=None, margins=None) -> ValueAssessment:
    """Score codecs against the camera noise of one raw image, pixel by pixel, for a
    :class:`~noisestat.predict.ValuePredictor` ``model`` (a probability map, a restored image: a
    value per pixel from a bounded neighbourhood).

    The predictor runs, tile by tile with its halo, on the raw image, on ``replicas`` raw-equivalent
    replicas and two more (the null: a simulated second acquisition) and on each decoded image, in
    one batch of tasks on the engine of :func:`assess` (``jobs``, ``scheduler``; the same numbers on
    every path, for any ``tile``). sigma_raw, eps and the summaries are those of
    :mod:`noisestat.score._pixels` (descriptive: that module says why). The verdict judges region
    means, image-level quantities and, with ``target``, metrics against it
    (:mod:`noisestat.score._values`) by the objects' rule and ``margins``: the regions are
    ``regions`` (a label image of the image's shape, every label > 0 a region) or a grid of blocks
    several correlation lengths of the predictor's noise wide. A decoded image identical to the raw
    one has the raw values (the predictor must be deterministic).

    Returns
    -------
    ValueAssessment
    """
    started = time.time()
    check_raw_image(image)
    image_name = (provenance or {}).get("inputs", {}).get("image", {}).get("path", "image")
    warnings = list(_check_range(image, profile, image_name))
    if predictor_kind(model) != "values":
        raise InputError(f"{predictor_name(model)} is not a value predictor (it needs predict_values(region) and "
                         f"halo(ndim)): assess its objects with noisestat.assess")
    if replicas < 2:
        raise InputError(f"at least 2 replicas are needed to estimate sigma_raw; got {replicas}")
    if jobs == 0:
        raise InputError("jobs must be a positive number of workers (or negative: all cores but |jobs|-1)")
    if tile is not None and (int(tile) != tile or tile < MIN_TILE):
        raise InputError(f"tile must be a whole number of pixels >= {MIN_TILE}; got {tile}")
    parse_scheduler(scheduler)
    margins = margins if isinstance(margins, Margins) else Margins.parse(margins)
    given = (provenance or {}).get("inputs", {})
    regions_name = given.get("regions", {}).get("path", "regions")
    target_name = given.get("target", {}).get("path", "target")
    if regions is not None:
        regions = check_regions(regions, image.shape, regions_name)
    if target is not None:
        target = check_target(target, image.shape, target_name)
    codecs = _parse_codecs(codecs)
    for codec in codecs:
        prepare_image(codec, image, profile)
    if getattr(model, "whole_image", False):
        tile = max(*image.shape, MIN_TILE)  # one tile: the predictor sees the whole image at once
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
        # the determinism check (every predictor but the forest, which gives no values): the raw image again
        images.append(("raw image again", shared_image, None, None))
        groups = tile_groups(tiles, parts_per_image(len(images), executor.workers, len(tiles)))
        names = [name if len(groups) == 1 else f"{name} part {k + 1}/{len(groups)}"
                 for name, *_ in images for k in range(len(groups))]
        shared_model = executor.share(model)

        def estimate():  # from one tile measured here once the workers have their tasks
            if notice is not None:
                return notice_estimate(notice, image, model, tile, 1, None, {}, len(images), executor.workers)
            return None

        tasks = [(im, shared_model, g, prof, sd) for _, im, prof, sd in images for g in groups]
        parts = executor.map(values_task, tasks, names, progress, started=estimate)
    for _, t in parts:
        merge_timing(timing, t)
    maps = [assemble_values(image.shape, groups, [p for p, _ in parts[i * len(groups):(i + 1) * len(groups)]])
            for i in range(len(images))]
    del parts
    deterministic, again, sigma_model = True, maps.pop(), None
    if not np.array_equal(again, maps[0]):
        deterministic, moved = False, again != maps[0]
        # the model's own spread per pixel from its two runs of the raw image (sd of two values: |a - b| / sqrt 2)
        own = np.abs(np.asarray(again, np.float64) - np.asarray(maps[0], np.float64)) / np.sqrt(2.0)
        warnings.append(f"the predictor {predictor_name(model)} is not deterministic: "
                        f"the raw image run twice gave different values at {int(moved.sum())} of {moved.size} pixels "
                        f"(by up to {float(np.abs(again - maps[0]).max()):.3g}); its numbers differ from run to run")
    del again
    raw_values, replica_maps, null_pair = maps[0], maps[1:replicas + 1], maps[replicas + 1:replicas + 3]
    decoded = iter(maps[replicas + 3:])
    start = time.perf_counter()
    sigma = pixel_sigma(replica_maps)
    floor = pixel_floor(raw_values, replica_maps)
    if not deterministic:
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = own[sigma > 0] / sigma[sigma > 0]
        sigma_model = {"from": "the raw image run twice: |a - b| / sqrt(2) per pixel",
                       "pixels_differing": int((own > 0).sum()),
                       "median": float(np.median(own)), "max": float(own.max()),
                       "median_sigma_model_over_sigma_raw": float(np.median(ratio)) if ratio.size else None}
        del own
    null_abs = pixel_null(replica_maps, null_pair, floor, sigma)
    null_summary = pixel_summary(pixel_eps(null_pair[0], null_pair[1], sigma, floor), null_abs)
    null = {"frac_abs_eps_lt_1": float((null_abs < 1).mean()), "q99_abs_eps": null_summary["null_q99_abs_eps"],
            "pixels_pooled": int(null_abs.size), "pairs": 1 + (replicas // 2 if replicas >= 4 else 0),
            "null_pair": null_summary}
    judged = value_reference(raw_values, replica_maps, null_pair, regions=regions, target=target, margins=margins,
                             regions_name=regions_name, target_name=target_name, seed=_grid_root(seed))
    scores = []
    for c, s in zip(coded, same):
        values = raw_values if s else next(decoded)
        eps = pixel_eps(raw_values, values, sigma, floor)
        verdict, quantities = judge_values(judged, values, identical=s)
        scores.append(ValueScore(c.spec, c.compression_ratio, c.n_bytes, c.info, values, eps,
                                 pixel_summary(eps, null_abs), verdict=verdict, quantities=quantities))
    del null_abs
    _tick(timing, "scoring", start)
    if floor == 0 and not (sigma > 0).any():
        warnings.append("no replica changed the predictor's value at any pixel: sigma_raw is 0 everywhere, so any "
                        "change by a codec scores an infinite eps")
    prov = {"noisestat": __version__, "seed": seed, "replica_mode": _replica_mode(image), "predictor_kind": "values",
            "predictor": type(model).__name__, "noise_model": profile.noise_model, "classifier": model.describe(),
            "deterministic": deterministic,
            "jobs": jobs, "tile": tile, "engine": executor.description,
            "timing": {**{k: round(v, 3) for k, v in timing.items()}, "codecs": round(codec_seconds, 3),
                       "wall": round(time.time() - started, 3)},
            "camera": profile.to_dict(), "image_shape": list(image.shape), "image_dtype": str(image.dtype),
            "image_sha256": array_sha256(image), "seconds": round(time.time() - started, 2)}
    prov.update(provenance or {})
    return ValueAssessment(raw_values, sigma, floor, replicas, null, tuple(scores), prov, model, tuple(warnings),
                           judged=judged.describe(), region_labels=judged.labels, sigma_model=sigma_model)


def _check_range(image: np.ndarray, profile: CameraProfile, name: str = "image") -> list[str]:
    """Refuse an image the profile cannot describe (per-pixel maps of another shape, values beyond
    the digitiser, an image below the offset); return the profile-fit warnings
    (:meth:`CameraProfile.fit_warnings`), ``name`` (the image's file) in every message."""
    return profile.fit_warnings(image, name)


def _refuse_object_options(model, **options) -> None:
    """One line naming every option of an object assessment given for a value predictor ``model``
    (an option at its default is not given); nothing when there is none."""
    defaults = {"matching": ("--matching", "iou"), "min_area": ("--min-area", 0), "model_seeds": ("--model-seeds", 0),
                "primary": ("--primary", None),
                "verdict_anyway": ("--verdict-anyway", False), "thresholds": ("--threshold", None),
                "operators": ("--operators", False), "sample": ("--sample", None),
                "reconstruct": ("--reconstruct", None)}
    given = [flag for name, (flag, default) in defaults.items() if options[name] != default]
    if given:
        names = " and ".join([", ".join(given[:-1]), given[-1]] if len(given) > 1 else given)
        raise InputError(f"{names} {'applies' if len(given) == 1 else 'apply'} to objects; "
                         f"{predictor_name(model)} gives a value per pixel (scored pixel by pixel): leave "
                         f"{'it' if len(given) == 1 else 'them'} out")


def assess_files(image_path, camera_path, codecs, outdir, *, model_path=None, labels_path=None, replicas=10,
                 seed=0, jobs=1, matching="iou", min_area=0, model_seeds=0, progress=None, channel=None,
                 plane=None, tile=None, scheduler=None, notice=None, margins=None, primary=None,
                 verdict_anyway=False, reconstruct=None, thresholds=None, operators=False, sample=None,
                 predictor_command=None, predictor_python=None, predictor_output="labels",
                 predictor_timeout=None, provenance=None, regions_path=None,
                 target_path=None) -> Assessment | ValueAssessment:
    """Read the inputs, validate them all before any work, assess, write ``outdir``.

    ``channel`` and ``plane`` choose the 2D plane of a multi-channel file or stack
    (:func:`noisestat.io.read_image_info`); they and the file's pixel size are kept in the provenance.
    ``reconstruct``: the image is a projection stack (:func:`assess`); its ``angles`` may be a function
    of the number of projections. ``thresholds``: the forest's per-class thresholds, as text
    ("2=0.7,3=0.5") or a mapping. ``sample``: judge that fraction of the tiles (:func:`assess`).
    ``predictor_command`` / ``predictor_python``: the model is a user's tool or Python callable
    (:func:`noisestat.predict.predictor_from_options`), instead of ``model_path`` or ``labels_path``;
    ``predictor_output`` says what it gives, ``predictor_timeout`` bounds a command's calls.
    ``provenance``: more entries for the provenance (a dataset's field records its place there).

    A model that gives a value per pixel (a :class:`~noisestat.predict.ValuePredictor`, from any of
    these sources) is assessed by :func:`assess_values` and its folder written by
    :func:`noisestat.report.write_value_assessment` (``pixels.csv``, ``maps/``, ``report.html``,
    the summary), under the same output rules, ``margins`` its verdict's; the :class:`ValueAssessment`
    is returned. The options of objects only (``matching``, ``min_area``, ``model_seeds``,
    ``primary``, ``verdict_anyway``, ``thresholds``, ``operators``, ``sample``, ``reconstruct``) are
    then refused, in one line naming them, unless left at their defaults. ``regions_path`` (a label
    image: every label > 0 a region) and ``target_path`` (the image the prediction should match) are
    read for such a model only, and passed to :func:`assess_values` as ``regions`` and ``target``.
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
        # the geometry checked with the file's name in every message, before any work
        describe_fbp(image.shape, reconstruct["angles"], reconstruct["center"], reconstruct["filter"],
                     reconstruct["interpolation"], name=str(image_path))
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
    unit_note = None
    if len(shape) == 3 and spacing is None and pixel_size is not None:
        # a pixel size without a usable slice distance: the volume is measured in voxels, and said so
        unit_note = (f"{image_path}: gives a pixel size of {pixel_size['x']:g} x {pixel_size['y']:g} "
                     f"{pixel_size['unit']} but no usable slice distance (missing, 0 or negative): the volume is "
                     f"measured in voxels; set the voxel depth in the file (Fiji: Image > Properties) to measure "
                     f"in {pixel_size['unit']}")
        pixel_size = None
        if notice is not None:
            notice(unit_note, None)
    if unit_note is not None:
        provenance = {**(provenance or {}), "voxel_size_note": unit_note}
    profile = load_profile(camera_path)
    given = [model_path, labels_path, predictor_command, predictor_python]
    if sum(g is not None for g in given) != 1:
        raise InputError("give exactly one of --model, --labels, --predictor-command or --predictor-python")
    codecs = [parse_spec(c) for c in codecs]
    inputs = {"image": {"path": str(image_path), "sha256": file_sha256(image_path), "axes": info.axes,
                        "shape": list(info.shape), "channel": channel, "plane": plane},
              "camera": {"path": str(camera_path), "sha256": file_sha256(camera_path)}}
    model = labels = None
    if model_path is not None:
        model = load_predictor(model_path)
        inputs["model"] = {"path": str(model_path), "sha256": file_sha256(model_path)}
    elif predictor_command is not None or predictor_python is not None:
        model, inputs["predictor"] = predictor_from_options(command=predictor_command, python=predictor_python,
                                                            output=predictor_output, timeout=predictor_timeout)
        if hasattr(model, "pixel_size"):  # a tool's input files carry the raw file's pixel or voxel size
            model.pixel_size = pixel_size
    else:
        labels = read_labels(labels_path, shape=shape)
        inputs["labels"] = {"path": str(labels_path), "sha256": file_sha256(labels_path)}
    values = model is not None and predictor_kind(model) == "values"
    if not values and (regions_path is not None or target_path is not None):
        raise InputError("--regions and --target apply to a predictor that gives a value per pixel; this one gives "
                         "objects: leave them out")
    regions = target = None
    for key, path in (("regions", regions_path), ("target", target_path)):
        if values and path is not None:
            array, _ = read_array_info(path)
            inputs[key] = {"path": str(path), "sha256": file_sha256(path)}
            regions, target = (array, target) if key == "regions" else (regions, array)
    if values:
        # a value per pixel: its own assessment and folder (pixels.csv, maps/, report.html)
        _refuse_object_options(model, matching=matching, min_area=min_area, model_seeds=model_seeds,
                               primary=primary, verdict_anyway=verdict_anyway, thresholds=thresholds,
                               operators=operators, sample=sample, reconstruct=reconstruct)
        prepare_output_dir(outdir, inputs=[*(v["path"] for v in inputs.values() if "path" in v),
                                           *codec_input_files(codecs)])
        result = assess_values(image, profile, codecs, model, replicas=replicas, seed=seed, jobs=jobs, tile=tile,
                               scheduler=scheduler, progress=progress, notice=notice, margins=margins,
                               regions=regions, target=target, provenance={"inputs": inputs, "pixel_size": pixel_size, **(provenance or {})})
        write_assessment(result, outdir)
        return result
    if isinstance(thresholds, str):
        classes = model.classes_ if model is not None else np.unique(labels[labels > 0])
        thresholds = parse_thresholds(thresholds, classes)
    # The output rules (no input inside it, not someone else's folder, writable) before the work.
    # A folder holding the camera profile also holds its pixel-map TIFF, which must lie beside it.
    prepare_output_dir(outdir, inputs=[*(v["path"] for v in inputs.values()), *codec_input_files(codecs)])
    result = assess(image, profile, codecs, model=model, labels=labels, replicas=replicas, seed=seed, jobs=jobs,
                    matching=matching, min_area=min_area, model_seeds=model_seeds,
                    provenance={"inputs": inputs,
                                "pixel_size": pixel_size, **(provenance or {})},
                    progress=progress, tile=tile, scheduler=scheduler, notice=notice,
                    spacing=spacing, margins=margins, primary=primary,
                    verdict_anyway=verdict_anyway, reconstruct=reconstruct, thresholds=thresholds,
                    operators=operators, sample=sample)
    write_assessment(result, outdir)
    return result
