"""Single-image Poisson-Gaussian noise fit (Foi et al. 2008 style) against simulated truth."""

import json

import numpy as np
import pytest
import tifffile
from scipy import ndimage as ndi

from noisestat.calibrate._single_image import NoiseFit, _estimate, estimate_noise, profile_from_fit
from noisestat.camera import CameraProfile
from noisestat.errors import InputError

from conftest import shared_data

SHAPE = (512, 512)


def smooth_scene(seed, *, low_dn=100.0, high_dn=3500.0, shape=SHAPE):
    """Noise-free scene (DN): two gradients, Gaussian blobs, flat patches."""
    rng = np.random.default_rng(seed)
    r, c = np.mgrid[0:shape[0], 0:shape[1]].astype(float)
    span = high_dn - low_dn
    x = low_dn + 0.5 * span * c / shape[1] + 0.1 * span * r / shape[0]
    for _ in range(25):
        cy, cx = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        radius, amp = rng.uniform(8, 40), rng.uniform(-0.2, 0.5) * span
        x += amp * np.exp(-((r - cy) ** 2 + (c - cx) ** 2) / (2 * radius**2))
    for _ in range(6):
        y0, x0 = rng.integers(0, shape[0] - 80), rng.integers(0, shape[1] - 80)
        x[y0:y0 + 70, x0:x0 + 70] = rng.uniform(low_dn, high_dn)
    return np.maximum(x, 0.0)


def texture(seed, amplitude_dn, sigma_px, *, shape=SHAPE):
    """Band-limited random texture (sd ``amplitude_dn``) over about half the field."""
    rng = np.random.default_rng(seed)
    field = ndi.gaussian_filter(rng.standard_normal(shape), sigma_px)
    mask = ndi.gaussian_filter(rng.standard_normal(shape), 20) > 0
    return amplitude_dn * field / field.std() * mask


def acquire(x_dn, gain, read_dn, seed, bits=12):
    """y = K * Poisson(x / K) + N(0, read), rounded and clipped to the bit depth."""
    rng = np.random.default_rng(seed)
    y = gain * rng.poisson(np.maximum(x_dn, 0) / gain) + rng.normal(0.0, read_dn, x_dn.shape)
    return np.clip(np.rint(y), 0, 2**bits - 1).astype(np.uint16)


def mid_range_error(fit, image, gain, read_dn):
    """Relative error of the fitted variance at the median intensity (rounding adds 1/12 DN^2)."""
    y = float(np.median(image))
    true = gain * y + read_dn**2 + 1 / 12
    return (fit.a * y + fit.b) / true - 1


@pytest.fixture(scope="module")
def scene():
    return smooth_scene(3)


@pytest.mark.parametrize("gain", [0.3, 1.0, 3.0])
@pytest.mark.parametrize("read_dn", [2.0, 10.0])
def test_mid_range_variance_within_10_percent(scene, gain, read_dn):
    image = acquire(scene, gain, read_dn, seed=int(10 * gain + read_dn))
    fit = estimate_noise(image, bit_depth=12)
    assert abs(mid_range_error(fit, image, gain, read_dn)) < 0.10
    assert isinstance(fit, NoiseFit) and len(fit.levels_mean) >= 3
    assert fit.levels_mean.shape == fit.levels_var.shape == fit.levels_n.shape
    assert 0 < fit.n_pixels_used <= image.size and fit.clip_low == 0.0 and fit.clip_high == 4095.0


def test_a_and_b_agree_with_truth_within_their_standard_errors(scene):
    gain, read_dn = 3.0, 10.0           # Poisson variance dominates everywhere but the darkest pixels
    for seed in (1, 2):
        fit = estimate_noise(acquire(scene, gain, read_dn, seed=seed), bit_depth=12)
        assert abs(fit.a - gain) < 4 * fit.a_se
        assert abs(fit.b - (read_dn**2 + 1 / 12)) < 4 * fit.b_se
        assert fit.a_se < 0.05 * gain  # and the standard error is useful, not just large


@pytest.fixture(scope="module")
def clipped():
    """About 15 % of the pixels at 4095 and some at 0 (K = 1, read noise 10 DN)."""
    x = smooth_scene(4, low_dn=0.0, high_dn=4600.0)
    x[:160, 300:] = 5000.0              # a saturated region
    x[400:, :60] = 2.0                  # a dark corner: about half its pixels read 0
    image = acquire(x, 1.0, 10.0, seed=5)
    return image


def test_clipped_image_mid_range_within_10_percent(clipped):
    top, zero = np.mean(clipped == 4095), np.mean(clipped == 0)
    assert 0.10 <= top <= 0.20 and zero > 0.005
    fit = estimate_noise(clipped, bit_depth=12)
    assert abs(mid_range_error(fit, clipped, 1.0, 10.0)) < 0.10
    # the level sets near the clips were excluded: none within 2.5 noise sd of 0 or 4095
    sd = np.sqrt(fit.levels_var)
    assert np.all(fit.levels_mean - 2.5 * sd > 0) and np.all(fit.levels_mean + 2.5 * sd < 4095)


def test_ignoring_clipping_is_worse(clipped):
    aware = estimate_noise(clipped, bit_depth=12)
    blind = _estimate(clipped, 12, 30, clip_aware=False)
    # saturated areas have zero detail (variance 0 at 4095) and pull the line down
    assert blind.levels_mean.max() > 4000 and blind.levels_var.min() < 0.5 * aware.levels_var.min()
    assert abs(mid_range_error(blind, clipped, 1.0, 10.0)) > 2 * abs(mid_range_error(aware, clipped, 1.0, 10.0))
    assert abs(blind.a - 1.0) > abs(aware.a - 1.0)


def test_clip_at_an_unknown_saturation_is_found():
    x = smooth_scene(6, low_dn=100.0, high_dn=4000.0)
    image = np.minimum(acquire(x, 1.0, 5.0, seed=7), 3000)    # full well below the ADC range
    fit = estimate_noise(image)
    assert fit.clip_high == 3000.0 and fit.levels_mean.max() < 3000 - 2 * np.sqrt(fit.levels_var[-1])
    assert abs(mid_range_error(fit, image, 1.0, 5.0)) < 0.10


@pytest.mark.parametrize("sigma_px", [1.0, 3.0])
def test_texture_does_not_inflate_the_estimate(scene, sigma_px):
    gain, read_dn = 1.0, 10.0
    image = acquire(scene + texture(8, 100.0, sigma_px), gain, read_dn, seed=9)
    fit = estimate_noise(image, bit_depth=12)
    assert abs(mid_range_error(fit, image, gain, read_dn)) < 0.10
    if sigma_px < 2:
        # without the smooth-place selection (all blocks in the level sets) fine texture inflates it
        blind = _estimate(image, 12, 30, clip_aware=True, select_smooth=False)
        assert mid_range_error(blind, image, gain, read_dn) > 2 * abs(mid_range_error(fit, image, gain, read_dn))


def test_profile_from_fit(scene):
    fit = estimate_noise(acquire(scene, 1.0, 10.0, seed=11), bit_depth=12)
    prof = profile_from_fit(fit, bit_depth=12)
    assert prof["estimate"] == "single-image" and prof["gain_dn_per_e"] == fit.a
    assert {"noise_a_dn", "noise_b_dn2", "noise_a_se_dn", "noise_b_se_dn2"} <= set(prof)
    camera = CameraProfile(prof["gain_dn_per_e"], prof["offset_dn"], prof["read_noise_dn"], prof["bit_depth"])
    # the profile's variance line is the fit's, whichever way b was split
    assert camera.noise_variance_dn2(2000.0) == pytest.approx(fit.a * 2000 + fit.b, rel=1e-9)
    given = profile_from_fit(fit, bit_depth=12, offset_dn=50.0)
    assert given["offset_dn"] == 50.0
    assert given["read_noise_dn"] == pytest.approx(np.sqrt(fit.b + 50.0 * fit.a))
    negative = NoiseFit(2.0, -100.0, 0.1, 5.0, *(np.zeros(3),) * 3, 0.0, 4095.0, 100)
    prof = profile_from_fit(negative, bit_depth=12)
    # b < 0: the read noise is floored at the quantisation floor 0.24 DN^2, never 0, with a warning
    # that gives the numbers; the variance line stays the fit's: offset = (0.24 + 100) / 2
    assert prof["read_noise_dn"] == pytest.approx(np.sqrt(0.24)) and prof["offset_dn"] == pytest.approx(50.12)
    assert len(prof["calibration_warnings"]) == 1 and "b = -100" in prof["calibration_warnings"][0]
    assert "--dark-offset" in prof["calibration_warnings"][0]
    camera = CameraProfile(prof["gain_dn_per_e"], prof["offset_dn"], prof["read_noise_dn"], prof["bit_depth"])
    assert camera.noise_variance_dn2(2000.0) == pytest.approx(2.0 * 2000 - 100, rel=1e-12)
    assert profile_from_fit(fit, bit_depth=12)["calibration_warnings"] == []   # b > 0.24 here: nothing floored
    with pytest.raises(InputError, match="positive signal-dependent"):
        profile_from_fit(NoiseFit(-1.0, 10.0, 0.1, 1.0, *(np.zeros(3),) * 3, None, None, 100), bit_depth=12)
    with pytest.raises(InputError, match="too low"):
        profile_from_fit(fit, bit_depth=12, offset_dn=-1000.0)


def _bad_inputs():
    rng = np.random.default_rng(0)
    flat = np.clip(np.rint(rng.poisson(1000.0, (256, 256)) + rng.normal(0, 5, (256, 256))), 0, 4095)
    busy = rng.uniform(0, 4000, (256, 256)).round()                      # texture at every scale
    return [
        (np.zeros((64, 64, 3)), "2D"),
        (np.array([["a"] * 64] * 64), "numeric"),
        (np.zeros((64, 64), dtype=bool), "numeric"),
        (np.zeros((16, 400)), "too small"),
        (np.full((64, 64), np.nan), "non-finite"),
        (flat.astype(np.uint16), "too flat"),
        (busy.astype(np.uint16), "too flat or too textured"),
        (np.full((64, 64), 5000, dtype=np.uint16), "exceeds"),
    ]


@pytest.mark.parametrize("image, message", _bad_inputs())
def test_bad_input_raises_one_line(image, message):
    with pytest.raises(InputError, match=message) as info:
        estimate_noise(image, bit_depth=12)
    assert "\n" not in str(info.value)


def test_bad_arguments():
    image = np.zeros((64, 64), dtype=np.uint16)
    with pytest.raises(InputError, match="n_levels"):
        estimate_noise(image, n_levels=2)
    with pytest.raises(InputError, match="bit_depth"):
        estimate_noise(image, bit_depth=40)


def test_real_cell_painting_image():
    path = shared_data("bbbc022-cellpainting-12bit", "IXMtest_A02_s9.tif")
    channel = tifffile.imread(path)[0]          # Hoechst; only the background is smooth enough
    fit = estimate_noise(channel, bit_depth=12)
    assert fit.a > 0 and fit.b > -fit.a * float(channel.min())
    assert fit.a * float(np.median(channel)) + fit.b > 0


# ---- noisestat calibrate --from-image: the file named, what was too little, what to do ----------


def _calibrate(capsys, *argv):
    from noisestat.cli import main

    code = main(["calibrate", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_from_image_refusal_names_the_file_what_was_too_little_and_what_to_do(tmp_path, capsys):
    rng = np.random.default_rng(0)
    path = tmp_path / "busy.tif"
    tifffile.imwrite(path, rng.uniform(0, 4000, (256, 256)).round().astype(np.uint16))  # texture at every scale
    code, out, err = _calibrate(capsys, "--from-image", path, "-o", tmp_path / "camera.json")
    assert code == 1 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"noisestat: error: {path}: ")
    assert "one brightness" in lines[0] and "--flat or --emva" in lines[0]
    assert not (tmp_path / "camera.json").exists()


def test_from_image_on_real_phase_contrast_says_the_smooth_area_is_too_little(tmp_path, capsys):
    path = shared_data("usiigaci-phase-contrast", "set3", "raw.tif")
    code, out, err = _calibrate(capsys, "--from-image", path, "-o", tmp_path / "camera.json")
    assert code == 1
    line, = err.strip().splitlines()
    assert f"{path}: too little smooth area" in line
    assert "of its 261632 blocks" in line and "--flat or --emva" in line


def test_from_image_reads_the_chosen_channel(tmp_path, capsys, scene):
    gain, read_dn = 1.0, 10.0
    channels = np.stack([np.full(SHAPE, 7, np.uint16), acquire(scene, gain, read_dn, seed=21),
                         np.zeros(SHAPE, np.uint16)])
    path = tmp_path / "three.tif"
    tifffile.imwrite(path, channels, photometric="minisblack", metadata={"axes": "CYX"})
    code, _, err = _calibrate(capsys, "--from-image", path, "-o", tmp_path / "camera.json", "--bit-depth", 12)
    assert code == 1 and "choose one with --channel N (0 to 2)" in err   # the advice names an option calibrate has
    code, out, err = _calibrate(capsys, "--from-image", path, "--channel", 1, "--bit-depth", 12,
                                "-o", tmp_path / "camera.json")
    assert code == 0, err
    profile = json.loads((tmp_path / "camera.json").read_text())
    assert abs(profile["noise_a_dn"] - gain) < 4 * profile["noise_a_se_dn"]
    assert profile["source"]["channel"] == 1


def test_channel_is_refused_without_from_image(tmp_path, capsys):
    code, _, err = _calibrate(capsys, "--emva", tmp_path / "EMVA.txt", "--channel", 1, "-o", tmp_path / "c.json")
    assert code == 1 and "--channel and --plane go with --from-image" in err
