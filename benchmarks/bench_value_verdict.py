"""Size and power of a value predictor's verdict: how often a true second acquisition of the scene is
called tolerable, inconclusive or not tolerable, and how often JPEG (8-bit samples, range-scaled) at
10:1 and 100:1 and an 8-bit shift of the camera's bits are.

On simulated scenes (Poisson-Gaussian camera, known truth) as in ``bench_verdict.py`` (``bright``:
background 2000 e-, cells 600 e- darker; ``dim``: background 3 e-, cells 30 e- brighter; about 110
cells per 256 x 256), each seed gives two independent raw acquisitions of the same scene; the first
is assessed by ``noisestat.assess_values`` and the second scored as a "codec". Two predictors:

``smooth``
    a Gaussian smoothing of 1.5 px (a restored image); its target is the noise-free image in DN.
``sigmoid``
    a probability-like map: a sigmoid of a 1 px smoothing, centred half-way between background and
    cell, its width an eighth of the contrast; its target is the truth mask (1 in a cell, 0 outside).

Each scene is judged on the correlation-length grid of region means (odd edge, origin drawn from the
seed) with the image's mean; the target's metrics are computed and reported, not judged. Prints one
line per scene and a Markdown table (T/I/N = tolerable / inconclusive / not tolerable); a benchmark:
it measures and prints, it asserts nothing.

    python benchmarks/bench_value_verdict.py --seeds 10
    python benchmarks/bench_value_verdict.py --seeds 10 --replicas 30
"""

from __future__ import annotations

import argparse
import time
from collections import Counter, defaultdict

import numpy as np
from scipy import ndimage as ndi

from noisestat.camera import CameraProfile
from noisestat.codecs import parse_spec
from noisestat.codecs._base import Codec
from noisestat.pipeline import assess_values
from noisestat.simulate import acquire, simulate_scene

CAMERA = CameraProfile(gain_dn_per_e=0.5, offset_dn=100.0, read_noise_dn=2.0, bit_depth=16)
SCENES = {"bright": {"background_e": 2000.0, "object_e": -600.0},
          "dim": {"background_e": 3.0, "object_e": 30.0}}
DENSITY, RADIUS = 110 / 256 ** 2, (3.0, 7.0)
JPEG_RATIOS = (10, 100)
CODECS = [*(f"jpeg ~{r}:1" for r in JPEG_RATIOS), "bitdepth:bits=8,mode=shift"]


class GivenImage(Codec):
    """Scores a given image as if it were a decoded one (no file needed)."""

    name, summary = "given", "an image given directly"

    def __init__(self, spec, image):
        super().__init__(spec)
        self.image = image

    def apply(self, image, profile):
        return self.result(image, self.image, None)


class Smooth:
    """A Gaussian smoothing of 1.5 px."""

    def halo(self, ndim):
        return (6,) * ndim

    def predict_values(self, region):
        return ndi.gaussian_filter(np.asarray(region, dtype=np.float64), 1.5, truncate=4.0)

    def describe(self):
        return {"predictor": "smooth"}


class Sigmoid(Smooth):
    """P(cell): a sigmoid of a 1 px smoothing, centred half-way between background and cell."""

    def __init__(self, scene):
        s = SCENES[scene]
        self.centre = CAMERA.offset_dn + CAMERA.gain_dn_per_e * (s["background_e"] + s["object_e"] / 2)
        self.width = CAMERA.gain_dn_per_e * s["object_e"] / 8  # signed: a darker cell flips the sigmoid

    def halo(self, ndim):
        return (4,) * ndim

    def predict_values(self, region):
        s = ndi.gaussian_filter(np.asarray(region, dtype=np.float64), 1.0, truncate=4.0)
        return 1.0 / (1.0 + np.exp(-(s - self.centre) / self.width))

    def describe(self):
        return {"predictor": "sigmoid", "centre": self.centre, "width": self.width}


def jpeg_near(image: np.ndarray, ratio: float):
    """The 8-bit JPEG (range-scaled, as ``jpeg:quality=q``) whose ratio is nearest ``ratio`` (in log):
    ``jpeg:ratio=`` refuses a target it cannot reach within 5 %, which a dim scene's few levels often
    cannot at 100:1. Returns (decoded image, quality, ratio reached)."""
    best = None
    for quality in range(1, 101):
        result = parse_spec(f"jpeg:quality={quality}").apply(image, CAMERA)
        gap = abs(np.log(result.compression_ratio / ratio))
        if best is None or gap < best[0]:
            best = (gap, result.decoded, quality, result.compression_ratio)
    return best[1:]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--objects", type=int, default=80, help="cells per scene (the image's size follows)")
    ap.add_argument("--replicas", type=int, default=10)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--scenes", nargs="+", default=list(SCENES), choices=list(SCENES))
    ap.add_argument("--predictors", nargs="+", default=["smooth", "sigmoid"], choices=["smooth", "sigmoid"])
    ap.add_argument("--margin", default=None, help="the verdict's margins (as noisestat assess --margin)")
    args = ap.parse_args()
    names = ["second acquisition", *CODECS]
    size = int(round(np.sqrt(args.objects / DENSITY)))
    start = time.time()
    table = defaultdict(Counter)
    undecided = defaultdict(Counter)
    null = defaultdict(Counter)
    found = defaultdict(list)
    reached = defaultdict(list)
    for predictor in args.predictors:
        for scene in args.scenes:
            model = Smooth() if predictor == "smooth" else Sigmoid(scene)
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                electrons, truth = simulate_scene((size, size), n_objects=args.objects, radius=RADIUS, rng=100 + seed,
                                                  **SCENES[scene])
                raw_a = acquire(electrons, CAMERA, [seed, 1])
                raw_b = acquire(electrons, CAMERA, [seed, 2])
                target = (CAMERA.offset_dn + CAMERA.gain_dn_per_e * electrons if predictor == "smooth"
                          else (truth > 0).astype(np.float64))
                jpegs = [jpeg_near(raw_a, ratio) for ratio in JPEG_RATIOS]
                reached[predictor, scene].append([j[2] for j in jpegs])
                codecs = [GivenImage(names[0], raw_b), *(GivenImage(n, j[0]) for n, j in zip(CODECS, jpegs)),
                          *CODECS[len(JPEG_RATIOS):]]
                for variant, tgt in (("grid", target),):
                    r = assess_values(raw_a, CAMERA, codecs, model,
                                      replicas=args.replicas, seed=seed, jobs=args.jobs, target=tgt,
                                      margins=args.margin)
                    key = (predictor, scene, variant)
                    for c in r.codecs:
                        table[key, c.spec][c.outcome] += 1
                        if c.outcome == "inconclusive":
                            undecided[key, c.spec].update(k["parameter"] if k["criterion"] == "global" else
                                                          k["criterion"] for k in c.verdict.criteria
                                                          if k["decision"] == "undecided")
                    null[key][r.judged["null_verdict"]["outcome"]] += 1
                    regions = r.judged["regions"]
                    found[key].append((regions["n_regions"], regions["edge_px"], regions["correlation_length_px"]))
                    print(f"{predictor} {scene} {variant} seed {seed}: {regions['n_regions']} regions of "
                          f"{regions['edge_px']} px (L {regions['correlation_length_px']:.2f}); "
                          + ", ".join(f"{c.spec} {c.outcome}" for c in r.codecs)
                          + f"; simulated second {r.judged['null_verdict']['outcome']}", flush=True)
    elapsed = time.time() - start
    print(f"\n{args.seeds} scenes per row (seeds {args.first_seed}..{args.first_seed + args.seeds - 1}), {size} x {size} "
          f"px, {args.objects} cells, {args.replicas} replicas, margins {args.margin or 'default'}, {elapsed:.0f} s\n")
    print("| predictor | scene | judged | regions (edge, L) | " + " | ".join(names) + " | simulated second |")
    print("|---|---|---|---|" + "---|" * (len(names) + 1))

    def cell(counts):
        return f"{counts['tolerable']}/{counts['inconclusive']}/{counts['not tolerable']}"

    for predictor in args.predictors:
        for scene in args.scenes:
            for variant in ("grid",):
                key = (predictor, scene, variant)
                n, edge, length = np.mean(found[key], axis=0)
                print(f"| {predictor} | {scene} | {variant} | {n:.0f} ({edge:.0f} px, {length:.2f}) | "
                      + " | ".join(cell(table[key, x]) for x in names) + f" | {cell(null[key])} |")
    print("\nJPEG ratios reached (mean over scenes): " + "; ".join(
        f"{p} {s}: " + ", ".join(f"{x:.1f}" for x in np.mean(v, axis=0)) for (p, s), v in reached.items()))
    print("\nCriteria left undecided in the inconclusive verdicts:\n")
    for (key, spec), counts in sorted(undecided.items()):
        print(f"{' '.join(key)} {spec}: " + ", ".join(f"{k} {v}" for k, v in counts.most_common()))


if __name__ == "__main__":
    main()
