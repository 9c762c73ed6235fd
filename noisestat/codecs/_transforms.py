"""Reversible intensity mappings shared by the codecs, each recorded as a few numbers.

* range scaling (ImageJ's "8-bit"): the image's min..max onto 0..L, for coders that take fewer
  bits than the raw; lossy by construction, the range is side information;
* integer stretch: ``(y - lo) * f`` with an integer factor ``f`` that fills the sample range, so a
  codec's quality knob (PSNR relative to the full range, JPEG XL's distance) means the same on dim
  and bright images; exactly reversible, since every code is a multiple of ``f``;
* generalised Anscombe transform (GAT): for y = offset + K * Poisson + N(0, read^2),
  ``z = (2/K) sqrt(K (y - offset) + 3/8 K^2 + read^2)`` has unit noise variance at every
  intensity, so one absolute bound or quantisation step in z is the same fraction of the local
  noise sigma everywhere.
"""

from __future__ import annotations

import numpy as np

__all__ = ["range_scale", "range_unscale", "stretch", "unstretch", "gat", "inverse_gat"]


def range_scale(image: np.ndarray, levels: int, *, lo: int | None = None, span: int | None = None):
    """Codes 0..levels of the image's own min..max (or of ``lo``..``lo + span``, e.g. a whole volume's
    range for one block of it); returns (codes float, lo, span)."""
    if lo is None or span is None:
        lo, hi = int(image.min()), int(image.max())
        span = max(hi - lo, 1)
    codes = np.rint((image.astype(np.float64) - lo) * (levels / span))
    return codes, lo, span


def range_unscale(codes: np.ndarray, lo: int, span: int, levels: int) -> np.ndarray:
    return lo + codes.astype(np.float64) * (span / levels)


def stretch(image: np.ndarray, top: int, dtype=None):
    """Integer stretch of the image's range onto 0..top; returns (codes, lo, factor).

    The codes are of ``dtype`` (default: the image's), which must hold 0..top; the image's range
    must not exceed ``top``.
    """
    lo = int(image.min())
    span = max(int(image.max()) - lo, 1)
    factor = max(top // span, 1)
    codes = (image.astype(np.int64) - lo) * factor
    return codes.astype(image.dtype if dtype is None else dtype), lo, factor


def unstretch(codes: np.ndarray, lo: int, factor: int) -> np.ndarray:
    return lo + codes.astype(np.float64) / factor


def gat(y: np.ndarray, gain: float, offset: float, read: float) -> np.ndarray:
    """Generalised Anscombe transform to unit noise variance (arguments below the domain clamp to 0)."""
    inside = gain * (np.asarray(y, dtype=np.float64) - offset) + 0.375 * gain**2 + read**2
    return (2.0 / gain) * np.sqrt(np.maximum(inside, 0.0))


def inverse_gat(z: np.ndarray, gain: float, offset: float, read: float, *, error_variance: float = 0.0) -> np.ndarray:
    """Algebraic inverse of :func:`gat`.

    ``error_variance`` is the variance of an error added in z (quantisation: step^2 / 12). Since
    y is quadratic in z, such an error biases y by ``gain * error_variance / 4``; it is subtracted.
    """
    z = np.asarray(z, dtype=np.float64)
    return ((gain * z / 2.0) ** 2 - 0.375 * gain**2 - read**2) / gain + offset - gain * error_variance / 4.0
