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

from .errors import ProfileError

__all__ = ["CameraProfile", "NoiseMap", "PixelMaps", "load_profile", "save_profile", "REQUIRED_KEYS"]

REQUIRED_KEYS = ("gain_dn_per_e", "offset_dn", "read_noise_dn", "bit_depth")
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

    A pixel value y (DN) is ``offset_dn + gain_dn_per_e * n_e + read noise``, with n_e ~ Poisson
    and read noise ~ N(0, read_noise_dn**2), rounded and clipped to ``[0, 2**bit_depth - 1]``.

    Attributes
    ----------
    gain_dn_per_e : float
        System gain K in DN per electron (EMVA 1288 "K").
    offset_dn : float
        Mean dark value mu_y.dark in DN.
    read_noise_dn : float
        Temporal dark noise sigma_y.dark in DN.
    bit_depth : int
        Number of significant bits of the digitiser (1 to 32).
    extra : dict
        Every other key of the file, kept unchanged (later format additions).
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

    @property
    def noise_model(self) -> str:
        """Which noise model replicas are drawn from: pixel-maps, noise-map or linear."""
        if self.pixel_maps is not None:
            return "pixel-maps"
        return "noise-map" if self.noise_map is not None else "linear"

    def check_image(self, image, name: str = "image") -> None:
        """Raise ProfileError if per-pixel maps do not cover ``image``."""
        if self.pixel_maps is not None and self.pixel_maps.shape != image.shape:
            raise ProfileError(f"{name}: the camera profile's per-pixel maps are {self.pixel_maps.shape}; "
                               f"the image is {image.shape} (a crop or binning of the calibrated sensor?)")

    @property
    def max_dn(self) -> int:
        """Largest value the digitiser can output."""
        return 2 ** int(self.bit_depth) - 1

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


def _validate(values: dict[str, Any], name: str) -> None:
    missing = [k for k in REQUIRED_KEYS if values.get(k) is None]
    if missing:
        raise ProfileError(f"{name}: missing required key(s) {', '.join(missing)} "
                           f"(a profile needs {', '.join(REQUIRED_KEYS)})")
    for key in ("gain_dn_per_e", "offset_dn", "read_noise_dn"):
        value = values[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ProfileError(f"{name}: {key} must be a finite number; got {value!r}")
    if values["gain_dn_per_e"] <= 0:
        raise ProfileError(f"{name}: gain_dn_per_e must be > 0; got {values['gain_dn_per_e']!r}")
    if values["read_noise_dn"] < 0:
        raise ProfileError(f"{name}: read_noise_dn must be >= 0; got {values['read_noise_dn']!r}")
    bits = values["bit_depth"]
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 32:
        raise ProfileError(f"{name}: bit_depth must be an integer from 1 to 32; got {bits!r}")
    if not 0 <= values["offset_dn"] < 2**bits:
        raise ProfileError(f"{name}: offset_dn must lie in [0, 2**bit_depth) = [0, {2**bits}); "
                           f"got {values['offset_dn']!r}")


def load_profile(path: str | os.PathLike) -> CameraProfile:
    """Read and validate a camera profile JSON file.

    Raises
    ------
    ProfileError
        If the file is missing, not JSON, or misses or mangles a required key.
    """
    from ._io import read_json_object

    path = Path(path)
    data = read_json_object(path, what="camera profile", error=ProfileError)
    version = data.pop("format_version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise ProfileError(f"{path}: format_version {version!r} is not supported (this noisestat reads {FORMAT_VERSION})")
    _validate(data, str(path))
    extra = {k: v for k, v in data.items() if k not in REQUIRED_KEYS}
    noise_map = NoiseMap.from_json(data["noise_map"], str(path)) if "noise_map" in data else None
    pixel_maps = _load_pixel_maps(data["pixel_maps"], path) if "pixel_maps" in data else None
    return CameraProfile(float(data["gain_dn_per_e"]), float(data["offset_dn"]), float(data["read_noise_dn"]),
                         int(data["bit_depth"]), extra, noise_map, pixel_maps)


def _load_pixel_maps(ref, path: Path) -> PixelMaps:
    import tifffile

    from ._io import file_sha256

    if not isinstance(ref, dict) or not isinstance(ref.get("file"), str):
        raise ProfileError(f"{path}: pixel_maps must be an object with the TIFF file name under 'file'")
    maps_path = path.parent / ref["file"]
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

    from ._io import atomic_file, json_text

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
                             metadata={"pages": list(PIXEL_MAP_PAGES)})
            files.enter_context(atomic_file(maps_path)).write(buffer.getvalue())
            data["pixel_maps"] = {**profile.extra.get("pixel_maps", {}), "file": maps_path.name,
                                  "pages": list(PIXEL_MAP_PAGES),
                                  "sha256": hashlib.sha256(buffer.getvalue()).hexdigest()}
        profile_file.write(json_text(data))
