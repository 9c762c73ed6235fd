"""Error-bounded codecs: every decoded pixel within a stated bound of the raw one.

The bound is given in DN (``max_error=``) or in units of the camera's per-pixel noise sigma
(``max_error_sigma=``). For the latter the image is first mapped by the generalised Anscombe
transform of the profile (gain, offset, read noise), where the noise sd is 1 at every intensity:
an absolute bound k there is k sigma at each pixel (to first order in k sigma / signal). The
transform's three parameters travel with the stream.

Decoded values are rounded back to integers; with an integer bound in DN the rounded value stays
within the bound (the raw value is an integer inside the bound's interval).

All four code a volume ``(z, rows, cols)`` as one 3D array, one stream: SZ3, ZFP and SPERR predict or
transform along z as along rows and columns; LERC codes it as one raster whose pixels hold the z
values (its depth dimension), so the bound holds at every voxel and ``ratio=`` is the volume's.
"""

from __future__ import annotations

import struct

import imagecodecs
import numpy as np

from ..errors import CodecError
from ._base import CodecKey, fit_sample_type, register
from ._classic import RATIO, KnobCodec
from ._transforms import gat, inverse_gat

MAX_ERROR = CodecKey("max_error", float, "largest absolute error allowed, in DN", low=0.0, high=1e9)
# SPERR refuses a bound of 0 (it has no lossless mode): its smallest bound is a tiny positive one
SPERR_MAX_ERROR = CodecKey("max_error", float, "largest absolute error allowed, in DN (SPERR has no lossless "
                           "mode: > 0)", low=1e-6, high=1e9)
MAX_ERROR_SIGMA = CodecKey("max_error_sigma", float, "largest error in units of each pixel's noise sigma "
                           "(needs the camera profile)", low=1e-3, high=1e3)


class _Bounded(KnobCodec):
    knob, ratio_grows = "max_error", True
    volume = "volume"
    knob_range = (0.01, 1e5)

    def check(self):
        given = [k for k in ("ratio", "max_error", "max_error_sigma") if self.params.get(k) is not None]
        if len(given) > 1:
            raise CodecError(f"codec {self.name}: give one of ratio=, max_error=, max_error_sigma=; got {', '.join(given)}")
        if not given and not self.has_lossless_mode:
            raise CodecError(f"codec {self.name}: needs max_error= (DN), max_error_sigma= or ratio=")
        self.needs_profile = self.params.get("max_error_sigma") is not None

    def _forward(self, image, profile):
        if self.params.get("max_error_sigma") is None:
            return image.astype(np.float64), ()
        side = (profile.gain_dn_per_e, profile.offset_dn, profile.read_noise_dn)
        return gat(image, *side), side

    def _inverse(self, decoded, side, image):
        decoded = np.asarray(decoded, dtype=np.float64).reshape(image.shape)
        return inverse_gat(decoded, *side) if side else decoded

    def _fixed_knob(self):
        # a bound in sigma units is an absolute bound in the transformed domain, where sigma = 1
        sigma_bound = self.params.get("max_error_sigma")
        return self.params.get("max_error") if sigma_bound is None else sigma_bound


@register
class Sz3(_Bounded):
    name = "sz3"
    summary = "SZ3 error-bounded lossy compressor (absolute bound), on the samples as float64"
    keys = (RATIO, MAX_ERROR, MAX_ERROR_SIGMA)
    has_lossless_mode = False

    # SZ3's stream holds no shape: rows and cols (and planes, for a volume) go in front of it
    def _encode(self, data, bound):
        return struct.pack(f"<{data.ndim}I", *data.shape) + imagecodecs.sz3_encode(data, mode="abs", abs=float(bound))

    def _decode(self, stream, data):
        size = 4 * data.ndim
        shape = struct.unpack(f"<{data.ndim}I", stream[:size])
        return imagecodecs.sz3_decode(stream[size:], shape=shape, dtype=np.float64)


@register
class Zfp(_Bounded):
    name = "zfp"
    summary = "ZFP in fixed-accuracy mode (absolute tolerance), on the samples as float64"
    keys = (RATIO, MAX_ERROR, MAX_ERROR_SIGMA)
    has_lossless_mode = True

    def _encode(self, data, bound):
        if bound is None:
            return imagecodecs.zfp_encode(data)  # reversible mode: lossless
        return imagecodecs.zfp_encode(data, level=float(bound), mode="a")

    def _decode(self, stream, data):
        return imagecodecs.zfp_decode(stream)


@register
class Sperr(_Bounded):
    name = "sperr"
    summary = "SPERR wavelet compressor with a point-wise error bound, on the samples as float64"
    keys = (RATIO, SPERR_MAX_ERROR, MAX_ERROR_SIGMA)
    has_lossless_mode = False

    def _encode(self, data, bound):
        return imagecodecs.sperr_encode(data, level=float(bound), mode="pwe")

    def _decode(self, stream, data):
        return imagecodecs.sperr_decode(stream)


@register
class Lerc(_Bounded):
    name = "lerc"
    summary = "LERC (limited error raster compression); max_error 0 (default) is lossless"
    keys = (RATIO, MAX_ERROR, MAX_ERROR_SIGMA)
    has_lossless_mode = True

    # LERC codes 8-, 16- and 32-bit integers directly; wider ones (whose values the base check has
    # found exact in float64) go as float64, which LERC also codes exactly at max_error 0
    sample_ranges = {np.dtype(d): (int(np.iinfo(d).min), int(np.iinfo(d).max))
                     for d in (np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32)}

    def _forward(self, image, profile):
        if self.params.get("max_error_sigma") is None:
            dtype = fit_sample_type(image, self.sample_ranges)
            return (image.astype(dtype, copy=False) if dtype is not None else image.astype(np.float64)), ()
        return super()._forward(image, profile)

    # a volume is one raster of rows x cols pixels holding z values each (LERC's depth, the last axis)
    def _encode(self, data, bound):
        if data.ndim == 3:
            data = np.ascontiguousarray(np.moveaxis(data, 0, -1))
        return imagecodecs.lerc_encode(data, level=0.0 if bound is None else float(bound))

    def _decode(self, stream, data):
        decoded = np.asarray(imagecodecs.lerc_decode(stream))
        if data.ndim != 3:
            return decoded
        # (rows, cols, z) back to (z, rows, cols); a depth of 1 may come back without its axis
        return np.moveaxis(decoded.reshape(data.shape[1:] + data.shape[:1]), -1, 0)
