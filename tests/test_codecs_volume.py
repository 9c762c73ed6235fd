"""Every registered codec on a 3D volume: one stream or plane by plane, shapes, ratios, bounds, files."""

import importlib.util
import re

import imagecodecs
import numpy as np
import pytest
import tifffile

from noisestat import CameraProfile, CodecError
from noisestat.codecs import REGISTRY, describe_codecs, describe_codecs_markdown, parse_spec
from noisestat.codecs._base import Codec, code_image, prepare_image
from noisestat.codecs._noiseaware import decode_noiseaware, encode_noiseaware
from noisestat.codecs._transforms import gat

CAMERA = CameraProfile(gain_dn_per_e=2.0, offset_dn=100.0, read_noise_dn=2.0, bit_depth=16)
SHAPE = (5, 48, 40)  # odd sizes: no codec's block size divides them

# One setting per codec on a volume ("FILE" and "CHECKPOINT" are filled in by the test); a new codec
# without an entry fails test_every_codec_has_a_volume_setting.
SETTINGS = {
    "lossless": "lossless", "bitdepth": "bitdepth:bits=6", "file": "file:path=FILE,stream=STREAM",
    "compressai": "compressai:checkpoint=CHECKPOINT", "jpeg": "jpeg:quality=80", "jpeg2k": "jpeg2k:psnr=60",
    "htj2k": "htj2k:qstep=0.01", "jpegxr": "jpegxr:quality=0.6", "jpegxl": "jpegxl:distance=1",
    "webp": "webp:quality=80", "avif": "avif:quality=60,speed=8,bits=12", "lerc": "lerc:max_error=4",
    "sz3": "sz3:max_error=4", "zfp": "zfp:max_error=4", "sperr": "sperr:max_error=4",
    "noiseaware": "noiseaware:step=1",
}
# How each codec codes a volume: the n-dimensional ones as one stream, the 2D image codecs by plane.
AS_VOLUME = {"lossless", "bitdepth", "file", "noiseaware", "sz3", "zfp", "sperr", "lerc"}
LOSSLESS = ["lossless", "lossless:method=zstd", "jpeg2k", "htj2k", "jpegxr", "jpegxl", "lerc", "zfp"]


def volume(seed=0, shape=SHAPE):
    """Blobs that grow along z, with this camera's shot and read noise, in uint16."""
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.mgrid[: shape[0], : shape[1], : shape[2]]
    electrons = 150 + 900 * np.exp(-((yy - 20) ** 2 + (xx - 17) ** 2) / (120.0 + 30 * zz))
    dn = CAMERA.offset_dn + CAMERA.gain_dn_per_e * rng.poisson(electrons) + rng.normal(0, CAMERA.read_noise_dn, shape)
    return np.rint(dn).astype(np.uint16)


def z_redundant(seed=1):
    """Five planes that differ by a constant: a codec that sees z needs far fewer bytes."""
    plane = volume(seed, (1,) + SHAPE[1:])[0]
    return np.stack([plane + 3 * k for k in range(SHAPE[0])]).astype(np.uint16)


def learned_missing() -> str | None:
    """Why the learned codec cannot run here, or None."""
    for module in ("torch", "compressai"):
        if importlib.util.find_spec(module) is None:
            return f"the compressai codec needs the optional extra noisestat[learned] ({module} is not installed)"
    return None


@pytest.fixture(scope="module")
def raw():
    return volume()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A 1-channel learned codec trained for two steps (it codes badly, through a real entropy coder)."""
    from noisestat.codecs._compressai import train_codec

    folder = tmp_path_factory.mktemp("volume_ckpt")
    rng = np.random.default_rng(4)
    paths = []
    for i in range(2):
        path = folder / f"train{i}.tif"
        tifffile.imwrite(path, (rng.poisson(500, (64, 64)) + 100).astype(np.uint16))
        paths.append(path)
    out = folder / "tiny.ckpt"
    train_codec(paths, arch="bmshj2018-factorized", quality=1, steps=2, seed=3, output=out, batch=2, patch=64)
    return out


def spec_for(name, raw, tmp_path, request):
    spec = SETTINGS[name]
    if name == "file":
        decoded = tmp_path / "decoded.tif"
        tifffile.imwrite(decoded, np.clip(raw.astype(np.int64) + 3, 0, 65535).astype(np.uint16))
        stream = tmp_path / "stream.bin"
        stream.write_bytes(imagecodecs.zstd_encode(raw.tobytes()))
        spec = spec.replace("FILE", str(decoded)).replace("STREAM", str(stream))
    if name == "compressai":
        spec = spec.replace("CHECKPOINT", str(request.getfixturevalue("checkpoint")))
    return spec


def test_every_codec_has_a_volume_setting():
    assert set(REGISTRY) <= set(SETTINGS), f"add a volume setting for {set(REGISTRY) - set(SETTINGS)}"


def test_each_codec_says_how_it_codes_a_volume():
    for name, cls in REGISTRY.items():
        assert cls.volume == ("volume" if name in AS_VOLUME else "planes"), name
    text = describe_codecs()
    assert "sz3: " in text and text.count("volumes: coded as one volume (one stream)") == len(AS_VOLUME & set(REGISTRY))
    assert text.count("volumes: coded plane by plane") == len(set(REGISTRY) - AS_VOLUME)
    table = describe_codecs_markdown()
    assert "| lossless | volumes | needs |" in table
    assert "| no | planes | - |" in table and "| yes | volume | - |" in table


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "compressai" else n
                                  for n in sorted(SETTINGS)])
def test_every_codec_codes_a_volume(name, raw, tmp_path, request):
    if name not in REGISTRY:
        pytest.skip(f"{name} is not registered")
    if REGISTRY[name].extra == "learned" and learned_missing():
        pytest.skip(learned_missing())
    codec = parse_spec(spec_for(name, raw, tmp_path, request))
    prepare_image(codec, raw, CAMERA)
    result = code_image(codec, raw, CAMERA)
    assert result.decoded.shape == raw.shape and result.decoded.dtype == raw.dtype
    assert result.compression_ratio > 0 and np.isfinite(result.compression_ratio)
    assert result.compression_ratio == pytest.approx(raw.nbytes / result.n_bytes)
    assert result.coded == result.info["coded"] == codec.volume
    if codec.volume == "planes":
        assert result.info["planes"] == raw.shape[0]
    if codec.lossless:
        np.testing.assert_array_equal(result.decoded, raw)
    else:
        assert not np.array_equal(result.decoded, raw)  # a lossy setting that changed nothing tests nothing


@pytest.mark.parametrize("spec", LOSSLESS)
def test_lossless_settings_are_exact_on_a_volume(spec, raw):
    result = code_image(parse_spec(spec), raw, CAMERA)
    np.testing.assert_array_equal(result.decoded, raw)


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.uint32])
def test_lossless_png_codes_signed_and_wide_volumes_exactly(dtype):
    rng = np.random.default_rng(7)
    top = 70000 if np.dtype(dtype).itemsize == 4 else 3000
    data = rng.integers(-top if np.dtype(dtype).kind == "i" else 0, top, SHAPE).astype(dtype)
    result = code_image(parse_spec("lossless"), data, None)
    assert result.coded == "volume"
    np.testing.assert_array_equal(result.decoded, data)


# The volume codecs that predict or transform along z, and one setting each: on planes that differ
# by a constant, the volume's one stream is smaller than its planes' streams together.
EXPLOIT_Z = ["lossless", "noiseaware:step=1", "noiseaware:step=1,backend=png", "noiseaware:step=1,backend=zstd",
             "sz3:max_error=3", "sz3:max_error_sigma=1", "sperr:max_error=3", "lerc", "lerc:max_error=3"]


@pytest.mark.parametrize("spec", EXPLOIT_Z)
def test_a_volume_codec_codes_one_stream_that_sees_z(spec):
    data = z_redundant()
    codec = parse_spec(spec)
    whole = code_image(codec, data, CAMERA)
    by_plane = Codec.apply_planes(codec, data, CAMERA)
    assert whole.coded == "volume"
    assert whole.n_bytes < by_plane.n_bytes
    assert whole.compression_ratio > by_plane.compression_ratio


@pytest.mark.parametrize("spec", ["zfp:max_error=3", "zfp", "bitdepth:bits=6", "lossless:method=zstd"])
def test_other_volume_codecs_code_one_stream_too(spec):
    # ZFP's 4x4x4 blocks pad 5 planes to 8, bit-depth reduction stores one range instead of five:
    # the stream differs from the planes' (larger or smaller), which it would not if coded by plane
    data = z_redundant()
    codec = parse_spec(spec)
    assert code_image(codec, data, CAMERA).n_bytes != Codec.apply_planes(codec, data, CAMERA).n_bytes


@pytest.mark.parametrize("name", ["sz3", "zfp", "sperr", "lerc"])
def test_error_bound_in_dn_holds_at_every_voxel(name, raw):
    result = code_image(parse_spec(f"{name}:max_error=3"), raw, CAMERA)
    assert result.coded == "volume"
    assert np.abs(result.decoded.astype(np.int64) - raw).max() <= 3


@pytest.mark.parametrize("name", ["sz3", "sperr", "lerc"])
def test_error_bound_in_sigma_holds_at_every_voxel(name, raw):
    result = code_image(parse_spec(f"{name}:max_error_sigma=1"), raw, CAMERA)
    sigma = np.sqrt(CAMERA.noise_variance_dn2(raw))
    error = np.abs(result.decoded.astype(float) - raw) / sigma
    # 1 sigma to first order in the transform; +0.5 DN of rounding
    assert np.quantile(error, 0.999) <= 1.05 + 0.5 / sigma.min()
    # in the transformed domain, where the bound is absolute, it holds everywhere but for rounding
    z_error = np.abs(gat(result.decoded, 2.0, 100.0, 2.0) - gat(raw, 2.0, 100.0, 2.0))
    assert z_error.max() <= 1 + 0.5 / sigma.min() + 1e-9
    assert error.max() > 0.3  # the bound is used, not met by coding nearly losslessly


@pytest.mark.parametrize("name", ["sz3", "lerc"])
def test_a_ratio_target_of_a_volume_codec_is_the_volumes(name, raw):
    result = code_image(parse_spec(f"{name}:ratio=6"), raw, CAMERA)
    assert result.compression_ratio == pytest.approx(6, rel=0.05)


PLANE_RATIO = ["jpeg:ratio=4", "jpeg2k:ratio=4", "htj2k:ratio=4", "jpegxr:ratio=4", "jpegxl:ratio=4",
               "webp:ratio=4", "avif:ratio=4,speed=8,bits=12"]


def mixed_planes():
    """Planes unlike each other: one flat (it compresses far beyond 4 at any setting), one noisy."""
    data = volume(2)
    data[1] = 500
    data[3] = np.random.default_rng(9).poisson(2000, SHAPE[1:]) + 100
    return data


@pytest.mark.parametrize("spec", PLANE_RATIO)
def test_a_ratio_target_of_a_plane_codec_is_the_whole_volumes(spec):
    data = mixed_planes()
    codec = parse_spec(spec)
    # the flat plane alone cannot be brought near ratio 4: a target per plane would stop here
    with pytest.raises(CodecError, match="cannot be reached"):
        codec.apply(data[1], CAMERA)
    result = code_image(codec, data, CAMERA)
    assert result.coded == "planes"
    assert result.compression_ratio == pytest.approx(4, rel=0.05)
    # one knob value for every plane: coding each plane at it gives the volume's bytes exactly
    knob = result.info["knob_used"]
    fixed = spec.replace("ratio=4", f"{codec.knob}={knob}")
    planes = [parse_spec(fixed).apply(plane, CAMERA) for plane in data]
    assert sum(p.n_bytes for p in planes) == result.n_bytes
    np.testing.assert_array_equal(np.stack([p.decoded for p in planes]), result.decoded)
    assert len(result.info["side_information"]) == data.shape[0]


@pytest.mark.parametrize("backend", ["jpegxl", "png", "zstd"])
@pytest.mark.parametrize("dither", [False, True])
def test_noiseaware_volume_stream_decodes_without_profile(raw, backend, dither):
    stream = encode_noiseaware(raw, gain=2.0, offset=100.0, read=2.0, step=1.0, dither=dither, seed=5,
                               backend=backend)
    decoded = decode_noiseaware(stream)
    assert decoded.shape == raw.shape
    z_error = gat(decoded, 2.0, 100.0, 2.0) - gat(raw, 2.0, 100.0, 2.0)
    assert np.abs(z_error).max() <= 0.5 + 0.01  # half a step of quantisation (+ the bias removed)
    plane = encode_noiseaware(raw[0], gain=2.0, offset=100.0, read=2.0, step=1.0, dither=dither, seed=5,
                              backend=backend)
    assert plane[4] == 1 and stream[4] == 2  # 2D streams keep their format; volumes have their own version


# --- the file codec: a decoded volume written by an external tool ------------------------------


def write_plain(path, data):
    tifffile.imwrite(path, data, photometric="minisblack")  # a stack of pages, even of 3 or 4 planes


def write_hyperstack(path, data):
    tifffile.imwrite(path, data, imagej=True, resolution=(1 / 0.65, 1 / 0.65),
                     metadata={"axes": "ZYX", "spacing": 2.5, "unit": "um"})


@pytest.mark.parametrize("kind", ["plain", "hyperstack", "hyperstack with one channel", "float32"])
def test_file_reads_a_whole_decoded_volume(raw, tmp_path, kind):
    decoded = np.clip(raw.astype(np.int64) - 5, 0, None).astype(np.uint16)
    path = tmp_path / "decoded.tif"
    if kind == "plain":
        write_plain(path, decoded)
    elif kind == "hyperstack":
        write_hyperstack(path, decoded)
    elif kind == "float32":
        tifffile.imwrite(path, decoded.astype(np.float32) + 0.25)
    else:
        tifffile.imwrite(path, decoded[:, None], imagej=True, metadata={"axes": "ZCYX", "spacing": 2.5})
    stream = tmp_path / "stream.bin"
    stream.write_bytes(b"x" * 1000)
    codec = parse_spec(f"file:path={path},stream={stream}")
    prepare_image(codec, raw, CAMERA)
    result = code_image(codec, raw, CAMERA)
    assert result.coded == "volume"
    np.testing.assert_array_equal(result.decoded, decoded)
    assert result.n_bytes == 1000 and result.compression_ratio == raw.nbytes / 1000


def one_line_error(codec, raw):
    with pytest.raises(CodecError) as caught:
        prepare_image(codec, raw, CAMERA)
    message = str(caught.value)
    assert "\n" not in message
    with pytest.raises(CodecError, match="^" + re.escape(message) + "$"):
        code_image(codec, raw, CAMERA)
    return message


@pytest.mark.parametrize("write", [write_hyperstack, write_plain])
def test_file_of_another_shape_is_one_line_naming_it(raw, tmp_path, write):
    path = tmp_path / "raw_b.tif"
    write(path, raw[:4])
    message = one_line_error(parse_spec(f"file:path={path}"), raw)
    assert message == f"codec file: {path} has shape (4, 48, 40); the raw volume has (5, 48, 40)"


def test_file_of_one_plane_against_a_volume_is_one_line(raw, tmp_path):
    path = tmp_path / "plane.tif"
    tifffile.imwrite(path, raw[0])
    assert "has shape (48, 40); the raw volume has (5, 48, 40)" in one_line_error(parse_spec(f"file:path={path}"), raw)


def test_file_of_another_kind_of_value_is_one_line(raw, tmp_path):
    path = tmp_path / "complex.tif"
    tifffile.imwrite(path, raw.astype(np.complex64))
    message = one_line_error(parse_spec(f"file:path={path}"), raw)
    assert message == f"codec file: {path} holds complex64 values, not numbers"


def test_file_with_nan_is_one_line(raw, tmp_path):
    path = tmp_path / "nan.tif"
    data = raw.astype(np.float32)
    data[1, 2, 3] = np.nan
    tifffile.imwrite(path, data)
    assert one_line_error(parse_spec(f"file:path={path}"), raw) == f"codec file: {path} holds NaN or infinite values"
