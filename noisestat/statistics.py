"""Statistics of eps per codec and parameter, against a simulated second raw acquisition.

Location. eps of real data is heavy-tailed (objects whose replicas barely moved get a tiny
sigma_raw), so the tests use the 20 % trimmed mean and Yuen's standard error (statsmodels
``TrimmedMean``), robust where the plain mean and t-test are not. Per parameter:

* a test of "trimmed mean eps = 0" (Yuen's t), Holm-corrected over parameter families;
* an equivalence test (TOST, two one-sided Yuen tests) of "|trimmed mean eps| < margin"
  (default 1: the systematic shift is inside the raw noise, the paper's |eps| < 1 applied to the
  shift). A tighter margin needs many objects: with ~80 objects and 16 families, a margin of 0.5
  rejected second raw acquisitions more often than not.

Spread. The fraction of objects with |eps| < 1, with a percentile bootstrap interval (seeded), set
beside the fraction a second raw acquisition gives.

Families. AR, Round and Compact are functions of one another (Round = 1/AR, Compact = AR^-1/2):
one family, tested once through AR, so one distortion is not counted three times.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.robust_compare import TrimmedMean

__all__ = ["FAMILIES", "TRIM", "MARGIN", "location_tests", "band_fraction", "codec_statistics", "difference_stats"]

TRIM = 0.2
MARGIN = 1.0
ALPHA = 0.05
N_BOOTSTRAP = 2000
# family name -> (representative parameter, members)
FAMILIES = {"AR": ("AR", ("AR", "Round", "Compact"))}


def family_of(parameter: str) -> str:
    for name, (_, members) in FAMILIES.items():
        if parameter in members:
            return name
    return parameter


def location_tests(eps: np.ndarray, *, margin: float = MARGIN) -> dict:
    """Yuen's test of trimmed mean = 0 and TOST of |trimmed mean| < margin on the finite eps."""
    x = np.asarray(eps, dtype=float)
    x = x[np.isfinite(x)]
    out = {"n_finite": int(len(x)), "trimmed_mean": math.nan, "p_zero": math.nan, "p_equivalent": math.nan}
    if len(x) < 3:
        return out
    tm = TrimmedMean(x, TRIM)
    mean, se, df = float(tm.mean_trimmed), float(tm.std_mean_trimmed), tm.nobs_reduced - 1
    out["trimmed_mean"] = mean
    if not se > 0 or df < 1:
        # no spread left after trimming: the trimmed mean is exact
        out["p_zero"] = 1.0 if mean == 0 else 0.0
        out["p_equivalent"] = 0.0 if abs(mean) < margin else 1.0
        return out
    out["p_zero"] = float(2 * stats.t.sf(abs(mean) / se, df))
    out["p_equivalent"] = float(max(stats.t.sf((mean + margin) / se, df), stats.t.sf((margin - mean) / se, df)))
    return out


def band_fraction(eps: np.ndarray, rng: np.random.Generator, *, n_bootstrap: int = N_BOOTSTRAP) -> dict:
    """Fraction of objects with |eps| < 1 (infinite eps count as outside) and its 95 % bootstrap interval."""
    x = np.asarray(eps, dtype=float)
    inside = (np.abs(x[~np.isnan(x)]) < 1).astype(float)
    if len(inside) == 0:
        return {"frac_abs_eps_lt_1": math.nan, "frac_ci95": [math.nan, math.nan]}
    boot = inside[rng.integers(0, len(inside), size=(n_bootstrap, len(inside)))].mean(axis=1)
    return {"frac_abs_eps_lt_1": float(inside.mean()),
            "frac_ci95": [float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))]}


def codec_statistics(eps: np.ndarray, parameters, rng: np.random.Generator, *, margin: float = MARGIN) -> dict:
    """Per parameter: location tests, Holm-corrected p over families, band fraction with interval."""
    out = {}
    for j, name in enumerate(parameters):
        out[name] = {"family": family_of(name), **location_tests(eps[:, j], margin=margin),
                     **band_fraction(eps[:, j], rng)}
    # Holm over families: one p-value per family, from its representative parameter
    reps = [p for p in parameters if family_of(p) == p or FAMILIES.get(family_of(p), (None,))[0] == p]
    pvals = [out[p]["p_zero"] for p in reps]
    testable = [i for i, p in enumerate(pvals) if np.isfinite(p)]
    if testable:
        adjusted = multipletests([pvals[i] for i in testable], method="holm")[1]
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
