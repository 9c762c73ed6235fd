"""The verdict's handling of infinite eps, sigma_raw = 0, lost objects and the band fraction, and the
size of each criterion on eps drawn from the distribution a second raw acquisition has in theory."""

import math

import numpy as np
import pytest
from scipy import optimize, stats
from skimage.measure import label

from noisestat.camera import CameraProfile
from noisestat.measure import classify_objects, match_iou
from noisestat.measure import PARAMETERS
from noisestat.pipeline import build_reference, score_codec
from noisestat.score import UNSTABLE_FRACTION
from noisestat.score import GLOBAL_FLOOR, epsilon, floored, null_reference, verdict
from noisestat.score import ALPHA, KEEP, MARGIN, band_noninferiority, codec_statistics, location_tests, loss_test

N_REPLICAS = 10
NULL = null_reference(N_REPLICAS)


def _second_acquisition_eps(rng, size):
    """eps of a second raw acquisition in theory: sqrt(2) t(N - 1)."""
    return math.sqrt(2) * rng.standard_t(N_REPLICAS - 1, size)


def _null_counts(rng, n0):
    eps = _second_acquisition_eps(rng, (n0, len(PARAMETERS)))
    inside = (np.abs(eps) < 1).sum(axis=0)
    return {p: {"inside": int(inside[j]), "n": n0, "fraction": inside[j] / n0} for j, p in enumerate(PARAMETERS)}


def test_infinite_eps_cause_rejection():
    rng = np.random.default_rng(0)
    eps = _second_acquisition_eps(rng, (200, len(PARAMETERS)))
    null = _null_counts(rng, 1200)
    assert verdict(codec_statistics(eps, PARAMETERS, null), {}, N_REPLICAS)[0]
    # 45 % of the objects at +inf in one parameter: the old rule dropped them and passed
    eps[:90, PARAMETERS.index("MinFeret")] = math.inf
    s = codec_statistics(eps, PARAMETERS, null)
    assert s["MinFeret"]["n_infinite"] == 90 and s["MinFeret"]["trimmed_mean"] == math.inf
    ok, reasons, _ = verdict(s, {}, N_REPLICAS)
    assert not ok
    assert any(r.startswith("MinFeret: trimmed mean eps +inf") for r in reasons)
    # infinite eps are outside the band: with 70 % of them the band test fails too
    eps[:140, PARAMETERS.index("MinFeret")] = -math.inf
    reasons = verdict(codec_statistics(eps, PARAMETERS, null), {}, N_REPLICAS)[1]
    assert any(r.startswith("MinFeret:") and "|eps| < 1" in r for r in reasons)
    # a few infinities, both signs, are trimmed like any outlier: the shift test still passes
    few = _second_acquisition_eps(rng, 200)
    few[:6], few[6:12] = math.inf, -math.inf
    assert location_tests(few)["p_equivalent"] < ALPHA


def test_global_with_zero_spread_tolerates_a_one_step_change():
    # every replica found 40 objects: sigma_raw(N_tot) = 0, floored at 1 / sqrt(12)
    replicas = np.full(N_REPLICAS, 40.0)
    sigma = floored(np.array([replicas.std(ddof=1)]), GLOBAL_FLOOR)
    assert sigma[0] == GLOBAL_FLOOR
    one = epsilon(np.array([40.0]), np.array([41.0]), sigma, np.zeros(1, bool))[0]
    two = epsilon(np.array([40.0]), np.array([42.0]), sigma, np.zeros(1, bool))[0]
    assert one == pytest.approx(-math.sqrt(12))
    assert verdict({}, {"N_tot": one}, N_REPLICAS)[0]  # one object more: within the 99 % quantile 4.60
    assert not verdict({}, {"N_tot": two}, N_REPLICAS)[0]  # two more: 6.9, rejected
    # replicas that themselves change N_tot by one now and then give a larger sigma: still tolerated
    replicas[:3] = 41.0
    sigma = floored(np.array([replicas.std(ddof=1)]), GLOBAL_FLOOR)
    assert abs(epsilon(np.array([40.0]), np.array([41.0]), sigma, np.zeros(1, bool))[0]) < math.sqrt(12)


def test_noninferiority_direction_and_burden():
    # shown above KEEP x the second acquisition's fraction: small p
    assert band_noninferiority(50, 100, 300, 600) < 0.001
    assert band_noninferiority(80, 100, 300, 600) < band_noninferiority(50, 100, 300, 600)
    # at the margin, or below it: not shown
    assert band_noninferiority(25, 100, 300, 600) > 0.3
    assert band_noninferiority(10, 100, 300, 600) > 0.99
    # the burden is on the codec: with few objects a fraction near the second acquisition's is not enough
    assert band_noninferiority(2, 5, 300, 600) > ALPHA
    # a known reference fraction (n0 = inf) is tighter than an estimated one
    assert band_noninferiority(40, 100, 0.5, math.inf) < band_noninferiority(40, 100, 50, 100)


def test_loss_beyond_the_replica_rate_is_rejected_within_it_is_not():
    assert loss_test(15, 100, 24, 600)["excess"]  # 15 % lost vs 4 %
    assert not loss_test(5, 100, 24, 600)["excess"]
    assert not loss_test(0, 100, 0, 600)["excess"]
    # no loss at all in the replica pairs: one loss is not yet an excess, three are
    assert not loss_test(1, 100, 0, 600)["excess"] and loss_test(3, 100, 0, 600)["excess"]


def test_classify_objects_lost_split_merged():
    ref = np.zeros((10, 20), int)
    ref[1:4, 1:4] = 1    # stays
    ref[1:4, 6:9] = 2    # lost
    ref[1:9, 11:14] = 3  # split in two
    ref[6:9, 1:4] = 4    # merged with 5
    ref[6:9, 5:8] = 5
    other = np.zeros_like(ref)
    other[1:4, 1:4] = 1
    other[1:3, 11:14] = 2
    other[6:9, 11:14] = 3
    other[6:9, 1:8] = 4
    m = match_iou(ref, other)
    assert classify_objects(ref, other, m.partner).tolist() == ["matched", "lost", "split", "merged", "merged"]


class _Threshold:
    """A segmenter that thresholds the image (8-connected), standing in for the forest: fast and with a
    known failure mode (objects near the threshold fall apart under noise)."""

    def __init__(self, threshold):
        self.threshold = threshold

    def segment(self, image):
        return label(image > self.threshold, connectivity=2).astype(np.int32)

    def describe(self):
        return {"threshold_dn": self.threshold}


CAMERA = CameraProfile(gain_dn_per_e=1.0, offset_dn=100.0, read_noise_dn=1.0, bit_depth=16)


def _disc_scene(contrast_e, *, n=6, shape=(96, 96), radius=5, background_e=100.0):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    electrons = np.full(shape, background_e)
    step = shape[0] // n
    for i in range(n):
        for j in range(n):
            cy, cx = step * i + step // 2, step * j + step // 2
            electrons[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2] += contrast_e
    return electrons


class _Coded:
    def __init__(self, decoded, spec="test"):
        self.decoded, self.spec, self.compression_ratio, self.n_bytes, self.info = decoded, spec, None, None, {}


def test_lost_objects_reject_a_codec_and_unstable_segmentation_warns():
    rng = np.random.default_rng(5)
    electrons = _disc_scene(400.0)
    raw = (CAMERA.offset_dn + rng.poisson(electrons) + rng.normal(0, 1, electrons.shape)).round().astype(np.uint16)
    model = _Threshold(CAMERA.offset_dn + 300.0)
    second = (CAMERA.offset_dn + rng.poisson(electrons)).astype(np.uint16)
    erased = raw.copy()
    erased[:40] = CAMERA.offset_dn + 100  # the objects of the top rows erased: lost
    ref, (obj_second, obj_erased) = build_reference(raw, CAMERA, model=model, replicas=6, seed=1,
                                                    extra_images=[second, erased])
    assert not [w for w in ref.warnings if w.startswith("unstable")]
    assert ref.null_loss["n"] > 0 and ref.null_loss["rate"] < 0.05
    s_erased = score_codec(ref, _Coded(erased), obj_erased)
    assert s_erased.loss["lost"] == 12 and s_erased.loss["excess"] and not s_erased.tolerable
    assert any(r.startswith("objects: 12/36") for r in s_erased.reasons)
    assert (obj_erased.status == "lost").sum() == 12
    s_second = score_codec(ref, _Coded(second), obj_second)
    assert not s_second.loss["excess"]

    # objects just above the threshold break apart in every replica: the raw segmentation is unstable
    faint = _disc_scene(12.0, background_e=100.0)
    raw = (CAMERA.offset_dn + rng.poisson(faint)).astype(np.uint16)
    ref, _ = build_reference(raw, CAMERA, model=_Threshold(CAMERA.offset_dn + 106.0), replicas=4, seed=2)
    unstable = [w for w in ref.warnings if w.startswith("unstable")]
    assert len(unstable) == 1 and f"threshold {UNSTABLE_FRACTION:.0%}" in unstable[0]


# ---- size of each criterion on eps from the theoretical second-acquisition distribution -----------------

def test_size_of_the_shift_test_at_its_margin():
    # the trimmed mean exactly at the margin: TOST must declare equivalence at most ~ALPHA of the time
    rng = np.random.default_rng(11)
    passed = [location_tests(MARGIN + _second_acquisition_eps(rng, 100))["p_equivalent"] < ALPHA
              for _ in range(400)]
    assert 0.01 <= np.mean(passed) <= 0.09  # binomial sd at 400 draws: 0.011


def test_size_and_power_of_the_band_test():
    rng = np.random.default_rng(12)
    p0 = NULL["frac_abs_eps_lt_1"]
    # a codec whose eps is a scaled second acquisition, with a fraction inside the band of exactly KEEP x p0
    scale = optimize.brentq(lambda s: 2 * stats.t.cdf(1 / (s * math.sqrt(2)), N_REPLICAS - 1) - 1 - KEEP * p0,
                            1.0, 20.0)
    n, n0, draws = 100, 600, 2000
    at_margin, equivalent = [], []
    for _ in range(draws):
        null = np.abs(_second_acquisition_eps(rng, n0)) < 1
        bad = np.abs(scale * _second_acquisition_eps(rng, n)) < 1
        good = np.abs(_second_acquisition_eps(rng, n)) < 1
        at_margin.append(band_noninferiority(bad.sum(), n, null.sum(), n0) < ALPHA)
        equivalent.append(band_noninferiority(good.sum(), n, null.sum(), n0) < ALPHA)
    assert 0.025 <= np.mean(at_margin) <= 0.075  # size at the margin ~ALPHA (sd 0.005)
    assert np.mean(equivalent) > 0.995  # a second acquisition passes one family almost always at 100 objects


def test_size_of_the_loss_test_with_unequal_loss_chances():
    # each object has its own chance of being lost (most never, a few often); the codec is one more draw
    rng = np.random.default_rng(13)
    n, pairs, draws = 150, 6, 1000
    chance = np.where(rng.random(n) < 0.1, rng.uniform(0.1, 0.6, n), 0.002)
    rejected = []
    for _ in range(draws):
        null = (rng.random((pairs, n)) < chance).sum()
        codec = (rng.random(n) < chance).sum()
        rejected.append(loss_test(codec, n, null, pairs * n)["excess"])
    assert 0.005 <= np.mean(rejected) <= ALPHA + 0.01


def test_size_of_the_global_criterion():
    rng = np.random.default_rng(14)
    eps = _second_acquisition_eps(rng, 20000)
    rejected = [not verdict({}, {"N_tot": e}, N_REPLICAS)[0] for e in eps[:4000]]
    assert np.mean(rejected) == pytest.approx(0.01, abs=0.005)
