"""Replica width against the truth: for every parameter family, the variance of an object's parameter over
N replicas of one acquisition divided by its variance over M independent acquisitions of the same scene.

On simulated scenes with known truth (the bright and dim scenes of bench_verdict.py, smaller), each seed
gives one raw acquisition, assessed as the product does it (``build_reference``: the forest trained on
sparse labels, the raw objects); then M further acquisitions and N replicas of the raw one in each replica
mode are segmented and matched to the raw objects (``segment_and_match``). Per object and parameter,
both spreads are the product's sigma_raw (``replica_spread``: sd about the mean, angles modulo 180
degrees), and the ratio is (sigma_replicas / sigma_acquisitions)^2, over objects that both give a
non-zero spread for.

The table shows, per scene, mode and family (AR, Round and Compact are one family: AR stands for it),
the median ratio over objects with its bootstrap standard error and the interquartile range. The ratio of
two sample variances scatters even when the widths are equal: the median of F(N - 1, M - 1) is printed as
the value equal widths give. A benchmark: it measures and prints, it asserts nothing.

    python benchmarks/bench_replica_width.py                  # 4 seeds per scene, about 4 minutes on 2 busy cores
    python benchmarks/bench_replica_width.py --seeds 8        # docs/replicas.md's table (9 minutes)
    python benchmarks/bench_replica_width.py --seeds 8 --first-seed 100 --modes denoised-edges
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import stats

from noisestat.camera import CameraProfile
from noisestat.measure import PARAMETERS
from noisestat.measure._morphometry import ANGULAR_PARAMETERS
from noisestat.pipeline import build_reference, segment_and_match
from noisestat.replicas import MODE, MODES, draw_replica, replica_seeds
from noisestat.score._eps import replica_spread
from noisestat.score._tests import FAMILIES, family_of
from noisestat.simulate import acquire, simulate_scene, sparse_labels

CAMERA = CameraProfile(gain_dn_per_e=0.5, offset_dn=100.0, read_noise_dn=2.0, bit_depth=16)
# as bench_verdict.py: phase-contrast-like (objects darker on a bright background) and fluorescence-like
SCENES = {"bright": {"background_e": 2000.0, "object_e": -600.0},
          "dim": {"background_e": 3.0, "object_e": 30.0}}
DENSITY, RADIUS = 110 / 256 ** 2, (3.0, 7.0)
ANGULAR = np.array([p in ANGULAR_PARAMETERS for p in PARAMETERS])
# one row per family: a parameter alone, or the family's representative
ROWS = [p for p in PARAMETERS if family_of(p) == p or FAMILIES[family_of(p)][0] == p]


def scene_ratios(scene: str, seed: int, size: int, replicas: int, acquisitions: int, modes) -> dict:
    """Per mode, (objects, parameters) ratios of replica variance to true variance for one scene."""
    n_obj = int(round(DENSITY * size ** 2))
    electrons, truth = simulate_scene((size, size), n_objects=n_obj, radius=RADIUS, rng=100 + seed, **SCENES[scene])
    raw = acquire(electrons, CAMERA, [seed, 1])
    ref, _ = build_reference(raw, CAMERA, labels=sparse_labels(truth, rng=seed), replicas=2, seed=seed, jobs=1)
    raw_values = ref.raw.values
    true_stack = np.stack([segment_and_match(ref, acquire(electrons, CAMERA, [seed, 1000 + k])).values
                           for k in range(acquisitions)])
    sigma_true, _ = replica_spread(raw_values, true_stack, ANGULAR)
    out = {}
    for mode in modes:
        stack = np.stack([segment_and_match(ref, draw_replica(raw, CAMERA, s, mode=mode)).values
                          for s in replica_seeds([seed, 7], replicas)])
        sigma, _ = replica_spread(raw_values, stack, ANGULAR)
        ok = np.isfinite(sigma) & np.isfinite(sigma_true) & (sigma_true > 0) & (sigma > 0)
        out[mode] = np.where(ok, np.square(np.where(ok, sigma, 1.0) / np.where(ok, sigma_true, 1.0)), np.nan)
    return out


def _median_se(x: np.ndarray, rng: np.random.Generator, n_boot: int = 500) -> float:
    boot = np.median(rng.choice(x, size=(n_boot, len(x))), axis=1)
    return float(boot.std(ddof=1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--size", type=int, default=192)
    ap.add_argument("--replicas", type=int, default=10, help="N, replicas of the one acquisition")
    ap.add_argument("--acquisitions", type=int, default=30, help="M, independent acquisitions (the truth)")
    ap.add_argument("--scenes", nargs="+", default=list(SCENES), choices=list(SCENES))
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    args = ap.parse_args()
    start = time.time()
    ratios = {(s, m): [] for s in args.scenes for m in args.modes}
    for scene in args.scenes:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            got = scene_ratios(scene, seed, args.size, args.replicas, args.acquisitions, args.modes)
            for mode, r in got.items():
                ratios[scene, mode].append(r)
            print(f"{scene} seed {seed}: {len(next(iter(got.values())))} objects, " + ", ".join(
                f"{m}: Perim. {np.nanmedian(r[:, PARAMETERS.index('Perim.')]):.2f}" for m, r in got.items()),
                flush=True)
    equal = stats.f.median(args.replicas - 1, args.acquisitions - 1)
    print(f"\n{args.seeds} scenes per type (seeds {args.first_seed}..{args.first_seed + args.seeds - 1}) of "
          f"{args.size} x {args.size}; {args.replicas} replicas against {args.acquisitions} acquisitions; "
          f"{time.time() - start:.0f} s; default mode {MODE}")
    print(f"median over objects of var(replicas) / var(acquisitions), +- its bootstrap SE [interquartile range]; "
          f"equal widths give {equal:.2f}\n")
    cols = [(s, m) for s in args.scenes for m in args.modes]
    print("| parameter | " + " | ".join(f"{s}, {m}" for s, m in cols) + " |")
    print("|---|" + "---|" * len(cols))
    rng = np.random.default_rng(0)
    for p in ROWS:
        j = PARAMETERS.index(p)
        name = "/".join(FAMILIES[family_of(p)][1]) if family_of(p) in FAMILIES else p
        cells = []
        for key in cols:
            x = np.concatenate([r[:, j] for r in ratios[key]])
            x = x[np.isfinite(x)]
            if len(x) < 3:
                cells.append("-")
                continue
            q1, q3 = np.percentile(x, [25, 75])
            cells.append(f"{np.median(x):.2f} +- {_median_se(x, rng):.2f} [{q1:.2f}-{q3:.2f}]")
        print(f"| {name} | " + " | ".join(cells) + " |")
    n = {key: sum(int(np.isfinite(r[:, 0]).sum()) for r in ratios[key]) for key in cols}
    print("| objects (Area) | " + " | ".join(str(n[key]) for key in cols) + " |")


if __name__ == "__main__":
    main()
