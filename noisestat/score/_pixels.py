"""Per-pixel scores of a value predictor: sigma_raw, eps and the null of a second acquisition, pixel
by pixel.

For a predictor that gives a value v per pixel (a probability map, a restored image), with v_raw on
the raw image, v_1..v_N on N replicas and v_c on a decoded image::

    sigma_raw(x) = sd over replicas of v_r(x)                        (ddof = 1)
    eps(x)       = (v_raw(x) - v_c(x)) / max(sigma_raw(x), floor)

**The floor** is the rule of the per-object parameters (:mod:`noisestat.score`), for one map: a
predictor whose values are quantised (integers, a probability in steps of 1/trees) can give the
same value in every replica at a pixel, sigma_raw = 0 saying only that the spread is below one
step. The step h is the median, over the pixels some replica changed, of the smallest non-zero
|v_r - v_raw| there; the spread used is ``max(sigma_raw, h / sqrt(12))``. For continuous values h is
far below sigma_raw and the floor binds only where no replica changed the value. With no pixel
changed by any replica h is undefined and sigma stays 0: eps is then 0 where the codec gives the
raw value and +-inf elsewhere.

**The null**: two more replicas, independent of the N, stand for a second acquisition; their
eps (v_a - v_b) / sigma is what the camera's own noise does. Disjoint pairs of the N replicas, each
judged with the sigma of the other N - 2, add more second acquisitions (as for objects). The
null's fraction |eps| < 1 is 0.52 for Gaussian noise (sqrt(2) N(0, 1)); a codec that changes nothing
has 1.

**No verdict.** A predictor's value at a pixel depends on its neighbourhood (its halo), so
neighbouring pixels' eps are correlated and a test counting pixels as independent would claim a
precision it does not have. The summaries below are descriptive: the fraction of pixels inside the
band beside the null's, the quantiles of |eps|, and the fraction of pixels beyond the null's own
99th percentile of |eps| (a second acquisition has 1 % there by construction).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["pixel_sigma", "pixel_floor", "pixel_eps", "pixel_summary", "pixel_null", "NULL_QUANTILE"]

# The null's quantile of |eps| beyond which a codec's pixels are counted (summary "beyond_null_q99").
NULL_QUANTILE = 0.99
# Relative size below which two values count as equal: float32 rounding of a predictor's output
# (~6e-8 relative) stays below it, any real change above.
_ROUNDING = 1e-6
_ROWS = 1 << 20  # pixels per pass of the per-pixel loops (bounds their float64 temporaries)


def _flat(a) -> np.ndarray:
    return np.asarray(a).reshape(-1)


def pixel_sigma(stack) -> np.ndarray:
    """sd over the maps of ``stack`` (a sequence of N >= 2 maps of one shape), pixel by pixel, ddof 1
    (float64, the maps' shape). Two passes over the maps, in chunks: no N-fold copy is made."""
    stack = list(stack)
    if len(stack) < 2:
        raise ValueError(f"pixel_sigma needs at least 2 maps; got {len(stack)}")
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
        out[part] = np.sqrt(ss / (len(flats) - 1))
    return out.reshape(shape)


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


def pixel_null(stack, null_pair, floor: float, sigma=None) -> np.ndarray:
    """|eps| of simulated second acquisitions, pooled (float32, one value per pixel and pair): the
    null pair with the N replicas' sigma (``sigma``, when already computed), then disjoint pairs of
    the replicas, each with the sigma of the other N - 2 (when N >= 4)."""
    stack = list(stack)
    sigma = pixel_sigma(stack) if sigma is None else sigma
    pooled = [np.abs(pixel_eps(null_pair[0], null_pair[1], sigma, floor)).astype(np.float32)]
    n = len(stack)
    if n >= 4:
        for k in range(n // 2):
            i, j = 2 * k, 2 * k + 1
            rest = [m for r, m in enumerate(stack) if r not in (i, j)]
            pooled.append(np.abs(pixel_eps(stack[i], stack[j], pixel_sigma(rest), floor)).astype(np.float32))
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
