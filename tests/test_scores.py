import math

import numpy as np
import pytest
from scipy import stats

from noisestat.measure import PARAMETERS
from noisestat.score import (deviation, epsilon, floored, judge, null_reference, replica_spread, resolution_floor,
                             summarise_eps)

ANG = np.array([False, True])


def test_angles_wrap_at_180_degrees():
    d = deviation(np.array([5.0, 179.0]), np.array([3.0, 1.0]), ANG)
    assert d.tolist() == [2.0, -2.0]


def test_spread_of_angles_crossing_zero():
    raw = np.array([[10.0, 0.5]])
    reps = np.array([[[11.0, 179.5]], [[9.0, 1.5]], [[10.0, 0.5]]])
    sigma, n = replica_spread(raw, reps, ANG)
    assert n.tolist() == [3]
    assert sigma[0, 0] == pytest.approx(1.0)
    assert sigma[0, 1] == pytest.approx(1.0)  # -1, +1, 0 degrees, not 179 degrees apart


def test_spread_of_angles_far_from_the_raw_angle_is_circular():
    # a raw 0 degrees with replicas at 90 +- 2: deviations wrap to +-88, but the replicas' spread is 2
    rng = np.random.default_rng(3)
    spread = rng.normal(0.0, 2.0, 12)
    raw = np.array([[5.0, 0.0]])
    reps = np.stack([np.array([[5.0 + d, (90.0 + d) % 180.0]]) for d in spread])
    sigma, _ = replica_spread(raw, reps, ANG)
    assert sigma[0, 1] == pytest.approx(spread.std(ddof=1), rel=1e-6) == pytest.approx(sigma[0, 0], rel=1e-6)


def test_constant_replicas_give_exact_zero_and_unmatched_give_nan():
    raw = np.array([[0.3, 1.0], [2.0, 3.0]])
    reps = np.array([[[0.3, 1.0], [np.nan, np.nan]], [[0.3, 1.0], [2.0, 3.0]], [[0.3, 1.0], [np.nan, np.nan]]])
    sigma, n = replica_spread(raw, reps, np.array([False, False]))
    assert sigma[0].tolist() == [0.0, 0.0]
    assert np.isnan(sigma[1]).all() and n.tolist() == [3, 1]


def test_eps_conventions():
    sigma = np.array([[2.0, 0.0, 0.0, np.nan]])
    raw = np.array([[10.0, 5.0, 5.0, 1.0]])
    codec = np.array([[7.0, 5.0, 4.0, 1.0]])
    eps = epsilon(raw, codec, sigma, np.zeros(4, bool))
    assert eps[0, 0] == 1.5 and eps[0, 1] == 0.0 and eps[0, 2] == math.inf and math.isnan(eps[0, 3])
    s = summarise_eps(eps[0])
    assert s["n"] == 3 and s["n_infinite"] == 1
    assert s["mean_eps"] == 0.75 and s["frac_abs_eps_lt_1"] == pytest.approx(1 / 3)


def test_null_reference_matches_simulated_second_acquisitions():
    # eps of an independent draw against sigma from N replicas: sqrt 2 * t(N-1)
    rng = np.random.default_rng(0)
    n_rep, n_obj = 10, 200000
    raw = rng.normal(size=n_obj)
    other = rng.normal(size=n_obj)
    reps = rng.normal(size=(n_rep, n_obj))
    eps = (raw - other) / reps.std(axis=0, ddof=1)
    null = null_reference(n_rep)
    assert np.mean(np.abs(eps) < 1) == pytest.approx(null["frac_abs_eps_lt_1"], abs=0.005)
    assert np.quantile(np.abs(eps), 0.99) == pytest.approx(null["abs_eps_q99"], rel=0.03)
    assert eps.std() == pytest.approx(null["sd"], rel=0.02)
    assert null["frac_abs_eps_lt_1"] == pytest.approx(2 * stats.t.cdf(1 / math.sqrt(2), 9) - 1)


def _stat(n=100, tm=0.1, p_eq=0.001, p_beyond=0.99, se=0.15, n_inf=0):
    return {"n_eps": n, "n_finite": n - n_inf, "n_infinite": n_inf, "trimmed_mean": tm, "p_equivalent": p_eq,
            "p_beyond": p_beyond, "se_trimmed": se}


def _judge(stats_, eps=None, globals_=None, loss=None, primary=("Area",)):
    eps = np.zeros((100, len(PARAMETERS))) if eps is None else eps
    null = np.random.default_rng(0).standard_t(9, (6 * len(eps), len(PARAMETERS))) * math.sqrt(2)
    loss = loss or {"n_unmatched": 0, "n_raw": len(eps), "null_unmatched": 0, "null_n": 6 * len(eps)}
    return judge(stats_, eps, PARAMETERS, null, globals_ or {}, 10, loss=loss, primary=primary)


def test_verdict_outcomes_and_reasons():
    good = {"Area": _stat()}
    v = _judge(good, globals_={"N_tot": 0.5, "A_tot": -1.0})
    assert v.outcome == "tolerable" and v.tolerable and not v.reasons
    assert "TOST" in v.rule and "Holm" in v.rule and "chi-square" in v.rule and "1 sigma_raw" in v.admitted
    shifted = {"Area": _stat(tm=1.6, p_eq=0.9, p_beyond=0.001)}
    v = _judge(shifted, globals_={"N_tot": 0.0})
    assert v.outcome == "not tolerable"
    # p is Holm-adjusted over the criteria (shift, spread, outliers, losses, N_tot): 0.001 x 5
    assert v.reasons == ("Area: systematic shift +1.60 sigma_raw, shown beyond the margin +-1 (p = 0.005)",)
    # neither shown within nor beyond: inconclusive, with the objects that would decide it
    v = _judge({"Area": _stat(tm=0.8, p_eq=0.2, p_beyond=0.8)}, globals_={"N_tot": 0.0})
    assert v.outcome == "inconclusive" and not v.tolerable
    assert v.reasons[0].startswith("Area: systematic shift +0.80 sigma_raw, not shown either way the margin +-1")
    assert "objects would decide it" in v.reasons[0] and v.needed["objects"] > 50
    # the spread: every object far outside the band is shown beyond; inside it, within
    assert _judge(good, eps=np.full((50, len(PARAMETERS)), 5.0)).outcome == "not tolerable"
    # too few objects: undecided whatever the numbers
    assert _judge({"Area": _stat(n=2)}, eps=np.zeros((2, len(PARAMETERS)))).outcome == "inconclusive"
    # a global far beyond its margin, or infinite, is shown beyond
    assert _judge(good, globals_={"A_tot": 55.0}).reasons[0].startswith("A_tot: eps +55.00, shown beyond")
    assert _judge(good, globals_={"N_tot": math.inf}).outcome == "not tolerable"
    # Round and Compact are judged through AR: a shifted Round alone does not count
    family = {"AR": _stat(), "Round": _stat(tm=9.0, p_eq=1.0, p_beyond=0.0), "Compact": _stat()}
    assert _judge(family, primary=("AR", "Round", "Compact")).outcome == "tolerable"
    # losses: 30 % against 5 % between second acquisitions is shown beyond 2 x + 5 %; 0 of 50 is within
    loss = {"n_unmatched": 30, "n_raw": 100, "null_unmatched": 30, "null_n": 600}
    v = _judge(good, loss=loss)
    assert v.outcome == "not tolerable" and v.reasons[0].startswith(
        "objects: 30.0% of the 100 raw objects lost, split or merged against 5.0% between second acquisitions")
    assert _judge(good, loss={**loss, "n_unmatched": 0}).outcome == "tolerable"


def test_resolution_floor_and_its_effect_on_eps():
    # Area-like integer parameter: object 0 never changed, object 1 changed by 1 and 2, object 2 by 3
    raw = np.array([[10.0], [20.0], [30.0]])
    reps = np.array([[[10.0], [21.0], [33.0]], [[10.0], [22.0], [30.0]], [[10.0], [20.0], [30.0]]])
    floor = resolution_floor(raw, reps, np.array([False]))
    # smallest non-zero change per object: 1 and 3, median 2 -> 2 / sqrt(12)
    assert floor[0] == pytest.approx(2 / math.sqrt(12))
    sigma, _ = replica_spread(raw, reps, np.array([False]))
    used = floored(sigma, floor[None])
    assert sigma[0, 0] == 0.0 and used[0, 0] == floor[0]
    assert used[1, 0] == sigma[1, 0]  # a measured spread above the floor is kept
    eps = epsilon(raw, raw + 2.0, used, np.array([False]))
    assert np.isfinite(eps).all() and eps[0, 0] == pytest.approx(-math.sqrt(12))
    # nothing ever changed: no floor, an infinite eps remains possible
    assert resolution_floor(raw, np.stack([raw] * 3), np.array([False]))[0] == 0.0
    assert np.isnan(floored(np.array([np.nan]), 0.3)[0])


def test_rounding_differences_are_not_spread():
    # the same width computed along two hull edges can differ in the last bit
    w = 5.0
    raw = np.array([[w]])
    reps = np.array([[[w]], [[np.nextafter(w, 6)]], [[w]]])
    sigma, _ = replica_spread(raw, reps, np.array([False]))
    assert sigma[0, 0] == 0.0
    assert epsilon(raw, np.array([[np.nextafter(w, 4)]]), sigma, np.array([False]))[0, 0] == 0.0
    assert epsilon(raw, np.array([[4.0]]), sigma, np.array([False]))[0, 0] == math.inf
