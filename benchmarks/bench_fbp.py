"""Filtered back-projection: noisestat.reconstruct.fbp against skimage.transform.iradon, on one core.

For each case (angles x width), the same smooth random projections are reconstructed by iradon
(circle=True, ramp, linear) row by row and by fbp; the table gives seconds per slice for iradon, for fbp
on those same rows (the same work: fbp's sparse weights are then built for those rows only) and for fbp
on a tile of ROWS_PER_BLOCK rows (how `noisestat reconstruct` and the engine run it: the weights of a
pixel tile are built once for the whole block), the speed-ups, the largest difference from iradon as a
fraction of the slice's value range, and the throughput in interpolations per second against the floor
of the method, angles x width^2 interpolations per slice. The last line extrapolates the paper's volume
(1200 projections of 1024 x 1024: 1024 slices) from the largest case. A benchmark: it measures and
prints, it asserts nothing.

    python benchmarks/bench_fbp.py --quick     # 180 x 128 and 360 x 256, under a minute
    python benchmarks/bench_fbp.py             # adds 600 x 512 and the paper's 1200 x 1024 (~5 minutes)
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one core, before numpy loads
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from skimage.transform import iradon  # noqa: E402

from noisestat.reconstruct import ROWS_PER_BLOCK, fbp  # noqa: E402

QUICK = [(180, 128), (360, 256)]
FULL = QUICK + [(600, 512), (1200, 1024)]
PAPER = (1200, 1024, 1024)  # angles, width, slices


def projections(angles: int, rows: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth random projections (a random walk along the width), float32, ``(angles, rows, width)``."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(angles, rows, width)).cumsum(axis=-1).astype(np.float32)


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def run_case(angles: int, width: int, iradon_rows: int, tile_rows: int) -> dict:
    stack = projections(angles, tile_rows, width)
    theta = 360.0 * np.arange(angles) / angles
    reference, t_iradon = timed(lambda: np.stack([
        iradon(stack[:, r, :].T.astype(np.float64), theta=theta, circle=True, filter_name="ramp")
        for r in range(iradon_rows)]))
    same, t_same = timed(lambda: fbp(stack, rows=slice(0, iradon_rows)))
    tile, t_tile = timed(lambda: fbp(stack))
    ranges = np.ptp(reference, axis=(1, 2))
    diff = max(float(np.abs(same[r] - reference[r]).max() / ranges[r]) for r in range(iradon_rows))
    diff_tile = max(float(np.abs(tile[r] - reference[r]).max() / ranges[r]) for r in range(iradon_rows))
    floor = angles * width * width  # interpolations per slice
    return {"angles": angles, "width": width, "iradon_s": t_iradon / iradon_rows,
            "same_s": t_same / iradon_rows, "tile_s": t_tile / tile_rows, "tile_rows": tile_rows,
            "iradon_rows": iradon_rows, "diff": max(diff, diff_tile), "floor": floor}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the two small cases only")
    parser.add_argument("--iradon-rows", type=int, default=1, help="rows iradon reconstructs per case (default 1)")
    parser.add_argument("--tile-rows", type=int, default=ROWS_PER_BLOCK,
                        help=f"rows in fbp's tile (default {ROWS_PER_BLOCK}, the engine's)")
    args = parser.parse_args(argv)
    cases = QUICK if args.quick else FULL
    print(f"one core (OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}); iradon on {args.iradon_rows} row(s), "
          f"fbp on the same row(s) and on a tile of {args.tile_rows} rows; seconds per slice")
    header = (f"{'angles x width':>15} {'iradon s':>9} {'fbp same s':>10} {'x':>6} {'fbp tile s':>10} {'x':>6} "
              f"{'max |diff| / range':>18} {'iradon Minterp/s':>16} {'fbp tile Minterp/s':>18}")
    print(header)
    results = []
    for angles, width in cases:
        r = run_case(angles, width, args.iradon_rows, args.tile_rows)
        results.append(r)
        print(f"{angles:>6} x {width:<6} {r['iradon_s']:>9.3f} {r['same_s']:>10.3f} {r['iradon_s'] / r['same_s']:>6.1f} "
              f"{r['tile_s']:>10.3f} {r['iradon_s'] / r['tile_s']:>6.1f} {r['diff']:>18.1e} "
              f"{r['floor'] / r['iradon_s'] / 1e6:>16.0f} {r['floor'] / r['tile_s'] / 1e6:>18.0f}", flush=True)
    last = results[-1]
    angles, width, slices = PAPER
    scale = (angles * width * width) / last["floor"]  # the work grows as angles x width^2
    print(f"the paper's volume ({angles} projections of {width} x {width}, {slices} slices) on one core, "
          f"extrapolated from {last['angles']} x {last['width']}: iradon {slices * last['iradon_s'] * scale / 3600:.1f} h, "
          f"fbp {slices * last['tile_s'] * scale / 3600:.2f} h")


if __name__ == "__main__":
    main()
