"""Label volumes and float volumes written as ImageJ hyperstacks with their voxel size
(noisestat/io/_hyperstacks.py), and read back with noisestat.io's own reader."""

import numpy as np
import pytest
import tifffile

from noisestat.errors import InputError, OutputError
from noisestat.io import PixelSize, read_array_info, read_image_info, write_float_map, write_label_image

VOXEL = PixelSize(0.5, 0.25, "µm", z=2.0)


def _labels(shape=(9, 16, 20), top=500, seed=0):
    return np.random.default_rng(seed).integers(0, top + 1, size=shape)


def test_label_volume_round_trips_shape_dtype_and_voxel_size(tmp_path):
    labels = _labels()
    path = tmp_path / "labels.tif"
    write_label_image(path, labels, pixel_size=VOXEL)
    data, info = read_array_info(path)
    assert data.shape == (9, 16, 20) and data.dtype == np.uint16
    assert np.array_equal(data, labels)
    assert info.ndim == 3 and info.axes == "ZYX"
    assert info.pixel_size == PixelSize(0.5, 0.25, "µm", z=2.0)
    assert info.spacing == pytest.approx((2.0, 0.25, 0.5))
    # the raw-image reader sees the same file the same way
    _, raw_info = read_image_info(path)
    assert raw_info.spacing == info.spacing


def test_label_volume_is_an_imagej_hyperstack_fiji_calibrates(tmp_path):
    path = tmp_path / "labels.tif"
    write_label_image(path, _labels(), pixel_size=VOXEL)
    with tifffile.TiffFile(path) as tif:
        assert tif.is_imagej and tif.series[0].axes == "ZYX"
        meta = tif.imagej_metadata
        assert meta["slices"] == 9 and meta["spacing"] == pytest.approx(2.0)
        assert meta["unit"] in ("µm", "\\u00B5m")
        num, den = tif.pages.first.tags["XResolution"].value
        ynum, yden = tif.pages.first.tags["YResolution"].value
        assert num / den == pytest.approx(2.0) and ynum / yden == pytest.approx(4.0)  # pixels per µm


def test_float_volume_round_trips_with_nan_and_infinity(tmp_path):
    values = np.random.default_rng(1).normal(size=(8, 12, 10))
    values[0, 0, 0], values[1, 2, 3], values[2, 3, 4] = np.nan, np.inf, -np.inf
    path = tmp_path / "eps.tif"
    write_float_map(path, values, pixel_size={"x": 0.3, "y": 0.3, "unit": "nm", "z": 0.9})
    data, info = read_array_info(path)
    assert data.shape == (8, 12, 10) and data.dtype == np.float32
    assert np.array_equal(data, values.astype(np.float32), equal_nan=True)
    assert info.spacing == pytest.approx((0.9, 0.3, 0.3)) and info.pixel_size.unit == "nm"
    with tifffile.TiffFile(path) as tif:
        assert tif.is_imagej and tif.series[0].axes == "ZYX"


def test_plane_written_with_yx_and_no_slice_spacing(tmp_path):
    path = tmp_path / "plane.tif"
    write_label_image(path, _labels((16, 20), top=7), pixel_size=VOXEL)
    data, info = read_array_info(path)
    assert data.shape == (16, 20) and info.ndim == 2 and info.spacing == pytest.approx((0.25, 0.5))
    with tifffile.TiffFile(path) as tif:
        assert tif.series[0].axes == "YX" and "spacing" not in tif.imagej_metadata


def test_ids_beyond_16_bits_are_uint32_ome_tiff_with_the_voxel_size(tmp_path):
    labels = _labels(top=3)
    labels[4, 5, 6] = 70000
    path = tmp_path / "big.tif"
    write_label_image(path, labels, pixel_size=VOXEL)
    data, info = read_array_info(path)
    assert data.dtype == np.uint32 and np.array_equal(data, labels)
    assert info.axes == "ZYX" and info.spacing == pytest.approx((2.0, 0.25, 0.5))
    with tifffile.TiffFile(path) as tif:
        assert tif.is_ome
    # the same labels give the same bytes (the OME UUID follows the content)
    again = tmp_path / "again.tif"
    write_label_image(again, labels, pixel_size=VOXEL)
    assert again.read_bytes() == path.read_bytes()


def test_without_a_pixel_size_the_file_holds_none(tmp_path):
    path = tmp_path / "labels.tif"
    write_label_image(path, _labels())
    data, info = read_array_info(path)
    assert data.shape == (9, 16, 20) and info.pixel_size is None and info.spacing is None


@pytest.mark.parametrize("bad, message", [
    (np.zeros((2, 9, 16, 20), np.uint8), "must be 2D or 3D"),
    (np.full((9, 16, 20), 0.5), "integer ids"),
    (np.full((9, 16, 20), -1), "0 or more"),
])
def test_bad_labels_are_refused_and_nothing_is_written(tmp_path, bad, message):
    path = tmp_path / "labels.tif"
    with pytest.raises(ValueError, match=message):
        write_label_image(path, bad)
    assert not path.exists()


def test_bad_pixel_size_is_refused(tmp_path):
    with pytest.raises(ValueError, match="positive length"):
        write_float_map(tmp_path / "m.tif", np.zeros((8, 8)), pixel_size={"x": 0.0, "y": 1.0, "unit": "µm"})
    with pytest.raises(ValueError, match="missing unit"):
        write_float_map(tmp_path / "m.tif", np.zeros((8, 8)), pixel_size={"x": 1.0, "y": 1.0})
    assert not list(tmp_path.iterdir())


def test_a_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "labels.tif"
    write_label_image(path, _labels(seed=2))
    before = path.read_bytes()

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("noisestat.io._atomic.os.replace", full_disk)
    with pytest.raises(OutputError, match="labels.tif: could not write the file"):
        write_label_image(path, _labels(seed=3))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.tif"]


def test_read_array_info_names_the_file_it_cannot_read(tmp_path):
    bad = tmp_path / "notes.tif"
    bad.write_text("not an image")
    with pytest.raises(InputError, match=r"notes.tif: not a readable image") as err:
        read_array_info(bad)
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match=r"missing.tif: no such file"):
        read_array_info(tmp_path / "missing.tif")
