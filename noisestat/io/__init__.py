"""Reading and writing: images and volumes (TIFF, OME-TIFF, OME-Zarr, PNG; one plane or volume of a multi-channel
file or stack, lazily with open_image), projection stacks, sparse labels, JSON, a dataset's CSV of fields, and outputs (the folder marker, staged folders, the
one atomic writer every file goes through), and label images and value maps as calibrated ImageJ hyperstacks.
"""

from ._readers import read_image, read_image_info, read_array_info, open_image, ImageView, read_labels
from ._metadata import spacing, ImageInfo, PixelSize
from ._hashing import file_sha256, array_sha256
from ._atomic import write_json_atomic, write_text_atomic, json_text, atomic_file, scratch_directory
from ._hyperstacks import write_label_image, write_float_map
from ._projections import read_projections
from ._dataset import DATASET_COLUMNS, DatasetField, read_dataset, field_names, prepare_dataset_dir
from ._outputs import (staged_directory, OUTPUT_MARKER, check_output_dir, check_output_file, prepare_output_dir,
                       prepare_output_file, clean_stale, is_noisestat_output, codec_input_files)
from ._ownership import written_by_noisestat

__all__ = ["read_image", "read_image_info", "read_array_info", "open_image", "ImageView", "spacing", "ImageInfo", "PixelSize",
           "read_labels", "file_sha256", "array_sha256", "write_json_atomic", "write_text_atomic", "json_text", "atomic_file", "scratch_directory",
           "staged_directory", "OUTPUT_MARKER", "check_output_dir", "check_output_file", "prepare_output_dir",
           "prepare_output_file", "clean_stale", "is_noisestat_output", "codec_input_files", "write_label_image",
           "write_float_map", "read_projections", "DATASET_COLUMNS", "DatasetField", "read_dataset", "field_names",
           "prepare_dataset_dir", "written_by_noisestat"]
