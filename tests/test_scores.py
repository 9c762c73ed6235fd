import math

import numpy as np
import pytest
from scipy import stats

from noisestat.score import (deviation, epsilon, floored, null_reference, replica_spread, resolution_floor,
                              summarise_eps, verdict)

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


def _stat(n=50, tm=0.1, p_eq=0.001, frac=0.5, p_band=0.001, null=0.5, n_inf=0):
    return {"n_eps": n, "n_finite": n - n_inf, "n_infinite": n_inf, "trimmed_mean": tm, "p_equivalent": p_eq,
            "frac_abs_eps_lt_1": frac, "n_band": n, "n_inside": round(frac * n), "null_fraction": null,
            "p_band": p_band}


def test_verdict():
    good = {"Area": _stat()}
    ok, reasons, rule = verdict(good, {"N_tot": 0.5, "A_tot": -1.0}, 10)
    assert ok and not reasons and "4.60" in rule and "TOST" in rule and "Fisher" in rule
    shifted = {"Area": _stat(tm=1.3, p_eq=0.9)}
    assert verdict(shifted, {"N_tot": 0.0}, 10)[1] == [
        "Area: trimmed mean eps +1.30 not shown within +-1 (TOST p = 0.9)"]
    wide = {"Area": _stat(frac=0.2, p_band=0.7)}
    assert verdict(wide, {}, 10)[1] == [
        "Area: 10/50 objects with |eps| < 1, not shown above 0.5 x 50% of a second acquisition (p = 0.7)"]
    # the burden is on the codec: a fraction not shown above the margin fails even when close to the null one
    assert verdict({"Area": _stat(frac=0.45, p_band=0.2)}, {}, 10)[0] is False
    # without a simulated second acquisition the theoretical fraction (0.503) is the reference
    assert verdict({"Area": _stat(frac=0.9, p_band=math.nan, null=math.nan)}, {}, 10)[0] is True
    assert verdict({"Area": _stat(frac=0.2, p_band=math.nan, null=math.nan)}, {}, 10)[0] is False
    assert verdict({"Area": _stat(n=2)}, {}, 10)[1] == ["Area: only 2 matched object(s) with an eps"]
    assert verdict(good, {"A_tot": 55.0}, 10)[1] == ["A_tot: eps +55.00"]
    assert not verdict(good, {"A_tot": math.nan}, 10)[0]
    assert not verdict(good, {"N_tot": math.inf}, 10)[0]
    # Round and Compact are judged through AR: a failing Round alone does not count twice
    family = {"AR": _stat(), "Round": _stat(frac=0.0, p_band=1.0), "Compact": _stat(frac=0.0, p_band=1.0)}
    assert verdict(family, {}, 10)[0] is True
    loss = {"excess": True, "n_unmatched": 30, "n_raw": 100, "rate": 0.3, "null_rate": 0.05, "p_excess": 1e-9}
    assert verdict(good, {}, 10, loss=loss)[1] == [
        "objects: 30/100 raw objects lost, split or merged (30.0%), second acquisitions 5.0% (Fisher p = 1e-09)"]
    assert verdict(good, {}, 10, loss={**loss, "excess": False})[0] is True


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
