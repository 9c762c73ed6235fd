"""Calibration inputs: where frames may come from, duplicates, sidecars, the --flat spatial set,
the per-pixel frame rule and the single-image bit depth."""

import json
import os

import numpy as np
import pytest
import tifffile

from noisestat import InputError, load_profile
from noisestat.calibrate import calibrate_image, calibrate_series, read_emva_descriptor, read_stacks
from noisestat.calibrate._maps import MIN_DARK_FRAMES
from noisestat.cli import main
from noisestat.simulate import CameraModel, CameraSimulator

PHOTONS = [500.0, 1500.0, 3000.0, 4500.0, 6000.0, 7500.0]
EXPOSURES = [0.002, 0.004, 0.006, 0.008, 0.010, 0.012]


@pytest.fixture(scope="module")
def emva_set(tmp_path_factory):
    """A small simulated EMVA 1288 set: (folder, descriptor text)."""
    sim = CameraSimulator(CameraModel(shape=(32, 32), pattern_seed=1))
    folder = tmp_path_factory.mktemp("emva")
    desc = sim.write_emva(folder, PHOTONS, EXPOSURES, rng=1)
    return folder, desc.read_text()


def _variant(tmp_path, emva_set, edit):
    """A copy of the set (frames copied: a symlinked folder would lead outside) with ``edit`` applied
    to its descriptor's text."""
    folder, text = emva_set
    (tmp_path / "images").mkdir()
    for f in (folder / "images").iterdir():
        (tmp_path / "images" / f.name).write_bytes(f.read_bytes())
    desc = tmp_path / "EMVA1288_Data.txt"
    desc.write_text(edit(text))
    return desc


def _cli_error(capsys, *argv):
    code = main(["calibrate", *map(str, argv)])
    _, err = capsys.readouterr()
    assert code == 1, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_the_unmodified_set_reads(emva_set):
    folder, _ = emva_set
    series = read_emva_descriptor(folder / "EMVA1288_Data.txt")
    assert len(series.levels) == len(PHOTONS)


@pytest.mark.parametrize("bad", ["../../etc/passwd", "/etc/passwd", "..\\..\\secret.png", "C:\\data\\b.png",
                                 "images/../../outside.png"])
def test_frame_paths_outside_the_descriptors_folder_are_refused(tmp_path, emva_set, capsys, bad):
    first = "i images/b_000_snap_001.png"
    desc = _variant(tmp_path, emva_set, lambda t: t.replace(first, f"i {bad}", 1))
    with pytest.raises(InputError) as info:
        read_emva_descriptor(desc)
    message = str(info.value)
    assert repr(bad) in message and ("outside the descriptor's folder" in message or "is absolute" in message)
    err = _cli_error(capsys, "--emva", desc, "-o", tmp_path / "cam.json")
    assert "line" in err and not (tmp_path / "cam.json").exists()


def test_a_symlink_that_leads_out_of_the_folder_is_refused(tmp_path, emva_set):
    folder, text = emva_set
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "frame.png").write_bytes((folder / "images" / "b_000_snap_001.png").read_bytes())
    inside = tmp_path / "set"
    (inside / "images").mkdir(parents=True)
    for f in (folder / "images").iterdir():
        (inside / "images" / f.name).write_bytes(f.read_bytes())
    os.symlink(outside / "frame.png", inside / "images" / "link.png")
    desc = inside / "EMVA1288_Data.txt"
    desc.write_text(text.replace("i images/b_000_snap_001.png", "i images/link.png", 1))
    with pytest.raises(InputError, match="resolves to .*outside/frame.png, outside the descriptor's folder"):
        read_emva_descriptor(desc)
    # a symlink that stays inside is followed
    os.remove(inside / "images" / "link.png")
    os.symlink(inside / "images" / "b_000_snap_001.png", inside / "images" / "link.png")
    assert len(read_emva_descriptor(desc).levels) == len(PHOTONS)


def test_a_frame_listed_twice_is_refused(tmp_path, emva_set, capsys):
    desc = _variant(tmp_path, emva_set, lambda t: t.replace("i images/b_001_snap_001.png",
                                                             "i images/b_000_snap_001.png", 1))
    err = _cli_error(capsys, "--emva", desc, "-o", tmp_path / "cam.json")
    assert "b_000_snap_001.png is listed twice" in err


def test_the_same_exposure_saved_under_two_names_is_refused(tmp_path, emva_set):
    folder, text = emva_set
    (tmp_path / "images").mkdir()
    for f in (folder / "images").iterdir():
        (tmp_path / "images" / f.name).write_bytes(f.read_bytes())
    # frame 2 of level 3 overwritten by frame 1: var(A - B) would be 0
    (tmp_path / "images" / "b_003_snap_002.png").write_bytes((folder / "images" / "b_003_snap_001.png").read_bytes())
    (tmp_path / "EMVA1288_Data.txt").write_text(text)
    with pytest.raises(InputError, match="b_003_snap_002.png: has exactly the pixel values of .*b_003_snap_001.png"):
        read_emva_descriptor(tmp_path / "EMVA1288_Data.txt")


def test_a_duplicated_level_is_refused(tmp_path, emva_set, capsys):
    import imagecodecs

    folder, text = emva_set
    (tmp_path / "images").mkdir()
    for f in (folder / "images").iterdir():
        (tmp_path / "images" / f.name).write_bytes(f.read_bytes())
    # a second pair of frames (another noise draw) of the first level, listed as a level of its own
    sim = CameraSimulator(CameraModel(shape=(32, 32), pattern_seed=1))
    for k, frame in enumerate(sim.acquire(PHOTONS[0], EXPOSURES[0], 2, rng=99), 1):
        (tmp_path / "images" / f"again_{k}.png").write_bytes(imagecodecs.png_encode(frame))
    lines = text.splitlines()
    start = next(k for k, line in enumerate(lines) if line.startswith("b "))
    again = [lines[start], "i images/again_1.png", "i images/again_2.png"]
    (tmp_path / "EMVA1288_Data.txt").write_text("\n".join(lines[:start + 3] + again + lines[start + 3:]) + "\n")
    err = _cli_error(capsys, "--emva", tmp_path / "EMVA1288_Data.txt", "-o", tmp_path / "cam.json")
    assert "bright level 'b 2e+06 500' appears twice" in err and f"lines {start + 1} and {start + 4}" in err


# --------------------------------------------------------------------------------------------------
# --flat: stacks and sidecars
# --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stacks(tmp_path_factory):
    model = CameraModel(shape=(48, 48), gain_dn_per_e=0.5, offset_dn=100.0, read_noise_e=4.0, bit_depth=12,
                        quantum_efficiency=0.6, full_well_e=6000.0, dsnu_dn=2.0, prnu=0.01, pattern_seed=2)
    sim = CameraSimulator(model)
    folder = tmp_path_factory.mktemp("stacks")
    files = sim.write_stacks(folder, PHOTONS, EXPOSURES, frames=4, rng=3)
    rng = np.random.default_rng(4)
    tifffile.imwrite(folder / "spatial.tif", sim.acquire(5000.0, 0.01, 16, rng), photometric="minisblack")
    tifffile.imwrite(folder / "spatial_dark.tif", sim.acquire(0.0, 0.01, 16, rng), photometric="minisblack")
    meta = {e["file"]: {"exposure_s": e["exposure_s"], "photons": e["photons"]}
            for e in json.loads(files["sidecar"].read_text())["levels"]}
    meta.update({e: {"exposure_s": x} for e, x in zip([d.name for d in files["darks"]], EXPOSURES)})
    (folder / "meta.json").write_text(json.dumps(meta))
    return model, folder, files


def test_flat_route_takes_a_spatial_set(stacks, tmp_path, capsys):
    model, folder, files = stacks
    series = read_stacks(files["levels"], files["darks"], sidecar=folder / "meta.json", bit_depth=12,
                         spatial_flat=folder / "spatial.tif", spatial_dark=folder / "spatial_dark.tif")
    s = calibrate_series(series).ptc.spatial
    # spatial variance over 2304 pixels: relative SE sqrt(2/2304) = 3 %, 1.5 % on its root
    assert s["dsnu1288_e"] == pytest.approx(model.dsnu_dn / model.gain_dn_per_e, rel=0.06)
    # PRNU 1 % of 2500 e- = 25 e-, next to the 50 e- shot noise / sqrt(16): ~10 % SE
    assert s["prnu1288_pct"] == pytest.approx(100 * model.prnu, rel=0.3)
    assert s["frames"] == {"dark": 16, "bright": 16}
    code = main(["calibrate", "--flat", *map(str, files["levels"]), "--dark", *map(str, files["darks"]),
                 "--sidecar", str(folder / "meta.json"), "--spatial-flat", str(folder / "spatial.tif"),
                 "--spatial-dark", str(folder / "spatial_dark.tif"), "-o", str(tmp_path / "cam.json")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "DSNU1288" in out and "PRNU1288" in out
    assert "spatial_nonuniformity" in load_profile(tmp_path / "cam.json").extra
    # one half of the spatial set alone is refused
    err = _cli_error(capsys, "--flat", *files["levels"], "--dark", *files["darks"], "--sidecar", folder / "meta.json",
                     "--spatial-flat", folder / "spatial.tif", "-o", tmp_path / "c2.json")
    assert "spatial.tif" in err and "both a bright and a dark stack" in err


def test_sidecar_missing_a_key_for_one_file_is_one_line(stacks, tmp_path, capsys):
    model, folder, files = stacks
    meta = json.loads((folder / "meta.json").read_text())
    del meta["level_03.tif"]["exposure_s"]
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    err = _cli_error(capsys, "--flat", *files["levels"], "--dark", files["darks"][0], "--sidecar", tmp_path / "meta.json",
                     "-o", tmp_path / "cam.json")
    assert "level_03.tif has no 'exposure_s'" in err and "meta.json" in err
    del meta["level_01.tif"]
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    err = _cli_error(capsys, "--flat", *files["levels"], "--dark", files["darks"][0], "--sidecar", tmp_path / "meta.json",
                     "-o", tmp_path / "cam.json")
    assert "level_01.tif has no entry" in err
    meta = json.loads((folder / "meta.json").read_text())
    del meta["level_02.tif"]["photons"]
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match="level_02.tif has no 'photons'"):
        read_stacks(files["levels"], files["darks"][:1], sidecar=tmp_path / "meta.json")


def test_duplicate_stacks_and_levels_are_refused(stacks, tmp_path, capsys):
    model, folder, files = stacks
    levels = list(files["levels"])
    err = _cli_error(capsys, "--flat", *levels, levels[2], "--dark", files["darks"][0], "-o", tmp_path / "cam.json")
    assert "level_02.tif: given twice" in err
    err = _cli_error(capsys, "--flat", *levels, "--dark", levels[0], "-o", tmp_path / "cam.json")
    assert "level_00.tif: given twice (as level stack and as dark stack)" in err
    # two files of one level: same exposure_s and photons
    meta = json.loads((folder / "meta.json").read_text())
    meta["level_04.tif"] = dict(meta["level_03.tif"])
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match="level_04.tif: same exposure_s 0.008 and photons 4500 as level_03.tif"):
        read_stacks(levels, files["darks"][:1], sidecar=tmp_path / "meta.json")
    # a copy of a stack under another name
    (tmp_path / "copy.tif").write_bytes(levels[1].read_bytes())
    with pytest.raises(InputError, match="copy.tif page 1: has exactly the pixel values of .*level_01.tif page 1"):
        read_stacks(levels + [tmp_path / "copy.tif"], files["darks"][:1])


# --------------------------------------------------------------------------------------------------
# Per-pixel maps: one dark stack counts once
# --------------------------------------------------------------------------------------------------

def _scmos_files(folder, dark_frames):
    model = CameraModel(shape=(24, 24), gain_dn_per_e=0.5, read_noise_e=3.0, gain_spread=0.05, full_well_e=6000.0,
                        pattern_seed=8)
    sim = CameraSimulator(model)
    rng = np.random.default_rng(9)
    flats = []
    for k, photons in enumerate(np.linspace(500, 6000, 10)):
        flats.append(folder / f"level_{k}.tif")
        tifffile.imwrite(flats[-1], sim.acquire(photons, 0.01, 30, rng), photometric="minisblack")
    tifffile.imwrite(folder / "dark.tif", sim.acquire(0.0, 0.01, dark_frames, rng), photometric="minisblack")
    return flats, folder / "dark.tif"


def test_three_dark_frames_do_not_make_a_per_pixel_map(tmp_path):
    flats, dark = _scmos_files(tmp_path, 3)
    series = read_stacks(flats, [dark], bit_depth=12)
    # the one 3-frame dark stack is shared by all 10 levels: 3 frames, 2 degrees of freedom, not 30 and 20
    # (a read variance with 2 degrees of freedom has relative sd sqrt(2/2) = 1)
    assert calibrate_series(series).profile.pixel_maps is None
    with pytest.raises(InputError, match=r"3 dark frame\(s\) in 1 distinct stack\(s\) \(2 degrees of freedom, "
                                         r"need 19"):
        calibrate_series(series, per_pixel=True)


def test_enough_dark_frames_in_one_stack_make_a_per_pixel_map(tmp_path):
    flats, dark = _scmos_files(tmp_path, MIN_DARK_FRAMES)
    cal = calibrate_series(read_stacks(flats, [dark], bit_depth=12))
    maps = cal.profile.pixel_maps
    assert maps is not None
    # read variance per pixel from 19 degrees of freedom: relative sd sqrt(2/19) = 0.32
    true = (3.0 * 0.5) ** 2 + 1 / 12
    rel = maps.read_variance_dn2 / true
    assert np.median(rel) == pytest.approx(1, abs=0.1) and rel.std() < 0.45


# --------------------------------------------------------------------------------------------------
# --from-image: bit depth from the container; a negative b is never a silent read noise of 0
# --------------------------------------------------------------------------------------------------

def _demo_raw():
    """The raw image `noisestat demo` writes (same camera, scene and seeds as noisestat.demo.run_demo)."""
    from noisestat.demo import demo_camera
    from noisestat.simulate import simulate_scene

    camera = demo_camera((640, 640), 0)
    _, scene_seed, acquisition_seed, _ = np.random.SeedSequence(0).spawn(4)
    electrons, _ = simulate_scene((640, 640), rng=np.random.default_rng(scene_seed))
    model = camera.model
    return camera.acquire(electrons / model.quantum_efficiency, 0.01, 1, np.random.default_rng(acquisition_seed))[0]


def test_from_image_on_the_demo_image(tmp_path, capsys):
    raw = _demo_raw()
    assert raw.dtype == np.uint16 and int(raw.max()).bit_length() < 16   # the values alone would say "11 bits"
    tifffile.imwrite(tmp_path / "raw.tif", raw)
    code = main(["calibrate", "--from-image", str(tmp_path / "raw.tif"), "-o", str(tmp_path / "est.json")])
    out, err = capsys.readouterr()
    assert code == 0, err
    p = load_profile(tmp_path / "est.json")
    assert p.bit_depth == 16 and p.extra["bit_depth_source"] == "the file's container (uint16)"
    # b = read^2 - K*offset < 0 for this camera (1.6^2 - 0.46 * 100): floored, said, with the numbers
    b = p.extra["noise_b_dn2"]
    assert b < 0
    assert p.read_noise_dn == pytest.approx(np.sqrt(0.24))
    assert "warning" in err and f"b = {b:.4g}" in err and "--dark-offset" in err
    # the variance line is still the fit's
    assert p.noise_variance_dn2(1000.0) == pytest.approx(p.extra["noise_a_dn"] * 1000 + b, rel=1e-9)
    # with the dark offset: b + a*100 estimates sigma_y.dark^2 = 1.61^2 + 1/12 = 2.68 DN^2, but one image
    # gives b only to +-13 DN^2; a value below the quantisation floor is floored and said, never 0
    profile, fit = calibrate_image(tmp_path / "raw.tif", offset_dn=100.0)
    read_var = fit.b + 100.0 * fit.a
    assert abs(read_var - 2.68) < 2 * np.hypot(fit.b_se, 100.0 * fit.a_se)
    assert read_var < 0.24                  # this image: -1.7 +- 14 DN^2
    assert profile.read_noise_dn == pytest.approx(np.sqrt(0.24))
    assert any(f"{read_var:.4g}" in w and "floored" in w for w in profile.extra["calibration_warnings"])


def test_from_image_bit_depth_below_the_container_is_said(tmp_path):
    raw = _demo_raw()
    tifffile.imwrite(tmp_path / "raw.tif", raw)
    profile, _ = calibrate_image(tmp_path / "raw.tif", bit_depth=12, offset_dn=100.0)
    assert profile.bit_depth == 12 and profile.extra["bit_depth_source"] == "given"
    assert any("bit depth 12 (given) is below the file's uint16 container (16 bits)" in w
               for w in profile.extra["calibration_warnings"])
    tifffile.imwrite(tmp_path / "raw8.tif", np.clip(raw // 8, 0, 255).astype(np.uint8))
    assert calibrate_image(tmp_path / "raw8.tif", offset_dn=12.0)[0].bit_depth == 8


def test_descriptor_frames_above_the_declared_bit_depth_are_refused(tmp_path, emva_set, capsys):
    import re

    desc = _variant(tmp_path, emva_set, lambda t: re.sub(r"^n 12 ", "n 8 ", t, count=1, flags=re.M))
    assert "\nn 8 " in desc.read_text()
    with pytest.raises(InputError, match=r"b_000_snap_001.png: values up to \d+, above the 8-bit range the "
                                         r"descriptor declares \(max 255\) \(listed on line \d+ of "
                                         r"EMVA1288_Data.txt\)"):
        read_emva_descriptor(desc)
    err = _cli_error(capsys, "--emva", desc, "-o", tmp_path / "cam.json")
    assert "above the 8-bit range" in err and not (tmp_path / "cam.json").exists()


@pytest.mark.parametrize("line", ["n 0 32 32", "n 40 32 32", "n 12 0 32"])
def test_descriptor_n_line_out_of_range_is_refused(tmp_path, emva_set, line):
    import re

    desc = _variant(tmp_path, emva_set, lambda t: re.sub(r"^n .*$", line, t, count=1, flags=re.M))
    with pytest.raises(InputError, match=r"line \d+: 'n BITS WIDTH HEIGHT' needs 1 to 32 bits"):
        read_emva_descriptor(desc)


@pytest.mark.parametrize("exposures, shown", [([2e-9 * k for k in range(1, 7)], False), (EXPOSURES, True)])
def test_dark_current_is_printed_only_when_the_exposures_resolve_it(tmp_path, exposures, shown):
    from noisestat.calibrate import format_calibration

    sim = CameraSimulator(CameraModel(shape=(32, 32), pattern_seed=1))
    cal = calibrate_series(read_emva_descriptor(sim.write_emva(tmp_path, PHOTONS, exposures, rng=1)))
    se = cal.ptc.extra["dark_current_se_e_per_s"]
    line, = [row for row in format_calibration(cal).splitlines() if row.startswith("dark current")]
    if shown:  # milliseconds: a standard error of a few e-/s, printed with the value
        assert se < 100 and f"± {se:.2g}" in line and line.endswith("e-/s")
    else:      # nanoseconds: a standard error of millions of e-/s says nothing; no number is printed as one
        assert se > 1e5
        assert "not resolved" in line and "exposures 2 ns to 12 ns are too short" in line
        assert f"{cal.ptc.dark_current_e_per_s:.3g} ±" not in line
