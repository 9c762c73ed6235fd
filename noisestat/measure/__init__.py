"""Measuring objects: the 19 ImageJ-style morphological parameters per object and the matching of
one image's objects to the raw image's (matched, lost, split, merged).
"""

from ._morphometry import ANGULAR_PARAMETERS, PARAMETERS, ObjectMeasurements, measure_objects
from ._matching import Matching, match_iou, match_centroids, classify_objects, METHODS, STATUSES

__all__ = ["ANGULAR_PARAMETERS", "PARAMETERS", "ObjectMeasurements", "measure_objects", "Matching",
           "match_iou", "match_centroids", "classify_objects", "METHODS", "STATUSES"]
