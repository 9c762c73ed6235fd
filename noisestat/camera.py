"""Camera profiles: the noise model of one camera, read from and written to JSON.

The format is documented in ``calibration/README.md``. Four keys are required
(``gain_dn_per_e``, ``offset_dn``, ``read_noise_dn``, ``bit_depth``) so that a profile copied by
hand from a datasheet works; every other key is optional and kept as it is under ``extra``.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import ProfileError

__all__ = ["CameraProfile", "load_profile", "save_profile", "REQUIRED_KEYS"]

REQUIRED_KEYS = ("gain_dn_per_e", "offset_dn", "read_noise_dn", "bit_depth")
FORMAT_VERSION = 1


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

    def __post_init__(self):
        _validate(asdict(self), "camera profile")

    @property
    def max_dn(self) -> int:
        """Largest value the digitiser can output."""
        return 2 ** int(self.bit_depth) - 1

    def noise_variance_dn2(self, mean_dn):
        """Temporal noise variance (DN^2) at mean signal ``mean_dn`` (array-like)."""
        import numpy as np

        signal = np.maximum(np.asarray(mean_dn, dtype=np.float64) - self.offset_dn, 0.0)
        return self.gain_dn_per_e * signal + self.read_noise_dn**2

    def to_dict(self) -> dict[str, Any]:
        """The profile as the JSON object it is stored as."""
        out = {"format_version": FORMAT_VERSION}
        out.update({k: getattr(self, k) for k in REQUIRED_KEYS})
        out.update(self.extra)
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
    path = Path(path)
    if not path.is_file():
        raise ProfileError(f"{path}: no such camera profile file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProfileError(f"{path}: not a JSON camera profile ({exc})") from None
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: a camera profile must be a JSON object; got {type(data).__name__}")
    version = data.pop("format_version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise ProfileError(f"{path}: format_version {version!r} is not supported (this noisestat reads {FORMAT_VERSION})")
    _validate(data, str(path))
    extra = {k: v for k, v in data.items() if k not in REQUIRED_KEYS}
    return CameraProfile(float(data["gain_dn_per_e"]), float(data["offset_dn"]), float(data["read_noise_dn"]),
                         int(data["bit_depth"]), extra)


def save_profile(profile: CameraProfile, path: str | os.PathLike) -> None:
    """Write ``profile`` to ``path`` as JSON, atomically."""
    from ._io import write_json_atomic

    write_json_atomic(path, profile.to_dict())
