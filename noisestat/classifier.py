"""A random-forest pixel classifier trained from sparse labels, and its safe file format.

The classifier follows the scikit-learn estimator contract: ``__init__`` stores parameters,
``fit(image, labels)`` validates, converts ``random_state`` and returns ``self``, learned
attributes end in ``_``. Its defaults are those of Trainable Weka Segmentation (200 trees,
2 random features per split, unlimited depth), but the forest seed is fixed and recorded.

Saved models are ``.npz`` archives of plain numeric arrays plus a JSON header, loaded with
``allow_pickle=False``: opening a model file cannot run code, unlike a pickle.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from skimage.measure import label as _label_components
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import RandomForestClassifier
from sklearn.tree import DecisionTreeClassifier
from sklearn.tree._tree import Tree

from ._io import atomic_file, check_labels
from .errors import ModelError
from .features import DEFAULT_SIGMAS, feature_names, weka_features

__all__ = ["PixelClassifier", "load_model", "save_model", "BACKGROUND", "OBJECT", "THRESHOLD"]

BACKGROUND, OBJECT = 1, 2
THRESHOLD = 0.5
MODEL_FORMAT = "noisestat-pixel-classifier"
MODEL_VERSION = 1
_PREDICT_CHUNK = 1 << 18  # pixels per predict call: bounds the forest's temporary arrays


class PixelClassifier(BaseEstimator, ClassifierMixin):
    """Random forest on Weka-style pixel features, trained from a sparse label image.

    Parameters
    ----------
    n_estimators : int, default 200
        Number of trees.
    max_features : int, default 2
        Random features considered at each split.
    sigmas : tuple of float, default (1, 2, 4, 8, 16)
        Nominal feature scales (see :mod:`noisestat.features`).
    random_state : int, numpy.random.Generator or None
        Seed of the forest. ``None`` draws fresh entropy; the seed used is always stored in
        ``seed_``, so any fitted model can be reproduced.
    n_jobs : int, default 1
        Threads used to grow the trees (the result does not depend on it).

    Attributes
    ----------
    forest_ : sklearn.ensemble.RandomForestClassifier
    seed_ : int
        The integer seed the forest was grown with.
    classes_ : ndarray
        ``[1, 2]``: background, object.
    n_features_in_ : int
    n_training_pixels_ : dict
        Labelled pixels per class.
    """

    def __init__(self, n_estimators=200, max_features=2, sigmas=DEFAULT_SIGMAS, random_state=None, n_jobs=1):
        self.n_estimators = n_estimators
        self.max_features = max_features
        self.sigmas = sigmas
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, image: np.ndarray, labels: np.ndarray) -> "PixelClassifier":
        """Train on the pixels of ``image`` where ``labels`` is 1 (background) or 2 (object)."""
        image = np.asarray(image)
        labels = np.asarray(labels)
        if image.ndim != 2:
            raise ModelError(f"training image must be 2D; got shape {image.shape}")
        check_labels(labels, shape=image.shape)
        if isinstance(self.random_state, np.random.Generator):
            seed = int(self.random_state.integers(2**32))
        elif self.random_state is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        else:
            seed = int(np.random.SeedSequence(self.random_state).generate_state(1)[0])
        features = weka_features(image, sigmas=self.sigmas)
        picked = labels > 0
        forest = RandomForestClassifier(
            n_estimators=self.n_estimators, max_features=self.max_features, max_depth=None,
            bootstrap=True, random_state=seed, n_jobs=self.n_jobs)
        forest.fit(features[picked], labels[picked])
        # Prediction runs the trees in a fixed order in one thread: tree votes then sum to the same
        # bits whatever the number of workers running images in parallel (threaded prediction
        # accumulates in completion order).
        forest.n_jobs = 1
        self.forest_ = forest
        self.seed_ = seed
        self.classes_ = forest.classes_
        self.n_features_in_ = features.shape[-1]
        self.n_training_pixels_ = {int(c): int((labels == c).sum()) for c in (BACKGROUND, OBJECT)}
        return self

    def _check_fitted(self):
        if not hasattr(self, "forest_"):
            raise ModelError("PixelClassifier is not fitted: call fit(image, labels) or load_model(path)")

    def predict_proba(self, image: np.ndarray) -> np.ndarray:
        """Probability of the object class at every pixel, shape (rows, cols), float64."""
        self._check_fitted()
        image = np.asarray(image)
        if image.ndim != 2:
            raise ModelError(f"image must be 2D; got shape {image.shape}")
        features = weka_features(image, sigmas=self.sigmas).reshape(-1, self.n_features_in_)
        column = int(np.flatnonzero(self.classes_ == OBJECT)[0])
        proba = np.empty(features.shape[0])
        for start in range(0, features.shape[0], _PREDICT_CHUNK):
            chunk = features[start:start + _PREDICT_CHUNK]
            proba[start:start + len(chunk)] = self.forest_.predict_proba(chunk)[:, column]
        return proba.reshape(image.shape)

    def predict(self, image: np.ndarray) -> np.ndarray:
        """Object mask: probability of the object class above 0.5 (argmax of two classes)."""
        return self.predict_proba(image) > THRESHOLD

    def segment(self, image: np.ndarray) -> np.ndarray:
        """Label image of the 8-connected objects of :meth:`predict` (0 background, 1..n)."""
        return _label_components(self.predict(image), connectivity=2).astype(np.int32)

    def describe(self) -> dict:
        """Parameters and learned facts worth recording in an output's provenance."""
        self._check_fitted()
        return {"n_estimators": int(self.n_estimators), "max_features": int(self.max_features),
                "sigmas": [float(s) for s in self.sigmas], "seed": int(self.seed_),
                "n_features": int(self.n_features_in_), "threshold": THRESHOLD,
                "training_pixels": {"background": self.n_training_pixels_[BACKGROUND],
                                    "object": self.n_training_pixels_[OBJECT]}}


def save_model(model: PixelClassifier, path: str | os.PathLike) -> None:
    """Save a fitted classifier as an ``.npz`` archive of numeric arrays and a JSON header.

    Written to a temporary file and renamed into place.
    """
    model._check_fitted()
    import sklearn

    from . import __version__

    header = {"format": MODEL_FORMAT, "version": MODEL_VERSION, "noisestat": __version__,
              "sklearn": sklearn.__version__, "classes": [int(c) for c in model.classes_],
              "feature_names": feature_names(model.sigmas), **model.describe(),
              "trees": [{"max_depth": int(t.tree_.max_depth), "node_count": int(t.tree_.node_count)}
                        for t in model.forest_.estimators_]}
    arrays = {"header": np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)}
    for i, tree in enumerate(model.forest_.estimators_):
        state = tree.tree_.__getstate__()
        arrays[f"nodes_{i}"] = state["nodes"]
        arrays[f"values_{i}"] = state["values"]
    with atomic_file(path) as handle:
        np.savez_compressed(handle, **arrays)


def load_model(path: str | os.PathLike) -> PixelClassifier:
    """Load a classifier saved by :func:`save_model` (no code is executed: ``allow_pickle=False``)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such model file")
    try:
        archive = np.load(path, allow_pickle=False)
        header = json.loads(bytes(archive["header"]).decode("utf-8"))
    except Exception as exc:
        raise ModelError(f"{path}: not a noisestat model file ({type(exc).__name__})") from None
    if header.get("format") != MODEL_FORMAT or header.get("version") != MODEL_VERSION:
        raise ModelError(f"{path}: not a noisestat pixel classifier of format version {MODEL_VERSION}")
    classes = np.asarray(header["classes"])
    n_features = int(header["n_features"])
    trees = []
    try:
        with archive:
            for i, info in enumerate(header["trees"]):
                nodes = archive[f"nodes_{i}"]
                values = archive[f"values_{i}"]
                tree = Tree(n_features, np.array([len(classes)], dtype=np.intp), 1)
                expected = tree.__getstate__()["nodes"].dtype
                if nodes.dtype != expected:
                    raise ModelError(f"{path}: tree nodes were written by another scikit-learn "
                                     f"({header.get('sklearn')}); retrain the model with this one")
                tree.__setstate__({"max_depth": info["max_depth"], "node_count": info["node_count"],
                                   "nodes": nodes, "values": values})
                estimator = DecisionTreeClassifier(max_features=header["max_features"])
                estimator.tree_ = tree
                estimator.classes_ = classes
                estimator.n_classes_ = len(classes)
                estimator.n_outputs_ = 1
                estimator.n_features_in_ = n_features
                estimator.max_features_ = header["max_features"]
                trees.append(estimator)
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(f"{path}: damaged model file ({type(exc).__name__}: {exc})") from None
    model = PixelClassifier(n_estimators=header["n_estimators"], max_features=header["max_features"],
                            sigmas=tuple(header["sigmas"]), random_state=header["seed"])
    forest = RandomForestClassifier(n_estimators=len(trees), max_features=header["max_features"], n_jobs=1)
    forest.estimators_ = trees
    forest.estimator_ = DecisionTreeClassifier(max_features=header["max_features"])
    forest.classes_ = classes
    forest.n_classes_ = len(classes)
    forest.n_outputs_ = 1
    forest.n_features_in_ = n_features
    model.forest_ = forest
    model.seed_ = int(header["seed"])
    model.classes_ = classes
    model.n_features_in_ = n_features
    tp = header["training_pixels"]
    model.n_training_pixels_ = {BACKGROUND: tp["background"], OBJECT: tp["object"]}
    return model
