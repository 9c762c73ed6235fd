"""A codec's verdict over a whole dataset: the fields (fields of view, images of one campaign) are the
units, not their objects pooled.

Each field was judged on its own (:func:`noisestat.score.judge`), every criterion with an effect and
its standard error in the criterion's own scale (the ``pool`` entry of each criterion). Over the
fields, *every* criterion of the per-field verdict is pooled the same way and carries the same burden
of proof: the fields' effects are combined with the field as a random effect
(:func:`statsmodels.stats.meta_analysis.combine_effects`, ``method_re="iterated"``: Paule-Mandel's
between-field variance, less biased than DerSimonian-Laird's with few fields), the pooled mean's
standard error is Hartung-Knapp-Sidik-Jonkman's, never below the plain random-effects one (the
"modified" HKSJ), and Student's t on ``fields - 1`` degrees of freedom gives the tests (with few fields
the normal interval of a random-effects mean is too narrow):

``shift`` (per primary parameter) and ``global`` (per global parameter), two-sided
    each field's 20 % trimmed mean of eps (or its global's eps). Within when the ``1 - 2 alpha`` interval
    lies inside +-margin (TOST; eps overstates a shift in sigma_raw, so this is conservative), beyond when
    the one-sided test shows |pooled effect| above the margin times :func:`~noisestat.score.eps_scale`.
``spread``, one-sided
    each field's mean share of the primary parameters inside |eps| < 1 minus its margin (the reference
    second acquisitions' share times the spread margin's factor): within when shown above 0, beyond when
    shown below.
``losses`` and ``outliers``, one-sided
    each field's rate minus its margin (ratio x the reference's rate + offset): within when shown below 0,
    beyond when shown above.

Tolerable when every pooled criterion is shown within, not tolerable when one is shown beyond after
Holm's correction over the criteria, inconclusive otherwise (:func:`noisestat.score._verdict.decide`).
A criterion is not shown within when any field could not be judged on it (no objects, fewer than three)
or shows an infinite effect there (a change where no replica varied): the verdict speaks for every
field or for none. Where every field's decoded image is its raw image, every criterion is within
exactly. Below :data:`MIN_FIELDS` fields nothing is shown either way.

What the verdict admits: the *average* field's effect within each margin. The spread between fields
is part of each interval (the between-field variance), and each pooled shift reports the
``prediction_interval`` of a new field's shift (Higgins, Thompson & Spiegelhalter 2009: t on
``fields - 2`` degrees of freedom, from 3 fields); a single field may lie outside the margin.

The counts of fields tolerable and not tolerable (with the Clopper-Pearson interval of the share, beside
the simulated second acquisitions' counts) are reported, not tested: a field's own verdict is often
inconclusive at ordinary numbers of objects, and a share of fields cannot be compared with a share
estimated on the same handful of fields at the verdict's level.

The same rule applied to the fields' simulated second acquisitions (their criteria against themselves)
is the dataset's null outcome, reported beside every codec.
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

__all__ = ["MIN_FIELDS", "pooled_shift", "pooled_criterion", "field_counts", "judge_dataset"]

#: Fields below which nothing is tested (one field has no between-field variance).
MIN_FIELDS = 2

METHOD = ("random effects over fields: statsmodels combine_effects, method_re='iterated' (Paule-Mandel); "
          "modified Hartung-Knapp-Sidik-Jonkman standard error, Student's t on fields - 1 degrees of freedom")

#: Each pooled criterion's direction: "two" (|effect| within the margin), "above" (within when the
#: effect is shown above 0), "below" (within when shown below 0).
SIDES = {"shift": "two", "global": "two", "spread": "above", "losses": "below", "outliers": "below"}


def pooled_criterion(estimates, standard_errors, *, sided: str = "two", margin: float = 0.0,
                     beyond_margin: float | None = None, alpha: float = 0.05, exact: bool = False) -> dict:
    """One criterion's effect pooled over fields (module docstring).

    Parameters
    ----------
    estimates, standard_errors : sequence of float
        Each field's effect and its standard error. A field where either is NaN is not judged
        (``left_out``), one with an infinite effect is counted in ``infinite``: with either, the
        criterion cannot be shown within.
    sided : {"two", "above", "below"}
        "two": within when the ``1 - 2 alpha`` interval lies inside +-``margin``, beyond when |effect| is
        shown above ``beyond_margin``; "above" / "below": within when the effect is shown above / below 0,
        beyond when shown on the other side.
    margin, beyond_margin : float
        The two-sided criterion's margins (``beyond_margin`` defaults to ``margin``).
    alpha : float
    exact : bool
        Every field's effect is exactly zero by construction (decoded = raw): within without a test.

    Returns
    -------
    dict
        ``estimate``, ``interval`` (``1 - 2 alpha``), ``prediction_interval`` (a new field's effect, from 3
        fields), ``se``, ``df``, ``tau2``, ``fields`` (pooled), ``left_out``, ``infinite``, ``p_within``,
        ``p_beyond`` (NaN when not testable).

    Examples
    --------
    >>> r = pooled_criterion([0.1, -0.2, 0.05, 0.0, 0.1], [0.1] * 5, margin=1.0, beyond_margin=1.09)
    >>> r["fields"], r["p_within"] < 0.05
    (5, True)
    >>> r = pooled_criterion([-0.05, -0.06, -0.04], [0.01] * 3, sided="below")
    >>> bool(r["p_within"] < 0.05 < r["p_beyond"])
    True
    """
    if sided not in ("two", "above", "below"):
        raise ValueError(f"sided must be 'two', 'above' or 'below'; got {sided!r}")
    beyond_margin = margin if beyond_margin is None else beyond_margin
    y_all = np.asarray(estimates, float)
    se_all = np.asarray(standard_errors, float)
    infinite = np.isinf(y_all)
    keep = np.isfinite(y_all) & np.isfinite(se_all) & (se_all >= 0)
    left_out = int((~keep & ~infinite).sum())
    y, se = y_all[keep], se_all[keep]
    k = len(y)
    out = {"estimate": math.nan, "interval": [math.nan, math.nan], "prediction_interval": [math.nan, math.nan],
           "se": math.nan, "df": k - 1 if k else 0, "tau2": math.nan, "fields": k, "left_out": left_out,
           "infinite": int(infinite.sum()), "sided": sided, "p_within": math.nan, "p_beyond": math.nan}
    if sided == "two":
        out["margin"] = margin
    if exact and k == len(y_all) and k >= MIN_FIELDS:
        out.update(estimate=0.0, interval=[0.0, 0.0], se=0.0, tau2=0.0, p_within=0.0, p_beyond=1.0,
                   exact="every field's decoded image is its raw image")
        return out
    if k < MIN_FIELDS:
        return out
    var = se ** 2
    if not (var > 0).any():
        if (y == 0).all() and sided == "two":  # every field's objects measured exactly as in the raw image
            out.update(estimate=0.0, interval=[0.0, 0.0], se=0.0, tau2=0.0, p_within=0.0, p_beyond=1.0,
                       exact="every field's effect is 0 with no spread")
            if left_out or infinite.any():
                out["p_within"] = math.nan
        return out
    # a field whose effect did not vary at all has no standard error: give it the smallest one seen
    var = np.where(var > 0, var, var[var > 0].min())
    with warnings.catch_warnings():
        # combine_effects warns when Paule-Mandel's iteration meets tau2 = 0: an answer, not a fault
        warnings.simplefilter("ignore", RuntimeWarning)
        result = combine_effects(y, var, method_re="iterated")
    mean = float(result.mean_effect_re)
    s = float(max(result.sd_eff_w_re_hksj, result.sd_eff_w_re))
    tau2 = float(result.tau2)
    df = k - 1
    crit = stats.t.isf(alpha, df)
    out.update(estimate=mean, se=s, tau2=tau2, interval=[mean - crit * s, mean + crit * s])
    if k >= 3:  # a new field's effect: the between-field spread and the mean's uncertainty, t on k - 2
        half = stats.t.isf(alpha, k - 2) * math.sqrt(tau2 + s * s)
        out["prediction_interval"] = [mean - half, mean + half]
    if s > 0:
        if sided == "two":
            p_within = max(stats.t.sf((mean + margin) / s, df), stats.t.sf((margin - mean) / s, df))
            p_beyond = stats.t.sf((abs(mean) - beyond_margin) / s, df)
        elif sided == "above":
            p_within, p_beyond = stats.t.sf(mean / s, df), stats.t.cdf(mean / s, df)
        else:
            p_within, p_beyond = stats.t.cdf(mean / s, df), stats.t.sf(mean / s, df)
    else:
        within = abs(mean) < margin if sided == "two" else (mean > 0 if sided == "above" else mean < 0)
        beyond = abs(mean) > beyond_margin if sided == "two" else (mean < 0 if sided == "above" else mean > 0)
        p_within, p_beyond = (0.0 if within else 1.0), (0.0 if beyond else 1.0)
    out["p_within"] = float(p_within) if not (left_out or infinite.any()) else math.nan
    out["p_beyond"] = float(p_beyond)
    return out


def pooled_shift(estimates, standard_errors, *, margin: float, beyond_margin: float, alpha: float) -> dict:
    """The pooled shift of one parameter over fields: :func:`pooled_criterion`, two-sided.

    Examples
    --------
    >>> r = pooled_shift([0.1, -0.2, 0.05, 0.0, 0.1], [0.1] * 5, margin=1.0, beyond_margin=1.09, alpha=0.05)
    >>> r["fields"], r["p_within"] < 0.05
    (5, True)
    """
    return pooled_criterion(estimates, standard_errors, sided="two", margin=margin, beyond_margin=beyond_margin,
                            alpha=alpha)


def field_counts(outcomes, null_outcomes, *, alpha: float) -> dict:
    """The fields a codec is tolerable and not tolerable in, beside its simulated second acquisitions'
    (reported, not tested: module docstring), with the Clopper-Pearson ``1 - 2 alpha`` interval of the
    share tolerable.

    Examples
    --------
    >>> c = field_counts(["tolerable"] * 4 + ["inconclusive"], ["tolerable"] * 3 + ["inconclusive"] * 2, alpha=0.05)
    >>> c["tolerable_fields"], c["null_tolerable_fields"], c["n"]
    (4, 3, 5)
    """
    outcomes, null_outcomes = list(outcomes), list(null_outcomes)
    n = len(outcomes)
    tolerable = sum(o == "tolerable" for o in outcomes)
    if n:
        lo, hi = proportion_confint(tolerable, n, alpha=2 * alpha, method="beta")
        interval = [float(lo), float(hi)]
    else:
        interval = [math.nan, math.nan]
    return {"n": n, "tolerable_fields": tolerable, "not_tolerable_fields": sum(o == "not tolerable" for o in outcomes),
            "inconclusive_fields": sum(o == "inconclusive" for o in outcomes),
            "null_tolerable_fields": sum(o == "tolerable" for o in null_outcomes),
            "null_not_tolerable_fields": sum(o == "not tolerable" for o in null_outcomes),
            "share_tolerable": tolerable / n if n else math.nan, "interval": interval,
            "interval_method": "Clopper-Pearson", "tested": False}


def _keys(per_field: list, primary) -> list:
    """The (criterion, parameter) pairs to pool, in order: the primary parameters' shifts first, then the
    other criteria as the first field that has them lists them (``per_field``: one dict per field, keyed
    by those pairs)."""
    keys = [("shift", p) for p in primary]
    for entries in per_field:
        keys += [k for k in entries if k[0] in SIDES and k[0] != "shift" and k not in keys]
    return keys


def judge_dataset(fields: list, margins: Margins, n_replicas: int, primary) -> dict:
    """The pooled verdict of one codec over ``fields``.

    Parameters
    ----------
    fields : list of dict
        One per field: ``outcome`` (the codec's verdict there), ``null_outcome`` (its simulated second
        acquisition's), ``criteria`` and ``null_criteria``: each a list of ``{"criterion", "parameter",
        "effect", "se", "exact"}`` (the field's verdict's criteria and their ``pool`` entries). A field
        given only ``shift`` / ``null_shift`` (parameter -> ``(trimmed mean, standard error)``) has those
        as its shift criteria.
    margins : Margins
    n_replicas : int
        The replicas of every field (the "beyond" margin's factor :func:`eps_scale`).
    primary : sequence of str
        The parameters whose shift is pooled (each field's verdict's primary parameters).

    Returns
    -------
    dict
        ``outcome``, ``tolerable`` (True, False or None for inconclusive), ``criteria``, ``reasons``,
        ``fields``, ``counts`` (:func:`field_counts`), the same for the null (``null``).
    """
    alpha = margins.alpha
    n = len(fields)

    def entries(f: dict, key: str, shift_key: str) -> dict:
        got = {(c["criterion"], c["parameter"]): c for c in f.get(key, ())}
        for p, (est, se) in f.get(shift_key, {}).items():
            got.setdefault(("shift", p), {"criterion": "shift", "parameter": p, "effect": est, "se": se})
        return got

    def rule(key: str, shift_key: str, outcome_key: str, null_key: str) -> dict:
        per_field = [entries(f, key, shift_key) for f in fields]
        criteria = []
        for kind, parameter in _keys(per_field, primary):
            got = [e.get((kind, parameter), {}) for e in per_field]
            sided = SIDES[kind]
            margin = margins.shift if kind == "shift" else margins.global_ if kind == "global" else 0.0
            c = pooled_criterion([number_from_json(g.get("effect")) for g in got],
                                 [number_from_json(g.get("se")) for g in got],
                                 sided=sided, margin=margin,
                                 beyond_margin=margin * eps_scale(n_replicas) if sided == "two" else None,
                                 alpha=alpha, exact=bool(got) and all(g.get("exact") for g in got))
            criteria.append({"criterion": kind, "parameter": parameter,
                             "units": ("sigma_raw" if sided == "two" else
                                       "share inside |eps| < 1 minus its margin" if kind == "spread" else
                                       "rate minus its margin"),
                             "n": c["fields"], **({"beyond_margin": margin * eps_scale(n_replicas)}
                                                  if sided == "two" else {}), **c})
        outcome = decide(criteria, alpha) if criteria else "inconclusive"
        if n < MIN_FIELDS or (outcome == "tolerable" and not primary):
            outcome = "inconclusive"  # one field is no campaign: its own verdict is in its folder
        reasons = []
        for c in criteria:
            if outcome == "not tolerable" and c["decision"] == "beyond":
                reasons.append(_describe(c, "shown beyond"))
            elif outcome == "inconclusive" and c["decision"] == "undecided":
                reasons.append(_describe(c, "not shown either way"))
        if n < MIN_FIELDS:
            reasons.insert(0, f"{n} field(s): a dataset's verdict needs at least {MIN_FIELDS} fields (each criterion "
                              "is pooled over fields)")
        counts = field_counts([f[outcome_key] for f in fields], [f[null_key] for f in fields], alpha=alpha)
        return {"outcome": outcome, "tolerable": None if outcome == "inconclusive" else outcome == "tolerable",
                "criteria": criteria, "reasons": reasons, "counts": counts}

    verdict = rule("criteria", "shift", "outcome", "null_outcome")
    null = rule("null_criteria", "null_shift", "null_outcome", "null_outcome")
    return {**verdict, "fields": n, "null": null}


def number_from_json(value) -> float:
    """A number read back from a summary.json (NaN is written null, infinities as text)."""
    if value is None:
        return math.nan
    if isinstance(value, str):
        return {"inf": math.inf, "-inf": -math.inf}.get(value, math.nan)
    return float(value)


def _describe(c: dict, how: str) -> str:
    est, (lo, hi) = c["estimate"], c["interval"]
    gaps = []
    if c.get("left_out"):
        gaps.append(f"{c['left_out']} field(s) not judged on it")
    if c.get("infinite"):
        gaps.append(f"{c['infinite']} field(s) with an infinite effect (a change where no replica varied)")
    gap = f"; {', '.join(gaps)}" if gaps else ""
    name = c["parameter"] if c["criterion"] in ("shift", "global") else c["criterion"]
    if not np.isfinite(est):
        return f"{name}: not estimable over {c['fields']} field(s){gap}, {how}"
    p = c["p_beyond_holm"] if how == "shown beyond" else np.nanmin([c["p_within"], c["p_beyond_holm"], 1.0])
    if c["sided"] == "two":
        what = (f"pooled {'shift' if c['criterion'] == 'shift' else 'eps'} {est:+.2f} sigma_raw (interval {lo:+.2f} "
                f"to {hi:+.2f}, {c['fields']} fields){gap}, {how} the margin +-{c['margin']:g}")
    else:
        side = "above" if c["sided"] == "above" else "below"
        what = (f"pooled {c['units']} {est:+.3f} (interval {lo:+.3f} to {hi:+.3f}, {c['fields']} fields; within "
                f"when {side} 0){gap}, {how}")
    return f"{name}: {what} (p = {p:.2g})"
