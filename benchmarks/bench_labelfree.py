"""A label-free model's training time and what it learns, on simulated pairs.

The input is one acquisition of a simulated scene (Poisson-Gaussian camera, ``noisestat.simulate``),
the target the scene's expected electrons smoothed by a Gaussian of ``--sigma`` px: the model must
learn the camera's gain and offset and remove its noise. It is trained on one pair of ``--size``
pixels a side with ``noisestat.predict.train_labelfree`` (its defaults unless ``--steps`` says
otherwise; one CPU thread), then predicts a held-out pair (another scene, another acquisition).

Printed: the training time (wall clock, and the process's CPU time, which a busy machine changes
less) and final loss, and on the held-out pair the MSE, PSNR (peak: the
target's range) and Pearson correlation of the prediction against the target, beside the same
metrics for the input itself mapped to the target's units by its best affine fit (what no learning
but a calibration gives). With ``--train-codec SPEC`` the model is trained on the inputs coded and
decoded by that codec and predicts the held-out raw input. A benchmark: it measures and prints, it
asserts nothing.

    python benchmarks/bench_labelfree.py
    python benchmarks/bench_labelfree.py --steps 100 --size 128
    python benchmarks/bench_labelfree.py --train-codec jpeg:quality=50
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import ndimage as ndi

from noisestat.camera import CameraProfile
from noisestat.predict import train_labelfree
from noisestat.predict._labelfree import DEFAULT_STEPS
from noisestat.simulate import acquire, simulate_scene

CAMERA = CameraProfile(gain_dn_per_e=0.5, offset_dn=100.0, read_noise_dn=2.0, bit_depth=16)


def simulated_pair(size: int, seed: int, sigma: float):
    electrons, _ = simulate_scene((size, size), rng=seed)
    return acquire(electrons, CAMERA, rng=seed + 1000), ndi.gaussian_filter(electrons, sigma)


def metrics(values: np.ndarray, target: np.ndarray) -> dict:
    mse = float(np.mean((values - target) ** 2))
    peak = float(target.max() - target.min())
    return {"mse": mse, "psnr_db": 10 * np.log10(peak ** 2 / mse),
            "pearson": float(np.corrcoef(values.ravel(), target.ravel())[0, 1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="side of the training and held-out pairs (px)")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sigma", type=float, default=2.0, help="the target's smoothing (px)")
    parser.add_argument("--train-codec", default=None, metavar="SPEC")
    args = parser.parse_args()

    x, y = simulated_pair(args.size, 1, args.sigma)
    started, cpu = time.perf_counter(), time.process_time()
    model = train_labelfree(x, y, steps=args.steps, seed=args.seed, codec=args.train_codec, profile=CAMERA)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    t = model.header["training"]
    print(f"trained on a {args.size}x{args.size} pair: {t['steps']} steps, batch {t['batch']}, patch {t['patch']}, "
          f"width {model.width}, depth {model.depth}, {t['threads']} thread, codec {t['codec']}: {seconds:.1f} s "
          f"({cpu:.1f} s of CPU); "
          f"final loss {t['loss']:.4f} (first {t['first_loss']:.3f})")

    held_x, held_y = simulated_pair(args.size, 2, args.sigma)
    started = time.perf_counter()
    predicted = model.predict_values(held_x)
    predict_s = time.perf_counter() - started
    design = np.c_[held_x.ravel().astype(float), np.ones(held_x.size)]
    calibrated = (design @ np.linalg.lstsq(design, held_y.ravel(), rcond=None)[0]).reshape(held_y.shape)
    for name, values in (("prediction", predicted), ("input, affine fit", calibrated)):
        m = metrics(values, held_y)
        print(f"held-out {name:18s} MSE {m['mse']:9.1f} e-^2   PSNR {m['psnr_db']:5.1f} dB   "
              f"Pearson {m['pearson']:.4f}")
    print(f"prediction of the held-out {args.size}x{args.size} image: {predict_s:.2f} s")


if __name__ == "__main__":
    main()
