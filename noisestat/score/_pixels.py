"""Per-pixel scores of a value predictor: sigma_raw, eps and the null of a second acquisition, pixel
by pixel.

For a predictor that gives a value v per pixel (a probability map, a restored image), with v_raw on
the raw image, v_1..v_N on N replicas and v_c on a decoded image::

    s2(x)        = variance over replicas of v_r(x)                   (ddof = 1)
    sigma_raw(x) = sqrt(mean of s2 over the neighbours of x)          (x itself left out)
    eps(x)       = (v_raw(x) - v_c(x)) / max(sigma_raw(x), floor)

**Why the neighbours, and not the pixel itself.** Every replica is drawn around the observed raw
image (the pixel as the mean of its noise, :mod:`noisestat.replicas`), so a pixel's own spread over
the replicas is the camera's variance at the value the pixel *happened to read*: small where it
read low, large where it read high (shot noise grows with the signal). Dividing by it ties sigma
to the very noise that v_raw - v_c measures: a second acquisition then scores too often beyond the
null where the pixel read low, with a negative mean eps. In the dark, where the shot noise is
comparable to the read noise, this is large. The mean over the neighbours (within ``radius`` = 1
pixel along every axis: 8 in an image, 26 in a volume; fewer at the array's border) leaves the
pixel's own reading out; for a predictor without a halo sigma is then independent of it. Measured
with ``benchmarks/bench_pixel_null.py`` (the image itself as the predictor, a true second
acquisition of each simulated scene scored as the codec, 4 seeds, 10 replicas):

=====================================  ===========================  ==========================
scene, camera                          beyond the null's q99        mean eps
                                       own spread -> neighbours'    own spread -> neighbours'
=====================================  ===========================  ==========================
dim (3 e-), K 2 DN/e-, 1.5 e- read     2.89-2.99 % -> 0.63-0.68 %   -0.43..-0.46 -> -0.01..+0.01
dim (3 e-), K 0.5 DN/e-, 4 e- read     1.30-1.33 % -> 0.82-0.85 %   -0.13..-0.14 -> -0.01..+0.01
bright (2000 e-), either camera        0.68-0.75 % -> 0.91-1.03 %   -0.01..-0.02 -> -0.01..0.00
=====================================  ===========================  ==========================

The camera's variance is linear in the signal, so the neighbours' mean is right on average over
any region of even signal; across an edge it mixes the two sides: the bright side of a sharp edge
gets less than its own variance, the dark side more (on the test scenes, cells of 900 e- on a few
tens: sigma_raw^2 about 3 % low on average over the bright pixels). The null is divided by the same
sigma, so the fraction beyond its 99th percentile stays right over the image. A predictor with a
halo shares inputs with its near neighbours, so radius 1 leaves part of the dependence: for a
sigmoid of a 1 px Gaussian smoothing (halo 4, a probability-like map) in the dark, 1.7-2.3 %
beyond -> 1.3-1.8 % (radius 3: 0.6-1.0 %, at the cost of a sigma_raw spread over 7 x 7 pixels); a
Gaussian smoothing had little of it to begin with (0.65-0.84 % -> 0.77-0.98 %).

What keeps the dark below 1 % is the null itself: its pairs lie around the raw image too, so their
variance at a pixel is the camera's at that pixel's reading, which varies from pixel to pixel more
than a second acquisition's does, and the null's tails are a little heavier than a second
acquisition's. That errs on the side of calling a codec's change camera noise: fewer of its pixels
are counted beyond the null than a second acquisition's 1 %.

**The floor** is the rule of the per-object parameters (:mod:`noisestat.score`), for one map: a
predictor whose values are quantised (integers, a probability in steps of 1/trees) can give the
same value in every replica at a pixel, sigma_raw = 0 saying only that the spread is below one
step. The step h is the median, over the pixels some replica changed, of the smallest non-zero
|v_r - v_raw| there; the spread used is ``max(sigma_raw, h / sqrt(12))``. For continuous values h is
far below sigma_raw and the floor binds only where no replica changed the value around a pixel.
With no pixel changed by any replica h is undefined and sigma stays 0: eps is then 0 where the
codec gives the raw value and +-inf elsewhere.

**The null**: two more replicas, independent of the N, stand for a second acquisition; their
eps (v_a - v_b) / sigma is what the camera's own noise does. Disjoint pairs of the N replicas, each
judged with the sigma of the other N - 2 (pooled over neighbours in the same way), add more second
acquisitions (as for objects). The null's fraction |eps| < 1 is about 0.52 for Gaussian noise
(sqrt(2) N(0, 1)); a codec that changes nothing has 1.

**No verdict.** A predictor's value at a pixel depends on its neighbourhood (its halo), so
neighbouring pixels' eps are correlated and a test counting pixels as independent would claim a
precision it does not have. The summaries below are descriptive: the fraction of pixels inside the
band beside the null's, the quantiles of |eps|, and the fraction of pixels beyond the null's own
99th percentile of |eps| (about 1 % for a second acquisition, a little less in the dark: above).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi

__all__ = ["pixel_sigma", "pixel_floor", "pixel_eps", "pixel_summary", "pixel_null", "NULL_QUANTILE"]

# The null's quantile of |eps| beyond which a codec's pixels are counted (summary "beyond_null_q99").
NULL_QUANTILE = 0.99
# Relative size below which two values count as equal: float32 rounding of a predictor's output
# (~6e-8 relative) stays below it, any real change above.
_ROUNDING = 1e-6
_ROWS = 1 << 20  # pixels per pass of the per-pixel loops (bounds their float64 temporaries)


def _flat(a) -> np.ndarray:
    return np.asarray(a).reshape(-1)


def pixel_sigma(stack, *, radius: int = 1) -> np.ndarray:
    """sigma_raw of the maps ``stack`` (a sequence of N >= 2 replica maps of one shape), pixel by
    pixel (float64, the maps' shape): the square root of the mean, over each pixel's neighbours
    within ``radius`` pixels along every axis (8 in an image for radius 1, 26 in a volume), of their
    variance over the maps (ddof 1), the pixel itself left out (module docstring says why).
    ``radius=0`` gives each pixel's own sd over the maps. Two passes over the maps, in chunks: no
    N-fold copy is made."""
    stack = list(stack)
    if len(stack) < 2:
        raise ValueError(f"pixel_sigma needs at least 2 maps; got {len(stack)}")
    if int(radius) != radius or radius < 0:
        raise ValueError(f"pixel_sigma's radius must be a whole number of pixels >= 0; got {radius}")
    shape = np.shape(stack[0])
    out = np.empty(int(np.prod(shape)), dtype=np.float64)
    flats = [_flat(m) for m in stack]
    for start in range(0, out.size, _ROWS):
        part = slice(start, start + _ROWS)
        mean = np.zeros(len(out[part]))
        for m in flats:
            mean += m[part]
        mean /= len(flats)
        ss = np.zeros_like(mean)
        for m in flats:
            d = m[part] - mean
            ss += d * d
        out[part] = ss / (len(flats) - 1)
    out = out.reshape(shape)
    if radius:
        out = _neighbour_mean(out, int(radius))
    return np.sqrt(out, out=out)


def _neighbour_mean(var: np.ndarray, radius: int) -> np.ndarray:
    """Mean of ``var`` (>= 0) over each pixel's neighbours within ``radius`` along every axis and
    inside the array, the pixel itself left out; its own value where it has no neighbour (an array
    of one pixel). Sums along one axis after the other, then the pixel's own value taken off: where
    every neighbour is 0 the sum is the pixel's value exactly, so the mean is exactly 0, and rounding
    never makes it negative."""
    if var.size == 0 or var.ndim == 0:
        return var
    total = var
    ones = np.ones(2 * radius + 1)
    for axis in range(var.ndim):
        total = ndi.correlate1d(total, ones, axis=axis, mode="constant", cval=0.0)
    total -= var
    count = np.ones((1,) * var.ndim)
    for axis, n in enumerate(var.shape):  # positions within radius inside the array, per axis
        i = np.arange(n)
        per_axis = (np.minimum(i, radius) + np.minimum(n - 1 - i, radius) + 1).astype(np.float64)
        count = count * per_axis.reshape([-1 if k == axis else 1 for k in range(var.ndim)])
    count = np.broadcast_to(count - 1.0, var.shape)
    return np.divide(total, count, out=var.copy(), where=count > 0)


def pixel_floor(raw, stack) -> float:
    """``h / sqrt(12)``: h the median over pixels of the smallest non-zero |v_r - v_raw| of the
    replicas (module docstring); 0.0 when no replica changed any pixel."""
    raw = _flat(raw)
    smallest = np.full(raw.size, np.inf)
    for m in stack:
        for start in range(0, raw.size, _ROWS):
            part = slice(start, start + _ROWS)
            d = np.abs(_flat(m)[part].astype(np.float64) - raw[part])
            d[d <= _ROUNDING * np.maximum(np.abs(raw[part]), 1.0)] = np.inf
            np.minimum(smallest[part], d, out=smallest[part])
    changed = smallest[np.isfinite(smallest)]
    return float(np.median(changed)) / math.sqrt(12.0) if len(changed) else 0.0


def pixel_eps(a, b, sigma, floor: float = 0.0) -> np.ndarray:
    """eps = (a - b) / max(sigma, floor), pixel by pixel (float64): 0 where a and b agree to
    rounding, +-inf where they differ and the spread is 0."""
    a64 = np.asarray(a, dtype=np.float64)
    diff = a64 - np.asarray(b, dtype=np.float64)
    diff[np.abs(diff) <= _ROUNDING * np.maximum(np.abs(a64), 1.0)] = 0.0
    used = np.maximum(np.asarray(sigma, dtype=np.float64), floor)
    with np.errstate(divide="ignore", invalid="ignore"):
        eps = diff / used
    eps[(used == 0) & (diff == 0)] = 0.0
    return eps


def pixel_null(stack, null_pair, floor: float, sigma=None, *, radius: int = 1) -> np.ndarray:
    """|eps| of simulated second acquisitions, pooled (float32, one value per pixel and pair): the
    null pair with the N replicas' sigma (``sigma``, when already computed), then disjoint pairs of
    the replicas, each with the sigma of the other N - 2 (when N >= 4), pooled over neighbours
    within ``radius`` as :func:`pixel_sigma` (pass the radius ``sigma`` was computed with)."""
    stack = list(stack)
    sigma = pixel_sigma(stack, radius=radius) if sigma is None else sigma
    pooled = [np.abs(pixel_eps(null_pair[0], null_pair[1], sigma, floor)).astype(np.float32)]
    n = len(stack)
    if n >= 4:
        for k in range(n // 2):
            i, j = 2 * k, 2 * k + 1
            rest = [m for r, m in enumerate(stack) if r not in (i, j)]
            pooled.append(np.abs(pixel_eps(stack[i], stack[j], pixel_sigma(rest, radius=radius), floor))
                          .astype(np.float32))
    return np.concatenate([_flat(p) for p in pooled])


def pixel_summary(eps, null_abs: np.ndarray | None = None) -> dict:
    """Descriptive summary of one map of eps: pixels, fraction |eps| < 1, median and upper
    quantiles of |eps|, mean eps (finite values), infinite eps, and with ``null_abs`` (the null's
    |eps|) the fraction of pixels beyond the null's :data:`NULL_QUANTILE` quantile."""
    e = _flat(eps)
    a = np.abs(e)
    finite = np.isfinite(e)
    n = int(e.size)
    out = {"pixels": n,
           "frac_abs_eps_lt_1": float((a < 1).mean()) if n else math.nan,
           "median_abs_eps": float(np.median(a)) if n else math.nan,
           "q95_abs_eps": float(np.quantile(a, 0.95)) if n else math.nan,
           "q99_abs_eps": float(np.quantile(a, 0.99)) if n else math.nan,
           "max_abs_eps": float(a.max()) if n else math.nan,
           "mean_eps": float(e[finite].mean()) if finite.any() else math.nan,
           "n_infinite": int(n - finite.sum())}
    if null_abs is not None and len(null_abs):
        q = float(np.quantile(null_abs, NULL_QUANTILE))
        out["null_q99_abs_eps"] = q
        out["beyond_null_q99"] = float((a > q).mean()) if n else math.nan
    return out
