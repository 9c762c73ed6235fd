"""Reading 3D volumes (TIFF, OME-TIFF, ImageJ, plain stacks, OME-Zarr), lazily or whole, their voxel
size, the PNG pixel size, 3D labels and 3D label images written back."""

import json
import pickle
import struct
import sys
import zlib

import imagecodecs
import numpy as np
import pytest
import tifffile

from noisestat import InputError
from noisestat.io import PixelSize, open_image, read_array_info, read_image, read_image_info, read_labels, spacing
from noisestat.io._readers import check_labels, check_raw_image
from noisestat.report import write_label_image


def _volume(shape=(9, 16, 20), seed=0):
    """Distinct values everywhere (a wrong slice, transposition or plane shows)."""
    return np.random.default_rng(seed).integers(1, 60000, size=shape, dtype=np.uint16)


def _one_line(err) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


# --------------------------------------------------------------------------------------------------
# TIFF volumes
# --------------------------------------------------------------------------------------------------


def test_ome_tiff_volume_and_voxel_size(tmp_path):
    data = _volume()
    path = tmp_path / "sheet.ome.tif"
    # Z given in nm: read back in the unit of x (µm)
    tifffile.imwrite(path, data, ome=True, photometric="minisblack",
                     metadata={"axes": "ZYX", "PhysicalSizeX": 0.65, "PhysicalSizeY": 0.65, "PhysicalSizeZ": 2000.0,
                               "PhysicalSizeXUnit": "µm", "PhysicalSizeYUnit": "µm", "PhysicalSizeZUnit": "nm"})
    image, info = read_image_info(path)
    assert image.shape == (9, 16, 20) and np.array_equal(image, data)
    assert info.ndim == 3 and info.axes == "ZYX" and info.plane is None
    assert info.pixel_size.to_dict() == {"x": 0.65, "y": 0.65, "unit": "µm", "z": pytest.approx(2.0)}
    assert info.spacing == pytest.approx((2.0, 0.65, 0.65)) and spacing(info) == info.spacing


def test_imagej_hyperstack_volume_of_one_channel(tmp_path):
    data = np.stack([_volume(seed=1), _volume(seed=2)], axis=1)  # ZCYX
    path = tmp_path / "ij.tif"
    tifffile.imwrite(path, data, imagej=True, resolution=(1 / 0.3, 1 / 0.3),
                     metadata={"axes": "ZCYX", "spacing": 1.5, "unit": "micron"})
    image, info = read_image_info(path, channel=1)
    assert info.axes == "ZCYX" and info.ndim == 3 and np.array_equal(image, data[:, 1])
    assert info.spacing == pytest.approx((1.5, 0.3, 0.3)) and info.pixel_size.unit == "µm"


@pytest.mark.parametrize("how, axes", [({}, "QYX"), ({"metadata": None}, "IYX"),
                                       ({"compression": "zlib", "metadata": {"axes": "ZYX"}}, "ZYX")])
def test_plain_stacks_are_volumes(tmp_path, how, axes):
    data = _volume()
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, data, **how)
    image, info = read_image_info(path)
    assert info.axes == axes and info.ndim == 3 and np.array_equal(image, data)
    assert info.pixel_size is None and info.spacing is None


def test_plane_still_reads_one_2d_plane_without_depth(tmp_path):
    data = _volume()
    path = tmp_path / "v.ome.tif"
    tifffile.imwrite(path, data, ome=True, metadata={"axes": "ZYX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5,
                                                     "PhysicalSizeZ": 3.0})
    image, info = read_image_info(path, plane=4)
    assert image.shape == (16, 20) and np.array_equal(image, data[4]) and info.ndim == 2 and info.plane == 4
    assert info.pixel_size.to_dict() == {"x": 0.5, "y": 0.5, "unit": "µm"}  # as for any 2D read
    assert info.spacing == (0.5, 0.5)


def test_time_points_still_need_a_plane(tmp_path):
    path = tmp_path / "tzyx.tif"
    tifffile.imwrite(path, np.ones((2, 9, 16, 20), np.uint16), photometric="minisblack", metadata={"axes": "TZYX"})
    with pytest.raises(InputError) as err:
        read_image(path)
    message = _one_line(err)
    assert str(path) in message and "TZYX" in message and "(2, 9, 16, 20)" in message
    assert "--plane N (0 to 17)" in message
    assert read_image(path, plane=9 + 3).shape == (16, 20)  # t = 1, z = 3


def test_channels_of_a_volume_need_a_channel(tmp_path):
    path = tmp_path / "czyx.tif"
    tifffile.imwrite(path, np.ones((2, 9, 16, 20), np.uint16), photometric="minisblack", metadata={"axes": "CZYX"})
    with pytest.raises(InputError) as err:
        read_image(path)
    message = _one_line(err)
    assert str(path) in message and "CZYX" in message and "--channel N (0 to 1)" in message
    assert "9-slice volume" in message and "--plane N (0 to 8)" in message


def test_too_thin_volume_is_refused_with_the_plane_hint(tmp_path):
    path = tmp_path / "thin.tif"
    tifffile.imwrite(path, _volume((3, 16, 20)), photometric="minisblack", metadata={"axes": "ZYX"})
    with pytest.raises(InputError) as err:
        read_image(path)
    message = _one_line(err)
    assert str(path) in message and "too small" in message and "--plane N (0 to 2)" in message
    assert read_image(path, plane=2).shape == (16, 20)


def test_float_volume_is_refused(tmp_path):
    path = tmp_path / "float.tif"
    tifffile.imwrite(path, _volume().astype(np.float32), metadata={"axes": "ZYX"})
    for reader in (read_image, open_image):
        with pytest.raises(InputError) as err:
            reader(path)
        assert str(path) in _one_line(err) and "integer" in str(err.value) and "float32" in str(err.value)


# --------------------------------------------------------------------------------------------------
# Lazy reads
# --------------------------------------------------------------------------------------------------


def test_open_uncompressed_tiff_is_memory_mapped(tmp_path, monkeypatch):
    data = np.stack([_volume(seed=3), _volume(seed=4)], axis=1)  # ZCYX
    path = tmp_path / "raw.tif"
    tifffile.imwrite(path, data, photometric="minisblack", metadata={"axes": "ZCYX"})

    def no_eager_read(*args, **kwargs):
        raise AssertionError("the whole series was read")

    monkeypatch.setattr(tifffile.TiffPageSeries, "asarray", no_eager_read)
    monkeypatch.setattr(tifffile.TiffFile, "asarray", no_eager_read)
    view, info = open_image(path, channel=1)
    assert view.shape == (9, 16, 20) and view.ndim == 3 and view.dtype == np.uint16 and info.ndim == 3
    assert np.array_equal(view[2:5, 3:9, ::3], data[2:5, 1, 3:9, ::3])
    assert np.array_equal(view[-1, 4], data[-1, 1, 4]) and np.array_equal(view[..., 7], data[:, 1, :, 7])
    again = pickle.loads(pickle.dumps(view))
    assert len(pickle.dumps(view)) < data.nbytes // 10  # a recipe, not the pixels
    assert np.array_equal(np.asarray(again), data[:, 1])
    with pytest.raises(IndexError):
        view[9]


def test_open_compressed_tiff_decodes_only_touched_pages(tmp_path, monkeypatch):
    data = _volume()
    path = tmp_path / "zlib.tif"
    tifffile.imwrite(path, data, compression="zlib", metadata={"axes": "ZYX"})
    pages = []
    original = tifffile.TiffFile.asarray

    def counting(self, key=None, **kwargs):
        pages.append(key)
        return original(self, key, **kwargs)

    monkeypatch.setattr(tifffile.TiffFile, "asarray", counting)
    view, info = open_image(path)
    assert pages == [] and info.ndim == 3
    assert np.array_equal(view[3:6, 2:7, 5], data[3:6, 2:7, 5])
    assert sorted(pages) == [3, 4, 5]


# --------------------------------------------------------------------------------------------------
# OME-Zarr
# --------------------------------------------------------------------------------------------------


def _write_ome_zarr(path, data, *, zarr_format, axes="czyx", scale=(1.0, 2.0, 0.5, 0.5), chunks=(1, 3, 8, 10),
                    units=None, levels=2, dtype=None):
    """An OME-Zarr image written with zarr, its multiscales metadata written here (NGFF 0.4 for the
    zarr v2 format, 0.5 for v3): every level ``s`` holds the data subsampled by 2**s in y and x."""
    zarr = pytest.importorskip("zarr")
    group = zarr.open_group(str(path), mode="w", zarr_format=zarr_format)
    units = units or {"z": "micrometer", "y": "micrometer", "x": "micrometer"}
    datasets = []
    for s in range(levels):
        level = data[..., :: 2 ** s, :: 2 ** s]
        array = group.create_array(str(s), shape=level.shape, chunks=chunks, dtype=dtype or level.dtype)
        array[...] = level
        factor = [2.0 ** s if a in "yx" else 1.0 for a in axes]
        datasets.append({"path": str(s), "coordinateTransformations": [
            {"type": "scale", "scale": [f * v for f, v in zip(factor, scale)]}]})
    kinds = {"t": "time", "c": "channel"}
    multiscale = {"name": "image", "axes": [{"name": a, "type": kinds.get(a, "space"),
                                             **({"unit": units[a]} if a in units else {})} for a in axes],
                  "datasets": datasets}
    if zarr_format == 2:
        group.attrs["multiscales"] = [{"version": "0.4", **multiscale}]
    else:
        group.attrs["ome"] = {"version": "0.5", "multiscales": [multiscale]}
    return path


def _count_chunk_reads(monkeypatch):
    from zarr.storage import LocalStore

    keys = []
    original = LocalStore.get

    async def get(self, key, *args, **kwargs):
        keys.append(key)
        return await original(self, key, *args, **kwargs)

    monkeypatch.setattr(LocalStore, "get", get)
    return keys


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_ome_zarr_volume_is_read_lazily(tmp_path, monkeypatch, zarr_format):
    data = np.stack([_volume(seed=5), _volume(seed=6)])  # CZYX, 2 x 9 x 16 x 20
    path = _write_ome_zarr(tmp_path / "img.ome.zarr", data, zarr_format=zarr_format)
    keys = _count_chunk_reads(monkeypatch)
    view, info = open_image(path, channel=1)
    assert info.axes == "CZYX" and info.shape == (2, 9, 16, 20) and info.ndim == 3 and info.channel == 1
    assert view.shape == (9, 16, 20) and view.chunks == (3, 8, 10)
    assert info.pixel_size.to_dict() == {"x": 0.5, "y": 0.5, "unit": "µm", "z": 2.0}
    assert info.spacing == (2.0, 0.5, 0.5)
    chunk_keys = [k for k in keys if not k.endswith((".zarray", ".zattrs", ".zgroup", "zarr.json"))]
    assert chunk_keys == []  # opening reads metadata only
    keys.clear()
    region = view[0:3, 8:16, 10:20]  # exactly one chunk of channel 1
    assert np.array_equal(region, data[1, 0:3, 8:16, 10:20])
    sep = "/" if zarr_format == 3 else "."
    assert [k for k in keys if not k.endswith(("zarr.json", ".zarray", ".zattrs"))] == \
           [("c/" if zarr_format == 3 else "") + sep.join(["1", "0", "1", "1"])]
    monkeypatch.undo()
    image, eager = read_image_info(path, channel=1)
    assert np.array_equal(image, data[1]) and eager == info


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_ome_zarr_plane_and_2d(tmp_path, zarr_format):
    data = np.stack([_volume(seed=7), _volume(seed=8)])
    path = _write_ome_zarr(tmp_path / "img.zarr", data, zarr_format=zarr_format)
    image, info = read_image_info(path, channel=0, plane=5)
    assert np.array_equal(image, data[0, 5]) and info.ndim == 2
    assert info.pixel_size.to_dict() == {"x": 0.5, "y": 0.5, "unit": "µm"}
    flat = _write_ome_zarr(tmp_path / "flat.zarr", data[0, 0], zarr_format=zarr_format, axes="yx", scale=(0.25, 0.25),
                           chunks=(8, 10), units={"y": "nanometer", "x": "nanometer"})
    image, info = read_image_info(flat)
    assert np.array_equal(image, data[0, 0]) and info.axes == "YX" and info.pixel_size == PixelSize(0.25, 0.25, "nm")


def test_ome_zarr_stored_axis_order_is_followed(tmp_path):
    data = _volume()  # zyx
    stored = np.ascontiguousarray(data.transpose(1, 2, 0))  # yxz: an unusual order, still named
    path = _write_ome_zarr(tmp_path / "yxz.zarr", stored, zarr_format=3, axes="yxz", scale=(0.5, 0.5, 2.0),
                           chunks=(8, 10, 3), levels=1)
    view, info = open_image(path)
    assert info.axes == "YXZ" and view.shape == (9, 16, 20) and info.spacing == (2.0, 0.5, 0.5)
    assert np.array_equal(view[1:4, 5, 2:9], data[1:4, 5, 2:9]) and np.array_equal(np.asarray(view), data)


@pytest.mark.parametrize("kind", ["zlib.tif", "img.zarr"])
def test_views_pickle_and_chunk_with_dask(tmp_path, kind):
    da = pytest.importorskip("dask.array")
    data = _volume((9, 64, 80))
    if kind.endswith(".tif"):
        path = tmp_path / kind
        tifffile.imwrite(path, data, compression="zlib", metadata={"axes": "ZYX"})
    else:
        path = _write_ome_zarr(tmp_path / kind, data[None], zarr_format=3, levels=1, chunks=(1, 3, 32, 40))
    view, _ = open_image(path)
    again = pickle.loads(pickle.dumps(view))
    assert len(pickle.dumps(view)) < data.nbytes // 10 and np.array_equal(again[4:7, 1:3], data[4:7, 1:3])
    assert view[2:2, 0:5].shape == (0, 5, 80) and view[3, 5:5].shape == (0, 80)
    lazy = da.from_array(view, chunks=(3, 32, 40))
    assert int(lazy.sum(dtype=np.int64).compute(scheduler="synchronous")) == int(data.sum(dtype=np.int64))


def test_ome_zarr_labels_are_read(tmp_path):
    labels = np.zeros((9, 16, 20), np.uint8)
    labels[:, :4], labels[:, -4:] = 1, 2
    path = _write_ome_zarr(tmp_path / "labels.zarr", labels[None], zarr_format=2, levels=1)
    assert np.array_equal(read_labels(path, shape=(9, 16, 20)), labels)


def _refusal(path, **kw) -> str:
    with pytest.raises(InputError) as err:
        open_image(path, **kw)
    with pytest.raises(InputError) as again:
        read_image(path, **kw)
    assert str(again.value) == str(err.value)
    message = _one_line(err)
    assert str(path) in message
    return message


def test_ome_zarr_refusals(tmp_path, monkeypatch):
    data = _volume()[None]
    plain = tmp_path / "plain"
    plain.mkdir()
    assert "is a folder, expected an image file or an OME-Zarr folder" in _refusal(plain)

    zarr = pytest.importorskip("zarr")
    bare = tmp_path / "bare.zarr"
    zarr.open_group(str(bare), mode="w", zarr_format=2).create_array("0", shape=(9, 16, 20), dtype="uint16")
    assert "not OME-Zarr (no 'multiscales'" in _refusal(bare)

    empty = _write_ome_zarr(tmp_path / "empty.zarr", data, zarr_format=3, levels=1)
    doc = json.loads((empty / "zarr.json").read_text())
    doc["attributes"]["ome"]["multiscales"][0]["datasets"] = []
    (empty / "zarr.json").write_text(json.dumps(doc))
    assert "multiscales holds no datasets" in _refusal(empty)

    missing = _write_ome_zarr(tmp_path / "missing.zarr", data, zarr_format=2, levels=1)
    attrs = json.loads((missing / ".zattrs").read_text())
    attrs["multiscales"][0]["datasets"][0]["path"] = "full"
    (missing / ".zattrs").write_text(json.dumps(attrs))
    assert "dataset 'full' is missing" in _refusal(missing)

    floats = _write_ome_zarr(tmp_path / "float.zarr", data.astype(np.float32), zarr_format=3, levels=1)
    assert "expected integer pixel values (raw camera counts); got dtype float32" in _refusal(floats)

    wrong_axes = _write_ome_zarr(tmp_path / "axes.zarr", data, zarr_format=2, levels=1)
    attrs = json.loads((wrong_axes / ".zattrs").read_text())
    del attrs["multiscales"][0]["axes"][0]
    (wrong_axes / ".zattrs").write_text(json.dumps(attrs))
    assert "'axes' must name the 4 axes" in _refusal(wrong_axes)

    good = _write_ome_zarr(tmp_path / "good.zarr", data, zarr_format=2, levels=1)
    assert "--channel 1 is out of range" in _refusal(good, channel=1)
    monkeypatch.setitem(sys.modules, "zarr", None)  # as if zarr were not installed
    assert "install noisestat[dask]" in _refusal(good)


# --------------------------------------------------------------------------------------------------
# PNG pixel size
# --------------------------------------------------------------------------------------------------


def test_png_physical_pixel_size_from_pillow(tmp_path):
    image = pytest.importorskip("PIL.Image")
    path = tmp_path / "cells.png"
    # Pillow writes dpi as pHYs pixels per metre: 25400 dpi = 1e6 per metre = 1 µm per pixel
    image.fromarray(_volume((1, 16, 20))[0]).save(path, dpi=(25400, 12700))
    size = read_image_info(path)[1].pixel_size
    assert size.unit == "µm" and size.x == pytest.approx(1.0, rel=1e-3) and size.y == pytest.approx(2.0, rel=1e-3)


def _with_chunk(png: bytes, kind: bytes, body: bytes) -> bytes:
    """``png`` with a chunk inserted right after IHDR (signature 8 bytes, IHDR 25 bytes)."""
    chunk = struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return png[:33] + chunk + png[33:]


def test_png_without_metres_has_no_pixel_size(tmp_path):
    pixels = np.arange(1, 16 * 20 + 1, dtype=np.uint16).reshape(16, 20)
    png = imagecodecs.png_encode(pixels)
    (tmp_path / "none.png").write_bytes(png)
    (tmp_path / "aspect.png").write_bytes(_with_chunk(png, b"pHYs", struct.pack(">IIB", 2, 1, 0)))  # unit 0
    (tmp_path / "metre.png").write_bytes(_with_chunk(png, b"pHYs", struct.pack(">IIB", 4000, 2000, 1)))
    assert read_image_info(tmp_path / "none.png")[1].pixel_size is None
    assert read_image_info(tmp_path / "aspect.png")[1].pixel_size is None
    image, info = read_image_info(tmp_path / "metre.png")
    assert np.array_equal(image, pixels) and info.pixel_size == PixelSize(250.0, 500.0, "µm")


# --------------------------------------------------------------------------------------------------
# 3D labels and checks
# --------------------------------------------------------------------------------------------------


def _labels(shape=(9, 16, 20)):
    labels = np.zeros(shape, np.uint8)
    labels[:, 1:3, 1:3], labels[:, 8:10, 8:10] = 1, 2
    return labels


def test_volume_labels_and_checks(tmp_path):
    path = tmp_path / "labels.tif"
    tifffile.imwrite(path, _labels(), metadata={"axes": "ZYX"})
    assert np.array_equal(read_labels(path, shape=(9, 16, 20)), _labels())
    with pytest.raises(InputError) as err:
        read_labels(path, shape=(8, 16, 20))
    assert str(path) in _one_line(err) and "image's shape (8, 16, 20); got (9, 16, 20)" in str(err.value)
    check_raw_image(_volume(), name="v")
    check_labels(_labels(), shape=(9, 16, 20))
    with pytest.raises(InputError, match=r"v: expected a 2D greyscale image or a 3D volume; got shape \(2, 9, 16,"):
        check_raw_image(np.ones((2, 9, 16, 20), np.uint16), name="v")
    with pytest.raises(InputError, match=r"v: volume of shape \(9, 16, 4\) is too small \(at least 8 x 8 x 8\)"):
        check_raw_image(np.ones((9, 16, 4), np.uint16), name="v")
    with pytest.raises(InputError, match="every pixel is zero"):
        check_raw_image(np.zeros((9, 16, 20), np.uint16), name="v")
    with pytest.raises(InputError, match=r"l: expected a 2D label image or a 3D label volume"):
        check_labels(np.ones((2, 2, 2, 2), np.uint8), name="l")


# --------------------------------------------------------------------------------------------------
# Label volumes written for Fiji and napari
# --------------------------------------------------------------------------------------------------


def test_label_volume_written_as_imagej_zyx_with_voxel_size(tmp_path):
    labels = np.arange(9 * 16 * 20, dtype=np.int64).reshape(9, 16, 20) % 500
    path = tmp_path / "labels.tif"
    write_label_image(path, labels, pixel_size=PixelSize(0.5, 0.25, "µm", z=2.0))
    with tifffile.TiffFile(path) as tif:
        assert tif.is_imagej and tif.series[0].axes == "ZYX"
        assert np.array_equal(tif.asarray(), labels) and tif.asarray().dtype == np.uint16
        meta = tif.imagej_metadata
        assert meta["spacing"] == pytest.approx(2.0) and meta["unit"] in ("µm", "\\u00B5m")
        assert meta["slices"] == 9
        num, den = tif.pages.first.tags["XResolution"].value
        ynum, yden = tif.pages.first.tags["YResolution"].value
        assert den / num == pytest.approx(0.5) and yden / ynum == pytest.approx(0.25)
    # and noisestat reads back what it wrote
    image, info = read_image_info(path)
    assert info.ndim == 3 and info.spacing == pytest.approx((2.0, 0.25, 0.5))


def test_label_volume_beyond_uint16_and_2d_as_before(tmp_path):
    labels = np.zeros((9, 16, 20), np.int64)
    labels[4, 5, 6] = 70000
    path = tmp_path / "big.tif"
    write_label_image(path, labels, pixel_size={"x": 0.5, "y": 0.5, "unit": "µm", "z": 1.0})
    with tifffile.TiffFile(path) as tif:
        assert tif.series[0].axes == "ZYX" and tif.asarray().dtype == np.uint32
        assert np.array_equal(tif.asarray(), labels)
    # ImageJ has no 32-bit integers: an OME-TIFF that carries the voxel size, read back as such
    assert read_array_info(path)[1].spacing == (1.0, 0.5, 0.5)
    flat = tmp_path / "flat.tif"
    small = np.arange(16 * 20).reshape(16, 20) % 7
    write_label_image(flat, small, pixel_size=PixelSize(0.5, 0.5, "µm", z=1.0))
    with tifffile.TiffFile(flat) as tif:
        assert tif.is_imagej and tif.series[0].axes == "YX" and "spacing" not in tif.imagej_metadata
        assert np.array_equal(tif.asarray(), small)


def test_a_slice_distance_of_zero_or_less_is_no_voxel_depth(tmp_path):
    for z in (0.0, -2.0):
        tifffile.imwrite(tmp_path / "v.tif", _volume(), imagej=True, resolution=(2, 2),
                         metadata={"spacing": z, "unit": "um", "axes": "ZYX"})
        _, info = read_image_info(tmp_path / "v.tif")
        assert info.pixel_size.z is None and info.spacing is None


def test_a_volume_without_a_usable_slice_distance_is_measured_in_voxels_and_says_so(tmp_path, capsys, z=0.0):
    """A file giving x and y but a slice distance of 0 or less: the volume is measured in voxels, and every
    place says voxels (not the x/y unit), with a line naming the file."""
    from scipy import ndimage as ndi

    from noisestat.cli import main
    from test_sample import THRESHOLD_DN, nuclei, tile_interiors
    from conftest import CAMERA

    raw = nuclei(tile_interiors(), 4.0, 5)
    smooth = ndi.uniform_filter(raw.astype(float), 3)
    pick = np.random.default_rng(0).random(raw.shape)
    labels = np.zeros(raw.shape, np.uint8)
    labels[(smooth < THRESHOLD_DN - 300) & (pick < 0.02)] = 1
    labels[(smooth > THRESHOLD_DN + 300) & (pick < 0.3)] = 2
    tifffile.imwrite(tmp_path / "v.tif", raw, imagej=True, resolution=(2, 2),
                     metadata={"spacing": z, "unit": "um", "axes": "ZYX"})
    tifffile.imwrite(tmp_path / "labels.tif", labels)
    (tmp_path / "camera.json").write_text(json.dumps({"gain_dn_per_e": CAMERA.gain_dn_per_e, "offset_dn": CAMERA.offset_dn,
                                                     "read_noise_dn": CAMERA.read_noise_dn, "bit_depth": 16}))
    out = tmp_path / "out"
    assert main(["assess", str(tmp_path / "v.tif"), "--camera", str(tmp_path / "camera.json"), "--labels",
                 str(tmp_path / "labels.tif"), "--codec", "lossless", "--replicas", "2", "-o", str(out)]) == 0
    printed = capsys.readouterr()
    assert "v.tif: gives a pixel size of 0.5 x 0.5 µm but no usable slice distance" in printed.err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["provenance"]["pixel_size"] is None and "voxel_size_note" in summary["provenance"]
    assert "in voxels (the file gives no usable voxel size)" in (out / "summary.txt").read_text()
    import csv

    with open(out / "raw_results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and all(float(r["Volume"]) == float(r["Voxels"]) for r in rows)
