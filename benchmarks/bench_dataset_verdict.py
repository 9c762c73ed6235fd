"""Size and power of the pooled (dataset) verdict against the number of fields: how often a dataset whose
"decoded" images are true second raw acquisitions is called tolerable, inconclusive or not tolerable,
and how often JPEG at 10:1 and 100:1 (8 bit) are.

A pool of simulated fields (the ``bright`` scene of benchmarks/bench_verdict.py: Poisson-Gaussian camera,
known truth, about ``--objects`` cells per field) is assessed once, field by field, each with its own
seed: the first acquisition is the raw image; a second, independent acquisition of the same scene is
scored as a codec beside the JPEG settings. Datasets of 2, 5, 10 ... fields are then drawn from the pool
(``--draws`` random subsets per size, without repeating a field within a dataset) and judged by
:func:`noisestat.score.judge_dataset`, as ``noisestat assess-dataset`` pools its fields. Subsets of one
pool share fields, so the shares are those of this pool; a larger pool (``--pool``) makes them closer to
the rule's. A benchmark: it measures and prints, it asserts nothing.

    python benchmarks/bench_dataset_verdict.py --pool 12 --sizes 2 5 10 --draws 300
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

import numpy as np

from noisestat.camera import CameraProfile
from noisestat.codecs._base import Codec
from noisestat.dataset import _field_scores, judge_inputs
from noisestat.pipeline import assess
from noisestat.score import Margins, judge_dataset
from noisestat.simulate import acquire, simulate_scene, sparse_labels

CAMERA = CameraProfile(gain_dn_per_e=0.5, offset_dn=100.0, read_noise_dn=2.0, bit_depth=16)
SCENE = {"background_e": 2000.0, "object_e": -600.0}
DENSITY, RADIUS = 110 / 256 ** 2, (3.0, 7.0)
SECOND = "second acquisition"


class GivenImage(Codec):
    """Scores a given image as if it were a decoded one (no file needed)."""

    name, summary = "given", "an image given directly"

    def __init__(self, spec, image):
        super().__init__(spec)
        self.image = image

    def apply(self, image, profile):
        return self.result(image, self.image, None)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pool", type=int, default=12, help="fields simulated and assessed")
    ap.add_argument("--sizes", nargs="+", type=int, default=[2, 5, 10], help="fields per dataset")
    ap.add_argument("--draws", type=int, default=300, help="datasets drawn per size")
    ap.add_argument("--objects", type=int, default=60, help="cells per field (the field's size follows)")
    ap.add_argument("--replicas", type=int, default=10)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--codecs", nargs="+", default=["jpeg:ratio=10", "jpeg:ratio=100"])
    ap.add_argument("--first-seed", type=int, default=0)
    args = ap.parse_args()
    size = int(round(np.sqrt(args.objects / DENSITY)))
    names = [SECOND, *args.codecs]
    start = time.time()
    pool = []
    for seed in range(args.first_seed, args.first_seed + args.pool):
        electrons, truth = simulate_scene((size, size), n_objects=args.objects, radius=RADIUS, rng=100 + seed, **SCENE)
        raw_a, raw_b = acquire(electrons, CAMERA, [seed, 1]), acquire(electrons, CAMERA, [seed, 2])
        r = assess(raw_a, CAMERA, [GivenImage(SECOND, raw_b), *args.codecs], labels=sparse_labels(truth, rng=seed),
                   replicas=args.replicas, seed=seed, jobs=args.jobs)
        pool.append(_field_scores(r.summary(), names))
        print(f"field {seed}: {len(r.raw)} objects; " + ", ".join(f"{c.spec} {c.outcome}" for c in r.codecs)
              + f"; simulated second acquisition {r.null_verdict.outcome}", flush=True)
    assessed = time.time() - start
    primary = pool[0]["primary"]
    rng = np.random.default_rng(args.first_seed)
    table = {}
    for k in args.sizes:
        counts = {n: Counter() for n in [*names, "simulated second"]}
        for _ in range(args.draws):
            chosen = [pool[i] for i in rng.choice(len(pool), size=min(k, len(pool)), replace=False)]
            for n in names:
                fields = [judge_inputs(f, n) for f in chosen]
                v = judge_dataset(fields, Margins(), args.replicas, primary)
                counts[n][v["outcome"]] += 1
                if n == SECOND:
                    counts["simulated second"][v["null"]["outcome"]] += 1
        table[k] = counts
    print(f"\npool of {args.pool} fields ({size} x {size} px, about {args.objects} cells), {args.replicas} replicas, "
          f"{args.draws} datasets per size; fields assessed in {assessed:.0f} s, {time.time() - start:.0f} s in all\n")
    print("Outcomes in % of datasets (tolerable / inconclusive / not tolerable):\n")
    print("| fields | " + " | ".join(names) + " | simulated second acquisitions |")
    print("|---|" + "---|" * (len(names) + 1))
    for k, counts in table.items():
        def cell(c):
            total = sum(c.values()) or 1
            return "/".join(f"{100 * c[o] / total:.0f}" for o in ("tolerable", "inconclusive", "not tolerable"))
        print(f"| {k} | " + " | ".join(cell(counts[n]) for n in [*names, "simulated second"]) + " |")
    per_field = Counter((n, f["codecs"][n]["outcome"]) for f in pool for n in names)
    print("\nPer field (T/I/N out of the pool): " + ", ".join(
        f"{n} {per_field[n, 'tolerable']}/{per_field[n, 'inconclusive']}/{per_field[n, 'not tolerable']}"
        for n in names))


if __name__ == "__main__":
    main()
