"""The assessment pipeline: the one module that knows the order of the stages.

raw image + camera profile -> replicas -> pixel classifier -> objects -> morphometry ->
matching to the raw objects -> sigma_raw; each codec -> decoded image -> same chain -> eps.

Replicas and codecs are independent tasks run by joblib with ``jobs`` workers. Each task
draws its randomness from its own child seed and the forest predicts in a fixed order, so every
number is the same for any ``jobs``.
"""

from __future__ import annotations

import math
import time

import numpy as np
from joblib import Parallel, delayed
from skimage.segmentation import relabel_sequential

from . import __version__
from .camera._profile import CameraProfile, load_profile
from .codecs import CodecResult, parse_spec
from .errors import InputError
from .io._files import (array_sha256, check_labels, check_raw_image, codec_input_files, file_sha256,
                        prepare_output_dir, read_image_info, read_labels)
from .measure._matching import METHODS, STATUSES, classify_objects, match_centroids, match_iou
from .measure._morphometry import ANGULAR_PARAMETERS, PARAMETERS, measure_objects
from .predict._forest import PixelClassifier, load_model
from .predict._weka import weka_features
from .replicas._draw import MODE as REPLICA_MODE
from .replicas._draw import draw_replica, replica_seeds
from .report._inspection import segmentation_warnings
from .report._tables import format_summary, write_assessment
from .results import GLOBAL_PARAMETERS, Assessment, CodecScore, ImageObjects, Reference
from .score._eps import GLOBAL_FLOOR, angular_mask, epsilon, floored, replica_spread, resolution_floor, summarise_eps, verdict
from .score._tests import codec_statistics, difference_stats, loss_test

__all__ = ["assess", "assess_files", "build_reference", "score_codec", "segment_and_match",
           # result types and writers, importable from here as before
           "Assessment", "CodecScore", "ImageObjects", "Reference", "write_assessment", "format_summary"]

_ANGULAR = angular_mask(PARAMETERS, ANGULAR_PARAMETERS)
# Raw segmentation called unstable when replicas leave more than this share of the raw objects without a
# one-to-one partner on average. Well-segmented simulated scenes lose 0.3-2.7 % between two images
# (benchmarks/README.md, bench_verdict); the real phase-contrast set3 image, fragmented, 46 %;
# above 20 % one raw object in five has its sigma_raw from fewer replicas or none, and the per-object
# statistics describe only the objects that survive the camera's own noise.
UNSTABLE_FRACTION = 0.2


def _segment(image: np.ndarray, model: PixelClassifier, min_area: int, features=None) -> np.ndarray:
    """Objects of ``image``: the classifier's 8-connected objects of at least ``min_area`` pixels
    (ImageJ's Analyze Particles size filter), labelled 1..n in raster order of first pixel."""
    labels = model.segment(image) if features is None else model.segment(image, features=features)
    if min_area > 1:
        small = np.bincount(labels.ravel()) < min_area
        small[0] = False
        labels[small[labels]] = 0
        labels = relabel_sequential(labels)[0]
    return labels


def _segment_and_match(image: np.ndarray, model: PixelClassifier, raw_labels: np.ndarray,
                       raw_xy: np.ndarray, matching: str, min_area: int, *, labels=None, features=None):
    """Segment ``image`` (or take its ``labels``, already known) and align its objects to the raw ones."""
    if labels is None:
        labels = _segment(image, model, min_area, features)
    table = measure_objects(labels)
    n_raw = len(raw_xy)
    if matching == "iou":
        m = match_iou(raw_labels, labels)
    else:
        m = match_centroids(raw_xy, np.column_stack([table.column("XM"), table.column("YM")]))
    values = np.full((n_raw, len(PARAMETERS)), np.nan)
    partner = np.zeros(n_raw, dtype=np.int64)
    hit = m.partner >= 0
    values[hit] = table.values[m.partner[hit]]
    partner[hit] = table.labels[m.partner[hit]]
    area = int(table.column("Area").sum()) if len(table) else 0
    status = classify_objects(raw_labels, labels, m.partner)
    counts = {**m.counts(), **{k: int((status == k).sum()) for k in STATUSES[1:]}, "n_reference": n_raw}
    return ImageObjects(values, partner, len(table), area, counts, np.asarray(table.values), labels=labels,
                        status=status)


def segment_and_match(ref: Reference, image: np.ndarray) -> ImageObjects:
    """Objects of another image of the same scene as ``ref``'s raw image, aligned to the raw objects."""
    return _segment_and_match(image, ref.model, ref.raw_labels, ref.raw_xy, ref.matching, ref.min_area)


def _replica_task(image, profile, seed, *common):
    return _segment_and_match(draw_replica(image, profile, seed), *common)




def assess(image: np.ndarray, profile: CameraProfile, codecs, *, model: PixelClassifier | None = None,
           labels: np.ndarray | None = None, replicas: int = 10, seed: int = 0, jobs: int = 1,
           matching: str = "iou", min_area: int = 0, model_seeds: int = 0, provenance: dict | None = None,
           progress=None) -> Assessment:
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

    Returns
    -------
    Assessment
    """
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
    codecs = [parse_spec(c) if isinstance(c, str) else c for c in codecs]
    if not codecs:
        raise InputError("no codec to assess: give at least one codec spec")
    specs = [c.spec for c in codecs]
    if len(set(specs)) != len(specs):
        raise InputError(f"codec specs must be distinct; got {specs}")
    for codec in codecs:
        codec.prepare(image, profile)
    # Codecs run first: a setting that cannot be coded fails in seconds, before the long part.
    coded: list[CodecResult] = Parallel(n_jobs=jobs)(delayed(c.apply)(image, profile) for c in codecs)

    ref, codec_objects = build_reference(image, profile, model=model, labels=labels, replicas=replicas, seed=seed,
                                         jobs=jobs, matching=matching, min_area=min_area, model_seeds=model_seeds,
                                         extra_images=[c.decoded for c in coded], progress=progress)
    scores = [score_codec(ref, c, objects) for c, objects in zip(coded, codec_objects)]
    model, trained, raw = ref.model, ref.trained, ref.raw

    prov = {"noisestat": __version__, "seed": seed, "replica_mode": REPLICA_MODE, "model_seeds": model_seeds,
            "noise_model": profile.noise_model, "matching": matching,
            "threshold": 0.5, "connectivity": 8, "min_area": min_area, "classifier": model.describe(),
            "classifier_trained_here": trained, "jobs": jobs,
            "camera": profile.to_dict(), "image_shape": list(image.shape), "image_dtype": str(image.dtype),
            "image_sha256": array_sha256(image), "seconds": round(time.time() - started, 2)}
    prov.update(provenance or {})
    warnings.extend(segmentation_warnings(raw, image.shape, scores))
    return Assessment(raw, ref.raw_objects, ref.sigma_raw, ref.n_replicas_matched, ref.replica_globals,
                      ref.replica_matching, tuple(scores), ref.rule, prov, model,
                      image=image, raw_labels=ref.raw_labels, replica_values=ref.replica_values,
                      null_eps=ref.null_eps, null_globals_eps=ref.null_globals_eps,
                      null_statistics=ref.null_statistics, null_tolerable=ref.null_tolerable,
                      sigma_model=ref.sigma_model, null_fractions=ref.null_fractions,
                      warnings=tuple(warnings) + ref.warnings, sigma_floor=ref.sigma_floor,
                      replica_status=ref.replica_status, null_loss=ref.null_loss)


def build_reference(image, profile, *, model=None, labels=None, replicas=10, seed=0, jobs=1, matching="iou",
                    min_area=0, model_seeds=0, extra_images=(), progress=None):
    """Segment the raw image, its replicas and two null replicas (and ``extra_images``, in the same
    parallel batch); returns the :class:`Reference` and the extra images' aligned objects.

    Besides sigma_raw it fixes, from the replicas alone, the sigma floor per parameter
    (:func:`noisestat.score.resolution_floor`), the fraction |eps| < 1 and the rate of raw-object
    losses of simulated second acquisitions (pairs of replicas), and warns when the replicas
    themselves lose many raw objects (:data:`UNSTABLE_FRACTION`).
    """
    forest_seed, replica_root, _, model_root = np.random.SeedSequence(seed).spawn(4)
    trained = labels is not None
    # The raw image's features are computed once for training and its own segmentation.
    if trained:
        model = PixelClassifier(random_state=np.random.default_rng(forest_seed), n_jobs=jobs)
    # (only for noisestat's own classifier: any other model with a ``segment(image)`` computes its own)
    features = weka_features(image, sigmas=model.sigmas) if isinstance(model, PixelClassifier) else None
    if trained:
        model.fit(image, labels, features=features)

    raw_labels = _segment(image, model, min_area, features)
    del features
    raw = measure_objects(raw_labels)
    raw_xy = np.column_stack([raw.column("XM"), raw.column("YM")])
    raw_objects = ImageObjects(raw.values, raw.labels.astype(np.int64), len(raw),
                               int(raw.column("Area").sum()) if len(raw) else 0, {}, np.asarray(raw.values),
                               labels=raw_labels, status=np.full(len(raw), "matched", dtype="<U7"))

    # N replicas estimate sigma_raw; two more, independent of them, simulate a second raw acquisition
    # (their difference over sigma_raw is the null distribution of eps).
    common = (model, raw_labels, raw_xy, matching, min_area)
    seeds = replica_seeds(replica_root, replicas + 2)
    tasks = [delayed(_replica_task)(image, profile, s, *common) for s in seeds]
    # A decoded image identical to the raw one (a lossless codec) has the raw segmentation: the forest
    # is deterministic, so it is not run again.
    tasks += [delayed(_segment_and_match)(extra, *common,
                                          labels=raw_labels if _same_image(extra, image) else None)
              for extra in extra_images]
    names = [f"replica {i + 1}" for i in range(replicas)] + ["null pair 1", "null pair 2"]
    names += [f"codec image {i + 1}" for i in range(len(extra_images))]
    results = _run(tasks, jobs, names, progress)
    replica_objects, null_pair, extra_objects = results[:replicas], results[replicas:replicas + 2], results[replicas + 2:]

    stack = np.stack([r.values for r in replica_objects]) if len(raw) else np.empty((replicas, 0, len(PARAMETERS)))
    sigma, n_matched = replica_spread(raw.values, stack, _ANGULAR)
    floor = resolution_floor(raw.values, stack, _ANGULAR)
    sigma_used = floored(sigma, floor[None])
    replica_globals = np.stack([r.globals for r in replica_objects])
    sigma_global = floored(replica_globals.std(axis=0, ddof=1), GLOBAL_FLOOR)

    null_eps = epsilon(null_pair[0].values, null_pair[1].values, sigma_used, _ANGULAR)
    null_globals = epsilon(null_pair[0].globals, null_pair[1].globals, sigma_global, np.zeros(2, bool))
    null_fractions = _null_fractions(raw.values, stack, null_eps, floor)
    null_stats = codec_statistics(null_eps, PARAMETERS, null_fractions)
    # Losses of a second acquisition: objects of one replica without a one-to-one partner in another
    # (disjoint pairs; the null pair is judged against the replica pairs only, the codecs against all).
    pair_counts = [_pair_unmatched(replica_objects[2 * k], replica_objects[2 * k + 1], matching)
                   for k in range(replicas // 2)]
    null_pair_counts = _pair_unmatched(null_pair[0], null_pair[1], matching)
    u0, n0 = sum(c[0] for c in pair_counts), sum(c[1] for c in pair_counts)
    null_loss_test = loss_test(null_pair_counts[0], null_pair_counts[1], u0, n0)
    u_all, n_all = u0 + null_pair_counts[0], n0 + null_pair_counts[1]
    null_loss = {"unmatched": int(u_all), "n": int(n_all), "rate": u_all / n_all if n_all else math.nan,
                 "pairs": len(pair_counts) + 1, "method": matching}
    null_ok, null_reasons, rule = verdict(null_stats, dict(zip(GLOBAL_PARAMETERS, null_globals)), replicas,
                                          loss=null_loss_test)

    replica_status = (np.stack([r.status for r in replica_objects]) if len(raw)
                      else np.empty((replicas, 0), dtype="<U7"))
    warnings = []
    if len(raw):
        unmatched = (replica_status != "matched").mean(axis=1)
        mean = float(unmatched.mean())
        if mean > UNSTABLE_FRACTION:
            parts = {k: float((replica_status == k).mean()) for k in STATUSES[1:]}
            warnings.append(
                f"unstable raw segmentation: the {replicas} replicas leave {mean:.0%} of the {len(raw)} raw objects "
                f"without a one-to-one partner on average (lost {parts['lost']:.0%}, split {parts['split']:.0%}, "
                f"merged {parts['merged']:.0%}; range {unmatched.min():.0%}-{unmatched.max():.0%}; threshold "
                f"{UNSTABLE_FRACTION:.0%}): sigma_raw and the per-object statistics describe only the objects that "
                f"survive the camera's own noise; {int((n_matched < 2).sum())} raw objects have no sigma_raw")
        never = [p for j, p in enumerate(PARAMETERS) if floor[j] == 0 and np.isfinite(sigma[:, j]).any()]
        if never:
            warnings.append(f"no replica changed {', '.join(never)} of any object: no sigma floor for them, so "
                            f"any change by a codec scores an infinite eps")

    sigma_model = None
    if model_seeds:
        # One feature computation serves the training of every retrained forest.
        features = weka_features(image, sigmas=model.sigmas)
        forests = [PixelClassifier(random_state=np.random.default_rng(s), n_jobs=jobs).fit(image, labels,
                                                                                          features=features)
                   for s in model_root.spawn(model_seeds)]
        del features
        tasks = [delayed(_segment_and_match)(image, f, raw_labels, raw_xy, matching, min_area) for f in forests]
        others = _run(tasks, jobs, [f"forest seed {i + 1}" for i in range(model_seeds)], progress)
        sigma_model, _ = replica_spread(raw.values, np.stack([o.values for o in others]), _ANGULAR)

    ref = Reference(profile, model, trained, seed, matching, min_area, raw, raw_labels, raw_objects, raw_xy, sigma,
                    n_matched, stack, replica_globals, tuple(r.matching for r in replica_objects), null_eps,
                    null_globals, null_stats, null_fractions, (null_ok, tuple(null_reasons)), rule, sigma_model,
                    tuple(warnings), floor, replica_status, null_loss)
    return ref, extra_objects


def _same_image(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b)


def _pair_unmatched(a: ImageObjects, b: ImageObjects, matching: str) -> tuple[int, int]:
    """Objects of image ``a`` without a one-to-one partner in image ``b`` (same rule as for the raw
    objects), and ``a``'s object count: one simulated second acquisition's losses."""
    if matching == "iou":
        m = match_iou(a.labels, b.labels)
    else:
        xy = [np.column_stack([t.table[:, PARAMETERS.index("XM")], t.table[:, PARAMETERS.index("YM")]])
              for t in (a, b)]
        m = match_centroids(*xy)
    return m.n_unmatched_reference, m.n_reference


def _null_fractions(raw_values, stack, null_eps, floor) -> dict:
    """Objects with |eps| < 1 of a second acquisition, per parameter, pooled over simulated ones:
    {"inside": count, "n": objects with an eps, "fraction": inside / n}.

    Besides the two extra replicas (sigma from all N), disjoint pairs of the N replicas give more
    second acquisitions for free: (chi_i - chi_j) / sigma from the other N - 2 replicas. Their eps
    is sqrt(2) t(N - 3) instead of t(N - 1), a fraction within the band lower by < 0.02 for N = 10;
    pooling them makes the reference fraction several times more precise. sigma is floored as for
    the codecs (same ``floor``).
    """
    pooled = [null_eps]
    n = len(stack)
    if n >= 4:
        for k in range(n // 2):
            i, j = 2 * k, 2 * k + 1
            rest = [m for m in range(n) if m not in (i, j)]
            sigma_rest, _ = replica_spread(raw_values, stack[rest], _ANGULAR)
            pooled.append(epsilon(stack[i], stack[j], floored(sigma_rest, floor[None]), _ANGULAR))
    eps = np.concatenate(pooled)
    out = {}
    for j, p in enumerate(PARAMETERS):
        col = eps[:, j]
        col = col[~np.isnan(col)]
        inside = int((np.abs(col) < 1).sum())
        out[p] = {"inside": inside, "n": int(len(col)), "fraction": inside / len(col) if len(col) else math.nan}
    return out


def score_codec(ref: Reference, coded: CodecResult, objects: ImageObjects) -> CodecScore:
    """eps, summaries, statistics, losses and the verdict of one decoded image against the reference."""
    raw = ref.raw
    eps = epsilon(raw.values, objects.values, ref.sigma_used, _ANGULAR)
    parameters = {p: summarise_eps(eps[:, j]) for j, p in enumerate(PARAMETERS)}
    statistics = codec_statistics(eps, PARAMETERS, ref.null_fractions)
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
    ok, reasons, _ = verdict(statistics, {k: v["eps"] for k, v in global_scores.items()}, ref.n_replicas, loss=loss)
    area = difference_stats(objects.values[:, 0] - raw.values[:, 0])
    return CodecScore(coded.spec, coded.compression_ratio, coded.n_bytes, coded.info, objects, eps, parameters,
                      global_scores, ok, tuple(reasons), statistics, area, loss)


def _run(tasks, jobs, names, progress):
    """Run joblib tasks in order, reporting each one finished to ``progress(name, done, total)``."""
    results = []
    for i, result in enumerate(Parallel(n_jobs=jobs, return_as="generator")(tasks)):
        results.append(result)
        if progress is not None:
            progress(names[i], i + 1, len(tasks))
    return results


def _check_range(image: np.ndarray, profile: CameraProfile, name: str = "image") -> list[str]:
    """Refuse an image the profile cannot describe (per-pixel maps of another shape, values beyond
    the digitiser, an image below the offset); return the profile-fit warnings
    (:meth:`CameraProfile.fit_warnings`), ``name`` (the image's file) in every message."""
    return profile.fit_warnings(image, name)


def assess_files(image_path, camera_path, codecs, outdir, *, model_path=None, labels_path=None, replicas=10,
                 seed=0, jobs=1, matching="iou", min_area=0, model_seeds=0, progress=None, channel=None,
                 plane=None) -> Assessment:
    """Read the inputs, validate them all before any work, assess, write ``outdir``.

    ``channel`` and ``plane`` choose the 2D plane of a multi-channel file or stack
    (:func:`noisestat.io.read_image_info`); they and the file's pixel size are kept in the provenance.
    """
    image, info = read_image_info(image_path, channel=channel, plane=plane)
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
                    progress=progress)
    write_assessment(result, outdir)
    return result
