"""Pixel features in the style of ilastik, for 2D images and 3D volumes.

At every scale s (default ilastik's 0.7, 1.0, 1.6, 3.5, 5.0, 10.0 pixels), edges extended by the
nearest pixel:

* Gaussian smoothing G(s);
* Laplacian of Gaussian (the trace of the Hessian of Gaussian);
* Gaussian gradient magnitude;
* difference of Gaussians G(s) - G(0.66 s);
* structure-tensor eigenvalues: the outer products of the Gaussian gradient at inner scale s,
  smoothed at outer scale 0.5 s; ndim values, largest first;
* Hessian-of-Gaussian eigenvalues at scale s; ndim values, largest first.

4 + 2*ndim features per scale: 48 in 2D, 60 in 3D for the default scales, in float32 (the
eigenvalues' closed forms in float64). Gaussian smoothing is scipy.ndimage's; the derivatives use
zero-sum, moment-normalised sampled Gaussian derivative kernels, as vigra's do (see
:func:`derivative_kernel`), so a flat region has no curvature and a ramp its exact slope.

Anisotropic voxels (``spacing``, the physical size per axis, e.g. (2.0, 0.5, 0.5) for z, y, x): a
scale is in pixels of the finest axis, so along axis a the Gaussian's standard deviation is
``s * (min(spacing) / spacing[a])``, and a derivative along a is multiplied by
``min(spacing) / spacing[a]`` (per finest-axis pixel, not per pixel of axis a; ilastik itself
leaves derivatives per pixel of each axis). An object then gives
the same features whatever the voxel size it was sampled at.

Halo (:func:`ilastik_halo`). Along axis a, a Gaussian of standard deviation sd (or one of its
derivatives) is a sampled kernel of scipy's radius ``int(4.0 * sd + 0.5)`` (at least 1 for a
derivative); the separable filter reads that many pixels on each side along a. The structure tensor chains two such filters (inner s, outer
0.5 s), so the halo along a is the largest over the scales of
``r_a(s) + r_a(0.5 s)`` (it also covers ``r_a(s)`` and ``r_a(0.66 s)`` of the other features); the
eigenvalues and the other pointwise steps add nothing. On a region holding a core grown by that
halo (clipped at the image border, where the image's own edge is extended exactly as in the whole
image), every value in the core is bitwise identical to the whole image's.

Threads: the scales run as independent tasks in a thread pool (scipy.ndimage and numpy release the
GIL); each writes its own slots of the output, so the result is bitwise the same for any number of
threads. A task holds at most about ten full-size float32 arrays; the pointwise features are formed
in blocks of voxels.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi

from ..errors import InputError
from ._weka import blocks, check_threads, gaussian_radius, run_tasks

__all__ = ["ilastik_features", "ilastik_feature_names", "ilastik_halo", "ILASTIK_SIGMAS"]

ILASTIK_SIGMAS = (0.7, 1.0, 1.6, 3.5, 5.0, 10.0)
DOG_RATIO = 0.66   # difference of Gaussians: G(s) - G(DOG_RATIO * s)
OUTER_RATIO = 0.5  # structure tensor: outer scale = OUTER_RATIO * inner scale


def _label(s) -> str:
    return f"{float(s):g}"


def ilastik_feature_names(sigmas=ILASTIK_SIGMAS, ndim: int = 3) -> list[str]:
    """Names of the features :func:`ilastik_features` returns for ``ndim``-D images, in order.

    Examples
    --------
    >>> from noisestat.predict import ilastik_feature_names
    >>> ilastik_feature_names((1.0,), 2)  # doctest: +NORMALIZE_WHITESPACE
    ['gaussian_smoothing_1', 'laplacian_of_gaussian_1', 'gradient_magnitude_1',
     'difference_of_gaussians_1', 'structure_tensor_eigenvalue1_1', 'structure_tensor_eigenvalue2_1',
     'hessian_eigenvalue1_1', 'hessian_eigenvalue2_1']
    """
    ndim = _check_ndim(ndim)
    names = []
    for s in _check_sigmas(sigmas):
        t = _label(s)
        names += [f"gaussian_smoothing_{t}", f"laplacian_of_gaussian_{t}", f"gradient_magnitude_{t}",
                  f"difference_of_gaussians_{t}"]
        names += [f"structure_tensor_eigenvalue{i}_{t}" for i in range(1, ndim + 1)]
        names += [f"hessian_eigenvalue{i}_{t}" for i in range(1, ndim + 1)]
    return names


def ilastik_halo(sigmas=ILASTIK_SIGMAS, spacing=None, ndim: int = 3) -> tuple[int, ...]:
    """Pixels of context per side, one value per axis, that make a region's features exact in its core.

    :func:`ilastik_features` computed on a core grown by ``halo[a]`` pixels on each side of axis a
    (clipped at the image border) gives in the core values bitwise identical to the whole image's:
    along each axis, the largest over the scales of the structure tensor's inner plus outer Gaussian
    radii (see the module docstring).

    Examples
    --------
    >>> from noisestat.predict import ilastik_halo
    >>> ilastik_halo()
    (60, 60, 60)
    >>> ilastik_halo(spacing=(2.0, 1.0, 1.0))
    (30, 60, 60)
    """
    ndim = _check_ndim(ndim)
    sigmas = _check_sigmas(sigmas)
    factors = _factors(spacing, ndim)
    halo = [0] * ndim
    for s in sigmas:
        inner, outer, dog = (_axis_sds(t, factors) for t in (s, OUTER_RATIO * s, DOG_RATIO * s))
        for a in range(ndim):
            # the structure tensor (gradient then outer smoothing) reaches furthest; the Hessian
            # (derivative_radius(inner, 2), the same), the smoothing and the DoG less far
            reach = max(derivative_radius(inner[a], 1) + gaussian_radius(outer[a]), gaussian_radius(dog[a]))
            halo[a] = max(halo[a], reach)
    return tuple(halo)


def ilastik_features(image: np.ndarray, *, sigmas=ILASTIK_SIGMAS, spacing=None, threads: int = 1,
                     inner: tuple | None = None) -> np.ndarray:
    """Compute the ilastik-style feature stack of a 2D image or a 3D volume.

    Parameters
    ----------
    image : ndarray, shape (rows, cols) or (planes, rows, cols)
        Any real or integer image.
    sigmas : sequence of float, optional
        Scales in pixels (of the finest axis when ``spacing`` is given).
    spacing : sequence of float, optional
        Physical voxel size per axis (z, y, x); None for isotropic pixels.
    threads : int, default 1
        Threads computing the scales; the result is bitwise the same for any number.
    inner : tuple of slice, optional
        Return the features of ``image[inner]`` only, computed with the whole of ``image`` around
        it (a tile's core inside its region): the filters run on ``image``, the per-pixel work
        (eigenvalues, magnitudes) and the result on the core only. Equal to
        ``ilastik_features(image)[inner]``, bit for bit.

    Returns
    -------
    features : ndarray of float32, shape image[inner].shape + (n_features,)
        Features on the last axis, in the order of :func:`ilastik_feature_names`. Within
        :func:`ilastik_halo` pixels of a region's cut edge the values differ from the whole
        image's; elsewhere they are identical.

    Examples
    --------
    >>> import numpy as np
    >>> from noisestat.predict import ilastik_features
    >>> ilastik_features(np.zeros((8, 16, 16), np.uint16)).shape
    (8, 16, 16, 60)
    >>> ilastik_features(np.zeros((16, 16), np.uint16), sigmas=(1.0, 2.0)).shape
    (16, 16, 16)
    """
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise InputError(f"ilastik features need a 2D image or a 3D volume; got shape {image.shape}")
    if not (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)):
        raise InputError(f"ilastik features need a real or integer image; got dtype {image.dtype}")
    ndim = image.ndim
    sigmas = _check_sigmas(sigmas)
    factors = _factors(spacing, ndim)
    threads = check_threads(threads)
    image = np.ascontiguousarray(image, dtype=np.float32)
    inner = tuple(slice(0, n) for n in image.shape) if inner is None else tuple(inner)
    core_shape = tuple(len(range(*sl.indices(n))) for sl, n in zip(inner, image.shape))
    whole = core_shape == image.shape
    per_scale = 4 + 2 * ndim
    n = per_scale * len(sigmas)
    out = np.empty(core_shape + (n,), dtype=np.float32)
    flat = out.reshape(-1, n)
    size = flat.shape[0]
    pairs = [(a, b) for a in range(ndim) for b in range(a, ndim)]

    def crop(x):
        # a flat image-sized array -> the flat core (a copy, so the image-sized one can go)
        return x if whole else np.ascontiguousarray(x.reshape(image.shape)[inner]).reshape(-1)

    def smooth(x, sds, output=None):
        return ndi.gaussian_filter(x, sds, output=output, mode="nearest")

    def derivative(sds, axes):
        # Gaussian derivative along ``axes`` (an axis listed twice: second derivative), per
        # finest-axis pixel, one axis after the other as gaussian_filter does
        order = [0] * ndim
        for a in axes:
            order[a] += 1
        d = None  # after the first pass each one runs in place, as in gaussian_filter
        for a in range(ndim):
            source = image if d is None else d
            if order[a]:
                d = ndi.correlate1d(source, derivative_kernel(sds[a], order[a], factors[a]), axis=a, output=d,
                                    mode="nearest")
            elif sds[a] > 1e-15:
                d = ndi.gaussian_filter1d(source, sds[a], axis=a, output=d, mode="nearest")
        return d.reshape(-1)

    def one_scale(item):
        k, s = item
        first = k * per_scale
        inner_sds = _axis_sds(s, factors)

        # gradient magnitude
        grad = [derivative(inner_sds, (a,)) for a in range(ndim)]
        cropped = [crop(g) for g in grad]
        for sl in blocks(size):
            acc = cropped[0][sl] * cropped[0][sl]
            for g in cropped[1:]:
                acc += g[sl] * g[sl]
            flat[sl, first + 2] = np.sqrt(acc)
        del cropped

        # structure tensor: gradient outer products smoothed at the outer scale (in place), each
        # gradient dropped once its last product is formed
        outer = _axis_sds(OUTER_RATIO * s, factors)
        tensor = []
        for a, b in pairs:
            product = grad[a] * grad[b]
            tensor.append(crop(smooth(product.reshape(image.shape), outer,
                                      output=product.reshape(image.shape)).reshape(-1)))
            if b == ndim - 1:
                grad[a] = None
        del grad, product
        _eigenvalues_into(flat, first + 4, tensor, ndim)
        del tensor

        # Hessian of Gaussian; its trace is the Laplacian of Gaussian
        hessian = [crop(derivative(inner_sds, (a, b))) for a, b in pairs]
        diagonal = [hessian[pairs.index((a, a))] for a in range(ndim)]
        for sl in blocks(size):
            acc = diagonal[0][sl].copy()
            for h in diagonal[1:]:
                acc += h[sl]
            flat[sl, first + 1] = acc
        _eigenvalues_into(flat, first + 4 + ndim, hessian, ndim)
        del hessian, diagonal

        wide = crop(smooth(image, inner_sds).reshape(-1))
        narrow = crop(smooth(image, _axis_sds(DOG_RATIO * s, factors)).reshape(-1))
        for sl in blocks(size):
            flat[sl, first] = wide[sl]
            flat[sl, first + 3] = wide[sl] - narrow[sl]

    # the widest scale is the longest task: start it first
    run_tasks(threads, one_scale, sorted(enumerate(sigmas), key=lambda item: -item[1]))
    return out


def derivative_radius(sd: float, order: int) -> int:
    """Radius of :func:`derivative_kernel`: scipy's Gaussian radius, at least 1 for a derivative."""
    radius = gaussian_radius(sd)
    return max(radius, 1) if order else radius


def derivative_kernel(sd: float, order: int, factor: float = 1.0) -> np.ndarray:
    """Correlation weights of the sampled Gaussian derivative of ``order`` 1 or 2, radius
    :func:`derivative_radius`, times ``factor ** order``.

    Written here rather than taken from scipy.ndimage.gaussian_filter(order=...): scipy's sampled
    derivative kernels are neither zero-sum (order 2) nor moment-normalised, so at s = 0.7 a flat
    region of level L gets a Laplacian of about -0.013 L in 2D (curvature features would carry the
    intensity) and a ramp's gradient comes out 0.3 % low. Like the kernels of vigra (the filter
    library ilastik uses), the kernel here has zero sum and unit moment: it gives 0 on a constant, exactly the slope on a ramp (order 1)
    and exactly the curvature on a parabola (order 2).
    """
    radius = derivative_radius(sd, order)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    phi = np.exp(-0.5 * (x / sd) ** 2)
    if order == 1:
        # correlating with x phi / sum(x^2 phi) maps f(x) = x to 1 and is odd (zero sum)
        kernel = x * phi / np.sum(x * x * phi)
    elif order == 2:
        # (x^2 - v) phi with v the kernel's own variance has zero sum; scaled so that it maps
        # f(x) = x^2 / 2 to 1
        shape = (x * x - np.sum(x * x * phi) / np.sum(phi)) * phi
        kernel = shape / np.sum(0.5 * x * x * shape)
    else:
        raise ValueError(f"order must be 1 or 2; got {order}")
    return kernel * factor ** order


def _eigenvalues_into(flat: np.ndarray, column: int, tensor: list, ndim: int) -> None:
    """Eigenvalues, largest first, of the symmetric tensor field whose upper-triangle components
    (row-major: xx, xy, yy in 2D; zz, zy, zx, yy, yx, xx in 3D) are the flat arrays ``tensor``,
    into ``flat[:, column:column + ndim]``.

    Written out as closed forms rather than numpy.linalg.eigvalsh: eigvalsh takes about 1 us per
    3x3 matrix (some 100 s for the twelve tensor fields of a 128x256x256 volume) and needs the
    tensors stacked as (..., 3, 3), nine values per voxel. The closed forms run in float64, in
    blocks (so the extra memory is a few MiB): in float32 the arccos of the 3x3 trigonometric
    solution loses half its digits where two eigenvalues nearly coincide. They use only
    elementwise numpy operations, so a voxel's values do not depend on where it lies in the array.
    """
    for sl in blocks(flat.shape[0]):
        c = [t[sl].astype(np.float64) for t in tensor]
        values = _sym2(*c) if ndim == 2 else _sym3(*c)
        flat[sl, column:column + ndim] = np.stack(values, axis=1)


def _sym2(xx, xy, yy):
    mean = 0.5 * (xx + yy)
    half = 0.5 * (xx - yy)
    radius = np.sqrt(half * half + xy * xy)
    return mean + radius, mean - radius


def _sym3(a, d, e, b, f, c):
    # diagonal a, b, c; off-diagonal d = (0, 1), e = (0, 2), f = (1, 2). Eigenvalues
    # q + 2 p cos(phi + 2 pi k / 3) of A = q I + p B, with q = tr(A) / 3, p = sqrt(tr((A - qI)^2) / 6)
    # and cos(3 phi) = det(B) / 2 (the trigonometric solution of the characteristic cubic)
    q = (a + b + c) / 3.0
    a, b, c = a - q, b - q, c - q
    off = d * d + e * e + f * f
    p = np.sqrt((a * a + b * b + c * c + 2.0 * off) / 6.0)
    det = a * (b * c - f * f) - d * (d * c - f * e) + e * (d * f - b * e)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(p > 0, det / (2.0 * p * p * p), 0.0)
    phi = np.arccos(np.clip(r, -1.0, 1.0)) / 3.0
    largest = q + 2.0 * p * np.cos(phi)
    smallest = q + 2.0 * p * np.cos(phi + 2.0 * math.pi / 3.0)
    middle = np.clip(q + 2.0 * p * np.cos(phi - 2.0 * math.pi / 3.0), smallest, largest)
    return largest, middle, smallest


def _axis_sds(s: float, factors: tuple) -> tuple:
    # the one place a scale becomes per-axis standard deviations (features and halo alike)
    return tuple(float(s) * f for f in factors)


def _factors(spacing, ndim: int) -> tuple:
    """min(spacing) / spacing[a] per axis: 1.0 for the finest axes, exactly."""
    if spacing is None:
        return (1.0,) * ndim
    try:
        values = tuple(float(v) for v in spacing)
    except (TypeError, ValueError):
        raise InputError(f"spacing must be a sequence of {ndim} positive numbers; got {spacing!r}") from None
    if len(values) != ndim or not all(math.isfinite(v) and v > 0 for v in values):
        raise InputError(f"spacing must be {ndim} positive finite numbers (one per axis of the "
                         f"{ndim}D image); got {spacing!r}")
    finest = min(values)
    return tuple(finest / v for v in values)


def _check_sigmas(sigmas) -> tuple:
    try:
        values = tuple(float(s) for s in sigmas)
    except (TypeError, ValueError):
        raise InputError(f"sigmas must be a sequence of positive numbers; got {sigmas!r}") from None
    if not values or not all(math.isfinite(s) and s > 0 for s in values):
        raise InputError(f"sigmas must be one or more positive finite numbers; got {sigmas!r}")
    return values


def _check_ndim(ndim) -> int:
    if ndim not in (2, 3):
        raise InputError(f"ilastik features are defined for 2 or 3 dimensions; got ndim={ndim!r}")
    return int(ndim)
