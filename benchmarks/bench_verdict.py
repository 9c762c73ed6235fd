"""Size and power of the verdict: how often it calls a truly equivalent image tolerable, and known-bad
distortions not.

On simulated scenes (Poisson-Gaussian camera, known truth), each seed gives two independent raw
acquisitions of the same scene. The first is assessed; the second is scored as a "codec" (what a
perfect stand-in for the raw image would get: the size of the rule is how often it is called
tolerable), beside known-bad distortions (power: how often they are rejected): a 10 % gain error
(the image scaled by 1.1 about the offset), an 8-bit shift (``bitdepth:bits=8,mode=shift``: the
low 8 of 16 bits dropped) and heavy JPEG (``jpeg:quality=5``: ratio 100 is not reachable within 5 % on every small scene). Two scene types:

``bright``
    phase-contrast-like: background 2000 e-, objects 600 e- darker (modest contrast).
``dim``
    fluorescence-like: background 3 e-, objects 30 e- brighter.

Prints one line per scene and a Markdown table. A benchmark: it measures and prints, it asserts
nothing.

    python benchmarks/bench_verdict.py --seeds 30 --size 256 --replicas 8 --jobs 2
    python benchmarks/bench_verdict.py --seeds 30 --first-seed 1000    # fresh seeds, to confirm
    python benchmarks/bench_verdict.py --seeds 15 --gains 1.03 1.01 --codecs jpeg:quality=50 bitdepth:bits=8
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

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


def _criterion(reason: str) -> str:
    """Which criterion of the rule a reason belongs to."""
    if "TOST" in reason:
        return "shift"
    if "|eps| < 1" in reason:
        return "band"
    if reason.startswith("objects:"):
        return "losses"
    if reason.startswith(("N_tot", "A_tot")):
        return "global"
    return "other"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=30)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--replicas", type=int, default=8)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--scenes", nargs="+", default=list(SCENES), choices=list(SCENES))
    ap.add_argument("--gains", nargs="+", type=float, default=[1.1], help="gain errors to score (factor)")
    ap.add_argument("--codecs", nargs="+", default=["bitdepth:bits=8,mode=shift", "jpeg:quality=5"],
                    help="codec specs to score")
    args = ap.parse_args()
    gains = [f"gain x{g:g}" for g in args.gains]
    names = ["second acquisition", *gains, *args.codecs]
    start = time.time()
    rows = []
    for scene in args.scenes:
        tolerable, failed = Counter(), {n: Counter() for n in names}
        null_ok, objects, unstable, loss_rates = 0, [], 0, []
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            n_obj = int(round(DENSITY * args.size ** 2))
            electrons, truth = simulate_scene((args.size, args.size), n_objects=n_obj, radius=RADIUS,
                                              rng=100 + seed, **SCENES[scene])
            raw_a = acquire(electrons, CAMERA, [seed, 1])
            raw_b = acquire(electrons, CAMERA, [seed, 2])
            labels = sparse_labels(truth, rng=seed)
            codecs = [GivenImage(names[0], raw_b),
                      *(GivenImage(n, gain_error(raw_a, CAMERA, g)) for n, g in zip(gains, args.gains)), *args.codecs]
            r = assess(raw_a, CAMERA, codecs, labels=labels, replicas=args.replicas, seed=seed, jobs=args.jobs)
            for c in r.codecs:
                tolerable[c.spec] += c.tolerable
                failed[c.spec].update({_criterion(x) for x in c.reasons})
            null_ok += r.null_tolerable[0]
            objects.append(len(r.raw))
            unstable += any(w.startswith("unstable") for w in r.warnings)
            second = r.codecs[0]
            loss_rates.append((second.loss["rate"], second.loss["null_rate"]))
            print(f"{scene} seed {seed:4d}: {len(r.raw):3d} objects; " +
                  ", ".join(f"{c.spec} {'ok' if c.tolerable else 'NOT'}" for c in r.codecs) +
                  f"; simulated second acquisition {'ok' if r.null_tolerable[0] else 'NOT'}" +
                  (f"; second acquisition rejected for: {'; '.join(second.reasons[:3])}" if second.reasons else ""),
                  flush=True)
        rates = np.array(loss_rates)
        rows.append((scene, args.seeds, np.mean(objects), tolerable, failed, null_ok, unstable, rates))
    elapsed = time.time() - start
    print(f"\n{args.seeds} scenes per type (seeds {args.first_seed}..{args.first_seed + args.seeds - 1}) of "
          f"{args.size} x {args.size}, {args.replicas} replicas, {elapsed:.0f} s\n")
    print("| scene | objects (mean) | " + " | ".join(f"{n} tolerable" for n in names) + " | simulated second |")
    print("|---|---|" + "---|" * (len(names) + 1))
    for scene, n, obj, tol, _, null_ok, _, _ in rows:
        print(f"| {scene} | {obj:.0f} | " + " | ".join(f"{tol[x]}/{n} ({tol[x] / n:.0%})" for x in names)
              + f" | {null_ok}/{n} |")
    print("\nCriteria that failed (scenes where each criterion gave a reason):\n")
    print("| scene | codec | shift | band | losses | global |")
    print("|---|---|---|---|---|---|")
    for scene, n, _, _, failed, _, _, _ in rows:
        for x in names:
            f = failed[x]
            print(f"| {scene} | {x} | {f['shift']} | {f['band']} | {f['losses']} | {f['global']} |")
    print()
    for scene, n, _, _, _, _, unstable, rates in rows:
        print(f"{scene}: unstable-segmentation warning in {unstable}/{n}; raw objects without a one-to-one partner: "
              f"second acquisition {rates[:, 0].mean():.2%}, replica pairs {rates[:, 1].mean():.2%} (mean)")


if __name__ == "__main__":
    main()
