"""The per-pixel null against true second acquisitions: how many of a second acquisition's pixels
lie beyond the null's 99th percentile of |eps| (about 1 % promised), and its mean eps (0 expected).

On simulated scenes (Poisson-Gaussian camera, known truth), each seed gives two independent raw
acquisitions of the same scene. The first is assessed by ``noisestat.assess_values``; the second
is scored as a "codec". The predictor is the image itself (a value per pixel, no halo), or with
``--predictor smooth`` a Gaussian smoothing of 1.5 px, or ``sigmoid`` a probability-like map (a
sigmoid of a 1 px smoothing). Scenes as in ``bench_verdict.py``: ``bright`` (background 2000 e-,
cells 600 e- darker) and ``dim`` (background 3 e-, cells 30 e- brighter). Cameras: ``ccd`` (K 0.5
DN/e-, read noise 2 DN = 4 e-) and ``scmos`` (K 2 DN/e-, read noise 3 DN = 1.5 e-): in the dark
the latter's shot noise is comparable to its read noise.

``--radius R`` pools sigma_raw over the neighbours within R pixels instead of the pipeline's 1;
``--radius 0`` scores with each pixel's own spread over the replicas (the rule before sigma_raw was
pooled over neighbours), for comparison. Prints one line per scene and camera; a benchmark: it
measures and prints, it asserts nothing.

    python benchmarks/bench_pixel_null.py --seeds 4
    python benchmarks/bench_pixel_null.py --seeds 4 --radius 0
    python benchmarks/bench_pixel_null.py --seeds 2 --predictor sigmoid --scenes dim --radius 3
"""

from __future__ import annotations

import argparse
import functools
import time

import numpy as np
from scipy import ndimage as ndi

import noisestat.pipeline
import noisestat.score._pixels as pixels
from noisestat.camera import CameraProfile
from noisestat.codecs._base import Codec
from noisestat.pipeline import assess_values
from noisestat.simulate import acquire, simulate_scene

CAMERAS = {"ccd": CameraProfile(gain_dn_per_e=0.5, offset_dn=100.0, read_noise_dn=2.0, bit_depth=16),
           "scmos": CameraProfile(gain_dn_per_e=2.0, offset_dn=100.0, read_noise_dn=3.0, bit_depth=16)}
SCENES = {"bright": {"background_e": 2000.0, "object_e": -600.0},
          "dim": {"background_e": 3.0, "object_e": 30.0}}
DENSITY, RADIUS = 110 / 256 ** 2, (3.0, 7.0)


class GivenImage(Codec):
    """Scores a given image as if it were a decoded one (no file needed)."""

    name, summary = "given", "an image given directly"

    def __init__(self, spec, image):
        super().__init__(spec)
        self.image = image

    def apply(self, image, profile):
        return self.result(image, self.image, None)


class Identity:
    """The image itself as the value predictor."""

    def halo(self, ndim):
        return (0,) * ndim

    def predict_values(self, region):
        return region

    def describe(self):
        return {"predictor": "identity"}


class Smooth(Identity):
    """A Gaussian smoothing of 1.5 px."""

    def halo(self, ndim):
        return (6,) * ndim

    def predict_values(self, region):
        return ndi.gaussian_filter(np.asarray(region, dtype=np.float64), 1.5, truncate=4.0)

    def describe(self):
        return {"predictor": "smooth"}


class Sigmoid(Identity):
    """A probability-like map: a sigmoid of the image smoothed by 1 px, centred 8 DN above the offset."""

    def halo(self, ndim):
        return (4,) * ndim

    def predict_values(self, region):
        s = ndi.gaussian_filter(np.asarray(region, dtype=np.float64), 1.0, truncate=4.0) - 108.0
        return 1.0 / (1.0 + np.exp(-s / 2.0))

    def describe(self):
        return {"predictor": "sigmoid"}


PREDICTORS = {"identity": Identity, "smooth": Smooth, "sigmoid": Sigmoid}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--replicas", type=int, default=10)
    ap.add_argument("--predictor", default="identity", choices=list(PREDICTORS))
    ap.add_argument("--scenes", nargs="+", default=list(SCENES), choices=list(SCENES))
    ap.add_argument("--cameras", nargs="+", default=list(CAMERAS), choices=list(CAMERAS))
    ap.add_argument("--radius", type=int, default=None,
                    help="pool sigma_raw over neighbours within this many pixels (0: each pixel's own spread)")
    args = ap.parse_args()
    if args.radius is not None:  # the pipeline's sigma_raw and its null, both with this radius
        noisestat.pipeline.pixel_sigma = functools.partial(pixels.pixel_sigma, radius=args.radius)
        noisestat.pipeline.pixel_null = functools.partial(pixels.pixel_null, radius=args.radius)
    model = PREDICTORS[args.predictor]()
    start = time.time()
    pooling = ("each pixel's own spread" if args.radius == 0 else
               f"neighbours within {args.radius} px" if args.radius else "neighbours, as the pipeline pools them")
    print(f"{args.predictor}, sigma_raw from {pooling}, "
          f"{args.size} x {args.size}, {args.replicas} replicas")
    for camera in args.cameras:
        for scene in args.scenes:
            beyond, mean, inside, null_inside = [], [], [], []
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                electrons, _ = simulate_scene((args.size, args.size), n_objects=int(round(DENSITY * args.size ** 2)),
                                              radius=RADIUS, rng=100 + seed, **SCENES[scene])
                first = acquire(electrons, CAMERAS[camera], [seed, 1])
                second = acquire(electrons, CAMERAS[camera], [seed, 2])
                r = assess_values(first, CAMERAS[camera], [GivenImage("second acquisition", second)], model,
                                  replicas=args.replicas, seed=seed)
                s = r.codecs[0].summary
                beyond.append(s["beyond_null_q99"])
                mean.append(s["mean_eps"])
                inside.append(s["frac_abs_eps_lt_1"])
                null_inside.append(r.null["frac_abs_eps_lt_1"])
            print(f"{camera:5s} {scene:6s}: beyond the null's q99 " + " ".join(f"{b:.2%}" for b in beyond)
                  + " | mean eps " + " ".join(f"{m:+.3f}" for m in mean)
                  + f" | |eps| < 1: {np.mean(inside):.3f} (null {np.mean(null_inside):.3f})", flush=True)
    print(f"{time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
