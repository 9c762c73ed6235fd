"""Pixel features in the style of Trainable Weka Segmentation.

Four feature families at nominal scales sigma in {1, 2, 4, 8, 16}, each nominal sigma applied as a
Gaussian of standard deviation 0.4*sigma, image edges extended by the nearest pixel:

* the original image (1 feature);
* Gaussian blur at each sigma (5);
* Sobel gradient magnitude (3x3) of the image and of each blur (6);
* Hessian of the image and of each blur from repeated 3x3 Sobel derivatives, a = d2/dx2,
  b = d2/dxdy, d = d2/dy2, eight features each (48): module sqrt(a^2+b^2+d^2), trace a+d,
  determinant ad-b^2, the two eigenvalues (a+d +- sqrt(4b^2+(a-d)^2))/2, orientation
  0.5*acos((a-d)/sqrt(4b^2+(a-d)^2)), gamma-normalised square eigenvalue difference
  (a+d)^2((a-d)^2+4b^2), square of the eigenvalue difference (a-d)^2+4b^2;
* difference of Gaussians G(0.4*j) - G(0.4*sigma) for every pair j < sigma (10).

70 features in all, computed in float32 on the raw intensities (a random forest needs no
normalisation). scikit-image's ``multiscale_basic_features`` has no Hessian and no DoG, and
Weka's own code is Java, so the stack is written here with scipy.ndimage.

Halo (:func:`weka_halo`). A feature at a pixel depends only on the pixels of a square around it,
whose half-width is the sum of the radii of the filters chained to make it:

* a Gaussian of standard deviation sd is scipy's sampled kernel of radius ``int(4.0 * sd + 0.5)``
  (``gaussian_filter1d`` with its default ``truncate=4.0``), applied along each axis in turn, so
  it reads a square of that half-width;
* a 3x3 Sobel derivative reads one more pixel on each side: the gradient of a blur reaches
  radius + 1, its Hessian (a Sobel of a Sobel) radius + 2;
* a difference of Gaussians reaches the larger radius; the pointwise formulas add nothing.

So ``weka_halo = max(2, max over sigma of int(4.0 * 0.4 * sigma + 0.5) + 2)``: 28 pixels for the
default scales (0.4 * 16 = 6.4, radius 26). Computed on a region that holds a core grown by that
halo on every side (clipped at the image border, where the image's own edge is extended by the
nearest pixel exactly as in the whole image), every filter reads in the core the same pixels in the
same order as on the whole image, and every pointwise step is the same float32 operation on the
same values, so the core's features are bitwise identical to the whole image's.

Threads (``threads=N``). The scales are independent: each one's blur, Sobel passes and Hessian
features run as one task in a thread pool (scipy.ndimage and numpy release the GIL). Each task
writes its own feature slots, and a value does not depend on which thread computed it, so the stack
is bitwise identical for any number of threads. A task holds six full-size float32 arrays (the blur,
two gradients, three second derivatives); the pointwise features are formed in blocks of pixels
and written a block at a time into the output, so with one thread the memory beyond the output
stack is under half of what it was when all blurs were kept and the Hessian formulas ran on whole
images (on 1024x1024: 29 MiB instead of 72 MiB), and with two threads still lower (54 MiB).
"""

from __future__ import annotations

import itertools
import numbers
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy import ndimage as ndi

from ..errors import InputError

__all__ = ["weka_features", "feature_names", "weka_halo", "DEFAULT_SIGMAS"]

DEFAULT_SIGMAS = (1, 2, 4, 8, 16)
_HESSIAN = ("module", "trace", "determinant", "eigenvalue1", "eigenvalue2", "orientation",
            "gamma_eigen_difference", "square_eigen_difference")
TRUNCATE = 4.0  # scipy.ndimage.gaussian_filter's default truncate, used by every Gaussian here
_BLOCK = 1 << 14  # pixels per block of pointwise work (keeps the temporaries in cache)


def gaussian_radius(sd: float) -> int:
    """Radius in pixels of scipy.ndimage's sampled Gaussian of standard deviation ``sd``
    (``gaussian_filter1d``: ``int(truncate * sd + 0.5)``; axes with sd <= 1e-15 are skipped)."""
    sd = float(sd)
    return int(TRUNCATE * sd + 0.5) if sd > 1e-15 else 0


def check_threads(threads) -> int:
    """``threads`` as a positive int, or an :class:`~noisestat.errors.InputError`."""
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral) or threads < 1:
        raise InputError(f"threads must be a positive integer; got {threads!r}")
    return int(threads)


def run_tasks(threads: int, task, items) -> list:
    """``[task(item) for item in items]``, on ``threads`` threads when more than one; items are
    started in the order given (put the longest first)."""
    items = list(items)
    if threads == 1 or len(items) < 2:
        return [task(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(threads, len(items))) as pool:
        return list(pool.map(task, items))


def blocks(n: int, size: int = _BLOCK) -> list[slice]:
    """Consecutive slices of ``range(n)`` of at most ``size`` elements."""
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def _sd(sigma) -> float:
    # the one place the nominal Weka scale becomes a Gaussian standard deviation
    return 0.4 * sigma


def weka_halo(sigmas=DEFAULT_SIGMAS) -> int:
    """Pixels of context per side that make a region's features exact in its core.

    :func:`weka_features` computed on a core grown by this many pixels on every side (clipped at
    the image border) gives in the core values bitwise identical to the whole image's: the largest
    Gaussian radius ``int(4.0 * 0.4 * sigma + 0.5)`` plus two chained 3x3 Sobel passes (see the
    module docstring).

    Examples
    --------
    >>> from noisestat.predict import weka_halo
    >>> weka_halo()
    28
    >>> weka_halo((1, 2))
    5
    """
    return max([2] + [gaussian_radius(_sd(s)) + 2 for s in tuple(sigmas)])


def feature_names(sigmas=DEFAULT_SIGMAS) -> list[str]:
    """Names of the features :func:`weka_features` returns, in order."""
    sigmas = tuple(sigmas)
    names = ["original"]
    names += [f"gaussian_{s}" for s in sigmas]
    for s in (0,) + sigmas:
        names.append(f"sobel_{s}")
        names += [f"hessian_{h}_{s}" for h in _HESSIAN]
    names += [f"dog_{j}_{s}" for s, j in _dog_pairs(sigmas)]
    return names


def _dog_pairs(sigmas):
    return [(s, j) for s, j in itertools.product(sigmas, sigmas) if j < s]


def weka_features(image: np.ndarray, *, sigmas=DEFAULT_SIGMAS, threads: int = 1) -> np.ndarray:
    """Compute the Weka-style feature stack of a 2D image.

    Parameters
    ----------
    image : ndarray, shape (rows, cols)
        Any real or integer image.
    sigmas : sequence of float, optional
        Nominal scales; each is applied as a Gaussian of 0.4*sigma.
    threads : int, default 1
        Threads computing the scales; the result is bitwise the same for any number.

    Returns
    -------
    features : ndarray of float32, shape (rows, cols, n_features)
        Features on the last axis, in the order of :func:`feature_names`. Within
        :func:`weka_halo` pixels of a region's cut edge the values differ from the whole
        image's; elsewhere they are identical.

    Examples
    --------
    >>> import numpy as np
    >>> from noisestat.predict import weka_features
    >>> weka_features(np.zeros((16, 16), np.uint16)).shape
    (16, 16, 70)
    """
    sigmas = tuple(sigmas)
    threads = check_threads(threads)
    image = np.ascontiguousarray(image, dtype=np.float32)
    n = len(feature_names(sigmas))
    out = np.empty(image.shape + (n,), dtype=np.float32)
    flat = out.reshape(-1, n)
    # feature slots: scale 0 is the original image (slot 0), scale i its blur (slot i); each
    # scale's Sobel magnitude and 8 Hessian features follow the blurs, 9 per scale
    scales = [(0, 0, 1 + len(sigmas))] + [(s, 1 + i, 1 + len(sigmas) + 9 * (1 + i)) for i, s in enumerate(sigmas)]
    scales.sort(key=lambda item: -float(item[0]))  # the widest blur is the longest task: start it first

    def one_scale(item):
        s, slot, first = item
        base = image if s == 0 else ndi.gaussian_filter(image, _sd(s), mode="nearest")
        gx = ndi.sobel(base, axis=1, mode="nearest")
        gy = ndi.sobel(base, axis=0, mode="nearest")
        a = ndi.sobel(gx, axis=1, mode="nearest")
        b = ndi.sobel(gx, axis=0, mode="nearest")
        d = ndi.sobel(gy, axis=0, mode="nearest")
        base, gx, gy, a, b, d = (x.reshape(-1) for x in (base, gx, gy, a, b, d))
        for sl in blocks(base.size):
            # pointwise features of a block, one contiguous row each, then written pixel by pixel
            # (writing one feature at a time into the pixel-major stack would touch every cache
            # line of the stack once per feature)
            buf = np.empty((9, sl.stop - sl.start), np.float32)
            buf[0] = np.hypot(gx[sl], gy[sl])
            _hessian_into(buf[1:], a[sl], b[sl], d[sl])
            flat[sl, slot] = base[sl]
            flat[sl, first:first + 9] = buf.T

    run_tasks(threads, one_scale, scales)

    pairs = _dog_pairs(sigmas)
    if pairs:
        fine = [1 + sigmas.index(j) for s, j in pairs]
        coarse = [1 + sigmas.index(s) for s, j in pairs]
        k0 = n - len(pairs)

        def dog_block(sl):
            blurs = flat[sl]
            flat[sl, k0:] = blurs[:, fine] - blurs[:, coarse]

        run_tasks(threads, dog_block, blocks(flat.shape[0], 4 * _BLOCK))
    return out


def _hessian_into(out: np.ndarray, a: np.ndarray, b: np.ndarray, d: np.ndarray) -> None:
    """The 8 Hessian features of second derivatives a, b, d into ``out[0]`` ... ``out[7]``."""
    trace = a + d
    diff = a - d
    disc2 = 4 * b * b + diff * diff
    disc = np.sqrt(disc2)
    out[0] = np.sqrt(a * a + b * b + d * d)
    out[1] = trace
    out[2] = a * d - b * b
    out[3] = 0.5 * (trace + disc)
    out[4] = 0.5 * (trace - disc)
    with np.errstate(invalid="ignore", divide="ignore"):
        cosine = np.where(disc > 0, diff / disc, 1.0)
    out[5] = 0.5 * np.arccos(np.clip(cosine, -1.0, 1.0))
    out[6] = trace * trace * disc2
    out[7] = disc2
