"""Bad inputs that once ended in a traceback or were accepted silently: each gives one line naming the file."""

import json

import imagecodecs
import numpy as np
import pytest
import tifffile

from noisestat import CameraProfile, ProfileError, load_profile, save_profile
from noisestat.camera import PixelMaps
from noisestat.errors import InputError
from noisestat.io import open_image, read_image

FOUR = {"gain_dn_per_e": 0.5, "offset_dn": 100, "read_noise_dn": 2.0, "bit_depth": 16}


def _profile_text(tmp_path, text, name="camera.json"):
    path = tmp_path / name
    path.write_text(text)
    return path


# ---- camera profiles --------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["offset_dn", "gain_dn_per_e", "read_noise_dn", "saturation_dn"])
def test_profile_integer_too_large_for_a_float_is_one_line(tmp_path, key):
    text = json.dumps({k: v for k, v in FOUR.items() if k != key})[:-1] + f', "{key}": 1{"0" * 400}}}'
    path = _profile_text(tmp_path, text)
    with pytest.raises(ProfileError, match=rf"camera.json: {key} must be a finite number") as info:
        load_profile(path)
    assert len(str(info.value)) < 300 and "\n" not in str(info.value)


def test_profile_integer_of_more_digits_than_python_reads(tmp_path):
    path = _profile_text(tmp_path, json.dumps(FOUR)[:-1] + f', "notes": 1{"0" * 5000}}}')
    with pytest.raises(ProfileError, match=r"camera.json: not a JSON camera profile"):
        load_profile(path)


def test_profile_nested_deeply_is_one_line(tmp_path):
    path = _profile_text(tmp_path, json.dumps(FOUR)[:-1] + ', "notes": ' + "[" * 100000 + "]" * 100000 + "}")
    with pytest.raises(ProfileError, match=r"camera.json: .*nested 100001 deep"):
        load_profile(path)


def test_profile_brackets_inside_strings_are_not_nesting(tmp_path):
    path = _profile_text(tmp_path, json.dumps({**FOUR, "notes": "[" * 100 + '\\"{' * 50}))
    assert load_profile(path).extra["notes"].startswith("[[[")


def test_profile_duplicate_key_with_different_values_is_refused(tmp_path):
    path = _profile_text(tmp_path, '{"gain_dn_per_e": 0.5, "offset_dn": 100, "read_noise_dn": 2, '
                                   '"bit_depth": 16, "offset_dn": 200}')
    with pytest.raises(ProfileError, match=r"camera.json: key 'offset_dn' is given twice with different values "
                                           r"\(100 and 200\)"):
        load_profile(path)


def test_profile_duplicate_key_with_the_same_value_is_kept(tmp_path):
    path = _profile_text(tmp_path, '{"gain_dn_per_e": 0.5, "offset_dn": 100, "read_noise_dn": 2, '
                                   '"bit_depth": 16, "offset_dn": 100}')
    assert load_profile(path).offset_dn == 100


def _profile_with_maps(tmp_path):
    shape = (16, 16)
    maps = PixelMaps(np.full(shape, 100.0), np.full(shape, 4.0), np.full(shape, 0.5))
    path = tmp_path / "cams" / "camera.json"
    save_profile(CameraProfile(**FOUR, pixel_maps=maps), path)
    assert load_profile(path).pixel_maps is not None  # the profile as written loads
    return path


@pytest.mark.parametrize("where", ["outside", "absolute", "link"])
def test_profile_pixel_map_path_outside_its_folder_is_refused(tmp_path, where):
    path = _profile_with_maps(tmp_path)
    maps_file = path.with_name("camera_pixelmaps.tif")
    data = json.loads(path.read_text())
    outside = tmp_path / "elsewhere.tif"
    outside.write_bytes(maps_file.read_bytes())  # a readable map: only its place is wrong
    if where == "outside":
        data["pixel_maps"]["file"] = "../elsewhere.tif"
    elif where == "absolute":
        data["pixel_maps"]["file"] = str(outside)
    else:
        (path.parent / "link.tif").symlink_to(outside)
        data["pixel_maps"]["file"] = "link.tif"
    path.write_text(json.dumps(data))
    with pytest.raises(ProfileError, match=r"camera.json: pixel_maps file .* (is absolute|outside the profile's folder)"):
        load_profile(path)


# ---- one sample of an RGB file ----------------------------------------------------------------


def _rgb(tmp_path, kind):
    """An RGB file whose three samples differ (values 0-255 so PNG keeps them) and its array."""
    rng = np.random.default_rng(5)
    rgb = np.stack([rng.poisson(lam, (64, 64)) + 20 for lam in (30, 60, 90)], axis=-1).astype(np.uint8)
    path = tmp_path / f"rgb.{kind}"
    if kind == "png":
        path.write_bytes(imagecodecs.png_encode(rgb))
    else:
        tifffile.imwrite(path, rgb, photometric="rgb")
    return path, rgb


@pytest.mark.parametrize("kind", ["png", "tif"])
def test_one_sample_of_rgb_is_its_own_contiguous_plane(tmp_path, kind):
    path, rgb = _rgb(tmp_path, kind)
    for channel in range(3):
        image = read_image(path, channel=channel)
        np.testing.assert_array_equal(image, rgb[..., channel])
        assert image.flags.c_contiguous
        view, _ = open_image(path, channel=channel)
        region = view[5:40, 3:50]
        np.testing.assert_array_equal(region, rgb[5:40, 3:50, channel])
        assert region.flags.c_contiguous


@pytest.mark.parametrize("kind", ["png", "tif"])
def test_compress_bench_reads_the_chosen_sample_of_rgb(tmp_path, capsys, kind):
    from noisestat.cli import main

    path, rgb = _rgb(tmp_path, kind)
    code = main(["compress-bench", str(path), "--channel", "1", "--codec", "lossless", "--codec", "jpeg:quality=90",
                 "-o", str(tmp_path / "bench")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert (tmp_path / "bench" / "metrics.csv").is_file()


@pytest.mark.parametrize("kind", ["png", "tif"])
def test_assess_reads_the_chosen_sample_of_rgb(tmp_path, capsys, kind):
    from noisestat.cli import main

    path, rgb = _rgb(tmp_path, kind)
    (tmp_path / "camera.json").write_text(json.dumps({"gain_dn_per_e": 0.5, "offset_dn": 10, "read_noise_dn": 1.5,
                                                      "bit_depth": 8}))
    labels = np.zeros(rgb.shape[:2], np.uint8)
    labels[:6, :6], labels[40:46, 40:46] = 1, 2
    tifffile.imwrite(tmp_path / "labels.tif", labels)
    code = main(["assess", str(path), "--channel", "2", "--camera", str(tmp_path / "camera.json"),
                 "--labels", str(tmp_path / "labels.tif"), "--codec", "lossless", "--codec", "jpeg:quality=90",
                 "--replicas", "2", "--quiet", "-o", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert code == 0, err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["provenance"]["inputs"]["image"]["channel"] == 2
