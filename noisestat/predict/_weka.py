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
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy import ndimage as ndi

__all__ = ["weka_features", "feature_names", "DEFAULT_SIGMAS"]

DEFAULT_SIGMAS = (1, 2, 4, 8, 16)
_HESSIAN = ("module", "trace", "determinant", "eigenvalue1", "eigenvalue2", "orientation",
            "gamma_eigen_difference", "square_eigen_difference")


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


def weka_features(image: np.ndarray, *, sigmas=DEFAULT_SIGMAS) -> np.ndarray:
    """Compute the Weka-style feature stack of a 2D image.

    Parameters
    ----------
    image : ndarray, shape (rows, cols)
        Any real or integer image.
    sigmas : sequence of float, optional
        Nominal scales; each is applied as a Gaussian of 0.4*sigma.

    Returns
    -------
    features : ndarray of float32, shape (rows, cols, n_features)
        Features on the last axis, in the order of :func:`feature_names`.

    Examples
    --------
    >>> import numpy as np
    >>> from noisestat.predict import weka_features
    >>> weka_features(np.zeros((16, 16), np.uint16)).shape
    (16, 16, 70)
    """
    sigmas = tuple(sigmas)
    image = np.asarray(image, dtype=np.float32)
    n = len(feature_names(sigmas))
    out = np.empty(image.shape + (n,), dtype=np.float32)
    out[..., 0] = image
    blurred = {s: ndi.gaussian_filter(image, 0.4 * s, mode="nearest") for s in sigmas}
    k = 1
    for s in sigmas:
        out[..., k] = blurred[s]
        k += 1
    for s in (0,) + sigmas:
        base = image if s == 0 else blurred[s]
        gx = ndi.sobel(base, axis=1, mode="nearest")
        gy = ndi.sobel(base, axis=0, mode="nearest")
        out[..., k] = np.hypot(gx, gy)
        k += 1
        a = ndi.sobel(gx, axis=1, mode="nearest")
        b = ndi.sobel(gx, axis=0, mode="nearest")
        d = ndi.sobel(gy, axis=0, mode="nearest")
        _hessian_into(out[..., k:k + 8], a, b, d)
        k += 8
    for s, j in _dog_pairs(sigmas):
        np.subtract(blurred[j], blurred[s], out=out[..., k])
        k += 1
    return out


def _hessian_into(out: np.ndarray, a: np.ndarray, b: np.ndarray, d: np.ndarray) -> None:
    trace = a + d
    diff = a - d
    disc2 = 4 * b * b + diff * diff
    disc = np.sqrt(disc2)
    out[..., 0] = np.sqrt(a * a + b * b + d * d)
    out[..., 1] = trace
    out[..., 2] = a * d - b * b
    out[..., 3] = 0.5 * (trace + disc)
    out[..., 4] = 0.5 * (trace - disc)
    with np.errstate(invalid="ignore", divide="ignore"):
        cosine = np.where(disc > 0, diff / disc, 1.0)
    out[..., 5] = 0.5 * np.arccos(np.clip(cosine, -1.0, 1.0))
    out[..., 6] = trace * trace * disc2
    out[..., 7] = disc2
