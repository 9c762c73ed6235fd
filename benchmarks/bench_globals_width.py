"""The replicas' spread of the globals (N_tot, A_tot) against their true spread over independent
acquisitions of the same simulated scene.

Per seed: one acquisition is assessed as the raw image (its 10 replicas give sigma_raw of N_tot and
A_tot), then 30 independent acquisitions of the same scene are segmented with the same forest and
matched to the raw objects; the ratio of the two variances is printed (with 9 and 29 degrees of
freedom it scatters widely, median 0.95 when the widths are equal: read many seeds). Scenes as in
benchmarks/bench_verdict.py. It measures and prints; it asserts nothing.

    python benchmarks/bench_globals_width.py --scene dim --objects 300 --seeds 8
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from bench_verdict import CAMERA, DENSITY, RADIUS, SCENES
from noisestat.pipeline import build_reference, segment_and_match
from noisestat.simulate import acquire, simulate_scene, sparse_labels


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", choices=list(SCENES), default="dim")
    ap.add_argument("--objects", type=int, default=300)
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--acquisitions", type=int, default=30)
    ap.add_argument("--replicas", type=int, default=10)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    size = int(round(math.sqrt(args.objects / DENSITY)))
    ratios = []
    for seed in range(args.seeds):
        electrons, truth = simulate_scene((size, size), n_objects=args.objects, radius=RADIUS, rng=100 + seed,
                                          **SCENES[args.scene])
        raw = acquire(electrons, CAMERA, [seed, 1])
        ref, _ = build_reference(raw, CAMERA, labels=sparse_labels(truth, rng=seed), replicas=args.replicas,
                                 seed=seed, jobs=args.jobs)
        true = np.array([segment_and_match(ref, acquire(electrons, CAMERA, [seed, 100 + k])).globals
                         for k in range(args.acquisitions)])
        rep, tru = ref.replica_globals.std(axis=0, ddof=1), true.std(axis=0, ddof=1)
        ratios.append((rep / tru) ** 2)
        print(f"{args.scene} seed {seed}: {len(ref.raw)} objects; sd over replicas N_tot {rep[0]:.2f}, A_tot "
              f"{rep[1]:.1f} px; over {args.acquisitions} acquisitions N_tot {tru[0]:.2f}, A_tot {tru[1]:.1f} px; "
              f"variance ratio {ratios[-1][0]:.2f}, {ratios[-1][1]:.2f}", flush=True)
    r = np.array(ratios)
    print(f"\nvariance ratio replicas / acquisitions over {args.seeds} seeds: N_tot median {np.median(r[:, 0]):.2f} "
          f"(geometric mean {np.exp(np.log(r[:, 0]).mean()):.2f}), A_tot median {np.median(r[:, 1]):.2f} "
          f"(geometric mean {np.exp(np.log(r[:, 1]).mean()):.2f}); equal widths: median 0.95")


if __name__ == "__main__":
    main()
