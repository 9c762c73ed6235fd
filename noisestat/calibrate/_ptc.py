"""Photon transfer after EMVA 1288 (release 4.0, "Linear"), with non-linear cameras handled.

Per light level, with frames y_i (i = 1..L) of N pixels and frame means mu_i:

* mean        mu_y  = mean of all pixels of all frames;
* temporal variance s2_y = mean over pixels of the variance over frames of (y_i - mu_i)
  (ddof = 1). For two frames A, B this is exactly the standard's 0.5 * var(A - B) corrected for
  the difference of the frame means; subtracting each frame's mean removes light-source flicker,
  and taking variances over frames per pixel cancels fixed-pattern noise.

The same on the dark frames of the level's exposure time gives mu_y.dark and s2_y.dark; the
photon transfer curve is s2_y - s2_y.dark = K (mu_y - mu_y.dark).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import f as f_distribution
from sklearn.isotonic import IsotonicRegression

from ..errors import InputError
from ._readers import FlatFieldSeries

__all__ = ["PhotonTransfer", "photon_transfer", "temporal_stats", "FIT_FRACTION", "QUANTISATION_FLOOR_DN2",
           "NONLINEAR_LEVEL"]

FIT_FRACTION = 0.7                # K is fitted from 0 to 70 % of saturation (EMVA 1288)
LINEARITY_RANGE = (0.05, 0.95)    # linearity error between 5 % and 95 % of saturation
QUANTISATION_FLOOR_DN2 = 0.24     # dark variance floor of quantisation-limited cameras (EMVA 1288)
# Linear or non-linear: a choice between nested models, each test at the level NONLINEAR_LEVEL.
# A non-linear RESPONSE, y = f(lin) with f(lin) = lin + c lin^2 + ..., bends two curves by the same
# c: the mean signal against photons (mu = R p + c (R p)^2 + ...) and, through f'^2, the photon
# transfer curve (s2_net = K (mu + 3 c mu^2) + ..., to second order for any f: c is the curvature
# of the response at zero signal). The camera is called non-linear when
# 1. the photon transfer curve rejects the straight line: an F test of the quadratic term against
#    the straight line through the origin, each level weighted by the standard error of its net
#    variance (sqrt(2 / n) of each variance for n pixel-frame degrees of freedom), the scale of the
#    errors taken from the residuals (so that scatter beyond the pixel statistics, as real series
#    have, weakens the evidence instead of faking it), p < NONLINEAR_LEVEL; and, with photon counts,
# 2. the response rejects its straight line too: the same F test for mu_net against photons (the
#    EMVA 1288 linearity model a p + b, relative weights), p < NONLINEAR_LEVEL;
# 3. and that response non-linearity explains the bend of the photon transfer curve: undone (each
#    level's variance divided by the response's relative slope squared, its mean replaced by the
#    linear signal, :func:`_linearised_bend`), it leaves a curve whose quadratic term the same F test
#    does not find (p >= NONLINEAR_LEVEL).
# The photon transfer curve alone decides without photon counts. Both curves are needed because
# each can bend without a response non-linearity: the photon transfer curve of an 8-bit camera
# through quantisation at low signal, correlated noise or a drifting source; the response through
# the photon counts, whose calibration is outside the camera. All three must hold, so a linear
# camera is called non-linear at most as often as the photon transfer curve's test alone rejects
# (NONLINEAR_LEVEL). Measured on simulated linear cameras (64x64, 30 levels, 3 x 400 seeds,
# `benchmarks/bench_calibrate.py --false-nonlinear 400`): 0 of 1200 called non-linear; the photon
# transfer curve's test alone rejected 0 (10 at 0.01, 61 at 0.05), the response's 2 (29 at 0.01,
# 139 at 0.05: its relative weights suit photon counts with a relative error, which simulated
# counts lack). On the EMVA 1288 Basler CCD set the response bends (p = 8e-6) but the photon
# transfer curve's quadratic term has p = 0.0017 (its levels scatter 3.5 x more than their pixel
# statistics): not evidence at this level, so the camera is linear and K the EMVA 1288 straight line.
# A simulated K = 0.1 DN/e- camera with a linearity error of -0.95 / +0.66 % (bench_calibrate.py's
# 'mild non-linear', 256x256) gives p = 2e-8 (photon transfer curve) and 1e-24 (response), and 0.15
# once undone: non-linear, K within 1 % (the straight line is 6 % low).
NONLINEAR_LEVEL = 0.001
MAX_DEGREE = 4
# A negative dark current within this many standard errors of zero is reported as zero.
DARK_CURRENT_SE = 3.0


def temporal_stats(stack: np.ndarray) -> tuple[float, float]:
    """Mean and temporal variance (flicker-corrected, fixed pattern cancelled) of a frame stack."""
    frames = stack.astype(np.float64)
    means = frames.mean(axis=(1, 2))
    centred = frames - means[:, None, None]
    return float(means.mean()), float(centred.var(axis=0, ddof=1).mean())


@dataclass(frozen=True)
class PhotonTransfer:
    """Results of a photon-transfer analysis (all arrays one entry per temporal level, by mean)."""

    mu_y: np.ndarray
    s2_y: np.ndarray
    mu_dark: np.ndarray
    s2_dark: np.ndarray
    exposure_s: np.ndarray
    photons: np.ndarray
    saturation_index: int
    excluded: np.ndarray            # bool: above saturation or saturated
    fit_mask: np.ndarray            # bool: levels used for K
    gain_dn_per_e: float
    gain_se: float
    offset_dn: float
    read_noise_dn: float
    read_noise_se: float
    sigma_d_e: float
    bit_depth: int | None
    nonlinear: bool
    linearity: dict
    quantum_efficiency: float | None = None
    dark_current_e_per_s: float | None = None
    spatial: dict | None = None
    noise_map: dict | None = None
    warnings: tuple = ()
    extra: dict = field(default_factory=dict)

    @property
    def mu_net(self) -> np.ndarray:
        return self.mu_y - self.mu_dark

    @property
    def s2_net(self) -> np.ndarray:
        return self.s2_y - self.s2_dark

    @property
    def saturation_dn(self) -> float:
        return float(self.mu_y[self.saturation_index])

    @property
    def saturation_capacity_e(self) -> float:
        """Electrons at saturation: QE * photons there when photon counts are known (EMVA 1288),
        else the net signal at saturation over K."""
        photons = self.photons[self.saturation_index]
        if self.quantum_efficiency is not None and np.isfinite(photons):
            return float(self.quantum_efficiency * photons)
        return float(self.mu_net[self.saturation_index] / self.gain_dn_per_e)


def _fit_through_origin(x, y, w=None):
    """Weighted least squares y = k x; returns k and its standard error from the residuals."""
    w = np.ones_like(x) if w is None else w
    sxx = np.sum(w * x * x)
    k = np.sum(w * x * y) / sxx
    dof = len(x) - 1
    if dof < 1:
        return k, math.nan
    resid = y - k * x
    return k, math.sqrt(np.sum(w * resid**2) / dof / sxx)


@dataclass(frozen=True)
class _Fit:
    """A weighted least-squares polynomial fit: coefficients of ``powers`` and their standard errors
    (residual variance scaled), the weighted residual sum of squares and its degrees of freedom."""

    powers: tuple
    coef: np.ndarray
    se: np.ndarray
    rss: float
    dof: int


def _polyfit(x, y, powers, sd=None) -> _Fit:
    """Least squares y = sum_k c_k x^powers[k], weighted by 1/sd^2 when ``sd`` is given."""
    sd = np.ones_like(x) if sd is None else sd
    design = np.column_stack([x**k for k in powers]) / sd[:, None]
    scale = np.abs(design).max(axis=0)  # column scaling keeps the normal equations well conditioned
    design = design / scale
    coef, *_ = np.linalg.lstsq(design, y / sd, rcond=None)
    resid = y / sd - design @ coef
    dof = len(x) - len(powers)
    rss = float(resid @ resid)
    cov = np.linalg.pinv(design.T @ design) * (rss / max(dof, 1))
    return _Fit(tuple(powers), coef / scale, np.sqrt(np.diag(cov)) / scale, rss, dof)


def _polyfit_through_origin(x, y, degree, sd=None):
    """Least squares y = c1 x + c2 x^2 + ... + c_d x^d, weighted by 1/sd^2 when ``sd`` is given;
    coefficients and their standard errors (residual variance scaled)."""
    fit = _polyfit(x, y, range(1, degree + 1), sd)
    return fit.coef, fit.se


def _f_test(small: _Fit, large: _Fit) -> float:
    """p value of the F test of the nested fit ``small`` against ``large`` (its extra terms zero)."""
    extra = len(large.powers) - len(small.powers)
    if large.dof < 1 or large.rss <= 0:
        return 0.0 if small.rss > large.rss else 1.0
    f = max(small.rss - large.rss, 0.0) / extra / (large.rss / large.dof)
    return float(f_distribution.sf(f, extra, large.dof))


def _grow(x, y, fit: _Fit, sd) -> _Fit:
    """Add the next power while its F test rejects the fit without it (p < NONLINEAR_LEVEL), up to
    MAX_DEGREE and while two residual degrees of freedom remain."""
    while fit.powers[-1] < MAX_DEGREE and fit.dof >= 3:
        higher = _polyfit(x, y, fit.powers + (fit.powers[-1] + 1,), sd)
        if _f_test(fit, higher) >= NONLINEAR_LEVEL:
            break
        fit = higher
    return fit


def _fit_line(x, y):
    """Ordinary least squares y = a + b x; returns (a, b) and their standard errors."""
    design = np.column_stack([np.ones_like(x), x])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    dof = len(x) - 2
    if dof < 1:
        return coef, np.full(2, math.nan)
    resid = y - design @ coef
    cov = np.linalg.inv(design.T @ design) * (resid @ resid / dof)
    return coef, np.sqrt(np.diag(cov))


def photon_transfer(series: FlatFieldSeries) -> PhotonTransfer:
    """Compute the photon transfer curve, gain, dark values, saturation and linearity.

    K is EMVA 1288's: the unweighted straight line through the origin of s2_net against mu_net
    over the levels from the darkest up to 70 % of saturation (``linearity["gain_emva_dn_per_e"]``,
    always reported). It is the profile's gain unless the camera is non-linear (see
    :data:`NONLINEAR_LEVEL`); then the gain is the slope at zero signal of the general model and
    the straight line is reported beside it. With photon counts, the responsivity is the straight
    line of mu_net against photons over the same levels, QE = R / K, and the saturation capacity
    QE times the photons at saturation (EMVA 1288).

    Raises
    ------
    InputError
        Fewer than two usable levels below saturation, or no light above the dark level.
    """
    warnings = []
    levels = sorted(series.levels, key=lambda lv: float(lv.bright.mean()))
    stats = [temporal_stats(lv.bright) + temporal_stats(lv.dark) for lv in levels]
    mu_y, s2_y, mu_dark, s2_dark = (np.array(v) for v in zip(*stats))
    exposure = np.array([np.nan if lv.exposure_s is None else lv.exposure_s for lv in levels])
    photons = np.array([np.nan if lv.photons is None else lv.photons for lv in levels])
    for values, key in ((exposure, "exposure_s"), (photons, "photons")):
        known = np.isfinite(values)
        if known.any() and not known.all():
            name = levels[int(np.flatnonzero(~known)[0])].name
            raise InputError(f"{series.source}: level {name} has no {key} while other levels have one; "
                             f"give {key} for every level or for none")
    top = 2**series.bit_depth - 1 if series.bit_depth else max(int(lv.bright.max()) for lv in levels)
    clipped = np.array([np.mean(lv.bright >= top) for lv in levels])

    # Saturation: where the variance peaks. Levels beyond it (and levels mostly at the clip value,
    # whose variance collapses) are excluded.
    sat = int(np.argmax(s2_y))
    excluded = np.arange(len(levels)) > sat
    fully = clipped > 0.5
    if fully.any():
        names = [levels[i].name for i in np.flatnonzero(fully)]
        warnings.append(f"{len(names)} saturated level(s) excluded (more than half the pixels at {top} DN): "
                        f"{names[0]}{' ...' if len(names) > 1 else ''}")
    excluded |= fully
    if fully[: sat + 1].all():
        raise InputError(f"{series.source}: every level is saturated: lower the light or the exposure")
    mu_net, s2_net = mu_y - mu_dark, s2_y - s2_dark
    if mu_net[sat] <= 0:
        raise InputError(f"{series.source}: the bright frames are no brighter than the dark frames")

    # EMVA 1288 range: every level from the darkest up to 70 % of saturation. A level at or below the
    # dark signal adds nothing to an unweighted line through the origin and stays in, as in the standard.
    fit = (~excluded) & (mu_net <= FIT_FRACTION * mu_net[sat])
    lit = fit & (mu_net > 0)
    if lit.sum() < 2:
        raise InputError(f"{series.source}: fewer than 2 levels between the dark level and 70 % of saturation "
                         f"({int(lit.sum())}); add levels at lower light")
    x, y = mu_net[fit], s2_net[fit]

    # K after EMVA 1288: unweighted straight line through the origin (the standard's definition).
    k_lin, k_lin_se = _fit_through_origin(x, y)
    if k_lin <= 0:
        raise InputError(f"{series.source}: the photon transfer curve does not rise (gain {k_lin:.3g}): "
                         f"not a flat-field series")
    linearity = {"fit_levels": int(fit.sum()), "gain_emva_dn_per_e": float(k_lin),
                 "gain_emva_se_dn_per_e": float(k_lin_se)}
    known_photons = bool(np.isfinite(photons).all() and (photons[lit] > 0).all())
    if known_photons:
        linearity.update(_linearity_error(photons, mu_net, excluded, sat))

    # Linear or non-linear (see NONLINEAR_LEVEL): nested fits of the photon transfer curve and, with
    # photon counts, of the response, over the lit levels of K.
    nonlinear = False
    ptc_fit = None
    if lit.sum() >= 4:
        xl, yl = mu_net[lit], s2_net[lit]
        sd = _net_variance_se(levels, s2_y, s2_dark)[lit]
        line = _polyfit(xl, yl, (1,), sd)
        quad = _polyfit(xl, yl, (1, 2), sd)
        p_ptc = _f_test(line, quad)
        bends = p_ptc < NONLINEAR_LEVEL
        # the curve as it bends: a parabola, and higher powers while the data ask for them (the photon
        # transfer curve of y = lin + c lin^2 has a cubic term -2 c^2 K mu^3 of its own)
        ptc_fit = _grow(xl, yl, quad, sd) if bends and quad.coef[0] > 0 else quad
        c_ptc = ptc_fit.coef[1] / (3 * ptc_fit.coef[0])   # the response curvature the bend implies
        linearity.update({
            "test": f"F tests at the level {NONLINEAR_LEVEL:g} of nested weighted fits up to {FIT_FRACTION:.0%} of "
                    f"saturation: the photon transfer curve bends (quadratic term); with photon counts the response "
                    f"bends too (quadratic term of the mean against photons), and with the response's bend undone "
                    f"the photon transfer curve is straight",
            "ptc_bend_p": p_ptc,
            "ptc_slope_change": float(quad.coef[1] * xl.max() / quad.coef[0]) if quad.coef[0] > 0 else math.inf,
            # how much the levels scatter around the fit, in units of their pixel statistics
            "ptc_scatter_ratio": math.sqrt(quad.rss / quad.dof) if quad.dof > 0 else math.nan})
        if known_photons and "linearity_error_min_pct" in linearity:
            linearity["implied_linearity_error_span_pct"] = _implied_linearity_error(c_ptc, mu_net, excluded, sat)
        if known_photons:
            # relative weights (photon counts carry a relative calibration error), floored at 5 % of
            # saturation so that a near-dark level does not take the fit
            xr, yr = photons[lit], mu_net[lit]
            sd_r = np.maximum(np.abs(yr), LINEARITY_RANGE[0] * mu_net[sat])
            resp_line = _polyfit(xr, yr, (0, 1), sd_r)
            resp_quad = _polyfit(xr, yr, (0, 1, 2), sd_r)
            p_resp = _f_test(resp_line, resp_quad)
            resp_fit = _grow(xr, yr, resp_quad, sd_r) if p_resp < NONLINEAR_LEVEL else resp_quad
            p_left = _linearised_bend(resp_fit, photons[lit], mu_net[lit], s2_y[lit], s2_dark[lit], sd)
            linearity.update({"response_bend_p": p_resp, "linearised_bend_p": p_left})
            nonlinear = bool(bends and p_resp < NONLINEAR_LEVEL and p_left >= NONLINEAR_LEVEL)
            if bends and not nonlinear:
                why = (f"the response does not (F test p = {p_resp:.2g})" if p_resp >= NONLINEAR_LEVEL else
                       f"undoing the response's bend leaves it bent (F test p = {p_left:.2g})")
                warnings.append(f"the photon transfer curve bends ({100 * linearity['ptc_slope_change']:+.0f} % slope change "
                                f"up to {FIT_FRACTION:.0%} of saturation, F test p = {p_ptc:.2g}) but {why}: no response "
                                f"non-linearity explains it; linear model kept, K from the EMVA 1288 straight line")
        else:
            nonlinear = bends
            if bends:
                warnings.append(f"non-linear camera found from the photon transfer curve alone "
                                f"({100 * linearity['ptc_slope_change']:+.0f} % slope change, F test p = {p_ptc:.2g}): "
                                f"without photon counts the response cannot be checked")
    coef = None
    degree = 1
    if nonlinear:
        # Unbiased gain of a non-linear camera: the slope of the curve at zero signal, where the
        # response is linear, from the weighted polynomial of the test (its degree grown while the
        # next power is significant). A straight line across the bend is biased. The weights
        # (standard errors of the net variances, proportional to the variances) let the low levels,
        # where the response is nearly linear, carry the slope at zero.
        coef, se, degree = ptc_fit.coef, ptc_fit.se, ptc_fit.powers[-1]
        gain, gain_se = float(coef[0]), float(se[0])
        linearity["gain_polynomial_degree"] = degree
        if gain <= 0:
            raise InputError(f"{series.source}: the photon transfer curve's slope at zero signal is {gain:.3g}: "
                             f"not a flat-field series")
    else:
        gain, gain_se = float(k_lin), float(k_lin_se)
    linearity["nonlinear"] = nonlinear

    # Dark values at zero exposure: intercepts over exposure time when three or more are given
    # (dark current makes them grow), else the shortest exposure's values.
    # Exposure times of the distinct dark stacks: one dark stack given for every level (a --flat
    # measurement) is one dark measurement, whatever exposure times the bright stacks have.
    dark_exposure = {}
    for lv, t in zip(levels, exposure):
        dark_exposure.setdefault(id(lv.dark), t)
    n_dark = len({round(float(t), 12) for t in dark_exposure.values() if np.isfinite(t)})
    dark_current = dark_current_se = dark_current_fit = None
    if n_dark >= 3:
        (offset, slope_mu), (offset_se, slope_se) = _fit_line(exposure, mu_dark)
        (s2d, _), (s2d_se, _) = _fit_line(exposure, s2_dark)
        dark_current, dark_current_se = float(slope_mu / gain), float(slope_se / gain)
        dark_current_fit = dark_current
        if dark_current < 0:
            if dark_current >= -DARK_CURRENT_SE * dark_current_se:
                warnings.append(f"dark current {dark_current:.3g} ± {dark_current_se:.2g} e-/s is negative but zero "
                                f"within {DARK_CURRENT_SE:g} standard errors: reported as 0")
                dark_current = 0.0
            else:
                warnings.append(f"dark current not reported: the dark means fall with exposure time "
                                f"({dark_current:.3g} ± {dark_current_se:.2g} e-/s, more than {DARK_CURRENT_SE:g} "
                                f"standard errors below 0), which no sensor does; check the dark frames")
                dark_current = dark_current_se = None
    else:
        first = int(np.nanargmin(exposure)) if np.isfinite(exposure).any() else 0
        offset, s2d = float(mu_dark[first]), float(s2_dark[first])
        n_pix = levels[first].dark[0].size * (levels[first].dark.shape[0] - 1)
        s2d_se = s2d * math.sqrt(2 / n_pix)
    # read_noise_dn is the measured temporal dark noise, quantisation included and not floored: the
    # replicas draw exactly that variance (calibration/README.md). EMVA 1288's 0.24 DN^2 floor
    # applies to sigma_d in electrons only, where subtracting 1/12 from a quantisation-limited
    # dark variance would leave nothing.
    s2d_floored = max(float(s2d), QUANTISATION_FLOOR_DN2)
    read_noise = math.sqrt(max(float(s2d), 0.0))
    read_noise_se = float(s2d_se) / (2 * math.sqrt(s2d_floored))
    sigma_d = math.sqrt(s2d_floored - 1 / 12) / gain

    qe = None
    if known_photons:
        if nonlinear:
            # K is the slope at zero signal; the responsivity must be too, or QE = R / K mixes a
            # secant with a tangent. Relative weights (photon counts carry a relative calibration
            # error), floored at 5 % of saturation as in the linearity fit: a near-dark level, whose
            # net signal is almost zero, would otherwise take the whole weight.
            floor = LINEARITY_RANGE[0] * mu_net[sat]
            r_coef, _ = _polyfit_through_origin(photons[fit], mu_net[fit], degree, np.maximum(np.abs(mu_net[fit]), floor))
            responsivity = float(r_coef[0])
        else:
            # EMVA 1288: unweighted straight line through the origin over the levels of K.
            responsivity, _ = _fit_through_origin(photons[fit], mu_net[fit])
        linearity["responsivity_dn_per_photon"] = float(responsivity)
        qe = float(responsivity / gain)
        if not 0 < qe <= 1:
            warnings.append(f"quantum efficiency not reported: R / K = {responsivity:.4g} DN/photon / {gain:.4g} DN/e- "
                            f"= {100 * qe:.1f} %, outside (0, 100] %; check the photon counts of the descriptor")
            linearity["quantum_efficiency_rejected"] = qe
            qe = None

    noise_map = _noise_map(mu_y, s2_y, mu_dark, s2_dark, excluded) if nonlinear else None
    extra = {"polynomial": [float(c) for c in coef]} if nonlinear else {}
    if dark_current_fit is not None:
        # the fitted slope as it came, also when it was reported as 0 or not at all
        extra["dark_current_fit_e_per_s"] = dark_current_fit
    if dark_current_se is not None:
        extra["dark_current_se_e_per_s"] = dark_current_se
    return PhotonTransfer(mu_y, s2_y, mu_dark, s2_dark, exposure, photons, sat, excluded, fit, gain, gain_se,
                          float(offset), read_noise, read_noise_se, sigma_d, series.bit_depth, nonlinear, linearity,
                          qe, dark_current, _spatial(series, gain), noise_map, tuple(warnings), extra)


def _linearised_bend(resp_fit: _Fit, photons, mu_net, s2_y, s2_dark, sd) -> float:
    """p value of the bend left in the photon transfer curve once the response non-linearity that
    ``resp_fit`` (mu_net = b + R p + r2 p^2 + ...) describes is undone: with g = f' / R the response's
    relative slope at each level and lin = b + R p its linear signal, a response non-linearity alone
    gives (s2_y - 1/12) / g^2 - (s2_dark - 1/12) = K lin (the rounding to DN comes after the curve);
    the F test of a quadratic term of that curve. 0 when the response stops rising (g <= 0)."""
    coef, powers = resp_fit.coef, resp_fit.powers
    slope = sum(k * c * photons ** (k - 1) for k, c in zip(powers, coef) if k >= 1)
    g = slope / coef[1]
    if not (g > 0).all():
        return 0.0
    lin = mu_net - sum(c * photons**k for k, c in zip(powers, coef) if k >= 2)
    q = 1 / 12
    z = (s2_y - q) / g**2 - (s2_dark - q)
    sd_z = sd / g**2
    return _f_test(_polyfit(lin, z, (1,), sd_z), _polyfit(lin, z, (1, 2), sd_z))


def _net_variance_se(levels, s2_y, s2_dark) -> np.ndarray:
    """Standard error of each level's net variance s2_y - s2_y.dark from the pixel statistics: a
    temporal variance over n pixel-frame degrees of freedom has the standard error sqrt(2 / n) of
    itself (Gaussian noise)."""
    def dof(stack):
        return stack[0].size * (stack.shape[0] - 1)

    n_bright = np.array([dof(lv.bright) for lv in levels], dtype=np.float64)
    n_dark = np.array([dof(lv.dark) for lv in levels], dtype=np.float64)
    return np.sqrt(2 * s2_y**2 / n_bright + 2 * s2_dark**2 / n_dark)


def _linearity_range(mu_net, excluded, sat) -> np.ndarray:
    lo, hi = LINEARITY_RANGE
    return (~excluded) & (mu_net >= lo * mu_net[sat]) & (mu_net <= hi * mu_net[sat])


def _relative_deviations(x, y) -> np.ndarray:
    """EMVA 1288 linearity fit y = a*x + b minimising relative deviations; the deviations in percent."""
    design = np.column_stack([x, np.ones_like(x)]) / y[:, None]
    (a, b), *_ = np.linalg.lstsq(design, np.ones_like(y), rcond=None)
    return 100 * (y - (a * x + b)) / (a * x + b)


def _linearity_error(photons, mu_net, excluded, sat) -> dict:
    """EMVA 1288 linearity error: fit mu_net = a*photons + b minimising relative deviations between
    5 % and 95 % of saturation; report the extreme relative deviations in percent."""
    use = _linearity_range(mu_net, excluded, sat)
    if use.sum() < 3:
        return {}
    dev = _relative_deviations(photons[use], mu_net[use])
    return {"linearity_error_min_pct": float(dev.min()), "linearity_error_max_pct": float(dev.max())}


def _implied_linearity_error(c, mu_net, excluded, sat) -> float:
    """Span (max - min, %) of the linearity error that the response y = lin + c lin^2 would have at the
    measured levels of the linearity range: the linearity error a photon transfer curve bent by a
    response non-linearity goes with (c from its curvature at zero, see NONLINEAR_LEVEL)."""
    use = _linearity_range(mu_net, excluded, sat)
    lin = mu_net[use]
    dev = _relative_deviations(lin, lin + c * lin * lin)
    return float(dev.max() - dev.min())


def _noise_map(mu_y, s2_y, mu_dark, s2_dark, excluded) -> dict:
    """Non-parametric intensity-to-noise map sigma^2(mu) up to saturation, made non-decreasing by
    isotonic regression (noise grows with signal below saturation)."""
    keep = ~excluded
    mean = np.concatenate([[np.mean(mu_dark)], mu_y[keep]])
    var = np.concatenate([[np.mean(s2_dark)], s2_y[keep]])
    order = np.argsort(mean)
    mean, var = mean[order], var[order]
    smooth = IsotonicRegression(increasing=True).fit_transform(mean, var)
    return {"mean_dn": [float(v) for v in mean], "variance_dn2": [float(v) for v in smooth],
            "method": "per-level temporal variance, isotonic (non-decreasing) in the mean"}


def _spatial(series: FlatFieldSeries, gain: float) -> dict | None:
    """DSNU1288 and PRNU1288 from the spatial set, temporal noise removed (var of the mean image
    minus the temporal variance / L)."""
    s = series.spatial
    if s is None:
        return None
    out = {}
    stats = {}
    for name, stack in (("dark", s.dark), ("bright", s.bright)):
        frames = stack.astype(np.float64)
        count = frames.shape[0]
        mean_image = frames.mean(axis=0)
        temporal = frames.var(axis=0, ddof=1).mean()
        spatial_var = mean_image.var(ddof=1) - temporal / count
        stats[name] = (mean_image.mean(), max(spatial_var, 0.0), count)
    (mu_d, s2_d, n_d), (mu_b, s2_b, n_b) = stats["dark"], stats["bright"]
    out["dsnu1288_e"] = math.sqrt(s2_d) / gain
    out["dsnu_dn"] = math.sqrt(s2_d)
    if mu_b > mu_d:
        out["prnu1288_pct"] = 100 * math.sqrt(max(s2_b - s2_d, 0.0)) / (mu_b - mu_d)
    out["frames"] = {"dark": n_d, "bright": n_b}
    return out

