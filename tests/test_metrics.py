"""noisestat.bench: hand-computed values, PSNR peaks, errors in sigma units, MS-SSIM properties."""

import math

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.metrics import structural_similarity

from noisestat.bench._metrics import (MS_SSIM_WEIGHTS, compression_metrics, default_data_range, ms_ssim, ms_ssim_scales,
                               ssim)


def ramp(shape=(32, 32), lo=100, step=3):
    rows, cols = shape
    return (lo + step * (np.arange(rows)[:, None] + np.arange(cols)[None, :])).astype(np.uint16)


def checker(shape, a, b):
    yy, xx = np.indices(shape)
    return np.where((yy + xx) % 2 == 0, a, b).astype(np.float64)


@pytest.fixture(scope="module")
def scene():
    """A 192x192 simulated 12-bit image: big enough for all five MS-SSIM scales."""
    from noisestat.camera import CameraProfile
    from noisestat.simulate import acquire, simulate_scene

    electrons, _ = simulate_scene((192, 192), rng=5)
    return acquire(electrons, CameraProfile(0.5, 100.0, 2.0, 12), 6).astype(np.float64)


def test_constant_offset_gives_bias_and_mse():
    raw = ramp()
    m = compression_metrics(raw, raw + 3, n_bytes=raw.nbytes // 4, data_range=4095)
    assert m["bias"] == 3.0 and m["mse"] == 9.0 and m["rmse"] == 3.0 and m["max_abs_error"] == 3.0
    assert m["compression_ratio"] == 4.0 and m["space_saving"] == 0.75
    assert m["psnr"] == pytest.approx(10 * math.log10(4095**2 / 9))
    assert m["pearson"] == pytest.approx(1.0)
    assert m["data_range_dn"] == 4095.0 and m["data_range_source"] == "given"


def test_known_psnr_from_plus_minus_one_errors():
    raw = ramp((16, 16), lo=10, step=2)
    decoded = raw + checker(raw.shape, 1, -1)  # |error| 1 everywhere, mean 0
    m = compression_metrics(raw, decoded, n_bytes=None, data_range=255)
    assert m["mse"] == 1.0 and m["bias"] == 0.0
    assert m["psnr"] == pytest.approx(20 * math.log10(255), abs=1e-12)  # 48.1308 dB
    assert m["psnr"] == pytest.approx(48.1308, abs=1e-4)
    assert m["compression_ratio"] is None and m["space_saving"] is None and m["n_bytes"] is None


def test_exact_copy_is_zero_error_infinite_psnr():
    raw = ramp()
    m = compression_metrics(raw, raw.copy(), n_bytes=100)
    assert m["mse"] == 0.0 and m["rmse"] == 0.0 and m["max_abs_error"] == 0.0
    assert m["psnr"] == math.inf
    assert m["ssim"] == 1.0 and m["ms_ssim"] == 1.0 and m["pearson"] == pytest.approx(1.0)


def test_errors_in_sigma_units():
    raw = ramp((16, 16))
    err = checker(raw.shape, 2.0, -2.0)
    sigma = np.full(raw.shape, 2.0)
    sigma[:, 8:] = 4.0
    m = compression_metrics(raw, raw + err, n_bytes=None, sigma=sigma)
    # half the pixels at |z| = 1, half at 0.5
    assert m["error_sigma_rms"] == pytest.approx(math.sqrt((1 + 0.25) / 2))
    assert m["error_sigma_max"] == 1.0
    assert m["frac_error_within_1_sigma"] == 1.0
    # var(err) = 4, mean(sigma^2) = (4 + 16) / 2 = 10
    assert m["noise_inflation"] == pytest.approx(math.sqrt(1 + 4 / 10))
    # a scalar sigma broadcasts; errors beyond it are counted out
    m = compression_metrics(raw, raw + err, n_bytes=None, sigma=1.5)
    assert m["frac_error_within_1_sigma"] == 0.0 and m["error_sigma_rms"] == pytest.approx(2 / 1.5)


def test_bias_is_not_noise_inflation():
    raw = ramp((16, 16))
    m = compression_metrics(raw, raw + 5, n_bytes=None, sigma=2.0)
    assert m["noise_inflation"] == 1.0 and m["error_sigma_rms"] == 2.5


def test_sigma_metrics_absent_without_sigma_and_bad_sigma_refused():
    raw = ramp((16, 16))
    assert "error_sigma_rms" not in compression_metrics(raw, raw, n_bytes=1)
    with pytest.raises(ValueError, match="sigma"):
        compression_metrics(raw, raw, n_bytes=1, sigma=np.zeros(raw.shape))
    with pytest.raises(ValueError, match="shape"):
        compression_metrics(raw, raw[:8], n_bytes=1)


def test_default_peak_is_smallest_standard_bit_depth_or_the_camera():
    assert default_data_range(np.array([[0, 255]]))[0] == 255.0
    assert default_data_range(np.array([[0, 256]]))[0] == 1023.0
    assert default_data_range(np.array([[0, 4095]]))[0] == 4095.0
    assert default_data_range(np.array([[0, 60000]]))[0] == 65535.0
    assert default_data_range(np.array([[0, 70000]], dtype=np.uint32))[0] == 2**17 - 1
    assert default_data_range(np.array([[0, 200]]), bit_depth=12) == (4095.0, "camera bit_depth 12")
    raw = ramp((16, 16), lo=100, step=50)  # max 1600: 12 bits
    m = compression_metrics(raw, raw + 1, n_bytes=None)
    assert m["data_range_dn"] == 4095.0 and "12" in m["data_range_source"]
    assert compression_metrics(raw, raw + 1, n_bytes=None, bit_depth=16)["data_range_dn"] == 65535.0


def test_constant_decoded_gives_nan_pearson_without_warning():
    raw = ramp((16, 16))
    m = compression_metrics(raw, np.full(raw.shape, 7), n_bytes=None)
    assert math.isnan(m["pearson"])


def test_ssim_uses_wang_2004_settings(scene):
    noisy = scene + np.random.default_rng(1).normal(0, 20, scene.shape)
    ref = structural_similarity(scene, noisy, data_range=4095.0, gaussian_weights=True, sigma=1.5,
                                use_sample_covariance=False)
    assert ssim(scene, noisy, data_range=4095.0) == ref


# --- MS-SSIM ---------------------------------------------------------------------------------------

def test_ms_ssim_identical_images_is_one(scene):
    value, scales = ms_ssim(scene, scene.copy(), data_range=4095.0, return_scales=True)
    assert value == 1.0 and scales == 5


def test_ms_ssim_weights_are_the_published_ones():
    assert MS_SSIM_WEIGHTS == (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def test_ms_ssim_decreases_with_noise(scene):
    rng = np.random.default_rng(2)
    base = rng.standard_normal(scene.shape)
    values = [ms_ssim(scene, scene + sd * base, data_range=4095.0) for sd in (0, 2, 8, 32, 128)]
    assert values[0] == 1.0
    assert all(a > b for a, b in zip(values, values[1:])), values
    assert 0 < values[-1] < 1


@pytest.mark.parametrize("kind", ["noise", "blur", "quantise"])
def test_ms_ssim_orders_distortions_as_ssim_does(scene, kind):
    rng = np.random.default_rng(3)
    base = rng.standard_normal(scene.shape)
    if kind == "noise":
        distorted = [scene + sd * base for sd in (3, 10, 30, 90)]
    elif kind == "blur":
        distorted = [ndi.gaussian_filter(scene, s) for s in (0.5, 1.0, 2.0, 4.0)]
    else:
        distorted = [np.round(scene / q) * q for q in (4, 16, 64, 256)]
    ms = [ms_ssim(scene, d, data_range=4095.0) for d in distorted]
    ss = [ssim(scene, d, data_range=4095.0) for d in distorted]
    assert np.argsort(ms).tolist() == np.argsort(ss).tolist() == [3, 2, 1, 0]


def test_ms_ssim_one_scale_is_ssim(scene):
    noisy = scene + np.random.default_rng(4).normal(0, 30, scene.shape)
    assert ms_ssim(scene, noisy, data_range=4095.0, weights=(1.0,)) == pytest.approx(
        ssim(scene, noisy, data_range=4095.0), abs=1e-12)


def test_ms_ssim_small_images_use_fewer_scales(scene):
    assert ms_ssim_scales((176, 500)) == 5 and ms_ssim_scales((175, 500)) == 4
    assert ms_ssim_scales((100, 100)) == 4 and ms_ssim_scales((40, 40)) == 2 and ms_ssim_scales((8, 8)) == 1
    noisy = scene + np.random.default_rng(5).normal(0, 30, scene.shape)
    for side, expect in ((100, 4), (40, 2), (12, 1), (9, 1)):
        a, b = scene[:side, :side], noisy[:side, :side]
        value, scales = ms_ssim(a, b, data_range=4095.0, return_scales=True)
        assert scales == expect and 0 < value < 1
        assert ms_ssim(a, a, data_range=4095.0) == 1.0
        if expect == 1:
            assert value == pytest.approx(ssim(a, b, data_range=4095.0), abs=1e-12)
    m = compression_metrics(scene[:40, :40].astype(np.uint16), noisy[:40, :40], n_bytes=None)
    assert m["ms_ssim_scales"] == 2
