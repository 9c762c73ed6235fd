"""Size and power of the verdict on volumes: how often a true second acquisition of the same simulated
volume is called tolerable, inconclusive or not tolerable, and how often known-bad distortions are.

Each seed simulates nuclei-like ellipsoids (semi-axes 2.5 to 4 um, bright on a dim background, blurred by
the optics) in anisotropic voxels of 2 x 0.5 x 0.5 um (z, y, x), 16 planes deep, at a fixed density (one
nucleus per 2000 um^3: the volume's width follows the number of objects), and acquires it twice with
independent noise (Poisson-Gaussian camera). The first acquisition is assessed with
``noisestat.assess(..., spacing=...)``, its objects measured in 3D (noisestat.score.VOLUME_PRIMARY judged).
Scored as codecs:

``second acquisition``
    the second acquisition, given as a decoded file (``file:path=``): what a perfect stand-in gets;
``one z plane``
    the second acquisition moved by one z plane (``np.roll`` along z, 2 um): every nucleus moved by a
    fraction of its height, as a plane-by-plane codec that lost a plane's place would do;
``bitdepth:bits=8,mode=shift``
    the low 8 of 16 bits dropped;
``--codecs``
    a lossy codec at two settings: JPEG XL at butteraugli distances 1 and 5 by default (coded plane by
    plane; the table's header gives each one's mean compression ratio).

The verdict is given even where a warning would withhold it (``verdict_anyway``), so that every scene counts.

Prints one line per scene and a Markdown table of outcome counts per number of objects (the last
column: the simulated second acquisition, a pair of replicas, judged by the same rule). A benchmark: it
measures and prints, it asserts nothing.

    python benchmarks/bench_volume_verdict.py                                   # 3 seeds of 20, 40, 80 nuclei
    python benchmarks/bench_volume_verdict.py --seeds 10 --objects 20 40 80 --replicas 10
    python benchmarks/bench_volume_verdict.py --seeds 5 --first-seed 1000      # fresh seeds, to confirm
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import tifffile
from scipy import ndimage as ndi

from noisestat.camera import CameraProfile
from noisestat.pipeline import assess
from noisestat.simulate import acquire

CAMERA = CameraProfile(gain_dn_per_e=0.5, offset_dn=100.0, read_noise_dn=2.0, bit_depth=16)
SPACING = (2.0, 0.5, 0.5)                  # z, y, x in micrometres
PLANES = 16                                 # 32 um deep
UM3_PER_OBJECT = 2000.0                     # density of the nuclei
RADIUS_UM = (2.5, 4.0)                      # semi-axes of the ellipsoids
BACKGROUND_E, OBJECT_E = 20.0, 400.0        # expected photo-electrons


def nuclei_volume(n_objects: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Expected electrons and true labels of ``n_objects`` non-touching ellipsoids (fewer if they do not
    fit) in a volume of PLANES planes whose width gives one object per UM3_PER_OBJECT."""
    rng = np.random.default_rng(rng)
    spacing = np.asarray(SPACING)
    side_um = np.sqrt(n_objects * UM3_PER_OBJECT / (PLANES * spacing[0]))
    side = int(round(side_um / spacing[1]))
    shape = (PLANES, side, side)
    grid = np.indices(shape) * spacing[:, None, None, None]
    extent = np.asarray(shape) * spacing
    truth = np.zeros(shape, np.int32)
    centres = []
    for _ in range(500 * n_objects):
        if len(centres) == n_objects:
            break
        semi = rng.uniform(*RADIUS_UM, 3)
        centre = rng.uniform(semi, extent - semi - spacing)
        if all(np.linalg.norm(centre - c) > 2 * RADIUS_UM[1] + 1.0 for c in centres):
            centres.append(centre)
            truth[sum(((g - c) / s) ** 2 for g, c, s in zip(grid, centre, semi)) <= 1] = len(centres)
    electrons = ndi.gaussian_filter(np.where(truth > 0, OBJECT_E, BACKGROUND_E), (0.5, 1.0, 1.0))
    return electrons, truth


def scribbles(truth: np.ndarray, rng) -> np.ndarray:
    """Sparse labels: 2 % of the voxels well outside the nuclei (1), 10 % of those well inside (2)."""
    rng = np.random.default_rng(rng)
    obj = truth > 0
    pick = rng.random(truth.shape)
    labels = np.zeros(truth.shape, np.uint8)
    labels[~ndi.binary_dilation(obj, iterations=2) & (pick < 0.02)] = 1
    labels[ndi.binary_erosion(obj) & (pick < 0.1)] = 2
    return labels


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--objects", nargs="+", type=int, default=[20, 40, 80],
                    help="nuclei per volume (the volume's width follows)")
    ap.add_argument("--replicas", type=int, default=6)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--codecs", nargs="+", default=["jpegxl:distance=1", "jpegxl:distance=5"],
                    help="lossy codec specs to score beside the fixed ones")
    ap.add_argument("--margin", default=None, help="the verdict's margins (as noisestat assess --margin)")
    args = ap.parse_args()
    names = ["second acquisition", "one z plane", "bitdepth:bits=8,mode=shift", *args.codecs]
    start = time.time()
    table = defaultdict(Counter)       # (objects, name) -> outcome counts
    undecided = defaultdict(Counter)   # (objects, name) -> criteria left undecided
    null_outcomes = defaultdict(Counter)
    ratios = defaultdict(list)         # name -> compression ratios (codecs that report one)
    found, placed, shapes = defaultdict(list), defaultdict(list), {}
    with tempfile.TemporaryDirectory(prefix="noisestat-bench-") as tmp:
        for n_obj in args.objects:
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                electrons, truth = nuclei_volume(n_obj, [seed, n_obj])
                raw = acquire(electrons, CAMERA, [seed, n_obj, 1])
                second = acquire(electrons, CAMERA, [seed, n_obj, 2])
                files = {"second acquisition": second, "one z plane": np.roll(second, 1, axis=0)}
                specs = []
                for name in names:
                    if name in files:
                        path = Path(tmp) / f"{name.replace(' ', '_')}.tif"
                        tifffile.imwrite(path, files[name])
                        specs.append(f"file:path={path}")
                    else:
                        specs.append(name)
                r = assess(raw, CAMERA, specs, labels=scribbles(truth, [seed, n_obj, 3]), replicas=args.replicas,
                           seed=seed, jobs=args.jobs, spacing=SPACING, margins=args.margin, verdict_anyway=True)
                for name, c in zip(names, r.codecs):
                    table[n_obj, name][c.outcome] += 1
                    if c.compression_ratio is not None:
                        ratios[name].append(c.compression_ratio)
                    if c.outcome == "inconclusive":
                        undecided[n_obj, name].update(
                            k["criterion"] for k in c.verdict.criteria if k["decision"] == "undecided")
                null_outcomes[n_obj][r.null_verdict.outcome] += 1
                found[n_obj].append(len(r.raw))
                placed[n_obj].append(int(truth.max()))
                shapes[n_obj] = truth.shape
                print(f"{n_obj:3d} nuclei (placed {truth.max()}, found {len(r.raw):3d}, {truth.shape}) seed {seed:4d}: "
                      + ", ".join(f"{n} {c.outcome}" for n, c in zip(names, r.codecs))
                      + f"; simulated second acquisition {r.null_verdict.outcome}", flush=True)
    elapsed = time.time() - start
    print(f"\n{args.seeds} volumes per row (seeds {args.first_seed}..{args.first_seed + args.seeds - 1}), voxels "
          f"{SPACING[0]:g} x {SPACING[1]:g} x {SPACING[2]:g} um, {args.replicas} replicas, margins "
          f"{args.margin or 'default'}, {elapsed:.0f} s\n")
    print("Outcomes (T tolerable / I inconclusive / N not tolerable):\n")
    heads = [f"{n} ({np.mean(ratios[n]):.1f}:1)" if ratios[n] else n for n in names]
    print("| nuclei (found) | voxels (z, y, x) | " + " | ".join(heads) + " | simulated second |")
    print("|---|---|" + "---|" * (len(names) + 1))

    def cell(counts):
        return f"{counts['tolerable']}/{counts['inconclusive']}/{counts['not tolerable']}"
    for n_obj in args.objects:
        print(f"| {np.mean(placed[n_obj]):.0f} ({np.mean(found[n_obj]):.0f}) | {' x '.join(map(str, shapes[n_obj]))} | "
              + " | ".join(cell(table[n_obj, x]) for x in names) + f" | {cell(null_outcomes[n_obj])} |")
    print("\nCriteria left undecided in the inconclusive verdicts:\n")
    for (n_obj, name), counts in sorted(undecided.items()):
        print(f"{n_obj} {name}: " + ", ".join(f"{k} {v}" for k, v in counts.most_common()))


if __name__ == "__main__":
    main()
