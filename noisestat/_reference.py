"""The reference a codec is scored against: the raw image segmented, its replicas and two null
replicas segmented in one batch of tasks, aligned to the raw objects, and what they give (sigma_raw,
its floors, the simulated second acquisitions, the null verdict). :mod:`noisestat.pipeline` calls it
in the order of the stages; the tasks themselves are :mod:`noisestat._tasks`.
"""

from __future__ import annotations

import dataclasses
import os
import time

import numpy as np

from ._tasks import (Classes, Sample, batches, call, centre_distance, centres, compact, finish_task, global_steps,
                     global_totals, sampled_globals, sampled_pixels, segment_sample, image_task, intensity,
                     label_measure, mask_task, match_task, measure, merge_timing, named, objects_batch_task,
                     objects_task, pair_args, pair_classes, parts_per_image, same_image, tile_groups)
from .engine._estimate import notice_estimate
from .engine._executors import JoblibExecutor, make_executor
from .engine._tiles import _tick, default_tile, multi_class, segment_tiled, tile_grid
from .errors import InputError
from .measure._matching import STATUSES, pair_unmatched
from .measure._morphometry import ANGULAR_PARAMETERS
from .measure._volume import parameters_for, size_column
from .predict._forest import PixelClassifier
from .predict._protocol import predictor_kind, predictor_name
from .predict._training import RAW_FEATURE_CACHE_BYTES, features_fit, new_forest, train, training_pixels
from .replicas._draw import replica_seeds
from .report._inspection import segmentation_warnings
from .results import ImageObjects, PackedLabels, Reference
from .score._eps import angular_mask, global_floors, epsilon, floored, replica_spread, resolution_floor
from .score._null import (band_counts, replica_pair_eps, second_acquisition_losses, unchanged_warning,
                          unstable_warning)
from .score._criteria import eps_scale, keep_for_spread
from .score._classes import class_blocks, judge_classes
from .score._verdict import Margins, judge, parse_primary
from .score._tests import codec_statistics



# Bytes per pixel a codec holds while it runs on this machine: the bit-depth codec's float64 codes and
# decoded image and the decoded image in the raw sample type (8 + 8 + 2; measured on a 128 x 512 x 512
# volume: 576 MiB). Beside the training they may take up to RAW_FEATURE_CACHE_BYTES, as the raw
# features kept from training may; an image whose codecs would take more has them finish first.
CODEC_BYTES_PER_PIXEL = 18


def codecs_before_training(shape) -> bool:
    """Whether the codecs of an image of ``shape`` run before the training rather than beside it (on
    this machine's workers): when their working set (:data:`CODEC_BYTES_PER_PIXEL`) exceeds
    :data:`~noisestat.predict._training.RAW_FEATURE_CACHE_BYTES` (a 128 x 512 x 512 volume; a
    4096 x 4096 image's codecs still run beside it). The numbers are the same either way."""
    return int(np.prod(shape)) * CODEC_BYTES_PER_PIXEL > RAW_FEATURE_CACHE_BYTES


def _angular(names) -> np.ndarray:
    """Which of the columns ``names`` hold angles (eps modulo 180 degrees)."""
    return angular_mask(names, ANGULAR_PARAMETERS)


def segment_and_match(ref: Reference, image: np.ndarray) -> ImageObjects:
    """Objects of another image of the same scene as ``ref``'s raw image, aligned to the raw objects."""
    return image_task(image, ref.model, ref.tile, 1, ref.raw_labels, ref.raw_xy, ref.matching, ref.min_area,
                       units=ref.profile, spacing=ref.spacing, classes=ref.classes, sample=ref.sample)[0]


def _in_threads(model, labels) -> bool:
    """Whether this machine's workers are threads: for noisestat's forest (trained here from
    ``labels`` or given), whose heavy parts release the GIL, so the tasks share the arrays and one
    interpreter (:class:`noisestat.engine.JoblibExecutor`); processes for other predictors."""
    return labels is not None or isinstance(model, PixelClassifier)


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
    raw image is segmented, just before the batch (codecs still running elsewhere are waited for there),
    or, for an image whose codecs would hold more than the raw features' cache beside the training
    (:func:`codecs_before_training`: a 128 x 512 x 512 volume), before the training starts.

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
    # a predictor that segments a batch of images in one call (a tool that loads its model each call)
    # gets the raw image in the batch too: one call per worker
    batched = not trained and predictor_kind(model) == "labels" and callable(getattr(model, "segment_batch", None))
    raw_here = not batched and (executor.workers == 1 or (not trained and predictor_kind(model) == "labels"))
    raw_features = None
    if trained and local and callable(extra_images) and codecs_before_training(image.shape):
        extra_images = extra_images()  # the codecs finish before the training starts (memory)
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
                             f"{predictor_name(model)} segments the whole image")
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
            with named("raw image"):
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
    # A predictor that is not noisestat's forest is checked for determinism: the raw image runs once
    # more, as one more image of the batch, and its labels must be the raw image's (check_determinism)
    again = not isinstance(model, PixelClassifier)
    seeds = replica_seeds(replica_root, replicas + 2)
    # A decoded image identical to the raw one (a lossless codec) has the raw segmentation: the forest
    # is deterministic, so it is not run again.
    same = [same_image(extra, image) for extra in extra_images]
    n_images = replicas + 2 + sum(not s for s in same) + model_seeds + (not raw_here) + again  # the raw one when in the batch

    def estimate():
        # From the raw image's time, before the batch; when the raw image is in the batch, from one
        # tile measured here once the workers have their tasks (this process only waits for them).
        # (it returns the check that says a revised estimate once the first images took more than twice
        # as long as said, or less than half)
        if notice is not None:
            return notice_estimate(notice, image, model, tile, threads,
                                   (raw_timing, raw_threads) if raw_here else None, timing if trained else {},
                                   n_images, executor.workers)
        return None

    # N replicas estimate sigma_raw; two more, independent of them, simulate a second raw acquisition
    # (their difference over sigma_raw is the null distribution of eps). The images of the batch:
    images = [(f"replica {i + 1}" if i < replicas else f"null pair {i - replicas + 1}", shared_image, profile, s)
              for i, s in enumerate(seeds)]
    images += [(f"codec image {i + 1}", extra, None, None) for i, (extra, s) in enumerate(zip(extra_images, same))
               if not s]
    if again:
        images.append(("raw image again", shared_image, None, None))
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
        masks = executor.map(mask_task, tasks, names, progress, started=estimate)
        batch_wall = time.perf_counter() - batch_start
        for _, t in masks:
            merge_timing(timing, t)
        segmented = [[m for m, _ in masks[i * len(groups):(i + 1) * len(groups)]] for i in range(len(images))]
        del masks
        if not raw_here:
            raw_labels, raw = label_measure(image.shape, groups, segmented.pop(0), min_area, raw_timing,
                                             (image, None, None, profile), spacing, sample)
    elif batched:
        # one segment_batch call per worker, its images consecutive; no estimate (it would cost a call)
        runs = batches(len(images), executor.workers)
        names = [[images[i][0] for i in run] for run in runs]
        parts = executor.map(objects_batch_task, [([images[i][1:] for i in run], shared_model, min_area, profile,
                                                   spacing, n) for run, n in zip(runs, names)],
                             [n[0] if len(n) == 1 else f"{n[0]} to {n[-1]}" for n in names], progress)
        batch_wall = time.perf_counter() - batch_start
        for _, t in parts:
            merge_timing(timing, t)
        segmented = [item for part, _ in parts for item in part]
        del parts
        if not raw_here:
            packed, raw = segmented.pop(0)
            raw_labels = packed.unpack()
            del packed
    else:
        common = (shared_model, tile, threads, min_area)
        segmented = executor.map(objects_task, [(im, *common, prof, sd, profile, spacing, name)
                                                for name, im, prof, sd in images],
                                 [name for name, *_ in images], progress, started=estimate)
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
    if again:  # the raw image's second run, its labels kept to compare with the first's
        tasks.append((finish_task, (image.shape, groups, next(parts), min_area, shared_labels, raw_xy, matching, True,
                                    (shared_image, None, None, profile), spacing, classes, sample))
                     if kind == "mask" else
                     (match_task, (*next(parts), shared_labels, raw_xy, matching, True, spacing, classes)))
    del segmented, parts
    names = ([f"replica {i + 1}" for i in range(replicas)] + ["null pair 1", "null pair 2"]
             + [f"codec image {i + 1}" for i in range(len(extra_images))] + ["raw image again"] * again)
    start = time.perf_counter()
    results = executor.map(call, tasks, [f"objects of {n}" for n in names])
    timing["batch_wall"] = batch_wall + time.perf_counter() - start
    del tasks
    for _, t in results:
        merge_timing(timing, t)
    results = [r for r, _ in results]
    replica_objects, null_pair = results[:replicas], results[replicas:replicas + 2]
    extra_objects = results[replicas + 2:replicas + 2 + len(extra_images)]
    deterministic, sigma_runs, warning_runs = (check_determinism(model, raw, raw_labels, results[-1], angular)
                                               if again else (None, None, None))

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
    warnings = [w for w in (unstable, unchanged, warnings_sample if sample is not None else None, warning_runs)
                if w]

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
    elif sigma_runs is not None:
        sigma_model = sigma_runs
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
                    unstable=unstable, image=image, spacing=spacing, classes=classes, global_floor=global_floor, sample=sample,
                    deterministic=deterministic)
    return ref, extra_objects


def check_determinism(model, raw, raw_labels: np.ndarray, again: ImageObjects, angular: np.ndarray):
    """``(deterministic, sigma_model, warning)`` from the raw image segmented twice: ``again`` is the
    second run's objects aligned to the first's (``raw``, ``raw_labels``). A predictor whose two runs
    give the same labels is deterministic (sigma_model and the warning None); otherwise its own spread
    is the sample standard deviation (ddof 1) of each parameter over the two runs, the smallest
    number of runs a spread has, reported as sigma_model beside sigma_raw."""
    if np.array_equal(again.labels.unpack(), raw_labels):
        return True, None, None
    runs = np.stack([raw.values, again.values])
    sigma_model, _ = replica_spread(raw.values, runs, angular)
    same = (again.values == raw.values) | (np.isnan(again.values) & np.isnan(raw.values))
    moved = int((~same.all(axis=1)).sum()) if len(raw) else 0
    name = getattr(model, "shown", None) or type(model).__name__  # a --predictor-python function: its spec
    warning = (f"the predictor {name} is not deterministic: the raw image segmented twice gave "
               f"different labels ({moved} of {len(raw)} raw objects measured differently, "
               f"{again.n_objects} objects against {len(raw)}); its numbers differ from run to run, and its own "
               f"spread over the two runs is reported as sigma_model beside sigma_raw")
    return False, sigma_model, warning


def _seed_roots(seed: int) -> tuple:
    """The forest's, the replicas' and the retrained forests' seed sequences, from the one seed
    (the third of four children is unused, kept so that these stay what they have been)."""
    forest, replicas, _, models = np.random.SeedSequence(seed).spawn(4)
    return forest, replicas, models


def _grid_root(seed: int) -> np.random.SeedSequence:
    """The seed a value predictor's grid of regions draws its origin from: the first child of the one
    seed's third child (whose own generator draws ``--sample``'s tiles, a mask predictor's)."""
    return np.random.SeedSequence(seed).spawn(4)[2].spawn(1)[0]


def _sample_root(seed: int) -> np.random.Generator:
    """The generator ``--sample``'s tiles are drawn from: the one seed's third child (unused otherwise)."""
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(4)[2])
