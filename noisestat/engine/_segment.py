"""Segmenting one image (2D or 3D) with any predictor, its tiles spread over the executor's workers."""

from __future__ import annotations

import time

import numpy as np

from ..predict._protocol import predictor_kind
from ._executors import make_executor
from ._tiles import _tick, default_tile, label_mask, predict_tile, segment_tiled, tile_grid

__all__ = ["segment", "segment_on"]


def _tile_task(image, model, tile, threads):
    """One tile's mask and its timing (a task)."""
    timing = {}
    return predict_tile(lambda r: image[r], model, tile, timing=timing, threads=threads), timing


def segment_on(executor, shared_image, shared_model, shape: tuple, model, tile: int, min_area: int = 0, *,
               threads: int = 1, timing: dict | None = None, name: str = "tile") -> np.ndarray:
    """Label image of one image whose tiles run as tasks of ``executor`` (``shared_image`` and
    ``shared_model``: what :meth:`~noisestat.engine.Executor.share` returned for the image and
    ``model``); the mask is assembled and labelled here. ``timing`` accumulates the tasks' stages."""
    tiles = tile_grid(shape, tile, tuple(model.halo(len(shape))))
    results = executor.map(_tile_task, [(shared_image, shared_model, t, threads) for t in tiles],
                           [f"{name} {i + 1}" for i in range(len(tiles))])
    mask = np.empty(shape, dtype=bool)
    for t, (core, part) in zip(tiles, results):
        mask[t.core] = core
        if timing is not None:
            for key, value in part.items():
                timing[key] = timing.get(key, 0) + value
    del results
    start = time.perf_counter()
    labels = label_mask(mask, min_area, block=tile)
    _tick(timing, "labelling", start)
    return labels


def segment(image: np.ndarray, model, *, tile: int | None = None, jobs: int = 1, scheduler: str | None = None,
            min_area: int = 0) -> np.ndarray:
    """Label image of ``image`` by ``model`` (a :class:`~noisestat.predict.MaskPredictor`, such as
    a fitted :class:`~noisestat.predict.PixelClassifier`, or a
    :class:`~noisestat.predict.LabelPredictor`).

    A mask predictor runs per tile of ``tile`` pixels a side (default: :func:`default_tile`), the
    tiles spread over ``jobs`` processes or a dask ``scheduler``; the mask is labelled here, fully
    connected (8-connected in 2D, 26-connected in 3D), objects under ``min_area`` pixels dropped.
    The labels are the same for any tile size, job count and scheduler.

    Examples
    --------
    >>> import numpy as np
    >>> class Above:
    ...     def halo(self, ndim): return (0,) * ndim
    ...     def predict_mask(self, region): return region > 5
    ...     def describe(self): return {"threshold": 5}
    >>> volume = np.zeros((4, 40, 40), np.uint16); volume[1:3, 2:5, 2:5] = 9; volume[2, 30:33, 30:33] = 9
    >>> int(segment(volume, Above(), tile=16).max())
    2
    """
    image = np.asarray(image)
    kind = predictor_kind(model)
    if kind == "labels" or kind == "values" or (jobs == 1 and scheduler is None):  # values: refused there
        return segment_tiled(lambda r: image[r], image.shape, model, tile, min_area)
    tile = tile or default_tile(model, image.ndim)
    with make_executor(jobs, scheduler, threads=callable(getattr(model, "features", None))) as executor:
        return segment_on(executor, executor.share(image), executor.share(model), image.shape, model, tile, min_area)
