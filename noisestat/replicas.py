"""Monte-Carlo raw-equivalent images drawn from one raw image and a camera profile.

Statistical meaning of the mode implemented ("pixel as mean", the method of Pomarico et al. 2022)
--------------------------------------------------------------------------------------------------
Each raw pixel value y is taken as the mean of the pixel's noise distribution. In electrons,
``e = max(y - offset, 0) / K``; a replica draws ``n ~ Poisson(e)``, returns to DN with
``offset + K * n``, adds read noise ``N(0, read_noise_dn**2)``, rounds to whole DN and clips to the
digitiser range. The replica's pixels therefore scatter around the *observed* image with the
variance the camera has at that intensity, ``K * (y - offset) + read_noise_dn**2``.

What this gives, and what it does not:

* The spread *between* replicas is the spread a second acquisition would show, so the standard
  deviation of any measurement over replicas estimates sigma_raw, the Monte-Carlo predictive
  uncertainty of that measurement.
* A replica is *not* a second acquisition: it lies about twice the noise variance away from the
  noise-free scene (the raw's own noise plus the fresh draw) and its noise is correlated with the
  raw image's noise. Measurements on replicas may therefore be biased relative to the raw; only
  their spread is used.
* Fixed-pattern noise (DSNU, PRNU) is part of y and is never resampled: it is the same in every
  acquisition of the same camera.
* Pixels at the digitiser's maximum are saturated; their true signal is unknown and a second
  acquisition would saturate them again, so they are copied unchanged.

Noise models. The profile decides how a pixel's noise is drawn (``CameraProfile.noise_model``):

* ``linear`` (the four required keys): Poisson electrons plus Gaussian read noise, as above;
* ``pixel-maps`` (sCMOS): the same chain with each pixel's own offset, gain and read variance;
* ``noise-map`` (non-linear cameras): Gaussian noise with the measured variance at the pixel's
  value, ``y' = y + N(0, sigma^2(y))``. The Poisson-to-DN relation no longer holds on a bent
  response curve, while the measured variance does; the Gaussian shape is exact up to the
  skewness of shot noise, negligible above a few tens of electrons.

Randomness: one root seed; replica ``i`` draws from its own child generator
``SeedSequence(seed).spawn(n)[i]``, so replica ``i`` is the same whichever worker computes it and
however many workers there are.
"""

from __future__ import annotations

import numpy as np

from .camera import CameraProfile
from .errors import InputError

__all__ = ["draw_replica", "generate_replicas", "replica_seeds", "MODE"]

MODE = "pixel-as-mean"


def replica_seeds(seed: int | np.random.SeedSequence, n: int) -> list[np.random.SeedSequence]:
    """The child seed sequences of ``n`` replicas, from one root seed."""
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return root.spawn(n)


def draw_replica(image: np.ndarray, profile: CameraProfile,
                 rng: np.random.Generator | np.random.SeedSequence | int | None) -> np.ndarray:
    """Draw one raw-equivalent replica of ``image``.

    Parameters
    ----------
    image : ndarray of int, shape (rows, cols)
        The raw image in DN.
    profile : CameraProfile
        The camera's gain, offset, read noise and bit depth.
    rng : numpy.random.Generator, SeedSequence, int or None
        Source of randomness.

    Returns
    -------
    replica : ndarray, same shape and dtype as ``image``

    Examples
    --------
    >>> import numpy as np
    >>> from noisestat import CameraProfile, draw_replica
    >>> cam = CameraProfile(gain_dn_per_e=0.5, offset_dn=100, read_noise_dn=2, bit_depth=12)
    >>> r = draw_replica(np.full((64, 64), 1100, np.uint16), cam, 0)
    >>> r.dtype, bool(abs(r.mean() - 1100) < 1)
    (dtype('uint16'), True)
    """
    if not np.issubdtype(image.dtype, np.integer):
        raise InputError(f"raw image must hold integers; got dtype {image.dtype}")
    rng = np.random.default_rng(rng)
    profile.check_image(image)
    top = min(profile.max_dn, np.iinfo(image.dtype).max)
    bottom = max(0, np.iinfo(image.dtype).min)
    y = image.astype(np.float64)
    if profile.noise_model == "noise-map":
        out = y + rng.standard_normal(image.shape) * np.sqrt(profile.noise_map.variance(y))
    else:
        if profile.noise_model == "pixel-maps":
            maps = profile.pixel_maps
            offset, gain, read_sd = maps.offset_dn, maps.gain_dn_per_e, np.sqrt(maps.read_variance_dn2)
        else:
            offset, gain, read_sd = profile.offset_dn, profile.gain_dn_per_e, profile.read_noise_dn
        electrons = np.maximum(y - offset, 0.0) / gain
        out = offset + gain * rng.poisson(electrons)
        if np.any(read_sd > 0):
            out += rng.standard_normal(image.shape) * read_sd
    out = np.clip(np.rint(out), bottom, top)
    saturated = image >= top
    out[saturated] = image[saturated]
    return out.astype(image.dtype)


def generate_replicas(image: np.ndarray, profile: CameraProfile, n: int = 10,
                      seed: int | np.random.SeedSequence = 0) -> np.ndarray:
    """Draw ``n`` replicas, replica ``i`` from child generator ``i`` of ``seed``.

    Returns
    -------
    stack : ndarray, shape (n, rows, cols), dtype of ``image``
    """
    if n < 2:
        raise InputError(f"replicas: at least 2 are needed to estimate a spread; got {n}")
    return np.stack([draw_replica(image, profile, s) for s in replica_seeds(seed, n)])
