"""noisestat: does a compression setting change what a model measures by more than camera noise?

The public API, one stage per module, chained by :func:`assess` (the pipeline):

camera profile -> replicas -> pixel classifier -> morphometry -> matching -> codecs -> scores.
"""

__version__ = "0.1.0"

from .io._files import ImageInfo, PixelSize, read_image, read_image_info, read_labels
from .camera._profile import CameraProfile, load_profile, save_profile
from .predict._forest import PixelClassifier, load_model, save_model
from .codecs import describe_codecs, parse_spec
from .errors import CodecError, InputError, ModelError, NoisestatError, ProfileError
from .measure._matching import match_centroids, match_iou
from .measure._morphometry import PARAMETERS, measure_objects
from .pipeline import Assessment, assess, assess_files, assess_values, format_summary, write_assessment
from .results import ValueAssessment
from .replicas._draw import draw_replica, generate_replicas

__all__ = ["__version__", "read_image", "read_image_info", "ImageInfo", "PixelSize", "read_labels",
           "CameraProfile", "load_profile", "save_profile",
           "PixelClassifier", "load_model", "save_model", "describe_codecs", "parse_spec", "match_iou",
           "match_centroids", "PARAMETERS", "measure_objects", "Assessment", "assess", "assess_files",
           "assess_values", "ValueAssessment",
           "format_summary", "write_assessment", "draw_replica", "generate_replicas", "NoisestatError",
           "InputError", "ProfileError", "CodecError", "ModelError"]
