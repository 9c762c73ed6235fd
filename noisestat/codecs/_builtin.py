"""Lossless coding, bit-depth reduction, and images decoded by external tools."""

from __future__ import annotations

import math
import os
from pathlib import Path

import imagecodecs
import numpy as np

from .._io import _read_any, file_sha256
from ..errors import CodecError, InputError
from ._base import Codec, CodecKey, register
from ._transforms import range_scale, range_unscale


@register
class Lossless(Codec):
    name = "lossless"
    lossless = True
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
    # for `noisestat tune`: fewer bits compress more
    knob, knob_range, knob_integer, ratio_grows = "bits", (1, 15), True, False
    summary = ("bit-depth reduction: minmax scales the image's min..max to 0..2^bits-1 (ImageJ's "
               "'8-bit'); shift drops the low bits of the camera's bit depth; both scale back to raw")
    keys = (CodecKey("bits", int, "bits kept per pixel", default=8, low=1, high=15),
            CodecKey("mode", str, "minmax or shift", default="minmax", choices=("minmax", "shift")))

    def apply(self, image, profile):
        bits = self.params["bits"]
        if self.params["mode"] == "minmax":
            levels = 2**bits - 1
            codes, lo, span = range_scale(image, levels)
            decoded = range_unscale(codes, lo, span, levels)
            side, info = 2 * image.itemsize, {"min": lo, "max": lo + span}
        else:
            # the camera's bit depth when known, else the sample type's
            depth = profile.bit_depth if profile is not None else np.iinfo(image.dtype).bits
            shift = depth - bits
            if shift <= 0:
                raise CodecError(f"bitdepth:mode=shift keeps {bits} bits but the camera has only "
                                 f"{depth}; choose bits < {depth}")
            codes = np.minimum(image.astype(np.int64), 2**depth - 1) >> shift
            decoded = codes << shift
            side, info = 0, {"shift": shift}
        # The stream of a plain packed store: `bits` bits per pixel, no entropy coding.
        n_bytes = math.ceil(image.size * bits / 8) + side
        return self.result(image, decoded, n_bytes, **info)


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
