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
from sklearn.isotonic import IsotonicRegression

from ..errors import InputError
from ._readers import FlatFieldSeries

__all__ = ["PhotonTransfer", "photon_transfer", "temporal_stats", "FIT_FRACTION", "QUANTISATION_FLOOR_DN2",
           "LINEARITY_FLOOR_PCT", "LINEARITY_CONSISTENCY"]

FIT_FRACTION = 0.7                # K is fitted from 0 to 70 % of saturation (EMVA 1288)
LINEARITY_RANGE = (0.05, 0.95)    # linearity error between 5 % and 95 % of saturation
QUANTISATION_FLOOR_DN2 = 0.24     # dark variance floor of quantisation-limited cameras (EMVA 1288)
# Non-linearity test. The linear model is wrong when the RESPONSE is non-linear, y = f(lin): that
# bends the mean signal against photons (the EMVA 1288 linearity error) and, through f'^2, the photon
# transfer curve. For y = lin + c lin^2, to first order s2_net = K (mu + 3 c mu^2): a quadratic term
# q of the photon transfer curve implies c = q / (3 K), and with it a linearity error that can be
# computed at the measured levels (:func:`_implied_linearity_error`). The camera is non-linear when
# 1. the photon transfer curve bends: its quadratic term is significant (|t| > NONLINEAR_T) and
#    changes the slope by more than NONLINEAR_EFFECT over the fitted range; and, with photon counts,
# 2. the response bends as well: |linearity error| > LINEARITY_FLOOR_PCT, and its span (max - min) is
#    at least LINEARITY_CONSISTENCY times the span the photon transfer curve's bend implies.
# A bend of the photon transfer curve without the matching linearity error is not a response
# non-linearity (it comes from the variance estimates: quantisation of an 8-bit camera at low
# signal, correlated noise, a drifting light source); the standard's straight line then stays the
# definition of K. The floor: data sheets of linear cameras give linearity errors within +-1 %
# (Basler CCD set -0.51 / +0.44 %; simulated linear cameras +-0.05 %), and a response within it
# changes K by a few % at most. The factor 1/2 leaves room for response curves that are not
# quadratic and for the noise of both estimates. A response non-linearity gives a ratio near 1:
# simulated cameras with |a| = 0.25 and 0.5, 8 and 12 bit: 0.87 to 1.15; the Basler CCD set, whose
# photon transfer curve bends by -4.3 % (not enough to count), 0.95. An 8-bit CMOS whose photon
# transfer curve bends by 17 % with a linearity error of -0.50 / +0.71 % (span 1.21 %) gives about
# 0.3 (the Basler scale puts the implied span near 4 %), and stays under the 1 % floor as well.
NONLINEAR_T = 3.0
NONLINEAR_EFFECT = 0.05
LINEARITY_FLOOR_PCT = 1.0
LINEARITY_CONSISTENCY = 0.5
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


def _polyfit_through_origin(x, y, degree, sd=None):
    """Least squares y = c1 x + c2 x^2 + ... + c_d x^d, weighted by 1/sd^2 when ``sd`` is given;
    coefficients and their standard errors (residual variance scaled)."""
    sd = np.ones_like(x) if sd is None else sd
    design = np.column_stack([x**k for k in range(1, degree + 1)]) / sd[:, None]
    scale = np.abs(design).max(axis=0)  # column scaling keeps the normal equations well conditioned
    design = design / scale
    coef, *_ = np.linalg.lstsq(design, y / sd, rcond=None)
    resid = y / sd - design @ coef
    dof = len(x) - degree
    cov = np.linalg.pinv(design.T @ design) * (resid @ resid / max(dof, 1))
    return coef / scale, np.sqrt(np.diag(cov)) / scale


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
    :data:`LINEARITY_CONSISTENCY`); then the gain is the slope at zero signal of the general model and
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

    # The non-linearity test (see LINEARITY_CONSISTENCY): the photon transfer curve bends, and, when
    # the photon counts allow it, the response does too, by as much as the bend implies.
    curved = False
    implied = None
    if lit.sum() >= 4:
        coef, se = _polyfit_through_origin(x, y, 2)
        t = coef[1] / se[1] if se[1] > 0 else math.inf * np.sign(coef[1])
        effect = coef[1] * x.max() / coef[0] if coef[0] > 0 else math.inf
        curved = bool(abs(t) > NONLINEAR_T and abs(effect) > NONLINEAR_EFFECT)
        linearity.update({"ptc_quadratic_t": float(t), "ptc_slope_change": float(effect),
                          "test": f"quadratic term of the photon transfer curve up to {FIT_FRACTION:.0%} of "
                                  f"saturation: |t| > {NONLINEAR_T:g} and slope change > {NONLINEAR_EFFECT:.0%}; "
                                  f"with photon counts also |linearity error| > {LINEARITY_FLOOR_PCT:g} % and its "
                                  f"span >= {LINEARITY_CONSISTENCY:g} x the span the bend implies"})
        if known_photons and coef[0] > 0 and "linearity_error_min_pct" in linearity:
            implied = _implied_linearity_error(coef[1] / (3 * coef[0]), mu_net, excluded, sat)
            linearity["implied_linearity_error_span_pct"] = implied
    if curved and "linearity_error_min_pct" in linearity:
        lo_le, hi_le = linearity["linearity_error_min_pct"], linearity["linearity_error_max_pct"]
        span = hi_le - lo_le
        response_bends = (max(abs(lo_le), abs(hi_le)) > LINEARITY_FLOOR_PCT
                          and implied is not None and span >= LINEARITY_CONSISTENCY * implied)
        nonlinear = response_bends
        if not nonlinear:
            warnings.append(f"the photon transfer curve bends ({100 * linearity['ptc_slope_change']:+.0f} % slope change "
                            f"up to {FIT_FRACTION:.0%} of saturation, t = {linearity['ptc_quadratic_t']:.1f}) but the "
                            f"response does not: linearity error {lo_le:+.2f} / {hi_le:+.2f} % where a response "
                            f"non-linearity would give a span of "
                            f"{'?' if implied is None else f'{implied:.2g}'} %: linear model kept, K from the "
                            f"EMVA 1288 straight line")
    else:
        nonlinear = curved
        if curved:
            warnings.append(f"non-linear camera found from the photon transfer curve alone "
                            f"({100 * linearity['ptc_slope_change']:+.0f} % slope change): without a linearity "
                            f"error (photon counts, 3 levels between 5 and 95 % of saturation) the response "
                            f"cannot be checked")
    coef = None
    degree = 1
    if nonlinear:
        # Unbiased gain of a non-linear camera: the slope of the curve at zero signal, where the
        # response is linear. A straight line across the bend is biased, and so is a parabola when the
        # curve bends more than quadratically: the degree grows while the next term is significant.
        # Each level's variance estimate has a standard error proportional to the variance itself
        # (sqrt(2/n) of it for n pixel pairs), so the fit is weighted by 1/s2_y^2: the low levels,
        # where the response is nearly linear, then carry the slope at zero.
        # A parabola still bends too little for common response curves (the photon transfer curve
        # of y = lin + c lin^2 has a cubic term -2c^2 mu^3 of its own): start from a cubic when
        # there are levels enough, and go higher while the next term is significant.
        sd = s2_y[fit]
        degree = 3 if lit.sum() >= 6 else 2
        coef, se = _polyfit_through_origin(x, y, degree, sd)
        while degree < MAX_DEGREE and lit.sum() >= degree + 3:
            higher, higher_se = _polyfit_through_origin(x, y, degree + 1, sd)
            if not abs(higher[-1]) > 2 * higher_se[-1]:
                break
            coef, se, degree = higher, higher_se, degree + 1
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
    response non-linearity goes with (c from its quadratic term, see LINEARITY_CONSISTENCY)."""
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

