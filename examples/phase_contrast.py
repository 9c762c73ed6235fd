"""Assess codecs on a real phase-contrast image, given by path, with the Python API.

    python examples/phase_contrast.py ../shared/data/usiigaci-phase-contrast/set3/raw.tif \
        --mask ../shared/data/usiigaci-phase-contrast/set3/instances_ids.png -o pc-results

Sparse labels come from ``--labels`` (0 unlabelled, 1 background, 2 object) or are drawn from an
instance mask (``--mask``): 1 % of the pixels, well inside cells (object) or well away from them
(background), as a user's scribbles would be.

The camera profile comes from ``--camera``. Without one, the script estimates a rough
Poisson-Gaussian line var(y) = a*y + b from the image itself (local variances of the flattest
places, binned by local mean): enough to try the method, not a calibration.
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import ndimage as ndi

import noisestat


def labels_from_instances(instances: np.ndarray, *, fraction=0.01, seed=0) -> np.ndarray:
    """Sparse labels: a random ``fraction`` of pixels, 3 px inside cells or 4 px away from them."""
    rng = np.random.default_rng(seed)
    cells = instances > 0
    pick = rng.random(instances.shape) < fraction
    labels = np.zeros(instances.shape, np.uint8)
    labels[pick & ~ndi.binary_dilation(cells, iterations=4)] = 1
    labels[pick & ndi.binary_erosion(cells, iterations=3)] = 2
    return labels


def rough_profile(image: np.ndarray, bit_depth: int = 16) -> noisestat.CameraProfile:
    """Fit var(y) = a*y + b to local statistics of the flattest 30 % of the image."""
    x = image.astype(np.float64)
    # A pixel minus the mean of its 8 neighbours has 9/8 of the pixel's noise variance.
    residual = (x - (ndi.uniform_filter(x, 3) * 9 - x) / 8) * np.sqrt(8 / 9)
    local_mean = ndi.uniform_filter(x, 7)
    flat = ndi.gaussian_gradient_magnitude(x, 2) < np.percentile(ndi.gaussian_gradient_magnitude(x, 2), 30)
    flat &= image < 2**bit_depth - 1
    means, variances = local_mean[flat], residual[flat]
    edges = np.quantile(means, np.linspace(0.02, 0.98, 21))
    mu, var = [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        r = variances[(means >= lo) & (means < hi)]
        if r.size > 500:
            mu.append(means[(means >= lo) & (means < hi)].mean())
            var.append((1.4826 * np.median(np.abs(r - np.median(r)))) ** 2)  # robust to edges left in
    a, b = np.polyfit(mu, var, 1)
    a = max(a, 1e-3)  # shot noise too small to resolve: keep a tiny gain, the rest is read noise
    if b >= 0:
        return noisestat.CameraProfile(float(a), 0.0, float(np.sqrt(b)), bit_depth)
    return noisestat.CameraProfile(float(a), float(-b / a), 0.0, bit_depth)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--mask", help="instance mask (0 background, 1..n cells)")
    source.add_argument("--labels", help="sparse labels")
    parser.add_argument("--camera", help="camera profile JSON (default: a rough estimate from the image)")
    parser.add_argument("--codec", action="append",
                        help="codec spec (default: lossless, 8-bit minmax, JPEG 10:1 and 100:1)")
    parser.add_argument("--crop", type=int, help="assess only the top-left CROP x CROP pixels (faster)")
    parser.add_argument("--min-area", type=int, default=20,
                        help="discard objects under this many pixels (default 20: specks of a few pixels "
                             "in phase contrast are halo fragments, not cells)")
    parser.add_argument("--replicas", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("-o", "--output", default="pc-results")
    args = parser.parse_args(argv)

    image = noisestat.read_image(args.image)
    if args.mask:
        import imagecodecs

        labels = labels_from_instances(np.asarray(imagecodecs.imread(args.mask)), seed=args.seed)
    else:
        labels = noisestat.read_labels(args.labels, shape=image.shape)
    if args.crop:
        image, labels = image[: args.crop, : args.crop], labels[: args.crop, : args.crop]
    camera = noisestat.load_profile(args.camera) if args.camera else rough_profile(image)
    print(f"camera: K = {camera.gain_dn_per_e:.4g} DN/e-, offset {camera.offset_dn:.1f} DN, "
          f"read noise {camera.read_noise_dn:.1f} DN{'' if args.camera else ' (rough estimate from the image)'}")
    codecs = args.codec or ["lossless", "bitdepth:bits=8,mode=minmax", "jpeg:ratio=10", "jpeg:ratio=100"]
    result = noisestat.assess(image, camera, codecs, labels=labels, replicas=args.replicas, seed=args.seed,
                              jobs=args.jobs, min_area=args.min_area, provenance={"image": args.image})
    noisestat.write_assessment(result, args.output)
    print(noisestat.format_summary(result))
    print(f"wrote {args.output}/")


if __name__ == "__main__":
    main()
