"""Measuring objects: the 19 ImageJ-style morphological and 7 intensity parameters per object (a
volume's objects: MorphoLibJ-style 3D shape parameters in physical units, and the intensities), and the matching of one image's objects to the raw image's (matched, lost,
split, merged).
"""

from ._morphometry import (ANGULAR_PARAMETERS, INTENSITY_PARAMETERS, PARAMETERS, SHAPE_PARAMETERS, ObjectMeasurements,
                           measure_objects)
from ._volume import VOLUME_PARAMETERS, angular_for, centre_columns, measure_volume_objects, parameters_for, size_column
from ._regions3d import VOLUME_SHAPE_PARAMETERS, measure_regions_3d
from ._matching import Matching, match_iou, match_centroids, classify_objects, pair_unmatched, METHODS, STATUSES

__all__ = ["measure_volume_objects", "VOLUME_PARAMETERS", "measure_regions_3d", "VOLUME_SHAPE_PARAMETERS", "parameters_for", "centre_columns", "size_column", "angular_for", "ANGULAR_PARAMETERS", "INTENSITY_PARAMETERS", "SHAPE_PARAMETERS",
           "PARAMETERS", "ObjectMeasurements",
           "measure_objects", "Matching", "match_iou", "match_centroids", "classify_objects", "pair_unmatched", "METHODS",
           "STATUSES"]
