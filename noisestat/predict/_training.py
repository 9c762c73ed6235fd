"""Training noisestat's forest on a raw image's sparse labels, tile by tile: the features of the
labelled pixels in raster order (the rows a whole-image computation gives) and, when they fit, every
tile's features kept for the raw image's own segmentation. The labels may hold two classes (1
background, 2 object) or more (2, 3, ... classes of object): the forest learns those present."""

from __future__ import annotations

import time

import numpy as np

from ..engine._tiles import _tick, tile_grid
from ._forest import PixelClassifier, check_class_labels


# The raw image's features are kept from training for its own segmentation when they fit this size;
# beyond it (large images) they are computed again, tile by tile, so memory stays bounded by the tile.
RAW_FEATURE_CACHE_BYTES = 512 << 20


def features_fit(image, model) -> bool:
    """Whether every tile's features of ``image`` fit :data:`RAW_FEATURE_CACHE_BYTES` (kept from training)."""
    return image.size * model.n_features(image.ndim) * 4 <= RAW_FEATURE_CACHE_BYTES


def new_forest(seed, ndim: int, jobs: int, spacing=None, thresholds=None) -> PixelClassifier:
    """noisestat's forest, Weka's 2D features for images, the ilastik-style set (anisotropic with
    the voxel ``spacing``) for volumes; ``thresholds``, optional, the probability threshold per
    class of object (:func:`noisestat.predict.parse_thresholds`), checked against the classes the
    labels hold when it is trained."""
    if ndim == 2:
        return PixelClassifier(random_state=np.random.default_rng(seed), n_jobs=jobs, thresholds=thresholds)
    return PixelClassifier(random_state=np.random.default_rng(seed), n_jobs=jobs, feature_set="ilastik",
                           spacing=None if spacing is None else tuple(float(v) for v in spacing),
                           thresholds=thresholds)


def training_pixels(model, image, labels, tile, threads, timing, keep=False):
    """Features of the labelled pixels, in the image's raster order (the rows and order a whole-image
    computation gives), their labels, and, when ``keep`` and they fit
    :data:`RAW_FEATURE_CACHE_BYTES`, every tile's features for the raw segmentation."""
    tiles = tile_grid(image.shape, tile, tuple(model.halo(image.ndim)))
    n_features = model.n_features(image.ndim)
    cache = {} if keep and features_fit(image, model) else None
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


def train(model, image, labels, tile, threads, timing, keep=True):
    """Fit ``model`` on the labelled pixels (features per tile; labels 1 background, 2, 3, ... the
    classes of object, checked by :func:`noisestat.predict.check_class_labels`); return the raw
    features kept (``keep``, and when they fit :data:`RAW_FEATURE_CACHE_BYTES`) or None. The model
    equals one fitted on the whole image (``model.fit(image, labels)``) for any ``tile``."""
    check_class_labels(labels, shape=image.shape)
    rows, targets, cache = training_pixels(model, image, labels, tile, threads, timing, keep=keep)
    start = time.perf_counter()
    model.fit_pixels(rows, targets, ndim=image.ndim)
    _tick(timing, "training", start)
    return cache
