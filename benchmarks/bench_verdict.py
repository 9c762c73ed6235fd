"""Size and power of the verdict against the number of objects: how often a truly equivalent image
(a second raw acquisition of the same scene) is called tolerable, inconclusive or not tolerable, and
how often known-bad distortions are.

On simulated scenes (Poisson-Gaussian camera, known truth), each seed gives two independent raw
acquisitions of the same scene. The first is assessed; the second is scored as a "codec" (what a
perfect stand-in for the raw image would get), beside known-bad distortions: a gain error (the image
scaled about the offset: 3 % by default, the error of a mis-set gain on dim fluorescence), an 8-bit
shift (``bitdepth:bits=8,mode=shift``: the low 8 of 16 bits dropped) and heavy JPEG
(``jpeg:quality=5``). The number of objects is set by the image's size at a fixed density of small
cells (about 110 per 256 x 256). Two scene types:

``bright``
    phase-contrast-like: background 2000 e-, objects 600 e- darker (modest contrast).
``dim``
    fluorescence-like: background 3 e-, objects 30 e- brighter.

Prints one line per scene and a Markdown table of outcomes per number of objects. A benchmark: it
measures and prints, it asserts nothing.

    python benchmarks/bench_verdict.py --seeds 10 --objects 30 50 80 150 300 --replicas 10 --jobs 2
    python benchmarks/bench_verdict.py --seeds 10 --first-seed 1000    # fresh seeds, to confirm
    python benchmarks/bench_verdict.py --seeds 5 --margin shift=0.5 --primary all
"""

from __future__ import annotations

import argparse
import time
from collections import Counter, defaultdict

import numpy as np

from noisestat.camera import CameraProfile
from noisestat.codecs._base import Codec
from noisestat.pipeline import assess
from noisestat.simulate import acquire, simulate_scene, sparse_labels

CAMERA = CameraProfile(gain_dn_per_e=0.5, offset_dn=100.0, read_noise_dn=2.0, bit_depth=16)
SCENES = {"bright": {"background_e": 2000.0, "object_e": -600.0},
          "dim": {"background_e": 3.0, "object_e": 30.0}}
# objects per pixel and semi-axes: ~110 small cells in 256 x 256, enough objects for the per-parameter tests
DENSITY, RADIUS = 110 / 256 ** 2, (3.0, 7.0)


class GivenImage(Codec):
    """Scores a given image as if it were a decoded one (no file needed)."""

    name, summary = "given", "an image given directly"

    def __init__(self, spec, image):
        super().__init__(spec)
        self.image = image

    def apply(self, image, profile):
        return self.result(image, self.image, None)


def gain_error(image: np.ndarray, profile: CameraProfile, factor: float = 1.1) -> np.ndarray:
    """The image scaled by ``factor`` about the camera offset, rounded and clipped like a raw image."""
    y = profile.offset_dn + factor * (image.astype(float) - profile.offset_dn)
    return np.clip(np.rint(y), 0, profile.max_dn).astype(image.dtype)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--objects", nargs="+", type=int, default=[30, 50, 80, 150, 300],
                    help="objects per scene (the image's size follows)")
    ap.add_argument("--replicas", type=int, default=10)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--scenes", nargs="+", default=list(SCENES), choices=list(SCENES))
    ap.add_argument("--gains", nargs="+", type=float, default=[1.03], help="gain errors to score (factor)")
    ap.add_argument("--codecs", nargs="+", default=["bitdepth:bits=8,mode=shift", "jpeg:quality=5"],
                    help="codec specs to score")
    ap.add_argument("--margin", default=None, help="the verdict's margins (as noisestat assess --margin)")
    ap.add_argument("--primary", default=None, help="the verdict's primary parameters (as --primary)")
    args = ap.parse_args()
    gains = [f"gain x{g:g}" for g in args.gains]
    names = ["second acquisition", *gains, *args.codecs]
    start = time.time()
    table = defaultdict(Counter)   # (scene, objects, codec) -> outcome counts
    undecided = defaultdict(Counter)  # (scene, objects, codec) -> criteria left undecided
    null_outcomes = defaultdict(Counter)
    found = defaultdict(list)
    for scene in args.scenes:
        for n_obj in args.objects:
            size = int(round(np.sqrt(n_obj / DENSITY)))
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                electrons, truth = simulate_scene((size, size), n_objects=n_obj, radius=RADIUS, rng=100 + seed,
                                                  **SCENES[scene])
                raw_a = acquire(electrons, CAMERA, [seed, 1])
                raw_b = acquire(electrons, CAMERA, [seed, 2])
                labels = sparse_labels(truth, rng=seed)
                codecs = [GivenImage(names[0], raw_b),
                          *(GivenImage(n, gain_error(raw_a, CAMERA, g)) for n, g in zip(gains, args.gains)),
                          *args.codecs]
                r = assess(raw_a, CAMERA, codecs, labels=labels, replicas=args.replicas, seed=seed, jobs=args.jobs,
                           margins=args.margin, primary=args.primary, verdict_anyway=True)
                for c in r.codecs:
                    table[scene, n_obj, c.spec][c.outcome] += 1
                    if c.outcome == "inconclusive":
                        undecided[scene, n_obj, c.spec].update(
                            k["criterion"] for k in c.verdict.criteria if k["decision"] == "undecided")
                null_outcomes[scene, n_obj][r.null_verdict.outcome] += 1
                found[scene, n_obj].append(len(r.raw))
                print(f"{scene} {n_obj:3d} objects (found {len(r.raw):3d}, {size} px) seed {seed:4d}: "
                      + ", ".join(f"{c.spec} {c.outcome}" for c in r.codecs)
                      + f"; simulated second acquisition {r.null_verdict.outcome}", flush=True)
    elapsed = time.time() - start
    print(f"\n{args.seeds} scenes per cell (seeds {args.first_seed}..{args.first_seed + args.seeds - 1}), "
          f"{args.replicas} replicas, margins {args.margin or 'default'}, primary {args.primary or 'default'}, "
          f"{elapsed:.0f} s\n")
    print("Outcomes (T tolerable / I inconclusive / N not tolerable):\n")
    print("| scene | objects (found) | " + " | ".join(names) + " | simulated second |")
    print("|---|---|" + "---|" * (len(names) + 1))
    for scene in args.scenes:
        for n_obj in args.objects:
            def cell(counts):
                return f"{counts['tolerable']}/{counts['inconclusive']}/{counts['not tolerable']}"
            print(f"| {scene} | {n_obj} ({np.mean(found[scene, n_obj]):.0f}) | "
                  + " | ".join(cell(table[scene, n_obj, x]) for x in names) + f" | {cell(null_outcomes[scene, n_obj])} |")
    print("\nCriteria left undecided in the inconclusive verdicts:\n")
    for (scene, n_obj, spec), counts in sorted(undecided.items()):
        print(f"{scene} {n_obj} {spec}: " + ", ".join(f"{k} {v}" for k, v in counts.most_common()))


if __name__ == "__main__":
    main()
