"""Per-pixel noise maps for sCMOS cameras (after Huang et al., Nat. Methods 2013).

Each pixel of an sCMOS camera has its own amplifier: its own offset, read noise and gain. From a
dark stack, offset and read variance per pixel are the mean and variance over frames; from
several light levels, the gain per pixel is the weighted least-squares slope through the origin
of (variance - read variance) against (mean - offset), each level weighted by the inverse
variance of its variance estimate, (L - 1) / (2 v^2).
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

from ..camera._profile import PixelMaps

__all__ = ["pixel_maps", "unique_darks", "frame_counts", "MIN_DARK_FRAMES", "MIN_DARK_DOF", "MIN_GAIN_DOF"]

# Per-pixel estimates are only worth storing when they are precise: a variance from n degrees of
# freedom has a relative standard error sqrt(2/n), so 100 degrees of freedom give ~14 % on the gain.
# The read variance map needs MIN_DARK_FRAMES frames in one stack, or as many degrees of freedom
# (frames minus one per distinct stack) over several: 19 give a relative sd of sqrt(2/19) = 32 %.
MIN_DARK_FRAMES = 20
MIN_DARK_DOF = MIN_DARK_FRAMES - 1
MIN_GAIN_DOF = 100


def unique_darks(levels) -> list[np.ndarray]:
    """The distinct dark stacks of the levels: a stack shared by several levels (the same array, or
    the same pixel values read twice) is listed once."""
    out, ids, digests = [], set(), set()
    for lv in levels:
        d = lv.dark
        if id(d) in ids:
            continue
        ids.add(id(d))
        digest = hashlib.sha256(np.ascontiguousarray(d).tobytes()).digest() + repr(d.shape).encode()
        if digest in digests:
            continue
        digests.add(digest)
        out.append(d)
    return out


def frame_counts(levels, fit_mask) -> dict:
    """What the per-pixel rule counts: distinct dark frames, and degrees of freedom of the fitted levels."""
    darks = unique_darks(levels)
    return {"dark_frames": int(sum(d.shape[0] for d in darks)), "dark_stacks": len(darks),
            "dark_dof": int(sum(d.shape[0] - 1 for d in darks)),
            "gain_dof": int(sum(lv.bright.shape[0] - 1 for lv, f in zip(levels, fit_mask) if f))}


def pixel_maps(levels, fit_mask: np.ndarray, gain_dn_per_e: float) -> PixelMaps | None:
    """Per-pixel maps from the temporal levels (sorted by mean), the levels to fit and the
    camera's overall gain (used only for the weights).

    Returns None when the series has too few frames for useful per-pixel estimates
    (fewer than ``MIN_DARK_DOF`` degrees of freedom in its distinct dark stacks, or fewer than
    ``MIN_GAIN_DOF`` in the fitted levels).
    """
    darks = unique_darks(levels)
    # Each dark stack counts once, however many levels share it (one dark stack for all levels is
    # the usual --flat measurement): frames and degrees of freedom are those of the distinct stacks.
    # Dark current over these exposures is taken as negligible next to the read noise when the
    # stacks are pooled; the per-level dark means below absorb it in the gain fit.
    dark_frames = sum(d.shape[0] for d in darks)
    dark_dof = sum(d.shape[0] - 1 for d in darks)
    gain_dof = sum(lv.bright.shape[0] - 1 for lv, f in zip(levels, fit_mask) if f)
    if dark_dof < MIN_DARK_DOF or gain_dof < MIN_GAIN_DOF:
        return None
    read_var = sum(d.astype(np.float64).var(axis=0, ddof=1) * (d.shape[0] - 1) for d in darks) / dark_dof
    offset = sum(d.astype(np.float64).sum(axis=0) for d in darks) / dark_frames
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
