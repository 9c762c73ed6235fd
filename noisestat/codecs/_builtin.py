"""The codecs of the assessment: lossless, bit-depth reduction, 8-bit JPEG and decoded files."""

from __future__ import annotations

import math
import os
from pathlib import Path

import imagecodecs
import numpy as np

from .._io import _read_any, file_sha256
from ..errors import CodecError, InputError
from ._base import Codec, CodecKey, register


def _range_scale(image: np.ndarray, levels: int):
    """Map the image's own min..max onto 0..levels (ImageJ's conversion to 8 bit)."""
    lo, hi = int(image.min()), int(image.max())
    span = max(hi - lo, 1)
    codes = np.rint((image.astype(np.float64) - lo) * (levels / span))
    return codes, lo, span


def _range_unscale(codes: np.ndarray, lo: int, span: int, levels: int) -> np.ndarray:
    return lo + codes.astype(np.float64) * (span / levels)


@register
class Lossless(Codec):
    name = "lossless"
    summary = "lossless coding of the whole image; decodes to the raw exactly (eps = 0)"
    keys = (CodecKey("method", str, "entropy coder", default="png", choices=("png", "zstd")),)

    def apply(self, image, profile):
        if self.params["method"] == "png":
            stream = imagecodecs.png_encode(image, level=9)
            decoded = imagecodecs.png_decode(stream).reshape(image.shape)
        else:
            stream = imagecodecs.zstd_encode(np.ascontiguousarray(image).tobytes(), level=19)
            decoded = np.frombuffer(imagecodecs.zstd_decode(stream), image.dtype).reshape(image.shape)
        if not np.array_equal(decoded, image):
            raise CodecError(f"lossless:{self.params['method']} did not reproduce the image exactly")
        return self.result(image, decoded, len(stream))


@register
class BitDepth(Codec):
    name = "bitdepth"
    summary = ("bit-depth reduction: minmax scales the image's min..max to 0..2^bits-1 (ImageJ's "
               "'8-bit'); shift drops the low bits of the camera's bit depth; both scale back to raw")
    keys = (CodecKey("bits", int, "bits kept per pixel", default=8, low=1, high=15),
            CodecKey("mode", str, "minmax or shift", default="minmax", choices=("minmax", "shift")))

    def apply(self, image, profile):
        bits = self.params["bits"]
        if self.params["mode"] == "minmax":
            levels = 2**bits - 1
            codes, lo, span = _range_scale(image, levels)
            decoded = _range_unscale(codes, lo, span, levels)
            side, info = 2 * image.itemsize, {"min": lo, "max": lo + span}
        else:
            shift = profile.bit_depth - bits
            if shift <= 0:
                raise CodecError(f"bitdepth:mode=shift keeps {bits} bits but the camera has only "
                                 f"{profile.bit_depth}; choose bits < {profile.bit_depth}")
            codes = np.minimum(image.astype(np.int64), profile.max_dn) >> shift
            decoded = codes << shift
            side, info = 0, {"shift": shift}
        # The stream of a plain packed store: `bits` bits per pixel, no entropy coding.
        n_bytes = math.ceil(image.size * bits / 8) + side
        return self.result(image, decoded, n_bytes, **info)


@register
class Jpeg(Codec):
    name = "jpeg"
    summary = ("baseline 8-bit JPEG of the whole image, range-scaled to 8 bit as ImageJ does; "
               "ratio= bisects the quality until raw bytes / stream bytes is within 5 % of the target")
    keys = (CodecKey("ratio", float, "target compression ratio", low=1.0, high=1e6),
            CodecKey("quality", int, "JPEG quality", low=1, high=100))
    TOLERANCE = 0.05

    def check(self):
        if self.params["ratio"] is not None and self.params["quality"] is not None:
            raise CodecError("codec jpeg: give ratio= or quality=, not both")
        if self.params["ratio"] is None and self.params["quality"] is None:
            raise CodecError("codec jpeg: needs ratio=R (target compression ratio) or quality=Q (1-100)")

    def apply(self, image, profile):
        codes, lo, span = _range_scale(image, 255)
        codes = codes.astype(np.uint8)
        side = 2 * image.itemsize  # the range (min, max) needed to scale back

        def encode(quality):
            return imagecodecs.jpeg8_encode(codes, level=quality, optimize=True)

        if self.params["quality"] is not None:
            quality, stream, tries = self.params["quality"], encode(self.params["quality"]), 1
        else:
            quality, stream, tries = self._bisect(image.nbytes, side, encode)
        decoded = _range_unscale(imagecodecs.jpeg8_decode(stream).reshape(image.shape), lo, span, 255)
        return self.result(image, decoded, len(stream) + side, quality_used=quality, encodes=tries,
                           min=lo, max=lo + span, huffman="optimized")

    def _bisect(self, raw_bytes, side, encode):
        """Integer quality whose ratio is closest to the target (ratio falls as quality rises)."""
        target = self.params["ratio"]
        cache = {}

        def ratio(q):
            if q not in cache:
                cache[q] = encode(q)
            return raw_bytes / (len(cache[q]) + side)

        lo, hi = 1, 100  # invariant: ratio(lo) >= target > ratio(hi), once both ends are checked
        if ratio(lo) < target:
            best = lo
        elif ratio(hi) >= target:
            best = hi
        else:
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if ratio(mid) >= target:
                    lo = mid
                else:
                    hi = mid
            best = min((lo, hi), key=lambda q: abs(ratio(q) / target - 1))
        achieved = ratio(best)
        if abs(achieved / target - 1) > self.TOLERANCE:
            raise CodecError(f"{self.spec}: ratio {target:g} cannot be reached within 5 %; the closest "
                             f"is {achieved:.3g} at quality {best}")
        return best, cache[best], len(cache)


@register
class File(Codec):
    name = "file"
    summary = ("an image decoded by any external tool (e.g. a vendor codec), read from path=; "
               "stream= names the compressed file, whose size gives the ratio")
    keys = (CodecKey("path", str, "decoded image (TIFF, PNG, ...), same shape as the raw"),
            CodecKey("stream", str, "compressed file, for the compression ratio (optional)"))

    def check(self):
        if not self.params["path"]:
            raise CodecError("codec file: needs path=DECODED_IMAGE")
        for key in ("path", "stream"):
            value = self.params[key]
            if value and not os.path.isfile(value):
                raise CodecError(f"codec file: {key}={value}: no such file")

    def _read(self, image):
        path = self.params["path"]
        try:
            decoded = np.squeeze(_read_any(Path(path)))
        except InputError as exc:
            raise CodecError(f"codec file: {exc}") from None
        if decoded.shape != image.shape:
            raise CodecError(f"codec file: {path} has shape {decoded.shape}; the raw image has {image.shape}")
        if not (np.issubdtype(decoded.dtype, np.integer) or np.issubdtype(decoded.dtype, np.floating)):
            raise CodecError(f"codec file: {path} holds {decoded.dtype} values, not numbers")
        return decoded

    def prepare(self, image, profile):
        self._read(image)

    def apply(self, image, profile):
        path = self.params["path"]
        decoded = self._read(image)
        n_bytes = os.path.getsize(self.params["stream"]) if self.params["stream"] else None
        info = {"sha256": file_sha256(path), "dtype": str(decoded.dtype)}
        if self.params["stream"]:
            info["stream_sha256"] = file_sha256(self.params["stream"])
        return self.result(image, decoded, n_bytes, **info)
