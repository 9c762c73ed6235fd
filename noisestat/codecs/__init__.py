"""Codecs: each turns a raw image into the image a user would get back after storing it.

A codec is named by a spec string ``name:key=value,...``; :func:`parse_spec` builds it and
:func:`describe_codecs` lists every registered codec with its keys, from the same registry.
"""

from . import _builtin  # noqa: F401  (registers the built-in codecs)
from ._base import (REGISTRY, Codec, CodecKey, CodecResult, bisect_ratio, describe_codecs, describe_codecs_markdown,
                    parse_spec, register)

__all__ = ["REGISTRY", "Codec", "CodecKey", "CodecResult", "bisect_ratio", "describe_codecs",
           "describe_codecs_markdown", "parse_spec", "register"]
