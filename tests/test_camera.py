import json

import pytest

from noisestat import CameraProfile, ProfileError, load_profile, save_profile


def write(tmp_path, obj, name="cam.json"):
    path = tmp_path / name
    path.write_text(json.dumps(obj) if not isinstance(obj, str) else obj)
    return path


def test_datasheet_profile_with_four_keys_is_accepted(tmp_path):
    p = load_profile(write(tmp_path, {"gain_dn_per_e": 0.46, "offset_dn": 100, "read_noise_dn": 1.6, "bit_depth": 16}))
    assert (p.gain_dn_per_e, p.offset_dn, p.read_noise_dn, p.bit_depth) == (0.46, 100.0, 1.6, 16)
    assert p.max_dn == 65535 and p.extra == {}


def test_optional_keys_are_kept_and_round_trip(tmp_path):
    src = {"gain_dn_per_e": 0.3, "offset_dn": 14.8, "read_noise_dn": 3.1, "bit_depth": 12,
           "camera": "Basler", "quantum_efficiency": 0.45}
    p = load_profile(write(tmp_path, src))
    assert p.extra == {"camera": "Basler", "quantum_efficiency": 0.45}
    save_profile(p, tmp_path / "out.json")
    assert load_profile(tmp_path / "out.json") == p
    assert load_profile(tmp_path / "out.json").extra == p.extra


@pytest.mark.parametrize("change, words", [
    ({"gain_dn_per_e": None}, "missing required key(s) gain_dn_per_e"),
    ({"gain_dn_per_e": -1}, "gain_dn_per_e must be > 0"),
    ({"gain_dn_per_e": "high"}, "gain_dn_per_e must be a finite number"),
    ({"read_noise_dn": -0.1}, "read_noise_dn must be >= 0"),
    ({"bit_depth": 12.5}, "bit_depth must be an integer"),
    ({"bit_depth": 40}, "bit_depth must be an integer from 1 to 32"),
    ({"offset_dn": 5000, "bit_depth": 12}, "offset_dn must lie in"),
])
def test_bad_profiles_name_file_and_key(tmp_path, change, words):
    obj = {"gain_dn_per_e": 0.5, "offset_dn": 100, "read_noise_dn": 2, "bit_depth": 16}
    obj.update(change)
    obj = {k: v for k, v in obj.items() if v is not None}
    path = write(tmp_path, obj)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert words in str(info.value) and str(path) in str(info.value)


@pytest.mark.parametrize("text", ["not json", "[1, 2]"])
def test_not_a_profile(tmp_path, text):
    with pytest.raises(ProfileError, match="cam.json"):
        load_profile(write(tmp_path, text))


def test_missing_file(tmp_path):
    with pytest.raises(ProfileError, match="no such camera profile"):
        load_profile(tmp_path / "nope.json")


def test_noise_variance_is_poisson_plus_read():
    p = CameraProfile(0.5, 100.0, 2.0, 16)
    assert p.noise_variance_dn2(100) == 4.0
    assert p.noise_variance_dn2(1100) == 0.5 * 1000 + 4.0
    assert p.noise_variance_dn2(50) == 4.0  # below the offset: read noise only


def test_shipped_example_profile_loads():
    from pathlib import Path

    p = load_profile(Path(__file__).resolve().parents[1] / "calibration" / "example-datasheet.json")
    assert p.bit_depth == 16 and p.gain_dn_per_e == 0.46
