"""Every registered codec: round trips on 8-, 12- and 16-bit content, target ratios, bounds, limits."""

from pathlib import Path

import numpy as np
import pytest

from noisestat import CameraProfile, CodecError
from noisestat.codecs import REGISTRY, describe_codecs_markdown, parse_spec
from noisestat.codecs._noiseaware import decode_noiseaware, encode_noiseaware

# One lossy setting per codec (a new codec without an entry fails test_every_codec_has_an_example).
LOSSY = {
    "lossless": None, "file": None, "compressai": None,
    "bitdepth": "bitdepth:bits=6,mode=minmax", "jpeg": "jpeg:quality=80", "jpeg2k": "jpeg2k:psnr=60",
    "htj2k": "htj2k:qstep=0.01", "jpegxr": "jpegxr:quality=0.6", "jpegxl": "jpegxl:distance=1",
    "lerc": "lerc:max_error=4", "webp": "webp:quality=80", "avif": "avif:quality=60,speed=8",
    "sz3": "sz3:max_error=4", "zfp": "zfp:max_error=4", "sperr": "sperr:max_error=4", "noiseaware": "noiseaware:step=1",
}
# Codecs whose default setting is lossless.
LOSSLESS = ["lossless", "lossless:method=zstd", "jpeg2k", "htj2k", "jpegxr", "jpegxl", "lerc", "zfp"]


def content(bits, seed=0, shape=(96, 128)):
    """Smooth structure with camera-like noise filling most of a `bits`-bit range."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    top = 2**bits - 1
    signal = top * (0.45 + 0.35 * np.sin(xx / 9.0) * np.cos(yy / 13.0))
    noisy = rng.poisson(signal / 4) * 4 + rng.normal(0, 0.002 * top, shape)
    return np.clip(np.rint(noisy), 0, top).astype(np.uint8 if bits == 8 else np.uint16)


def profile_for(bits):
    return CameraProfile(gain_dn_per_e=4.0, offset_dn=0.0, read_noise_dn=0.002 * 2**bits + 0.5, bit_depth=bits)


def test_every_codec_has_an_example():
    assert set(REGISTRY) <= set(LOSSY), f"add an example setting for {set(REGISTRY) - set(LOSSY)}"


@pytest.mark.parametrize("bits", [8, 12, 16])
@pytest.mark.parametrize("spec", LOSSLESS)
def test_lossless_settings_are_exact(spec, bits):
    image = content(bits)
    r = parse_spec(spec).apply(image, profile_for(bits))
    np.testing.assert_array_equal(r.decoded, image)
    assert r.decoded.dtype == image.dtype and r.n_bytes > 0


@pytest.mark.parametrize("bits", [8, 12, 16])
@pytest.mark.parametrize("name", sorted(k for k, v in LOSSY.items() if v))
def test_lossy_settings_round_trip(name, bits):
    if name not in REGISTRY:
        pytest.skip(f"{name} is not registered")
    image = content(bits)
    spec = LOSSY[name]
    if name == "avif" and bits == 16:
        spec += ",bits=12"  # AVIF refuses 16-bit samples unless told to scale (tested below)
    r = parse_spec(spec).apply(image, profile_for(bits))
    assert r.decoded.shape == image.shape and r.decoded.dtype == image.dtype
    err = r.decoded.astype(float) - image
    span = float(image.max()) - float(image.min())
    assert np.sqrt(np.mean(err**2)) < 0.05 * span, "decoded image is not close to the raw one"
    assert r.compression_ratio == image.nbytes / r.n_bytes  # (ZFP on 8-bit noise: below 1, honestly)


@pytest.fixture(scope="module")
def noisy16():
    return content(16, seed=3, shape=(256, 256))


@pytest.mark.parametrize("name", ["jpeg2k", "htj2k", "jpegxr", "jpegxl", "lerc", "sz3", "sperr", "avif"])
@pytest.mark.parametrize("target", [10, 100])
def test_target_ratios_are_hit_within_5_percent(noisy16, name, target):
    extra = ",bits=12,speed=9" if name == "avif" else ""
    r = parse_spec(f"{name}:ratio={target}{extra}").apply(noisy16, None)
    assert abs(r.compression_ratio / target - 1) <= 0.05
    assert r.info["knob_used"] is not None


def test_unreachable_ratio_names_the_closest(noisy16):
    with pytest.raises(CodecError, match=r"lerc:ratio=1e6: ratio 1e\+06 cannot be reached within 5%; the closest are"):
        parse_spec("lerc:ratio=1e6").apply(noisy16, None)


@pytest.mark.parametrize("name", ["lerc", "sz3", "sperr", "zfp"])
@pytest.mark.parametrize("bound", [1, 7, 50])
def test_error_bounds_hold_in_dn(noisy16, name, bound):
    r = parse_spec(f"{name}:max_error={bound}").apply(noisy16, None)
    assert np.abs(r.decoded.astype(float) - noisy16).max() <= bound


@pytest.mark.parametrize("name", ["sz3", "sperr", "lerc"])
def test_error_bound_in_units_of_sigma(noisy16, name):
    cam = profile_for(16)
    r = parse_spec(f"{name}:max_error_sigma=1").apply(noisy16, cam)
    sigma = np.sqrt(cam.noise_variance_dn2(noisy16))
    err = np.abs(r.decoded.astype(float) - noisy16) / sigma
    # k sigma to first order in the transform; +0.5 DN of rounding
    assert np.quantile(err, 0.999) <= 1.05 + 0.5 / sigma.min()
    with pytest.raises(CodecError, match="needs the camera profile"):
        parse_spec(f"{name}:max_error_sigma=1").prepare(noisy16, None)


def test_avif_refuses_16_bit_naming_the_limit(noisy16):
    with pytest.raises(CodecError, match=r"AVIF takes at most 12-bit samples; this image holds values up to \d+"):
        parse_spec("avif:quality=50").apply(noisy16, None)


def test_noiseaware_stream_decodes_without_profile_and_inflates_noise_as_stated():
    rng = np.random.default_rng(1)
    cam = CameraProfile(gain_dn_per_e=0.5, offset_dn=100.0, read_noise_dn=2.0, bit_depth=16)
    truth = np.full((256, 256), 100 + 0.5 * 2000.0)
    image = np.rint(100 + 0.5 * rng.poisson(2000.0, truth.shape) + rng.normal(0, 2, truth.shape)).astype(np.uint16)
    for step, dither in ((1.0, 0), (2.0, 1)):
        stream = encode_noiseaware(image, gain=0.5, offset=100, read=2.0, step=step, dither=bool(dither), seed=7)
        decoded = decode_noiseaware(stream)  # no profile: everything is in the stream
        r = parse_spec(f"noiseaware:step={step},dither={dither},seed=7").apply(image, cam)
        np.testing.assert_array_equal(r.decoded, np.clip(np.rint(decoded), 0, 65535).astype(np.uint16))
        noise = cam.noise_variance_dn2(truth.mean())
        total = np.var(r.decoded.astype(float) - truth)
        # decoded noise variance = camera noise x (1 + B^2/12) (+1/12 DN^2 of rounding): within 3 %
        assert total == pytest.approx(noise * (1 + step**2 / 12) + 1 / 12, rel=0.03)
        assert abs(np.mean(r.decoded.astype(float) - image)) < 0.05 * np.sqrt(noise)  # no bias
        assert r.info["noise_inflation"] == pytest.approx(np.sqrt(1 + step**2 / 12))
    with pytest.raises(CodecError, match="not a noise-aware stream"):
        decode_noiseaware(b"garbage" * 10)


def test_noiseaware_ratio_grows_with_step(noisy16):
    cam = profile_for(16)
    ratios = [parse_spec(f"noiseaware:step={b}").apply(noisy16, cam).compression_ratio for b in (0.5, 1, 3)]
    assert ratios[0] < ratios[1] < ratios[2]


def test_docs_table_is_generated_from_the_registry():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "codecs.md").read_text()
    assert describe_codecs_markdown() in doc, "docs/codecs.md is stale: run `noisestat codecs --markdown`"
