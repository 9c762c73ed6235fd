"""Poisson-Gaussian noise from a single image, for users without a flat-field series.

The model is the one of Foi et al., "Practical Poissonian-Gaussian noise modeling and fitting for
single-image raw-data" (IEEE Trans. Image Process. 17(10), 2008): the temporal noise variance of a
pixel whose noise-free value is ``y`` DN is ``sigma^2(y) = a*y + b``. For a linear camera with gain
K (DN/e-), offset ``mu_dark`` (DN) and read noise ``sigma_read`` (DN), ``a = K`` and
``b = sigma_read^2 - K*mu_dark``.

Why this is written here: no maintained Python library implements Foi's clipped Poisson-Gaussian
fit (the authors' code is MATLAB; scikit-image's ``estimate_sigma`` returns one signal-independent
sigma). The steps follow the paper's ideas; the details are our own:

1. **Residual and local expectation.** The image is cut into 2x2 blocks ``[[p, q], [r, s]]``. The
   Haar diagonal detail ``D = (p - q - r + s) / 2`` has unit-norm weights (4 * (1/2)^2 = 1), so for
   independent pixel noise ``var(D)`` equals the pixel noise variance, whatever its distribution;
   it is blind to any plane ``c + gx*x + gy*y`` (ramps and axis-aligned steps cancel), so smooth
   gradients need no masking. The approximation ``A = (p + q + r + s) / 4`` is the block mean (the
   local expectation, noise variance sigma^2 / 4), and ``S`` is the Gaussian-weighted mean (sigma
   1 block) of the neighbouring blocks' ``A``, the block's own left out. For Gaussian noise ``A``
   and ``D`` are orthogonal projections, hence independent, so
   selecting and binning blocks by ``S`` does not bias the variance of ``D``; leaving the block out
   of ``S`` also keeps the mean of ``A`` over a bin free of regression to the mean.
2. **Smooth places.** The signal leaks into ``D`` through the mixed second derivative. Blocks where
   any Hessian component of ``A`` (Gaussian derivatives, sigma 1.5 blocks) exceeds
   :data:`EDGE_THRESHOLD` times its pure-noise standard deviation -- anywhere in a 5x5 block window,
   so that the zero crossing at the centre of an edge is caught too -- are dropped. The noise level
   needed for the threshold comes from a pilot pass (per level set, all blocks), then from the fit
   itself (two passes).
3. **Level sets.** The kept blocks are grouped by ``S`` into ``n_levels`` equal-count bins; a bin
   spanning more than 1/``n_levels`` of the intensity range is split into equal-width parts (wide
   bins would mix very different variances). Bins with fewer than :data:`MIN_LEVEL_BLOCKS` blocks
   are dropped. Per level set the mean is the mean of ``A`` and the variance is
   ``(median |D| / 0.6745)^2``, robust to the textured or hot-pixel blocks that survive step 2.
   Its variance is ``5.44 sigma^4 / n`` (the median absolute deviation has 36.8 % efficiency).
   Integer data put ``D`` on a lattice of step 1/2; the median is then interpolated within the
   lattice cells and Sheppard's correction (1/48 DN^2) removes the spread this adds.
4. **Clipping.** Near the clipping values (0, ``2**bit_depth - 1``, or the image's minimum or
   maximum when many pixels sit exactly there) the observed mean and variance are those of a
   clipped distribution: the mean is pulled towards the clip and the variance shrinks (fully
   saturated areas have ``D = 0``). Rather than model the clipped moments as Foi does -- the
   clipped-normal model describes the sample variance, not the robust median-based estimate used
   here -- level sets in which more than :data:`CLIP_FRACTION_MAX` of the pixels sit exactly at a
   clipping value are excluded. At that fraction fewer than 2 % of the details ``D`` involve a
   clipped pixel and the median-based variance is unaffected (< 1 %); the excluded bins are those
   within about 2.6 sigma of a clip.
5. **Fit.** Variance on mean by iteratively reweighted least squares: weights ``n / (5.44 *
   model^2)`` (model-based, so low noisy estimates do not pull the line down) times Huber weights
   (c = 3) on the standardised residuals. Standard errors are the weighted least-squares ones,
   inflated by the reduced chi-square when it exceeds 1 (texture or non-linearity the model lacks).

A single image cannot separate temporal noise from fixed-pattern noise at the pixel scale (DSNU,
PRNU) nor from texture finer than about two pixels: both end up in ``a`` and ``b``. The result is
an estimate; :func:`profile_from_fit` marks the profile as one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from ..errors import InputError

__all__ = ["NoiseFit", "estimate_noise", "profile_from_fit"]

MIN_SIDE_PX = 32                 # smaller images hold too few blocks for several level sets
MIN_LEVEL_BLOCKS = 64            # blocks per level set: variance estimate to about +-30 %
MIN_LEVELS = 3
CLIP_FRACTION_MAX = 0.005        # level sets with more pixels at a clipping value are excluded
CLIP_COUNT_MIN = 16              # pixels at the image's extreme value that mark it as a clip ...
CLIP_SHARE_MIN = 1e-4            # ... when also this share of the image sits there
EDGE_THRESHOLD = 3.0             # Hessian component / its pure-noise sd that marks structure
HESSIAN_SIGMA_BLOCKS = 1.5
EDGE_WINDOW_BLOCKS = 5
SMOOTH_SIGMA_BLOCKS = 1.0
MAD_TO_SD = 0.6744897501960817   # median |N(0, 1)|
MAD_VARIANCE_FACTOR = 5.44       # var(sigma_hat^2) = 5.44 sigma^4 / n for the median-based estimate
HUBER_C = 3.0
MIN_SPAN_SE = 20.0               # level means must span this many of their SEs (a flat image cannot fit)
#: What to do when one image cannot give the estimate (ends every such message).
NEXT_STEP = ("calibrate from a flat-field series instead (--flat or --emva), or use an image of the same camera "
             "with larger smooth areas at several brightnesses (an empty field of view, a defocused image)")


@dataclass(frozen=True)
class NoiseFit:
    """The fitted Poisson-Gaussian noise model ``var(y) = a*y + b`` of one image.

    Attributes
    ----------
    a : float
        Slope (DN): the system gain K in DN/e- for a linear camera.
    b : float
        Intercept (DN^2): ``read_noise^2 - K*offset``; negative when the offset dominates.
    a_se, b_se : float
        Standard errors of ``a`` and ``b``.
    levels_mean : ndarray
        Mean intensity (DN) of each level set used in the fit.
    levels_var : ndarray
        Robust noise variance (DN^2) of each level set.
    levels_n : ndarray
        Number of 2x2 blocks (detail coefficients) in each level set.
    clip_low, clip_high : float or None
        Clipping values the level sets were checked against (None: none considered).
    n_pixels_used : int
        Pixels (4 per block) in the level sets used.
    """

    a: float
    b: float
    a_se: float
    b_se: float
    levels_mean: np.ndarray
    levels_var: np.ndarray
    levels_n: np.ndarray
    clip_low: float | None
    clip_high: float | None
    n_pixels_used: int

    def variance_dn2(self, mean_dn):
        """Noise variance (DN^2) the fit predicts at ``mean_dn`` (array-like)."""
        return self.a * np.asarray(mean_dn, dtype=np.float64) + self.b


def estimate_noise(image: np.ndarray, *, bit_depth: int | None = None, n_levels: int = 30) -> NoiseFit:
    """Fit ``var(y) = a*y + b`` to the noise of one raw image (Foi et al. 2008, clipping-aware).

    Parameters
    ----------
    image : ndarray, shape (rows, cols)
        Raw camera values in DN (not rescaled, not compressed), at least 32x32.
    bit_depth : int, optional
        Significant bits of the digitiser: ``2**bit_depth - 1`` is treated as the saturation
        value. Without it, the image's maximum is, when many pixels sit exactly there (and 255
        for uint8 data). Pixels at 0 (integer data) or at a heavily populated minimum are treated
        as clipped at the low end.
    n_levels : int
        Number of equal-count intensity level sets (at least 3); wide ones are split.

    Returns
    -------
    NoiseFit

    Raises
    ------
    InputError
        If the image is not a 2D numeric array, is too small, holds non-finite values or values
        above ``2**bit_depth - 1``, or is too flat or too textured to give 3 usable level sets,
        or if the fitted variance is negative over the whole intensity range.
    """
    return _estimate(image, bit_depth, n_levels, clip_aware=True)


def profile_from_fit(fit: NoiseFit, *, bit_depth: int, offset_dn: float | None = None) -> dict:
    """Camera-profile keys from a single-image noise fit.

    ``gain_dn_per_e = a``; ``read_noise_dn`` is the temporal dark noise sigma_y.dark (DN,
    quantisation included, as EMVA 1288 measures it), its variance floored at
    :data:`~noisestat.calibrate._ptc.QUANTISATION_FLOOR_DN2` as the standard floors a measured one.
    With ``offset_dn`` (for example the mean of a dark frame), ``read_noise_dn**2 = b + a*offset_dn``.
    Without it the split of ``b`` into offset and read noise is not identifiable from one image; the
    same variance line is expressed with the smallest read noise the digitiser allows:
    ``read_noise_dn**2 = max(b, floor)`` and ``offset_dn = (read_noise_dn**2 - b) / a``. Every floored
    value is named in ``calibration_warnings`` with the numbers: a negative ``b`` (the usual case:
    ``b = read^2 - K*offset``) never gives a silent read noise.

    Parameters
    ----------
    fit : NoiseFit
    bit_depth : int
        Significant bits of the camera (a required profile key).
    offset_dn : float, optional
        Measured dark offset (DN).

    Returns
    -------
    dict
        ``gain_dn_per_e``, ``offset_dn``, ``read_noise_dn``, ``bit_depth``, ``calibration_warnings``
        (a list, empty when nothing was floored) and the keys that mark the profile as an estimate:
        ``estimate`` ("single-image"), ``noise_a_dn``, ``noise_b_dn2``, ``noise_a_se_dn``,
        ``noise_b_se_dn2``, ``offset_source`` and ``n_pixels_used``.

    Raises
    ------
    InputError
        If ``a <= 0`` (no signal-dependent noise: no gain), if the offset lies outside
        ``[0, 2**bit_depth)``, or if ``b + a*offset_dn`` is negative beyond its uncertainty.
    """
    from ._ptc import QUANTISATION_FLOOR_DN2 as floor

    if isinstance(bit_depth, bool) or not isinstance(bit_depth, (int, np.integer)) or not 1 <= bit_depth <= 32:
        raise InputError(f"bit_depth must be an integer from 1 to 32; got {bit_depth!r}")
    a, b = float(fit.a), float(fit.b)
    if not (math.isfinite(a) and math.isfinite(b)) or a <= 0:
        raise InputError(f"the single-image fit has no positive signal-dependent noise (a = {a:.4g} DN); "
                         f"it cannot give a gain")
    warnings = []
    if offset_dn is None:
        source = "none: b expressed with the smallest read noise (variance floored at the quantisation floor)"
        read_var = max(b, floor)
        offset = (read_var - b) / a
        if b < floor:
            warnings.append(f"single-image fit: b = {b:.4g} ± {fit.b_se:.2g} DN^2 (b = read^2 - K*offset) cannot be "
                            f"split into offset and read noise without a dark offset: read noise variance floored at "
                            f"{floor:g} DN^2 (read_noise_dn {math.sqrt(read_var):.3g}), offset_dn = (floor - b) / a = "
                            f"{offset:.4g} DN; give --dark-offset (the mean of a dark frame) for the real split")
    else:
        source = "given"
        offset = float(offset_dn)
        if not math.isfinite(offset):
            raise InputError(f"offset_dn must be a finite number; got {offset_dn!r}")
        measured = b + a * offset
        read_var_se = math.hypot(fit.b_se, offset * fit.a_se)
        if measured < -2 * read_var_se:
            raise InputError(f"b + a*offset_dn = {measured:.4g} DN^2 < 0 (more than 2 SE): offset_dn = {offset:g} "
                             f"is too low for this fit")
        read_var = max(measured, floor)
        if measured < floor:
            warnings.append(f"single-image fit: read noise variance b + a*offset_dn = {measured:.4g} ± "
                            f"{read_var_se:.2g} DN^2 is below the quantisation floor: floored at {floor:g} DN^2 "
                            f"(read_noise_dn {math.sqrt(read_var):.3g})")
    if not 0 <= offset < 2**int(bit_depth):
        raise InputError(f"offset_dn = {offset:.4g} lies outside [0, 2**bit_depth) = [0, {2**int(bit_depth)})")
    return {
        "gain_dn_per_e": a,
        "offset_dn": offset,
        "read_noise_dn": math.sqrt(read_var),
        "bit_depth": int(bit_depth),
        "estimate": "single-image",
        "noise_a_dn": a,
        "noise_b_dn2": b,
        "noise_a_se_dn": float(fit.a_se),
        "noise_b_se_dn2": float(fit.b_se),
        "offset_source": source,
        "n_pixels_used": int(fit.n_pixels_used),
        "calibration_warnings": warnings,
    }


# --------------------------------------------------------------------------------------------
# implementation


def _estimate(image, bit_depth, n_levels, *, clip_aware: bool = True, select_smooth: bool = True) -> NoiseFit:
    """:func:`estimate_noise`; ``clip_aware=False`` keeps the clipped level sets and
    ``select_smooth=False`` keeps the structured blocks (both to show in tests what they prevent)."""
    img = _check_image(image, bit_depth, n_levels)
    clip_low, clip_high = _clip_values(img, image.dtype, bit_depth)
    rows, cols = (img.shape[0] // 2) * 2, (img.shape[1] // 2) * 2
    img = img[:rows, :cols]
    p, q, r, s = img[0::2, 0::2], img[0::2, 1::2], img[1::2, 0::2], img[1::2, 1::2]
    approx = (p + q + r + s) / 4.0
    detail = (p - q - r + s) / 2.0
    smooth = _leave_self_out_smooth(approx)
    n_clipped = np.zeros(approx.shape, dtype=np.int64)
    if clip_aware:
        for value in (clip_low, clip_high):
            if value is not None:
                n_clipped += sum((x == value).astype(np.int64) for x in (p, q, r, s))
    lattice = 0.5 if np.array_equal(img, np.round(img)) else None
    structure = _structure(approx)

    # pass 0: pilot noise per level set from all blocks (robust median), to scale the edge threshold
    everything = np.ones(approx.shape, dtype=bool)
    pilot = _level_sets(smooth, approx, detail, n_clipped, everything, n_levels, lattice)
    if len(pilot[0]) == 0:
        raise InputError(f"image too flat to estimate noise: fewer than {MIN_LEVEL_BLOCKS} blocks "
                         f"of 2x2 pixels per intensity level ({approx.size} blocks, values {img.min():g} to "
                         f"{img.max():g}); {NEXT_STEP}")
    by_mean = np.argsort(pilot[0])
    noise_var = np.interp(smooth, pilot[0][by_mean], np.maximum(pilot[1][by_mean], 1e-12))
    fit = None
    for _ in range(2):
        keep = _smooth_places(structure, noise_var) if select_smooth else everything
        mean, var, n = _level_sets(smooth, approx, detail, n_clipped, keep, n_levels, lattice)
        if len(mean) < MIN_LEVELS:
            smooth_blocks = int(keep.sum())
            raise InputError(f"too little smooth area to estimate noise (image too flat or too textured): "
                             f"{smooth_blocks} of its {approx.size} blocks of 2x2 pixels "
                             f"({smooth_blocks / approx.size:.1%}) are free of structure, giving {len(mean)} "
                             f"intensity level sets of {MIN_LEVEL_BLOCKS} blocks away from clipping (need "
                             f"{MIN_LEVELS}); {NEXT_STEP}")
        span = float(mean.max() - mean.min())
        mean_se = float(np.median(np.sqrt(np.maximum(var, 0.0) / (4.0 * n))))
        if span < MIN_SPAN_SE * mean_se:
            raise InputError(f"image too flat or too textured to estimate noise: its smooth areas lie at one "
                             f"brightness (the means of its {len(mean)} level sets span {span:.3g} DN, less than "
                             f"{MIN_SPAN_SE:g} times their standard error), and one brightness cannot separate "
                             f"a and b; {NEXT_STEP}")
        fit = _fit_line(mean, var, n)
        model = fit[0] * smooth + fit[1]
        # the fitted line scales the edge threshold in the second pass; floor it where it dips
        noise_var = np.maximum(model, 0.05 * max(float(np.median(var)), 1e-12))
    a, b, a_se, b_se = fit
    lo, hi = float(mean.min()), float(mean.max())
    if a * lo + b <= 0 and a * hi + b <= 0:
        raise InputError(f"the noise fit gives a negative variance over the whole intensity range "
                         f"[{lo:.4g}, {hi:.4g}] DN (a = {a:.3g}, b = {b:.3g}); {NEXT_STEP}")
    return NoiseFit(float(a), float(b), float(a_se), float(b_se), mean, var, n,
                    clip_low, clip_high, int(4 * n.sum()))


def _check_image(image, bit_depth, n_levels) -> np.ndarray:
    arr = np.asarray(image)
    if arr.dtype == bool or arr.dtype.kind not in "iuf":
        raise InputError(f"image must be a numeric (integer or float) array; got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise InputError(f"image must be 2D (one channel); got shape {arr.shape}")
    if min(arr.shape) < MIN_SIDE_PX:
        raise InputError(f"image too small to estimate noise: {arr.shape[0]}x{arr.shape[1]} pixels, "
                         f"need at least {MIN_SIDE_PX}x{MIN_SIDE_PX}; use a larger image or a flat-field series "
                         f"(--flat or --emva)")
    if isinstance(n_levels, bool) or not isinstance(n_levels, (int, np.integer)) or n_levels < MIN_LEVELS:
        raise InputError(f"n_levels must be an integer >= {MIN_LEVELS}; got {n_levels!r}")
    img = arr.astype(np.float64)
    if not np.isfinite(img).all():
        raise InputError("image holds non-finite values (NaN or inf)")
    if bit_depth is not None:
        if isinstance(bit_depth, bool) or not isinstance(bit_depth, (int, np.integer)) or not 1 <= bit_depth <= 32:
            raise InputError(f"bit_depth must be an integer from 1 to 32; got {bit_depth!r}")
        if img.max() > 2.0**bit_depth - 1:
            raise InputError(f"image maximum {img.max():g} exceeds 2**bit_depth - 1 = {2**int(bit_depth) - 1} "
                             f"(bit_depth = {bit_depth})")
    return img


def _clip_values(img, dtype, bit_depth) -> tuple[float | None, float | None]:
    """Low and high clipping values: the digitiser's limits, or heavily populated extremes."""
    def many_at(value):
        count = int(np.count_nonzero(img == value))
        return count >= CLIP_COUNT_MIN and count >= CLIP_SHARE_MIN * img.size

    low = high = None
    if dtype.kind in "iu":
        low = 0.0                       # an ADC cannot report below 0; harmless far from 0
    if bit_depth is not None:
        high = float(2**int(bit_depth) - 1)
    elif dtype == np.uint8:
        high = 255.0
    lo_val, hi_val = float(img.min()), float(img.max())
    if many_at(lo_val) and (low is None or lo_val > low):
        low = lo_val                    # e.g. a camera that clips at its offset
    if many_at(hi_val) and (high is None or hi_val < high):
        high = hi_val                   # full well reached below the ADC's range
    return low, high


def _leave_self_out_smooth(approx: np.ndarray) -> np.ndarray:
    """Gaussian-weighted mean of the neighbouring blocks, the block itself left out.

    Binning by a smooth that excludes the block keeps the block's own noise out of its bin
    assignment, so the mean of ``A`` over a level set is an unbiased estimate of the mean noise-free
    value of its blocks (no regression to the mean, which would flatten the fitted slope).
    """
    impulse = np.zeros((17, 17))
    impulse[8, 8] = 1.0
    centre = float(ndi.gaussian_filter(impulse, SMOOTH_SIGMA_BLOCKS, mode="constant")[8, 8])
    smooth = ndi.gaussian_filter(approx, SMOOTH_SIGMA_BLOCKS, mode="reflect")
    return (smooth - centre * approx) / (1.0 - centre)


def _structure(approx: np.ndarray) -> np.ndarray:
    """Largest Hessian component of ``approx`` in units of its pure-noise sd (per unit noise sd of
    a pixel), maximum over a window: multiply by the pixel noise sd to compare with the threshold."""
    sig = HESSIAN_SIGMA_BLOCKS
    impulse = np.zeros((41, 41))
    impulse[20, 20] = 1.0
    worst = np.zeros(approx.shape)
    for order in ((2, 0), (0, 2), (1, 1)):
        response = ndi.gaussian_filter(approx, sig, order=order, mode="reflect")
        # pure-noise sd of this filter on A (whose noise sd is sigma/2 for pixel noise sd sigma)
        norm = float(np.sqrt(np.sum(ndi.gaussian_filter(impulse, sig, order=order, mode="constant") ** 2)))
        worst = np.maximum(worst, np.abs(response) / (0.5 * norm))
    return ndi.maximum_filter(worst, size=EDGE_WINDOW_BLOCKS, mode="nearest")


def _smooth_places(structure: np.ndarray, noise_var: np.ndarray) -> np.ndarray:
    return structure < EDGE_THRESHOLD * np.sqrt(noise_var)


def _level_sets(smooth, approx, detail, n_clipped, keep, n_levels, lattice):
    """Mean, robust variance and block count of each usable level set of the kept blocks."""
    key = smooth[keep]
    if key.size < MIN_LEVEL_BLOCKS:
        return np.empty(0), np.empty(0), np.empty(0, dtype=np.int64)
    a_kept, d_kept, c_kept = approx[keep], detail[keep], n_clipped[keep]
    lo, hi = float(key.min()), float(key.max())
    max_width = (hi - lo) / n_levels
    edges = np.unique(np.quantile(key, np.linspace(0.0, 1.0, n_levels + 1)))
    fine = [edges[0]]
    for left, right in zip(edges[:-1], edges[1:]):
        parts = max(1, int(math.ceil((right - left) / max_width - 1e-9))) if max_width > 0 else 1
        fine.extend(np.linspace(left, right, parts + 1)[1:])
    edges = np.asarray(fine)
    if len(edges) < 2:
        return np.empty(0), np.empty(0), np.empty(0, dtype=np.int64)
    index = np.clip(np.searchsorted(edges, key, side="right") - 1, 0, len(edges) - 2)
    order = np.argsort(index, kind="stable")
    bounds = np.searchsorted(index[order], np.arange(len(edges)))
    means, variances, counts = [], [], []
    for i in range(len(edges) - 1):
        members = order[bounds[i]:bounds[i + 1]]
        n = len(members)
        if n < MIN_LEVEL_BLOCKS:
            continue
        if c_kept[members].sum() > CLIP_FRACTION_MAX * 4 * n:
            continue                    # clipped moments: mean and variance biased (module docstring)
        sd = _median_abs(d_kept[members], lattice) / MAD_TO_SD
        var = sd * sd - (lattice * lattice / 12.0 if lattice else 0.0)   # Sheppard's correction
        means.append(float(a_kept[members].mean()))
        variances.append(var)
        counts.append(n)
    return np.asarray(means), np.asarray(variances), np.asarray(counts, dtype=np.int64)


def _median_abs(values: np.ndarray, lattice: float | None) -> float:
    """Median of ``|values|``; on a lattice of step h, interpolated within the cells the lattice
    points stand for ([0, h/2] for 0, [kh - h/2, kh + h/2] otherwise), so that ties do not snap
    the median to a lattice point (which would bias small noise levels by up to h/2)."""
    u = np.abs(values)
    if lattice is None:
        return float(np.median(u))
    h = lattice
    counts = np.bincount(np.rint(u / h).astype(np.int64))
    half = 0.5 * len(u)
    cum = np.cumsum(counts)
    k = int(np.searchsorted(cum, half))          # first cell whose cumulative count reaches n/2
    below = cum[k - 1] if k > 0 else 0
    start, width = (0.0, h / 2) if k == 0 else (k * h - h / 2, h)
    return float(start + (half - below) / counts[k] * width)


def _fit_line(mean, var, n):
    """Robust weighted least squares of ``var`` on ``mean``: (a, b, a_se, b_se)."""
    design = np.column_stack([mean, np.ones_like(mean)])
    floor = 1e-3 * max(float(np.median(np.abs(var))), 1e-12)
    model = np.maximum(var, floor)
    huber = np.ones_like(mean)
    beta = np.zeros(2)
    for _ in range(30):
        sd = np.sqrt(MAD_VARIANCE_FACTOR / n) * model
        w = huber / sd**2
        xtw = design.T * w
        new = np.linalg.solve(xtw @ design, xtw @ var)
        model = np.maximum(design @ new, floor)
        resid = (var - design @ new) / (np.sqrt(MAD_VARIANCE_FACTOR / n) * model)
        huber = np.minimum(1.0, HUBER_C / np.maximum(np.abs(resid), 1e-12))
        if np.allclose(new, beta, rtol=1e-9, atol=1e-12):
            beta = new
            break
        beta = new
    sd = np.sqrt(MAD_VARIANCE_FACTOR / n) * model
    w = huber / sd**2
    cov = np.linalg.inv((design.T * w) @ design)
    dof = len(mean) - 2
    if dof > 0:
        chi2 = float(np.sum(huber * ((var - design @ beta) / sd) ** 2)) / dof
        cov = cov * max(1.0, chi2)
    return float(beta[0]), float(beta[1]), float(math.sqrt(cov[0, 0])), float(math.sqrt(cov[1, 1]))
