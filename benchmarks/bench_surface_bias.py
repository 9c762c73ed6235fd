"""The relative bias of SurfaceArea (noisestat.measure.measure_regions_3d: intrinsic volumes from the
2x2x2 configuration histogram, 13-direction Crofton weights for the voxel spacing) beside marching
cubes on the binary mask (skimage.measure.marching_cubes at level 0.5 with the spacing, then
mesh_surface_area), on digitized balls and ellipsoids.

Shapes: balls of radius r, and ellipsoids of radii (0.5 r, 0.75 r, r) along (z, y, x); r is in xy
voxels (xy spacing 1), the z spacing 1 (isotropic) or 4. Each shape is digitized (voxel centres
inside) at ``--offsets`` random sub-voxel centres (seeded); the bias is the mean of
(estimate - exact surface) / exact surface over them (a digitization that holds no voxel is left
out), the exact surface of an ellipsoid being
4 pi a b c R_G(a^-2, b^-2, c^-2). With ``--volume`` it also measures every object of a
512 x 512 x 128 label volume of about 3000 balls and prints the wall and CPU time and the peak of
memory traced beyond the volume itself.
It measures and prints a markdown table; it asserts nothing.

    python benchmarks/bench_surface_bias.py --offsets 10
    python benchmarks/bench_surface_bias.py --offsets 0 --volume
"""

from __future__ import annotations

import argparse
import math
import time
import tracemalloc

import numpy as np
from scipy.special import elliprg
from skimage.measure import marching_cubes, mesh_surface_area

from noisestat.measure import measure_regions_3d

RADII = (3, 5, 8, 12, 20, 30)
SHAPES = {"ball": (1.0, 1.0, 1.0), "ellipsoid": (0.5, 0.75, 1.0)}
SPACINGS = {"isotropic": (1.0, 1.0, 1.0), "z x4": (4.0, 1.0, 1.0)}


def digitize(radii, spacing, centre):
    """Mask of the voxels whose centres lie inside the ellipsoid of ``radii`` (z, y, x, physical)
    centred at ``centre`` (physical, relative to a voxel centre), with a margin of 2 voxels."""
    spacing = np.asarray(spacing)
    half = (np.ceil((np.asarray(radii) + np.abs(centre)) / spacing) + 2).astype(int)
    axes = [(np.arange(-h, h + 1) * s - c) / r for h, s, c, r in zip(half, spacing, centre, radii)]
    z, y, x = np.meshgrid(*axes, indexing="ij", sparse=True)
    return (z ** 2 + y ** 2 + x ** 2 <= 1.0).astype(np.uint8)


def exact_surface(a, b, c):
    return 4.0 * math.pi * a * b * c * float(elliprg(a ** -2, b ** -2, c ** -2))


def mesh_surface(mask, spacing):
    verts, faces, _, _ = marching_cubes(np.pad(mask, 1).astype(np.float32), level=0.5, spacing=spacing)
    return mesh_surface_area(verts, faces)


def bias_table(offsets: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    lines = ["| shape | voxels (z, y, x) | r (xy voxels) | SurfaceArea bias | marching cubes bias |",
             "|---|---|---|---:|---:|"]
    for shape, factors in SHAPES.items():
        for name, spacing in SPACINGS.items():
            for r in RADII:
                radii = tuple(f * r for f in factors)
                ours, mesh = [], []
                for _ in range(max(offsets, 1)):
                    centre = rng.uniform(-0.5, 0.5, 3) * np.asarray(spacing) if offsets else np.zeros(3)
                    mask = digitize(radii, spacing, centre)
                    if not mask.any():                    # a thin ellipsoid between two z planes
                        continue
                    truth = exact_surface(*radii)
                    ours.append(measure_regions_3d(mask, spacing=spacing)[1]["SurfaceArea"][0] / truth - 1)
                    mesh.append(mesh_surface(mask, spacing) / truth - 1)
                if not ours:
                    lines.append(f"| {shape} | {name} {spacing} | {r} | empty | empty |")
                    continue
                lines.append(f"| {shape} | {name} {spacing} | {r} | {100 * np.mean(ours):+.1f} % "
                             f"| {100 * np.mean(mesh):+.1f} % |")
    return lines


def volume_run(seed: int = 1) -> str:
    """About 3000 balls of radius 2-8 voxels scattered in a 128 x 512 x 512 uint16 label volume."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((128, 512, 512), np.uint16)
    n = 0
    for _ in range(3000):
        r = rng.uniform(2, 8)
        c = rng.uniform([r, r, r], [128 - r, 512 - r, 512 - r])
        lo = np.floor(c - r).astype(int)
        hi = np.minimum(np.ceil(c + r).astype(int) + 1, labels.shape)
        z, y, x = np.ogrid[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        ball = (z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2 <= r * r
        view = labels[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        n += 1
        view[ball & (view == 0)] = n
    tracemalloc.start()
    start, cpu = time.perf_counter(), time.process_time()
    ids, table = measure_regions_3d(labels, spacing=(2.0, 0.5, 0.5))
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return (f"512 x 512 x 128 uint16 volume ({labels.nbytes / 2 ** 20:.0f} MiB), {len(ids)} objects: "
            f"{seconds:.1f} s wall, {cpu:.1f} s CPU, peak traced memory {peak / 2 ** 20:.0f} MiB")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--offsets", type=int, default=10, help="random sub-voxel centres per shape (0: centred)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--volume", action="store_true", help="also time a 512 x 512 x 128 volume of ~3000 objects")
    args = ap.parse_args()
    start = time.perf_counter()
    print("\n".join(bias_table(args.offsets, args.seed)))
    print(f"\n({time.perf_counter() - start:.0f} s)")
    if args.volume:
        print(volume_run())


if __name__ == "__main__":
    main()
