"""Noise-aware coding: quantise each pixel in steps of its own noise sigma, then code losslessly.

An open equivalent of noise replacement. With the camera's gain K, offset and read noise, the
generalised Anscombe transform (:mod:`._transforms`) maps the image to z with unit noise sd at every
intensity; z is quantised with step B (so each step is B sigma), optionally with subtractive dither
drawn from a recorded seed (the dither is regenerated at decoding and subtracted, which makes the
quantisation error uniform and independent of the signal), and the integer codes are coded by a
lossless back end. Everything decoding needs (K, offset, read noise, B, dither seed, code offset,
back end) is in the stream's header: decoding needs no profile (:func:`decode_noiseaware`).

A volume ``(z, rows, cols)`` is one stream: the transform and the quantisation are per voxel, and
the back end codes the codes as one JPEG XL of z frames, one PNG of the planes one below the
other, or one zstd stream of all the codes; the header (version 2) adds the number of planes.

The quantisation error has variance B^2/12 in z, so the decoded image carries noise
sqrt(1 + B^2/12) times the camera's: +4 % at B = 1, +32 % at B = 3. The inverse transform's bias
from that error (K B^2 / 48 DN) is removed.
"""

from __future__ import annotations

import struct

import imagecodecs
import numpy as np

from ..errors import CodecError
from ._base import Codec, CodecKey, register
from ._transforms import gat, inverse_gat

__all__ = ["encode_noiseaware", "decode_noiseaware"]

_MAGIC = b"NSNA"
_VERSION = 1         # a 2D image
_VOLUME_VERSION = 2  # a volume: the header ends with its number of planes
_BACKENDS = ("jpegxl", "png", "zstd")
# magic, version, backend, dither, code dtype, rows, cols, seed, K, offset, read, step, code minimum
_HEADER = struct.Struct("<4sBBBBIIQdddd q")
_PLANES = struct.Struct("<I")


def _code_dtype(span: int, image_dtype=None):
    # uint8 codes overflow for wide ranges (a known fault of a published transform package)
    if span < 2**8:
        return np.uint8, 1
    if span < 2**16:
        return np.uint16, 2
    image = f"this {image_dtype} image needs" if image_dtype is not None else "the image needs"
    raise CodecError(f"noiseaware: {image} {span + 1} quantisation levels; the codes hold at most 65536 (16 bits); "
                     f"use a larger step")


def _dither(seed: int, shape) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.5, 0.5, size=shape)


def encode_noiseaware(image: np.ndarray, *, gain: float, offset: float, read: float, step: float,
                      dither: bool = False, seed: int = 0, backend: str = "jpegxl") -> bytes:
    """Encode ``image`` (2D integers, or a volume ``(z, rows, cols)``) into a self-describing noise-aware stream."""
    if image.ndim not in (2, 3):
        raise CodecError(f"noiseaware: codes 2D images and 3D volumes; got shape {image.shape}")
    z = gat(image, gain, offset, read) / step
    if dither:
        z = z + _dither(seed, image.shape)
    q = np.rint(z).astype(np.int64)
    qmin = int(q.min())
    dtype, code = _code_dtype(int(q.max()) - qmin, image.dtype)
    codes = (q - qmin).astype(dtype)
    if backend == "jpegxl":
        payload = imagecodecs.jpegxl_encode(codes, lossless=True, effort=7)  # a volume: its planes as frames
    elif backend == "png":
        payload = imagecodecs.png_encode(codes.reshape(-1, codes.shape[-1]), level=9)
    else:
        payload = imagecodecs.zstd_encode(codes.tobytes(), level=19)
    version = _VERSION if image.ndim == 2 else _VOLUME_VERSION
    header = _HEADER.pack(_MAGIC, version, _BACKENDS.index(backend), int(dither), code, image.shape[-2],
                          image.shape[-1], seed, gain, offset, read, step, qmin)
    if image.ndim == 3:
        header += _PLANES.pack(image.shape[0])
    return header + payload


def decode_noiseaware(stream: bytes) -> np.ndarray:
    """Decode a stream of :func:`encode_noiseaware` to float DN values (no profile needed)."""
    if len(stream) < _HEADER.size or stream[:4] != _MAGIC:
        raise CodecError("not a noise-aware stream")
    (_, version, backend, dither, code, rows, cols, seed, gain, offset, read, step,
     qmin) = _HEADER.unpack(stream[:_HEADER.size])
    if version not in (_VERSION, _VOLUME_VERSION):
        raise CodecError(f"noise-aware stream version {version} is not supported")
    payload = stream[_HEADER.size:]
    shape = (rows, cols)
    if version == _VOLUME_VERSION:
        if len(payload) < _PLANES.size:
            raise CodecError("not a noise-aware stream")
        shape = (_PLANES.unpack(payload[:_PLANES.size])[0], rows, cols)
        payload = payload[_PLANES.size:]
    dtype = np.uint8 if code == 1 else np.uint16
    name = _BACKENDS[backend]
    if name == "jpegxl":
        codes = imagecodecs.jpegxl_decode(payload)
    elif name == "png":
        codes = imagecodecs.png_decode(payload)
    else:
        codes = np.frombuffer(imagecodecs.zstd_decode(payload), dtype)
    z = np.asarray(codes).reshape(shape).astype(np.float64) + qmin
    if dither:
        z = z - _dither(seed, shape)
    return inverse_gat(z * step, gain, offset, read, error_variance=step**2 / 12)


@register
class NoiseAware(Codec):
    name = "noiseaware"
    summary = ("variance-stabilised quantisation in steps of step x the per-pixel noise sigma (from the "
               "camera profile), optional seeded subtractive dither, lossless back end; self-describing stream")
    keys = (CodecKey("step", float, "quantisation step B in units of the noise sigma", default=1.0, low=0.01, high=100),
            CodecKey("dither", int, "subtractive dither from a recorded seed", default=0, choices=(0, 1)),
            CodecKey("seed", int, "seed of the dither", default=0, low=0, high=2**63 - 1),
            CodecKey("backend", str, "lossless coder of the integer codes", default="jpegxl", choices=_BACKENDS))
    needs_profile = True
    volume = "volume"
    # for `noisestat tune`: a larger step compresses more
    knob, knob_range, knob_integer, ratio_grows = "step", (0.05, 20.0), False, True

    def prepare(self, image, profile):
        super().prepare(image, profile)
        # the transform is monotone: the image's extremes give the range of the codes
        ends = np.array([image.min(), image.max()], dtype=np.float64)
        z = gat(ends, profile.gain_dn_per_e, profile.offset_dn, profile.read_noise_dn) / self.params["step"]
        _code_dtype(int(np.rint(z[1])) - int(np.rint(z[0])) + 2 * self.params["dither"], image.dtype)

    def apply(self, image, profile):
        if profile is None:
            raise CodecError(f"{self.spec}: needs the camera profile (--camera)")
        self.check_image(image)
        p = self.params
        stream = encode_noiseaware(image, gain=profile.gain_dn_per_e, offset=profile.offset_dn,
                                   read=profile.read_noise_dn, step=p["step"], dither=bool(p["dither"]),
                                   seed=p["seed"], backend=p["backend"])
        decoded = decode_noiseaware(stream)
        return self.result(image, decoded, len(stream), noise_inflation=float(np.sqrt(1 + p["step"] ** 2 / 12)),
                           transform={"gain_dn_per_e": profile.gain_dn_per_e, "offset_dn": profile.offset_dn,
                                      "read_noise_dn": profile.read_noise_dn})
