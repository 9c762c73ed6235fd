"""The tests behind the verdict's criteria (:mod:`noisestat.score._verdict` combines them): a
proportion against a ratio-and-offset margin, the band share paired by object, the chi-square bound
of one global, and what a margin in sigma_raw means for eps (E[sigma / sigma_hat], the band share of
a wider error against the reference second acquisitions)."""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import stats

__all__ = ["eps_scale", "keep_for_spread", "proportion_margin_test", "clustered_margin_test", "global_test",
           "object_shares", "proportion_margin_effect", "clustered_margin_effect", "global_effect"]


def eps_scale(n_replicas: int) -> float:
    """E[sigma / sigma_hat] for sigma_hat from N replicas (chi distribution with N - 1 degrees of freedom):
    the factor by which a shift of s sigma_raw is, on average, a shift of eps. 1.094 for N = 10.

    The shift criterion tests "within" on eps against the margin (conservative in sigma_raw: eps
    overstates the shift) and "beyond" against the margin times this factor, so that a shift of exactly
    the margin in sigma_raw is called beyond at most alpha of the time.

    Examples
    --------
    >>> round(eps_scale(10), 3), round(eps_scale(4), 3)
    (1.094, 1.382)
    """
    dof = max(int(n_replicas) - 1, 2)
    return float(math.sqrt(dof / 2) * math.exp(math.lgamma((dof - 1) / 2) - math.lgamma(dof / 2)))


def _band_share(scale: float, dof: int) -> float:
    """P(|scale sqrt(2) T| < 1), T ~ t(dof): the share inside the band of eps of that width."""
    return float(2 * stats.t.cdf(1 / (scale * math.sqrt(2)), max(dof, 1)) - 1)


def keep_for_spread(spread: float, n_replicas: int, *, reference: str = "pooled") -> float:
    """The share of |eps| < 1 a codec whose error is ``spread`` times as wide as a second acquisition's
    would have, relative to the share of the reference second acquisitions.

    The codec's eps divides by sigma from N replicas: spread sqrt(2) t(N - 1). The reference is the
    ``"pooled"`` second acquisitions (the N // 2 disjoint replica pairs, sigma from the other N - 2:
    sqrt(2) t(N - 3), and the extra pair, sqrt(2) t(N - 1)) or the ``"pairs"`` alone (the extra pair's
    own reference). With few replicas the pairs' eps are wider than t(N - 1) gives, and a ratio taken
    against t(N - 1) would admit more than ``spread`` (1.7 x at N = 4).

    Examples
    --------
    >>> round(keep_for_spread(1.0, 10), 3), round(keep_for_spread(1.5, 10), 3)
    (1.008, 0.705)
    """
    n = int(n_replicas)
    pairs = n // 2 if n >= 4 else 0
    if reference == "pairs" and pairs:
        share0 = _band_share(1.0, n - 3)
    else:
        share0 = (pairs * _band_share(1.0, n - 3) + _band_share(1.0, n - 1)) / (pairs + 1)
    return _band_share(spread, n - 1) / share0


def proportion_margin_test(x: int, n: int, x0: float, n0: float, *, ratio: float, offset: float = 0.0) -> tuple:
    """One-sided p-values of the codec's proportion x/n against the margin ``ratio`` p0 + ``offset``
    (p0 = x0/n0, the reference's).

    Returns ``(p_below, p_above)``: small ``p_below`` shows p < margin, small ``p_above`` shows
    p > margin. A score-type z: the codec's variance is taken at the margin (as Wilson's interval
    does), which holds the level where the Wald variance of the observed rate does not (a rate of 0
    has no Wald variance); the reference's estimate enters the margin as observed and its variance
    with one success and one failure added (Agresti-Caffo's guard: a reference without any event
    still has a variance). ``n0 = inf`` takes ``x0`` as the known p0. Written here because
    statsmodels' ``test_proportions_2indep`` takes a ratio or a difference margin, not both at once,
    and its score test returns NaN (with warnings) when neither sample has an event, the normal case
    of losses in a clean scene.

    Examples
    --------
    >>> p_below, p_above = proportion_margin_test(0, 100, 2, 600, ratio=2, offset=0.05)
    >>> p_below < 0.05 < p_above
    True
    """
    d, se = proportion_margin_effect(x, n, x0, n0, ratio=ratio, offset=offset)
    if math.isnan(d):
        return math.nan, math.nan
    if not se > 0:
        return (0.0, 1.0) if d < 0 else (1.0, 0.0)
    z = d / se
    return float(stats.norm.cdf(z)), float(stats.norm.sf(z))


def proportion_margin_effect(x: int, n: int, x0: float, n0: float, *, ratio: float, offset: float = 0.0) -> tuple:
    """``(d, se)`` behind :func:`proportion_margin_test`: the codec's proportion minus its margin
    (``ratio`` p0 + ``offset``, at most 1), negative when within, and the standard error the test uses
    (the codec's variance at the margin, the reference's with Agresti-Caffo's guard). A dataset pools
    these over fields (:func:`noisestat.score.judge_dataset`). NaN without objects.

    Examples
    --------
    >>> d, se = proportion_margin_effect(0, 100, 2, 600, ratio=2, offset=0.05)
    >>> round(d, 4), round(se, 4)
    (-0.0567, 0.0238)
    """
    if n <= 0 or (not math.isinf(n0) and n0 <= 0):
        return math.nan, math.nan
    if math.isinf(n0):
        p0, var0 = float(x0), 0.0
    else:
        p0 = x0 / n0
        guarded = (x0 + 1) / (n0 + 2)
        var0 = guarded * (1 - guarded) / (n0 + 2)
    margin = min(ratio * p0 + offset, 1.0)
    var = margin * (1 - margin) / n + ratio ** 2 * var0
    return float(x / n - margin), float(math.sqrt(max(var, 0.0)))


def clustered_margin_test(inside: np.ndarray, inside0: np.ndarray, *, ratio: float) -> tuple:
    """One-sided p-values of "the codec's mean share inside > ``ratio`` x the reference's", paired by
    object.

    ``inside``: per object, the share of its primary parameters with |eps| < 1 (the codec's);
    ``inside0``: the same share of the reference second acquisitions, one row per object (already
    averaged over the reference pairs) or an array (pairs, objects). Returns ``(p_above, p_below)``:
    small ``p_above`` shows the codec's mean share above ``ratio`` times the reference's (within the
    spread margin), small ``p_below`` shows it below. Each object's difference ``share - ratio x
    its reference share`` is one observation (objects differ in how often they fall inside the band,
    and one object's parameters are correlated, so objects are the units and the reference is paired
    with the codec on the same object); a one-sample t over objects, after one object wholly inside
    and one wholly outside (at the reference's mean share) are added: the Agresti-Caffo guard, which
    gives a share of 1 in every object a variance.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> p_above, p_below = clustered_margin_test(rng.uniform(0.3, 0.7, 60), np.full(60, 0.5), ratio=0.7)
    >>> p_above < 0.05 < p_below
    True
    """
    mean, se, df = clustered_margin_effect(inside, inside0, ratio=ratio)
    if math.isnan(mean):
        return math.nan, math.nan
    if not se > 0:
        return (0.0, 1.0) if mean > 0 else (1.0, 0.0)
    t = mean / se
    return float(stats.t.sf(t, df)), float(stats.t.cdf(t, df))


def clustered_margin_effect(inside: np.ndarray, inside0: np.ndarray, *, ratio: float) -> tuple:
    """``(d, se, df)`` behind :func:`clustered_margin_test`: the mean over objects (and the two guard
    objects) of ``share - ratio x reference share``, positive when within, its standard error and the t
    test's degrees of freedom. A dataset pools ``d`` over fields. NaN without objects."""
    a = np.asarray(inside, dtype=float)
    b = np.asarray(inside0, dtype=float)
    if b.ndim == 2:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # objects no reference pair measured: NaN
            b = np.nanmean(b, axis=0)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if len(a) < 1:
        return math.nan, math.nan, 0
    m0 = float(b.mean())
    d = np.concatenate([a - ratio * b, [1.0 - ratio * m0, 0.0 - ratio * m0]])
    return float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d))), len(d) - 1


def global_test(eps: float, margin: float, n_replicas: int) -> tuple:
    """``(p_within, p_beyond)`` of |change of a global| < ``margin`` sigma_raw from one eps.

    eps = change / sigma_hat with (N - 1) sigma_hat^2 / sigma^2 ~ chi2(N - 1): at |change| = m sigma,
    P(|eps| < c) = P(chi2 > (N - 1) m^2 / c^2).

    Examples
    --------
    >>> [round(p, 3) for p in global_test(0.0, 4, 10)]
    [0.0, 1.0]
    >>> global_test(8.0, 4, 10)[1] < 0.05
    True
    """
    dof = max(n_replicas - 1, 1)
    if not np.isfinite(eps) and not np.isnan(eps):
        return 1.0, 0.0
    if np.isnan(eps):
        return math.nan, math.nan
    if eps == 0:
        return 0.0, 1.0
    q = dof * margin ** 2 / eps ** 2
    return float(stats.chi2.sf(q, dof)), float(stats.chi2.cdf(q, dof))


def global_effect(eps: float, n_replicas: int) -> tuple:
    """``(eps, se)`` of one global's eps for pooling over fields: eps = change / sigma_hat, whose only
    randomness given the change is sigma_hat's (chi with N - 1 degrees of freedom), so its standard
    error is about |eps| / sqrt(2 (N - 1)) (delta method); 0 for an unchanged global.

    Examples
    --------
    >>> [round(v, 3) for v in global_effect(3.0, 10)]
    [3.0, 0.707]
    """
    eps = float(eps)
    if not np.isfinite(eps):
        return eps, math.nan
    return eps, abs(eps) / math.sqrt(2 * max(int(n_replicas) - 1, 1))


def object_shares(eps: np.ndarray) -> np.ndarray:
    """Per object (row), the share of its parameters (columns) with |eps| < 1 among those with an eps
    (an infinite eps is outside); NaN for an object with none."""
    x = np.asarray(eps, dtype=float)
    has = ~np.isnan(x)
    n = has.sum(axis=1)
    with np.errstate(invalid="ignore"):
        inside = (np.abs(np.where(has, x, np.inf)) < 1).sum(axis=1)
        return np.where(n > 0, inside / np.maximum(n, 1), np.nan)


def _worst(eps: np.ndarray) -> np.ndarray:
    """Per row, the largest |eps| over the columns (NaN ignored; NaN where none)."""
    x = np.abs(np.asarray(eps, dtype=float))
    has = ~np.isnan(x).all(axis=1) if x.size else np.zeros(len(x), bool)
    out = np.full(len(x), np.nan)
    if has.any():
        out[has] = np.nanmax(x[has], axis=1)
    return out
