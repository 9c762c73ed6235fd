"""Every codec of the registry on signed and 32-bit images, and codec keys that are not finite numbers.

Each codec either codes an image as it promises (exactly in a lossless mode, within the bound for
an error-bounded one, close to the raw for the others) or refuses it in ``prepare``, before the
long part of a run, with a one-line CodecError naming the codec and the image's dtype. The images
are simulated acquisitions as noisestat meets them: an 8-bit camera, a 16-bit camera, dark-
subtracted frames (signed, with negative values from read noise), and sums of 128 frames (32-bit,
beyond 16 bits), each with the camera profile that describes it.
"""

import numpy as np
import pytest
import tifffile

from noisestat import CameraProfile, CodecError
from noisestat.codecs import REGISTRY, CodecKey, parse_spec
from noisestat.simulate import simulate_scene

SHAPE = (64, 64)
FRAMES = 128  # frames summed into the wide 32-bit images

# spec -> what it promises: "exact"; ("dn", b): |error| <= b DN; ("sigma", k): |error| <= k sigma of
# the pixel's noise (+ 0.5 DN of rounding); ("shift", b): below one step of the camera's bit depth
# kept to b bits; ("close", f): rms error below f of the image's range
SPECS = {
    "lossless": {"lossless": "exact", "lossless:method=zstd": "exact"},
    "bitdepth": {"bitdepth:bits=8": ("close", 0.01), "bitdepth:bits=6,mode=shift": ("shift", 6)},
    "jpeg": {"jpeg:quality=90": ("close", 0.02), "jpeg:quality=90,bits=12": ("close", 0.01)},
    "jpeg2k": {"jpeg2k": "exact", "jpeg2k:normalise=none": "exact", "jpeg2k:psnr=60": ("close", 0.01)},
    "htj2k": {"htj2k": "exact", "htj2k:normalise=none": "exact", "htj2k:qstep=0.01": ("close", 0.02)},
    "jpegxr": {"jpegxr": "exact", "jpegxr:normalise=none": "exact", "jpegxr:quality=0.9": ("close", 0.01)},
    "jpegxl": {"jpegxl": "exact", "jpegxl:normalise=none": "exact", "jpegxl:distance=1": ("close", 0.02)},
    "webp": {"webp:quality=90": ("close", 0.02)},
    "avif": {"avif:quality=90": ("close", 0.02), "avif:quality=90,bits=12": ("close", 0.02)},
    "sz3": {"sz3:max_error=2": ("dn", 2), "sz3:max_error_sigma=1": ("sigma", 1.05)},
    "zfp": {"zfp": "exact", "zfp:max_error=2": ("dn", 2), "zfp:max_error_sigma=1": ("sigma", 1.05)},
    "sperr": {"sperr:max_error=2": ("dn", 2)},
    "lerc": {"lerc": "exact", "lerc:max_error=2": ("dn", 2), "lerc:max_error_sigma=1": ("sigma", 1.05)},
    "noiseaware": {"noiseaware:step=1": ("sigma", 0.55), "noiseaware:step=1,dither=1": ("sigma", 1.05)},
}
# covered by their own tests below: they need a checkpoint or a decoded file
SEPARATE = {"compressai", "file"}

# (spec, image) pairs that must be refused, each for a stated limit of the codec; every other pair
# must be coded as promised (so neither a new refusal nor a lost one goes unnoticed)
REFUSED = {
    # JPEG XR and JPEG XL code unsigned samples: raw signed values do not fit
    **{(f"{c}:normalise=none", k): "unsigned" for c in ("jpegxr", "jpegxl") for k in ("int16", "int32", "int32_wide")},
    # ... nor ranges wider than 16 bits, stretched or not
    **{(s, k): "16 bits" for c in ("jpegxr", "jpegxl") for s in SPECS[c] for k in ("int32_wide", "uint32_wide")
       if "none" not in s or k == "uint32_wide"},
    # OpenJPEG decodes 32-bit samples wrongly: JPEG 2000 takes ranges up to 16 bits, raw signed ones too
    **{(s, k): "16 bits" for s in SPECS["jpeg2k"] for k in ("int32_wide", "uint32_wide")},
    # AVIF takes unsigned samples of at most 12 bits unless bits= scales the range
    **{("avif:quality=90", k): "12 bits" for k in ("int16", "int32", "int32_wide", "uint32_wide")},
    # dropping low bits is defined for unsigned camera samples
    **{("bitdepth:bits=6,mode=shift", k): "unsigned" for k in ("int16", "int32", "int32_wide")},
}


def _frames_profile(offset_dn, frames, bit_depth):
    # a sum of `frames` frames: the gain is unchanged, read noise adds in quadrature
    return CameraProfile(gain_dn_per_e=0.5, offset_dn=offset_dn, read_noise_dn=2.0 * np.sqrt(frames),
                         bit_depth=bit_depth)


@pytest.fixture(scope="module")
def images():
    """name -> (image, its camera profile)."""
    electrons, _ = simulate_scene(SHAPE, rng=21)
    # cells on a nearly black background (fluorescence): dark-subtracted, read noise goes negative
    dark, _ = simulate_scene(SHAPE, background_e=0.5, rng=21)
    rng = np.random.default_rng(22)

    def acquire(gain, offset, read, frames=1, scene=electrons):
        return offset + gain * rng.poisson(frames * scene) + rng.normal(0, read * np.sqrt(frames), SHAPE)

    cam8 = CameraProfile(gain_dn_per_e=0.1, offset_dn=10.0, read_noise_dn=1.0, bit_depth=8)
    cam16 = CameraProfile(gain_dn_per_e=0.5, offset_dn=100.0, read_noise_dn=2.0, bit_depth=16)
    out = {
        "uint8": (np.clip(np.rint(acquire(0.1, 10.0, 1.0)), 0, 255).astype(np.uint8), cam8),
        "uint16": (np.rint(acquire(0.5, 100.0, 2.0)).astype(np.uint16), cam16),
        # dark-subtracted frames: read noise makes the darkest pixels negative
        "int16": (np.rint(acquire(0.5, 0.0, 2.0, scene=dark)).astype(np.int16), _frames_profile(0.0, 1, 16)),
        "int32": (np.rint(acquire(0.5, 0.0, 2.0, scene=dark)).astype(np.int32), _frames_profile(0.0, 1, 16)),
        "uint32": (np.rint(acquire(0.5, 100.0, 2.0)).astype(np.uint32), cam16),
        # sums of many frames: beyond 16 bits
        "int32_wide": (np.rint(acquire(0.5, 0.0, 2.0, FRAMES, scene=dark)).astype(np.int32),
                       _frames_profile(0.0, FRAMES, 32)),
        "uint32_wide": (np.rint(acquire(0.5, 100.0 * FRAMES, 2.0, FRAMES)).astype(np.uint32),
                        _frames_profile(100.0 * FRAMES, FRAMES, 32)),
    }
    for name in ("int16", "int32", "int32_wide"):
        assert out[name][0].min() < 0, name  # the signed images do hold negative values
    for name in ("int32_wide", "uint32_wide"):
        assert int(out[name][0].max()) - int(out[name][0].min()) >= 2**16, name
    return out


def _sigma(image, profile):
    return np.sqrt(profile.noise_variance_dn2(image.astype(np.float64)))


def _check_promise(spec, promise, image, profile, decoded):
    err = decoded.astype(np.float64) - image.astype(np.float64)
    if promise == "exact":
        assert np.array_equal(decoded, image), f"{spec}: not exact (max error {np.abs(err).max()})"
        return
    kind, value = promise
    if kind == "dn":
        assert np.abs(err).max() <= value, f"{spec}: error {np.abs(err).max()} DN above the bound {value}"
    elif kind == "shift":
        step = 2 ** (profile.bit_depth - value)
        assert np.abs(err).max() < step, f"{spec}: error {np.abs(err).max()} DN, a step is {step}"
    elif kind == "sigma":
        worst = (np.abs(err) / (value * _sigma(image, profile) + 0.5)).max()
        assert worst <= 1, f"{spec}: error {worst:.2f} x the bound of {value} sigma"
    else:
        span = float(image.max()) - float(image.min())
        rms = np.sqrt(np.mean(err**2))
        assert rms <= value * span, f"{spec}: rms error {rms:.4g} above {value} of the range {span:.4g}"


def _one_line(exc_info):
    text = str(exc_info.value)
    assert "\n" not in text
    return text


def test_every_registered_codec_is_covered():
    assert set(SPECS) | SEPARATE == set(REGISTRY)
    for name, specs in SPECS.items():
        for spec in specs:
            parse_spec(spec)  # each listed spec is valid


@pytest.mark.parametrize("name", sorted(SPECS))
def test_codec_codes_every_integer_type_as_promised_or_refuses_up_front(images, name):
    refused = set()
    for spec, promise in SPECS[name].items():
        for kind, (image, profile) in images.items():
            codec = parse_spec(spec)
            try:
                codec.prepare(image, profile)
            except CodecError as exc:
                text = str(exc)
                assert "\n" not in text and text.startswith(spec) and str(image.dtype) in text, text
                # apply refuses in the same words; it never codes what prepare refused
                with pytest.raises(CodecError) as again:
                    codec.apply(image, profile)
                assert _one_line(again) == text
                refused.add((spec, kind))
                continue
            result = codec.apply(image, profile)
            assert result.decoded.dtype == image.dtype and result.decoded.shape == image.shape, (spec, kind)
            assert result.n_bytes and result.n_bytes > 0
            _check_promise(f"{spec} on {kind}", promise, image, profile, result.decoded)
    expected = {pair for pair in REFUSED if pair[0] in SPECS[name]}
    assert refused == expected, f"refused {sorted(refused - expected)}; coded {sorted(expected - refused)}"


@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "uint32", "int64", "uint64"])
def test_lossless_codes_full_range_signed_and_wide_images_exactly(dtype):
    """The default codec codes every integer type exactly, its extremes included."""
    info = np.iinfo(dtype)
    rng = np.random.default_rng(5)
    image = rng.integers(info.min, info.max, size=SHAPE, dtype=dtype, endpoint=True)
    image[0, :2] = info.min, info.max
    for spec in ("lossless", "lossless:method=zstd"):
        result = parse_spec(spec).apply(image, None)
        np.testing.assert_array_equal(result.decoded, image)
        assert result.decoded.dtype == image.dtype
        assert result.compression_ratio == pytest.approx(image.nbytes / result.n_bytes)


def test_lossless_png_of_a_narrow_signed_image_is_as_small_as_its_unsigned_twin(images):
    """Offsets from the minimum cost what the same values unsigned cost, plus the 8-byte minimum."""
    image = images["int16"][0]
    twin = (image.astype(np.int32) - int(image.min())).astype(np.uint16)
    signed, unsigned = parse_spec("lossless").apply(image, None), parse_spec("lossless").apply(twin, None)
    assert signed.n_bytes == unsigned.n_bytes + 8


def test_file_codec_on_every_integer_type(images, tmp_path):
    for kind, (image, profile) in images.items():
        path = tmp_path / f"{kind}.tif"
        tifffile.imwrite(path, image)
        codec = parse_spec(f"file:path={path}")
        codec.prepare(image, profile)
        result = codec.apply(image, profile)
        np.testing.assert_array_equal(result.decoded, image)
        assert result.decoded.dtype == image.dtype


def test_file_codec_clips_a_decoded_type_into_the_raw_type(tmp_path):
    """A decoded uint64 file read for an int16 raw is clipped into int16, not wrapped."""
    raw = np.full(SHAPE, -5, dtype=np.int16)
    decoded = np.zeros(SHAPE, dtype=np.uint64)
    decoded[0, 0] = 2**63
    path = tmp_path / "decoded.tif"
    tifffile.imwrite(path, decoded)
    result = parse_spec(f"file:path={path}").apply(raw, None)
    assert result.decoded.dtype == np.int16
    assert result.decoded[0, 0] == 32767 and result.decoded[0, 1] == 0


def test_compressai_codes_every_integer_type(images, tmp_path):
    pytest.importorskip("torch", reason="the learned codec needs the optional extra noisestat[learned] (torch)")
    from noisestat.codecs import _compressai as learned

    try:
        learned._modules()
    except CodecError as exc:
        pytest.skip(f"the learned codec needs the optional extra noisestat[learned]: {exc}")
    path = tmp_path / "train.tif"
    tifffile.imwrite(path, images["uint16"][0])
    ckpt = tmp_path / "tiny.ckpt"
    learned.train_codec([path], arch="bmshj2018-factorized", quality=1, steps=1, seed=3, output=ckpt, batch=1, patch=64)
    codec = parse_spec(f"compressai:checkpoint={ckpt}")
    for kind in ("uint8", "int16", "int32", "uint32", "int32_wide"):
        image, profile = images[kind]
        codec.prepare(image, profile)
        result = codec.apply(image, profile)
        assert result.decoded.dtype == image.dtype
        # an untrained model codes badly, but inside the image's own range, with its negative values
        assert result.decoded.min() >= image.min() and result.decoded.max() <= image.max()


def _float_keys():
    return [(name, key.name) for name, cls in sorted(REGISTRY.items()) for key in cls.keys if key.kind is float]


@pytest.mark.parametrize("name, key", _float_keys())
@pytest.mark.parametrize("text", ["nan", "NaN", "inf", "-inf", "Infinity", "-infinity", "+inf"])
def test_float_keys_refuse_nan_and_infinity(name, key, text):
    with pytest.raises(CodecError) as info:
        parse_spec(f"{name}:{key}={text}")
    assert _one_line(info) == f"codec {name}: {key} must be a finite number; got {text!r}"


def test_float_keys_exist_and_accept_finite_values():
    keys = _float_keys()
    assert {("jpeg", "ratio"), ("jpeg2k", "psnr"), ("noiseaware", "step"), ("sz3", "max_error")} <= set(keys)
    assert parse_spec("jpeg:ratio=10").params["ratio"] == 10.0
    assert parse_spec("jpeg2k:psnr=4.5e1").params["psnr"] == 45.0


def test_unbounded_float_key_refuses_infinity():
    """A key without a range would let infinity through the range test: refused on its own."""
    key = CodecKey("scale", float, "a factor")
    assert key.convert("demo", "2.5") == 2.5
    with pytest.raises(CodecError, match=r"^codec demo: scale must be a finite number; got 'inf'$"):
        key.convert("demo", "inf")


def test_values_given_from_python_are_checked_like_spec_text():
    cls = REGISTRY["jpeg"]
    with pytest.raises(CodecError, match="ratio must be a finite number; got 'nan'"):
        cls("jpeg", ratio=float("nan"))
    assert cls("jpeg", ratio=10.0).params["ratio"] == 10.0


def test_sperr_without_a_positive_bound_is_refused_in_one_line():
    from noisestat.codecs import parse_spec
    from noisestat.errors import CodecError

    with pytest.raises(CodecError, match=r"sperr: max_error must lie in \[1e-06") as info:
        parse_spec("sperr:max_error=0")
    assert "\n" not in str(info.value)


def test_an_encoder_refusing_its_input_is_a_codec_error_naming_the_spec():
    import numpy as np

    from noisestat.codecs import parse_spec
    from noisestat.codecs._base import code_image
    from noisestat.errors import CodecError

    codec = parse_spec("sperr:max_error=1")
    codec.params["max_error"] = 0.0   # what SPERR itself refuses, past the spec's check
    volume = np.random.default_rng(0).integers(0, 1000, (8, 32, 32)).astype(np.uint16)
    with pytest.raises(CodecError, match=r"^sperr:max_error=1: the codec refused .*SperrError") as info:
        code_image(codec, volume, None)
    assert "\n" not in str(info.value)
