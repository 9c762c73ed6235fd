"""noisestat: does a compression setting change what a model measures by more than camera noise?

The public API, one stage per module, chained by :func:`assess` (the pipeline):

camera profile -> replicas -> pixel classifier -> morphometry -> matching -> codecs -> scores.
"""

__version__ = "0.1.0"

# The names below are imported when first used (PEP 562), so that ``noisestat`` on the command line
# reaches its own handling of Ctrl-C and SIGTERM at once instead of after seconds of imports.
_WHERE = {
    "read_image": ".io._files", "read_image_info": ".io._files", "ImageInfo": ".io._files",
    "PixelSize": ".io._files", "read_labels": ".io._files",
    "CameraProfile": ".camera._profile", "load_profile": ".camera._profile", "save_profile": ".camera._profile",
    "PixelClassifier": ".predict._forest", "load_model": ".predict._forest", "save_model": ".predict._forest",
    "describe_codecs": ".codecs", "parse_spec": ".codecs",
    "CodecError": ".errors", "InputError": ".errors", "ModelError": ".errors", "NoisestatError": ".errors",
    "ProfileError": ".errors",
    "match_centroids": ".measure._matching", "match_iou": ".measure._matching",
    "PARAMETERS": ".measure._morphometry", "measure_objects": ".measure._morphometry",
    "Assessment": ".pipeline", "assess": ".pipeline", "assess_files": ".pipeline", "assess_values": ".pipeline",
    "format_summary": ".pipeline", "write_assessment": ".pipeline",
    "ValueAssessment": ".results",
    "draw_replica": ".replicas._draw", "generate_replicas": ".replicas._draw",
}


def __getattr__(name):
    if name not in _WHERE:
        raise AttributeError(f"module 'noisestat' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_WHERE[name], __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_WHERE))


__all__ = ["__version__", "read_image", "read_image_info", "ImageInfo", "PixelSize", "read_labels",
           "CameraProfile", "load_profile", "save_profile",
           "PixelClassifier", "load_model", "save_model", "describe_codecs", "parse_spec", "match_iou",
           "match_centroids", "PARAMETERS", "measure_objects", "Assessment", "assess", "assess_files",
           "assess_values", "ValueAssessment",
           "format_summary", "write_assessment", "draw_replica", "generate_replicas", "NoisestatError",
           "InputError", "ProfileError", "CodecError", "ModelError"]
