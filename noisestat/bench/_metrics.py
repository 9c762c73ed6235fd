"""Image-quality metrics of a decoded image against its raw original, in camera units.

:func:`compression_metrics` gathers everything ``noisestat compress-bench`` reports for one
(raw, decoded) pair: compression ratio, pixel errors (MSE, RMSE, bias, largest error), PSNR, SSIM,
multi-scale SSIM, Pearson correlation and, when the camera's per-pixel noise is known, the coding
error in units of that noise.

Units: pixel values are in DN (the camera's digital numbers), so ``mse`` is in DN^2, ``rmse``,
``bias`` and ``max_abs_error`` in DN, ``psnr`` in dB; ``error_sigma_*`` are in units of the
per-pixel temporal noise standard deviation; ratios, SSIM, MS-SSIM and correlations have none.

Multi-scale SSIM (:func:`ms_ssim`) is written here from Wang, Simoncelli & Bovik (2003),
"Multi-scale structural similarity for image quality assessment", 37th Asilomar Conference on
Signals, Systems and Computers, because neither scikit-image nor scipy provides it.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi

__all__ = ["compression_metrics", "default_data_range", "ms_ssim", "ssim", "MS_SSIM_WEIGHTS",
           "SSIM_SETTINGS", "STANDARD_BIT_DEPTHS", "SIGMA_METRICS"]

#: Exponents of the five scales, finest first (Wang et al. 2003, section 3.1).
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

#: Settings of every SSIM computed here: those of Wang et al. (2004), "Image quality assessment:
#: from error visibility to structural similarity": an 11-tap Gaussian window of sigma 1.5 pixels
#: (truncated at 3.5 sigma), population (co)variances, K1 = 0.01, K2 = 0.03, local statistics
#: averaged over the pixels at least 5 pixels (half a window) away from the edge.
SSIM_SETTINGS = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False, "K1": 0.01, "K2": 0.03}

#: Bit depths tried, smallest first, for the PSNR peak when no camera bit depth is known.
STANDARD_BIT_DEPTHS = (8, 10, 12, 14, 16)

#: Keys present only when a per-pixel noise sigma is given.
SIGMA_METRICS = ("error_sigma_rms", "error_sigma_max", "frac_error_within_1_sigma", "noise_inflation")

_TRUNCATE = 3.5
_RADIUS = int(_TRUNCATE * SSIM_SETTINGS["sigma"] + 0.5)  # 5: the 11-tap window
_WIN = 2 * _RADIUS + 1


def default_data_range(raw: np.ndarray, bit_depth: int | None = None) -> tuple[float, str]:
    """The PSNR/SSIM peak for ``raw``: ``2**bit_depth - 1`` DN.

    Parameters
    ----------
    raw : ndarray of int
        The raw image.
    bit_depth : int, optional
        The camera's bit depth, when known.

    Returns
    -------
    data_range_dn : float
        ``2**bit_depth - 1`` with the camera's bit depth, else with the smallest of 8, 10, 12, 14
        and 16 bits that holds ``raw.max()`` (beyond 16 bits, the bits ``raw.max()`` needs).
    source : str
        How it was chosen, for the record (e.g. ``"camera bit_depth 12"``).

    Examples
    --------
    >>> import numpy as np
    >>> default_data_range(np.array([[0, 3000]]))
    (4095.0, 'smallest of 8/10/12/14/16 bits holding max 3000: 12')
    >>> default_data_range(np.array([[0, 3000]]), bit_depth=16)
    (65535.0, 'camera bit_depth 16')
    """
    if bit_depth is not None:
        return float(2 ** int(bit_depth) - 1), f"camera bit_depth {int(bit_depth)}"
    top = int(np.max(raw))
    for bits in STANDARD_BIT_DEPTHS:
        if top <= 2**bits - 1:
            return float(2**bits - 1), f"smallest of 8/10/12/14/16 bits holding max {top}: {bits}"
    bits = max(top, 1).bit_length()
    return float(2**bits - 1), f"bits needed for max {top}: {bits}"


def _win_size(shape) -> int:
    """11, or the largest odd size that fits an image smaller than 11 pixels on a side."""
    side = min(shape)
    return _WIN if side >= _WIN else max(1, side - (1 - side % 2))


def ssim(raw: np.ndarray, decoded: np.ndarray, *, data_range: float) -> float:
    """Single-scale SSIM with the settings of :data:`SSIM_SETTINGS` (scikit-image).

    Parameters
    ----------
    raw, decoded : ndarray, shape (rows, cols)
    data_range : float
        Peak value in DN (sets the stabilising constants C1 = (K1 L)^2, C2 = (K2 L)^2).

    Returns
    -------
    float
        ``skimage.metrics.structural_similarity`` with an 11-tap Gaussian window (sigma 1.5),
        population covariances and the default K1, K2. An image under 11 pixels on a side keeps
        the Gaussian but averages the SSIM map over a smaller interior (odd ``win_size``).
    """
    from skimage.metrics import structural_similarity

    a = np.asarray(raw, dtype=np.float64)
    b = np.asarray(decoded, dtype=np.float64)
    return float(structural_similarity(a, b, data_range=float(data_range), win_size=_win_size(a.shape),
                                       **SSIM_SETTINGS))


def _ssim_maps(a: np.ndarray, b: np.ndarray, c1: float, c2: float, crop: int):
    """Luminance and contrast-structure maps of Wang et al. (2004), cropped by ``crop`` pixels."""
    def blur(x):
        return ndi.gaussian_filter(x, SSIM_SETTINGS["sigma"], truncate=_TRUNCATE, mode="reflect")

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a * mu_a
    var_b = blur(b * b) - mu_b * mu_b
    cov = blur(a * b) - mu_a * mu_b
    lum = (2 * mu_a * mu_b + c1) / (mu_a * mu_a + mu_b * mu_b + c1)
    cs = (2 * cov + c2) / (var_a + var_b + c2)
    if crop:
        lum, cs = lum[crop:-crop, crop:-crop], cs[crop:-crop, crop:-crop]
    return lum, cs


def _downsample(x: np.ndarray) -> np.ndarray:
    """2x2 block average then keep every other pixel (the low-pass-and-subsample step of the paper)."""
    rows, cols = (x.shape[0] // 2) * 2, (x.shape[1] // 2) * 2
    x = x[:rows, :cols]
    return 0.25 * (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2])


def ms_ssim_scales(shape, scales: int = 5) -> int:
    """How many of ``scales`` dyadic scales an image of ``shape`` supports.

    Scale j (1 = full resolution) has ``min(shape) // 2**(j-1)`` pixels on its short side; it is used
    when that is at least 11, the SSIM window. At least one scale is always used.

    Examples
    --------
    >>> ms_ssim_scales((192, 192)), ms_ssim_scales((100, 300)), ms_ssim_scales((8, 8))
    (5, 4, 1)
    """
    side = min(shape)
    n = 1
    while n < scales and side // 2**n >= _WIN:
        n += 1
    return n


def ms_ssim(raw: np.ndarray, decoded: np.ndarray, *, data_range: float, weights=MS_SSIM_WEIGHTS,
            return_scales: bool = False):
    """Multi-scale SSIM (Wang, Simoncelli & Bovik 2003), written from the paper.

    At each scale j = 1..M (1 = full resolution) the contrast-structure term c_j s_j is the mean of
    the map ``(2 cov + C2) / (var_x + var_y + C2)`` under the SSIM window of :data:`SSIM_SETTINGS`;
    at the coarsest scale M the luminance term is included, i.e. the mean of the full SSIM map
    ``l * cs`` is used there (as in the authors' MATLAB code). Between scales the images are
    low-passed with a 2x2 average and subsampled by 2. The result is
    ``prod_{j<M} mean(cs_j)**w_j * mean(ssim_M)**w_M`` with the standard exponents
    :data:`MS_SSIM_WEIGHTS`.

    Parameters
    ----------
    raw, decoded : ndarray, shape (rows, cols)
    data_range : float
        Peak value in DN; C1 = (0.01 L)^2 and C2 = (0.03 L)^2 at every scale.
    weights : sequence of float
        Exponents per scale, finest first (default: the paper's five).
    return_scales : bool
        Also return the number of scales used.

    Returns
    -------
    value : float
        MS-SSIM; 1 for identical images.
    n_scales : int
        Only with ``return_scales``: scales actually used.

    Notes
    -----
    An image too small for all scales (short side under 176 pixels for five) uses the first M
    scales that keep at least 11 pixels (:func:`ms_ssim_scales`), with their exponents rescaled to
    sum to 1 (the full published set, which sums to 1.0001, is used as it is); ``n_scales`` says how
    many. With one scale the result is exactly single-scale SSIM. A negative mean contrast-structure
    term (anti-correlated images) is clipped to 0 before the fractional power, as the TensorFlow and
    pytorch-msssim implementations do; the result is then 0.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.random.default_rng(0).integers(0, 4096, (64, 64))
    >>> ms_ssim(img, img, data_range=4095.0)
    1.0
    """
    a = np.asarray(raw, dtype=np.float64)
    b = np.asarray(decoded, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"ms_ssim needs two 2D images of one shape; got {a.shape} and {b.shape}")
    weights = np.asarray(weights, dtype=np.float64)
    n = ms_ssim_scales(a.shape, len(weights))
    w = weights if n == len(weights) else weights[:n] / weights[:n].sum()
    c1 = (SSIM_SETTINGS["K1"] * float(data_range)) ** 2
    c2 = (SSIM_SETTINGS["K2"] * float(data_range)) ** 2
    value = 1.0
    for j in range(n):
        crop = (_win_size(a.shape) - 1) // 2
        lum, cs = _ssim_maps(a, b, c1, c2, crop)
        term = float(np.mean(lum * cs)) if j == n - 1 else float(np.mean(cs))
        value *= max(term, 0.0) ** w[j]
        if j < n - 1:
            a, b = _downsample(a), _downsample(b)
    value = float(value)
    return (value, n) if return_scales else value


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    da, db = a - a.mean(), b - b.mean()
    denom = math.sqrt(float(np.sum(da * da)) * float(np.sum(db * db)))
    return float(np.sum(da * db) / denom) if denom > 0 else math.nan


def compression_metrics(raw: np.ndarray, decoded: np.ndarray, *, n_bytes: int | None, sigma=None,
                        data_range: float | None = None, bit_depth: int | None = None) -> dict:
    """Every metric of a decoded image against its raw original.

    Parameters
    ----------
    raw : ndarray of int, shape (rows, cols)
        The raw camera image (DN).
    decoded : ndarray, shape (rows, cols)
        What the codec gave back (DN), any numeric dtype.
    n_bytes : int or None
        Bytes of the compressed stream; None when unknown.
    sigma : float or ndarray, optional
        Per-pixel temporal noise standard deviation of ``raw`` (DN), > 0, broadcastable to
        ``raw.shape``. Adds the ``error_sigma_*`` metrics and ``noise_inflation``.
    data_range : float, optional
        PSNR and SSIM peak L (DN). Default: :func:`default_data_range` of ``raw`` and ``bit_depth``.
    bit_depth : int, optional
        Camera bit depth for the default peak.

    Returns
    -------
    dict
        ``compression_ratio``
            ``raw.nbytes / n_bytes`` (None when ``n_bytes`` is unknown).
        ``space_saving``
            ``1 - 1 / compression_ratio`` (None when unknown).
        ``n_bytes``, ``raw_bytes``
            Stream and raw sizes in bytes.
        ``mse``
            Mean squared error, DN^2 (exactly 0.0 for identical images).
        ``rmse``
            Its square root, DN.
        ``psnr``
            ``10 log10(L^2 / mse)`` in dB; ``inf`` for identical images.
        ``ssim``
            Single-scale SSIM (:func:`ssim`).
        ``ms_ssim``, ``ms_ssim_scales``
            Multi-scale SSIM (:func:`ms_ssim`) and the number of scales it used.
        ``pearson``
            Pearson correlation of the pixel values (NaN when one image is constant).
        ``bias``
            ``mean(decoded - raw)``, DN.
        ``max_abs_error``
            ``max |decoded - raw|``, DN.
        ``data_range_dn``, ``data_range_source``
            The peak L used and how it was chosen.
        ``error_sigma_rms``
            With ``sigma``: ``sqrt(mean(((decoded - raw) / sigma)^2))``, in noise sigmas.
        ``error_sigma_max``
            With ``sigma``: ``max |decoded - raw| / sigma``.
        ``frac_error_within_1_sigma``
            With ``sigma``: fraction of pixels with ``|decoded - raw| <= sigma``.
        ``noise_inflation``
            With ``sigma``: ``sqrt(1 + var(decoded - raw) / mean(sigma^2))``, the factor by which
            the total noise of the decoded image exceeds the camera's, *assuming the coding error
            is independent of the camera noise* (then variances add). Coding error correlated with
            the noise (a codec that removes noise) makes this an overestimate; the constant part
            of the error (``bias``) is excluded since it is not noise.

    Examples
    --------
    >>> import numpy as np
    >>> raw = np.full((16, 16), 100, dtype=np.uint16)
    >>> m = compression_metrics(raw, raw + 2, n_bytes=128, sigma=4.0)
    >>> m["compression_ratio"], m["bias"], m["mse"], m["error_sigma_rms"], m["noise_inflation"]
    (4.0, 2.0, 4.0, 0.5, 1.0)
    """
    raw = np.asarray(raw)
    decoded = np.asarray(decoded)
    if raw.ndim != 2 or decoded.shape != raw.shape:
        raise ValueError(f"raw and decoded must be 2D images of one shape; got {raw.shape} and {decoded.shape}")
    if data_range is None:
        data_range, source = default_data_range(raw, bit_depth)
    else:
        data_range, source = float(data_range), "given"
    if not data_range > 0:
        raise ValueError(f"data_range must be > 0; got {data_range}")

    a = raw.astype(np.float64)
    b = decoded.astype(np.float64)
    err = b - a
    mse = float(np.mean(err * err))
    ratio = raw.nbytes / n_bytes if n_bytes else None
    ms, scales = ms_ssim(a, b, data_range=data_range, return_scales=True)
    out = {
        "compression_ratio": ratio,
        "space_saving": None if ratio is None else 1.0 - 1.0 / ratio,
        "n_bytes": None if n_bytes is None else int(n_bytes),
        "raw_bytes": int(raw.nbytes),
        "mse": mse,
        "rmse": math.sqrt(mse),
        "psnr": math.inf if mse == 0 else 10.0 * math.log10(data_range**2 / mse),
        "ssim": ssim(a, b, data_range=data_range),
        "ms_ssim": ms,
        "ms_ssim_scales": scales,
        "pearson": _pearson(a, b),
        "bias": float(np.mean(err)),
        "max_abs_error": float(np.max(np.abs(err))),
        "data_range_dn": data_range,
        "data_range_source": source,
    }
    if sigma is not None:
        sigma = np.broadcast_to(np.asarray(sigma, dtype=np.float64), raw.shape)
        if not (np.isfinite(sigma).all() and (sigma > 0).all()):
            raise ValueError("sigma must be finite and > 0 at every pixel")
        z = err / sigma
        out["error_sigma_rms"] = float(np.sqrt(np.mean(z * z)))
        out["error_sigma_max"] = float(np.max(np.abs(z)))
        out["frac_error_within_1_sigma"] = float(np.mean(np.abs(err) <= sigma))
        out["noise_inflation"] = math.sqrt(1.0 + float(np.var(err)) / float(np.mean(sigma * sigma)))
    return out
