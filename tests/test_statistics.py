import math

import numpy as np
import pytest

from noisestat.measure import PARAMETERS
from noisestat.score import FAMILIES, band_fraction, codec_statistics, difference_stats, location_tests


def test_equivalence_and_zero_tests_on_known_shifts():
    rng = np.random.default_rng(0)
    null = rng.normal(0, 1.6, 400)
    t = location_tests(null)
    assert t["p_equivalent"] < 0.001 and t["p_zero"] > 0.01
    shifted = rng.normal(2.0, 1.6, 400)
    t = location_tests(shifted)
    assert t["p_equivalent"] > 0.5 and t["p_zero"] < 1e-10 and t["trimmed_mean"] == pytest.approx(2.0, abs=0.3)


def test_trimmed_mean_resists_heavy_tails():
    # a few huge eps (objects whose replicas barely moved) would carry the plain mean away
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(0, 1.5, 200), [400.0, 250.0, 900.0]])
    assert abs(x.mean()) > 5
    t = location_tests(x)
    assert abs(t["trimmed_mean"]) < 0.3 and t["p_equivalent"] < 0.05


def test_degenerate_inputs():
    assert math.isnan(location_tests(np.array([1.0, np.nan]))["p_zero"])
    exact = location_tests(np.zeros(20))  # a lossless codec: every eps is 0
    assert exact["p_equivalent"] == 0.0 and exact["p_zero"] == 1.0
    assert math.isnan(band_fraction(np.array([np.nan]))["frac_abs_eps_lt_1"])


def test_band_fraction_counts_infinities_outside_with_wilson_interval():
    x = np.concatenate([np.full(60, 0.5), np.full(40, math.inf), [np.nan]])
    b = band_fraction(x)
    assert (b["n_band"], b["n_inside"], b["frac_abs_eps_lt_1"]) == (100, 60, 0.6)
    lo, hi = b["frac_wilson95"]
    # binomial sd of a fraction 0.6 over 100 objects: 0.049 -> the interval spans about +-0.1
    assert lo < 0.6 < hi and 0.15 < hi - lo < 0.25


def test_holm_over_families_counts_ar_round_compact_once():
    rng = np.random.default_rng(3)
    eps = rng.normal(0, 1.5, (150, len(PARAMETERS)))
    j = PARAMETERS.index
    eps[:, j("Area")] += 1.0
    s = codec_statistics(eps, PARAMETERS)
    assert s["Area"]["p_zero_holm"] < 0.001
    # one p per family: Holm multiplies the smallest p by at most the number of families (23 of 26
    # parameters: AR, Round and Compact are one, IntDen and RawIntDen another), never by 26
    n_families = len(PARAMETERS) - sum(len(members) - 1 for _, members in FAMILIES.values()
                                       if set(members) <= set(PARAMETERS))
    assert n_families == 23
    assert s["Area"]["p_zero_holm"] <= n_families * s["Area"]["p_zero"] + 1e-15
    assert s["Round"]["family"] == "AR" and s["Round"]["p_zero_holm"] == s["AR"]["p_zero_holm"]
    assert s["RawIntDen"]["family"] == "IntDen" and s["RawIntDen"]["p_zero_holm"] == s["IntDen"]["p_zero_holm"]
    assert all(0 <= v["p_zero_holm"] <= 1 for v in s.values())


def test_difference_stats():
    d = difference_stats(np.array([1.0, 3.0, np.nan]))
    assert d == {"n": 2, "mean": 2.0, "sd": pytest.approx(math.sqrt(2))}


def test_holm_equals_statsmodels_and_keeps_the_order():
    from statsmodels.stats.multitest import multipletests

    from noisestat.score._tests import holm

    # statsmodels collects garbage on every call (seconds in a large process): a few vectors only
    rng = np.random.default_rng(4)
    for n in (1, 2, 3, 7, 20, 50):
        p = rng.uniform(0, 1, n) ** 3
        p[rng.random(n) < 0.3] = p[0]  # ties
        np.testing.assert_allclose(holm(p), multipletests(p, method="holm")[1], rtol=0, atol=1e-15)
    assert holm([0.04, 0.01, 0.5]).tolist() == pytest.approx([0.08, 0.03, 0.5])
