"""The io names under one module, for the modules that import them from here.

Each concern has its own module: :mod:`._readers` (images, volumes, label images),
:mod:`._metadata` (pixel and voxel size, units), :mod:`._sources` (what a stored file holds),
:mod:`._json_inputs` (JSON inputs and the files they name), :mod:`._hashing`, :mod:`._atomic`
(the one atomic writer) and :mod:`._outputs` (where an output may go, staged folders, the marker
file). New code imports from those modules, or from :mod:`noisestat.io`.
"""

from __future__ import annotations

from ._atomic import _json_safe, atomic_file, json_text, write_json_atomic, write_text_atomic
from ._hashing import array_sha256, file_sha256
from ._json_inputs import MAX_JSON_DEPTH, file_inside, read_json_object
from ._metadata import ImageInfo, PixelSize, spacing
from ._outputs import (OUTPUT_MARKER, STALE_AFTER_S, check_output_dir, check_output_file, clean_stale,
                       codec_input_files, is_noisestat_output, prepare_output_dir, prepare_output_file,
                       staged_directory)
from ._readers import (MIN_EXTENT, VOLUME_AXES, ImageView, _read_any, check_labels, check_raw_image, open_image,
                       read_image, read_image_info, read_labels)

__all__ = ["read_image", "read_image_info", "open_image", "ImageView", "ImageInfo", "PixelSize", "spacing",
           "read_labels", "file_sha256", "array_sha256", "write_json_atomic",
           "write_text_atomic", "json_text", "atomic_file", "staged_directory", "OUTPUT_MARKER",
           "check_output_dir", "check_output_file", "prepare_output_dir", "prepare_output_file",
           "clean_stale", "is_noisestat_output", "codec_input_files",
           # imported from here by other subpackages
           "check_raw_image", "check_labels", "read_json_object", "file_inside", "MAX_JSON_DEPTH", "STALE_AFTER_S",
           "VOLUME_AXES", "MIN_EXTENT", "_read_any", "_json_safe"]
