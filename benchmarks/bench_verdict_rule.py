"""How often each criterion of the verdict shows a true second acquisition within its margin, against
the number of objects, on eps drawn from the distribution a second acquisition has in theory.

A second acquisition's eps is sqrt(2) t(N - 1) per object and parameter (two independent draws over
sigma from N replicas); the primary parameters of one object are correlated (0.36 between any two
here, a shared factor of 0.6). The shift test (TOST of the trimmed mean) is run per parameter, the
spread test per parameter (statsmodels' ratio test of the band share) and pooled over the primary
parameters (objects as units, each paired with its 6 reference rows: 5 replica pairs and the extra
pair), at several margins. Quick (seconds): it explains the default margins of
docs/verdict.md. The whole rule on simulated images is benchmarks/bench_verdict.py. It measures and
prints; it asserts nothing.

    python benchmarks/bench_verdict_rule.py --draws 1000
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from noisestat.score import (ALPHA, band_noninferiority, clustered_margin_test, keep_for_spread, location_tests,
                             object_shares)


def second_acquisition(rng, n, k, replicas, common=0.6):
    z = common * rng.standard_normal((n, 1)) + math.sqrt(1 - common ** 2) * rng.standard_normal((n, k))
    return math.sqrt(2) * z / np.sqrt(rng.chisquare(replicas - 1, (n, k)) / (replicas - 1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--replicas", type=int, default=10)
    ap.add_argument("--objects", nargs="+", type=int, default=[30, 50, 80, 150, 300])
    ap.add_argument("--primary", type=int, default=5, help="primary parameters per object")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    shifts, spreads = (0.5, 0.75, 1.0), (1.25, 1.5, 2.0)
    print(f"share of {args.draws} draws in which a true second acquisition is shown within the margin "
          f"({args.replicas} replicas, {args.primary} primary parameters)\n")
    print("| objects | " + " | ".join(f"shift {d:g}" for d in shifts) + " | "
          + " | ".join(f"spread {y:g} per parameter" for y in spreads) + " | "
          + " | ".join(f"spread {y:g} pooled" for y in spreads) + " |")
    print("|---|" + "---|" * (2 * len(spreads) + len(shifts)))
    for n in args.objects:
        shift_ok = {d: 0 for d in shifts}
        per_ok = {y: 0 for y in spreads}
        pooled_ok = {y: 0 for y in spreads}
        for _ in range(args.draws):
            eps = second_acquisition(rng, n, args.primary, args.replicas)
            null = second_acquisition(rng, 6 * n, args.primary, args.replicas)
            for d in shifts:
                shift_ok[d] += location_tests(eps[:, 0], margin=d)["p_equivalent"] < ALPHA
            inside, inside0 = int((np.abs(eps[:, 0]) < 1).sum()), int((np.abs(null[:, 0]) < 1).sum())
            for y in spreads:
                keep = keep_for_spread(y, args.replicas)
                per_ok[y] += band_noninferiority(inside, n, inside0, 6 * n, keep=keep) < ALPHA
                pooled_ok[y] += clustered_margin_test(object_shares(eps), object_shares(null).reshape(6, n),
                                                      ratio=keep)[0] < ALPHA
        cells = ([f"{shift_ok[d] / args.draws:.1%}" for d in shifts] + [f"{per_ok[y] / args.draws:.1%}" for y in spreads]
                 + [f"{pooled_ok[y] / args.draws:.1%}" for y in spreads])
        print(f"| {n} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
