"""The volume and OPT demos (noisestat.demo.demo_volume, demo_opt): their scenes, and end to end."""

import json
import shlex

import numpy as np
import pytest

from noisestat.demo import demo_opt, demo_volume
from noisestat._demos3d import (OPT_SIZES, VOLUME_SIZES, opt_codecs, simulate_nuclei_volume, simulate_opt_phantom,
                                sparse_labels_nd, volume_codecs)
from noisestat.errors import InputError, OutputError
from noisestat.io import read_array_info


def test_sparse_labels_keep_their_margins_in_physical_units():
    truth = np.zeros((14, 40, 40), bool)
    truth[4:10, 10:30, 10:30] = True  # 6 planes of 2 um = 12 um, 20 px of 0.5 um = 10 um
    spacing = (2.0, 0.5, 0.5)
    labels = sparse_labels_nd(truth, spacing=spacing, fraction=0.5, inside=2.0, outside=3.0, rng=1)
    assert set(np.unique(labels)) == {0, 1, 2}
    assert not np.any(labels[~truth] == 2) and not np.any(labels[truth] == 1)
    # object: more than 2 um from the nearest voxel outside, i.e. not the first plane (2 um) but the first
    # 4 columns (0.5 to 2 um) in from each face
    obj = np.argwhere(labels == 2)
    assert (obj[:, 0].min(), obj[:, 0].max()) == (5, 8)
    assert (obj[:, 1].min(), obj[:, 1].max()) == (14, 25)
    # background: more than 3 um from the nearest object voxel: from the second plane (4 um) above or below,
    # from the seventh column (3.5 um) beside
    beside = labels[4:10, 10:30]
    assert not np.any(labels[3:11, 10:30, 10:30] == 1) and np.any(labels[2, 10:30, 10:30] == 1)
    assert not np.any(beside[:, :, 4:10] == 1) and np.any(beside[:, :, 3] == 1)


def test_nuclei_volume_is_anisotropic_and_seeded():
    electrons, truth = simulate_nuclei_volume((16, 64, 64), (2.0, 0.5, 0.5), n_objects=3, rng=7)
    again, _ = simulate_nuclei_volume((16, 64, 64), (2.0, 0.5, 0.5), n_objects=3, rng=7)
    assert np.array_equal(electrons, again)
    from scipy import ndimage as ndi

    lab, n = ndi.label(truth)
    assert n == 3
    for box in ndi.find_objects(lab):
        planes, rows = box[0].stop - box[0].start, box[1].stop - box[1].start
        assert rows > 2 * planes  # round in um: 4x as many pixels as planes, give or take the turn
    assert electrons[truth].mean() > 2 * electrons[~truth].mean()


def test_opt_phantom_lies_in_the_circle_and_its_plaques_in_the_organ():
    density, truth = simulate_opt_phantom(8, 48, n_plaques=4, rng=3)
    assert density.shape == truth.shape == (8, 48, 48)
    _, a, b = np.ogrid[:8, :48, :48]
    outside = (a - 23.5) ** 2 + (b - 23.5) ** 2 >= 23.0 ** 2
    assert np.all(density[np.broadcast_to(outside, density.shape)] == 0)
    assert truth.any() and density[truth].min() > density[~truth].max() / 2


def test_unknown_size_and_unsafe_output_are_refused_before_the_work(tmp_path):
    with pytest.raises(InputError, match=r"demo size must be one of full, quick; got 'huge'"):
        demo_volume(tmp_path / "v", size="huge")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(OutputError):
        demo_opt(mine, size="quick")
    assert (mine / "notes.txt").read_text() == "keep" and sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


def _repeat_command(demo, out, tmp_path, summary):
    """demo.json's command, run by the command line into another folder, gives the same scores."""
    from noisestat.cli import main

    words = shlex.split(demo["command"])
    assert words[0] == "noisestat" and words[-2:] == ["-o", str(out / "assessment")]
    assert main(words[1:-1] + [str(tmp_path / "again"), "--quiet"]) == 0
    again = json.loads((tmp_path / "again" / "summary.json").read_text())
    for a, b in zip(summary["codecs"], again["codecs"], strict=True):
        assert (a["spec"], a["outcome"], a["global"]) == (b["spec"], b["outcome"], b["global"])


def _check_demo(out, image_name, codecs, result):
    s = json.loads((out / "assessment" / "summary.json").read_text())
    assert [c["spec"] for c in s["codecs"]] == list(codecs)
    by = {c["spec"]: c for c in s["codecs"]}
    assert by["lossless"]["outcome"] == "tolerable"
    for f in (image_name, "second.tif", "labels.tif", "camera.json", "ptc.png", "demo.json", "assessment/report.html"):
        assert (out / f).is_file(), f
    demo = json.loads((out / "demo.json").read_text())
    assert demo == result.provenance["demo"]
    assert demo["calibrated_gain_dn_per_e"] == pytest.approx(0.46, rel=0.03)
    assert s["provenance"]["inputs"]["image"]["path"] == str(out / image_name)
    assert s["n_objects_raw"] > 0
    return s, demo


# The quick runs take tens of seconds, most of it the report's figures: marked slow with the full demos.
@pytest.mark.slow
def test_volume_demo_quick(tmp_path):
    out = tmp_path / "volume"
    result = demo_volume(out, size="quick", seed=0)
    s, demo = _check_demo(out, "volume.tif", volume_codecs(out / "second.tif"), result)
    data, info = read_array_info(out / "volume.tif")
    assert data.shape == VOLUME_SIZES["quick"]["shape"] and data.dtype == np.uint16
    assert info.spacing == pytest.approx(VOLUME_SIZES["quick"]["spacing"])
    assert s["provenance"]["spacing"] == pytest.approx(list(VOLUME_SIZES["quick"]["spacing"]))
    # the second acquisition is another draw of the same scene: not the raw, yet close to it
    second, _ = read_array_info(out / "second.tif")
    assert not np.array_equal(second, data)
    assert abs(float(second.mean()) - float(data.mean())) < 0.01 * float(data.mean())
    assert demo["command"].startswith(f"noisestat assess {out / 'volume.tif'} --camera ")
    _repeat_command(demo, out, tmp_path, s)


@pytest.mark.slow
def test_opt_demo_quick(tmp_path):
    out = tmp_path / "opt"
    result = demo_opt(out, size="quick", seed=0)
    s, demo = _check_demo(out, "projections.tif", opt_codecs(out / "second.tif"), result)
    q = OPT_SIZES["quick"]
    projections, _ = read_array_info(out / "projections.tif")
    assert projections.shape == (q["angles"], q["rows"], q["width"])
    labels, info = read_array_info(out / "labels.tif")
    assert labels.shape == (q["rows"], q["width"], q["width"]) and set(np.unique(labels)) == {0, 1, 2}
    rec = s["provenance"]["reconstruction"]
    assert rec["angles"]["count"] == q["angles"] and rec["angles"]["default_360_k_over_n"]
    assert "--reconstruct fbp" in demo["command"]
    # the forest saw the reconstruction's isotropic voxels, read from the projections' pixel size
    assert s["provenance"]["spacing"] == pytest.approx([q["voxel_um"]] * 3)
    _repeat_command(demo, out, tmp_path, s)


@pytest.mark.slow
def test_volume_demo_full(tmp_path):
    out = tmp_path / "volume"
    result = demo_volume(out, jobs=2)
    s, demo = _check_demo(out, "volume.tif", volume_codecs(out / "second.tif"), result)
    assert s["provenance"]["image_shape"] == list(VOLUME_SIZES["full"]["shape"])
    assert s["n_objects_raw"] >= demo["true_objects"] // 2


@pytest.mark.slow
def test_opt_demo_full(tmp_path):
    out = tmp_path / "opt"
    result = demo_opt(out, jobs=2)
    s, demo = _check_demo(out, "projections.tif", opt_codecs(out / "second.tif"), result)
    f = OPT_SIZES["full"]
    assert s["provenance"]["image_shape"] == [f["angles"], f["rows"], f["width"]]
    assert s["n_objects_raw"] >= demo["true_objects"] // 2


@pytest.mark.slow
def test_the_opt_demo_runs_from_the_command_line(tmp_path, capsys):
    from noisestat.cli import main

    assert main(["demo", "--opt", "--quiet", "-o", str(tmp_path / "d")]) == 0
    out = capsys.readouterr().out
    assert "lossless" in out and (tmp_path / "d" / "assessment" / "summary.json").is_file()
    summary = json.loads((tmp_path / "d" / "assessment" / "summary.json").read_text())
    assert summary["provenance"]["reconstruction"]["filter"] == "ramp"
    # the labels of the reconstruction carry its voxel size, z included
    assert summary["provenance"]["pixel_size"]["z"] is not None
