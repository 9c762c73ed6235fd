"""How long a batch will take, said before the long part: from the raw image's measured time or
from one tile measured here, scaled to the images and workers."""

from __future__ import annotations

import math

from ..predict._protocol import predictor_kind
from ._tiles import predict_tile, tile_grid, values_tile


def notice_estimate(notice, image, model, tile, threads, raw, train_timing, n_images, workers) -> None:
    """Say how long the batch will take: from the raw image's measured time (``raw``: its timing and
    the threads it had) or, when it runs in the batch, from one tile measured here (features and
    trees), scaled to the image."""
    keys = ("pixels", "features", "trees", "predictor", "labelling", "measuring")
    if raw is not None:
        raw_timing, raw_threads = raw
        per_image = sum(raw_timing.get(k, 0.0) for k in keys)
        if raw_timing.get("features", 0.0) == 0.0:  # its features came from training: count them for the others
            per_image += train_timing.get("features", 0.0)
        source = f"the raw image took {duration(per_image)}"
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
    notice(f"estimated time: {duration(estimate)} for {n_images} images of {image.size} pixels on {workers} "
           f"worker{'s' if workers > 1 else ''} ({source})", estimate)


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
