"""Monte-Carlo spread sigma_raw, the distortion score eps, its summaries and the verdict.

For a parameter chi measured on the raw image (chi_raw), on N raw-equivalent replicas and on a
decoded image (chi_c)::

    sigma_raw = sd over replicas of chi        (ddof = 1, replicas that matched the object)
    eps       = (chi_raw - chi_c) / max(sigma_raw, floor)      (floor: see below)

Angles (``Angle``, ``FeretAngle``) live on a circle of 180 degrees: differences are wrapped to
[-90, 90) before both the spread and eps, so 179 deg vs 1 deg is a 2 deg difference.

**sigma_raw = 0: a resolution floor.** The parameters are measured on a pixel lattice: Area, FeretX,
FeretY, N_tot and A_tot are integers, Perim., Feret, MinFeret take lattice values. When every replica
measures the same value, sigma_raw = 0 says only that the parameter's spread is below its resolution,
and any change gave eps = +-inf. The spread used is therefore::

    sigma = max(sigma_raw, h / sqrt(12))

the rounding noise of a measurement quantised on a lattice of step h. For a per-object parameter h is
its typical smallest observable change: for each raw object, the smallest non-zero |chi_replica -
chi_raw| over the replicas; h is the median of that over the objects that changed at all (integer
parameters give h = 1). For N_tot and A_tot (one value, nothing to pool) h = 1, their lattice step.
The floor binds only where the replicas saw no change of one step: any replica off by h already
gives sigma_raw >= 0.32 h with 10 replicas. It is the same rule for objects and globals, fixed from
the replicas alone before any codec is seen, and it is conservative: "no change in N replicas" is
consistent with a one-step change of chance up to 1 - 0.05^(1/N) (upper 95 % bound), a spread of up
to 0.44 h for N = 10; the floor 0.29 h stays below that, so it never credits the codec with more
noise than the replicas allow. (An empirical-Bayes pooling of log-variances across objects was not
chosen: N_tot and A_tot have one value each, so objects and globals could not share the rule.) A
one-step change then scores |eps| = 3.46: outside the band |eps| < 1 (it counts against the codec),
and for a global between what can be shown within and beyond 4 sigma_raw with 10 replicas (2.92 and
6.58: :func:`noisestat.score.global_test`), so one object more or less is neither an automatic
rejection nor shown harmless. Objects whose floor applied are counted (summary.json
``sigma_floor.floored_fraction``).

A parameter no replica ever changed (h undefined) keeps sigma = 0; eps is then 0 if the codec gives
the raw value and +-inf otherwise. **Infinite eps stay in every test**: the trimmed mean counts them
as beyond any margin, the band fraction as outside the band (:mod:`noisestat.score`); only the
mean and sd of the summaries, which cannot hold them, leave them out and count them (``n_infinite``).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import stats


__all__ = ["angular_mask", "deviation", "replica_spread", "resolution_floor", "floored", "GLOBAL_FLOOR", "global_floors",
           "epsilon", "summarise_eps", "null_reference"]


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
    # themselves but no wrap-around jump at 0/180 degrees where the replicas lie near the raw angle.
    dev = deviation(replicas, raw[None], angular)
    if np.any(angular):
        # Replicas far from the raw angle (a raw 0 with replicas at 90 +- 2 degrees wrap to +-88):
        # deviations are taken from the replicas' own circular mean (axial data: angles doubled), so
        # the spread is theirs (2 degrees), not that of a wrapped jump (a linear sd of 92).
        dev = np.where(angular, _circular_deviation(dev), dev)
    n_matched = np.isfinite(dev[..., 0]).sum(axis=0)
    ok = n_matched >= 2
    sigma = np.full(raw.shape, np.nan)
    if ok.any():
        d = dev[:, ok]
        with warnings.catch_warnings():  # parameters not measured (NaN for every object, volumes) stay NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(d, axis=0)
            spread = np.sqrt(np.nansum((d - mean) ** 2, axis=0) / (n_matched[ok, None] - 1))
            # Values equal up to floating-point rounding (the same width computed along two hull edges)
            # must give sigma exactly 0, not 1e-16 that would turn any real change into eps ~ 1e16.
            constant = np.nanmax(d, axis=0) - np.nanmin(d, axis=0) <= _ROUNDING * _scale(raw[ok])
        sigma[ok] = np.where(constant, 0.0, np.where(np.isnan(mean), np.nan, spread))
    return sigma, n_matched


def _circular_deviation(dev: np.ndarray) -> np.ndarray:
    """Angular deviations (degrees, period 180; axis 0 the replicas, NaN where none matched) re-centred
    on their circular mean and wrapped to [-90, 90): the same spread for any rotation of the angles."""
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        doubled = np.deg2rad(2.0 * dev)
        centre = np.rad2deg(np.arctan2(np.nanmean(np.sin(doubled), axis=0), np.nanmean(np.cos(doubled), axis=0))) / 2
    return (dev - centre[None] + 90.0) % 180.0 - 90.0


# N_tot (objects) and A_tot (pixels) are counts: lattice step 1, floor 1 / sqrt(12).
GLOBAL_FLOOR = 1.0 / math.sqrt(12.0)


def global_floors(names, spacing=None, steps=None) -> np.ndarray:
    """The floor of each global's sigma_raw, its step h / sqrt(12): counts (N_tot, A_tot in pixels) step
    by 1; a volume's V_tot by one voxel's volume and SA_tot by its smallest face (in the units of
    ``spacing``, z y x); a load (a share) has no lattice of its own: floor 0. ``steps`` (name -> h)
    overrides: a class's size and load move by whole objects when the replicas never moved them (one
    object more is then a discrete event, as it is for a count), so the pipeline gives them one object's
    step there (:func:`noisestat._tasks.global_steps`)."""
    z, y, x = (1.0, 1.0, 1.0) if spacing is None else (float(v) for v in spacing)
    lattice = {"V_tot": z * y * x, "SA_tot": min(z * y, z * x, y * x), "load": 0.0}
    steps = steps or {}
    return np.array([max(lattice.get(name.split("[")[0], 1.0), steps.get(name, 0.0)) / math.sqrt(12.0)
                     for name in names])


def resolution_floor(raw: np.ndarray, replicas: np.ndarray, angular: np.ndarray) -> np.ndarray:
    """The floor h / sqrt(12) of sigma_raw per parameter (module docstring).

    Parameters
    ----------
    raw : ndarray, shape (n_objects, n_parameters)
    replicas : ndarray, shape (n_replicas, n_objects, n_parameters)
        NaN where a replica had no object matching the raw object.
    angular : ndarray of bool, shape (n_parameters,)

    Returns
    -------
    floor : ndarray, shape (n_parameters,)
        0 where no replica changed any object's value of that parameter.

    Examples
    --------
    >>> raw = np.array([[10.0], [20.0]])
    >>> reps = np.array([[[10.0], [21.0]], [[10.0], [22.0]], [[10.0], [20.0]]])
    >>> round(float(resolution_floor(raw, reps, np.array([False]))[0]), 4)  # h = 1
    0.2887
    """
    dev = np.abs(deviation(replicas, raw[None], angular))
    changed = dev > _ROUNDING * _scale(raw)[None]
    smallest = np.where(changed, dev, np.inf).min(axis=0) if len(dev) else np.full(raw.shape, np.inf)
    floor = np.zeros(raw.shape[1])
    for j in range(raw.shape[1]):
        h = smallest[:, j][np.isfinite(smallest[:, j])]
        if len(h):
            floor[j] = float(np.median(h)) / math.sqrt(12.0)
    return floor


def floored(sigma: np.ndarray, floor) -> np.ndarray:
    """sigma used in eps: ``max(sigma_raw, floor)``, NaN kept (not estimable stays not estimable)."""
    sigma = np.asarray(sigma, dtype=float)
    return np.where(np.isnan(sigma), np.nan, np.maximum(sigma, floor))


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


def null_median_abs(n_replicas: int) -> float:
    """Median |eps| of the :func:`null_reference` distribution sqrt(2) * t(N - 1) (shown in the report's
    ratio-distortion figure when no second acquisition was simulated)."""
    dof = n_replicas - 1
    return float(math.sqrt(2.0) * stats.t.ppf(0.75, dof))
