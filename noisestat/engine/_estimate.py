"""How long a batch will take, said before the long part: from the raw image's measured time or
from one tile measured here, scaled to the images and workers; said again, once, when the batch's
first images take more than twice as long as that, or less than half (:class:`EstimateCheck`)."""

from __future__ import annotations

import math
import time

from ..predict._protocol import predictor_kind
from ._tiles import predict_tile, tile_grid, values_tile


__all__ = ["notice_estimate", "EstimateCheck", "REVISE_FACTOR", "duration"]

# The estimate is said again when the first images' time per image is off by more than this factor.
REVISE_FACTOR = 2.0


class EstimateCheck:
    """Compares the batch's finished tasks with the estimate said before it, and says a revised
    estimate once through ``notice(message, seconds)`` when they are off by more than ``factor``.

    The estimate was ``estimate_s`` of wall time for ``n_images`` images on ``workers`` workers.
    :meth:`task_done` hears of each finished task (``done`` of ``total``: an image, or a part of one
    when the images are cut into parts). Once a round is done (as many images as workers) and while
    tasks remain, the elapsed wall time is projected to the whole batch; if that differs from the
    estimate by more than ``factor`` either way, one line says so: ``revised estimate: about 12 min
    (the first 2 images took 3 min each, not 36 s)`` (per image: on one worker). It is said at most
    once. ``clock`` gives seconds; the elapsed time is counted from ``start_s`` (by default the
    check's creation).

    An executor's ``map`` feeds it when its ``started`` hook returns it; a caller may also call
    :meth:`task_done` from its own progress callback (:meth:`progress`).
    """

    def __init__(self, notice, estimate_s: float, n_images: int, workers: int, *, factor: float = REVISE_FACTOR,
                 clock=time.monotonic, start_s: float | None = None):
        self.notice = notice
        self.estimate_s = float(estimate_s)
        self.n_images = max(1, int(n_images))
        self.workers = max(1, min(int(workers), self.n_images))
        self.factor = float(factor)
        self.clock = clock
        self.start_s = clock() if start_s is None else float(start_s)
        self.revised_s: float | None = None  # the revised estimate once said

    def task_done(self, done: int, total: int) -> None:
        """``done`` of the batch's ``total`` tasks are finished."""
        if self.revised_s is not None or total < 1 or not 0 < done < total or self.estimate_s <= 0:
            return
        images = done * self.n_images / total
        if images < self.workers:  # the first round is not over: the workers' first images still run
            return
        elapsed = self.clock() - self.start_s
        projected = elapsed * total / done
        if self.estimate_s / self.factor <= projected <= self.estimate_s * self.factor:
            return
        self.revised_s = projected
        took = elapsed * self.workers / images
        expected = self.estimate_s * self.workers / self.n_images
        count = f"{images:.0f}" if images == round(images) else f"{images:.1f}"
        first = "the first image took" if count == "1" else f"the first {count} images took"
        each = "" if count == "1" else " each"
        self.notice(f"revised estimate: about {duration(projected)} ({first} {duration(took)}{each}, "
                    f"not {duration(expected)})", projected)

    def progress(self, name: str, done: int, total: int) -> None:
        """:meth:`task_done` as a ``progress(name, done, total)`` callback."""
        self.task_done(done, total)


def notice_estimate(notice, image, model, tile, threads, raw, train_timing, n_images, workers, *,
                    clock=time.monotonic) -> EstimateCheck:
    """Say how long the batch will take: from the raw image's measured time (``raw``: its timing and
    the threads it had) or, when it runs in the batch, from one tile measured here (features and
    trees), scaled to the image.

    Returns the :class:`EstimateCheck` of the batch (its clock started before the tile's
    measurement, which overlaps the workers' first tasks): returned from an executor ``map``'s
    ``started`` hook, or fed by the caller's progress callback, it says a revised estimate once if
    the first images take more than twice as long as estimated, or less than half."""
    check_start = clock()
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
    return EstimateCheck(notice, estimate, n_images, workers, clock=clock, start_s=check_start)


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
