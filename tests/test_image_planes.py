"""Reading one 2D plane of multi-channel files and stacks, and their physical pixel size (volumes:
test_volumes_io.py)."""

import json

import imagecodecs
import numpy as np
import pytest
import tifffile

from noisestat import InputError, read_image, read_image_info
from noisestat.cli import main
from noisestat.simulate import acquire, simulate_scene, sparse_labels

from conftest import CAMERA


def _planes(n, shape=(16, 20)):
    """n distinct planes: plane k is filled with k + 1, so a wrong pick shows."""
    return np.stack([np.full(shape, k + 1, np.uint16) for k in range(n)])


def test_cyx_channel_is_picked(tmp_path):
    path = tmp_path / "cyx.tif"
    tifffile.imwrite(path, _planes(3), photometric="minisblack", metadata={"axes": "CYX"})
    image, info = read_image_info(path, channel=1)
    assert image.shape == (16, 20) and np.all(image == 2)
    assert info.axes == "CYX" and info.shape == (3, 16, 20) and info.channel == 1 and info.pixel_size is None


def test_zyx_plane_is_picked(tmp_path):
    path = tmp_path / "zyx.tif"
    tifffile.imwrite(path, _planes(4), photometric="minisblack", metadata={"axes": "ZYX"})
    assert np.all(read_image(path, plane=3) == 4)


def test_imagej_hyperstack_plane_and_channel(tmp_path):
    t, z, c = 2, 3, 2
    data = np.arange(1, t * z * c + 1, dtype=np.uint16).reshape(t, z, c, 1, 1) * np.ones((1, 1, 1, 10, 12), np.uint16)
    path = tmp_path / "hyper.tif"
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "TZCYX"})
    image, info = read_image_info(path, channel=1, plane=1 * z + 2)  # plane flattens T and Z in file order
    assert info.axes == "TZCYX"
    assert np.all(image == data[1, 2, 1])


def test_rgb_png_needs_channel(tmp_path):
    rgb = np.stack([np.full((12, 14), v, np.uint8) for v in (10, 20, 30)], axis=-1)
    path = tmp_path / "rgb.png"
    path.write_bytes(imagecodecs.png_encode(rgb))
    with pytest.raises(InputError, match=r"rgb\.png: holds 3 2D planes \(axes YXS.*--channel N \(0 to 2\)"):
        read_image(path)
    assert np.all(read_image(path, channel=2) == 30)


def test_several_planes_without_selection_are_refused(tmp_path):
    path = tmp_path / "czyx.tif"
    tifffile.imwrite(path, np.ones((2, 3, 10, 10), np.uint16), photometric="minisblack", metadata={"axes": "CZYX"})
    with pytest.raises(InputError) as err:
        read_image(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message and "CZYX" in message and "(2, 3, 10, 10)" in message
    assert "--channel N (0 to 1)" in message and "--plane N (0 to 2)" in message
    with pytest.raises(InputError, match=r"too small.*--plane N \(0 to 2\)"):
        read_image(path, channel=0)  # a channel alone gives a 3-slice volume: too thin, a plane is asked for
    path = tmp_path / "tcyx.tif"
    tifffile.imwrite(path, np.ones((3, 2, 10, 10), np.uint16), photometric="minisblack", metadata={"axes": "TCYX"})
    with pytest.raises(InputError, match=r"holds 6 2D planes \(axes TCYX.*--plane N \(0 to 2\)"):
        read_image(path, channel=0)  # time points are never a volume: a channel alone is not enough


@pytest.mark.parametrize("kw, expected", [({"channel": 3}, "--channel 3 is out of range; this file has 3 channel(s): 0 to 2"),
                                          ({"channel": -1}, "--channel -1 is out of range"),
                                          ({"channel": 0, "plane": 1}, "--plane 1 is out of range; this file has 1 plane(s): 0 to 0")])
def test_out_of_range_is_refused(tmp_path, kw, expected):
    path = tmp_path / "cyx.tif"
    tifffile.imwrite(path, _planes(3), photometric="minisblack", metadata={"axes": "CYX"})
    with pytest.raises(InputError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        read_image(path, **kw)


def test_single_plane_file_reads_as_before(tmp_path):
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, _planes(1)[0])
    image, info = read_image_info(path)
    assert image.shape == (16, 20) and info.channel is None and info.plane is None


def test_ome_physical_size(tmp_path):
    path = tmp_path / "cells.ome.tif"
    tifffile.imwrite(path, _planes(2), ome=True, photometric="minisblack",
                     metadata={"axes": "CYX", "PhysicalSizeX": 0.65, "PhysicalSizeY": 0.7,
                               "PhysicalSizeXUnit": "µm", "PhysicalSizeYUnit": "µm"})
    _, info = read_image_info(path, channel=0)
    assert info.pixel_size.to_dict() == {"x": 0.65, "y": 0.7, "unit": "µm"}


def test_resolution_tags_centimetre_and_imagej_unit(tmp_path):
    path = tmp_path / "cm.tif"
    tifffile.imwrite(path, _planes(1)[0], resolution=(1e4 / 0.5, 1e4 / 0.25), resolutionunit="CENTIMETER")
    size = read_image_info(path)[1].pixel_size
    assert size.unit == "µm" and size.x == pytest.approx(0.5) and size.y == pytest.approx(0.25)
    path = tmp_path / "ij.tif"
    tifffile.imwrite(path, _planes(1)[0], imagej=True, resolution=(1 / 0.2, 1 / 0.2), metadata={"unit": "micron"})
    size = read_image_info(path)[1].pixel_size
    assert size.unit == "µm" and size.x == pytest.approx(0.2) and size.y == pytest.approx(0.2)


def test_assess_channel_end_to_end(tmp_path):
    electrons, truth = simulate_scene((96, 96), rng=5)
    raw = acquire(electrons, CAMERA, 6)
    other = np.full_like(raw, 7)  # channel 0 is a flat image: picking it would fail the assessment
    path = tmp_path / "two.ome.tif"
    tifffile.imwrite(path, np.stack([other, raw]), ome=True, photometric="minisblack",
                     metadata={"axes": "CYX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5, "PhysicalSizeXUnit": "µm"})
    tifffile.imwrite(tmp_path / "labels.tif", sparse_labels(truth, rng=7))
    (tmp_path / "camera.json").write_text(json.dumps({"gain_dn_per_e": CAMERA.gain_dn_per_e,
                                                      "offset_dn": CAMERA.offset_dn,
                                                      "read_noise_dn": CAMERA.read_noise_dn,
                                                      "bit_depth": CAMERA.bit_depth}))
    out = tmp_path / "out"
    assert main([ "assess", str(path), "--camera", str(tmp_path / "camera.json"), "--labels",
                 str(tmp_path / "labels.tif"), "--codec", "lossless", "--replicas", "2", "--channel", "1",
                 "--quiet", "-o", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    prov = summary["provenance"]
    assert prov["inputs"]["image"]["channel"] == 1 and prov["inputs"]["image"]["plane"] is None
    assert prov["pixel_size"] == {"x": 0.5, "y": 0.5, "unit": "µm"}
    with tifffile.TiffFile(out / "labels" / "00_raw.tif") as tif:
        num, den = tif.pages.first.tags["XResolution"].value
        assert den / num == pytest.approx(0.5) and tif.imagej_metadata["unit"] in ("µm", "\\u00B5m")
