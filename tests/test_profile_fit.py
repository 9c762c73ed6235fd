"""Does a camera profile fit an image? Refusals (one line, the numbers) and warnings; and the
physically impossible profile values refused with the key named."""

import json

import numpy as np
import pytest

from noisestat import CameraProfile, InputError, ProfileError, assess, load_profile
from noisestat.camera import GAIN_RANGE_DN_PER_E, MAX_BELOW_OFFSET, PixelMaps
from noisestat.errors import ProfileFitError
from noisestat.simulate import CameraModel, CameraSimulator

from conftest import CAMERA

CAM16 = CameraProfile(gain_dn_per_e=0.5, offset_dn=100.0, read_noise_dn=2.0, bit_depth=16)


def _dark(shape=(256, 256), offset=100.0, read_e=4.0, gain=0.5, seed=0, **kw):
    model = CameraModel(shape=shape, gain_dn_per_e=gain, offset_dn=offset, read_noise_e=read_e, bit_depth=16, **kw)
    return CameraSimulator(model).acquire(0.0, frames=1, rng=seed)[0]


def test_image_below_the_offset_is_refused_with_the_numbers():
    # The acceptance case: an 8-bit image (values 2..17) with a 16-bit profile whose offset is 9000.
    image = np.random.default_rng(0).integers(2, 18, (64, 64)).astype(np.uint8)
    cam = CameraProfile(gain_dn_per_e=0.5, offset_dn=9000, read_noise_dn=2, bit_depth=16)
    with pytest.raises(ProfileFitError) as info:
        cam.fit_warnings(image, "small.tif")
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("small.tif: 100.0% of the pixels")
    assert "offset 9000 DN" in msg and "2 to 17" in msg
    assert isinstance(info.value, ProfileError) and isinstance(info.value, InputError)


def test_almost_wholly_below_is_refused_and_the_limit_is_the_stated_one():
    image = np.full((100, 100), 50, np.uint16)
    image.flat[:99] = 500                            # 0.99 % above: 99.01 % below -> refused
    with pytest.raises(ProfileFitError, match="99.0% of the pixels"):
        CAM16.fit_warnings(image)
    image.flat[:101] = 500                           # 98.99 % below: allowed, but warned
    warnings = CAM16.fit_warnings(image)
    assert MAX_BELOW_OFFSET == 0.99
    assert len(warnings) == 1 and "99.0% of the pixels lie below the offset 100 DN" in warnings[0]


def test_a_dark_frame_with_the_right_offset_is_not_warned():
    # Rounding-aware "below": a dark frame of any noise has at most half its pixels there. A plain
    # y <= offset would warn at 100.3 DN with 1 DN of noise (58 % of the pixels, over the 55 % limit)
    # and refuse at 0.2 DN of noise, where nearly every pixel reads the offset (99.4 %, over 99 %).
    for offset, read_e in ((100.0, 4.0), (100.3, 2.0), (100.0, 0.4), (100.45, 6.0)):
        image = _dark(offset=offset, read_e=read_e)
        cam = CameraProfile(0.5, offset, 1.0, 16)
        assert cam.fit_warnings(image) == [], (offset, read_e)


def test_an_offset_too_high_is_warned_with_the_fraction():
    image = _dark(read_e=4.0)                         # 2 DN read noise, offset 100
    warnings = CameraProfile(0.5, 103.0, 2.0, 16).fit_warnings(image, "dark.tif")
    assert len(warnings) == 1
    fraction = float(np.mean(image + 0.5 <= 103.0))
    assert f"dark.tif: {fraction:.1%} of the pixels lie below the offset 103 DN" in warnings[0]
    assert 0.85 < fraction < 0.99


def test_per_pixel_offsets_are_used_with_pixel_maps():
    # 30 DN of offset spread: against one offset of 230 DN (mean + 1 spread) 84 % of a dark frame lies
    # below it; against each pixel's own offset, half at most.
    model = CameraModel(shape=(128, 128), gain_dn_per_e=0.5, offset_dn=200.0, read_noise_e=4.0, bit_depth=16,
                        dsnu_dn=30.0)
    sim = CameraSimulator(model)
    image = sim.acquire(0.0, frames=1, rng=1)[0]
    maps = PixelMaps(np.array(sim.offset_map_dn), np.full(model.shape, 4.08), np.full(model.shape, 0.5))
    with_maps = CameraProfile(0.5, 230.0, 2.02, 16, pixel_maps=maps)
    assert with_maps.fit_warnings(image) == []
    assert "below the offset 230 DN" in CameraProfile(0.5, 230.0, 2.02, 16).fit_warnings(image)[0]


def test_bit_depth_of_the_container():
    image = (_dark(offset=150.0) - 40).astype(np.uint8)        # 8-bit file, values above the offset 100
    warnings = CAM16.fit_warnings(image, "small.png")
    assert len(warnings) == 1
    assert "small.png: the file holds 8-bit values (uint8) but the profile describes a 16-bit camera" in warnings[0]
    # a 16-bit file whose values never pass 255, with a 12-bit profile: fine
    cam12 = CameraProfile(0.5, 100.0, 2.0, 12)
    assert cam12.fit_warnings(_dark(offset=150.0)) == []
    assert CameraProfile(0.5, 100.0, 2.0, 8).fit_warnings(image) == []


def test_values_above_the_digitiser_are_refused():
    image = np.full((16, 16), 300, np.uint16)
    with pytest.raises(ProfileFitError, match="values up to 300, above the camera's 8-bit range"):
        CameraProfile(1.0, 10.0, 1.0, 8).fit_warnings(image)


def test_single_image_estimate_is_warned():
    cam = CameraProfile(0.5, 100.0, 2.0, 16, {"estimate": "single-image"})
    warnings = cam.fit_warnings(_dark(offset=150.0))
    assert warnings == [w for w in warnings if "the profile is only a single-image estimate" in w] and warnings


def test_assess_refuses_and_warns(small_scene):
    raw, labels, _, _ = small_scene
    with pytest.raises(ProfileError, match="at or below the offset 60000 DN"):
        assess(raw, CameraProfile(0.5, 60000.0, 2.0, 16), ["lossless"], labels=labels, replicas=2)
    single = CameraProfile(CAMERA.gain_dn_per_e, CAMERA.offset_dn, CAMERA.read_noise_dn, CAMERA.bit_depth,
                           {"estimate": "single-image"})
    result = assess(raw, single, ["lossless"], labels=labels, replicas=2)
    assert any("only a single-image estimate" in w for w in result.warnings)
    assert any("single-image estimate" in w for w in result.summary()["warnings"])


# -- impossible profile values ----------------------------------------------------------------------

@pytest.mark.parametrize("key, value, words", [
    ("gain_dn_per_e", 1e-20, "gain_dn_per_e must lie in [0.0001, 10000] DN/e-"),
    ("gain_dn_per_e", 2e4, "gain_dn_per_e must lie in [0.0001, 10000] DN/e-"),
    ("read_noise_dn", 40000.0, "read_noise_dn must be at most (2**bit_depth - 1) / 2 = 32767.5 DN"),
    ("saturation_dn", 50.0, "saturation_dn must lie in (offset_dn, 2**bit_depth - 1] = (100, 65535]"),
    ("saturation_dn", 70000.0, "saturation_dn must lie in (offset_dn, 2**bit_depth - 1]"),
    ("saturation_dn", "full", "saturation_dn must be a finite number"),
])
def test_impossible_values_are_refused_naming_file_and_key(tmp_path, key, value, words):
    obj = {"gain_dn_per_e": 0.5, "offset_dn": 100.0, "read_noise_dn": 2.0, "bit_depth": 16, key: value}
    path = tmp_path / "cam.json"
    path.write_text(json.dumps(obj))
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert str(info.value).startswith(f"{path}: ") and words in str(info.value)
    assert "\n" not in str(info.value)


def test_plausible_extremes_are_accepted():
    low, high = GAIN_RANGE_DN_PER_E
    CameraProfile(low, 0.0, 0.0, 16)
    CameraProfile(high, 0.0, 0.5, 1)                 # a 1-bit digitiser: sd at most 0.5 DN
    with pytest.raises(ProfileError, match="read_noise_dn must be at most"):
        CameraProfile(high, 0.0, 0.6, 1)
    assert CameraProfile(0.5, 100.0, 2.0, 12, {"saturation_dn": 3900.0}).saturation_dn == 3900.0
    assert CameraProfile(0.5, 100.0, 2.0, 12).saturation_dn == 4095.0
