"""A codec's verdict over a whole dataset: the fields (fields of view, images of one campaign) are the
units, not their objects pooled.

Each field was judged on its own (:func:`noisestat.score.judge`). Over the fields, two criteria, each
with the two one-sided tests of the per-field verdict and the same three outcomes
(:func:`noisestat.score._verdict.decide`: tolerable when every criterion is shown within, not tolerable
when one is shown beyond after Holm's correction, inconclusive otherwise):

``shift`` (one per primary parameter)
    each field's 20 % trimmed mean of eps and its standard error (Tukey-McLaughlin), combined with the
    field as a random effect: :func:`statsmodels.stats.meta_analysis.combine_effects` with
    ``method_re="iterated"`` (Paule-Mandel's between-field variance, less biased than DerSimonian-Laird's
    with few fields), and the pooled mean's standard error of Hartung-Knapp-Sidik-Jonkman, never below
    the plain random-effects one (the "modified" HKSJ), with Student's t on ``fields - 1`` degrees of
    freedom: with few fields the normal interval of a random-effects mean is too narrow. Within when the
    ``1 - 2 alpha`` interval lies inside +-``margins.shift`` sigma_raw (TOST, the per-field margin);
    beyond when the one-sided test shows |pooled shift| above the margin times
    :func:`~noisestat.score.eps_scale` (as per field). From :data:`MIN_FIELDS` fields: below, nothing is
    shown either way.
``fields`` (one)
    the share of fields the codec is tolerable in, with its Clopper-Pearson interval (exact: its
    coverage holds for any number of fields), against the share of fields whose simulated second
    acquisition is tolerable (each field's null verdict): the threshold is that share, measured on the
    same fields. Beyond when the codec's share is shown below it (exact binomial test, level alpha);
    otherwise within. This criterion cannot *show* a share of fields at a handful of fields (five fields
    all tolerable bound the share above 0.55 only); it catches a codec that ruins some fields while
    the pooled shift stays small, and the burden of proof stays with the pooled shift. Not tested below
    :data:`MIN_FIELDS` fields.
``harm`` (one)
    the fields where the codec is not tolerable: a codec within every margin is not tolerable in a field
    with probability at most alpha (the per-field verdict's level), so beyond when the exact binomial
    test shows more such fields than binomial(fields, alpha) gives; otherwise within. It does not lean
    on the second acquisitions' verdicts, which are often inconclusive at ordinary object counts.

The same rule applied to the fields' simulated second acquisitions (their trimmed means, their null
verdicts against themselves) is the dataset's null outcome, reported beside every codec.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import stats
from statsmodels.stats.meta_analysis import combine_effects
from statsmodels.stats.proportion import proportion_confint

from ._criteria import eps_scale
from ._verdict import Margins, decide

__all__ = ["MIN_FIELDS", "pooled_shift", "fields_criterion", "harm_criterion", "judge_dataset"]

#: Fields below which the pooled shift is not tested (one field has no between-field variance).
MIN_FIELDS = 2

METHOD = ("random effects over fields: statsmodels combine_effects, method_re='iterated' (Paule-Mandel); "
          "modified Hartung-Knapp-Sidik-Jonkman standard error, Student's t on fields - 1 degrees of freedom")


def pooled_shift(estimates, standard_errors, *, margin: float, beyond_margin: float, alpha: float) -> dict:
    """The pooled shift of one parameter over fields (module docstring).

    Parameters
    ----------
    estimates, standard_errors : sequence of float
        Each field's trimmed mean of eps and its standard error; fields where either is not finite are
        left out (counted in ``left_out``).
    margin : float
        The shift margin in sigma_raw ("within" is tested against it).
    beyond_margin : float
        The margin "beyond" is tested against (the margin times :func:`eps_scale`).
    alpha : float

    Returns
    -------
    dict
        ``estimate``, ``interval`` (``1 - 2 alpha``), ``se``, ``df``, ``tau2`` (between-field variance),
        ``fields`` (pooled), ``left_out``, ``p_within``, ``p_beyond`` (NaN when not testable).

    Examples
    --------
    >>> r = pooled_shift([0.1, -0.2, 0.05, 0.0, 0.1], [0.1] * 5, margin=1.0, beyond_margin=1.09, alpha=0.05)
    >>> r["fields"], r["p_within"] < 0.05
    (5, True)
    """
    y = np.asarray(estimates, float)
    se = np.asarray(standard_errors, float)
    keep = np.isfinite(y) & np.isfinite(se) & (se >= 0)
    y, se = y[keep], se[keep]
    k = len(y)
    out = {"estimate": math.nan, "interval": [math.nan, math.nan], "se": math.nan, "df": k - 1 if k else 0,
           "tau2": math.nan, "fields": k, "left_out": int((~keep).sum()), "margin": margin,
           "p_within": math.nan, "p_beyond": math.nan}
    if k < MIN_FIELDS:
        return out
    var = se ** 2
    if not (var > 0).any():
        if (y == 0).all():  # every field's objects measured exactly as in the raw image
            out.update(estimate=0.0, interval=[0.0, 0.0], se=0.0, tau2=0.0, p_within=0.0, p_beyond=1.0,
                       exact="every field's trimmed mean is 0 with no spread")
        return out
    # a field whose trimmed core did not move at all has no standard error: give it the smallest one seen
    var = np.where(var > 0, var, var[var > 0].min())
    with warnings.catch_warnings():
        # combine_effects warns when Paule-Mandel's iteration meets tau2 = 0: an answer, not a fault
        warnings.simplefilter("ignore", RuntimeWarning)
        result = combine_effects(y, var, method_re="iterated")
    mean = float(result.mean_effect_re)
    s = float(max(result.sd_eff_w_re_hksj, result.sd_eff_w_re))
    df = k - 1
    crit = stats.t.isf(alpha, df)
    out.update(estimate=mean, se=s, tau2=float(result.tau2), interval=[mean - crit * s, mean + crit * s])
    if s > 0:
        out["p_within"] = float(max(stats.t.sf((mean + margin) / s, df), stats.t.sf((margin - mean) / s, df)))
        out["p_beyond"] = float(stats.t.sf((abs(mean) - beyond_margin) / s, df))
    else:
        out["p_within"] = 0.0 if abs(mean) < margin else 1.0
        out["p_beyond"] = 0.0 if abs(mean) > beyond_margin else 1.0
    return out


def fields_criterion(tolerable: int, n: int, null_tolerable: int, *, alpha: float) -> dict:
    """The share of fields the codec is tolerable in against the share its simulated second acquisitions
    are (module docstring): Clopper-Pearson interval at ``1 - 2 alpha``, beyond when the exact binomial
    test shows the codec's share below the second acquisitions' (P(X <= tolerable) at that share < alpha).

    Examples
    --------
    >>> c = fields_criterion(0, 10, 7, alpha=0.05)
    >>> c["interval"][1] < c["threshold"], c["p_beyond"] < 0.05
    (True, True)
    """
    share = tolerable / n if n else math.nan
    threshold = null_tolerable / n if n else math.nan
    if n >= MIN_FIELDS:
        lo, hi = proportion_confint(tolerable, n, alpha=2 * alpha, method="beta")
        interval = [float(lo), float(hi)]
        p_beyond = float(stats.binom.cdf(tolerable, n, threshold)) if threshold > 0 else 1.0
    else:
        interval, p_beyond = [math.nan, math.nan], math.nan
    return {"criterion": "fields", "parameter": "share of fields tolerable", "estimate": share,
            "interval": interval, "interval_method": "Clopper-Pearson", "threshold": threshold,
            "reference": threshold, "tolerable_fields": tolerable, "null_tolerable_fields": null_tolerable,
            "n": n, "units": "share of fields", "p_beyond": p_beyond,
            # not shown below the second acquisitions' share: the burden of proof is the pooled shift's
            "p_within": 0.0 if n >= MIN_FIELDS and p_beyond >= alpha else math.nan}


def harm_criterion(not_tolerable: int, n: int, *, alpha: float) -> dict:
    """The fields where the codec is *not tolerable* (shown beyond a margin there). A codec within every
    margin is called not tolerable in a field with probability at most ``alpha`` (the per-field verdict's
    level), so its count of such fields is at most binomial(n, alpha): beyond when the exact test shows
    more (P(X >= not_tolerable) < alpha); otherwise within. Two fields of two not tolerable is beyond
    (p = 0.0025), one of two is not (p = 0.098).

    Examples
    --------
    >>> harm_criterion(2, 2, alpha=0.05)["p_beyond"] < 0.05, harm_criterion(1, 2, alpha=0.05)["p_beyond"] < 0.05
    (True, False)
    """
    p_beyond = float(stats.binom.sf(not_tolerable - 1, n, alpha)) if n >= MIN_FIELDS else math.nan
    return {"criterion": "harm", "parameter": "fields not tolerable", "estimate": not_tolerable / n if n else math.nan,
            "not_tolerable_fields": not_tolerable, "n": n, "threshold": alpha, "units": "share of fields",
            "p_beyond": p_beyond, "p_within": 0.0 if n >= MIN_FIELDS and p_beyond >= alpha else math.nan}


def judge_dataset(fields: list, margins: Margins, n_replicas: int, primary) -> dict:
    """The pooled verdict of one codec over ``fields``.

    Parameters
    ----------
    fields : list of dict
        One per field: ``outcome`` (the codec's verdict there), ``null_outcome`` (its simulated second
        acquisition's), ``shift`` and ``null_shift``: parameter -> ``(trimmed mean, standard error)``.
    margins : Margins
    n_replicas : int
        The replicas of every field (the "beyond" margin's factor :func:`eps_scale`).
    primary : sequence of str
        The parameters whose shift is pooled (each field's verdict's primary parameters).

    Returns
    -------
    dict
        ``outcome``, ``tolerable`` (True, False or None for inconclusive), ``criteria``, ``reasons``,
        ``fields``, the same for the null (``null``).
    """
    alpha = margins.alpha
    beyond = margins.shift * eps_scale(n_replicas)
    n = len(fields)

    def rule(key: str, outcome_key: str, null_key: str) -> dict:
        criteria = []
        for p in primary:
            values = [f[key].get(p, (math.nan, math.nan)) for f in fields]
            c = pooled_shift([v[0] for v in values], [v[1] for v in values], margin=margins.shift,
                             beyond_margin=beyond, alpha=alpha)
            criteria.append({"criterion": "shift", "parameter": p, "units": "sigma_raw", "n": c["fields"],
                             "beyond_margin": beyond, **c})
        tolerable = sum(f[outcome_key] == "tolerable" for f in fields)
        null_tolerable = sum(f[null_key] == "tolerable" for f in fields)
        criteria.append(fields_criterion(tolerable, n, null_tolerable, alpha=alpha))
        criteria.append(harm_criterion(sum(f[outcome_key] == "not tolerable" for f in fields), n, alpha=alpha))
        outcome = decide(criteria, alpha)
        if n < MIN_FIELDS or (outcome == "tolerable" and not primary):
            outcome = "inconclusive"  # one field is no campaign: its own verdict is in its folder
        reasons = []
        for c in criteria:
            if outcome == "not tolerable" and c["decision"] == "beyond":
                reasons.append(_describe(c, "shown beyond"))
            elif outcome == "inconclusive" and c["decision"] == "undecided":
                reasons.append(_describe(c, "not shown either way"))
        if n < MIN_FIELDS:
            reasons.insert(0, f"{n} field(s): a dataset's verdict needs at least {MIN_FIELDS} fields (the pooled shift "
                              "is tested over fields)")
        return {"outcome": outcome, "tolerable": None if outcome == "inconclusive" else outcome == "tolerable",
                "criteria": criteria, "reasons": reasons}

    verdict = rule("shift", "outcome", "null_outcome")
    null = rule("null_shift", "null_outcome", "null_outcome")
    return {**verdict, "fields": n, "null": null}


def _describe(c: dict, how: str) -> str:
    if c["criterion"] == "harm":
        return (f"fields: not tolerable in {c['not_tolerable_fields']} of {c['n']} fields, more than a codec within "
                f"every margin is (at most {c['threshold']:g} of fields), {how} (p = {c['p_beyond']:.2g})")
    if c["criterion"] == "fields":
        return (f"fields: tolerable in {c['tolerable_fields']} of {c['n']} fields (interval {c['interval'][0]:.2f}"
                f"-{c['interval'][1]:.2f}) against {c['threshold']:.0%} for their simulated second acquisitions, "
                f"{how} (p = {c['p_beyond']:.2g})")
    est, (lo, hi) = c["estimate"], c["interval"]
    if not np.isfinite(est):
        return f"{c['parameter']}: pooled shift not estimable over {c['fields']} field(s), {how} the margin"
    p = c["p_beyond_holm"] if how == "shown beyond" else np.nanmin([c["p_within"], c["p_beyond_holm"], 1.0])
    return (f"{c['parameter']}: pooled shift {est:+.2f} sigma_raw (interval {lo:+.2f} to {hi:+.2f}, {c['fields']} "
            f"fields), {how} the margin +-{c['margin']:g} (p = {p:.2g})")
