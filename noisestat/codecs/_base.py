"""The codec contract, codec keys and the one registry every listing is generated from."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..camera._profile import CameraProfile
from ..errors import CodecError

__all__ = ["Codec", "CodecKey", "CodecResult", "REGISTRY", "register", "parse_spec", "describe_codecs",
           "describe_codecs_markdown", "bisect_ratio", "to_dtype", "fit_sample_type", "describe_sample_ranges",
           "FLOAT_EXACT", "VOLUME_MODES", "code_image", "prepare_image"]

# How a codec codes a 3D volume (``Codec.volume``): "volume", the whole volume as one stream (the
# codec sees every axis and may exploit the correlation along z); "planes", each z plane as its own
# 2D image, the planes' streams counted together.
VOLUME_MODES = ("volume", "planes")


@dataclass(frozen=True)
class CodecKey:
    """One ``key=value`` setting a codec accepts."""

    name: str
    kind: type  # int, float or str
    help: str
    default: Any = None
    choices: tuple = ()
    low: float | None = None
    high: float | None = None

    def convert(self, codec: str, text: str):
        try:
            value = self.kind(text)
        except ValueError:
            raise CodecError(f"codec {codec}: {self.name}={text!r} is not a valid {self.kind.__name__}") from None
        if self.kind is float and not np.isfinite(value):
            # float() reads "nan", "inf" and "-infinity"; no setting means anything at those values
            raise CodecError(f"codec {codec}: {self.name} must be a finite number; got {text!r}")
        if self.choices and value not in self.choices:
            raise CodecError(f"codec {codec}: {self.name} must be one of {', '.join(map(str, self.choices))}; got {text!r}")
        if self.low is not None and value < self.low or self.high is not None and value > self.high:
            raise CodecError(f"codec {codec}: {self.name} must lie in [{self.low}, {self.high}]; got {text}")
        return value

    def describe(self) -> str:
        kind = "|".join(map(str, self.choices)) if self.choices else self.kind.__name__
        rng = f" in [{self.low:g}, {self.high:g}]" if self.low is not None and self.high is not None else ""
        default = "" if self.default is None else f" (default {self.default})"
        return f"{self.name}={kind}{rng}{default}: {self.help}"


@dataclass(frozen=True)
class CodecResult:
    """What a codec did to one image.

    Attributes
    ----------
    spec : str
        The spec as the user wrote it.
    decoded : ndarray
        The decoded image, in the raw image's dtype.
    n_bytes : int or None
        Bytes of the compressed stream (with any side information it needs), None if unknown.
    compression_ratio : float or None
        Raw bytes / ``n_bytes``.
    info : dict
        Settings used and how the image was normalised (JSON-serialisable). For a 3D volume
        (:func:`code_image`) it also holds ``coded``: ``"volume"`` (one stream of the whole volume)
        or ``"planes"`` (plane by plane, with ``planes``, their number).
    """

    spec: str
    decoded: np.ndarray
    n_bytes: int | None
    compression_ratio: float | None
    info: dict = field(default_factory=dict)

    @property
    def coded(self) -> str:
        """How the image was coded: ``"image"`` (a 2D image), ``"volume"`` or ``"planes"`` (a 3D volume)."""
        return self.info.get("coded", "image")


class Codec:
    """Base class of every codec: validated settings in, :class:`CodecResult` out.

    Subclasses set ``name``, ``summary`` and ``keys`` and implement :meth:`apply`. Settings are
    available as attributes of ``self.params``.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    keys: ClassVar[tuple[CodecKey, ...]] = ()
    lossless: ClassVar[bool] = False        # decodes to the raw exactly, whatever the settings
    extra: ClassVar[str | None] = None      # optional dependency group it needs (pip install 'noisestat[extra]')
    needs_profile: ClassVar[bool] = False   # needs the camera profile (noise-aware coding, bounds in sigma)
    exact_64bit: ClassVar[bool] = False     # codes 64-bit integers beyond 2^53 exactly (not through float64)
    volume: ClassVar[str] = "planes"        # how a 3D volume is coded: "volume" (one stream) or "planes" (VOLUME_MODES)

    def __init__(self, spec: str, **params):
        known = {k.name: k for k in self.keys}
        self.spec = spec
        self.params = {k.name: k.default for k in self.keys}
        for key, value in params.items():
            if key not in known:
                allowed = ", ".join(known) if known else "none"
                raise CodecError(f"codec {self.name}: unknown key {key!r} (keys: {allowed})")
            # values given from Python are checked as if written in a spec
            self.params[key] = known[key].convert(self.name, value if isinstance(value, str) else str(value))
        self.check()

    def check(self) -> None:
        """Raise CodecError for settings that are invalid together (subclasses override)."""

    def prepare(self, image: np.ndarray, profile: CameraProfile | None) -> None:
        """Raise CodecError early, before any long computation, if ``image`` cannot be coded."""
        if self.needs_profile and profile is None:
            raise CodecError(f"{self.spec}: needs the camera profile (--camera)")
        self.check_image(image)

    def check_image(self, image: np.ndarray) -> None:
        """Raise CodecError if this codec cannot code ``image``'s sample type and values as it promises.

        The default: any integer image whose values float64 holds exactly (all up to 32 bits),
        since most codecs map intensities through float64. Subclasses add their own limits; both
        :meth:`prepare` and :meth:`apply` call it, so a refusal never comes as a traceback.
        """
        if not np.issubdtype(image.dtype, np.integer):
            raise CodecError(f"{self.spec}: codes integer images; got {image.dtype}")
        if image.dtype.itemsize > 4 and not self.exact_64bit and image.size:
            top = max(abs(int(image.min())), abs(int(image.max())))
            if top > FLOAT_EXACT:
                raise CodecError(f"{self.spec}: maps {image.dtype} samples through float64, exact only up to "
                                 f"2^53 = {FLOAT_EXACT}; this image holds values up to {top} in magnitude")

    def apply(self, image: np.ndarray, profile: CameraProfile | None) -> CodecResult:
        """Encode and decode ``image``; return the decoded image in ``image``'s dtype.

        ``image`` is 2D, or 3D ``(z, rows, cols)`` for a codec whose ``volume`` is ``"volume"``
        (a ``"planes"`` codec gets volumes through :meth:`apply_planes`; :func:`code_image` chooses).
        ``profile`` is None when no camera profile is known (``compress-bench`` without
        ``--camera``); codecs that need one raise CodecError.
        """
        raise NotImplementedError

    def apply_planes(self, image: np.ndarray, profile: CameraProfile | None) -> CodecResult:
        """Code a volume ``(z, rows, cols)`` plane by plane: each plane to this codec's settings, the
        planes' streams counted together (subclasses with a ``ratio=`` target override it so that the
        target is the whole volume's ratio)."""
        planes = [self.apply(plane, profile) for plane in image]
        decoded = np.stack([p.decoded for p in planes])
        sizes = [p.n_bytes for p in planes]
        n_bytes = None if any(n is None for n in sizes) else int(sum(sizes))
        ratio = None if not n_bytes else image.nbytes / n_bytes
        return CodecResult(self.spec, decoded, n_bytes, ratio, dict(planes[0].info))

    def result(self, image, decoded, n_bytes, **info) -> CodecResult:
        ratio = None if not n_bytes else image.nbytes / n_bytes
        try:
            decoded = to_dtype(decoded, image.dtype)
        except CodecError as exc:
            raise CodecError(f"{self.spec}: {exc}") from None
        return CodecResult(self.spec, decoded, n_bytes, ratio, {"codec": self.name, **self.params, **info})


def code_image(codec: Codec, image: np.ndarray, profile: CameraProfile | None) -> CodecResult:
    """Code a 2D image or a 3D volume ``(z, rows, cols)`` with ``codec``.

    A 2D image goes to ``codec.apply``. A volume goes, whole, to ``codec.apply`` when the codec's
    ``volume`` is ``"volume"`` (one stream; the error-bounded, lossless, bit-depth, noise-aware and
    file codecs), else to ``codec.apply_planes`` (the 2D image codecs: one stream per plane, counted
    together; a ``ratio=`` target is the whole volume's ratio). The result's ``info["coded"]`` (and
    :attr:`CodecResult.coded`) says which.

    Examples
    --------
    >>> import numpy as np
    >>> from noisestat.codecs import parse_spec
    >>> volume = np.arange(3 * 8 * 6, dtype=np.uint16).reshape(3, 8, 6)
    >>> result = code_image(parse_spec("lossless"), volume, None)
    >>> result.coded, result.decoded.shape, bool((result.decoded == volume).all())
    ('volume', (3, 8, 6), True)
    """
    if image.ndim not in (2, 3):
        raise CodecError(f"{codec.spec}: images must be 2D or 3D; got shape {image.shape}")
    try:
        if image.ndim == 2:
            return codec.apply(image, profile)
        if codec.volume == "volume":
            result = codec.apply(image, profile)
            extra = {"coded": "volume"}
        else:
            result = codec.apply_planes(image, profile)
            extra = {"coded": "planes", "planes": int(image.shape[0])}
    except RuntimeError as exc:
        # an encoder or decoder of imagecodecs refusing its input or settings: one line naming the codec
        if not type(exc).__module__.startswith("imagecodecs"):
            raise
        raise CodecError(f"{codec.spec}: the codec refused this image or setting ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else 'no reason given'})") from None
    if result.decoded.shape != image.shape:
        raise CodecError(f"{codec.spec}: decoded shape {result.decoded.shape} differs from the raw {image.shape}")
    return CodecResult(result.spec, result.decoded, result.n_bytes, result.compression_ratio,
                       {**result.info, **extra})


def prepare_image(codec: Codec, image: np.ndarray, profile: CameraProfile | None) -> None:
    """``codec.prepare`` for a 2D image, a volume coded whole, or every plane of a volume coded plane
    by plane (:func:`code_image`)."""
    if image.ndim == 3 and codec.volume == "planes":
        for plane in image:
            codec.prepare(plane, profile)
    else:
        codec.prepare(image, profile)


REGISTRY: dict[str, type[Codec]] = {}


def register(cls: type[Codec]) -> type[Codec]:
    """Class decorator adding a codec to the registry under ``cls.name``."""
    if cls.name in REGISTRY:
        raise ValueError(f"codec {cls.name} registered twice")
    if cls.volume not in VOLUME_MODES:
        raise ValueError(f"codec {cls.name}: volume must be one of {VOLUME_MODES}; got {cls.volume!r}")
    REGISTRY[cls.name] = cls
    return cls


# A comma separates settings only where a new ``key=`` follows, so paths may hold commas.
_SPLIT = re.compile(r",(?=\s*[A-Za-z_]\w*\s*=)")


def parse_spec(spec: str) -> Codec:
    """Build the codec a spec ``name:key=value,...`` names.

    Examples
    --------
    >>> from noisestat.codecs import parse_spec
    >>> parse_spec("bitdepth:bits=8,mode=shift").params
    {'bits': 8, 'mode': 'shift'}
    """
    name, _, rest = spec.strip().partition(":")
    name = name.strip()
    if name not in REGISTRY:
        raise CodecError(f"unknown codec {name!r} in {spec!r} (known: {', '.join(sorted(REGISTRY))}; "
                         f"`noisestat codecs` lists them)")
    params = {}
    if rest.strip():
        for item in _SPLIT.split(rest):
            key, eq, value = item.partition("=")
            if not eq or not key.strip():
                raise CodecError(f"codec spec {spec!r}: expected key=value, got {item!r}")
            if key.strip() in params:
                raise CodecError(f"codec spec {spec!r}: key {key.strip()!r} given twice")
            params[key.strip()] = value.strip()
    return REGISTRY[name](spec, **params)


_VOLUME_WORDS = {"volume": "coded as one volume (one stream)", "planes": "coded plane by plane"}


def describe_codecs() -> str:
    """Human-readable list of every registered codec and its keys (what ``noisestat codecs`` prints)."""
    lines = []
    for name in sorted(REGISTRY):
        cls = REGISTRY[name]
        lines.append(f"{name}: {cls.summary}")
        lines.append(f"    volumes: {_VOLUME_WORDS[cls.volume]}")
        lines.extend(f"    {key.describe()}" for key in cls.keys)
    return "\n".join(lines)


def describe_codecs_markdown() -> str:
    """The codec table of ``docs/codecs.md``, generated from the registry (so the two cannot drift)."""
    lines = ["| codec | what it does | keys | lossless | volumes | needs |", "|---|---|---|---|---|---|"]
    for name in sorted(REGISTRY):
        cls = REGISTRY[name]
        keys = "<br>".join(f"`{k.describe().split(':', 1)[0]}`:{k.describe().split(':', 1)[1]}" for k in cls.keys) or "-"
        needs = ", ".join(x for x in (f"`noisestat[{cls.extra}]`" if cls.extra else "",
                                      "camera profile" if cls.needs_profile else "") if x) or "-"
        lines.append(f"| `{name}` | {cls.summary} | {keys} | {'yes' if cls.lossless else 'no'} | {cls.volume} | {needs} |")
    return "\n".join(lines)


def bisect_ratio(target: float, encode, raw_bytes: int, lo: float, hi: float, *, integer: bool = False,
                 increasing: bool = False, tolerance: float = 0.05, max_steps: int = 40, spec: str = ""):
    """Find the knob value whose compression ratio is closest to ``target``.

    Parameters
    ----------
    target : float
        Wanted ratio raw bytes / stream bytes.
    encode : callable
        ``encode(knob) -> bytes`` (the complete stream, side information included).
    raw_bytes : int
    lo, hi : float
        Knob range.
    integer : bool
        The knob takes integer values.
    increasing : bool
        True when the ratio grows with the knob (an error bound), False when it falls (a quality).
    tolerance : float
        Relative distance to the target that ends the search early and that the result must meet.

    Returns
    -------
    knob, stream, encodes : the chosen knob value, its stream and the number of encodes made.

    Raises
    ------
    CodecError
        When no knob value in range comes within ``tolerance`` of the target; the message gives the
        closest ratio reached.
    """
    cache = {}

    def ratio(k):
        if k not in cache:
            cache[k] = encode(k)
        return raw_bytes / len(cache[k])

    # Orient so that the ratio falls as the knob goes from `a` to `b`.
    a, b = (hi, lo) if increasing else (lo, hi)
    best = None
    if ratio(a) < target:
        best = a
    elif ratio(b) >= target:
        best = b
    else:
        for _ in range(max_steps):
            if integer and abs(b - a) <= 1:
                break
            mid = round((a + b) / 2) if integer else (a + b) / 2
            if not integer and lo > 0 and hi / lo > 100:
                mid = float(np.sqrt(a * b))  # knobs spanning decades are bisected in log space
            r = ratio(mid)
            if abs(r / target - 1) <= tolerance / 4:
                best = mid
                break
            if r >= target:
                a = mid
            else:
                b = mid
        if best is None:
            best = min((a, b), key=lambda k: abs(ratio(k) / target - 1))
    achieved = ratio(best)
    if abs(achieved / target - 1) > tolerance:
        reached = {k: raw_bytes / len(v) for k, v in cache.items()}
        below = [k for k in reached if reached[k] < target]
        above = [k for k in reached if reached[k] >= target]
        sides = []
        if below:
            k = max(below, key=reached.get)
            sides.append(f"{reached[k]:.3g} at {k:.4g}")
        if above:
            k = min(above, key=reached.get)
            sides.append(f"{reached[k]:.3g} at {k:.4g}")
        raise CodecError(f"{spec}: ratio {target:g} cannot be reached within {tolerance:.0%}; the closest are "
                         + " and ".join(sides))
    return best, cache[best], len(cache)


FLOAT_EXACT = 2**53  # every integer up to this magnitude is exact in float64


# Samples per block of :func:`to_dtype`: its float64 intermediate is 2 MiB, not image-sized.
TO_DTYPE_BLOCK = 1 << 18


def to_dtype(values: np.ndarray, dtype) -> np.ndarray:
    """Round and clip ``values`` into integer ``dtype`` (unchanged if already of that dtype).

    The conversion runs block by block along the first axis (:data:`TO_DTYPE_BLOCK` samples at a
    time) into the result, so a decoded volume costs its result and one block's intermediates, not
    whole float64 copies; each sample is rounded and clipped on its own, so the result is the same.
    """
    values = np.asarray(values)
    dtype = np.dtype(dtype)
    if values.dtype == dtype:
        return values
    info = np.iinfo(dtype)
    if np.issubdtype(values.dtype, np.floating):
        # float64(2^63 - 1) rounds up to 2^63, outside int64: clip to the largest float inside
        low, high = float(info.min), float(info.max)
        if int(high) > info.max:
            high = float(np.nextafter(high, 0.0))

        def convert(block):
            if not np.isfinite(block).all():
                raise CodecError("decoded image holds NaN or infinite values")
            block = block.astype(np.float64)  # a copy: rounded and clipped in place
            np.rint(block, out=block)
            return np.clip(block, low, high, out=block).astype(dtype)
    elif np.issubdtype(values.dtype, np.integer):
        # clip within bounds that both integer types can hold (NumPy refuses out-of-range bounds)
        own = np.iinfo(values.dtype)
        low, high = max(info.min, own.min), min(info.max, own.max)

        def convert(block):
            return np.clip(block, low, high).astype(dtype)
    else:
        raise CodecError(f"decoded image holds {values.dtype} values, not numbers")
    return map_blocks(values, dtype, convert)


def map_blocks(values: np.ndarray, dtype, convert) -> np.ndarray:
    """``convert`` applied block by block along the first axis (:data:`TO_DTYPE_BLOCK` samples at a
    time) into a new array of ``dtype``: a volume costs the result and one block's intermediates. For a
    ``convert`` that treats each sample on its own, the result is that of the whole array at once."""
    if values.ndim == 0 or not values.size:
        return np.asarray(convert(values), dtype=dtype)
    out = np.empty(values.shape, dtype=dtype)
    step = max(1, TO_DTYPE_BLOCK // max(1, math.prod(values.shape[1:])))
    for start in range(0, values.shape[0], step):
        out[start:start + step] = convert(values[start:start + step])
    return out


def fit_sample_type(image: np.ndarray, ranges: dict) -> np.dtype | None:
    """The sample type, of those in ``ranges`` (dtype -> exactly coded (min, max)), that holds every
    value of ``image`` exactly: its own dtype when possible, else the narrowest; None if none does."""
    if not image.size:
        return None
    lo, hi = int(image.min()), int(image.max())
    own = np.dtype(image.dtype)
    candidates = [own] + sorted(ranges, key=lambda d: (d.itemsize, d.kind != "u"))
    for dtype in candidates:
        if dtype in ranges and ranges[dtype][0] <= lo and hi <= ranges[dtype][1]:
            return dtype
    return None


def describe_sample_ranges(ranges: dict) -> str:
    """``"uint8 0..255, uint16 0..65535"``: the sample types a codec takes, for messages."""
    ordered = sorted(ranges.items(), key=lambda item: (item[0].itemsize, item[0].kind))
    return ", ".join(f"{dtype} {lo}..{hi}" for dtype, (lo, hi) in ordered)
