"""Camera profiles: gain, offset, read noise, bit depth and the noise model a replica is drawn from
(one value for the sensor, per-pixel maps for sCMOS, or a measured noise map).
"""

from ._profile import (CameraProfile, NoiseMap, PixelMaps, load_profile, save_profile, REQUIRED_KEYS,
                       GAIN_RANGE_DN_PER_E, MAX_BELOW_OFFSET, WARN_BELOW_OFFSET)

__all__ = ["CameraProfile", "NoiseMap", "PixelMaps", "load_profile", "save_profile", "REQUIRED_KEYS",
           "GAIN_RANGE_DN_PER_E", "MAX_BELOW_OFFSET", "WARN_BELOW_OFFSET"]
