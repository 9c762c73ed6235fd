"""The forest's decision time per pixel chunk: one process alone, and two side by side.

``PixelClassifier.predict_mask`` decides a region's pixels in chunks of
``noisestat.predict._forest._PREDICT_CHUNK`` pixels; every tree reads every row of its chunk, so
the chunk's features (70 float32 per pixel) either stay in cache across the trees or are read from
memory once per tree. This script trains the forest of an assessment on two jobs, computes the
features of one 512 x 512 tile, and times the decision of that tile for several chunk sizes (best
of 3), first in one process, then in two processes at once (as two workers on two cores run):

* ``simulated``: the simulated 1024 x 1024 image of ``bench_memory.py`` / ``bench_scaleout.py``
  (seed 0, demo camera), whose forest has shallow trees;
* ``real``: the phase-contrast set3 image of ../shared/data with labels drawn from its instance
  mask as ``bench_assess.py`` draws them (skipped with a message when the data is absent), whose
  forest has deep trees.

The mask and the number of tree evaluations are printed too: the mask never depends on the chunk.

Usage::

    python benchmarks/bench_forest_chunk.py
    python benchmarks/bench_forest_chunk.py --chunks 8192 16384 65536

Benchmarks measure and print; they assert nothing.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TILE = 512


def prepare(job: str, folder: Path) -> str | None:
    """Train the job's forest, save it and one tile's features in ``folder``; a description, or
    None when the job's data is absent."""
    from noisestat import read_image, read_labels, save_model
    from noisestat.predict._training import new_forest as _new_forest, train as _train

    if job == "simulated":
        from bench_memory import write_image_job

        raw = write_image_job(folder, 1024)
        image, labels = read_image(raw), read_labels(folder / "labels.tif")
    else:
        from bench_assess import EQUAL_DATA, real_job

        if not (EQUAL_DATA / "raw.tif").exists():
            return None
        image, labels, _, _ = real_job(EQUAL_DATA / "raw.tif", EQUAL_DATA / "instances_ids.png", None, None, 0)
    model = _new_forest(0, 2, -1)
    _train(model, image, labels, TILE, 2, {}, keep=False)
    save_model(model, folder / "model.npz")
    features = model.features(image[:TILE, :TILE])
    np.save(folder / "features.npy", np.ascontiguousarray(features, dtype=np.float32))
    trees = model.forest_.estimators_
    return (f"{job}: {sum(t.tree_.node_count for t in trees)} nodes in {len(trees)} trees, "
            f"depth up to {max(t.tree_.max_depth for t in trees)}")


def time_chunks(folder: Path, chunks: list[int]) -> None:
    """Print ``chunk seconds positives evaluations`` per chunk size (one line each)."""
    import noisestat.predict._forest as forest_module
    from noisestat import load_model

    model = load_model(folder / "model.npz")
    features = np.load(folder / "features.npy")
    region = np.zeros(features.shape[:2], np.uint16)  # only its shape is used: the features are given
    for chunk in chunks:
        forest_module._PREDICT_CHUNK = chunk
        best, mask, counts = float("inf"), None, {}
        for _ in range(3):
            counts = {}
            start = time.perf_counter()
            mask = model.predict_mask(region, features=features, counts=counts)
            best = min(best, time.perf_counter() - start)
        print(chunk, f"{best:.3f}", int(mask.sum()), counts["tree_evaluations"], flush=True)


def run(folder: Path, chunks: list[int], processes: int) -> list[dict]:
    command = [sys.executable, __file__, "--time", str(folder), "--chunks", *map(str, chunks)]
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(processes)]
    outputs = [p.communicate()[0] for p in procs]
    if any(p.returncode for p in procs):
        raise SystemExit(f"timing in {processes} processes failed")
    rows = []
    for out in outputs:
        for line in out.split("\n"):
            if line.strip():
                chunk, seconds, positives, evaluations = line.split()
                rows.append({"chunk": int(chunk), "s": float(seconds), "positives": int(positives),
                             "evaluations": int(evaluations)})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, nargs="+", default=[4096, 8192, 16384, 24576, 32768, 65536])
    parser.add_argument("--jobs", nargs="+", default=["simulated", "real"], choices=["simulated", "real"])
    parser.add_argument("--time", type=Path, help=argparse.SUPPRESS)  # internal: time one prepared job
    args = parser.parse_args(argv)
    if args.time:
        time_chunks(args.time, args.chunks)
        return 0
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import noisestat.predict._forest as forest_module

    print(f"tile {TILE} x {TILE}; noisestat's chunk: {forest_module._PREDICT_CHUNK} pixels; seconds: best of 3")
    for job in args.jobs:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            description = prepare(job, folder)
            if description is None:
                print(f"{job}: skipped (../shared/data/usiigaci-phase-contrast/set3 is absent)")
                continue
            print(description)
            alone = run(folder, args.chunks, 1)
            paired = run(folder, args.chunks, 2)
        print(f"  {'chunk':>7} {'alone s':>8} {'two side by side s':>19} {'object pixels':>14} {'tree evaluations':>17}")
        for row in alone:
            pair = [r["s"] for r in paired if r["chunk"] == row["chunk"]]
            same = all(r["positives"] == row["positives"] for r in paired if r["chunk"] == row["chunk"])
            print(f"  {row['chunk']:>7} {row['s']:>8.3f} {' / '.join(f'{s:.3f}' for s in pair):>19} "
                  f"{row['positives']:>14}{'' if same else ' (differs!)'} {row['evaluations']:>17}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
