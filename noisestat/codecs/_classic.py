"""Image codecs of imagecodecs, whole image, true stream sizes, a target ratio or the native knob.

Every codec here encodes the whole image as one stream (no tiles) and counts every byte the
decoder needs: the stream plus the side information of the intensity mapping (a few float64
numbers, packed in front of the stream). ``ratio=R`` bisects the codec's native knob until the
raw bytes / stream bytes ratio is within 5 % of R (see :func:`bisect_ratio`); the knob value used
is recorded as ``knob_used``.

These are 2D codecs: a volume is coded plane by plane (``volume = "planes"``), every plane at one
knob value, and ``ratio=R`` bisects that one knob until the whole volume's ratio (raw bytes of the
volume / the planes' streams together) is within 5 % of R (:meth:`KnobCodec.apply_planes`).
"""

from __future__ import annotations

import struct
from typing import ClassVar

import imagecodecs
import numpy as np

from ..errors import CodecError
from ._base import Codec, CodecKey, bisect_ratio, describe_sample_ranges, fit_sample_type, register
from ._transforms import range_scale, range_unscale, stretch, unstretch

__all__ = ["KnobCodec"]

RATIO = CodecKey("ratio", float, "target compression ratio (bisection on the knob, within 5 %)", low=1.0, high=1e6)
NORMALISE = CodecKey("normalise", str, "stretch: exact integer stretch of min..max to the full range "
                     "(so the knob means the same on dim images); none: raw values",
                     default="stretch", choices=("stretch", "none"))


def _pack(values) -> bytes:
    return struct.pack(f"<{len(values)}d", *values)


class KnobCodec(Codec):
    """A codec with one native knob, a ``ratio=`` target and a recorded intensity mapping.

    Subclasses define ``knob`` (the key name), ``knob_range``, ``knob_integer``,
    ``ratio_grows`` (True when a larger knob compresses more), ``_forward``/``_inverse`` (the
    intensity mapping, returning side-information numbers) and ``_encode``/``_decode``. A knob
    value of None means the codec's lossless mode, where it has one.
    """

    knob: ClassVar[str]
    knob_range: ClassVar[tuple[float, float]]
    knob_integer: ClassVar[bool] = False
    ratio_grows: ClassVar[bool] = False
    has_lossless_mode: ClassVar[bool] = True

    def check(self):
        if self.params.get("ratio") is not None and self.params.get(self.knob) is not None:
            raise CodecError(f"codec {self.name}: give ratio= or {self.knob}=, not both")
        if not self.has_lossless_mode and self.params.get("ratio") is None and self.params.get(self.knob) is None:
            raise CodecError(f"codec {self.name}: needs ratio=R or {self.knob}=")

    def _fixed_knob(self):
        """The knob value when no ratio is targeted (None: the lossless mode)."""
        return self.params.get(self.knob)

    def _is_lossless_mode(self) -> bool:
        return self.has_lossless_mode and self.params.get("ratio") is None and self._fixed_knob() is None

    def _forward(self, image, profile):
        """Data to encode and side-information numbers (default: none)."""
        return image, ()

    def _inverse(self, decoded, side, image):
        return decoded

    def apply(self, image, profile):
        self.check_image(image)
        data, side = self._forward(image, profile)
        header = _pack(side)

        def encode(knob):
            return header + self._encode(data, knob)

        if self.params.get("ratio") is not None:
            knob, stream, tries = bisect_ratio(self.params["ratio"], encode, image.nbytes, *self.knob_range,
                                               integer=self.knob_integer, increasing=self.ratio_grows, spec=self.spec)
        else:
            knob, tries = self._fixed_knob(), 1
            stream = encode(knob)
        decoded = self._decode(stream[len(header):], data)
        decoded = self._inverse(np.asarray(decoded), side, image)
        result = self.result(image, decoded, len(stream), knob_used=knob, encodes=tries,
                             side_information=list(side))
        # a library fault must not pass for lossless coding (OpenJPEG's 32-bit samples did)
        if self._is_lossless_mode() and not np.array_equal(result.decoded, image):
            raise CodecError(f"{self.spec}: the lossless mode did not reproduce this {image.dtype} image exactly")
        return result

    def apply_planes(self, image, profile):
        """A volume plane by plane; with ``ratio=``, one knob value for every plane, bisected on the
        whole volume's ratio (raw bytes of the volume / the planes' streams together)."""
        if self.volume != "planes" or self.params.get("ratio") is None:
            return super().apply_planes(image, profile)
        for plane in image:
            self.check_image(plane)
        mapped = []  # per plane: (data, side, header)
        for plane in image:
            data, side = self._forward(plane, profile)
            mapped.append((data, side, _pack(side)))
        lengths = {}

        def encode(knob):
            parts = []
            for plane, (data, side, header) in zip(image, mapped):
                self._forward(plane, profile)  # a codec may keep per-plane state for _encode (AVIF's bits)
                parts.append(header + self._encode(data, knob))
            lengths[knob] = [len(p) for p in parts]
            return b"".join(parts)

        knob, stream, tries = bisect_ratio(self.params["ratio"], encode, image.nbytes, *self.knob_range,
                                           integer=self.knob_integer, increasing=self.ratio_grows, spec=self.spec)
        decoded, start = [], 0
        for plane, (data, side, header), length in zip(image, mapped, lengths[knob]):
            part = stream[start + len(header):start + length]
            start += length
            self._forward(plane, profile)
            decoded.append(self._inverse(np.asarray(self._decode(part, data)), side, plane))
        return self.result(image, np.stack(decoded), len(stream), knob_used=knob, encodes=tries,
                           side_information=[list(side) for _, side, _ in mapped])


def _full(*dtypes):
    return {np.dtype(d): (int(np.iinfo(d).min), int(np.iinfo(d).max)) for d in dtypes}


class _Stretched(KnobCodec):
    """Codecs taking the raw integer samples, with the optional exact integer stretch.

    ``sample_ranges`` maps each sample type the library codes exactly to the values it codes
    exactly. With ``normalise=stretch`` the codes are unsigned: 8-bit for 8-bit images, 16-bit when the image's
    range fits (whatever its own type: the knob then means the same as on a 16-bit image), else the
    library's 32-bit type if it has one. With ``normalise=none`` the raw values are coded in the
    image's own type, or the narrowest one holding them all. Anything else is refused up front.
    """

    library: ClassVar[str]
    sample_ranges: ClassVar[dict] = _full(np.uint8, np.uint16)

    def _sample_type(self, image):
        """(code dtype, top code) for this image, or CodecError naming the codec, dtype and limit."""
        ranges = self.sample_ranges
        lo, hi = int(image.min()), int(image.max())
        if self.params["normalise"] == "none":
            dtype = fit_sample_type(image, ranges)
            if dtype is None:
                raise CodecError(f"{self.spec}: {self.library} codes {describe_sample_ranges(ranges)} samples; this "
                                 f"{image.dtype} image holds values {lo}..{hi}. Give normalise=stretch")
            return dtype, None
        wanted = [np.dtype(np.uint8)] if image.dtype.itemsize == 1 else []
        for dtype in wanted + [np.dtype(np.uint16), np.dtype(np.uint32)]:
            if dtype in ranges and ranges[dtype][0] == 0 and hi - lo <= ranges[dtype][1]:
                return dtype, ranges[dtype][1]
        levels = max(top - bottom + 1 for bottom, top in ranges.values())
        raise CodecError(f"{self.spec}: {self.library} codes at most {levels} levels "
                         f"({describe_sample_ranges(ranges)}); this {image.dtype} image spans {hi - lo + 1} "
                         f"({lo}..{hi})")

    def check_image(self, image):
        super().check_image(image)
        self._sample_type(image)

    def _forward(self, image, profile):
        dtype, top = self._sample_type(image)
        if top is None:
            return image.astype(dtype, copy=False), ()
        codes, lo, factor = stretch(image, top, dtype)
        return codes, (lo, factor)

    def _inverse(self, decoded, side, image):
        return unstretch(decoded, *side) if side else decoded


@register
class Jpeg(KnobCodec):
    name = "jpeg"
    summary = ("baseline JPEG (libjpeg-turbo, Huffman tables optimised) of the whole image, range-scaled "
               "to 8 bit as ImageJ does (or to 12 bit with bits=12)")
    keys = (RATIO, CodecKey("quality", int, "JPEG quality", low=1, high=100),
            CodecKey("bits", int, "sample bits of the JPEG", default=8, choices=(8, 12)))
    knob, knob_range, knob_integer = "quality", (1, 100), True
    has_lossless_mode = False

    def _forward(self, image, profile):
        levels = 2 ** self.params["bits"] - 1
        codes, lo, span = range_scale(image, levels)
        return codes.astype(np.uint8 if levels == 255 else np.uint16), (lo, span)

    def _inverse(self, decoded, side, image):
        return range_unscale(decoded.reshape(image.shape), side[0], side[1], 2 ** self.params["bits"] - 1)

    def _encode(self, data, quality):
        kw = {"bitspersample": 12} if self.params["bits"] == 12 else {}
        return imagecodecs.jpeg8_encode(data, level=int(quality), optimize=True, **kw)

    def _decode(self, stream, data):
        return imagecodecs.jpeg8_decode(stream)


@register
class Jpeg2k(_Stretched):
    name = "jpeg2k"
    summary = "JPEG 2000 (OpenJPEG), whole image; lossless (reversible 5/3 wavelet) unless psnr= or ratio= is given"
    keys = (RATIO, CodecKey("psnr", float, "target PSNR in dB relative to the sample range (imagecodecs level)",
                            low=10, high=150), NORMALISE)
    knob, knob_range = "psnr", (15.0, 120.0)
    library = "JPEG 2000 (OpenJPEG)"
    # measured: OpenJPEG decodes 32-bit samples wrongly, lossy at any precision and even reversible
    # on smooth content that fits 16 bits
    sample_ranges = _full(np.uint8, np.int8, np.uint16, np.int16)

    def _encode(self, data, psnr):
        if psnr is None:
            return imagecodecs.jpeg2k_encode(data, reversible=True)
        return imagecodecs.jpeg2k_encode(data, level=float(psnr))

    def _decode(self, stream, data):
        return imagecodecs.jpeg2k_decode(stream)


@register
class Htj2k(_Stretched):
    name = "htj2k"
    summary = "High-Throughput JPEG 2000 (OpenJPH), whole image; lossless unless qstep= or ratio= is given"
    keys = (RATIO, CodecKey("qstep", float, "quantisation step relative to the sample range", low=1e-3, high=1.0),
            NORMALISE)
    knob, knob_range, ratio_grows = "qstep", (1e-3, 1.0), True
    library = "HTJ2K (OpenJPH)"
    sample_ranges = _full(np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32)

    def _encode(self, data, qstep):
        if qstep is None:
            return imagecodecs.htj2k_encode(data, reversible=True)
        return imagecodecs.htj2k_encode(data, level=float(qstep))

    def _decode(self, stream, data):
        return imagecodecs.htj2k_decode(stream)


@register
class JpegXr(_Stretched):
    name = "jpegxr"
    summary = "JPEG XR, whole image; quality 1 (default) is lossless"
    keys = (RATIO, CodecKey("quality", float, "JPEG XR quality; 1 is lossless", low=0.01, high=1.0), NORMALISE)
    knob, knob_range = "quality", (0.01, 0.999)
    library = "JPEG XR"

    def _encode(self, data, quality):
        return imagecodecs.jpegxr_encode(data, level=1.0 if quality is None else float(quality))

    def _decode(self, stream, data):
        return imagecodecs.jpegxr_decode(stream)


@register
class JpegXl(_Stretched):
    name = "jpegxl"
    summary = "JPEG XL (libjxl), whole image; lossless unless distance= or ratio= is given"
    keys = (RATIO, CodecKey("distance", float, "butteraugli distance (0.05 near-lossless .. 25)", low=0.01, high=25.0),
            CodecKey("effort", int, "encoder effort", default=7, low=1, high=9), NORMALISE)
    knob, knob_range, ratio_grows = "distance", (0.01, 25.0), True
    library = "JPEG XL"

    def _encode(self, data, distance):
        if distance is None:
            return imagecodecs.jpegxl_encode(data, lossless=True, effort=self.params["effort"])
        return imagecodecs.jpegxl_encode(data, distance=float(distance), effort=self.params["effort"])

    def _decode(self, stream, data):
        return imagecodecs.jpegxl_decode(stream)


class _RgbEightOrTwelve(KnobCodec):
    """Codecs for 3-channel images: grey is replicated to RGB, and read back from channel 0."""

    def _decode_grey(self, decoded):
        decoded = np.asarray(decoded)
        return decoded[..., 0] if decoded.ndim == 3 else decoded


@register
class WebP(_RgbEightOrTwelve):
    name = "webp"
    summary = "lossy WebP; takes 8-bit RGB only, so the image is range-scaled to 8 bit and replicated to RGB"
    keys = (RATIO, CodecKey("quality", int, "WebP quality", low=0, high=100))
    knob, knob_range, knob_integer = "quality", (0, 100), True
    has_lossless_mode = False

    def _forward(self, image, profile):
        codes, lo, span = range_scale(image, 255)
        return np.repeat(codes.astype(np.uint8)[..., None], 3, axis=2), (lo, span)

    def _inverse(self, decoded, side, image):
        return range_unscale(decoded, side[0], side[1], 255)

    def _encode(self, data, quality):
        return imagecodecs.webp_encode(data, level=int(quality), lossless=False)

    def _decode(self, stream, data):
        return self._decode_grey(imagecodecs.webp_decode(stream))


@register
class Avif(_RgbEightOrTwelve):
    name = "avif"
    summary = ("AVIF (AV1); takes at most 12-bit samples and goes lossless on one channel, so grey is "
               "replicated to RGB; bits= scales the range explicitly, never silently")
    keys = (RATIO, CodecKey("quality", int, "AVIF quality", low=0, high=100),
            CodecKey("bits", int, "sample bits: range-scale min..max to 2^bits - 1 (default: the data "
                     "must already fit in 12 bits)", choices=(8, 10, 12)),
            CodecKey("speed", int, "encoder speed (slower is smaller)", default=6, low=0, high=10))
    knob, knob_range, knob_integer = "quality", (0, 100), True
    has_lossless_mode = False
    MAX_BITS = 12

    def check_image(self, image):
        super().check_image(image)
        if self.params["bits"] is not None:
            return
        top, bottom = int(image.max()), int(image.min())
        if top >= 2**self.MAX_BITS:
            raise CodecError(f"{self.spec}: AVIF takes at most {self.MAX_BITS}-bit samples; this image holds values "
                             f"up to {top} ({top.bit_length()} bits of {image.dtype}). Give bits=12 (or 10, 8) to "
                             f"scale its range explicitly")
        if bottom < 0:
            raise CodecError(f"{self.spec}: AVIF takes unsigned samples of at most {self.MAX_BITS} bits; this "
                             f"{image.dtype} image holds values down to {bottom}. Give bits=12 (or 10, 8) to scale "
                             f"its range explicitly")

    def _forward(self, image, profile):
        bits = self.params["bits"]
        if bits is None:
            bits = 8 if image.max() < 256 else (10 if image.max() < 1024 else 12)
            codes, side = image.astype(np.uint16 if bits > 8 else np.uint8), ()
        else:
            scaled, lo, span = range_scale(image, 2**bits - 1)
            codes, side = scaled.astype(np.uint16 if bits > 8 else np.uint8), (lo, span, bits)
        self._bits = bits
        return np.repeat(codes[..., None], 3, axis=2), side

    def _inverse(self, decoded, side, image):
        if not side:
            return decoded
        return range_unscale(decoded, side[0], side[1], 2 ** int(side[2]) - 1)

    def _encode(self, data, quality):
        kw = {"bitspersample": self._bits} if self._bits > 8 else {}
        return imagecodecs.avif_encode(data, level=int(quality), speed=self.params["speed"], **kw)

    def _decode(self, stream, data):
        return self._decode_grey(imagecodecs.avif_decode(stream))
