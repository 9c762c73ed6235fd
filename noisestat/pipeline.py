"""The assessment pipeline: the one module that knows the order of the stages.

raw image + camera profile -> replicas -> pixel classifier -> objects -> morphometry ->
matching to the raw objects -> sigma_raw; each codec -> decoded image -> same chain -> eps.

Replicas and codecs are independent tasks run by joblib with ``jobs`` workers. Each task
draws its randomness from its own child seed and the forest predicts in a fixed order, so every
number is the same for any ``jobs``.
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed
from skimage.segmentation import relabel_sequential

from . import __version__
from ._io import (array_sha256, check_labels, check_raw_image, file_sha256, read_image_info, read_labels,
                  codec_input_files, prepare_output_dir, staged_directory, write_json_atomic,
                  write_text_atomic)
from .camera import CameraProfile, load_profile
from .classifier import PixelClassifier, load_model, save_model
from .codecs import CodecResult, parse_spec
from .errors import InputError
from .features import weka_features
from .inspection import outside_band_csv, segmentation_warnings, write_label_image
from .matching import METHODS, STATUSES, classify_objects, match_centroids, match_iou
from .morphometry import ANGULAR_PARAMETERS, PARAMETERS, ObjectMeasurements, measure_objects
from .replicas import MODE as REPLICA_MODE
from .replicas import draw_replica, replica_seeds
from .scores import (GLOBAL_FLOOR, angular_mask, epsilon, floored, null_reference, replica_spread, resolution_floor,
                     summarise_eps, verdict)
from .statistics import codec_statistics, difference_stats, loss_test

__all__ = ["Assessment", "CodecScore", "ImageObjects", "assess", "assess_files", "write_assessment",
           "format_summary", "GLOBAL_PARAMETERS", "SUMMARY_SCHEMA"]

GLOBAL_PARAMETERS = ("N_tot", "A_tot")
SUMMARY_SCHEMA = 1
_ANGULAR = angular_mask(PARAMETERS, ANGULAR_PARAMETERS)
# Raw segmentation called unstable when replicas leave more than this share of the raw objects without a
# one-to-one partner on average. Well-segmented simulated scenes lose 0.3-2.7 % between two images
# (benchmarks/README.md, bench_verdict); the real phase-contrast set3 image, fragmented, 46 %;
# above 20 % one raw object in five has its sigma_raw from fewer replicas or none, and the per-object
# statistics describe only the objects that survive the camera's own noise.
UNSTABLE_FRACTION = 0.2


@dataclass(frozen=True)
class ImageObjects:
    """One image's objects, aligned to the raw image's objects.

    Attributes
    ----------
    values : ndarray, shape (n_raw_objects, 19)
        Parameters of the object matched to each raw object; NaN where none matched.
    partner : ndarray of int, shape (n_raw_objects,)
        Label id of that object in this image's segmentation, 0 where none matched.
    n_objects : int
        N_tot: objects in this image.
    area_total : int
        A_tot: object pixels in this image.
    matching : dict
        Matched and unmatched counts: method, matched, unmatched_reference, unmatched_other, shared,
        and lost, split, merged (:func:`noisestat.matching.classify_objects`), n_reference.
    table : ndarray, shape (n_objects, 19)
        Every object of this image (matched or not), in label order: its own Results table.
    labels : ndarray of int, shape (rows, cols), optional
        This image's label image; its ids are those of ``partner`` (written to ``labels/``).
    status : ndarray of str, shape (n_raw_objects,), optional
        What happened to each raw object in this image: matched, lost, split or merged.
    """

    values: np.ndarray
    partner: np.ndarray
    n_objects: int
    area_total: int
    matching: dict
    table: np.ndarray | None = field(default=None, repr=False)
    labels: np.ndarray | None = field(default=None, repr=False, compare=False)
    status: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def globals(self) -> np.ndarray:
        return np.array([self.n_objects, self.area_total], dtype=float)


@dataclass(frozen=True)
class CodecScore:
    """Scores of one codec against the raw image."""

    spec: str
    compression_ratio: float | None
    n_bytes: int | None
    info: dict
    objects: ImageObjects
    eps: np.ndarray
    parameters: dict
    global_scores: dict
    tolerable: bool
    reasons: tuple
    statistics: dict = field(default_factory=dict)
    area_difference: dict = field(default_factory=dict)
    loss: dict = field(default_factory=dict)  # noisestat.statistics.loss_test: lost/split/merged vs replica pairs


@dataclass(frozen=True)
class Assessment:
    """Everything an assessment measured, with its provenance."""

    raw: ObjectMeasurements
    raw_objects: ImageObjects
    sigma_raw: np.ndarray
    n_replicas_matched: np.ndarray
    replica_globals: np.ndarray
    replica_matching: tuple
    codecs: tuple
    rule: str
    provenance: dict = field(default_factory=dict)
    model: PixelClassifier | None = field(default=None, repr=False, compare=False)
    image: np.ndarray | None = field(default=None, repr=False, compare=False)
    raw_labels: np.ndarray | None = field(default=None, repr=False, compare=False)
    replica_values: np.ndarray | None = field(default=None, repr=False, compare=False)
    null_eps: np.ndarray | None = field(default=None, repr=False, compare=False)
    null_globals_eps: np.ndarray | None = field(default=None, repr=False, compare=False)
    null_statistics: dict = field(default_factory=dict, repr=False, compare=False)
    null_tolerable: tuple = field(default=(), repr=False, compare=False)
    sigma_model: np.ndarray | None = field(default=None, repr=False, compare=False)
    null_fractions: dict = field(default_factory=dict, repr=False, compare=False)
    warnings: tuple = ()
    sigma_floor: np.ndarray | None = field(default=None, repr=False, compare=False)
    replica_status: np.ndarray | None = field(default=None, repr=False, compare=False)
    null_loss: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def n_replicas(self) -> int:
        return len(self.replica_globals)

    @property
    def sigma_used(self) -> np.ndarray:
        """The spread eps divides by: sigma_raw floored at the parameter's resolution (noisestat.scores)."""
        return self.sigma_raw if self.sigma_floor is None else floored(self.sigma_raw, self.sigma_floor[None])

    def summary(self) -> dict:
        """The content of ``summary.json``."""
        sigma_global = self.replica_globals.std(axis=0, ddof=1)
        codecs = []
        for c in self.codecs:
            codecs.append({
                "spec": c.spec, "compression_ratio": c.compression_ratio, "n_bytes": c.n_bytes,
                "settings": c.info, "matching": c.objects.matching,
                "object_status": [] if c.objects.status is None else [str(v) for v in c.objects.status],
                "loss": c.loss, "parameters": c.parameters, "global": c.global_scores,
                "tolerable": c.tolerable, "reasons": list(c.reasons)})
        for c, entry in zip(self.codecs, codecs):
            entry["statistics"] = c.statistics
            entry["area_difference"] = c.area_difference
        raw_globals = self.raw_objects.globals
        null = null_reference(self.n_replicas)
        if self.null_eps is not None:
            null["simulated"] = {
                "method": "two extra replicas per run: eps = (chi_a - chi_b) / sigma_raw, a difference of two "
                          "independent draws over sigma from the N replicas, as for a second raw acquisition",
                "parameters": {p: {**summarise_eps(self.null_eps[:, j]),
                                   "trimmed_mean": self.null_statistics.get(p, {}).get("trimmed_mean"),
                                   "p_equivalent": self.null_statistics.get(p, {}).get("p_equivalent")}
                               for j, p in enumerate(PARAMETERS)},
                "pooled_frac_abs_eps_lt_1": {p: v["fraction"] if isinstance(v, dict) else v
                                             for p, v in self.null_fractions.items()},
                "pooled_counts": {p: {"inside": v["inside"], "n": v["n"]}
                                  for p, v in self.null_fractions.items() if isinstance(v, dict)},
                "global": {name: float(self.null_globals_eps[i]) for i, name in enumerate(GLOBAL_PARAMETERS)},
                "judged_tolerable": bool(self.null_tolerable[0]) if self.null_tolerable else None,
                "reasons": list(self.null_tolerable[1]) if self.null_tolerable else [],
            }
        replica_area = (difference_stats(self.replica_values[:, :, 0] - self.raw.values[None, :, 0])
                        if self.replica_values is not None else {})
        model = None
        if self.sigma_model is not None:
            with np.errstate(divide="ignore", invalid="ignore"):  # sigma_raw may be 0: ratio inf/nan, dropped below
                ratio = self.sigma_model / self.sigma_raw
            model = {"seeds": self.provenance.get("model_seeds"),
                     "median_sigma_model_over_sigma_raw": {
                         p: float(np.nanmedian(np.where(np.isfinite(ratio[:, j]), ratio[:, j], np.nan)))
                         if np.isfinite(ratio[:, j]).any() else None for j, p in enumerate(PARAMETERS)},
                     "note": "spread of each parameter over forests retrained with other seeds; reported beside "
                             "sigma_raw, never added to it"}
        return {
            "schema_version": SUMMARY_SCHEMA,
            "noisestat": __version__,
            "replicas": self.n_replicas,
            "seed": self.provenance.get("seed"),
            "n_objects_raw": len(self.raw),
            "raw": {name: {"value": float(raw_globals[i]), "sigma_raw": float(sigma_global[i]),
                           "replica_mean": float(self.replica_globals[:, i].mean())}
                    for i, name in enumerate(GLOBAL_PARAMETERS)},
            "replica_matching": {
                "unmatched_raw_mean": float(np.mean([m["unmatched_reference"] for m in self.replica_matching])),
                "unmatched_replica_mean": float(np.mean([m["unmatched_other"] for m in self.replica_matching])),
                "raw_objects_with_sigma": int((self.n_replicas_matched >= 2).sum()),
                "unmatched_raw_fraction_mean": (float(np.mean([m["unmatched_reference"] for m in self.replica_matching]))
                                                / len(self.raw) if len(self.raw) else math.nan),
                "second_acquisition_unmatched_rate": self.null_loss.get("rate", math.nan),
                "second_acquisition_pairs": self.null_loss,
                "per_replica": list(self.replica_matching)},
            "sigma_floor": self._sigma_floor_summary(),
            "null_reference": null,
            "area_difference": {"replicas": replica_area,
                                **{c.spec: c.area_difference for c in self.codecs}},
            "sigma_model": model,
            "verdict_rule": self.rule,
            "warnings": list(self.warnings),
            "codecs": codecs,
            "provenance": self.provenance,
        }

    def _sigma_floor_summary(self) -> dict | None:
        if self.sigma_floor is None:
            return None
        with np.errstate(invalid="ignore"):
            below = self.sigma_raw < self.sigma_floor[None]
        n_sigma = np.isfinite(self.sigma_raw).sum(axis=0)
        return {"rule": "sigma used = max(sigma_raw, h / sqrt(12)), h the parameter's smallest observed change "
                        "(median over objects), 1 for N_tot and A_tot (noisestat.scores)",
                "parameters": {p: float(self.sigma_floor[j]) for j, p in enumerate(PARAMETERS)},
                "global": dict.fromkeys(GLOBAL_PARAMETERS, GLOBAL_FLOOR),
                "floored_fraction": {p: float(below[:, j].sum() / n_sigma[j]) if n_sigma[j] else None
                                     for j, p in enumerate(PARAMETERS)}}


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
        Object matching rule (:mod:`noisestat.matching`).
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


@dataclass(frozen=True)
class Reference:
    """Everything an assessment measures that does not depend on the codecs: the raw objects,
    sigma_raw from the replicas, the simulated second acquisition, sigma_model."""

    profile: CameraProfile
    model: PixelClassifier
    trained: bool
    seed: int
    matching: str
    min_area: int
    raw: ObjectMeasurements
    raw_labels: np.ndarray
    raw_objects: ImageObjects
    raw_xy: np.ndarray
    sigma_raw: np.ndarray
    n_replicas_matched: np.ndarray
    replica_values: np.ndarray
    replica_globals: np.ndarray
    replica_matching: tuple
    null_eps: np.ndarray
    null_globals_eps: np.ndarray
    null_statistics: dict
    null_fractions: dict
    null_tolerable: tuple
    rule: str
    sigma_model: np.ndarray | None = None
    warnings: tuple = ()
    sigma_floor: np.ndarray | None = None
    replica_status: np.ndarray | None = field(default=None, repr=False)
    null_loss: dict = field(default_factory=dict)

    @property
    def n_replicas(self) -> int:
        return len(self.replica_globals)

    @property
    def sigma_global(self) -> np.ndarray:
        """sd of N_tot and A_tot over the replicas (before the floor)."""
        return self.replica_globals.std(axis=0, ddof=1)

    @property
    def sigma_global_used(self) -> np.ndarray:
        """The global spread eps divides by: floored at :data:`noisestat.scores.GLOBAL_FLOOR`."""
        return floored(self.sigma_global, GLOBAL_FLOOR)

    @property
    def sigma_used(self) -> np.ndarray:
        """The per-object spread eps divides by: sigma_raw floored per parameter."""
        return self.sigma_raw if self.sigma_floor is None else floored(self.sigma_raw, self.sigma_floor[None])

    def segment_and_match(self, image: np.ndarray) -> ImageObjects:
        """Objects of another image of the same scene, aligned to the raw objects."""
        return _segment_and_match(image, self.model, self.raw_labels, self.raw_xy, self.matching, self.min_area)


def build_reference(image, profile, *, model=None, labels=None, replicas=10, seed=0, jobs=1, matching="iou",
                    min_area=0, model_seeds=0, extra_images=(), progress=None):
    """Segment the raw image, its replicas and two null replicas (and ``extra_images``, in the same
    parallel batch); returns the :class:`Reference` and the extra images' aligned objects.

    Besides sigma_raw it fixes, from the replicas alone, the sigma floor per parameter
    (:func:`noisestat.scores.resolution_floor`), the fraction |eps| < 1 and the rate of raw-object
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


_CSV_COLUMNS = ("codec", "object", "parameter", "chi_raw", "sigma_raw", "sigma_used", "n_replicas_matched",
                "status", "codec_object", "chi_codec", "eps")


def _fmt(value) -> str:
    if isinstance(value, (float, np.floating)):
        return "" if math.isnan(value) else repr(float(value))
    return str(value)


def objects_columns(assessment: Assessment) -> dict:
    """The long table of ``objects.csv`` / ``objects.parquet`` as columns: one row per codec, raw
    object and parameter (codec_object 0 and NaN values where the codec lost the object)."""
    n_obj, n_par = assessment.raw.values.shape
    rows = n_obj * n_par
    codecs = assessment.codecs
    tile = lambda a: np.tile(np.asarray(a).reshape(-1), len(codecs))  # noqa: E731
    return {
        "codec": np.repeat([c.spec for c in codecs], rows),
        "object": tile(np.repeat(assessment.raw.labels, n_par)),
        "parameter": tile(np.tile(PARAMETERS, n_obj)),
        "chi_raw": tile(assessment.raw.values),
        "sigma_raw": tile(assessment.sigma_raw),
        "sigma_used": tile(assessment.sigma_used),
        "n_replicas_matched": tile(np.repeat(assessment.n_replicas_matched, n_par)),
        "status": np.concatenate([np.repeat(_status(c.objects, n_obj), n_par) for c in codecs]) if codecs else [],
        "codec_object": np.concatenate([np.repeat(c.objects.partner, n_par) for c in codecs]) if codecs else [],
        "chi_codec": np.concatenate([c.objects.values.reshape(-1) for c in codecs]) if codecs else [],
        "eps": np.concatenate([c.eps.reshape(-1) for c in codecs]) if codecs else [],
    }


def _status(objects: ImageObjects, n_obj: int) -> np.ndarray:
    """Per raw object, what this image's segmentation made of it (matched, lost, split, merged)."""
    if objects.status is None:
        return np.where(np.asarray(objects.partner) > 0, "matched", "lost")
    return np.asarray(objects.status, dtype=str).reshape(n_obj)


def objects_csv(assessment: Assessment) -> str:
    """``objects.csv``: one row per codec, raw object and parameter (empty where not estimable)."""
    cols = objects_columns(assessment)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(_CSV_COLUMNS)
    for row in zip(*(cols[k] for k in _CSV_COLUMNS)):
        writer.writerow(tuple(_fmt(v) if isinstance(v, (float, np.floating)) else
                              ("" if k == "codec_object" and v == 0 else str(v)) for k, v in zip(_CSV_COLUMNS, row)))
    return buffer.getvalue()


def write_objects_parquet(assessment: Assessment, path) -> None:
    """``objects.parquet``: the same table with typed columns (NaN where not estimable)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = objects_columns(assessment)
    table = pa.table({"codec": pa.array(cols["codec"], pa.string()), "object": pa.array(cols["object"], pa.int64()),
                      "parameter": pa.array(cols["parameter"], pa.string()),
                      "chi_raw": pa.array(cols["chi_raw"], pa.float64()),
                      "sigma_raw": pa.array(cols["sigma_raw"], pa.float64()),
                      "sigma_used": pa.array(cols["sigma_used"], pa.float64()),
                      "n_replicas_matched": pa.array(cols["n_replicas_matched"], pa.int64()),
                      "status": pa.array(cols["status"], pa.string()),
                      "codec_object": pa.array(cols["codec_object"], pa.int64()),
                      "chi_codec": pa.array(cols["chi_codec"], pa.float64()),
                      "eps": pa.array(cols["eps"], pa.float64())},
                     metadata={"noisestat_schema": str(SUMMARY_SCHEMA)})
    pq.write_table(table, path)


def results_table_csv(values: np.ndarray) -> str:
    """An ImageJ Results table (ImageJ's column names, rows numbered from 1) of one image's objects."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow((" ",) + PARAMETERS)
    for i, row in enumerate(values):
        writer.writerow((i + 1,) + tuple(_fmt(v) for v in row))
    return buffer.getvalue()


def raw_results_csv(assessment: Assessment) -> str:
    """ImageJ-style Results table of the raw image's objects."""
    return results_table_csv(assessment.raw.values)


def _safe_name(spec: str) -> str:
    keep = "".join(ch if ch.isalnum() or ch in "-_=." else "_" for ch in spec)
    return keep[:80]


def format_summary(assessment: Assessment) -> str:
    """The short human-readable summary printed after an assessment."""
    s = assessment.summary()
    lines = [f"raw: {s['n_objects_raw']} objects, {s['replicas']} replicas (seed {s['seed']}), "
             f"N_tot sigma_raw {s['raw']['N_tot']['sigma_raw']:.2f}, A_tot sigma_raw {s['raw']['A_tot']['sigma_raw']:.1f} px"]
    header = (f"{'codec':<34} {'ratio':>7} {'matched':>8} {'lost/split/merged':>17} {'eps N_tot':>9} {'eps A_tot':>9} "
              f"{'worst |mean eps|':>24}  verdict")
    lines.append(header)
    for c in s["codecs"]:
        ratio = "-" if c["compression_ratio"] is None else f"{c['compression_ratio']:.1f}"
        means = {p: abs(v["mean_eps"]) for p, v in c["parameters"].items() if not math.isnan(v["mean_eps"])}
        worst = max(means, key=means.get) if means else None
        worst_text = f"{worst} {means[worst]:.2f}" if worst else "n/a"
        m = c["matching"]
        lsm = f"{m.get('lost', 0)}/{m.get('split', 0)}/{m.get('merged', 0)}"
        lines.append(f"{c['spec'][:34]:<34} {ratio:>7} {m['matched']:>8} {lsm:>17} "
                     f"{c['global']['N_tot']['eps']:>9.2f} {c['global']['A_tot']['eps']:>9.2f} {worst_text:>24}  "
                     f"{'tolerable' if c['tolerable'] else 'NOT tolerable'}")
    lines.append(f"rule: {s['verdict_rule']}")
    lines.extend(f"warning: {w}" for w in s.get("warnings", []))
    return "\n".join(lines)


def write_assessment(assessment: Assessment, outdir: str | os.PathLike) -> Path:
    """Write the assessment to ``outdir``: ``summary.json``, ``objects.csv`` and ``objects.parquet``,
    ``summary.txt``, ImageJ Results tables per image (``imagej/``; ``raw_results.csv`` for the raw
    image), label images of every segmentation (``labels/``, numbered as ``imagej/``), the objects
    outside the noise band (``outside_band.csv``), ``report.html`` with its ``figures/``, and the
    classifier used (``model.npz``, reusable with ``--model``).

    The folder is built under a temporary name and moved into place at the end, so an
    interrupted run never leaves a folder that looks complete, and an existing folder is only
    replaced by a finished one.
    """
    with staged_directory(outdir, command="assess",
                          inputs=[i["path"] for i in assessment.provenance.get("inputs", {}).values()]) as tmp:
        write_text_atomic(tmp / "objects.csv", objects_csv(assessment))
        write_objects_parquet(assessment, tmp / "objects.parquet")
        write_text_atomic(tmp / "raw_results.csv", raw_results_csv(assessment))
        (tmp / "imagej").mkdir()
        write_text_atomic(tmp / "imagej" / "00_raw.csv", raw_results_csv(assessment))
        for k, c in enumerate(assessment.codecs, 1):
            if c.objects.table is not None:
                write_text_atomic(tmp / "imagej" / f"{k:02d}_{_safe_name(c.spec)}.csv", results_table_csv(c.objects.table))
        # Label images: ids are objects.csv's `object` (raw) and `codec_object` (codecs), so tables join.
        if assessment.raw_labels is not None:
            (tmp / "labels").mkdir()
            pixel_size = assessment.provenance.get("pixel_size")
            write_label_image(tmp / "labels" / "00_raw.tif", assessment.raw_labels, pixel_size=pixel_size)
            for k, c in enumerate(assessment.codecs, 1):
                if getattr(c.objects, "labels", None) is not None:
                    write_label_image(tmp / "labels" / f"{k:02d}_{_safe_name(c.spec)}.tif", c.objects.labels,
                                      pixel_size=pixel_size)
        write_text_atomic(tmp / "outside_band.csv", outside_band_csv(assessment))
        write_text_atomic(tmp / "summary.txt", format_summary(assessment) + "\n")
        if assessment.model is not None:
            save_model(assessment.model, tmp / "model.npz")
        if assessment.image is not None:
            from .report import write_report

            write_report(assessment, tmp)
        # summary.json last: its presence marks a complete output.
        write_json_atomic(tmp / "summary.json", assessment.summary())
    return Path(outdir)


def assess_files(image_path, camera_path, codecs, outdir, *, model_path=None, labels_path=None, replicas=10,
                 seed=0, jobs=1, matching="iou", min_area=0, model_seeds=0, progress=None, channel=None,
                 plane=None) -> Assessment:
    """Read the inputs, validate them all before any work, assess, write ``outdir``.

    ``channel`` and ``plane`` choose the 2D plane of a multi-channel file or stack
    (:func:`noisestat._io.read_image_info`); they and the file's pixel size are kept in the provenance.
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
