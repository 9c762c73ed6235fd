"""Operator-level eps: what a codec does to the image filters a pixel classifier sees, per pixel,
against the camera's own noise; no model at all.

For an operator op (a filter of the image at one scale), a raw image, N replicas and a decoded image
c, pixel by pixel::

    sigma_raw(x) = sd over the replicas of op(replica)(x)          (ddof 1)
    eps(x)       = (op(raw)(x) - op(c)(x)) / sigma_raw(x)

and, over the pixels, the mean and sd of eps and the fraction with |eps| < 1 (Pomarico et al. 2022,
Fig. 4f,g). The null is the same fraction for a simulated second acquisition: two more replicas,
independent of the N, one taken as the raw image and the other as the codec's. For Gaussian noise
it is about 0.52 (eps ~ sqrt(2) N(0, 1)); a codec that changes nothing has 1, and eps 0 at every pixel.

**The operators** (:data:`OPERATORS`), scipy.ndimage's Gaussian filters with edges extended by the
nearest pixel, at each scale s of :data:`OPERATOR_SIGMAS` (pixels):

* ``gaussian_smoothing``: G(s);
* ``laplacian_of_gaussian``: the sum over axes of the second derivatives of G(s)
  (``scipy.ndimage.gaussian_laplace``);
* ``gradient_magnitude``: the Euclidean norm of the first derivatives of G(s)
  (``scipy.ndimage.gaussian_gradient_magnitude``);
* ``difference_of_gaussians``: G(s) - G(0.66 s), the ratio of the ilastik-style features
  (:mod:`noisestat.predict`).

No scale normalisation: eps is a ratio of two changes of the same operator's output, so a constant
factor on the operator cancels. With a voxel ``spacing`` (the physical size per axis) a scale is in
pixels of the finest axis, as in :mod:`noisestat.predict`'s ilastik-style features: along axis a the
standard deviation is ``s * min(spacing) / spacing[a]`` and a derivative along a is multiplied by
``min(spacing) / spacing[a]``. Gaussian smoothing, the Laplacian and the DoG are linear; the gradient
magnitude is not (where the gradient is near 0 its noise is not Gaussian: a Rayleigh-like spread
around the raw value), so its null fraction differs from 0.52 there.

**Memory: tiles, not a sample of pixels.** The statistics are streamed: per tile of the image (a
core of ``tile`` pixels a side, read with a halo of each operator's kernel radius, so that every
core pixel's response is bitwise the whole image's), the replicas are read one after the other and
each operator's per-pixel mean and sum of squared deviations are updated (Welford, float64); then
sigma_raw, the raw image's, each codec's and the null pair's responses give that tile's eps, whose
count, mean, sum of squared deviations (combined across tiles with Chan's formula) and count of
|eps| < 1 are kept per operator and codec. A volume therefore never holds all replicas' responses:
the memory is that of one tile's operators (16 float64 values per pixel for the accumulators of the
default 4 x 4 operators, about 67 MB for a 64^3 core), whatever the size of the image. A seeded random
subset of pixels would save nothing more: a filter needs its whole neighbourhood, so the cost of the
responses is that of the tiles the subset touches (nearly all of them), and the counts of a subset
are noisier than the full ones. Every pixel is scored.

**Excluded pixels.** Where sigma_raw is 0 (every replica gives the pixel the same response:
saturated regions, which the replicas copy unchanged, or a constant image) eps is undefined; such
pixels are left out of every statistic and counted (:attr:`OperatorScore.excluded_pixels`).

Replicas must be drawn so that their noise is the camera's; :mod:`noisestat.replicas` draws each
pixel independently (exactly so in mode ``pixel-as-mean``, and in volumes), so for a linear operator
with weights w_k the variance of its output at x is ``sum_k w_k^2 V(x - k)``, V the camera's variance
(tests/test_operators.py checks it).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage as ndi

from ..errors import InputError
from ..predict._ilastik import DOG_RATIO, _factors
from ..predict._weka import gaussian_radius

__all__ = ["OPERATORS", "OPERATOR_SIGMAS", "OPERATOR_COLUMNS", "OPERATOR_TILE", "OperatorScore",
           "operator_halo", "operator_responses", "operator_sigma", "operator_scores"]

OPERATORS = ("gaussian_smoothing", "laplacian_of_gaussian", "gradient_magnitude", "difference_of_gaussians")
OPERATOR_SIGMAS = (0.7, 1.0, 2.0, 4.0)
# The columns of operators.csv, in order (one row per domain, operator, scale and codec).
OPERATOR_COLUMNS = ("domain", "operator", "sigma", "codec", "mean_eps", "sd_eps", "frac_abs_eps_lt_1",
                    "null_frac_abs_eps_lt_1")
# Default core edge of a tile (pixels per axis) of an image and of a volume: the accumulators of the
# default 16 operators take 256 bytes per pixel of the core (16 MB for 256^2, 67 MB for 64^3).
OPERATOR_TILE = {2: 256, 3: 64}


@dataclass(frozen=True)
class OperatorScore:
    """The eps of one operator at one scale, over the pixels of one image, for one codec.

    Attributes
    ----------
    domain : str
        What was filtered: "image", "volume", "projections", "reconstruction", ...
    operator : str
        One of :data:`OPERATORS`.
    sigma : float
        The scale in pixels (of the finest axis when a spacing was given).
    codec : str
        The codec's spec.
    mean_eps, sd_eps : float
        Mean and standard deviation (ddof 0) of eps over the scored pixels; NaN when none.
    frac_abs_eps_lt_1 : float
        Fraction of the scored pixels with |eps| < 1; NaN when none.
    null_frac_abs_eps_lt_1 : float
        The same fraction for a simulated second acquisition (the null pair), on the same pixels.
    pixels : int
        Pixels scored (sigma_raw > 0).
    excluded_pixels : int
        Pixels left out because sigma_raw is 0 there.
    """

    domain: str
    operator: str
    sigma: float
    codec: str
    mean_eps: float
    sd_eps: float
    frac_abs_eps_lt_1: float
    null_frac_abs_eps_lt_1: float
    pixels: int
    excluded_pixels: int

    def row(self) -> dict:
        """The row of ``operators.csv``: the keys of :data:`OPERATOR_COLUMNS`, in order."""
        values = asdict(self)
        return {k: values[k] for k in OPERATOR_COLUMNS}


def _check_operators(operators) -> tuple:
    if isinstance(operators, str):
        operators = (operators,)
    try:
        operators = tuple(operators)
    except TypeError:
        raise InputError(f"operators must be a sequence of names from {', '.join(OPERATORS)}; "
                         f"got {operators!r}") from None
    unknown = [o for o in operators if o not in OPERATORS]
    if unknown or not operators:
        raise InputError(f"operators must be one or more of {', '.join(OPERATORS)}; got {list(operators)!r}")
    if len(set(operators)) != len(operators):
        raise InputError(f"operators names one operator twice: {list(operators)!r}")
    return operators


def _check_sigmas(sigmas) -> tuple:
    try:
        values = tuple(float(s) for s in np.atleast_1d(sigmas))
    except (TypeError, ValueError):
        raise InputError(f"operator sigmas must be positive numbers of pixels; got {sigmas!r}") from None
    if not values or not all(math.isfinite(s) and s > 0 for s in values):
        raise InputError(f"operator sigmas must be one or more positive finite numbers of pixels; got {sigmas!r}")
    if len(set(values)) != len(values):
        raise InputError(f"operator sigmas name one scale twice: {list(values)!r}")
    return values


def _check_ndim(ndim) -> int:
    if ndim not in (2, 3):
        raise InputError(f"operators filter 2D images and 3D volumes; got {ndim} axes")
    return int(ndim)


def _axis_factors(spacing, ndim: int) -> tuple:
    """Each axis's scale factor (:func:`noisestat.predict._ilastik._factors`); an axis of infinite
    spacing gets 0: the operators do not reach along it, so each of its planes is filtered as a
    separate image (the projections of a stack, each at its own angle)."""
    if spacing is None or not any(math.isinf(float(v)) for v in spacing):
        return _factors(spacing, ndim)
    finite = [i for i, v in enumerate(spacing) if not math.isinf(float(v))]
    if len(tuple(spacing)) != ndim or not finite:
        raise InputError(f"spacing must be {ndim} positive numbers, infinite only for axes the operators do not "
                         f"reach along; got {tuple(spacing)}")
    factors = [0.0] * ndim
    for i, f in zip(finite, _factors(tuple(spacing[i] for i in finite), len(finite))):
        factors[i] = f
    return tuple(factors)


def operator_halo(ndim: int, *, sigmas=OPERATOR_SIGMAS, spacing=None) -> tuple[int, ...]:
    """Pixels of context per side, one value per axis, that make a region's operator responses exact
    in its core: along axis a, the largest radius of scipy's sampled Gaussian (``int(4 sd + 0.5)``)
    over the scales, sd the scale's standard deviation along a. Every operator, derivative or not,
    reads that far along each axis and no further.

    Examples
    --------
    >>> from noisestat.score import operator_halo
    >>> operator_halo(2)
    (16, 16)
    >>> operator_halo(3, sigmas=(1.0,), spacing=(4.0, 1.0, 1.0))
    (1, 4, 4)
    """
    ndim = _check_ndim(ndim)
    factors = _axis_factors(spacing, ndim)
    return tuple(max(gaussian_radius(s * f) for s in _check_sigmas(sigmas)) for f in factors)


def _filter(image: np.ndarray, sds: tuple, order: tuple) -> np.ndarray:
    return ndi.gaussian_filter(image, sds, order=order, mode="nearest", output=np.float64)


def _responses(image: np.ndarray, operators: tuple, sigmas: tuple, factors: tuple, inner: tuple):
    """(operator, sigma) -> response on ``image[inner]`` (float64), yielded one at a time, in the order
    of sigmas then operators: a few full-size arrays live at once."""
    image = np.asarray(image, dtype=np.float64)
    ndim = image.ndim
    for s in sigmas:
        sds = tuple(s * f for f in factors)
        smooth = None
        if "gaussian_smoothing" in operators or "difference_of_gaussians" in operators:
            smooth = _filter(image, sds, (0,) * ndim)
        for op in operators:
            if op == "gaussian_smoothing":
                out = smooth[inner].copy()
            elif op == "difference_of_gaussians":
                out = smooth[inner] - _filter(image, tuple(DOG_RATIO * d for d in sds), (0,) * ndim)[inner]
            elif op == "laplacian_of_gaussian":
                out = np.zeros(image[inner].shape)
                for a in (a for a in range(ndim) if factors[a]):
                    order = tuple(2 if k == a else 0 for k in range(ndim))
                    out += factors[a] ** 2 * _filter(image, sds, order)[inner]
            else:  # gradient_magnitude
                out = np.zeros(image[inner].shape)
                for a in (a for a in range(ndim) if factors[a]):
                    order = tuple(1 if k == a else 0 for k in range(ndim))
                    out += (factors[a] * _filter(image, sds, order)[inner]) ** 2
                np.sqrt(out, out=out)
            yield (op, s), np.ascontiguousarray(out)


def operator_responses(image, *, operators=OPERATORS, sigmas=OPERATOR_SIGMAS, spacing=None,
                       core: tuple | None = None) -> dict:
    """Each operator's response to a 2D image or 3D volume, float64.

    Parameters
    ----------
    image : array_like, shape (rows, cols) or (planes, rows, cols)
        The image (any real dtype), or a region of it grown by :func:`operator_halo` around ``core``.
    operators : sequence of str
        Names from :data:`OPERATORS`.
    sigmas : sequence of float
        Scales in pixels (of the finest axis when ``spacing`` is given).
    spacing : sequence of float, optional
        Physical size of a pixel along each axis; ``inf`` along an axis whose planes are separate images
        (a projection stack's angles).
    core : tuple of slices, optional
        The part of ``image`` whose responses are returned (default: all of it).

    Returns
    -------
    dict
        ``(operator, sigma) -> ndarray`` of the core's shape.

    Examples
    --------
    >>> import numpy as np
    >>> from noisestat.score import operator_responses
    >>> r = operator_responses(np.full((32, 32), 7), sigmas=(1.0, 2.0))
    >>> len(r), r["gaussian_smoothing", 2.0].shape, round(float(r["gaussian_smoothing", 2.0].max()), 9)
    (8, (32, 32), 7.0)
    """
    image = np.asarray(image)
    ndim = _check_ndim(image.ndim)
    factors = _axis_factors(spacing, ndim)
    inner = tuple(slice(None) for _ in range(ndim)) if core is None else tuple(core)
    return dict(_responses(image, _check_operators(operators), _check_sigmas(sigmas), factors, inner))


def _spread(responses) -> dict:
    """sigma_raw per operator and pixel (ddof 1) from an iterable over replicas, each an iterable of
    ``(key, response)``: Welford's update in float64, one replica's responses at a time."""
    mean, m2, n = {}, {}, 0
    for n, replica in enumerate(responses, start=1):
        for key, r in replica:
            if n == 1:
                mean[key], m2[key] = r, np.zeros_like(r)
            else:
                delta = r - mean[key]
                mean[key] += delta / n
                m2[key] += delta * (r - mean[key])
    if n < 2:
        raise InputError(f"sigma_raw of an operator needs at least 2 replicas; got {n}")
    return {key: np.sqrt(m2[key] / (n - 1)) for key in m2}


def operator_sigma(replicas, *, operators=OPERATORS, sigmas=OPERATOR_SIGMAS, spacing=None,
                   core: tuple | None = None) -> dict:
    """sigma_raw of each operator's response, pixel by pixel: the standard deviation (ddof 1) over
    ``replicas`` (an iterable of N >= 2 images, or regions grown by :func:`operator_halo` around
    ``core``; a generator is read one replica at a time, so they are never held together).

    Returns
    -------
    dict
        ``(operator, sigma) -> ndarray`` (float64) of the core's shape.
    """
    operators, sigmas = _check_operators(operators), _check_sigmas(sigmas)

    def each():
        for replica in replicas:
            replica = np.asarray(replica)
            ndim = _check_ndim(replica.ndim)
            inner = tuple(slice(None) for _ in range(ndim)) if core is None else tuple(core)
            yield _responses(replica, operators, sigmas, _axis_factors(spacing, ndim), inner)

    return _spread(each())


def _tiles(shape: tuple, edge: int, halo: tuple, within=None):
    """(region, inner) of each tile: cores of ``edge`` pixels a side (the last ones shorter), the
    region the core grown by ``halo`` and clipped to the image, inner the core's place in it. With
    ``within`` (a sequence of boxes, each a tuple of slices), the tiles cover those boxes only, each box
    cut into cores of ``edge`` from its own corner."""
    boxes = [tuple(slice(0, n) for n in shape)] if within is None else within
    for box in boxes:
        for starts in itertools.product(*[range(b.start, b.stop, edge) for b in box]):
            core = tuple(slice(s, min(s + edge, b.stop)) for s, b in zip(starts, box))
            region = tuple(slice(max(c.start - h, 0), min(c.stop + h, n)) for c, h, n in zip(core, halo, shape))
            yield region, tuple(slice(c.start - r.start, c.stop - r.start) for c, r in zip(core, region))


def _check_within(within, shape: tuple):
    """``within`` as a list of non-empty, non-overlapping boxes (tuples of slices with steps of 1) inside
    an image of ``shape``, or InputError naming the first that is not."""
    if within is None:
        return None
    boxes = []
    for k, box in enumerate(within):
        box = tuple(box)
        if len(box) != len(shape) or not all(isinstance(b, slice) and b.step in (None, 1) for b in box):
            raise InputError(f"within: box {k} must be {len(shape)} slices with step 1; got {box!r}")
        lo = [b.start if b.start is not None else 0 for b in box]
        hi = [b.stop if b.stop is not None else n for b, n in zip(box, shape)]
        if any(not (0 <= a < z <= n) for a, z, n in zip(lo, hi, shape)):
            raise InputError(f"within: box {k} ({box!r}) is empty or leaves the image of shape {shape}")
        boxes.append(tuple(slice(a, z) for a, z in zip(lo, hi)))
    if not boxes:
        raise InputError("within: no box to score; give at least one")
    # overlapping boxes would count their common pixels twice
    for i, a in enumerate(boxes):
        for b in boxes[:i]:
            if all(x.start < y.stop and y.start < x.stop for x, y in zip(a, b)):
                raise InputError(f"within: boxes {boxes.index(b)} and {i} overlap")
    return boxes


def _source(item, what: str):
    """``item`` as a function region -> ndarray: a callable is one already; anything else is sliced."""
    if callable(item):
        return item
    if not hasattr(item, "shape") or not hasattr(item, "__getitem__"):
        raise InputError(f"{what} must be an array or a function of a region; got {type(item).__name__}")
    return lambda region: np.asarray(item[region])


@dataclass
class _Moments:
    """Count, mean and sum of squared deviations of eps over pixels, and the count of |eps| < 1."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    within: int = 0

    def add(self, eps: np.ndarray) -> None:
        n_b = int(eps.size)
        if not n_b:
            return
        mean_b = float(eps.mean())
        m2_b = float(((eps - mean_b) ** 2).sum())
        n = self.n + n_b
        delta = mean_b - self.mean
        self.mean += delta * n_b / n
        self.m2 += m2_b + delta * delta * self.n * n_b / n
        self.n = n
        self.within += int((np.abs(eps) < 1).sum())

    def summary(self) -> tuple:
        if not self.n:
            return math.nan, math.nan, math.nan
        return self.mean, math.sqrt(self.m2 / self.n), self.within / self.n


def operator_scores(raw, replicas, codecs: Mapping, null_pair, *, domain: str = "image",
                    operators=OPERATORS, sigmas=OPERATOR_SIGMAS, spacing=None,
                    tile: int | None = None, within=None) -> tuple[OperatorScore, ...]:
    """Operator-level eps of each codec (module docstring), streamed tile by tile.

    Parameters
    ----------
    raw : array_like, shape (rows, cols) or (planes, rows, cols)
        The raw image (any array that slices to NumPy: a memory-mapped or lazily read file too).
    replicas : sequence
        N >= 2 replicas of the raw image, each an array or a function ``region -> ndarray`` (e.g.
        ``functools.partial(noisestat.replicas.draw_region, raw, profile, seed, cache=BlockCache())``:
        drawn tile by tile, never held whole).
    codecs : mapping
        Codec spec -> decoded image (an array or a function of a region), each of the raw's shape.
    null_pair : pair
        Two more replicas, independent of the N (a simulated second acquisition), as arrays or functions.
    domain : str
        What the image is ("image", "volume", "projections", "reconstruction"), written in every row.
    operators, sigmas, spacing
        As :func:`operator_responses`.
    tile : int, optional
        Core edge of a tile in pixels (default :data:`OPERATOR_TILE`); the results do not depend on it
        beyond float rounding of the sums over pixels.
    within : sequence of tuple of slice, optional
        Score only the pixels of these boxes (non-overlapping; e.g. the tiles ``--sample`` judges),
        each filtered with its neighbourhood from the image around it,
        so a pixel's eps is the one the whole image gives it. Default: every pixel.

    Returns
    -------
    tuple of OperatorScore
        One per operator, scale and codec: for each scale (in order), each operator (in order), each
        codec (in the mapping's order).

    Call it once per image and domain; write the rows with
    :func:`noisestat.report.write_operators_csv`.
    """
    if not isinstance(domain, str) or not domain.strip():
        raise InputError(f"domain must be a non-empty name such as 'image' or 'volume'; got {domain!r}")
    operators, sigmas = _check_operators(operators), _check_sigmas(sigmas)
    replicas = list(replicas)
    if len(replicas) < 2:
        raise InputError(f"operator scores need at least 2 replicas to estimate sigma_raw; got {len(replicas)}")
    null_pair = list(null_pair)
    if len(null_pair) != 2:
        raise InputError(f"null_pair must hold two replicas; got {len(null_pair)}")
    if not isinstance(codecs, Mapping):
        raise InputError(f"codecs must map each codec's spec to its decoded image; got {type(codecs).__name__}")
    if callable(raw) or not hasattr(raw, "shape"):
        raise InputError(f"raw must be an array (its shape sets the tiles); got {type(raw).__name__}")
    shape = tuple(raw.shape)
    ndim = _check_ndim(len(shape))
    factors = _axis_factors(spacing, ndim)
    for spec, decoded in codecs.items():
        if not callable(decoded) and tuple(np.shape(decoded)) != shape:
            raise InputError(f"decoded image of codec {spec!r} has shape {tuple(np.shape(decoded))}; "
                             f"the raw image has {shape}")
    for k, item in enumerate(replicas + null_pair):
        if not callable(item) and tuple(np.shape(item)) != shape:
            raise InputError(f"replica {k} has shape {tuple(np.shape(item))}; the raw image has {shape}")
    edge = OPERATOR_TILE[ndim] if tile is None else tile
    if isinstance(edge, bool) or int(edge) != edge or edge < 1:
        raise InputError(f"tile must be a whole number of pixels >= 1; got {tile!r}")
    edge = int(edge)
    within = _check_within(within, shape)
    raw_src = ("the raw image", _source(raw, "raw"))
    rep_src = [(f"replica {k}", _source(r, f"replica {k}")) for k, r in enumerate(replicas)]
    null_src = [(f"null replica {k}", _source(r, f"null replica {k}")) for k, r in enumerate(null_pair)]
    codec_src = {spec: (f"the decoded image of {spec!r}", _source(d, f"decoded image of {spec!r}"))
                 for spec, d in codecs.items()}
    keys = [(op, s) for s in sigmas for op in operators]
    halo = operator_halo(ndim, sigmas=sigmas, spacing=spacing)
    moments = {(key, spec): _Moments() for key in keys for spec in codec_src}
    null = {key: _Moments() for key in keys}
    scored = dict.fromkeys(keys, 0)
    excluded = dict.fromkeys(keys, 0)

    def respond(source, region, inner):
        block = np.asarray(source[1](region))
        want = tuple(r.stop - r.start for r in region)
        if block.shape != want:
            raise InputError(f"{source[0]} gave a region of shape {block.shape}; {want} was asked for")
        return _responses(block, operators, sigmas, factors, inner)

    for region, inner in _tiles(shape, edge, halo, within):
        spread = _spread((respond(src, region, inner) for src in rep_src))
        sigma, keep = {}, {}
        for key in keys:
            s = spread.pop(key)
            keep[key] = s > 0
            sigma[key] = s[keep[key]]
            scored[key] += int(keep[key].sum())
            excluded[key] += int(keep[key].size - keep[key].sum())
        raw_r = {key: r[keep[key]] for key, r in respond(raw_src, region, inner)}
        for spec, src in codec_src.items():
            for key, r in respond(src, region, inner):
                moments[key, spec].add((raw_r[key] - r[keep[key]]) / sigma[key])
        a = {key: r[keep[key]] for key, r in respond(null_src[0], region, inner)}
        for key, r in respond(null_src[1], region, inner):
            null[key].add((a[key] - r[keep[key]]) / sigma[key])

    out = []
    for key in keys:
        null_frac = null[key].summary()[2]
        for spec in codec_src:
            mean_eps, sd_eps, frac = moments[key, spec].summary()
            out.append(OperatorScore(domain, key[0], key[1], str(spec), mean_eps, sd_eps, frac, null_frac,
                                     scored[key], excluded[key]))
    return tuple(out)
