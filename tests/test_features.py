import numpy as np
import pytest

from noisestat.errors import InputError
from noisestat.predict import feature_names, weka_features, weka_halo


def test_seventy_features_with_names():
    names = feature_names()
    assert len(names) == 70 and len(set(names)) == 70
    assert names[0] == "original"
    assert sum(n.startswith("dog_") for n in names) == 10
    assert sum(n.startswith("hessian_") for n in names) == 48


def test_constant_image_has_no_structure():
    f = weka_features(np.full((40, 40), 500, np.uint16))
    names = feature_names()
    for k, name in enumerate(names):
        expected = 500.0 if name == "original" or name.startswith("gaussian") else 0.0
        np.testing.assert_allclose(f[..., k], expected, atol=1e-3, err_msg=name)


def test_ramp_gradient_and_hessian():
    # f(x, y) = 3 x: the unnormalised 3x3 Sobel gives 8 * 3 = 24 inside, the Hessian vanishes.
    ramp = np.tile(np.arange(30, dtype=np.float32) * 3, (30, 1))
    f = weka_features(ramp)
    names = feature_names()
    inner = (slice(8, -8), slice(8, -8))
    np.testing.assert_allclose(f[..., names.index("sobel_0")][inner], 24.0, rtol=1e-5)
    np.testing.assert_allclose(f[..., names.index("hessian_module_0")][inner], 0.0, atol=1e-3)


def test_bright_spot_is_a_hessian_minimum():
    img = np.zeros((33, 33), np.float32)
    img[16, 16] = 1000
    f = weka_features(img)
    names = feature_names()
    # at a bright blob both eigenvalues are negative and the trace too (sigma 2 -> Gaussian 0.8)
    assert f[16, 16, names.index("hessian_eigenvalue1_2")] < 0
    assert f[16, 16, names.index("hessian_trace_2")] < 0
    assert f[16, 16, names.index("dog_1_2")] > 0


# --- halo and threads -------------------------------------------------------------------------

def test_halo_follows_the_filter_radii():
    # Gaussian radius int(4 * 0.4 * sigma + 0.5) of the largest sigma, plus two 3x3 Sobel passes
    assert weka_halo() == 26 + 2           # 0.4 * 16 = 6.4 -> int(26.1)
    assert weka_halo((1, 2)) == 3 + 2      # 0.8 -> int(3.7)
    assert weka_halo((0.5, 2.5, 7)) == 11 + 2  # 2.8 -> int(11.7)
    assert weka_halo((1,)) == 2 + 2        # 0.4 -> int(2.1)
    assert weka_halo(()) == 2              # the Hessian of the original image alone


def _region_features(img, core, halo, sigmas):
    region = tuple(slice(max(c.start - halo, 0), min(c.stop + halo, n)) for c, n in zip(core, img.shape))
    f = weka_features(img[region], sigmas=sigmas)
    inner = tuple(slice(c.start - r.start, c.stop - r.start) for c, r in zip(core, region))
    return f[inner]


@pytest.mark.parametrize("sigmas", [(1, 2, 4, 8, 16), (1, 3), (0.5, 2.5, 7), (5,)])
def test_halo_makes_region_features_bitwise_exact(sigmas):
    rng = np.random.default_rng(7)
    h = weka_halo(sigmas)
    for trial in range(6):
        shape = tuple(int(v) for v in rng.integers(2 * h + 8, 2 * h + 60, 2))
        img = rng.integers(0, 4096, shape).astype(np.uint16)
        whole = weka_features(img, sigmas=sigmas)
        for _ in range(4):
            # random cores, some touching the image border (there the region is clipped)
            start = [int(rng.integers(0, n - 2)) for n in shape]
            core = tuple(slice(s, int(rng.integers(s + 1, min(s + 40, n) + 1))) for s, n in zip(start, shape))
            np.testing.assert_array_equal(_region_features(img, core, h, sigmas), whole[core])


@pytest.mark.parametrize("sigmas", [(1, 2, 4, 8, 16), (1, 3), (0.5, 2.5, 7)])
def test_one_pixel_less_halo_is_not_enough(sigmas):
    rng = np.random.default_rng(8)
    h = weka_halo(sigmas)
    img = rng.integers(0, 4096, (2 * h + 40, 2 * h + 40)).astype(np.uint16)
    whole = weka_features(img, sigmas=sigmas)
    for core in [(slice(h + 5, h + 30), slice(h + 3, h + 20)), (slice(h, h + 1), slice(h + 7, h + 8))]:
        assert not np.array_equal(_region_features(img, core, h - 1, sigmas), whole[core])
        np.testing.assert_array_equal(_region_features(img, core, h, sigmas), whole[core])


@pytest.mark.parametrize("threads", [2, 3, 8])
def test_threads_give_bitwise_the_same_stack(threads):
    rng = np.random.default_rng(9)
    img = rng.integers(0, 4096, (150, 97)).astype(np.uint16)
    one = weka_features(img)
    many = weka_features(img, threads=threads)
    assert many.dtype == np.float32 and many.flags.c_contiguous
    np.testing.assert_array_equal(many, one)


def test_threads_must_be_a_positive_integer():
    img = np.zeros((8, 8), np.uint16)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(InputError, match="threads must be a positive integer"):
            weka_features(img, threads=bad)
