"""A seeded camera and scene simulator, for the demo and for tests with known truth.

The camera is the linear Poisson-Gaussian chain of :class:`~noisestat.camera.CameraProfile`:
electrons ~ Poisson(signal), times the gain K, plus the offset and Gaussian read noise, quantised
once (rounded to whole DN) and clipped to the bit depth.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .camera import CameraProfile

__all__ = ["simulate_scene", "acquire", "sparse_labels", "DEMO_CAMERA"]

DEMO_CAMERA = CameraProfile(gain_dn_per_e=0.46, offset_dn=100.0, read_noise_dn=1.6, bit_depth=16)


def simulate_scene(shape=(512, 512), *, n_objects=None, radius=(4.0, 11.0), background_e=300.0,
                   object_e=1500.0, rng=None):
    """A field of elliptical cells on a slowly varying background.

    Parameters
    ----------
    shape : (rows, cols)
    n_objects : int, optional
        Default: one per 2500 pixels.
    radius : (min, max)
        Semi-axis range of the ellipses, in pixels.
    background_e, object_e : float
        Mean photo-electrons of the background and extra electrons inside a cell.
    rng : Generator, int or None

    Returns
    -------
    electrons : ndarray of float, shape ``shape``
        Noise-free expected photo-electrons per pixel.
    truth : ndarray of bool
        The cells' true footprint.
    """
    rng = np.random.default_rng(rng)
    rows, cols = shape
    if n_objects is None:
        n_objects = rows * cols // 2500
    yy, xx = np.mgrid[:rows, :cols]
    truth = np.zeros(shape, dtype=bool)
    for _ in range(n_objects):
        cy, cx = rng.uniform(0, rows), rng.uniform(0, cols)
        a, b = rng.uniform(*radius, size=2)
        t = rng.uniform(0, np.pi)
        u = (yy - cy) * np.cos(t) + (xx - cx) * np.sin(t)
        v = -(yy - cy) * np.sin(t) + (xx - cx) * np.cos(t)
        truth |= (u / a) ** 2 + (v / b) ** 2 < 1
    electrons = (ndi.gaussian_filter(truth.astype(float), 1.2) * object_e + background_e
                 + 0.2 * background_e * np.sin(xx / cols * 4))
    return electrons, truth


def acquire(electrons: np.ndarray, profile: CameraProfile, rng=None, *, dtype=np.uint16) -> np.ndarray:
    """One acquisition of a scene of expected ``electrons`` by the camera ``profile``."""
    rng = np.random.default_rng(rng)
    y = profile.offset_dn + profile.gain_dn_per_e * rng.poisson(electrons)
    y = y + rng.normal(0.0, profile.read_noise_dn, electrons.shape)
    return np.clip(np.rint(y), 0, profile.max_dn).astype(dtype)


def sparse_labels(truth: np.ndarray, *, fraction=0.02, rng=None) -> np.ndarray:
    """Scribble-like sparse labels from a true mask: 1 background, 2 object, 0 unlabelled.

    A random ``fraction`` of pixels is labelled, only well inside cells (eroded by 2 px) or well
    outside (3 px away), as a user's scribbles would be.
    """
    rng = np.random.default_rng(rng)
    pick = rng.random(truth.shape) < fraction
    labels = np.zeros(truth.shape, dtype=np.uint8)
    labels[pick & ~ndi.binary_dilation(truth, iterations=3)] = 1
    labels[pick & ndi.binary_erosion(truth, iterations=2)] = 2
    return labels
