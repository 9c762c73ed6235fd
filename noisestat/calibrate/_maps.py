"""Per-pixel noise maps for sCMOS cameras (after Huang et al., Nat. Methods 2013).

Each pixel of an sCMOS camera has its own amplifier: its own offset, read noise and gain. From a
dark stack, offset and read variance per pixel are the mean and variance over frames; from
several light levels, the gain per pixel is the weighted least-squares slope through the origin
of (variance - read variance) against (mean - offset), each level weighted by the inverse
variance of its variance estimate, (L - 1) / (2 v^2).
"""

from __future__ import annotations

import math
import numpy as np

from ..camera import PixelMaps

__all__ = ["pixel_maps", "MIN_DARK_FRAMES", "MIN_GAIN_DOF"]

# Per-pixel estimates are only worth storing when they are precise: a variance from n degrees of
# freedom has a relative standard error sqrt(2/n), so 100 degrees of freedom give ~14 % on the gain.
MIN_DARK_FRAMES = 20
MIN_GAIN_DOF = 100


def pixel_maps(levels, fit_mask: np.ndarray, gain_dn_per_e: float) -> PixelMaps | None:
    """Per-pixel maps from the temporal levels (sorted by mean), the levels to fit and the
    camera's overall gain (used only for the weights).

    Returns None when the series has too few frames for useful per-pixel estimates
    (fewer than ``MIN_DARK_FRAMES`` dark frames or ``MIN_GAIN_DOF`` degrees of freedom in the
    fitted levels).
    """
    darks = [lv.dark for lv in levels]
    # Dark frames of every level are pooled (dark current over these exposures is negligible
    # next to the read noise; when it is not, the per-level dark means below absorb it).
    dark_dof = sum(d.shape[0] - 1 for d in darks)
    gain_dof = sum(lv.bright.shape[0] - 1 for lv, f in zip(levels, fit_mask) if f)
    if dark_dof + len(darks) < MIN_DARK_FRAMES or gain_dof < MIN_GAIN_DOF:
        return None
    read_var = sum(d.astype(np.float64).var(axis=0, ddof=1) * (d.shape[0] - 1) for d in darks) / dark_dof
    offset = np.mean([d.astype(np.float64).mean(axis=0) for d in darks], axis=0)
    sxx = np.zeros_like(offset)
    sxy = np.zeros_like(offset)
    for lv, use in zip(levels, fit_mask):
        if not use:
            continue
        frames = lv.bright.astype(np.float64)
        frames -= frames.mean(axis=(1, 2), keepdims=True) - frames.mean()  # flicker
        count = frames.shape[0]
        x = frames.mean(axis=0) - lv.dark.astype(np.float64).mean(axis=0)
        v = frames.var(axis=0, ddof=1)
        y = v - read_var
        # Weights from the expected variance, not the measured one: weighting by a noisy estimate's
        # own inverse square favours the estimates that came out low and biases the gain down.
        expected = gain_dn_per_e * np.maximum(x, 0.0) + read_var
        w = (count - 1) / (2 * np.maximum(expected, 1e-6) ** 2)
        sxx += w * x * x
        sxy += w * x * y
    with np.errstate(invalid="ignore", divide="ignore"):
        gain = sxy / sxx
    bad = ~np.isfinite(gain) | (gain <= 0)
    if bad.any():
        # pixels whose fit failed (dead or stuck pixels) take the median gain
        gain[bad] = np.median(gain[~bad]) if (~bad).any() else math.nan
    return PixelMaps(offset, read_var, gain)
