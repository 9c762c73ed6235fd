"""Operator-level eps of a true second acquisition and of an 8-bit shift on a simulated scene.

One scene (Poisson-Gaussian camera K 0.5 DN/e-, offset 100 DN, read noise 2 DN; background 300 e-,
cells 1500 e- more), two independent raw acquisitions of it. The first is the raw image: its
replicas (default mode) are drawn tile by tile as ``noisestat.score.operator_scores`` asks for them,
plus a null pair. The codecs: lossless, the second acquisition, and ``bitdepth:bits=8,mode=shift``.
Prints the wall time, the peak resident memory, and one line per operator, scale and lossy codec; a
benchmark: it measures and prints, it asserts nothing.

    python benchmarks/bench_operators.py
    python benchmarks/bench_operators.py --size 512 --replicas 30
"""

from __future__ import annotations

import argparse
import functools
import resource
import time

from noisestat.camera import CameraProfile
from noisestat.codecs import parse_spec
from noisestat.codecs._base import code_image
from noisestat.replicas import BlockCache, draw_region, replica_seeds
from noisestat.score import operator_scores
from noisestat.simulate import acquire, simulate_scene

CAMERA = CameraProfile(gain_dn_per_e=0.5, offset_dn=100.0, read_noise_dn=2.0, bit_depth=16)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="image edge in pixels (default 1024)")
    parser.add_argument("--replicas", type=int, default=10, help="replicas (default 10)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    electrons, _ = simulate_scene((args.size, args.size), rng=args.seed)
    raw, second = acquire(electrons, CAMERA, rng=args.seed + 1), acquire(electrons, CAMERA, rng=args.seed + 2)
    shift = code_image(parse_spec("bitdepth:bits=8,mode=shift"), raw, CAMERA).decoded
    drawn = [functools.partial(draw_region, raw, CAMERA, s, cache=BlockCache())
             for s in replica_seeds(args.seed + 3, args.replicas + 2)]
    start = time.perf_counter()
    scores = operator_scores(raw, drawn[:args.replicas], {"lossless": raw, "second": second, "shift": shift},
                             drawn[args.replicas:])
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.size} x {args.size}, {args.replicas} replicas + a null pair, 3 codecs: {wall:.1f} s, "
          f"peak resident memory {peak:.0f} MiB")
    for s in scores:
        if s.codec != "lossless":
            print(f"{s.operator:24s} {s.sigma:4g} {s.codec:7s} mean {s.mean_eps:+.3f} sd {s.sd_eps:.3f} "
                  f"|eps|<1 {s.frac_abs_eps_lt_1:.3f} null {s.null_frac_abs_eps_lt_1:.3f}")


if __name__ == "__main__":
    main()
