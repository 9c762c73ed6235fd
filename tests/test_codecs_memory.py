"""A decoded volume's conversion to the raw sample type (codecs._base.to_dtype): the same samples as a
whole-array rounding and clipping, computed block by block without whole float64 copies."""

import tracemalloc

import numpy as np
import pytest

from noisestat.codecs import _base
from noisestat.codecs._base import to_dtype
from noisestat.errors import CodecError


def _whole(values, dtype):
    """The conversion on the whole array at once: rint in float64, clip to the dtype, cast."""
    info = np.iinfo(dtype)
    if np.issubdtype(values.dtype, np.floating):
        high = float(info.max)
        if int(high) > info.max:
            high = float(np.nextafter(high, 0.0))
        return np.clip(np.rint(values.astype(np.float64)), float(info.min), high).astype(dtype)
    own = np.iinfo(values.dtype)
    return np.clip(values, max(info.min, own.min), min(info.max, own.max)).astype(dtype)


@pytest.mark.parametrize("source, target", [(np.float64, np.uint16), (np.float32, np.uint8), (np.float64, np.int16),
                                            (np.int64, np.uint8), (np.uint32, np.int16), (np.float64, np.int64)])
def test_to_dtype_in_blocks_equals_the_whole_array_conversion(monkeypatch, source, target):
    monkeypatch.setattr(_base, "TO_DTYPE_BLOCK", 7 * 5)  # 3 planes of 5 x 7 per block: a partial last block
    rng = np.random.default_rng(4)
    info = np.iinfo(target)
    span = float(info.max) - float(info.min)
    values = (rng.uniform(float(info.min) - 0.2 * span, float(info.max) + 0.2 * span, size=(10, 5, 7))
              if np.issubdtype(source, np.floating) else rng.integers(-70000, 70000, size=(10, 5, 7)))
    if np.issubdtype(source, np.unsignedinteger):
        values = np.abs(values)
        values[0, 0, 0] = 0
    values = values.astype(source)
    if np.issubdtype(source, np.floating):
        values[0, 0, :4] = [0.5, 1.5, -0.5, 2.5]  # ties round to even, as np.rint does
    expected = _whole(values, target)
    got = to_dtype(values, target)
    assert got.dtype == np.dtype(target) and got.shape == values.shape
    np.testing.assert_array_equal(got, expected)
    low = info.min if np.issubdtype(source, np.floating) else max(info.min, np.iinfo(source).min)
    # clipping was exercised on both sides
    assert (values.astype(float) > info.max).any() and (values.astype(float) <= low).any()
    # a view that is not contiguous (a codec's decoded planes in another order) converts the same
    np.testing.assert_array_equal(to_dtype(values.transpose(2, 0, 1), target), expected.transpose(2, 0, 1))


def test_to_dtype_keeps_its_edge_cases():
    same = np.arange(6, dtype=np.uint16)
    assert to_dtype(same, np.uint16) is same
    assert to_dtype(np.float64(3.6), np.uint8) == 4 and to_dtype(np.float64(3.6), np.uint8).dtype == np.uint8
    assert to_dtype(np.empty((0, 4)), np.uint16).shape == (0, 4)
    late = np.zeros((40, 3, 3))
    late[-1, 2, 2] = np.nan  # in the last block only
    with pytest.raises(CodecError, match="NaN or infinite"):
        to_dtype(late, np.uint16)
    with pytest.raises(CodecError, match="not numbers"):
        to_dtype(np.zeros(3, dtype=complex), np.uint16)


def test_to_dtype_of_a_volume_holds_no_whole_float64_copy():
    # 8 Mi float64 samples (64 MiB): converting them all at once holds two or three more such arrays
    decoded = np.random.default_rng(0).uniform(0, 4000, size=(32, 512, 512))
    tracemalloc.start()
    try:
        got = to_dtype(decoded, np.uint16)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got.nbytes == decoded.size * 2
    # the uint16 result (16 MiB) and one block's intermediates, well under one float64 copy (64 MiB)
    assert peak < decoded.nbytes // 2, f"peak {peak / 2**20:.0f} MiB"


@pytest.mark.parametrize("spec", ["bitdepth:bits=8", "bitdepth:bits=5,mode=shift"])
def test_bitdepth_codes_a_volume_in_blocks_with_the_whole_volumes_result(monkeypatch, spec):
    """bitdepth on a volume: one min..max (or shift) for the whole volume, coded block by block: the same
    samples as the whole-array formula, with no whole float64 or uint64 copy."""
    from noisestat.camera import CameraProfile
    from noisestat.codecs import parse_spec
    from noisestat.codecs._base import code_image

    camera = CameraProfile(gain_dn_per_e=0.5, offset_dn=100.0, read_noise_dn=2.0, bit_depth=12)
    volume = np.random.default_rng(5).integers(90, 4096, size=(32, 512, 512), dtype=np.uint16)
    volume[3, 4, 5], volume[30, 1, 2] = 17, 4095       # the range's ends in two different blocks
    tracemalloc.start()
    try:
        got = code_image(parse_spec(spec), volume, camera).decoded
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    if "shift" in spec:
        whole = (volume >> 7) << 7
    else:
        levels, lo, span = 255, 17, 4095 - 17
        whole = _whole(lo + np.rint((volume.astype(np.float64) - lo) * (levels / span)) * (span / levels), np.uint16)
    np.testing.assert_array_equal(got, whole)
    # the uint16 result (16 MiB) and one block's intermediates, well under one float64 copy (64 MiB)
    assert peak < volume.size * 8 // 2, f"peak {peak / 2**20:.0f} MiB"
    # blocks of a few planes (a partial last one) give the same samples
    monkeypatch.setattr(_base, "TO_DTYPE_BLOCK", 3 * 512 * 512)
    np.testing.assert_array_equal(code_image(parse_spec(spec), volume, camera).decoded, whole)
