"""``noisestat assess`` on a dask cluster of k = 1, 2, 4 workers: wall seconds, speed-up, identical output.

For each k this script starts ``distributed.LocalCluster(n_workers=k, threads_per_worker=1)`` (worker
processes, dask's default memory limit per worker, no dashboard), runs ``noisestat assess ...
--scheduler tcp://HOST:PORT`` against it as a command, and closes the cluster. The inputs are those
of ``bench_memory.py`` (a simulated 2560 x 2560 image, seed 0, demo camera; ``--size``), with
``--replicas 4`` and one codec, ``bitdepth:bits=8,mode=minmax``, unless told otherwise.

Reported per k: wall seconds of the command (cluster start-up excluded; interpreter start, reading,
the assessment and writing the output included), assess's own seconds (``summary.json`` provenance
``seconds``), the speed-up of the wall time against k = 1, and whether ``objects.csv`` is
byte-identical to k = 1's (it must be: the numbers do not depend on the scheduler).

On a machine with fewer cores than k, the workers share them: k = 4 on 2 cores measures the cost of
oversubscription, not a speed-up.

The script fails with a message when ``noisestat assess --help`` shows no ``--scheduler`` option.

Usage::

    python benchmarks/bench_scaleout.py                    # k = 1, 2, 4 on a 2560x2560 image
    python benchmarks/bench_scaleout.py --size 1024 --workers 1 2

Benchmarks measure and print; they assert nothing.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_memory import IMAGE_SIZE, assess_command, write_image_job


def scheduler_supported() -> bool:
    """Whether this noisestat's ``assess`` command has ``--scheduler``."""
    proc = subprocess.run([sys.executable, "-m", "noisestat", "assess", "--help"], capture_output=True, text=True,
                          cwd=tempfile.gettempdir())
    return proc.returncode == 0 and "--scheduler" in proc.stdout


def run_on_cluster(folder: Path, raw: Path, k: int, args) -> dict:
    """Start a k-worker LocalCluster, run the command against it, return its figures."""
    from distributed import LocalCluster

    out = folder / f"out_k{k}"
    with LocalCluster(n_workers=k, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        command = assess_command(folder, raw, replicas=args.replicas, jobs=None, codecs=args.codec, tile=args.tile,
                                 extra=["--scheduler", address])
        command[command.index("-o") + 1] = str(out)
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"k={k}: {address} (load {load}) ...", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run(command, cwd=folder, capture_output=True, text=True)
        wall = time.perf_counter() - t0
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        raise SystemExit(f"noisestat assess on {k} dask workers failed (exit status {proc.returncode}): "
                         f"{lines[-1] if lines else '(no message)'}")
    summary = json.loads((out / "summary.json").read_text())
    return {"k": k, "wall_s": wall, "assess_s": summary["provenance"].get("seconds"),
            "timing": summary["provenance"].get("timing", {}),
            "objects": (out / "objects.csv").read_bytes(), "n_raw": summary.get("n_objects_raw"),
            "load_after": " ".join(f"{x:.2f}" for x in os.getloadavg())}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4], help="values of k (default 1 2 4)")
    parser.add_argument("--size", type=int, default=IMAGE_SIZE, help=f"side of the simulated image (default {IMAGE_SIZE})")
    parser.add_argument("--replicas", type=int, default=4, help="replicas (default 4)")
    parser.add_argument("--tile", type=int, help="--tile of the command (default: not passed, its default)")
    parser.add_argument("--codec", action="append", help="codec spec (repeat; default bitdepth:bits=8,mode=minmax)")
    args = parser.parse_args(argv)
    args.codec = args.codec or ["bitdepth:bits=8,mode=minmax"]

    if not scheduler_supported():
        print("bench_scaleout.py: `noisestat assess --help` shows no --scheduler option: this noisestat cannot run "
              "on a dask cluster yet, so there is nothing to measure", file=sys.stderr)
        return 1
    if importlib.util.find_spec("distributed") is None:
        print("bench_scaleout.py: dask.distributed is not installed (pip install 'noisestat[dask]')", file=sys.stderr)
        return 1

    print(f"{os.cpu_count()} CPUs; python {sys.version.split()[0]}; image {args.size}x{args.size}, "
          f"{args.replicas} replicas, codecs {', '.join(args.codec)}, tile "
          f"{args.tile if args.tile else 'the command default'}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        raw = write_image_job(folder, args.size)
        for k in args.workers:
            rows.append(run_on_cluster(folder, raw, k, args))

    base = rows[0]
    print(f"\n{'workers':>7} {'wall s':>8} {'assess s':>9} {'speed-up':>9} {'objects.csv':>22} {'raw objects':>12} "
          f"{'load after':>16}")
    for r in rows:
        same = "reference" if r is base else ("byte-identical" if r["objects"] == base["objects"] else "DIFFERS")
        assess_s = "-" if r["assess_s"] is None else f"{r['assess_s']:.1f}"
        print(f"{r['k']:>7} {r['wall_s']:>8.1f} {assess_s:>9} {base['wall_s'] / r['wall_s']:>9.2f} "
              f"{same:>22} {r['n_raw']!s:>12} {r['load_after']:>16}")
    print("\nwhere the time went (provenance timing: wall-clock stages of the run, and seconds summed over tasks):")
    for r in rows:
        parts = ", ".join(f"{key} {value:.1f}" for key, value in r["timing"].items()
                          if isinstance(value, float) and key not in ("trees_evaluated_fraction",))
        print(f"  k={r['k']}: {parts}")
    batch = base["timing"].get("batch_wall")
    if batch:
        print("\nthe workers' share (provenance timing batch_wall: wall s of the two batches of tasks) and the rest "
              "(command wall s minus batch_wall: start, reading, training and the raw image here, codecs, scores, "
              "writing):")
        for r in rows:
            b = r["timing"].get("batch_wall")
            if b:
                print(f"  k={r['k']}: batch {b:.1f} s (speed-up {batch / b:.2f}), rest {r['wall_s'] - b:.1f} s")
    print(f"\nspeed-up: wall s of k={base['k']} over wall s of k; objects.csv compared with k={base['k']}'s. "
          f"This machine has {os.cpu_count()} CPUs: beyond that, workers share cores.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
