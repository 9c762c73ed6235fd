"""How often the verdict calls a truly equivalent image tolerable, and a distorted one not.

On simulated scenes (Poisson-Gaussian camera, known truth), each seed gives two independent raw
acquisitions of the same scene. The first is assessed; the second is scored as a "codec" (what a
perfect stand-in for the raw image would get), beside JPEG at 20:1 and 100:1. Prints one line per
seed and the counts of "tolerable" per codec. A benchmark: it measures and prints, it asserts
nothing.

    python benchmarks/bench_verdict.py --seeds 20 --size 512 --jobs 2
"""

from __future__ import annotations

import argparse
import time

from noisestat.camera import CameraProfile
from noisestat.codecs._base import Codec
from noisestat.pipeline import assess
from noisestat.simulate import acquire, simulate_scene, sparse_labels

CAMERA = CameraProfile(gain_dn_per_e=0.5, offset_dn=100.0, read_noise_dn=2.0, bit_depth=16)


class SecondAcquisition(Codec):
    """Scores a given image as if it were a decoded one (no file needed)."""

    name, summary = "second-acquisition", "an independent raw acquisition of the same scene"

    def __init__(self, spec, image):
        super().__init__(spec)
        self.image = image

    def apply(self, image, profile):
        return self.result(image, self.image, None)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--replicas", type=int, default=10)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    names = ["second acquisition", "jpeg:ratio=20", "jpeg:ratio=100"]
    counts = dict.fromkeys(names, 0)
    null_ok = 0
    start = time.time()
    for seed in range(args.seeds):
        electrons, truth = simulate_scene((args.size, args.size), rng=100 + seed)
        raw_a = acquire(electrons, CAMERA, [seed, 1])
        raw_b = acquire(electrons, CAMERA, [seed, 2])
        labels = sparse_labels(truth, rng=seed)
        r = assess(raw_a, CAMERA, [SecondAcquisition("second acquisition", raw_b), "jpeg:ratio=20", "jpeg:ratio=100"],
                   labels=labels, replicas=args.replicas, seed=seed, jobs=args.jobs)
        for c in r.codecs:
            counts[c.spec] += c.tolerable
        null_ok += r.null_tolerable[0]
        first = r.codecs[0]
        print(f"seed {seed:2d}: {len(r.raw):3d} objects; tolerable: " +
              ", ".join(f"{c.spec} {c.tolerable}" for c in r.codecs) +
              f"; simulated second acquisition {r.null_tolerable[0]}" +
              (f"; second acquisition rejected for: {first.reasons[0]}" if first.reasons else ""), flush=True)
    print(f"\n{args.seeds} scenes of {args.size} x {args.size}, {args.replicas} replicas, "
          f"{time.time() - start:.0f} s")
    for name in names:
        print(f"  {name:<20} tolerable in {counts[name]}/{args.seeds}")
    print(f"  {'simulated (own null)':<20} tolerable in {null_ok}/{args.seeds}")


if __name__ == "__main__":
    main()
