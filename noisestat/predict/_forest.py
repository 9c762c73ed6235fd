"""A random-forest pixel classifier trained from sparse labels, and its safe file format.

The classifier follows the scikit-learn estimator contract: ``__init__`` stores parameters,
``fit(image, labels)`` validates, converts ``random_state`` and returns ``self``, learned
attributes end in ``_``. Its defaults are those of Trainable Weka Segmentation (200 trees,
2 random features per split, unlimited depth), but the forest seed is fixed and recorded. It
learns the classes of its sparse labels (1 background, 2 and up the classes of object) and gives a
class map (:meth:`PixelClassifier.predict_classes`) with a probability threshold per class, or the
mask of every class but the background (:meth:`PixelClassifier.predict_mask`).

Saved models are ``.npz`` archives of plain numeric arrays plus a JSON header, read without
pickle: opening a model file cannot run code, unlike a pickle. Every part of the file is checked
before use (:func:`load_model`), since scikit-learn trusts the tree tables it is given.
"""

from __future__ import annotations

import json
import math
import os
import re
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from skimage.measure import label as _label_components
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import RandomForestClassifier
from sklearn.tree import DecisionTreeClassifier
from sklearn.tree._tree import Tree

from ..io._files import atomic_file
from ..errors import InputError, ModelError
from ._weka import DEFAULT_SIGMAS, feature_names, weka_features

__all__ = ["PixelClassifier", "load_model", "save_model", "decide_threshold", "decide_classes", "parse_thresholds",
           "check_class_labels", "BACKGROUND", "OBJECT", "THRESHOLD", "MAX_CLASS", "FEATURE_SETS"]

BACKGROUND, OBJECT = 1, 2
# The default probability threshold of every class but the background.
THRESHOLD = 0.5
# The largest class id: a class map is uint8, 0 for the background.
MAX_CLASS = 255
MODEL_FORMAT = "noisestat-pixel-classifier"
# Format 1 holds a two-class model (background, object), which noisestat versions before classes
# were added also read; format 2 a model of three classes or more.
MODEL_VERSION = 1
MODEL_VERSION_CLASSES = 2
# Pixels per tree pass. Each tree reads every row of its chunk, so the chunk's features (6.9 MB for
# 70) should stay in cache across the trees, also with two workers side by side. On a 512 x 512
# tile (2 cores, 32 MB L3; benchmarks/bench_forest_chunk.py): a forest of shallow trees decided
# 65536-pixel chunks in 0.28-0.45 s alone and 0.31-0.44 s beside a second process, 24576-pixel
# chunks in 0.18-0.19 s both ways; a real forest of deep trees (236k nodes), whose per-call costs
# favour larger chunks, took 1.73 s at 24576, 1.75 s at 65536 and 1.82 s at 16384.
_PREDICT_CHUNK = 24576

# Limits a model file must respect before anything in it is decompressed or built. A forest of
# 200 unlimited-depth trees grown on a million labelled pixels stays far below each of them.
MAX_MODEL_BYTES = 2 << 30    # total uncompressed size of all members of the archive (2 GiB)
MAX_HEADER_BYTES = 16 << 20  # the JSON header member (16 MiB)
MAX_TREES = 10_000
MAX_NODES = 1 << 24          # nodes per tree
MAX_SIGMAS = 16              # feature scales (the number of features grows with their square)
MAX_SIGMA = 1024.0           # largest feature scale, pixels


FEATURE_SETS = ("weka", "ilastik")
# The forest's default scales for the ilastik set: ilastik's up to 3.5 px. Its larger ones (5, 10)
# need a 60-pixel halo a side, which in 3D makes each tile's region ~25x its core for a tile that
# fits memory; up to 3.5 the halo is 21 px (noisestat.predict.ilastik_halo).
VOLUME_SIGMAS = (0.7, 1.6, 3.5)


def _feature_names(feature_set: str, sigmas, ndim: int) -> list[str]:
    if feature_set == "weka":
        return feature_names(sigmas)
    from ._ilastik import ilastik_feature_names

    return ilastik_feature_names(sigmas, ndim)


class PixelClassifier(BaseEstimator, ClassifierMixin):
    """Random forest on pixel features, trained from a sparse label image.

    A :class:`~noisestat.predict.MaskPredictor`: the foreground decision at a pixel needs only the
    pixels within :meth:`halo`, so noisestat runs it tile by tile with the same result.

    The sparse labels hold 0 (unlabelled), 1 (background) and one id per class of object, 2 and up
    (at most :data:`MAX_CLASS`): two classes (background, object) or more (background, organ,
    plaque). A pixel is of class c when the forest's probability of c is above c's threshold
    (:data:`THRESHOLD` unless ``thresholds`` says otherwise), and background when no class passes
    its own; :meth:`predict_classes` gives the class map, :meth:`predict_mask` the pixels of any
    class but the background.

    Parameters
    ----------
    n_estimators : int, default 200
        Number of trees.
    max_features : int, default 2
        Random features considered at each split.
    sigmas : tuple of float, optional
        Feature scales: the Weka set's nominal scales, default (1, 2, 4, 8, 16)
        (:func:`noisestat.predict.weka_features`), or the ilastik set's, default
        :data:`VOLUME_SIGMAS` (:func:`noisestat.predict.ilastik_features`).
    random_state : int, numpy.random.Generator or None
        Seed of the forest. ``None`` draws fresh entropy; the seed used is always stored in
        ``seed_``, so any fitted model can be reproduced.
    n_jobs : int, default 1
        Threads used to grow the trees (the result does not depend on it).
    feature_set : {"weka", "ilastik"}, default "weka"
        "weka": Trainable Weka Segmentation's 70 2D features; "ilastik": an ilastik-style set for
        2D images and 3D volumes.
    spacing : tuple of float, optional
        Physical voxel size per axis for the ilastik set's anisotropic scales (z, y, x).
    thresholds : mapping of int to float, optional
        Probability threshold per class but the background, in (0, 1); a class left out gets
        :data:`THRESHOLD`. :func:`parse_thresholds` reads them from text ("2=0.7,3=0.5").

    Attributes
    ----------
    forest_ : sklearn.ensemble.RandomForestClassifier
    seed_ : int
        The integer seed the forest was grown with.
    classes_ : ndarray
        The class ids found in the training labels, ascending: 1 (background) first.
    n_features_in_ : int
    ndim_ : int
        Dimensions of the images it was trained on (2 or 3).
    n_training_pixels_ : dict
        Labelled pixels per class.
    """

    def __init__(self, n_estimators=200, max_features=2, sigmas=None, random_state=None, n_jobs=1,
                 feature_set="weka", spacing=None, thresholds=None):
        self.n_estimators = n_estimators
        self.max_features = max_features
        self.sigmas = sigmas
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.feature_set = feature_set
        self.spacing = spacing
        self.thresholds = thresholds

    @property
    def scales(self) -> tuple:
        """The feature scales used: ``sigmas``, or the feature set's defaults."""
        if self.sigmas is not None:
            return tuple(float(s) for s in self.sigmas)
        return tuple(float(s) for s in (DEFAULT_SIGMAS if self.feature_set == "weka" else VOLUME_SIGMAS))

    def _check_image(self, image: np.ndarray, what: str) -> None:
        if self.feature_set not in FEATURE_SETS:
            raise ModelError(f"feature_set must be one of {', '.join(FEATURE_SETS)}; got {self.feature_set!r}")
        allowed = (2,) if self.feature_set == "weka" else (2, 3)
        if image.ndim not in allowed:
            raise ModelError(f"{what} must be {' or '.join(f'{d}D' for d in allowed)} for the {self.feature_set} "
                             f"feature set; got shape {image.shape}")
        if hasattr(self, "ndim_") and image.ndim != self.ndim_:
            raise ModelError(f"{what} is {image.ndim}D; this model was trained on {self.ndim_}D images")

    def features(self, image: np.ndarray, *, threads: int = 1, inner: tuple | None = None) -> np.ndarray:
        """The pixel features of ``image`` (or of a region of it), float32, features on the last axis.

        ``inner``, optional: the features of ``image[inner]`` only (a tile's core), computed with
        the whole region around it; equal to ``features(image)[inner]``. The ilastik set then
        does its per-pixel work and holds its result on the core only."""
        image = np.asarray(image)
        if self.feature_set == "ilastik":
            from ._ilastik import ilastik_features

            return ilastik_features(image, sigmas=self.scales, spacing=self.spacing, threads=threads, inner=inner)
        out = weka_features(image, sigmas=self.scales, **({} if threads == 1 else {"threads": threads}))
        return out if inner is None else out[tuple(inner)]

    def tile_bytes(self, core: tuple, region: tuple) -> int:
        """Peak bytes of one tile's features (``core`` and ``region`` shapes, the region being the
        core grown by the halo), for :func:`noisestat.engine.default_tile`. The Weka set is computed
        on the whole region; the ilastik set keeps its result on the core only and the filters'
        intermediates on the region: the float32 region, the gradients and the product or
        derivative being formed (2 + ndim arrays of 4 bytes a voxel)."""
        n = self.n_features(len(core))
        if self.feature_set == "ilastik":
            return int(math.prod(core)) * n * 4 + int(math.prod(region)) * 4 * (2 + len(core))
        return int(math.prod(region)) * n * 4

    def n_features(self, ndim: int) -> int:
        """Features per pixel for images of ``ndim`` dimensions."""
        return len(_feature_names(self.feature_set, self.scales, ndim))

    def halo(self, ndim: int) -> tuple[int, ...]:
        """Context per side and axis for a region's features in its core to equal the whole image's
        (:func:`noisestat.predict.weka_halo`, :func:`noisestat.predict.ilastik_halo`)."""
        if self.feature_set == "ilastik":
            from ._ilastik import ilastik_halo

            return tuple(int(h) for h in ilastik_halo(sigmas=self.scales, spacing=self.spacing, ndim=ndim))
        from ._weka import weka_halo

        return (int(weka_halo(self.scales)),) * ndim

    def fit(self, image: np.ndarray, labels: np.ndarray, *, features: np.ndarray | None = None) -> "PixelClassifier":
        """Train on the pixels of ``image`` where ``labels`` is not 0: 1 (background), 2, 3, ... (the
        classes of object; :func:`check_class_labels`).

        ``features``, optional, are ``self.features(image)`` computed by the caller, so that one
        computation serves training and the segmentation of the same image.
        """
        image = np.asarray(image)
        labels = np.asarray(labels)
        self._check_image(image, "training image")
        check_class_labels(labels, shape=image.shape)
        features = self._features(image, features)
        picked = labels > 0
        return self.fit_pixels(features[picked], labels[picked], ndim=image.ndim)

    def fit_pixels(self, features: np.ndarray, labels: np.ndarray, *, ndim: int = 2) -> "PixelClassifier":
        """Train on labelled pixels' feature rows (in raster order of the image, as :meth:`fit`
        takes them) and their labels (1 background, 2, 3, ... the classes of object; every row
        labelled). The classes are those present: 1 and at least one other."""
        labels = np.asarray(labels)
        classes = _training_classes(labels)
        if isinstance(self.random_state, np.random.Generator):
            seed = int(self.random_state.integers(2**32))
        elif self.random_state is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        else:
            seed = int(np.random.SeedSequence(self.random_state).generate_state(1)[0])
        forest = RandomForestClassifier(
            n_estimators=self.n_estimators, max_features=self.max_features, max_depth=None,
            bootstrap=True, random_state=seed, n_jobs=self.n_jobs)
        forest.fit(features, labels)
        # Prediction runs the trees in a fixed order in one thread: tree votes then sum to the same
        # bits whatever the number of workers running images in parallel (threaded prediction
        # accumulates in completion order).
        forest.n_jobs = 1
        self.forest_ = forest
        self.seed_ = seed
        self.classes_ = forest.classes_
        self.n_features_in_ = features.shape[-1]
        self.ndim_ = int(ndim)
        self.n_training_pixels_ = {int(c): int((labels == c).sum()) for c in classes}
        self.class_thresholds()   # thresholds given for classes the labels lack are refused here
        return self

    def class_thresholds(self, thresholds=None) -> dict[int, float]:
        """The threshold of every class but the background, ``{class: threshold}`` in class order:
        ``thresholds`` (a mapping, e.g. from :func:`parse_thresholds`) if given, else the model's
        ``thresholds``; :data:`THRESHOLD` for a class neither names."""
        self._check_fitted()
        given = self.thresholds if thresholds is None else thresholds
        objects = [int(c) for c in self.classes_ if c != BACKGROUND]
        out = {c: THRESHOLD for c in objects}
        if given is None:
            return out
        if not hasattr(given, "items"):
            raise ModelError(f"thresholds must map classes to probabilities, e.g. {{2: 0.7}}; got {given!r:.60}")
        for cls, value in given.items():
            if not isinstance(cls, (int, np.integer)) or isinstance(cls, (bool, np.bool_)) or int(cls) not in objects:
                raise ModelError(f"thresholds: class {cls!r:.20} is not one of this model's classes "
                                 f"{', '.join(map(str, objects))} (1 is the background and has none)")
            if (not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, (bool, np.bool_))
                    or not 0.0 < float(value) < 1.0):
                raise ModelError(f"thresholds: class {int(cls)} needs a probability in (0, 1); got {value!r:.30}")
            out[int(cls)] = float(value)
        return out

    def _check_fitted(self):
        if not hasattr(self, "forest_"):
            raise ModelError("PixelClassifier is not fitted: call fit(image, labels) or load_model(path)")

    def _features(self, image: np.ndarray, features: np.ndarray | None) -> np.ndarray:
        """The pixel features of ``image``: computed here, or the caller's, checked for their shape."""
        if features is None:
            return self.features(image)
        expected = image.shape + (len(_feature_names(self.feature_set, self.scales, image.ndim)),)
        if features.shape != expected:
            raise ModelError(f"precomputed features must have the shape {expected} (image, features); "
                             f"got {features.shape}")
        return features

    def predict_proba(self, image: np.ndarray, *, features: np.ndarray | None = None) -> np.ndarray:
        """Probability of the object class at every pixel, same shape as ``image``, float64 (a
        two-class model; :meth:`predict_class_proba` gives every class's).

        ``features``, optional: ``self.features(image)`` already computed.
        """
        self._check_fitted()
        if len(self.classes_) != 2:
            raise ModelError(f"predict_proba gives the object class of a two-class model; this one has classes "
                             f"{', '.join(str(int(c)) for c in self.classes_)}: use predict_class_proba")
        return self.predict_class_proba(image, features=features)[..., self._object_column()]

    def predict_class_proba(self, image: np.ndarray, *, features: np.ndarray | None = None) -> np.ndarray:
        """Probability of every class at every pixel, ``image.shape + (len(classes_),)``, float64,
        the classes in the order of ``classes_`` (scikit-learn's ``predict_proba``, every tree)."""
        self._check_fitted()
        image = np.asarray(image)
        self._check_image(image, "image")
        features = self._features(image, features).reshape(-1, self.n_features_in_)
        proba = np.empty((features.shape[0], len(self.classes_)))
        for start in range(0, features.shape[0], _PREDICT_CHUNK):
            chunk = features[start:start + _PREDICT_CHUNK]
            proba[start:start + len(chunk)] = self.forest_.predict_proba(chunk)
        return proba.reshape(image.shape + (len(self.classes_),))

    def _object_column(self) -> int:
        return int(np.flatnonzero(self.classes_ == OBJECT)[0])

    def predict(self, image: np.ndarray, *, features: np.ndarray | None = None) -> np.ndarray:
        """Object mask (:meth:`predict_mask`): for a two-class model, probability of the object
        class above its threshold (0.5 by default: the argmax of two classes).

        Equal, pixel for pixel, to ``predict_proba(image) > threshold``, with fewer tree evaluations
        (:func:`decide_threshold`)."""
        return self.predict_mask(image, features=features)

    def predict_mask(self, region: np.ndarray, *, features: np.ndarray | None = None,
                     counts: dict | None = None, threads: int = 1, thresholds=None) -> np.ndarray:
        """Object mask of ``region`` (the :class:`~noisestat.predict.MaskPredictor` method): the
        pixels of any class but the background, ``predict_classes(region) > 0``. For a two-class
        model, the object class's probability above its threshold, as before classes were added.

        ``counts``, optional, receives ``tree_evaluations`` and ``pixels`` (for the time breakdown).
        ``threads`` > 1 decides chunks of pixels in that many threads (scikit-learn's tree traversal
        releases the GIL); each pixel's decision is its own, so the mask does not depend on it.
        ``thresholds``, optional: as for :meth:`predict_classes`.
        """
        return self.predict_classes(region, features=features, counts=counts, threads=threads,
                                    thresholds=thresholds) > 0

    def predict_classes(self, region: np.ndarray, *, features: np.ndarray | None = None,
                        counts: dict | None = None, threads: int = 1, thresholds=None) -> np.ndarray:
        """Class map of ``region``, uint8 of its shape: 0 for the background, c for a pixel of class
        c (2, 3, ...). Tiled like :meth:`predict_mask`, with the same :meth:`halo`: a pixel's class
        needs only its own features.

        A pixel is of class c when the forest's probability of c is above c's threshold
        (:meth:`class_thresholds`: ``thresholds`` if given here, else the model's, else
        :data:`THRESHOLD`); the background when no class passes. When several pass (only
        possible where two thresholds sum to less than 1), the pixel is of the class whose
        probability exceeds its threshold by the largest factor, p_c / threshold_c (the lower
        class id on a tie). Decided exactly, pixel for pixel as scikit-learn's ``predict_proba``
        would, with fewer tree evaluations (:func:`decide_classes`). ``features``, ``counts`` and
        ``threads`` as for :meth:`predict_mask`.
        """
        self._check_fitted()
        region = np.asarray(region)
        self._check_image(region, "image")
        limits = self.class_thresholds(thresholds)
        features = self._features(region, features).reshape(-1, self.n_features_in_)
        choice = np.empty(features.shape[0], dtype=np.uint8)
        classes = [int(c) for c in self.classes_]
        columns = tuple(classes.index(c) for c in limits)
        values = tuple(limits.values())
        _leaf_probabilities(self.forest_, columns)   # built once, before any thread reads it
        starts = range(0, features.shape[0], _PREDICT_CHUNK)

        def decide(start):
            chunk = features[start:start + _PREDICT_CHUNK]
            choice[start:start + len(chunk)], n = decide_classes(self.forest_, chunk, columns, values)
            return n

        if threads > 1 and len(starts) > 1:
            with ThreadPoolExecutor(min(threads, len(starts))) as pool:
                evaluations = sum(pool.map(decide, starts))
        else:
            evaluations = sum(decide(start) for start in starts)
        if counts is not None:
            counts["tree_evaluations"] = counts.get("tree_evaluations", 0) + evaluations
            counts["pixels"] = counts.get("pixels", 0) + features.shape[0]
        ids = np.array([0, *limits], dtype=np.uint8)
        return ids[choice].reshape(region.shape)

    def segment(self, image: np.ndarray, *, features: np.ndarray | None = None) -> np.ndarray:
        """Label image of the fully connected objects of :meth:`predict` (8-connected in 2D,
        26-connected in 3D; 0 background, 1..n)."""
        mask = self.predict(image, features=features)
        return _label_components(mask, connectivity=mask.ndim).astype(np.int32)

    def describe(self) -> dict:
        """Parameters and learned facts worth recording in an output's provenance: the classes, each
        one's threshold (``thresholds``, keyed by the class id as text; a two-class model also
        gives its object class's as ``threshold``) and labelled pixels per class (``by_class``,
        with ``background`` and ``object``, the latter summed over every class but the background)."""
        self._check_fitted()
        limits = self.class_thresholds()
        pixels = {int(c): int(n) for c, n in self.n_training_pixels_.items()}
        out = {"n_estimators": int(self.n_estimators), "max_features": int(self.max_features),
               "sigmas": [float(s) for s in self.scales], "seed": int(self.seed_),
               "n_features": int(self.n_features_in_),
               **({"threshold": limits[OBJECT]} if len(limits) == 1 else {}),
               "classes": [int(c) for c in self.classes_],
               "thresholds": {str(c): t for c, t in limits.items()},
               "feature_set": self.feature_set, "ndim": int(getattr(self, "ndim_", 2)),
               "spacing": None if self.spacing is None else [float(v) for v in self.spacing],
               "training_pixels": {"background": pixels[BACKGROUND],
                                   "object": sum(n for c, n in pixels.items() if c != BACKGROUND),
                                   "by_class": {str(c): n for c, n in pixels.items()}}}
        return out


def check_class_labels(labels: np.ndarray, *, shape: tuple[int, ...] | None = None, name: str = "labels") -> None:
    """Raise InputError unless ``labels`` is a valid sparse label image (2D) or volume (3D) of two
    classes or more: integers, 0 unlabelled, 1 background, 2 to :data:`MAX_CLASS` the classes of
    object, with 1 and at least one class of object present."""
    labels = np.asarray(labels)
    if labels.ndim not in (2, 3):
        raise InputError(f"{name}: expected a 2D label image or a 3D label volume; got shape {labels.shape}")
    if shape is not None and labels.shape != tuple(shape):
        raise InputError(f"{name}: labels must have the image's shape {tuple(shape)}; got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer) and labels.dtype != bool:
        raise InputError(f"{name}: labels must be integers (0 unlabelled, 1 background, 2 and up the classes of "
                         f"object); got dtype {labels.dtype}")
    _training_classes(labels[labels != 0], name=name)


def _training_classes(labels: np.ndarray, name: str = "training labels") -> list[int]:
    """The classes of labelled pixels' ``labels`` (none 0), checked: 1 and at least one class of
    object, every id in [1, MAX_CLASS]."""
    if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
        raise InputError(f"{name}: labels must be integers; got dtype {labels.dtype}")
    values = [int(v) for v in np.unique(labels)]
    extra = [v for v in values if not 1 <= v <= MAX_CLASS]
    if extra:
        raise InputError(f"{name}: labels must be 0 (unlabelled), 1 (background) or a class of object from 2 to "
                         f"{MAX_CLASS}; found {extra[:5]}")
    if BACKGROUND not in values:
        raise InputError(f"{name}: no pixel is labelled 1 (background); the classifier needs it and one class of "
                         f"object at least")
    if len(values) < 2:
        raise InputError(f"{name}: no pixel is labelled 2 or more (a class of object); the classifier needs one "
                         f"at least")
    return values


def parse_thresholds(text: str, classes) -> dict[int, float]:
    """Per-class probability thresholds from text: ``"2=0.7,3=0.5"`` -> ``{2: 0.7, 3: 0.5}``.

    ``classes``: the model's classes (``classes_``, background included). Each item is a class of
    object and a probability in (0, 1); classes not named keep their default. Raises InputError,
    one line, on malformed text, a class the model lacks, the background (1: a pixel is background
    when no other class passes its threshold), a class given twice or a value outside (0, 1).

    Examples
    --------
    >>> parse_thresholds("2=0.7, 3=0.5", [1, 2, 3])
    {2: 0.7, 3: 0.5}
    """
    objects = [int(c) for c in classes if int(c) != BACKGROUND]
    known = ", ".join(map(str, objects))
    out: dict[int, float] = {}
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"thresholds {text!r:.60}: expected CLASS=PROBABILITY items separated by commas, "
                         f"e.g. 2=0.7,3=0.5")
    for item in text.split(","):
        cls_text, sep, value_text = item.partition("=")
        cls_text, value_text = cls_text.strip(), value_text.strip()
        if not sep or not re.fullmatch(r"[0-9]{1,3}", cls_text) or not value_text:
            raise InputError(f"thresholds {text!r:.60}: {item.strip()!r:.30} is not CLASS=PROBABILITY "
                             f"(e.g. 2=0.7)")
        cls = int(cls_text)
        if cls == BACKGROUND:
            raise InputError(f"thresholds {text!r:.60}: class 1 is the background and takes no threshold (a pixel "
                             f"is background when no other class passes its own)")
        if cls not in objects:
            raise InputError(f"thresholds {text!r:.60}: class {cls} is not one of the model's classes of object "
                             f"({known})")
        if cls in out:
            raise InputError(f"thresholds {text!r:.60}: class {cls} is given twice")
        try:
            value = float(value_text)
        except ValueError:
            value = math.nan
        if not 0.0 < value < 1.0:   # NaN fails too
            raise InputError(f"thresholds {text!r:.60}: class {cls} needs a probability in (0, 1); "
                             f"got {value_text!r:.20}")
        out[cls] = value
    return out


# Rounding bound of a sum of n tree probabilities in [0, 1], relative to n: far above the ~n ulp(n) a
# float64 sum can be off by, far below the 1/n steps between vote totals of pure leaves.
_DECISION_MARGIN = 1e-9


def _leaf_probabilities(forest, columns: tuple) -> list[np.ndarray]:
    """Per tree, the probabilities of the classes at ``columns`` at every node (nodes, columns; a
    vector of nodes for one column), computed as scikit-learn's ``DecisionTreeClassifier.predict_proba`` computes them for a sample
    reaching that node (the node's class values over their sum, a zero sum taken as 1), so that a
    leaf lookup gives the same bits; kept on the forest. One lookup per pixel and tree instead of
    predict_proba's per-call arrays and normalisation: a fifth less time for the same sums."""
    columns = tuple(int(c) for c in columns)
    cached = getattr(forest, "_noisestat_leaf_proba", None)
    if cached is not None and cached[0] == columns and len(cached[1]) == len(forest.estimators_):
        return cached[1]
    out = []
    for tree in forest.estimators_:
        value = tree.tree_.value[:, 0, :tree.n_classes_]
        normalizer = value.sum(axis=1)
        normalizer[normalizer == 0.0] = 1.0
        if len(columns) == 1:
            out.append(np.ascontiguousarray(value[:, columns[0]] / normalizer))
        else:
            out.append(np.ascontiguousarray(value[:, list(columns)] / normalizer[:, None]))
    forest._noisestat_leaf_proba = (columns, out)
    return out


def decide_classes(forest, features: np.ndarray, columns, thresholds):
    """Per pixel, which of the classes at ``columns`` passes its threshold, evaluating each pixel's
    trees only until its answer is certain.

    Class ``columns[j]`` passes when ``forest.predict_proba(features)[:, columns[j]] >
    thresholds[j]``. The answer is ``j + 1`` for the class that passes, ``0`` when none does; when
    several pass (possible only where two thresholds sum to less than 1), the one whose
    probability exceeds its threshold by the largest factor ``p / threshold`` (the first in
    ``columns`` on a tie).

    The trees run in the forest's order and every class's probabilities are summed in that order,
    exactly as scikit-learn sums them (one thread). A class is settled for a pixel once its sum so
    far is above ``threshold * n`` (the rest cannot take it back, being >= 0) or its sum plus one
    for each tree left is below it, both with a margin far beyond rounding; a pixel is settled when
    every class is settled and at most one passes. Pixels never settled take all n trees and the
    same division as scikit-learn. Fewest evaluations for this order: a tree is skipped only when
    no outcome of it and of the trees after it could change the answer. Written by hand because
    scikit-learn's forest always evaluates every tree.

    Returns
    -------
    choice : ndarray of uint8
        0, or ``j + 1`` for ``columns[j]``.
    evaluations : int
        Tree evaluations made (pixels x trees at most).
    """
    trees = forest.estimators_
    n = len(trees)
    columns = tuple(int(c) for c in columns)
    limits = np.asarray(thresholds, dtype=np.float64).reshape(-1)
    if not 1 <= len(columns) < 255 or len(limits) != len(columns):
        raise ValueError(f"decide_classes needs 1 to 254 columns and one threshold each; got {len(columns)} "
                         f"columns and {len(limits)} thresholds")
    leaf_proba = _leaf_probabilities(forest, columns)
    features = np.ascontiguousarray(features, dtype=np.float32)
    total = len(features)
    choice = np.zeros(total, dtype=np.uint8)
    active = np.arange(total)
    rows = features
    # one class (a two-class model): vectors, not one-column tables, whose per-row reductions would
    # cost a fifth more time
    single = len(columns) == 1
    votes = np.zeros(total if single else (total, len(columns)))
    high, margin = (limits[0] if single else limits) * n, _DECISION_MARGIN * n
    evaluations = 0
    for k, tree in enumerate(trees, 1):
        if not len(active):
            break
        votes += leaf_proba[k - 1][tree.tree_.apply(rows)]
        evaluations += len(active)
        left = n - k
        # nothing can be settled while no class's votes can pass its ``high`` (k <= high) nor stay below it
        if k == n or ((k <= high) & (left >= high)).all():
            continue
        passes = votes > high + margin
        fails = votes + left < high - margin
        if single:
            settled = passes | fails
        else:
            n_passing = passes.sum(axis=1)
            settled = (passes | fails).all(axis=1) & (n_passing <= 1)
        done = int(settled.sum())
        # compacting copies the rows: worth it once a twentieth of them is settled
        if done and (done * 20 >= len(active) or k % 16 == 0):
            if single:
                choice[active[passes]] = 1
            else:
                won = settled & (n_passing == 1)
                choice[active[won]] = passes[won].argmax(axis=1) + 1
            keep = ~settled
            active, votes, rows = active[keep], votes[keep], rows[keep]
    if len(active) and single:
        choice[active] = votes / n > limits[0]
    elif len(active):
        proba = votes / n
        passes = proba > limits
        ratio = np.where(passes, proba / limits, -np.inf)
        choice[active] = np.where(passes.any(axis=1), ratio.argmax(axis=1) + 1, 0)
    return choice, evaluations


def decide_threshold(forest, features: np.ndarray, column: int, threshold: float = THRESHOLD):
    """``forest.predict_proba(features)[:, column] > threshold``, pixel for pixel, evaluating each
    pixel's trees only until its answer is certain (:func:`decide_classes` for one class).

    Returns
    -------
    mask : ndarray of bool
    evaluations : int
        Tree evaluations made (pixels x trees at most).
    """
    choice, evaluations = decide_classes(forest, features, (column,), (threshold,))
    return choice.astype(bool), evaluations


def save_model(model: PixelClassifier, path: str | os.PathLike) -> None:
    """Save a fitted classifier as an ``.npz`` archive of numeric arrays and a JSON header.

    The header records the classes and each one's threshold. A two-class model is written in
    format 1, which noisestat versions without classes also read (those refuse a threshold other
    than 0.5); a model of three classes or more in format 2. Written to a temporary file and
    renamed into place.
    """
    model._check_fitted()
    import sklearn

    from .. import __version__

    version = MODEL_VERSION if len(model.classes_) == 2 else MODEL_VERSION_CLASSES
    header = {"format": MODEL_FORMAT, "version": version, "noisestat": __version__,
              "sklearn": sklearn.__version__, "classes": [int(c) for c in model.classes_],
              "feature_names": _feature_names(model.feature_set, model.scales, getattr(model, "ndim_", 2)),
              **model.describe(),
              "trees": [{"max_depth": int(t.tree_.max_depth), "node_count": int(t.tree_.node_count)}
                        for t in model.forest_.estimators_]}
    try:
        _check_header(header)  # never write a file that load_model would refuse
    except _Damaged as exc:
        raise ModelError(f"{path}: cannot save this model: {exc}") from None
    arrays = {"header": np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)}
    for i, tree in enumerate(model.forest_.estimators_):
        state = tree.tree_.__getstate__()
        arrays[f"nodes_{i}"] = state["nodes"]
        arrays[f"values_{i}"] = state["values"]
    with atomic_file(path) as handle:
        np.savez_compressed(handle, **arrays)


def load_model(path: str | os.PathLike) -> PixelClassifier:
    """Load a classifier saved by :func:`save_model`.

    Nothing in the file is executed (no pickle) and nothing is trusted: the archive's directory,
    the header and every tree's node table are validated before any scikit-learn tree is built,
    because scikit-learn's compiled tree traversal trusts its node table (an out-of-range child or
    feature index reads outside its arrays; a node that is its own child loops forever).

    Limits: at most :data:`MAX_MODEL_BYTES` uncompressed in all (read from the zip directory
    before decompressing), :data:`MAX_TREES` trees of at most :data:`MAX_NODES` nodes each.

    Raises
    ------
    ModelError
        One line, ``"<path>: damaged model file: <what>"`` for any violation, or ``"not a noisestat
        model file"`` when the file is not an archive with a JSON header.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such model file")
    try:
        zipped = zipfile.is_zipfile(path)
    except OSError as exc:
        raise ModelError(f"{path}: cannot read the model file ({type(exc).__name__})") from None
    if not zipped:
        raise ModelError(f"{path}: not a noisestat model file (not an .npz archive, or truncated)")
    try:
        with zipfile.ZipFile(path) as archive:
            return _load_archive(path, archive)
    except ModelError:
        raise
    except Exception as exc:  # zipfile, zlib and numpy failures on damaged bytes
        raise ModelError(f"{path}: damaged model file: {_one_line(exc)}") from None


class _Damaged(Exception):
    """A violation found inside the archive; load_model prefixes it with the path."""


_MEMBER = re.compile(r"(header|nodes_(0|[1-9]\d{0,8})|values_(0|[1-9]\d{0,8}))\.npy")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _load_archive(path: Path, archive: zipfile.ZipFile) -> PixelClassifier:
    try:
        members = _check_directory(archive)
    except _Damaged as exc:
        raise ModelError(f"{path}: damaged model file: {exc}") from None
    if "header.npy" not in members:
        raise ModelError(f"{path}: not a noisestat model file (no header member)")
    try:
        raw = _read_member(archive, members["header.npy"], np.dtype(np.uint8), MAX_HEADER_BYTES)
        if raw.ndim != 1:
            raise _Damaged(f"header must be 1-D bytes; got shape {raw.shape}")
        header = json.loads(raw.tobytes().decode("utf-8"))
    except Exception as exc:
        raise ModelError(f"{path}: not a noisestat model file (unreadable header: {_one_line(exc)})") from None
    if not isinstance(header, dict):
        raise ModelError(f"{path}: not a noisestat model file (header is a JSON {type(header).__name__}, "
                         f"not an object)")
    version = header.get("version")
    if header.get("format") != MODEL_FORMAT or not _is_int(version) or version not in (MODEL_VERSION,
                                                                                        MODEL_VERSION_CLASSES):
        raise ModelError(f"{path}: not a noisestat pixel classifier of format version {MODEL_VERSION} or "
                         f"{MODEL_VERSION_CLASSES}")
    try:
        n_features = _check_header(header)
        expected = {"header.npy"} | {f"{kind}_{i}.npy" for i in range(len(header["trees"]))
                                     for kind in ("nodes", "values")}
        if set(members) != expected:
            extra, missing = sorted(set(members) - expected), sorted(expected - set(members))
            raise _Damaged(f"the header lists {len(header['trees'])} trees but the archive "
                           + ", ".join(x for x in (f"lacks {missing[:3]}" if missing else "",
                                                   f"also holds {extra[:3]}" if extra else "") if x))
        trees = [_read_tree(archive, members, i, info, n_features, header.get("sklearn"), len(header["classes"]))
                 for i, info in enumerate(header["trees"])]
    except _Damaged as exc:
        raise ModelError(f"{path}: damaged model file: {exc}") from None
    return _assemble(header, trees, n_features)


def _check_directory(archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """Members by name, after checking names, methods and declared sizes (nothing decompressed)."""
    infos = archive.infolist()
    if len(infos) > 2 * MAX_TREES + 1:
        raise _Damaged(f"{len(infos)} archive members; a model has at most {2 * MAX_TREES + 1}")
    members, total = {}, 0
    for info in infos:
        name = info.filename
        if not _MEMBER.fullmatch(name):
            raise _Damaged(f"unexpected archive member {name[:80]!r}")
        if name in members:
            raise _Damaged(f"archive member {name!r} appears twice")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or info.flag_bits & 0x1:
            raise _Damaged(f"archive member {name!r} is encrypted or uses compression method {info.compress_type}; "
                           f"model files are stored or deflated")
        total += info.file_size
        if total > MAX_MODEL_BYTES:
            raise _Damaged(f"members declare {total} bytes uncompressed; the limit is {MAX_MODEL_BYTES} "
                           f"(MAX_MODEL_BYTES)")
        members[name] = info
    return members


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, dtype: np.dtype, limit: int) -> np.ndarray:
    """Read one ``.npy`` member whose dtype must be ``dtype`` exactly.

    Written out rather than left to ``np.load``: np.load allocates the array the member's own
    header declares before reading it, and a forged header can declare any size. Here the
    declared shape must agree with the zip directory's size, which the caller has capped.
    """
    if info.file_size > limit:
        raise _Damaged(f"member {info.filename} declares {info.file_size} bytes; the limit is {limit}")
    with archive.open(info) as handle:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, fortran, found = np.lib.format.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, fortran, found = np.lib.format.read_array_header_2_0(handle)
        else:
            raise _Damaged(f"member {info.filename} is .npy version {version}; expected 1.0 or 2.0")
        if found != dtype:
            raise _Damaged(f"member {info.filename} {_dtype_difference(found, dtype)}")
        if fortran or any(d < 0 for d in shape):
            raise _Damaged(f"member {info.filename} declares shape {shape}{' in Fortran order' if fortran else ''}")
        n_bytes = math.prod(shape) * dtype.itemsize
        if handle.tell() + n_bytes != info.file_size:
            raise _Damaged(f"member {info.filename} declares shape {shape} ({n_bytes} bytes), which does not fit "
                           f"its {info.file_size} bytes")
        buffer = np.empty(n_bytes, dtype=np.uint8)
        view, got = memoryview(buffer), 0
        while got < n_bytes:
            n = handle.readinto(view[got:])
            if not n:
                raise _Damaged(f"member {info.filename} is truncated ({got} of {n_bytes} bytes)")
            got += n
    return buffer.view(dtype).reshape(shape)


def _dtype_difference(found: np.dtype, expected: np.dtype) -> str:
    """What differs between two dtypes, short enough for one line."""
    if found.names is None or expected.names is None:
        def text(dtype):
            return dtype.str if dtype.names is None else "records"

        return f"holds {text(found)}; expected {text(expected)}"
    if found.names != expected.names:
        return f"holds records with fields {', '.join(found.names)}; expected {', '.join(expected.names)}"
    for name in expected.names:
        if found[name] != expected[name]:
            return f"holds field {name} as {found[name].str}; expected {expected[name].str}"
    return f"holds records of {found.itemsize} bytes; expected {expected.itemsize}"


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_header(header: dict) -> int:
    """Check every header field the loader uses; return the number of features."""
    two_classes = header.get("version") == MODEL_VERSION
    kinds = {"noisestat": str, "sklearn": str, "classes": list, "feature_names": list, "n_estimators": int,
             "max_features": int, "sigmas": list, "seed": int, "n_features": int,
             **({"threshold": float} if two_classes else {"thresholds": dict}),
             "training_pixels": dict, "trees": list}
    for key, kind in kinds.items():
        if key not in header:
            raise _Damaged(f"header has no {key!r}")
        value = header[key]
        ok = _is_int(value) if kind is int else _is_number(value) if kind is float else isinstance(value, kind)
        if not ok:
            wanted = "a finite number" if kind is float else f"a JSON {kind.__name__}"
            raise _Damaged(f"header {key!r} must be {wanted}; got {json.dumps(value)[:60]}")
    classes = _check_header_classes(header, two_classes)
    sigmas = header["sigmas"]
    if not 1 <= len(sigmas) <= MAX_SIGMAS or not all(_is_number(s) and 0 < s <= MAX_SIGMA for s in sigmas):
        raise _Damaged(f"header 'sigmas' must be 1 to {MAX_SIGMAS} numbers in (0, {MAX_SIGMA:g}]; "
                       f"got {json.dumps(sigmas)[:60]}")
    feature_set = header.get("feature_set", "weka")
    if feature_set not in FEATURE_SETS:
        raise _Damaged(f"header 'feature_set' must be one of {', '.join(FEATURE_SETS)}; got {json.dumps(feature_set)[:40]}")
    ndim = header.get("ndim", 2)
    if not _is_int(ndim) or ndim not in ((2,) if feature_set == "weka" else (2, 3)):
        raise _Damaged(f"header 'ndim' must be 2 (weka) or 2 or 3 (ilastik); got {json.dumps(ndim)[:40]}")
    spacing = header.get("spacing")
    if spacing is not None and (not isinstance(spacing, list) or len(spacing) != ndim
                                or not all(_is_number(v) and 0 < v <= 1e6 for v in spacing)):
        raise _Damaged(f"header 'spacing' must be null or {ndim} numbers in (0, 1e6]; got {json.dumps(spacing)[:60]}")
    n_features = len(_feature_names(feature_set, sigmas, ndim))
    names = header["feature_names"]
    if header["n_features"] != n_features or len(names) != n_features or not all(isinstance(n, str) for n in names):
        raise _Damaged(f"sigmas {sigmas} give {n_features} features; the header has n_features "
                       f"{header['n_features']} and {len(names)} feature names")
    ranges = {"n_estimators": (1, MAX_TREES), "max_features": (1, n_features), "seed": (0, 2**32 - 1)}
    for key, (low, high) in ranges.items():
        if not low <= header[key] <= high:
            raise _Damaged(f"header {key!r} must lie in [{low}, {high}]; got {header[key]}")
    pixels = header["training_pixels"]
    for key in ("background", "object"):
        if not _is_int(pixels.get(key)) or pixels[key] < 0:
            raise _Damaged(f"header training_pixels[{key!r}] must be a count >= 0; "
                           f"got {json.dumps(pixels.get(key))[:40]}")
    by_class = pixels.get("by_class")
    if by_class is not None or not two_classes:
        keys = [str(c) for c in classes]
        if (not isinstance(by_class, dict) or list(by_class) != keys
                or not all(_is_int(v) and v >= 0 for v in by_class.values())):
            raise _Damaged(f"header training_pixels['by_class'] must hold a count >= 0 for each class "
                           f"{', '.join(keys)}; got {json.dumps(by_class)[:60]}")
        if by_class["1"] != pixels["background"] or sum(by_class.values()) - by_class["1"] != pixels["object"]:
            raise _Damaged(f"header training_pixels: background {pixels['background']} and object "
                           f"{pixels['object']} disagree with by_class {json.dumps(by_class)[:60]}")
    trees = header["trees"]
    if len(trees) != header["n_estimators"]:
        raise _Damaged(f"header lists {len(trees)} trees; n_estimators is {header['n_estimators']}")
    for i, info in enumerate(trees):
        if not isinstance(info, dict) or not _is_int(info.get("node_count")) or not _is_int(info.get("max_depth")):
            raise _Damaged(f"header trees[{i}] must hold integers node_count and max_depth; "
                           f"got {json.dumps(info)[:60]}")
        if not 1 <= info["node_count"] <= MAX_NODES:
            raise _Damaged(f"tree {i}: node_count must lie in [1, {MAX_NODES}]; got {info['node_count']}")
        if not 0 <= info["max_depth"] < info["node_count"]:
            raise _Damaged(f"tree {i}: max_depth must lie in [0, node_count - 1 = {info['node_count'] - 1}]; "
                           f"got {info['max_depth']}")
    return n_features


def _check_header_classes(header: dict, two_classes: bool) -> list[int]:
    """Check the header's classes and thresholds (format 1: background and object; format 2: three
    classes or more); return the classes."""
    classes = header["classes"]
    if two_classes:
        if classes != [BACKGROUND, OBJECT] or not all(_is_int(c) for c in classes):
            raise _Damaged(f"header 'classes' must be [{BACKGROUND}, {OBJECT}] in format {MODEL_VERSION}; "
                           f"got {json.dumps(classes)[:60]}")
        threshold = header["threshold"]
        given = header.get("thresholds")
        if given is None:   # written before classes were added: 0.5, the only threshold then
            if threshold != THRESHOLD:
                raise _Damaged(f"header 'threshold' must be {THRESHOLD} in a file without 'thresholds'; "
                               f"got {threshold}")
            return classes
        if given != {str(OBJECT): threshold}:
            raise _Damaged(f"header 'thresholds' must be {{\"{OBJECT}\": {threshold}}} (its 'threshold'); "
                           f"got {json.dumps(given)[:60]}")
    elif (not 3 <= len(classes) <= MAX_CLASS or not all(_is_int(c) for c in classes) or classes[0] != BACKGROUND
          or classes[-1] > MAX_CLASS or any(b <= a for a, b in zip(classes, classes[1:]))):
        raise _Damaged(f"header 'classes' must be 3 or more ascending class ids from {BACKGROUND} to {MAX_CLASS} in "
                       f"format {MODEL_VERSION_CLASSES}; got {json.dumps(classes)[:60]}")
    thresholds = header["thresholds"]
    keys = [str(c) for c in classes[1:]]
    if (not isinstance(thresholds, dict) or list(thresholds) != keys
            or not all(_is_number(t) and 0 < t < 1 for t in thresholds.values())):
        raise _Damaged(f"header 'thresholds' must give a probability in (0, 1) for each class {', '.join(keys)}; "
                       f"got {json.dumps(thresholds)[:60]}")
    return classes


def _node_dtype() -> np.dtype:
    """The node record this scikit-learn's Tree expects (taken from an empty tree)."""
    return Tree(1, np.array([2], dtype=np.intp), 1).__getstate__()["nodes"].dtype


def _read_tree(archive, members, i: int, info: dict, n_features: int, written_by, n_classes: int):
    expected = _node_dtype()
    n = info["node_count"]
    try:
        nodes = _read_member(archive, members[f"nodes_{i}.npy"], expected, MAX_MODEL_BYTES)
    except _Damaged as exc:
        import sklearn

        if "holds" in str(exc) and written_by != sklearn.__version__:
            raise _Damaged(f"{exc} (written by scikit-learn {str(written_by)[:20]}: retrain the model with this "
                           f"scikit-learn, {sklearn.__version__})") from None
        raise
    values = _read_member(archive, members[f"values_{i}.npy"], np.dtype("<f8"), MAX_MODEL_BYTES)
    if nodes.shape != (n,):
        raise _Damaged(f"tree {i}: node table has shape {nodes.shape}; node_count is {n}")
    if values.shape != (n, 1, n_classes):
        raise _Damaged(f"tree {i}: values have shape {values.shape}; expected {(n, 1, n_classes)} "
                       f"(nodes, outputs, classes)")
    _check_nodes(i, nodes, values, n_features, info["max_depth"])
    tree = Tree(n_features, np.array([n_classes], dtype=np.intp), 1)
    tree.__setstate__({"max_depth": info["max_depth"], "node_count": n, "nodes": nodes, "values": values})
    return tree


def _check_nodes(i: int, nodes: np.ndarray, values: np.ndarray, n_features: int, max_depth: int) -> None:
    """Check that a node table is a binary tree scikit-learn can walk safely, and its depth.

    scikit-learn writes every child after its parent (both of its tree builders do), so
    ``child > parent`` for every edge makes the table acyclic; with every node but the root the
    child of exactly one parent, it is one tree in which every node is reachable from the root.
    """
    n = len(nodes)
    index = np.arange(n)
    left, right, feature = nodes["left_child"], nodes["right_child"], nodes["feature"]
    leaf = left == -1  # TREE_LEAF: scikit-learn's traversal stops at left_child == -1
    inner = ~leaf
    bad = np.flatnonzero(leaf & ((right != -1) | (feature != -2)))
    if bad.size:
        k = bad[0]
        raise _Damaged(f"tree {i} node {k}: a leaf must have children -1, -1 and feature -2; got "
                       f"{left[k]}, {right[k]} and {feature[k]}")
    for name, child in (("left", left), ("right", right)):
        bad = np.flatnonzero(inner & ((child <= index) | (child >= n)))
        if bad.size:
            k = bad[0]
            allowed = f"in [{k + 1}, {n - 1}] (after the node)" if k + 1 < n else "absent (the last node is a leaf)"
            raise _Damaged(f"tree {i} node {k}: {name} child must be {allowed}; got {child[k]}")
    bad = np.flatnonzero(inner & ((feature < 0) | (feature >= n_features)))
    if bad.size:
        k = bad[0]
        raise _Damaged(f"tree {i} node {k}: feature index must lie in [0, {n_features - 1}]; got {feature[k]}")
    parents = np.bincount(np.concatenate([left[inner], right[inner]]), minlength=n)
    bad = np.flatnonzero(parents[1:] != 1)
    if bad.size:
        k = bad[0] + 1
        raise _Damaged(f"tree {i} node {k}: must be the child of exactly one node; it is the child of {parents[k]}")
    for field, low in (("threshold", None), ("impurity", 0.0), ("weighted_n_node_samples", 0.0)):
        column = nodes[field]
        bad = np.flatnonzero(~np.isfinite(column) | (column < low if low is not None else False))
        if bad.size:
            k = bad[0]
            raise _Damaged(f"tree {i} node {k}: {field} must be finite{' and >= 0' if low is not None else ''}; "
                           f"got {column[k]}")
    bad = np.flatnonzero(nodes["n_node_samples"] < 1)
    if bad.size:
        raise _Damaged(f"tree {i} node {bad[0]}: n_node_samples must be >= 1; got {nodes['n_node_samples'][bad[0]]}")
    bad = np.flatnonzero(nodes["missing_go_to_left"] > 1)
    if bad.size:
        raise _Damaged(f"tree {i} node {bad[0]}: missing_go_to_left must be 0 or 1; "
                       f"got {nodes['missing_go_to_left'][bad[0]]}")
    bad = np.flatnonzero(~(np.isfinite(values) & (values >= 0)).all(axis=(1, 2)))
    if bad.size:
        raise _Damaged(f"tree {i} node {bad[0]}: class values must be finite and >= 0; "
                       f"got {values[bad[0], 0].tolist()}")
    # Depth of every node by pointer jumping on the parent array: log2(depth) vectorised rounds,
    # where a walk down the tree in Python would take one round per level.
    parent = np.zeros(n, dtype=np.intp)
    parent[left[inner]] = index[inner]
    parent[right[inner]] = index[inner]
    depth = (index > 0).astype(np.int64)
    while parent.any():
        depth, parent = depth + depth[parent], parent[parent]
    if int(depth.max()) != max_depth:
        raise _Damaged(f"tree {i}: max_depth is {max_depth} in the header; the node table is {int(depth.max())} deep")


def _assemble(header: dict, trees: list, n_features: int) -> PixelClassifier:
    classes = np.array(header["classes"])
    given = header.get("thresholds")
    thresholds = ({OBJECT: float(header["threshold"])} if given is None
                  else {int(c): float(t) for c, t in given.items()})
    max_features = header["max_features"]
    estimators = []
    for tree in trees:
        estimator = DecisionTreeClassifier(max_features=max_features)
        estimator.tree_ = tree
        estimator.classes_ = classes
        estimator.n_classes_ = len(classes)
        estimator.n_outputs_ = 1
        estimator.n_features_in_ = n_features
        estimator.max_features_ = max_features
        estimators.append(estimator)
    spacing = header.get("spacing")
    model = PixelClassifier(n_estimators=header["n_estimators"], max_features=max_features,
                            sigmas=tuple(header["sigmas"]), random_state=header["seed"],
                            feature_set=header.get("feature_set", "weka"),
                            spacing=None if spacing is None else tuple(float(v) for v in spacing),
                            thresholds=thresholds)
    model.ndim_ = int(header.get("ndim", 2))
    forest = RandomForestClassifier(n_estimators=len(estimators), max_features=max_features, n_jobs=1)
    forest.estimators_ = estimators
    forest.estimator_ = DecisionTreeClassifier(max_features=max_features)
    forest.classes_ = classes
    forest.n_classes_ = len(classes)
    forest.n_outputs_ = 1
    forest.n_features_in_ = n_features
    model.forest_ = forest
    model.seed_ = header["seed"]
    model.classes_ = classes
    model.n_features_in_ = n_features
    tp = header["training_pixels"]
    by_class = tp.get("by_class")
    model.n_training_pixels_ = ({BACKGROUND: tp["background"], OBJECT: tp["object"]} if by_class is None
                                else {int(c): n for c, n in by_class.items()})
    return model
