import re

import numpy as np
import pytest
import tifffile

from noisestat import CameraProfile, CodecError
from noisestat.codecs import REGISTRY, describe_codecs, parse_spec

CAM = CameraProfile(gain_dn_per_e=0.5, offset_dn=100.0, read_noise_dn=2.0, bit_depth=16)


@pytest.fixture(scope="module")
def image():
    # smooth structure plus camera noise, like a microscope image
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[:256, :256]
    signal = 1000 + 600 * np.sin(xx / 17.0) * np.cos(yy / 23.0)
    return np.clip(signal + rng.normal(0, 15, signal.shape), 0, 65535).astype(np.uint16)


def test_listing_comes_from_the_registry():
    text = describe_codecs()
    listed = re.findall(r"^(\w+):", text, flags=re.M)
    assert listed == sorted(REGISTRY)
    for name, cls in REGISTRY.items():
        for key in cls.keys:
            assert f"    {key.name}=" in text


@pytest.mark.parametrize("method", ["png", "zstd"])
def test_lossless_is_exact(image, method):
    r = parse_spec(f"lossless:method={method}").apply(image, CAM)
    np.testing.assert_array_equal(r.decoded, image)
    assert r.compression_ratio > 1 and r.n_bytes < image.nbytes


def test_bitdepth_minmax_error_is_half_a_step(image):
    r = parse_spec("bitdepth:bits=8,mode=minmax").apply(image, CAM)
    step = (int(image.max()) - int(image.min())) / 255
    err = np.abs(r.decoded.astype(float) - image)
    assert err.max() <= step / 2 + 0.5
    assert r.decoded.dtype == image.dtype
    assert r.compression_ratio == pytest.approx(2.0, rel=1e-3)


def test_bitdepth_shift_drops_low_bits(image):
    r = parse_spec("bitdepth:bits=8,mode=shift").apply(image, CAM)
    np.testing.assert_array_equal(r.decoded, (image >> 8) << 8)
    cam12 = CameraProfile(1.0, 0.0, 1.0, 12)
    small = np.minimum(image, 4095)
    r12 = parse_spec("bitdepth:bits=8,mode=shift").apply(small, cam12)
    np.testing.assert_array_equal(r12.decoded, (small >> 4) << 4)
    with pytest.raises(CodecError, match="camera has only 12"):
        parse_spec("bitdepth:bits=12,mode=shift").apply(small, cam12)


@pytest.mark.parametrize("target", [10, 30])
def test_jpeg_ratio_is_hit_within_5_percent(image, target):
    r = parse_spec(f"jpeg:ratio={target}").apply(image, CAM)
    assert abs(r.compression_ratio / target - 1) <= 0.05
    assert r.compression_ratio == image.nbytes / r.n_bytes
    assert 1 <= r.info["knob_used"] <= 100
    assert r.decoded.dtype == np.uint16


def test_jpeg_quality_lower_means_smaller_and_worse(image):
    hi = parse_spec("jpeg:quality=90").apply(image, CAM)
    lo = parse_spec("jpeg:quality=20").apply(image, CAM)
    assert lo.n_bytes < hi.n_bytes
    rmse = lambda r: np.sqrt(np.mean((r.decoded.astype(float) - image) ** 2))  # noqa: E731
    assert rmse(lo) > rmse(hi)


def test_jpeg_unreachable_ratio_names_closest(image):
    with pytest.raises(CodecError, match=r"cannot be reached within 5%; the closest are .* at 1$"):
        parse_spec("jpeg:ratio=50000").apply(image, CAM)


@pytest.mark.parametrize("spec, words", [
    ("nosuchcodec:x=1", "unknown codec 'nosuchcodec'"),
    ("jpeg:nosuchkey=3", "unknown key 'nosuchkey'"),
    ("jpeg:ratio=ten", "not a valid float"),
    ("jpeg:ratio=10,quality=5", "not both"),
    ("jpeg", "needs ratio=R or quality="),
    ("jpeg:quality=101", "must lie in"),
    ("bitdepth:mode=round", "must be one of minmax, shift"),
    ("bitdepth:bits", "expected key=value"),
    ("file:path=/no/such/file.tif", "no such file"),
])
def test_bad_specs(spec, words):
    with pytest.raises(CodecError) as info:
        parse_spec(spec)
    assert words in str(info.value)


def test_file_codec_reads_decoded_image_and_stream_size(tmp_path, image):
    decoded = image.astype(np.float32) + 0.4
    tifffile.imwrite(tmp_path / "dec.tif", decoded)
    (tmp_path / "s.bin").write_bytes(b"x" * 1000)
    codec = parse_spec(f"file:path={tmp_path / 'dec.tif'},stream={tmp_path / 's.bin'}")
    r = codec.apply(image, CAM)
    np.testing.assert_array_equal(r.decoded, image)  # float values rounded back into uint16
    assert r.n_bytes == 1000 and r.compression_ratio == image.nbytes / 1000
    assert parse_spec(f"file:path={tmp_path / 'dec.tif'}").apply(image, CAM).compression_ratio is None


def test_file_codec_shape_mismatch(tmp_path, image):
    tifffile.imwrite(tmp_path / "small.tif", image[:10, :10])
    codec = parse_spec(f"file:path={tmp_path / 'small.tif'}")
    with pytest.raises(CodecError, match=r"has shape \(10, 10\); the raw image has \(256, 256\)"):
        codec.prepare(image, CAM)


def test_path_with_comma_is_kept_whole(tmp_path, image):
    d = tmp_path / "a,b"
    d.mkdir()
    tifffile.imwrite(d / "x.tif", image)
    assert parse_spec(f"file:path={d / 'x.tif'}").params["path"] == str(d / "x.tif")
