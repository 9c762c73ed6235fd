"""Statistics of eps per codec and parameter, against simulated second raw acquisitions.

Location. eps of real data is heavy-tailed (objects whose replicas barely moved get a small
sigma_raw), so the tests use the 20 % trimmed mean and its Tukey-McLaughlin standard error (from the
winsorized variance; statsmodels ``TrimmedMean``), robust where the plain mean and t-test are not.
Per parameter:

* a test of "trimmed mean eps = 0", Holm-corrected over parameter families (descriptive);
* an equivalence test (TOST: two one-sided t tests) of "|trimmed mean eps| < margin", and the
  one-sided test of "|trimmed mean eps| > margin": the shift criterion of the verdict
  (:mod:`noisestat.score._verdict`, where the margin is set).

Infinite eps (sigma_raw = 0 and a changed value, see :mod:`noisestat.score`) take part: they are
replaced by +-``_BEYOND`` times the largest of the margin, 1 and the finite |eps|, beyond every
finite eps and the margin. Trimming drops them when they are fewer than the trimmed share of one tail
(as it would any outlier); when they are more, the trimmed mean is reported as infinite (NaN when
both signs survive) and TOST fails. With infinite eps, "trimmed mean = 0" is the signed-rank test and
"beyond the margin" also holds when the share of eps = +inf (or -inf) is shown above the trimmed
share (one-sided binomial test): the trimmed mean is then infinite.

Spread, per parameter (descriptive; the verdict pools the primary parameters): x of n objects have
|eps| < 1 (an infinite eps is outside), a second acquisition x0 of n0 (pooled simulated ones);
``p_band`` is the one-sided p of "p_codec > keep x p_second" (statsmodels' score test of a ratio of
two independent proportions), with the Wilson interval of the fraction for display.

Losses: :func:`loss_test` counts the codec's raw objects without a one-to-one partner (lost, split
or merged) against the rate between pairs of replicas (simulated second acquisitions); the verdict's
margin test is :func:`noisestat.score.proportion_margin_test`.

Families. AR, Round and Compact are functions of one another (Round = 1/AR, Compact = AR^-1/2), as
IntDen and RawIntDen are (equal when areas are in pixels): one family each, tested once through its
first member, so one distortion is not counted several times.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import stats
from statsmodels.stats.proportion import proportion_confint, test_proportions_2indep
from statsmodels.stats.robust_compare import TrimmedMean

__all__ = ["holm", "FAMILIES", "TRIM", "MARGIN", "ALPHA", "KEEP", "location_tests", "band_fraction", "band_noninferiority",
           "loss_test", "codec_statistics", "difference_stats"]

TRIM = 0.2
MARGIN = 1.0
ALPHA = 0.05
KEEP = 0.5
# stand-in for an infinite eps, as a multiple of max(margin, largest finite |eps|, 1): beyond every
# finite eps and the margin, yet of the same order, so that the trimmed mean and its standard error
# stay informative (a stand-in of 1e6 made the standard error so large that "trimmed mean = 0" could
# never be rejected once infinite eps survived the trimming: 8 of 20 at +inf gave p = 0.10)
_BEYOND = 4.0
# family name -> (representative parameter, members)
FAMILIES = {"AR": ("AR", ("AR", "Round", "Compact")), "IntDen": ("IntDen", ("IntDen", "RawIntDen")),
            "Volume": ("Volume", ("Volume", "Voxels"))}



def holm(pvals) -> np.ndarray:
    """Holm's step-down adjusted p-values of ``pvals``, in their order (each at most 1).

    Written here rather than taken from statsmodels' ``multipletests(method="holm")``, which gives the
    same values but runs a full garbage collection on every call: a verdict adjusts several families
    per codec, and in a process holding many objects each collection costs tenths of a second.
    """
    p = np.asarray(pvals, dtype=float)
    order = np.argsort(p, kind="stable")
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(np.maximum.accumulate(p[order] * np.arange(len(p), 0, -1)), 1.0)
    return adjusted

def family_of(parameter: str) -> str:
    for name, (_, members) in FAMILIES.items():
        if parameter in members:
            return name
    return parameter


def location_tests(eps: np.ndarray, *, margin: float = MARGIN, beyond_margin: float | None = None) -> dict:
    """Tukey-McLaughlin's t of trimmed mean = 0, TOST of |trimmed mean| < margin and the one-sided
    test of |trimmed mean| > ``beyond_margin`` (default ``margin``); infinite eps count as beyond every
    finite one (module docstring), NaN eps are left out.

    Returns n_eps (objects with an eps, infinite included), n_finite, n_infinite, trimmed_mean (+-inf
    when infinite eps of one sign survive the trimming, NaN when both signs do), p_zero, p_equivalent
    (small: shown within the margin), p_beyond (small: shown beyond it), se_trimmed, df.

    When the trimmed core has no spread (integer parameters the codec did not move give eps = 0
    exactly), the standard error of the plain mean stands in: the core's exactness says nothing of
    the objects outside it (60 % of the objects at 0 and 40 % at +5 have a trimmed mean beyond 1).
    """
    beyond_margin = margin if beyond_margin is None else beyond_margin
    x = np.asarray(eps, dtype=float)
    x = x[~np.isnan(x)]
    finite = np.isfinite(x)
    out = {"n_eps": int(len(x)), "n_finite": int(finite.sum()), "n_infinite": int((~finite).sum()),
           "trimmed_mean": math.nan, "p_zero": math.nan, "p_equivalent": math.nan, "p_beyond": math.nan,
           "se_trimmed": math.nan, "df": math.nan}
    if len(x) < 3:
        return out
    largest = float(np.abs(x[finite]).max()) if finite.any() else 0.0
    stand_in = _BEYOND * max(margin, beyond_margin, largest, 1.0)
    if not finite.all():
        x = np.where(finite, x, np.sign(x) * stand_in)
    tm = TrimmedMean(x, TRIM)
    mean, se, df = float(tm.mean_trimmed), float(tm.std_mean_trimmed), tm.nobs_reduced - 1
    kept = np.sort(x)[tm.sl]
    kept_inf = kept[np.abs(kept) >= stand_in]
    if len(kept_inf) == 0:
        out["trimmed_mean"] = mean
    elif (kept_inf > 0).all() or (kept_inf < 0).all():
        out["trimmed_mean"] = math.copysign(math.inf, kept_inf[0])
    # else: infinities of both signs survive the trimming: the trimmed mean is not defined (NaN)
    if not se > 0:
        se, df = float(x.std(ddof=1) / math.sqrt(len(x))), len(x) - 1
    out["se_trimmed"], out["df"] = se, int(df)
    if not se > 0:
        # every eps the same value: nothing to estimate
        out["p_zero"] = 1.0 if mean == 0 else 0.0
        out["p_equivalent"] = 0.0 if abs(mean) < margin else 1.0
        out["p_beyond"] = 0.0 if abs(mean) > beyond_margin else 1.0
        return out
    out["p_zero"] = float(2 * stats.t.sf(abs(mean) / se, df))
    out["p_equivalent"] = float(max(stats.t.sf((mean + margin) / se, df), stats.t.sf((margin - mean) / se, df)))
    out["p_beyond"] = float(stats.t.sf((abs(mean) - beyond_margin) / se, df))
    if out["n_infinite"]:
        # No mean holds an infinite eps and no stand-in value makes a t statistic of one meaningful
        # (its standard error grows with it): 8 of 20 at +inf kept p near 0.10 whatever the stand-in.
        # "Trimmed mean = 0" is then the signed-rank test, where an infinite eps is simply the largest;
        # and the trimmed mean is infinite exactly when more than the trimmed share of the objects have
        # eps = +inf (or -inf): a one-sided binomial test of that share shows it beyond every margin
        # (Bonferroni with the t test: either may show it). Infinities that survive the trimming can
        # never show the shift within a margin.
        out["p_zero"] = float(stats.wilcoxon(x, zero_method="zsplit").pvalue)
        k = int(max((x >= stand_in).sum(), (x <= -stand_in).sum()))
        p_inf = float(stats.binomtest(k, len(x), TRIM, alternative="greater").pvalue)
        out["p_beyond"] = min(1.0, 2 * min(out["p_beyond"], p_inf))
        if len(kept_inf):
            out["p_equivalent"] = 1.0
    return out


def band_fraction(eps: np.ndarray) -> dict:
    """Objects with |eps| < 1 among those with an eps (infinite eps count as outside), with the 95 %
    Wilson interval of the fraction (for display; the verdict uses :func:`band_noninferiority`)."""
    x = np.asarray(eps, dtype=float)
    x = x[~np.isnan(x)]
    n, k = len(x), int((np.abs(x) < 1).sum())
    if n == 0:
        return {"n_band": 0, "n_inside": 0, "frac_abs_eps_lt_1": math.nan, "frac_wilson95": [math.nan, math.nan]}
    lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
    return {"n_band": n, "n_inside": k, "frac_abs_eps_lt_1": k / n, "frac_wilson95": [float(lo), float(hi)]}


def band_noninferiority(n_inside: int, n: int, null_inside, null_n, *, keep: float = KEEP) -> float:
    """One-sided p of "p_codec <= keep * p_second" (small p: the codec's share inside the band is shown
    above ``keep`` times the second acquisition's).

    Parameters
    ----------
    n_inside, n : int
        The codec's objects with |eps| < 1, and with an eps.
    null_inside, null_n : float
        The same for the second acquisition; ``null_n = inf`` takes ``null_inside`` as the known
        fraction p_second (the theoretical one, when no simulated second acquisition exists).

    statsmodels' score test of the ratio of two independent proportions (``test_proportions_2indep``,
    ``compare="ratio"``); an exact binomial test against a known p_second. NaN where the score test is
    not defined (no object inside or outside in either sample).

    Examples
    --------
    >>> band_noninferiority(50, 100, 300, 600) < 0.001   # half inside, as a second acquisition
    True
    >>> band_noninferiority(20, 100, 300, 600) > 0.5     # 20 % inside: not shown >= 25 %
    True
    """
    if n <= 0:
        return math.nan
    if math.isinf(null_n):
        return float(stats.binomtest(int(n_inside), int(n), min(1.0, keep * float(null_inside)),
                                     alternative="greater").pvalue)
    if null_n <= 0:
        return math.nan
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        p = test_proportions_2indep(int(n_inside), int(n), int(null_inside), int(null_n), value=keep,
                                    method="score", compare="ratio", alternative="larger").pvalue
    return float(p) if np.isfinite(p) else math.nan


def loss_test(n_unmatched: int, n: int, null_unmatched: int, null_n: int, *, alpha: float = ALPHA) -> dict:
    """Does the codec leave more raw objects without a one-to-one partner than a second acquisition?

    One-sided Fisher exact test of the 2x2 table (unmatched, matched) x (codec, second acquisitions).

    Examples
    --------
    >>> loss_test(30, 100, 30, 600)["excess"], loss_test(6, 100, 30, 600)["excess"]
    (True, False)
    """
    out = {"n_raw": int(n), "n_unmatched": int(n_unmatched), "rate": n_unmatched / n if n else math.nan,
           "null_unmatched": int(null_unmatched), "null_n": int(null_n),
           "null_rate": null_unmatched / null_n if null_n else math.nan, "p_excess": math.nan, "alpha": alpha,
           "excess": False, "test": "one-sided Fisher exact, codec vs pooled replica pairs"}
    if n > 0 and null_n > 0:
        table = [[n_unmatched, n - n_unmatched], [null_unmatched, null_n - null_unmatched]]
        out["p_excess"] = float(stats.fisher_exact(table, alternative="greater")[1])
        out["excess"] = bool(out["p_excess"] < alpha)
    return out


def codec_statistics(eps: np.ndarray, parameters, null_counts: dict | None = None, *, margin: float = MARGIN,
                     keep: float = KEEP, beyond_margin: float | None = None) -> dict:
    """Per parameter: location tests, Holm-corrected p over families, band fraction and its
    non-inferiority p against the second acquisition.

    ``null_counts``: parameter -> {"inside": x0, "n": n0, "fraction": p0} of the second acquisition
    (n0 = 0 or missing: p0 taken as known); without it, no ``p_band``.
    """
    null_counts = null_counts or {}
    out = {}
    for j, name in enumerate(parameters):
        entry = {"family": family_of(name), **location_tests(eps[:, j], margin=margin, beyond_margin=beyond_margin),
                 **band_fraction(eps[:, j])}
        ref = null_counts.get(name)
        entry["null_fraction"] = entry["band_threshold"] = entry["p_band"] = math.nan
        if ref is not None and np.isfinite(ref.get("fraction", math.nan)):
            n0 = ref.get("n", 0)
            entry["null_fraction"] = float(ref["fraction"])
            entry["band_threshold"] = keep * float(ref["fraction"])
            entry["p_band"] = (band_noninferiority(entry["n_inside"], entry["n_band"], ref["inside"], n0, keep=keep)
                               if n0 > 0 else
                               band_noninferiority(entry["n_inside"], entry["n_band"], ref["fraction"], math.inf,
                                                   keep=keep))
        out[name] = entry
    # Holm over families: one p-value per family, from its representative parameter
    reps = [p for p in parameters if family_of(p) == p or FAMILIES.get(family_of(p), (None,))[0] == p]
    pvals = [out[p]["p_zero"] for p in reps]
    testable = [i for i, p in enumerate(pvals) if np.isfinite(p)]
    if testable:
        adjusted = holm([pvals[i] for i in testable])
        for i, adj in zip(testable, adjusted):
            fam = family_of(reps[i])
            for name in parameters:
                if family_of(name) == fam:
                    out[name]["p_zero_holm"] = float(adj)
    for name in parameters:
        out[name].setdefault("p_zero_holm", math.nan)
    return out


def difference_stats(differences: np.ndarray) -> dict:
    """Mean and sd of differences (e.g. single-object area, chi_c - chi_raw), NaN ignored."""
    x = np.asarray(differences, dtype=float)
    x = x[np.isfinite(x)]
    return {"n": int(len(x)), "mean": float(x.mean()) if len(x) else math.nan,
            "sd": float(x.std(ddof=1)) if len(x) > 1 else math.nan}
