"""Codecs: each turns a raw image into the image a user would get back after storing it.

A codec is named by a spec string ``name:key=value,...``; :func:`parse_spec` builds it and
:func:`describe_codecs` lists every registered codec with its keys, from the same registry.
:func:`code_image` codes a 2D image or a 3D volume (as one stream or plane by plane, as the codec's
``volume`` says).
"""

from . import _builtin, _classic, _errorbound, _noiseaware  # noqa: F401  (register the codecs)
from . import _learned  # noqa: F401  (registers the learned codec; imports without torch)
from ._base import (REGISTRY, Codec, CodecKey, CodecResult, bisect_ratio, code_image, describe_codecs,
                    describe_codecs_markdown, parse_spec, register)

__all__ = ["REGISTRY", "Codec", "CodecKey", "CodecResult", "bisect_ratio", "code_image", "describe_codecs",
           "describe_codecs_markdown", "parse_spec", "register"]
