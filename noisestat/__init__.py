"""noisestat: does a compression setting change what a model measures by more than camera noise?

The public API, one stage per module:

camera profile -> replicas -> pixel classifier -> morphometry -> matching -> codecs -> scores,
chained by :func:`assess` (the pipeline).
"""

__version__ = "0.1.0"

from .camera import CameraProfile, load_profile, save_profile
from .classifier import PixelClassifier, load_model, save_model
from .errors import CodecError, InputError, ModelError, NoisestatError, ProfileError
from .replicas import draw_replica, generate_replicas

__all__ = ["__version__", "CameraProfile", "load_profile", "save_profile", "PixelClassifier", "load_model",
           "save_model", "draw_replica", "generate_replicas", "NoisestatError", "InputError", "ProfileError",
           "CodecError", "ModelError"]
