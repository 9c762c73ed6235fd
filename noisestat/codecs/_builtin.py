"""Lossless coding, bit-depth reduction, and images decoded by external tools."""

from __future__ import annotations

import math
import os
import struct
from pathlib import Path

import imagecodecs
import numpy as np

from ..io._files import _read_any, file_sha256
from ..errors import CodecError, InputError
from ._base import Codec, CodecKey, map_blocks, register, to_dtype
from ._transforms import range_scale, range_unscale


def _to_offsets(image: np.ndarray):
    """Order-preserving exact map of any integer image to unsigned offsets from its minimum.

    Signed samples become unsigned by flipping the sign bit (the two's-complement order then
    matches the unsigned order), so ``image - min`` is computed without overflow at any width.
    Returns ``(offsets as uint64, minimum as an unsigned word)``.
    """
    unsigned = np.dtype(f"u{image.itemsize}")
    words = image.view(unsigned)
    if image.dtype.kind == "i":
        words = words ^ unsigned.type(1 << (8 * image.itemsize - 1))
    lo = words.min()
    return (words - lo).astype(np.uint64), int(lo)


def _from_offsets(offsets: np.ndarray, lo: int, dtype: np.dtype) -> np.ndarray:
    unsigned = np.dtype(f"u{dtype.itemsize}")
    words = (offsets + np.uint64(lo)).astype(unsigned)
    if dtype.kind == "i":
        words = words ^ unsigned.type(1 << (8 * dtype.itemsize - 1))
    return words.view(dtype)


def _png_planes(offsets: np.ndarray) -> np.ndarray:
    """Offsets as PNG samples: 8 or 16 bits of grey, or 2 / 4 16-bit channels for wider ranges."""
    top = int(offsets.max())
    if top < 2**8:
        return offsets.astype(np.uint8)
    if top < 2**16:
        return offsets.astype(np.uint16)
    n_words = 2 if top < 2**32 else 4
    shifts = np.arange(n_words - 1, -1, -1, dtype=np.uint64) * np.uint64(16)  # most significant word first
    return ((offsets[..., None] >> shifts) & np.uint64(0xFFFF)).astype(np.uint16)


def _png_offsets(planes: np.ndarray) -> np.ndarray:
    planes = planes.astype(np.uint64)
    if planes.ndim == 2:
        return planes
    shifts = np.arange(planes.shape[-1] - 1, -1, -1, dtype=np.uint64) * np.uint64(16)
    return np.bitwise_or.reduce(planes << shifts, axis=-1)


_OFFSET = struct.Struct("<Q")  # the image minimum (as an unsigned word), in front of the PNG stream


@register
class Lossless(Codec):
    name = "lossless"
    lossless = True
    exact_64bit = True
    volume = "volume"
    summary = "lossless coding of the whole image; decodes to the raw exactly (eps = 0)"
    keys = (CodecKey("method", str, "entropy coder", default="png", choices=("png", "zstd")),)

    # PNG holds unsigned 8- and 16-bit samples. Other integer images (signed, 32-, 64-bit) are coded
    # as offsets from their minimum, which travels in front of the stream: one grey channel when the
    # range fits 16 bits, else 2 (32 bits) or 4 (64 bits) 16-bit channels of one pixel. A volume
    # (z, rows, cols) is one PNG of its planes one below the other (z * rows, cols); zstd codes the
    # volume's bytes as one stream.
    def apply(self, image, profile):
        self.check_image(image)
        if self.params["method"] == "png":
            tall = image.reshape(-1, image.shape[-1])
            if image.dtype in (np.uint8, np.uint16):
                stream = imagecodecs.png_encode(tall, level=9)
                decoded = imagecodecs.png_decode(stream).reshape(image.shape)
            else:
                offsets, lo = _to_offsets(tall)
                stream = _OFFSET.pack(lo) + imagecodecs.png_encode(_png_planes(offsets), level=9)
                planes = imagecodecs.png_decode(stream[_OFFSET.size:])
                (lo,) = _OFFSET.unpack(stream[:_OFFSET.size])
                decoded = _from_offsets(_png_offsets(planes).reshape(image.shape), lo, image.dtype)
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
    volume = "volume"  # one min..max (minmax) for the whole volume, one packed store
    summary = ("bit-depth reduction: minmax scales the image's min..max to 0..2^bits-1 (ImageJ's "
               "'8-bit'); shift drops the low bits of the camera's bit depth; both scale back to raw")
    keys = (CodecKey("bits", int, "bits kept per pixel", default=8, low=1, high=15),
            CodecKey("mode", str, "minmax or shift", default="minmax", choices=("minmax", "shift")))

    def _depth(self, image, profile):
        # the camera's bit depth when known, else the sample type's (a signed type's non-negative
        # half: 15 bits for int16)
        if profile is not None:
            return profile.bit_depth
        return np.iinfo(image.dtype).bits - (image.dtype.kind == "i")

    def check_image(self, image):
        super().check_image(image)
        if self.params["mode"] == "shift" and image.size and int(image.min()) < 0:
            raise CodecError(f"{self.spec}: drops the low bits of unsigned camera samples; this {image.dtype} image "
                             f"holds values down to {int(image.min())}. Use mode=minmax")

    def prepare(self, image, profile):
        super().prepare(image, profile)
        if self.params["mode"] == "shift":
            self._shift(image, profile)

    def _shift(self, image, profile):
        bits, depth = self.params["bits"], self._depth(image, profile)
        if depth - bits <= 0:
            raise CodecError(f"bitdepth:mode=shift keeps {bits} bits but the camera has only "
                             f"{depth}; choose bits < {depth}")
        return depth, depth - bits

    def apply(self, image, profile):
        self.check_image(image)
        bits = self.params["bits"]
        if self.params["mode"] == "minmax":
            levels = 2**bits - 1
            lo, hi = (int(image.min()), int(image.max())) if image.size else (0, 0)
            span = max(hi - lo, 1)

            def code(block):
                codes, _, _ = range_scale(block, levels, lo=lo, span=span)
                return to_dtype(range_unscale(codes, lo, span, levels), image.dtype)
            side, info = 2 * image.itemsize, {"min": lo, "max": lo + span}
        else:
            depth, shift = self._shift(image, profile)

            def code(block):
                # unsigned 64-bit arithmetic: exact for every non-negative sample of any width; the
                # decoded sample is at most the raw one, so it fits the raw sample type
                codes = np.minimum(block.astype(np.uint64), np.uint64(2**depth - 1)) >> np.uint64(shift)
                return (codes << np.uint64(shift)).astype(image.dtype)
            side, info = 0, {"shift": shift}
        # block by block: a volume costs its decoded copy and one block's intermediates
        decoded = map_blocks(image, image.dtype, code)
        # The stream of a plain packed store: `bits` bits per pixel, no entropy coding.
        n_bytes = math.ceil(image.size * bits / 8) + side
        return self.result(image, decoded, n_bytes, **info)


@register
class File(Codec):
    name = "file"
    exact_64bit = True  # the decoded file is only compared with the raw, never mapped through float64
    volume = "volume"   # the file holds the whole decoded volume
    summary = ("an image decoded by any external tool (e.g. a vendor codec), read from path=; "
               "stream= names the compressed file, whose size gives the ratio")
    keys = (CodecKey("path", str, "decoded image or volume (TIFF, PNG, ...), same shape as the raw"),
            CodecKey("stream", str, "compressed file, for the compression ratio (optional)"))

    def check(self):
        if not self.params["path"]:
            raise CodecError("codec file: needs path=DECODED_IMAGE")
        path, stream = self.params["path"], self.params["stream"]
        if not (os.path.isfile(path) or os.path.isdir(path)):  # a folder: an OME-Zarr image
            raise CodecError(f"codec file: path={path}: no such file or folder")
        if stream:
            if not os.path.isfile(stream):
                raise CodecError(f"codec file: stream={stream}: no such file")
            if os.path.getsize(stream) == 0:
                raise CodecError(f"codec file: stream={stream}: the file is empty; the compression ratio needs "
                                 f"the compressed file (leave stream= out for no ratio)")

    def _read(self, image):
        """The decoded image or volume in the file, checked against the raw ``image``: the same shape
        (axes of length 1 dropped, so an ImageJ hyperstack of one channel fits), finite numbers. Its
        values are rounded and clipped into the raw sample type afterwards (:func:`to_dtype`)."""
        path = self.params["path"]
        try:
            decoded = np.squeeze(_read_any(Path(path)))
        except InputError as exc:
            raise CodecError(f"codec file: {exc}") from None
        raw = "raw volume" if image.ndim == 3 else "raw image"
        if decoded.shape != image.shape:
            raise CodecError(f"codec file: {path} has shape {decoded.shape}; the {raw} has {image.shape}")
        if not (np.issubdtype(decoded.dtype, np.integer) or np.issubdtype(decoded.dtype, np.floating)):
            raise CodecError(f"codec file: {path} holds {decoded.dtype} values, not numbers")
        if not decoded.size:
            return decoded
        if np.issubdtype(decoded.dtype, np.floating) and not np.isfinite(decoded).all():
            raise CodecError(f"codec file: {path} holds NaN or infinite values")
        return decoded

    def prepare(self, image, profile):
        super().prepare(image, profile)
        self._read(image)

    def apply(self, image, profile):
        self.check_image(image)
        path = self.params["path"]
        decoded = self._read(image)
        n_bytes = os.path.getsize(self.params["stream"]) if self.params["stream"] else None
        info = {"sha256": file_sha256(path), "dtype": str(decoded.dtype)}
        if self.params["stream"]:
            info["stream_sha256"] = file_sha256(self.params["stream"])
        return self.result(image, decoded, n_bytes, **info)
