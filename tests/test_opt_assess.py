"""Optical projection tomography through `noisestat assess --reconstruct fbp`: the projection stack as the
camera wrote it, replicas and codecs on the projections, labels in the reconstruction's geometry, the
reconstruction's settings in the provenance, operator-level eps on both domains, and the one-line errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import tifffile
from skimage.transform import radon

from noisestat.cli import main

_ROWS, _WIDTH, _ANGLES = 6, 48, 60


@pytest.fixture(scope="module")
def opt_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("opt")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:_WIDTH, :_WIDTH] - _WIDTH / 2 + 0.5
    theta = np.linspace(0, 360, _ANGLES, endpoint=False)
    volume = np.zeros((_ROWS, _WIDTH, _WIDTH))
    discs = [(-10, -10, 4), (10, -10, 5), (-10, 10, 3.5), (10, 10, 4.5)]  # apart from one another
    for r in range(_ROWS):
        for cy, cx, rad in discs:  # cylinders along the rotation axis
            volume[r][(yy - cy) ** 2 + (xx - cx) ** 2 <= rad * rad] = 1
    projections = np.transpose(np.stack([radon(v, theta=theta, circle=True) for v in volume]), (2, 0, 1))
    for name, seed in (("a", 1), ("b", 2)):
        r = np.random.default_rng(seed)
        counts = 100 + 0.5 * (r.poisson(20 + projections * 100) + r.normal(0, 2, projections.shape))
        tifffile.imwrite(folder / f"proj_{name}.tif", np.clip(np.rint(counts), 0, 65535).astype(np.uint16))
    labels = np.zeros(volume.shape, np.uint8)
    pick = rng.random(volume.shape)
    inside = (yy ** 2 + xx ** 2) <= 20 ** 2
    labels[(volume == 0) & inside & (pick < 0.05)] = 1
    labels[(volume == 1) & (pick < 0.3)] = 2
    tifffile.imwrite(folder / "labels.tif", labels)
    (folder / "camera.json").write_text(json.dumps({"gain_dn_per_e": 0.5, "offset_dn": 100, "read_noise_dn": 1.03,
                                                    "bit_depth": 16}))
    return folder


def _assess(folder, out, *extra):
    return main(["assess", str(folder / "proj_a.tif"), "--reconstruct", "fbp", "--camera", str(folder / "camera.json"),
                 "--labels", str(folder / "labels.tif"), "--codec", "lossless",
                 "--codec", f"file:path={folder / 'proj_b.tif'}", "--replicas", "3", "--quiet", "-o", str(out),
                 *map(str, extra)])


@pytest.mark.slow
def test_a_projection_stack_is_assessed_through_its_reconstruction(opt_files, tmp_path, capsys):
    assert _assess(opt_files, tmp_path / "out", "--operators", "--threshold", "2=0.5") == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["n_objects_raw"] == 4
    rec = summary["provenance"]["reconstruction"]
    assert rec["filter"] == "ramp" and rec["angles"]["count"] == _ANGLES and rec["center_px"] == _WIDTH // 2
    assert summary["provenance"]["image_shape"] == [_ANGLES, _ROWS, _WIDTH]
    assert set(summary["raw"]) == {"N_tot", "V_tot", "SA_tot"}
    lossless = summary["codecs"][0]
    assert lossless["outcome"] == "tolerable"
    assert all(v["eps"] == 0 for v in lossless["global"].values())
    with open(tmp_path / "out" / "objects.csv") as handle:
        rows = [r for r in csv.DictReader(handle) if r["codec"] == "lossless"]
    assert rows and all(float(r["eps"]) == 0 for r in rows if r["eps"] not in ("", "nan"))
    with open(tmp_path / "out" / "operators.csv") as handle:
        operators = list(csv.DictReader(handle))
    assert {r["domain"] for r in operators} == {"projections", "reconstruction"}
    assert all(float(r["mean_eps"]) == 0 and float(r["frac_abs_eps_lt_1"]) == 1 for r in operators
               if r["codec"] == "lossless")
    # the labels live in the reconstruction: (rows, width, width)
    with tifffile.TiffFile(tmp_path / "out" / "labels" / "00_raw.tif") as tif:
        assert tif.asarray().shape == (_ROWS, _WIDTH, _WIDTH)


def test_reconstruction_settings_without_reconstruct_are_refused(opt_files, tmp_path, capsys):
    code = main(["assess", str(opt_files / "proj_a.tif"), "--camera", str(opt_files / "camera.json"),
                 "--labels", str(opt_files / "labels.tif"), "--codec", "lossless", "--center", "20",
                 "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code != 0 and "--center sets up a reconstruction" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_labels_in_the_projections_geometry_are_refused(opt_files, tmp_path, capsys):
    wrong = np.zeros((_ANGLES, _ROWS, _WIDTH), np.uint8)
    wrong[0, 0, :4] = 1
    wrong[0, 1, :4] = 2
    tifffile.imwrite(tmp_path / "wrong.tif", wrong)
    code = main(["assess", str(opt_files / "proj_a.tif"), "--reconstruct", "fbp", "--camera",
                 str(opt_files / "camera.json"), "--labels", str(tmp_path / "wrong.tif"), "--codec", "lossless",
                 "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code != 0 and "wrong.tif" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_a_bad_threshold_is_one_line(opt_files, tmp_path, capsys):
    code = _assess(opt_files, tmp_path / "o", "--threshold", "3=0.5")
    err = capsys.readouterr().err
    assert code != 0 and "class 3" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_wrong_angle_count_is_one_line(opt_files, tmp_path, capsys):
    (tmp_path / "angles.txt").write_text(" ".join(str(a) for a in range(_ANGLES - 1)))
    code = _assess(opt_files, tmp_path / "o", "--angles", tmp_path / "angles.txt")
    err = capsys.readouterr().err
    assert code != 0 and "angles.txt" in err and f"expected {_ANGLES}" in err and "Traceback" not in err


@pytest.mark.slow
def test_a_model_trained_on_the_written_reconstruction_assesses_the_projections(opt_files, tmp_path, capsys):
    """docs/opt.md's route to --model: reconstruct with the camera, train the forest on that volume (reals),
    assess the projections with the model: the same values and voxel size as the assessment sees."""
    folder = opt_files
    # 8 rows (a volume to train on has at least 8 slices): the 6 rows and 2 of them again, labels likewise
    stack = tifffile.imread(folder / "proj_a.tif")
    tifffile.imwrite(tmp_path / "proj.tif", np.concatenate([stack, stack[:, :2]], axis=1), imagej=True,
                     resolution=(1 / 5.0, 1 / 5.0), metadata={"axes": "ZYX", "unit": "um"})
    labels = tifffile.imread(folder / "labels.tif")
    tifffile.imwrite(tmp_path / "labels.tif", np.concatenate([labels, labels[:2]], axis=0))
    rec, model = tmp_path / "rec.tif", tmp_path / "model.npz"
    assert main(["reconstruct", str(tmp_path / "proj.tif"), "--camera", str(folder / "camera.json"), "-o", str(rec),
                 "--quiet"]) == 0
    with tifffile.TiffFile(rec) as tif:
        assert tif.imagej_metadata["spacing"] == 5.0 and tif.pages[0].tags["XResolution"].value == (1, 5)
    assert main(["train", str(rec), "--labels", str(tmp_path / "labels.tif"), "-o", str(model)]) == 0
    out = tmp_path / "out"
    assert main(["assess", str(tmp_path / "proj.tif"), "--reconstruct", "fbp", "--camera", str(folder / "camera.json"),
                 "--model", str(model), "--codec", "lossless", "--replicas", "3", "--quiet", "-o", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_objects_raw"] == 4 and summary["provenance"]["spacing"] == [5.0, 5.0, 5.0]
    assert summary["provenance"]["pixel_size"] == {"x": 5.0, "y": 5.0, "unit": "µm", "z": 5.0}
    assert summary["codecs"][0]["outcome"] == "tolerable"


@pytest.mark.parametrize("flag, value", [("--filter", "foo"), ("--interpolation", "nearest")])
def test_reconstruction_filter_or_interpolation_without_reconstruct_are_refused(opt_files, tmp_path, capsys, flag,
                                                                                 value):
    code = main(["assess", str(opt_files / "proj_a.tif"), "--camera", str(opt_files / "camera.json"),
                 "--labels", str(opt_files / "labels.tif"), "--codec", "lossless", flag, value,
                 "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code != 0 and f"{flag} sets up a reconstruction" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()
