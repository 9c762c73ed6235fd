"""Camera profiles: the noise model of one camera, read from and written to JSON.

The format is documented in ``calibration/README.md``. Four keys are required
(``gain_dn_per_e``, ``offset_dn``, ``read_noise_dn``, ``bit_depth``) so that a profile copied by
hand from a datasheet works. Two optional keys change the noise model: ``noise_map`` (a measured
intensity-to-variance map, for non-linear cameras) and ``pixel_maps`` (per-pixel offset, read
variance and gain in a TIFF beside the profile, for sCMOS cameras). Every other key is kept as it
is under ``extra``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ProfileError, ProfileFitError

__all__ = ["CameraProfile", "NoiseMap", "PixelMaps", "load_profile", "save_profile", "REQUIRED_KEYS",
           "GAIN_RANGE_DN_PER_E", "MAX_BELOW_OFFSET", "WARN_BELOW_OFFSET"]

REQUIRED_KEYS = ("gain_dn_per_e", "offset_dn", "read_noise_dn", "bit_depth")
# Plausible system gains. Real cameras span about 0.01 DN/e- (a 12-bit CCD with a 100 000 e- well)
# to a few hundred DN/e- (an EMCCD at high multiplication gain); 1e-4 DN/e- would need a 650
# million e- well to fill a 16-bit digitiser, 1e4 DN/e- would put one electron across a 14-bit
# range. Outside, the number is a unit mistake (e-/DN for DN/e-, or a typo), not a camera.
GAIN_RANGE_DN_PER_E = (1e-4, 1e4)
# Image/profile fit (CameraProfile.fit_warnings): share of the pixels lying below the offset.
MAX_BELOW_OFFSET = 0.99   # refused above: the image lies (almost) wholly at or below the offset
WARN_BELOW_OFFSET = 0.55  # warned above: a dark frame with the right offset has at most 0.50
FORMAT_VERSION = 1
PIXEL_MAP_PAGES = ("offset_dn", "read_variance_dn2", "gain_dn_per_e")


@dataclass(frozen=True, eq=False)
class NoiseMap:
    """Temporal noise variance as a function of the mean signal, measured level by level.

    Attributes
    ----------
    mean_dn : ndarray
        Increasing mean signals (DN).
    variance_dn2 : ndarray
        Temporal variance at each mean (DN^2), non-decreasing.
    """

    mean_dn: np.ndarray
    variance_dn2: np.ndarray

    @classmethod
    def from_json(cls, obj, name: str) -> "NoiseMap":
        try:
            mean = np.asarray(obj["mean_dn"], dtype=np.float64)
            var = np.asarray(obj["variance_dn2"], dtype=np.float64)
        except (TypeError, KeyError, ValueError):
            raise ProfileError(f"{name}: noise_map needs numeric lists mean_dn and variance_dn2") from None
        if mean.ndim != 1 or mean.shape != var.shape or len(mean) < 2:
            raise ProfileError(f"{name}: noise_map mean_dn and variance_dn2 must be lists of equal length >= 2")
        if not (np.isfinite(mean).all() and np.isfinite(var).all()) or (var < 0).any() or (np.diff(mean) <= 0).any():
            raise ProfileError(f"{name}: noise_map must have increasing finite means and variances >= 0")
        return cls(mean, var)

    def variance(self, mean_dn) -> np.ndarray:
        """Variance at ``mean_dn``, linear between the map's points, constant beyond its ends."""
        return np.interp(np.asarray(mean_dn, dtype=np.float64), self.mean_dn, self.variance_dn2)

    def to_json(self) -> dict:
        return {"mean_dn": [float(v) for v in self.mean_dn], "variance_dn2": [float(v) for v in self.variance_dn2]}


@dataclass(frozen=True, eq=False)
class PixelMaps:
    """Offset (DN), read variance (DN^2) and gain (DN/e-) of every pixel, each (rows, cols)."""

    offset_dn: np.ndarray
    read_variance_dn2: np.ndarray
    gain_dn_per_e: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.offset_dn.shape

    def stack(self) -> np.ndarray:
        return np.stack([getattr(self, p) for p in PIXEL_MAP_PAGES]).astype(np.float32)

    @classmethod
    def from_stack(cls, stack: np.ndarray, name: str = "pixel maps") -> "PixelMaps":
        if stack.ndim != 3 or stack.shape[0] != len(PIXEL_MAP_PAGES):
            raise ProfileError(f"{name}: expected {len(PIXEL_MAP_PAGES)} pages ({', '.join(PIXEL_MAP_PAGES)}); "
                               f"got shape {stack.shape}")
        stack = stack.astype(np.float64)
        if not np.isfinite(stack).all():
            raise ProfileError(f"{name}: holds NaN or infinite values")
        if (stack[2] <= 0).any() or (stack[1] < 0).any():
            raise ProfileError(f"{name}: gains must be > 0 and read variances >= 0")
        return cls(*stack)


@dataclass(frozen=True)
class CameraProfile:
    """Linear Poisson-Gaussian camera model.

    A pixel value y (DN) is ``offset_dn + gain_dn_per_e * n_e + read noise``, with n_e ~ Poisson,
    rounded and clipped to ``[0, 2**bit_depth - 1]``. Its temporal variance is
    ``gain_dn_per_e * (mean - offset_dn) + read_noise_dn**2``.

    Attributes
    ----------
    gain_dn_per_e : float
        System gain K in DN per electron (EMVA 1288 "K"); 1e-4 to 1e4 (:data:`GAIN_RANGE_DN_PER_E`).
    offset_dn : float
        Mean dark value mu_y.dark in DN.
    read_noise_dn : float
        Temporal dark noise sigma_y.dark in DN: the standard deviation over time of a pixel without
        light, *quantisation included* (everything the read-out chain adds, rounding to whole DN
        too), as EMVA 1288 and ``noisestat calibrate`` measure it. It is not the analogue read noise
        before the digitiser (a datasheet's read noise in e- times K lacks the 1/12 DN^2 of
        rounding; for read noise above ~1 DN the difference is below 4 %). At most
        ``(2**bit_depth - 1) / 2``, the largest standard deviation a value in the digitiser's range
        can have.
    bit_depth : int
        Number of significant bits of the digitiser (1 to 32).
    extra : dict
        Every other key of the file, kept unchanged (later format additions). ``saturation_dn``,
        when present, must be a number in ``(offset_dn, 2**bit_depth - 1]``.
    """

    gain_dn_per_e: float
    offset_dn: float
    read_noise_dn: float
    bit_depth: int
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    noise_map: NoiseMap | None = field(default=None, compare=False, repr=False)
    pixel_maps: PixelMaps | None = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        _validate({k: getattr(self, k) for k in REQUIRED_KEYS}, "camera profile")
        _validate_extra(self.extra, self.offset_dn, self.max_dn, "camera profile")

    @property
    def noise_model(self) -> str:
        """Which noise model replicas are drawn from: pixel-maps, noise-map or linear."""
        if self.pixel_maps is not None:
            return "pixel-maps"
        return "noise-map" if self.noise_map is not None else "linear"

    def check_image(self, image, name: str = "image") -> None:
        """Raise ProfileError if per-pixel maps do not cover ``image`` (each plane of a volume)."""
        if self.pixel_maps is not None and tuple(self.pixel_maps.shape) != tuple(image.shape[-2:]):
            raise ProfileError(f"{name}: the camera profile's per-pixel maps are {self.pixel_maps.shape}; "
                               f"the image is {image.shape} (a crop or binning of the calibrated sensor?)")

    @property
    def max_dn(self) -> int:
        """Largest value the digitiser can output."""
        return 2 ** int(self.bit_depth) - 1

    @property
    def saturation_dn(self) -> float:
        """Pixels at or above this value are saturated: the calibrated ``saturation_dn`` (the mean
        output where the temporal variance peaks, ``extra``) when the profile has one, else the
        digitiser's maximum."""
        value = self.extra.get("saturation_dn")
        return float(self.max_dn) if value is None else min(float(value), float(self.max_dn))

    def fit_warnings(self, image: np.ndarray, name: str = "image") -> list[str]:
        """Check that this profile can describe ``image``; refuse what cannot, return the rest.

        Refused (one line with the numbers): per-pixel maps of another shape (ProfileError);
        values above the digitiser's range (:class:`~noisestat.errors.ProfileFitError`, also an
        InputError, as are the next); an image lying wholly or almost
        wholly at or below the offset (more than :data:`MAX_BELOW_OFFSET` of the pixels), where
        the profile would call the whole image "no light" and replicas would carry nothing but
        read noise.

        Warned (one string each, with the numbers): more than :data:`WARN_BELOW_OFFSET` of the
        pixels below the offset; an image container with fewer bits than the profile's digitiser
        (an 8-bit file with a 16-bit profile: converted or scaled data, whose DN are not the
        camera's); a profile that is only a single-image estimate.

        "Below the offset" means ``y + 0.5 <= offset``: the pixel's rounding interval lies wholly
        at or below the offset (with per-pixel maps, the pixel's own offset). Rounding to whole DN
        moves a value by up to 0.5 DN, so this is what a pixel with no light reads for at most half
        of a dark frame, whatever the noise; a plain ``y <= offset`` would hold for nearly every
        pixel of a dark region with read noise below 0.5 DN and refuse sound images of
        low-noise cameras.

        Parameters
        ----------
        image : ndarray of int, shape (rows, cols)
        name : str
            What to call the image in messages (its file name).

        Returns
        -------
        list of str
            Warnings; empty when the profile fits.

        Examples
        --------
        >>> import numpy as np
        >>> cam = CameraProfile(gain_dn_per_e=0.5, offset_dn=100, read_noise_dn=2, bit_depth=16)
        >>> cam.fit_warnings(np.full((8, 8), 200, np.uint8))[0][:60]
        'image: the file holds 8-bit values (uint8) but the profile d'
        """
        self.check_image(image, name)
        top = int(image.max())
        if top > self.max_dn:
            raise ProfileFitError(f"{name}: values up to {top}, above the camera's {self.bit_depth}-bit range "
                                  f"(max {self.max_dn}): wrong camera profile or image")
        offset = self.pixel_maps.offset_dn if self.pixel_maps is not None else self.offset_dn
        below = float(np.mean(image.astype(np.float64) + 0.5 <= offset))
        where = "their pixels' offsets" if self.pixel_maps is not None else f"the offset {self.offset_dn:g} DN"
        if below > MAX_BELOW_OFFSET:
            raise ProfileFitError(
                f"{name}: {below:.1%} of the pixels lie at or below {where} (values {int(image.min())} to {top}; "
                f"at most {MAX_BELOW_OFFSET:.0%} allowed): the camera profile does not fit this image "
                f"(another camera, or an image converted or scaled after acquisition?)")
        warnings = []
        if below > WARN_BELOW_OFFSET:
            warnings.append(
                f"{name}: {below:.1%} of the pixels lie below {where} (a dark frame with the right offset has at "
                f"most half): the offset is too high for this image, or the image was scaled; replicas give "
                f"those pixels less noise than a second acquisition would have")
        bits = np.iinfo(image.dtype).bits - (1 if np.issubdtype(image.dtype, np.signedinteger) else 0)
        if bits < self.bit_depth:
            warnings.append(
                f"{name}: the file holds {bits}-bit values ({image.dtype}) but the profile describes a "
                f"{self.bit_depth}-bit camera: the image was probably converted or scaled, and the profile's "
                f"gain and offset do not describe its values")
        if self.extra.get("estimate") == "single-image":
            warnings.append("the profile is only a single-image estimate (noisestat calibrate --from-image), "
                            "not a calibration: sigma_raw is only as good as that fit")
        return warnings

    def noise_variance_dn2(self, mean_dn):
        """Temporal noise variance (DN^2) at mean signal ``mean_dn`` (array-like): from the noise
        map when there is one, else the linear model (per-pixel maps are not used here)."""
        if self.noise_map is not None:
            return self.noise_map.variance(mean_dn)
        signal = np.maximum(np.asarray(mean_dn, dtype=np.float64) - self.offset_dn, 0.0)
        return self.gain_dn_per_e * signal + self.read_noise_dn**2

    def to_dict(self) -> dict[str, Any]:
        """The profile as the JSON object it is stored as (per-pixel maps as a file reference)."""
        out = {"format_version": FORMAT_VERSION}
        out.update({k: getattr(self, k) for k in REQUIRED_KEYS})
        out.update(self.extra)
        if self.noise_map is not None:
            out["noise_map"] = {**self.extra.get("noise_map", {}), **self.noise_map.to_json()}
        return out


def _is_finite_number(value) -> bool:
    """A JSON number that is finite as a float (an integer too large for a float is not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _shown(value, limit: int = 40) -> str:
    """``repr(value)``, shortened for a message (an integer of hundreds of digits)."""
    try:
        text = repr(value)
    except ValueError:  # an integer with more digits than Python prints
        return f"an integer of more than {limit} digits"
    return text if len(text) <= limit else f"{text[:limit - 3]}... ({len(text)} characters)"


def _validate(values: dict[str, Any], name: str) -> None:
    missing = [k for k in REQUIRED_KEYS if values.get(k) is None]
    if missing:
        raise ProfileError(f"{name}: missing required key(s) {', '.join(missing)} "
                           f"(a profile needs {', '.join(REQUIRED_KEYS)})")
    for key in ("gain_dn_per_e", "offset_dn", "read_noise_dn"):
        value = values[key]
        if not _is_finite_number(value):
            raise ProfileError(f"{name}: {key} must be a finite number; got {_shown(value)}")
    if values["gain_dn_per_e"] <= 0:
        raise ProfileError(f"{name}: gain_dn_per_e must be > 0; got {values['gain_dn_per_e']!r}")
    low, high = GAIN_RANGE_DN_PER_E
    if not low <= values["gain_dn_per_e"] <= high:
        raise ProfileError(f"{name}: gain_dn_per_e must lie in [{low:g}, {high:g}] DN/e- (real cameras span about "
                           f"0.01 to a few hundred; e-/DN given for DN/e-?); got {values['gain_dn_per_e']!r}")
    if values["read_noise_dn"] < 0:
        raise ProfileError(f"{name}: read_noise_dn must be >= 0; got {values['read_noise_dn']!r}")
    bits = values["bit_depth"]
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 32:
        raise ProfileError(f"{name}: bit_depth must be an integer from 1 to 32; got {bits!r}")
    if not 0 <= values["offset_dn"] < 2**bits:
        raise ProfileError(f"{name}: offset_dn must lie in [0, 2**bit_depth) = [0, {2**bits}); "
                           f"got {values['offset_dn']!r}")
    largest = (2**bits - 1) / 2
    if values["read_noise_dn"] > largest:
        raise ProfileError(f"{name}: read_noise_dn must be at most (2**bit_depth - 1) / 2 = {largest:g} DN, "
                           f"the largest standard deviation a {bits}-bit value can have; "
                           f"got {values['read_noise_dn']!r}")


def _validate_extra(extra: dict[str, Any], offset_dn: float, max_dn: int, name: str) -> None:
    """Check the optional keys noisestat uses (``saturation_dn``)."""
    value = extra.get("saturation_dn")
    if value is None:
        return
    if not _is_finite_number(value):
        raise ProfileError(f"{name}: saturation_dn must be a finite number; got {_shown(value)}")
    if not offset_dn < value <= max_dn:
        raise ProfileError(f"{name}: saturation_dn must lie in (offset_dn, 2**bit_depth - 1] = "
                           f"({offset_dn:g}, {max_dn}]; got {value!r}")


def load_profile(path: str | os.PathLike) -> CameraProfile:
    """Read and validate a camera profile JSON file.

    Raises
    ------
    ProfileError
        If the file is missing, not JSON, or misses or mangles a required key.
    """
    from ..io._files import read_json_object

    path = Path(path)
    data = read_json_object(path, what="camera profile", error=ProfileError)
    version = data.pop("format_version", FORMAT_VERSION)
    data.pop("written_by", None)  # the mark of the file noisestat wrote (noisestat.io._ownership), not the camera's
    if version != FORMAT_VERSION:
        raise ProfileError(f"{path}: format_version {version!r} is not supported (this noisestat reads {FORMAT_VERSION})")
    _validate(data, str(path))
    extra = {k: v for k, v in data.items() if k not in REQUIRED_KEYS}
    _validate_extra(extra, float(data["offset_dn"]), 2 ** int(data["bit_depth"]) - 1, str(path))
    noise_map = NoiseMap.from_json(data["noise_map"], str(path)) if "noise_map" in data else None
    pixel_maps = _load_pixel_maps(data["pixel_maps"], path) if "pixel_maps" in data else None
    return CameraProfile(float(data["gain_dn_per_e"]), float(data["offset_dn"]), float(data["read_noise_dn"]),
                         int(data["bit_depth"]), extra, noise_map, pixel_maps)


def _load_pixel_maps(ref, path: Path) -> PixelMaps:
    import tifffile

    from ..io._files import file_inside, file_sha256

    if not isinstance(ref, dict) or not isinstance(ref.get("file"), str):
        raise ProfileError(f"{path}: pixel_maps must be an object with the TIFF file name under 'file'")
    maps_path = file_inside(path.parent, ref["file"], where=str(path), what="pixel_maps file",
                           owner="the profile", error=ProfileError)
    if not maps_path.is_file():
        raise ProfileError(f"{path}: pixel_maps file {maps_path} is missing (keep it beside the profile)")
    if ref.get("sha256") and file_sha256(maps_path) != ref["sha256"]:
        raise ProfileError(f"{path}: pixel_maps file {maps_path} does not match the checksum in the profile")
    try:
        stack = tifffile.imread(maps_path)
    except Exception as exc:
        raise ProfileError(f"{path}: pixel_maps file {maps_path} is not a readable TIFF ({type(exc).__name__})") from None
    return PixelMaps.from_stack(stack, str(maps_path))


def save_profile(profile: CameraProfile, path: str | os.PathLike) -> None:
    """Write ``profile`` to ``path`` as JSON, atomically; per-pixel maps go to a TIFF beside it
    (``<name>_pixelmaps.tif``), referenced from the JSON with its SHA-256."""
    import contextlib
    import hashlib
    import io

    from .. import __version__
    from ..io._files import atomic_file, json_text

    path = Path(path)
    data = profile.to_dict()
    # Both files are written in full under temporary names before either is renamed (the maps
    # first), so a failed write leaves the previous profile and its maps matching each other.
    with contextlib.ExitStack() as files:
        profile_file = files.enter_context(atomic_file(path, "w"))
        if profile.pixel_maps is not None:
            import tifffile

            maps_path = path.with_name(f"{path.stem}_pixelmaps.tif")
            buffer = io.BytesIO()
            tifffile.imwrite(buffer, profile.pixel_maps.stack(), photometric="minisblack",
                             metadata={"pages": list(PIXEL_MAP_PAGES), "written_by": f"noisestat {__version__}"})
            files.enter_context(atomic_file(maps_path)).write(buffer.getvalue())
            data["pixel_maps"] = {**profile.extra.get("pixel_maps", {}), "file": maps_path.name,
                                  "pages": list(PIXEL_MAP_PAGES),
                                  "sha256": hashlib.sha256(buffer.getvalue()).hexdigest()}
        # the mark that lets a later run replace this file (noisestat.io._ownership)
        data["written_by"] = f"noisestat {__version__}"
        profile_file.write(json_text(data))
