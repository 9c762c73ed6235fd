"""Large volumes: the peak memory of a 512 x 512 x 128 assessment, and the time a light-sheet volume
of 2048 x 2048 x 550 would take on two cores, whole or on a sampled fraction of its tiles.

``memory``: a fresh interpreter (a subprocess) loads a simulated 128 x 512 x 512 (Z, Y, X) volume
and its sparse labels from ``.npy`` files written by this script, and runs a full
``noisestat.assess`` on it: training, 2 replicas (``--replicas``), the two null replicas, one codec
(``bitdepth:bits=8,mode=minmax``), 3D morphometry of every object in every image, matching and
scores, ``jobs=2`` (the forest's workers are threads of that one process). It reports

* ``ru_maxrss``: the process's peak resident set size (``resource.getrusage``; children too, if
  any), what the machine had to give it;
* with tracemalloc (unless ``--no-trace``): the peak of the memory traced by Python and NumPy, and
  where it was: a thread of the child samples the traced memory every 20 ms and keeps, at its
  highest sample, the innermost noisestat frames of every thread.

``time``: the cost of each stage is measured on a simulated sub-volume of the light-sheet volume's
density (190 000 nuclei in 2048 x 2048 x 550 voxels: one per 12 140 voxels) and extrapolated:

* forest (features + trees) per voxel: one interior tile of the default edge, its region grown by
  the full halo on every side (what almost every tile of a large volume costs), one thread;
* labelling per voxel, replica drawing per voxel, morphometry (measuring) and matching per object,
  codecs per voxel: from the timing of a full assessment of the sub-volume (``jobs=1``, so each
  stage's seconds are one core's);
* the light-sheet run: 15 forest passes (raw, 10 replicas, 2 null replicas, 2 codecs; the raw
  image's training counted as one pass), 15 labellings and morphometries of 190 000 objects, 14
  matchings, 2 codecs over the whole volume; on two cores: the summed seconds / 2;
* with a sampled fraction F of the tiles (``--sample``'s statistics: noisestat/score/_sampling.py),
  the forest, replica drawing, labelling, morphometry and matching scale with F (only the objects
  wholly inside sampled tiles are measured); the codecs still code the whole volume.

The machine is shared, so the figures carry its load; run it on an idle machine for clean ones.

Usage::

    python benchmarks/bench_volume_scale.py                 # both parts
    python benchmarks/bench_volume_scale.py --only memory   # about 10 minutes on 2 cores
    python benchmarks/bench_volume_scale.py --only time --sub 96 192 192

Benchmarks measure and print; they assert nothing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

MEMORY_SHAPE = (128, 512, 512)          # Z, Y, X
PAPER_SHAPE = (550, 2048, 2048)
PAPER_NUCLEI = 190_000
VOXELS_PER_NUCLEUS = math.prod(PAPER_SHAPE) / PAPER_NUCLEI
PAPER_REPLICAS, PAPER_CODECS = 10, 2
FRACTIONS = (0.02, 0.05, 0.1)
CODEC = "bitdepth:bits=8,mode=minmax"
SEED = 0


def simulate_nuclei(shape, *, voxels_per_nucleus=VOXELS_PER_NUCLEUS, radius=(3.0, 7.0), seed=SEED):
    """A camera acquisition (DN, uint16) of random ellipsoidal nuclei, one per ``voxels_per_nucleus``
    voxels, and sparse labels (1 background, 2 nucleus) for training."""
    from scipy import ndimage

    from noisestat.simulate import DEMO_CAMERA, acquire, sparse_labels

    rng = np.random.default_rng(seed)
    truth = np.zeros(shape, dtype=bool)
    for _ in range(int(math.prod(shape) / voxels_per_nucleus)):
        centre = rng.uniform(0, shape)
        axes = rng.uniform(*radius, size=3) * (0.6, 1.0, 1.0)   # flatter along Z
        lo = np.maximum(np.floor(centre - axes).astype(int), 0)
        hi = np.minimum(np.ceil(centre + axes).astype(int) + 1, shape)
        if np.any(hi <= lo):
            continue
        grid = np.ogrid[tuple(slice(a, b) for a, b in zip(lo, hi))]
        inside = sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, axes)) < 1
        truth[tuple(slice(a, b) for a, b in zip(lo, hi))] |= inside
    electrons = ndimage.gaussian_filter(truth.astype(np.float32), 1.0)
    electrons *= 1200.0
    electrons += 300.0
    raw = acquire(electrons, DEMO_CAMERA, rng)
    del electrons
    return raw, sparse_labels(truth, rng=rng)


# --------------------------------------------------------------------------------------------
# memory
# --------------------------------------------------------------------------------------------

def _where(frames) -> list[str]:
    """The innermost noisestat frames of each thread: 'module.function:line' from outer to inner."""
    out = []
    for frame in frames.values():
        chain = []
        while frame is not None:
            name = frame.f_code.co_filename
            if f"{os.sep}noisestat{os.sep}" in name:
                module = name.split(f"{os.sep}noisestat{os.sep}")[-1].removesuffix(".py").replace(os.sep, ".")
                chain.append(f"{module}.{frame.f_code.co_name}:{frame.f_lineno}")
            frame = frame.f_back
        if chain:
            out.append(" < ".join(chain[:4]))
    return out


def child_memory(folder: Path, replicas: int, jobs: int, trace: bool) -> dict:
    """Run in the subprocess: one full assessment of the volume in ``folder``; its peak memory."""
    import resource
    import tracemalloc

    import noisestat
    from noisestat.simulate import DEMO_CAMERA

    raw = np.load(folder / "raw.npy")
    labels = np.load(folder / "labels.npy")
    peak = {"traced": 0, "where": []}
    stop = threading.Event()

    def sample():
        me = threading.get_ident()
        while not stop.is_set():
            current, _ = tracemalloc.get_traced_memory()
            if current > peak["traced"]:
                frames = {k: f for k, f in sys._current_frames().items() if k != me}
                peak.update(traced=current, where=_where(frames))
            stop.wait(0.02)

    if trace:
        tracemalloc.start()
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
    start = time.perf_counter()
    result = noisestat.assess(raw, DEMO_CAMERA, [CODEC], labels=labels, replicas=replicas, jobs=jobs, seed=SEED)
    wall = time.perf_counter() - start
    out = {"wall_s": wall, "n_objects": result.summary()["raw"]["N_tot"]["value"]}
    if trace:
        stop.set()
        sampler.join()
        out["traced_peak_mb"] = tracemalloc.get_traced_memory()[1] / 1e6
        out["sampled_peak_mb"] = peak["traced"] / 1e6
        out["where"] = peak["where"]
    out["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
    out["children_maxrss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e3
    return out


def run_memory(args) -> dict:
    with tempfile.TemporaryDirectory(prefix="noisestat-volume-") as folder:
        folder = Path(folder)
        raw, labels = simulate_nuclei(MEMORY_SHAPE)
        np.save(folder / "raw.npy", raw)
        np.save(folder / "labels.npy", labels)
        del raw, labels
        command = [sys.executable, __file__, "--child", str(folder), "--replicas", str(args.replicas),
                   "--jobs", str(args.jobs), *(["--no-trace"] if args.no_trace else [])]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            print(done.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"the assessment failed (exit {done.returncode})")
        return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------
# time
# --------------------------------------------------------------------------------------------

def stage_costs(sub_shape) -> dict:
    """Seconds per voxel or per object of each stage, on one core, measured on a sub-volume."""
    import noisestat
    from noisestat.engine import Tile, default_tile
    from noisestat.engine._tiles import predict_tile
    from noisestat.predict._training import new_forest
    from noisestat.simulate import DEMO_CAMERA

    raw, labels = simulate_nuclei(tuple(sub_shape))
    voxels = raw.size
    start = time.perf_counter()
    result = noisestat.assess(raw, DEMO_CAMERA, [CODEC], labels=labels, replicas=2, jobs=1, seed=SEED)
    wall = time.perf_counter() - start
    timing = result.provenance["timing"]
    n_objects = result.summary()["raw"]["N_tot"]["value"]
    n_images = 1 + 2 + 2 + 1                    # raw, replicas, null pair, codec

    # one interior tile of the default edge with its whole halo, on a block of the same density
    model = new_forest(SEED, 3, 1).fit(raw, labels)
    edge = default_tile(model, 3)
    halo = tuple(model.halo(3))
    region_shape = tuple(edge + 2 * h for h in halo)
    block, _ = simulate_nuclei(region_shape, seed=SEED + 1)
    core = tuple(slice(h, h + edge) for h in halo)
    tile = Tile((0, 0, 0), core, tuple(slice(0, n) for n in region_shape))
    tile_timing: dict = {}
    predict_tile(lambda r: block[r], model, tile, timing=tile_timing, threads=1)
    forest_s = tile_timing.get("features", 0.0) + tile_timing.get("trees", 0.0) + tile_timing.get("pixels", 0.0)
    return {
        "sub_shape": tuple(sub_shape), "sub_objects": n_objects, "sub_wall_s": wall, "tile": edge, "halo": halo,
        "forest_per_voxel": forest_s / edge ** 3,
        "pixels_per_voxel": timing.get("pixels", 0.0) / (voxels * n_images),
        "labelling_per_voxel": timing.get("labelling", 0.0) / (voxels * n_images),
        "measuring_per_object": timing.get("measuring", 0.0) / max(1, n_objects * n_images),
        "matching_per_object": timing.get("matching", 0.0) / max(1, n_objects * (n_images - 1)),
        "codec_per_voxel": timing.get("codecs", 0.0) / voxels,
        "training_s": timing.get("training", 0.0),
    }


def extrapolate(costs: dict, fraction: float = 1.0, cores: int = 2) -> dict:
    """Seconds of each stage of the light-sheet run on ``cores`` cores, a ``fraction`` of its tiles."""
    voxels = math.prod(PAPER_SHAPE)
    images = 1 + PAPER_REPLICAS + 2 + PAPER_CODECS
    stages = {
        "forest": costs["forest_per_voxel"] * voxels * images * fraction,
        "replicas drawn": costs["pixels_per_voxel"] * voxels * images * fraction,
        "labelling": costs["labelling_per_voxel"] * voxels * images * fraction,
        "morphometry": costs["measuring_per_object"] * PAPER_NUCLEI * images * fraction,
        "matching": costs["matching_per_object"] * PAPER_NUCLEI * (images - 1) * fraction,
        "codecs": costs["codec_per_voxel"] * voxels * PAPER_CODECS,
    }
    return {k: v / cores for k, v in stages.items()}


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def print_time(costs: dict) -> None:
    z, y, x = costs["sub_shape"]
    print(f"stage costs on one core, sub-volume {x} x {y} x {z} ({costs['sub_objects']:.0f} objects, "
          f"assessed in {costs['sub_wall_s']:.0f} s), interior tile {costs['tile']} (halo {costs['halo']}):")
    print(f"  forest {costs['forest_per_voxel'] * 1e6:.2f} us/voxel, replicas drawn "
          f"{costs['pixels_per_voxel'] * 1e9:.1f} ns/voxel, labelling {costs['labelling_per_voxel'] * 1e9:.1f} ns/voxel, "
          f"morphometry {costs['measuring_per_object'] * 1e3:.2f} ms/object, matching "
          f"{costs['matching_per_object'] * 1e6:.1f} us/object, codec {costs['codec_per_voxel'] * 1e9:.1f} ns/voxel")
    columns = [("whole", 1.0)] + [(f"F = {f}", f) for f in FRACTIONS]
    tables = [extrapolate(costs, f) for _, f in columns]
    print()
    print(f"{PAPER_SHAPE[2]} x {PAPER_SHAPE[1]} x {PAPER_SHAPE[0]}, {PAPER_NUCLEI} nuclei, {PAPER_REPLICAS} replicas, "
          f"{PAPER_CODECS} codecs, 2 cores:")
    print()
    print("| stage | " + " | ".join(name for name, _ in columns) + " |")
    print("|---|" + "---|" * len(columns))
    for stage in tables[0]:
        print(f"| {stage} | " + " | ".join(hours(t[stage]) for t in tables) + " |")
    print("| **total** | " + " | ".join(f"**{hours(sum(t.values()))}**" for t in tables) + " |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("memory", "time"))
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--no-trace", action="store_true", help="ru_maxrss only (tracemalloc slows the run)")
    parser.add_argument("--sub", type=int, nargs=3, default=(64, 128, 128), metavar=("Z", "Y", "X"),
                        help="the sub-volume whose stages are timed (default 64 128 128)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(child_memory(args.child, args.replicas, args.jobs, not args.no_trace)))
        return 0
    if args.only in (None, "time"):
        print_time(stage_costs(args.sub))
        print()
    if args.only in (None, "memory"):
        z, y, x = MEMORY_SHAPE
        got = run_memory(args)
        print(f"volume {x} x {y} x {z}, {got['n_objects']:.0f} objects, {args.replicas} replicas + 2 null, 1 codec, "
              f"jobs={args.jobs}: {got['wall_s']:.0f} s")
        print(f"  peak RSS (ru_maxrss): {got['maxrss_mb']:.0f} MB (children {got['children_maxrss_mb']:.0f} MB); "
              f"target 1200 MB")
        if "traced_peak_mb" in got:
            print(f"  traced peak (tracemalloc): {got['traced_peak_mb']:.0f} MB; highest sample "
                  f"{got['sampled_peak_mb']:.0f} MB, in:")
            for line in got["where"]:
                print(f"    {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
