"""Monte-Carlo spread sigma_raw, the distortion score eps, its summaries and the verdict.

For a parameter chi measured on the raw image (chi_raw), on N raw-equivalent replicas and on a
decoded image (chi_c)::

    sigma_raw = sd over replicas of chi        (ddof = 1, replicas that matched the object)
    eps       = (chi_raw - chi_c) / sigma_raw

Angles (``Angle``, ``FeretAngle``) live on a circle of 180 degrees: differences are wrapped to
[-90, 90) before both the spread and eps, so 179 deg vs 1 deg is a 2 deg difference.

When sigma_raw is 0 (every replica measured the same value), eps is 0 if the codec gives that
value too and +-inf otherwise; infinities are counted (``n_infinite``), kept out of the mean and
sd, and count as outside the band |eps| < 1.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

__all__ = ["angular_mask", "deviation", "replica_spread", "epsilon", "summarise_eps", "null_reference",
           "verdict", "VERDICT_RULE"]


# Relative size below which two measured values count as equal: far above float64 rounding of the
# morphometry (~1e-15), far below any real change of a parameter.
_ROUNDING = 1e-9


def _scale(values: np.ndarray) -> np.ndarray:
    return np.maximum(np.abs(values), 1.0)


def angular_mask(parameters, angular) -> np.ndarray:
    """Boolean per parameter: True where values are angles modulo 180 degrees."""
    return np.array([p in angular for p in parameters])


def deviation(reference: np.ndarray, other: np.ndarray, angular: np.ndarray) -> np.ndarray:
    """``reference - other``, wrapped to [-90, 90) in the angular columns (last axis)."""
    diff = np.asarray(reference, dtype=float) - np.asarray(other, dtype=float)
    wrapped = (diff + 90.0) % 180.0 - 90.0
    return np.where(angular, wrapped, diff)


def replica_spread(raw: np.ndarray, replicas: np.ndarray, angular: np.ndarray):
    """sigma_raw of every object and parameter.

    Parameters
    ----------
    raw : ndarray, shape (n_objects, n_parameters)
    replicas : ndarray, shape (n_replicas, n_objects, n_parameters)
        NaN where a replica had no object matching the raw object.
    angular : ndarray of bool, shape (n_parameters,)

    Returns
    -------
    sigma : ndarray, shape (n_objects, n_parameters)
        Sample standard deviation (ddof=1) over the replicas that matched; NaN with fewer than 2.
    n_matched : ndarray of int, shape (n_objects,)
    """
    # Deviations from the raw value, wrapped for angles, have the same spread as the values
    # themselves but no wrap-around jump at 0/180 degrees.
    dev = deviation(replicas, raw[None], angular)
    n_matched = np.isfinite(dev[..., 0]).sum(axis=0)
    ok = n_matched >= 2
    sigma = np.full(raw.shape, np.nan)
    if ok.any():
        d = dev[:, ok]
        mean = np.nanmean(d, axis=0)
        spread = np.sqrt(np.nansum((d - mean) ** 2, axis=0) / (n_matched[ok, None] - 1))
        # Values equal up to floating-point rounding (the same width computed along two hull edges)
        # must give sigma exactly 0, not 1e-16 that would turn any real change into eps ~ 1e16.
        constant = np.nanmax(d, axis=0) - np.nanmin(d, axis=0) <= _ROUNDING * _scale(raw[ok])
        sigma[ok] = np.where(constant, 0.0, spread)
    return sigma, n_matched


def epsilon(raw: np.ndarray, codec: np.ndarray, sigma: np.ndarray, angular: np.ndarray) -> np.ndarray:
    """eps = (chi_raw - chi_c) / sigma_raw, with the conventions of the module docstring."""
    diff = deviation(raw, codec, angular)
    diff = np.where(np.abs(diff) <= _ROUNDING * _scale(raw), 0.0, diff)
    with np.errstate(divide="ignore", invalid="ignore"):
        eps = diff / sigma
    eps = np.where((sigma == 0) & (diff == 0), 0.0, eps)
    return np.where(np.isnan(diff) | np.isnan(sigma), np.nan, eps)


def summarise_eps(eps: np.ndarray) -> dict:
    """Summary of one parameter's eps over objects (NaN = not estimable, left out).

    ``n`` counts objects with an eps (finite or infinite); mean and sd use the finite ones.
    """
    eps = np.asarray(eps, dtype=float)
    eps = eps[~np.isnan(eps)]
    finite = eps[np.isfinite(eps)]
    n = len(eps)
    return {
        "n": n,
        "n_infinite": int(n - len(finite)),
        "mean_eps": float(finite.mean()) if len(finite) else math.nan,
        "sd_eps": float(finite.std(ddof=1)) if len(finite) > 1 else math.nan,
        "median_abs_eps": float(np.median(np.abs(eps))) if n else math.nan,
        "frac_abs_eps_lt_1": float((np.abs(eps) < 1).mean()) if n else math.nan,
    }


def null_reference(n_replicas: int) -> dict:
    """What eps looks like for a second, independent raw acquisition, with ``n_replicas`` replicas.

    chi_raw - chi_c is then the difference of two independent draws (sd sqrt 2 sigma) and sigma is
    estimated from N replicas (N - 1 degrees of freedom), so eps ~ sqrt(2) * t(N - 1).
    """
    dof = n_replicas - 1
    scale = math.sqrt(2.0)
    return {
        "distribution": f"sqrt(2) * t({dof})",
        "sd": scale * math.sqrt(dof / (dof - 2)) if dof > 2 else math.inf,
        "frac_abs_eps_lt_1": float(2 * stats.t.cdf(1 / scale, dof) - 1),
        "abs_eps_q99": float(scale * stats.t.ppf(0.995, dof)),
    }


VERDICT_RULE = (
    "tolerable when, for every parameter family (AR, Round and Compact are one family, tested through AR): "
    "(1) at least 3 matched raw objects have a finite eps; (2) the 20 % trimmed mean of eps is shown to lie "
    "within +-{margin:g} (TOST of Yuen's t, p < {alpha:g}): the systematic shift is inside the raw noise; "
    "(3) the fraction of objects with |eps| < 1 is not significantly below {keep:.0%} of the fraction a "
    "simulated second raw acquisition gives for that parameter (the upper end of its 95 % bootstrap interval "
    "reaches it; second acquisitions simulated from replica pairs, eps ~ {dist} in theory: {p0:.2f}); "
    "and |eps| of N_tot and A_tot is below {q99:.2f}, the 99 % quantile of {dist}"
)
_KEEP = 0.8


def verdict(statistics: dict, null_fractions: dict, global_eps: dict, n_replicas: int):
    """Apply :data:`VERDICT_RULE`.

    Parameters
    ----------
    statistics : dict
        Parameter name -> :func:`noisestat.statistics.codec_statistics` entry.
    null_fractions : dict
        Parameter name -> fraction with |eps| < 1 of the simulated second acquisition (NaN: use the
        theoretical value).
    global_eps : dict
        Global parameter name -> eps.
    n_replicas : int

    Returns
    -------
    tolerable : bool
    reasons : list of str
        Why not (empty when tolerable).
    rule : str
        The rule with its numbers filled in.
    """
    from .statistics import ALPHA, FAMILIES, MARGIN, family_of

    null = null_reference(n_replicas)
    rule = VERDICT_RULE.format(margin=MARGIN, alpha=ALPHA, keep=_KEEP, dist=null["distribution"],
                               p0=null["frac_abs_eps_lt_1"], q99=null["abs_eps_q99"])
    reasons = []
    for name, s in statistics.items():
        fam = family_of(name)
        if fam != name and FAMILIES[fam][0] != name:
            continue  # tested through the family's representative
        if s["n_finite"] < 3:
            reasons.append(f"{name}: only {s['n_finite']} matched object(s) with a finite eps")
            continue
        if not s["p_equivalent"] < ALPHA:
            reasons.append(f"{name}: trimmed mean eps {s['trimmed_mean']:+.2f} not shown within "
                           f"+-{MARGIN:g} (TOST p = {s['p_equivalent']:.2g})")
        p0 = null_fractions.get(name, math.nan)
        if not np.isfinite(p0):
            p0 = null["frac_abs_eps_lt_1"]
        upper = s.get("frac_ci95", [math.nan, math.nan])[1]
        if not np.isfinite(upper):
            upper = s["frac_abs_eps_lt_1"]
        if upper < _KEEP * p0:
            reasons.append(f"{name}: {s['frac_abs_eps_lt_1']:.0%} of objects with |eps| < 1 (at most "
                           f"{upper:.0%}), second acquisition {p0:.0%}")
    for name, e in global_eps.items():
        if not abs(e) < null["abs_eps_q99"]:
            reasons.append(f"{name}: eps {e:+.2f}")
    return not reasons, reasons, rule
