"""Peak memory of ``noisestat assess`` on a large image and on a volume: the process and all its children.

``noisestat assess`` runs as a command (a fresh interpreter) on simulated inputs written to a
temporary folder; a thread of this script samples it with psutil every ``--interval`` seconds
(default 0.05) and sums, at each sample, over the command's process and every descendant
(joblib's worker processes): the peak of that sum is reported.

* RSS MB: the summed resident set size. Pages shared between processes (libraries, joblib's
  memory-mapped inputs) are counted once per process that maps them, so this is an upper bound;
* PSS MB: the summed proportional set size (``memory_full_info().pss``, Linux), in which shared
  pages are split between the processes sharing them: what the tree really occupies. Reading it
  costs more per sample, so with ``--rss-only`` it is skipped.

Sampling can miss a spike shorter than the interval. MB = 10**6 bytes.

Inputs (noisestat.simulate, seed 0, demo camera saved with ``save_profile``):

* image: N x N, N = 2560 (``--size``; 4096 with ``--large``), assembled from ``simulate_scene``
  pieces of 512 x 512 (one call for the whole image costs minutes: :func:`mosaic_scene`), then
  ``acquire`` + ``sparse_labels``;
* volume: 128 x 512 x 512 (Z, Y, X) of random ellipsoids (``simulate_scene`` is 2D, so the scene is
  drawn here), acquired with ``acquire`` and labelled with ``sparse_labels``, written as a ZYX
  TIFF. The command fails on a version that reads 2D images only: the failure is caught and
  printed.

The default ``--tile`` of the command is used (no ``--tile`` passed unless given), ``--jobs 2``,
``--replicas 2`` (the minimum: each replica is one more task of the same size, so the peak hardly
depends on it while the time does) and one codec, ``bitdepth:bits=8,mode=minmax``.

Usage::

    python benchmarks/bench_memory.py                      # 2560x2560 image, then the 512x512x128 volume
    python benchmarks/bench_memory.py --only image         # the image alone
    python benchmarks/bench_memory.py --only image --size 4096
    python benchmarks/bench_memory.py --replicas 10 --tile 256

Benchmarks measure and print; they assert nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

IMAGE_SIZE, LARGE_SIZE = 2560, 4096
VOLUME_SHAPE = (128, 512, 512)  # Z, Y, X
SEED = 0


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------

SCENE_BLOCK = 512  # side of the simulate_scene pieces a large image is assembled from


def mosaic_scene(size: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """A ``size`` x ``size`` scene assembled from ``simulate_scene`` pieces of at most 512 x 512.

    ``simulate_scene`` draws every ellipse over the whole grid, so its cost grows with the number of
    pixels squared (minutes at 2560^2, far more at 4096^2); pieces keep it linear. Each piece has
    the same object density; its slow background ramp restarts at the piece's left edge (a step of
    up to ~45 e- on the 300 e- background every 512 columns) and cells are cut at piece borders.
    """
    from noisestat.simulate import simulate_scene

    electrons = np.empty((size, size))
    truth = np.empty((size, size), dtype=bool)
    for r in range(0, size, SCENE_BLOCK):
        for c in range(0, size, SCENE_BLOCK):
            shape = (min(SCENE_BLOCK, size - r), min(SCENE_BLOCK, size - c))
            e, t = simulate_scene(shape, rng=rng)
            electrons[r:r + shape[0], c:c + shape[1]], truth[r:r + shape[0], c:c + shape[1]] = e, t
    return electrons, truth


def write_image_job(folder: Path, size: int, seed: int = SEED) -> Path:
    """raw.tif, labels.tif and camera.json of a simulated ``size`` x ``size`` image in ``folder``."""
    import tifffile

    from noisestat import save_profile
    from noisestat.simulate import DEMO_CAMERA, acquire, sparse_labels

    rng = np.random.default_rng(seed)
    electrons, truth = mosaic_scene(size, rng)
    tifffile.imwrite(folder / "raw.tif", acquire(electrons, DEMO_CAMERA, rng))
    tifffile.imwrite(folder / "labels.tif", sparse_labels(truth, rng=rng))
    save_profile(DEMO_CAMERA, folder / "camera.json")
    return folder / "raw.tif"


def simulate_volume(shape=VOLUME_SHAPE, *, radius=(3.0, 8.0), background_e=300.0, object_e=1500.0, rng=None):
    """Expected electrons and true footprint of a field of random ellipsoids, like ``simulate_scene`` in 3D.

    Written here because ``noisestat.simulate.simulate_scene`` draws 2D scenes only. One ellipsoid
    per 20000 voxels (axis-aligned, semi-axes uniform in ``radius``), each drawn in its own bounding
    box, blurred by a Gaussian of 1.2 voxels, on a background varying slowly along X.
    """
    from scipy import ndimage as ndi

    rng = np.random.default_rng(rng)
    truth = np.zeros(shape, dtype=bool)
    for _ in range(int(np.prod(shape)) // 20000):
        centre = rng.uniform(0, shape)
        axes = rng.uniform(*radius, size=3)
        lo = np.maximum(np.floor(centre - axes).astype(int), 0)
        hi = np.minimum(np.ceil(centre + axes).astype(int) + 1, shape)
        if np.any(hi <= lo):
            continue
        grid = np.ogrid[tuple(slice(a, b) for a, b in zip(lo, hi))]
        inside = sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, axes)) < 1
        truth[tuple(slice(a, b) for a, b in zip(lo, hi))] |= inside
    x = np.arange(shape[-1]) / shape[-1]
    electrons = ndi.gaussian_filter(truth.astype(np.float32), 1.2) * object_e + background_e
    electrons += (0.2 * background_e * np.sin(x * 4)).astype(np.float32)
    return electrons, truth


def write_volume_job(folder: Path, shape=VOLUME_SHAPE, seed: int = SEED) -> Path:
    """raw.tif (ZYX), labels.tif and camera.json of a simulated volume in ``folder``."""
    import tifffile

    from noisestat import save_profile
    from noisestat.simulate import DEMO_CAMERA, acquire, sparse_labels

    rng = np.random.default_rng(seed)
    electrons, truth = simulate_volume(shape, rng=rng)
    tifffile.imwrite(folder / "raw.tif", acquire(electrons, DEMO_CAMERA, rng), metadata={"axes": "ZYX"})
    del electrons
    tifffile.imwrite(folder / "labels.tif", sparse_labels(truth, rng=rng), metadata={"axes": "ZYX"})
    save_profile(DEMO_CAMERA, folder / "camera.json")
    return folder / "raw.tif"


def assess_command(folder: Path, raw: Path, *, replicas: int, jobs: int, codecs, tile=None, extra=()) -> list[str]:
    """The ``noisestat assess`` command line for the job in ``folder`` (output: ``folder/out``)."""
    command = [sys.executable, "-m", "noisestat", "assess", str(raw), "--camera", str(folder / "camera.json"),
               "--labels", str(folder / "labels.tif"), "--replicas", str(replicas), "--quiet",
               "-o", str(folder / "out")]
    if jobs is not None:
        command += ["--jobs", str(jobs)]
    if tile is not None:
        command += ["--tile", str(tile)]
    for codec in codecs:
        command += ["--codec", codec]
    return [*command, *extra]


# --------------------------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------------------------

def run_sampled(command: list[str], cwd: Path, interval: float, pss: bool = True, timeout: float | None = None) -> dict:
    """Run ``command``; sample the summed RSS (and PSS) of it and all its descendants.

    Returns wall seconds, exit status (None when stopped after ``timeout`` seconds, its process
    tree killed), stderr, the peaks (bytes; PSS None without it) and the number of samples taken.
    """
    import psutil

    # cwd: outside the checkout, so that `-m noisestat` imports the installed (or PYTHONPATH) package.
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    root = psutil.Process(process.pid)
    peak = {"rss": 0, "pss": 0 if pss else None, "samples": 0, "processes": 1}
    done = threading.Event()

    def sample():
        while not done.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.Error:
                break  # the command has ended
            rss = pss_sum = 0
            for proc in tree:
                try:
                    if pss:
                        info = proc.memory_full_info()
                        pss_sum += info.pss
                    else:
                        info = proc.memory_info()
                    rss += info.rss
                except psutil.Error:
                    continue  # a worker ended between the listing and the reading
            peak["rss"] = max(peak["rss"], rss)
            if pss:
                peak["pss"] = max(peak["pss"], pss_sum)
            peak["samples"] += 1
            peak["processes"] = max(peak["processes"], len(tree))
            done.wait(interval)

    start = time.perf_counter()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    timed_out = False
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # stop the command and the workers it started (children first, so none is left behind)
        for proc in reversed([root, *root.children(recursive=True)]):
            try:
                proc.kill()
            except psutil.Error:
                pass
        _, stderr = process.communicate()
        timed_out = True
    except KeyboardInterrupt:
        process.terminate()
        raise
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    return {"wall_s": wall, "returncode": None if timed_out else process.returncode, "stderr": stderr, **peak}


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no message)"


def measure_case(name: str, write, args) -> dict:
    """Write one job, run the command sampled, print and return its figures."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        raw = write(folder)
        prep = time.perf_counter() - t0
        command = assess_command(folder, raw, replicas=args.replicas, jobs=args.jobs, codecs=args.codec,
                                 tile=args.tile)
        shown = " ".join(["noisestat", *command[3:]]).replace(str(folder) + os.sep, "")
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"{name}: inputs written in {prep:.1f} s; running `{shown}` (load {load})", flush=True)
        r = run_sampled(command, folder, args.interval, pss=not args.rss_only, timeout=args.timeout)
    r["name"], r["load_after"] = name, " ".join(f"{x:.2f}" for x in os.getloadavg())
    if r["returncode"] is None:
        r["stderr"] = f"stopped after --timeout {args.timeout:g} s (peaks so far)"
        print(f"  {r['stderr']}")
    elif r["returncode"] != 0:
        print(f"  failed (exit status {r['returncode']}) after {r['wall_s']:.1f} s: {_last_line(r['stderr'])}")
    return r


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("image", "volume"), help="measure one input only")
    parser.add_argument("--size", type=int, default=IMAGE_SIZE,
                        help=f"side of the simulated image (default {IMAGE_SIZE}; {LARGE_SIZE} for the large option)")
    parser.add_argument("--large", action="store_true", help=f"the image at {LARGE_SIZE}x{LARGE_SIZE}")
    parser.add_argument("--replicas", type=int, default=2, help="replicas (default 2, the minimum)")
    parser.add_argument("--jobs", type=int, default=2, help="--jobs of the command (default 2)")
    parser.add_argument("--tile", type=int, help="--tile of the command (default: not passed, its default)")
    parser.add_argument("--codec", action="append", help="codec spec (repeat; default bitdepth:bits=8,mode=minmax)")
    parser.add_argument("--interval", type=float, default=0.05, help="sampling interval in seconds (default 0.05)")
    parser.add_argument("--timeout", type=float,
                        help="stop a command after this many seconds and print its peaks so far (default: none)")
    parser.add_argument("--rss-only", action="store_true", help="sample RSS only (cheaper than PSS)")
    args = parser.parse_args(argv)
    args.codec = args.codec or ["bitdepth:bits=8,mode=minmax"]
    size = LARGE_SIZE if args.large else args.size

    import psutil

    print(f"{os.cpu_count()} CPUs, {psutil.virtual_memory().total / 1e9:.1f} GB RAM "
          f"({psutil.virtual_memory().available / 1e9:.1f} GB available); python {sys.version.split()[0]}")
    rows = []
    if args.only in (None, "image"):
        rows.append(measure_case(f"image {size}x{size}", lambda f: write_image_job(f, size), args))
    if args.only in (None, "volume"):
        z, y, x = VOLUME_SHAPE
        rows.append(measure_case(f"volume {x}x{y}x{z}", write_volume_job, args))

    print(f"\n{'input':<22} {'wall s':>8} {'peak RSS MB':>12} {'peak PSS MB':>12} {'processes':>10} "
          f"{'samples':>8}  result")
    for r in rows:
        pss = "-" if r["pss"] is None else f"{r['pss'] / 1e6:.0f}"
        result = ("ok" if r["returncode"] == 0 else _last_line(r["stderr"]) if r["returncode"] is None
                  else f"failed: {_last_line(r['stderr'])[:120]}")
        print(f"{r['name']:<22} {r['wall_s']:>8.1f} {r['rss'] / 1e6:>12.0f} {pss:>12} {r['processes']:>10} "
              f"{r['samples']:>8}  {result}")
    print(f"\npeaks: summed over the command's process and all its descendants at each sample (every "
          f"{args.interval:g} s plus the time a sample takes); RSS counts shared pages once per process, PSS splits "
          f"them; wall s: the whole command (interpreter start, reading, assessing, writing the output folder). "
          f"--jobs {args.jobs}, --replicas {args.replicas}, codecs {', '.join(args.codec)}, tile "
          f"{args.tile if args.tile else 'the command default'}. load after: "
          + "; ".join(f"{r['name']} {r['load_after']}" for r in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
