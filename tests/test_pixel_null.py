"""The per-pixel null of a value predictor against true second acquisitions, in the dark and the
bright: noisestat.score._pixels' sigma_raw pooled over each pixel's neighbours.

The predictor is the image itself (no halo), on a camera whose read noise (1.5 e-) is comparable to
the shot noise of a dim background (3 e-): there a pixel's own spread over the replicas follows
what it happened to read, which the neighbours' spread does not. Checked against independent
acquisitions of the simulated scene, never against the pipeline's own output.
"""

import numpy as np
import pytest

from noisestat import assess_values
from noisestat.camera import CameraProfile
from noisestat.codecs._base import Codec
from noisestat.score import pixel_null, pixel_sigma
from noisestat.simulate import acquire, simulate_scene

# sCMOS-like: K 2 DN/e-, read noise 3 DN = 1.5 e-
SCMOS = CameraProfile(gain_dn_per_e=2.0, offset_dn=100.0, read_noise_dn=3.0, bit_depth=16)
SCENES = {"dim": {"background_e": 3.0, "object_e": 30.0},          # fluorescence-like
          "bright": {"background_e": 2000.0, "object_e": -600.0}}  # phase-contrast-like


class Given(Codec):
    """Scores a given image (a second acquisition) as if it were a decoded one."""

    name, summary = "given", "an image given directly"

    def __init__(self, spec, image):
        super().__init__(spec)
        self.image = image

    def apply(self, image, profile):
        return self.result(image, self.image, None)


class Identity:
    def halo(self, ndim):
        return (0,) * ndim

    def predict_values(self, region):
        return region

    def describe(self):
        return {"predictor": "identity"}


@pytest.mark.parametrize("scene", list(SCENES))
def test_a_second_acquisition_is_beyond_the_nulls_q99_one_percent_of_the_time(scene):
    beyond, means = [], []
    for seed in (0, 1):
        electrons, _ = simulate_scene((192, 192), n_objects=60, radius=(3.0, 7.0), rng=100 + seed, **SCENES[scene])
        first = acquire(electrons, SCMOS, [seed, 1])
        seconds = [Given(f"second {k}", acquire(electrons, SCMOS, [seed, 2 + k])) for k in range(3)]
        a = assess_values(first, SCMOS, seconds, Identity(), replicas=10, seed=seed)
        beyond += [c.summary["beyond_null_q99"] for c in a.codecs]
        means += [c.summary["mean_eps"] for c in a.codecs]
    # 6 x 36864 pixels. Each pixel's own spread gave 2.9 % beyond and a mean eps of -0.45 in the dark
    # (0.7 % and -0.01 in the bright); its neighbours' give 0.6-0.7 % and 0.00 in the dark, 0.9-1.0 %
    # in the bright. Below 1 % in the dark: the null's pairs lie around the raw image, whose
    # variance varies from pixel to pixel more than a second acquisition's (_pixels says more).
    assert 0.004 < np.mean(beyond) < 0.016, beyond
    assert abs(np.mean(means)) < 0.05, means


def test_sigma_leaves_the_pixel_itself_out():
    rng = np.random.default_rng(3)
    stack = [rng.normal(0.0, 1.0, (5, 6)) for _ in range(4)]
    stack[0][2, 3] += 100.0  # one pixel with a huge spread over the maps
    own = pixel_sigma(stack, radius=0)
    assert np.allclose(own, np.std(stack, axis=0, ddof=1))
    pooled = pixel_sigma(stack)
    # the pixel itself: its 8 neighbours' mean variance, not its own
    assert pooled[2, 3] == pytest.approx(np.sqrt(np.mean(own[1:4, 2:5].reshape(-1)[np.arange(9) != 4] ** 2)))
    assert pooled[2, 3] < 5 < own[2, 3]
    # a neighbour: its 8 neighbours, the big one among them; a corner: its 3 neighbours inside the array
    assert pooled[1, 2] ** 2 == pytest.approx((np.sum(own[0:3, 1:4] ** 2) - own[1, 2] ** 2) / 8)
    assert pooled[0, 0] ** 2 == pytest.approx((own[0, 1] ** 2 + own[1, 0] ** 2 + own[1, 1] ** 2) / 3)


def test_sigma_of_a_volume_and_of_no_spread():
    rng = np.random.default_rng(4)
    stack = [rng.normal(0.0, 1.0, (3, 4, 5)) for _ in range(3)]
    own = pixel_sigma(stack, radius=0)
    pooled = pixel_sigma(stack)
    assert pooled[1, 1, 1] ** 2 == pytest.approx((np.sum(own[0:3, 0:3, 0:3] ** 2) - own[1, 1, 1] ** 2) / 26)
    flat = [np.full((4, 4), 7.0)] * 3
    assert not pixel_sigma(flat).any()  # no spread anywhere: exactly 0, not rounding noise
    lone = [np.zeros((5, 5)), np.zeros((5, 5))]
    lone[0][2, 2] = 0.1  # only the pixel itself moved: its neighbours saw nothing, so 0 exactly
    assert pixel_sigma(lone)[2, 2] == 0.0 and pixel_sigma(lone, radius=0)[2, 2] > 0
    one = [np.array([[1.0]]), np.array([[3.0]])]
    assert pixel_sigma(one)[0, 0] == pytest.approx(np.sqrt(2.0))  # no neighbour: its own spread


def test_a_wider_neighbourhood():
    rng = np.random.default_rng(6)
    stack = [rng.normal(0.0, 1.0, (9, 9)) for _ in range(3)]
    var = pixel_sigma(stack, radius=0) ** 2
    assert pixel_sigma(stack, radius=2)[4, 4] ** 2 == pytest.approx((var[2:7, 2:7].sum() - var[4, 4]) / 24)
    assert pixel_sigma(stack, radius=2)[0, 1] ** 2 == pytest.approx((var[0:3, 0:4].sum() - var[0, 1]) / 11)
    for bad in (-1, 1.5):
        with pytest.raises(ValueError, match="radius"):
            pixel_sigma(stack, radius=bad)


def test_the_null_pairs_use_the_same_pooled_sigma():
    rng = np.random.default_rng(5)
    stack = [rng.normal(0.0, 1.0, (8, 8)) for _ in range(4)]
    pair = [rng.normal(0.0, 1.0, (8, 8)) for _ in range(2)]
    null = pixel_null(stack, pair, 0.0)
    sigma = pixel_sigma(stack)
    assert np.allclose(null[:64], np.abs(pair[0] - pair[1]).reshape(-1) / sigma.reshape(-1), rtol=1e-6)
    rest = pixel_sigma(stack[2:])
    assert np.allclose(null[64:128], np.abs(stack[0] - stack[1]).reshape(-1) / rest.reshape(-1), rtol=1e-6)
